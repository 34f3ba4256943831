/* evloop.c: the process-wide "an event loop runs here" flag (evloop.h). */
#include "evloop.h"

#include <stdatomic.h>

static atomic_bool refill_deferred;

void dbp_evloop_defer_refill(void)
{
    atomic_store_explicit(&refill_deferred, true, memory_order_relaxed);
}

bool dbp_evloop_refill_deferred(void)
{
    return atomic_load_explicit(&refill_deferred, memory_order_relaxed);
}

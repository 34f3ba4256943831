/* evloop.h: whether this process serves an event loop that no call into
 * the core may block on its own account (an nginx worker).
 *
 * A pool tops its idle connections up to min_idle when a connection is
 * returned (refill_best_effort, pool_connect.c): a blocking connect, fine
 * in a thread, a stall for every request of an nginx worker.  Under nginx
 * the Lua layer says so once (dbpool.ngx), and refills from a timer with
 * the yielding connect instead (docs/decisions.md, issue 18).
 *
 * Lock rules: none; one process-wide atomic flag. */
#ifndef DBP_EVLOOP_H
#define DBP_EVLOOP_H

#include <stdbool.h>

/* From now on this process's pools leave min_idle refills to the caller. */
void dbp_evloop_defer_refill(void);

/* True once dbp_evloop_defer_refill was called in this process (or in the
 * parent it was forked from). */
bool dbp_evloop_refill_deferred(void);

#endif

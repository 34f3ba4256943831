/* metrics.h: per-engine counters as relaxed atomics, so counting never takes
 * a lock and reading never blocks a checkout.  Gauges are not stored here:
 * they are derived from the pool's own counts (dbp_pool_counts). */
#ifndef DBP_METRICS_H
#define DBP_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

typedef enum dbp_counter {
    DBP_M_CHECKOUTS,
    DBP_M_WAITS,           /* checkouts that had to queue */
    DBP_M_TIMEOUTS,
    DBP_M_CONNECTS,
    DBP_M_CONNECT_FAILURES,
    DBP_M_PREPING_FAILURES, /* pre-ping found the connection dead */
    DBP_M_INVALIDATIONS,   /* discarded: broken, invalidated, or born before a disconnect */
    DBP_M_RECYCLES,        /* replaced for age or query count */
    DBP_M_LEAKS,           /* returned by the garbage collector */
    DBP_M_QUERIES,
    DBP_M_QUERY_ERRORS,
    DBP_M_COUNT
} dbp_counter;

/* Snake-case names, in enum order, used as stats() keys. */
extern const char *const dbp_counter_names[DBP_M_COUNT];

typedef struct dbp_metrics {
    _Atomic uint64_t counters[DBP_M_COUNT];
} dbp_metrics;

static inline void dbp_metrics_inc(dbp_metrics *m, dbp_counter c)
{
    atomic_fetch_add_explicit(&m->counters[c], 1, memory_order_relaxed);
}

static inline uint64_t dbp_metrics_get(const dbp_metrics *m, dbp_counter c)
{
    return atomic_load_explicit(&m->counters[c], memory_order_relaxed);
}

void dbp_metrics_init(dbp_metrics *m);

#endif

/* testpool.h: what spec/c's pool tests read from a pool, one line each. */
#ifndef DBP_TESTPOOL_H
#define DBP_TESTPOOL_H

#include "pool.h"

/* SQLAlchemy's counts of p, now. */
static inline dbp_pool_counts counts(dbp_pool *p)
{
    dbp_pool_counts c;

    dbp_pool_counts_get(p, &c);
    return c;
}

/* One of p's counters. */
static inline uint64_t metric(dbp_pool *p, dbp_counter k)
{
    return dbp_metrics_get(dbp_pool_metrics(p), k);
}

#endif

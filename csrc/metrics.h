/* metrics.h: per-engine counters and histograms, readable without a lock.
 *
 * Every value is a relaxed atomic, so a reader (stats(), /metrics) never
 * takes a lock that a checkout waits on.  Writers pick the cheaper of two:
 * - dbp_metrics_inc: an atomic add, for counts made anywhere (queries from
 *   any thread, connect failures outside the pool's lock);
 * - dbp_metrics_inc_locked / dbp_hist_add_locked: a plain load and store,
 *   no bus lock, for counts made only while holding the pool's lock (the
 *   checkout and return paths, which hold it anyway).
 * Gauges are not stored here: they are the pool's own counts.
 * With -DDBP_NO_METRICS every write compiles to nothing (bench/metrics). */
#ifndef DBP_METRICS_H
#define DBP_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

/* Checkouts are not a counter: every checkout adds one observation to the
 * wait histogram, whose count is the number of checkouts (one store less on
 * the hottest path). */
typedef enum dbp_counter {
    DBP_M_WAITS,            /* locked: checkouts that had to queue */
    DBP_M_TIMEOUTS,         /* locked */
    DBP_M_CONNECTS,
    DBP_M_CONNECT_FAILURES,
    DBP_M_PREPING_FAILURES, /* pre-ping found the connection dead */
    DBP_M_INVALIDATIONS,    /* discarded: broken, invalidated, or born before a disconnect */
    DBP_M_RECYCLES,         /* replaced for age or query count */
    DBP_M_LEAKS,            /* returned by the garbage collector */
    DBP_M_QUERIES,
    DBP_M_QUERY_ERRORS,
    DBP_M_CIRCUIT_OPEN,     /* checkouts refused by the open breaker */
    DBP_M_READ_FALLBACKS,   /* engine:read served by the primary: no healthy replica */
    DBP_M_QUERY_TIMEOUTS,   /* statements cancelled at query_timeout */
    DBP_M_PING_TIMEOUTS,    /* pre-pings and health pings past ping_timeout */
    DBP_M_RESET_TIMEOUTS,   /* resets on return (ROLLBACK, COMMIT, DISCARD ALL) past reset_timeout */
    DBP_M_SESSION_RESETS,   /* DISCARD ALL on return (reset_session) */
    DBP_M_OVERSIZED,        /* closed on return after a message over max_message_size */
    DBP_M_RESIZES,          /* pool_size = "auto": sizing steps that changed the size */
    DBP_M_OVERFLOW_CONNECTS, /* locked: connections opened beyond pool_size (overflow) */
    DBP_M_RESIZE_CLOSES,    /* locked: pool_size = "auto": idle connections closed by sizing steps */
    DBP_M_COUNT
} dbp_counter;

/* Snake-case names, in enum order, used as stats() keys. */
extern const char *const dbp_counter_names[DBP_M_COUNT];

/* Histogram buckets: upper bounds are powers of two nanoseconds, from 2^13
 * to 2^36 nanoseconds, then +Inf: each bucket twice the one below,
 * as in OpenTelemetry's exponential and Prometheus' native histograms.  The
 * bucket of a duration is a count of leading zeros, no search (a checkout
 * records two durations). */
#define DBP_HIST_MIN_LOG2 13
#define DBP_HIST_BOUNDS 24
#define DBP_HIST_BUCKETS (DBP_HIST_BOUNDS + 1)

/* Upper bound of bucket i (i < DBP_HIST_BOUNDS), in seconds. */
static inline double dbp_hist_bound(int i)
{
    return (double)(1LL << (DBP_HIST_MIN_LOG2 + i)) / 1e9;
}

/* The count is the sum of the buckets, computed when read. */
typedef struct dbp_hist {
    _Atomic uint64_t buckets[DBP_HIST_BUCKETS];   /* not cumulative */
    _Atomic uint64_t sum_ns;
} dbp_hist;

typedef enum dbp_hist_kind {
    DBP_H_WAIT,      /* checkout call to connection in hand (queueing, connect, ping) */
    DBP_H_HOLD,      /* checkout to return */
    DBP_H_CONNECT,   /* one successful connect */
    DBP_H_COUNT
} dbp_hist_kind;

extern const char *const dbp_hist_names[DBP_H_COUNT];   /* "wait", "hold", "connect" */

typedef struct dbp_metrics {
    _Atomic uint64_t counters[DBP_M_COUNT];
    dbp_hist hists[DBP_H_COUNT];
} dbp_metrics;

/* A plain copy for reading and arithmetic. */
typedef struct dbp_hist_snapshot {
    uint64_t buckets[DBP_HIST_BUCKETS];
    uint64_t count;
    uint64_t sum_ns;
} dbp_hist_snapshot;

void dbp_metrics_init(dbp_metrics *m);

/* The smallest i with ns <= 2^(13+i), capped at the +Inf bucket:
 * ceil(log2(ns)) is 64 - clz(ns - 1) for ns >= 2. */
static inline int dbp_hist_index(int64_t ns)
{
    unsigned long long below = ns > 1 ? (unsigned long long)ns - 1 : 1;
    int i = 64 - __builtin_clzll(below) - DBP_HIST_MIN_LOG2;

    return i < 0 ? 0 : (i > DBP_HIST_BOUNDS ? DBP_HIST_BOUNDS : i);
}

#ifdef DBP_NO_METRICS
static inline void dbp_metrics_inc(dbp_metrics *m, dbp_counter c) { (void)m; (void)c; }
static inline void dbp_metrics_inc_locked(dbp_metrics *m, dbp_counter c) { (void)m; (void)c; }
static inline void dbp_hist_add_locked(dbp_metrics *m, dbp_hist_kind k, int64_t ns)
{
    (void)m; (void)k; (void)ns;
}
static inline void dbp_hist_add_zero_locked(dbp_metrics *m, dbp_hist_kind k)
{
    (void)m; (void)k;
}
#else
static inline void dbp_metrics_inc(dbp_metrics *m, dbp_counter c)
{
    atomic_fetch_add_explicit(&m->counters[c], 1, memory_order_relaxed);
}

static inline void bump_relaxed(_Atomic uint64_t *v, uint64_t by)
{
    atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) + by,
                          memory_order_relaxed);
}

/* Caller holds the pool's lock, as every writer of c does. */
static inline void dbp_metrics_inc_locked(dbp_metrics *m, dbp_counter c)
{
    bump_relaxed(&m->counters[c], 1);
}

/* Caller holds the pool's lock, as every writer of that histogram does. */
static inline void dbp_hist_add_locked(dbp_metrics *m, dbp_hist_kind k, int64_t ns)
{
    dbp_hist *h = &m->hists[k];

    /* Durations come from the monotonic clock: never negative. */
    bump_relaxed(&h->buckets[dbp_hist_index(ns)], 1);
    bump_relaxed(&h->sum_ns, (uint64_t)ns);
}

/* An observation of zero (a checkout served at once): no search, no sum. */
static inline void dbp_hist_add_zero_locked(dbp_metrics *m, dbp_hist_kind k)
{
    bump_relaxed(&m->hists[k].buckets[0], 1);
}
#endif

static inline uint64_t dbp_metrics_get(const dbp_metrics *m, dbp_counter c)
{
    return atomic_load_explicit(&m->counters[c], memory_order_relaxed);
}

void dbp_hist_read(const dbp_metrics *m, dbp_hist_kind k, dbp_hist_snapshot *out);

/* Checkouts so far: the wait histogram's count. */
uint64_t dbp_metrics_checkouts(const dbp_metrics *m);

/* out = now - before, bucket by bucket (a window between two readings). */
void dbp_hist_diff(const dbp_hist_snapshot *now, const dbp_hist_snapshot *before,
                   dbp_hist_snapshot *out);

/* The q-quantile (0 < q <= 1) in seconds, interpolated linearly inside the
 * bucket that holds it, as Prometheus' histogram_quantile does; the +Inf
 * bucket answers with the highest finite bound.  0 when empty. */
double dbp_hist_quantile(const dbp_hist_snapshot *h, double q);

#endif

/* metrics.c: names, initialisation and reading (see metrics.h). */
#include "metrics.h"

const char *const dbp_counter_names[DBP_M_COUNT] = {
    "waits",    "timeouts", "connects", "connect_failures", "pre_ping_failures", "invalidations",
    "recycles", "leaks",    "queries",  "query_errors",     "circuit_open",      "read_fallbacks",
    "query_timeouts", "ping_timeouts", "reset_timeouts", "session_resets", "oversized_closes",
    "resizes", "overflow_connects", "resize_closes",
};

const char *const dbp_hist_names[DBP_H_COUNT] = {"wait", "hold", "connect"};

void dbp_metrics_init(dbp_metrics *m)
{
    for (int i = 0; i < DBP_M_COUNT; i++)
        atomic_init(&m->counters[i], 0);
    for (int k = 0; k < DBP_H_COUNT; k++) {
        for (int b = 0; b < DBP_HIST_BUCKETS; b++)
            atomic_init(&m->hists[k].buckets[b], 0);
        atomic_init(&m->hists[k].sum_ns, 0);
    }
}

void dbp_hist_read(const dbp_metrics *m, dbp_hist_kind k, dbp_hist_snapshot *out)
{
    const dbp_hist *h = &m->hists[k];

    out->count = 0;
    for (int b = 0; b < DBP_HIST_BUCKETS; b++) {
        out->buckets[b] = atomic_load_explicit(&h->buckets[b], memory_order_relaxed);
        out->count += out->buckets[b];
    }
    out->sum_ns = atomic_load_explicit(&h->sum_ns, memory_order_relaxed);
}

uint64_t dbp_metrics_checkouts(const dbp_metrics *m)
{
    dbp_hist_snapshot h;

    dbp_hist_read(m, DBP_H_WAIT, &h);
    return h.count;
}

void dbp_hist_diff(const dbp_hist_snapshot *now, const dbp_hist_snapshot *before,
                   dbp_hist_snapshot *out)
{
    for (int b = 0; b < DBP_HIST_BUCKETS; b++)
        out->buckets[b] = now->buckets[b] - before->buckets[b];
    out->count = now->count - before->count;
    out->sum_ns = now->sum_ns - before->sum_ns;
}

double dbp_hist_quantile(const dbp_hist_snapshot *h, double q)
{
    uint64_t total = 0, seen = 0;
    double rank;

    for (int b = 0; b < DBP_HIST_BUCKETS; b++)
        total += h->buckets[b];
    if (total == 0)
        return 0;
    rank = q * (double)total;
    for (int b = 0; b < DBP_HIST_BUCKETS; b++) {
        uint64_t n = h->buckets[b];
        if (n == 0 || (double)(seen + n) < rank) {
            seen += n;
            continue;
        }
        if (b == DBP_HIST_BOUNDS)               /* +Inf: no upper bound to reach */
            return dbp_hist_bound(DBP_HIST_BOUNDS - 1);
        double lo = b == 0 ? 0 : dbp_hist_bound(b - 1), hi = dbp_hist_bound(b);
        return lo + (hi - lo) * ((rank - (double)seen) / (double)n);
    }
    return dbp_hist_bound(DBP_HIST_BOUNDS - 1);
}

/* test_metrics.c: histogram bucketing and quantiles (metrics.c), no server. */
#include <stdint.h>

#include "metrics.h"
#include "testlib.h"

/* The bucket by definition: the first whose bound is >= the duration. */
static int plain_index(int64_t ns)
{
    for (int i = 0; i < DBP_HIST_BOUNDS; i++)
        if ((double)ns <= dbp_hist_bound(i) * 1e9 + 0.5)
            return i;
    return DBP_HIST_BOUNDS;
}

static void test_index(void)
{
    int bad = 0, checked = 0;

    for (int k = 0; k < 63; k++) {
        int64_t p = (int64_t)1 << k;
        int64_t probes[] = {p - 1, p, p + 1};
        for (int j = 0; j < 3; j++) {
            if (probes[j] < 0)
                continue;
            checked++;
            if (dbp_hist_index(probes[j]) != plain_index(probes[j])) {
                if (bad++ < 5)
                    diag("ns %lld: index %d, by search %d", (long long)probes[j],
                         dbp_hist_index(probes[j]), plain_index(probes[j]));
            }
        }
    }
    is_int(bad, 0, "dbp_hist_index agrees with a plain search at %d powers of two +-1", checked);
    is_int(dbp_hist_index(0), 0, "0 ns: first bucket");
    is_int(dbp_hist_index(8192), 0, "8192 ns = 2^13: first bucket (le is inclusive)");
    is_int(dbp_hist_index(8193), 1, "8193 ns: second");
    is_int(dbp_hist_index(INT64_MAX), DBP_HIST_BOUNDS, "huge: +Inf");
    between(dbp_hist_bound(DBP_HIST_BOUNDS - 1), 68.7, 68.8, "last finite bound 2^36 ns = 68.7 s");
}

static void test_quantiles(void)
{
    dbp_metrics m;
    dbp_hist_snapshot h, before, d;

    dbp_metrics_init(&m);
    dbp_hist_read(&m, DBP_H_HOLD, &h);
    between(dbp_hist_quantile(&h, 0.99), 0, 1e-12, "empty: 0");
    for (int i = 0; i < 90; i++)
        dbp_hist_add_locked(&m, DBP_H_HOLD, 5000);         /* bucket 0: <= 8.192 µs */
    dbp_hist_read(&m, DBP_H_HOLD, &before);
    for (int i = 0; i < 10; i++)
        dbp_hist_add_locked(&m, DBP_H_HOLD, 30000000);     /* 30 ms: (16.8, 33.6] ms */
    dbp_hist_read(&m, DBP_H_HOLD, &h);
    is_int((long long)h.count, 100, "count is the sum of the buckets");
    is_int((long long)h.sum_ns, 90LL * 5000 + 10LL * 30000000, "sum in ns");
    between(dbp_hist_quantile(&h, 0.5), 0, 8.2e-6, "p50 inside the first bucket");
    between(dbp_hist_quantile(&h, 0.99), 0.0167, 0.0336, "p99 inside the 30 ms bucket");
    between(dbp_hist_quantile(&h, 0.95), 0.0167, 0.0252,
            "p95 interpolated to the middle of that bucket");
    dbp_hist_diff(&h, &before, &d);
    is_int((long long)d.count, 10, "a window holds only what came after its start");
    between(dbp_hist_quantile(&d, 0.5), 0.0167, 0.0336, "... and its p50 is the 30 ms bucket");
    dbp_hist_add_zero_locked(&m, DBP_H_WAIT);
    is_int((long long)dbp_metrics_checkouts(&m), 1, "a checkout is one wait observation");
}

int main(void)
{
    test_index();
    test_quantiles();
    return done_testing();
}

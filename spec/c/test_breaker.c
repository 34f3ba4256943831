/* test_breaker.c: the circuit breaker's states and the retry back-off, as
 * pure logic on a clock the test controls (no server, no sleeping). */
#include "breaker.h"
#include "common.h"
#include "testlib.h"

#define S(x) ((int64_t)((x) * 1e9))

static void test_opens_after_threshold(void)
{
    dbp_breaker b;

    dbp_breaker_init(&b, 3, 5);
    is_int(dbp_breaker_admit(&b, S(0)), DBP_ADMIT, "closed: connects are admitted");
    ok(!dbp_breaker_failure(&b, S(1), "refused 1"), "failure 1 of 3 keeps it closed");
    ok(!dbp_breaker_failure(&b, S(1), "refused 2"), "failure 2 of 3 keeps it closed");
    dbp_breaker_success(&b);
    ok(!dbp_breaker_failure(&b, S(2), "refused 3"), "a success in between resets the count");
    ok(!dbp_breaker_failure(&b, S(2), "refused 4"), "... failure 2 of 3 again");
    ok(dbp_breaker_failure(&b, S(2), "refused 5"), "failure 3 in a row opens it");
    ok(dbp_breaker_is_open(&b), "open");
    is_str(b.last_error, "refused 5", "keeps the last connect error");
    is_int(dbp_breaker_admit(&b, S(6.9)), DBP_REFUSE, "refuses within the cooldown");
    between(dbp_breaker_retry_in(&b, S(4)), 2.999, 3.001, "next attempt in 3 s at t=4");
}

static void test_half_open_probe(void)
{
    dbp_breaker b;

    dbp_breaker_init(&b, 2, 5);
    (void)dbp_breaker_failure(&b, S(0), "x");
    (void)dbp_breaker_failure(&b, S(0), "x");
    is_int(dbp_breaker_admit(&b, S(5)), DBP_ADMIT_PROBE, "after the cooldown one probe goes");
    is_int(dbp_breaker_admit(&b, S(5)), DBP_REFUSE, "while it is in flight, others are refused");
    ok(dbp_breaker_failure(&b, S(5.5), "still down"), "a failed probe re-opens it");
    is_int(dbp_breaker_admit(&b, S(10.4)), DBP_REFUSE, "for another full cooldown");
    is_int(dbp_breaker_admit(&b, S(10.5)), DBP_ADMIT_PROBE, "then probes again");
    dbp_breaker_cancel_probe(&b);
    is_int(dbp_breaker_admit(&b, S(10.6)), DBP_ADMIT_PROBE, "a cancelled probe frees the turn");
    dbp_breaker_success(&b);
    ok(!dbp_breaker_is_open(&b), "a successful probe closes it");
    is_int(dbp_breaker_admit(&b, S(10.7)), DBP_ADMIT, "closed: admitted with retries again");
}

static void test_off(void)
{
    dbp_breaker b;

    dbp_breaker_init(&b, 0, 5);
    for (int i = 0; i < 100; i++)
        (void)dbp_breaker_failure(&b, S(i), "down");
    ok(!dbp_breaker_is_open(&b), "failures = 0: never opens");
    is_str(b.last_error, "down", "... but still remembers the last error");
}

static void test_backoff(void)
{
    /* base 0.05, max 2: steps 0.05, 0.1, 0.2, ... capped at 2; each delay
     * uniform in [step/2, step]. */
    double want[] = {0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2, 2};
    for (int a = 1; a <= 8; a++) {
        double lo = (double)dbp_backoff_ns(a, 0.05, 2, 0.0) / 1e9;
        double hi = (double)dbp_backoff_ns(a, 0.05, 2, 0.999999) / 1e9;
        between(lo, want[a - 1] / 2 - 1e-9, want[a - 1] / 2 + 1e-9,
                "retry %d: shortest delay is half the step %.2f", a, want[a - 1]);
        between(hi, want[a - 1] * 0.999, want[a - 1] + 1e-9, "retry %d: longest is the step", a);
    }
    is_int(dbp_backoff_ns(500, 0.05, 2, 0.5), S(1.5), "huge attempt numbers stay capped");
    is_int(dbp_backoff_ns(1, 0, 0, 0.5), 0, "base 0: no delay");
}

int main(void)
{
    test_opens_after_threshold();
    test_half_open_probe();
    test_off();
    test_backoff();
    return done_testing();
}

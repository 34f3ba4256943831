/* breaker.h: what the pool does about failed connects, as pure logic so
 * that it is tested without a server: exponential back-off with jitter
 * between retries, and a circuit breaker that fails checkouts at once while
 * the server is down.
 *
 * States: closed (connect freely) -> open after `threshold` failed connects
 * in a row (refuse until the cooldown ends) -> half-open (one probe connect
 * admitted, everyone else still refused) -> closed on the probe's success,
 * open again for another cooldown on its failure.  Not thread-safe: the pool
 * calls these under its own lock. */
#ifndef DBP_BREAKER_H
#define DBP_BREAKER_H

#include <stdbool.h>
#include <stdint.h>

typedef struct dbp_breaker {
    int threshold;            /* failed connects in a row that open it; 0 = off */
    int64_t cooldown_ns;
    int failures;             /* consecutive failed connects */
    int64_t open_until_ns;    /* 0 = closed */
    bool probing;             /* the half-open probe is in flight */
    char last_error[512];     /* the last connect error, password already scrubbed */
} dbp_breaker;

typedef enum dbp_admit {
    DBP_ADMIT,          /* connect normally, retries allowed */
    DBP_ADMIT_PROBE,    /* the one half-open probe: a single attempt */
    DBP_REFUSE          /* fail at once with circuit_open */
} dbp_admit;

void dbp_breaker_init(dbp_breaker *b, int threshold, double cooldown_s);

/* May a connect be attempted now? */
dbp_admit dbp_breaker_admit(dbp_breaker *b, int64_t now);

/* Records one connect attempt's outcome.  A failure returns true when it
 * opened (or re-opened) the breaker: the caller stops retrying. */
void dbp_breaker_success(dbp_breaker *b);
bool dbp_breaker_failure(dbp_breaker *b, int64_t now, const char *message);

/* The probe was admitted but never made (its checkout gave up early). */
void dbp_breaker_cancel_probe(dbp_breaker *b);

bool dbp_breaker_is_open(const dbp_breaker *b);

/* Seconds until the next probe is admitted (0 when one may go now). */
double dbp_breaker_retry_in(const dbp_breaker *b, int64_t now);

/* Delay before retry number `attempt` (1 = the first retry): "equal jitter"
 * over an exponential step, d = min(max, base * 2^(attempt-1)), a delay
 * uniform in [d/2, d].  Never zero unless base is, so retries stay spaced;
 * random so that many clients do not retry in lockstep.  u in [0, 1). */
int64_t dbp_backoff_ns(int attempt, double base_s, double max_s, double u);

#endif

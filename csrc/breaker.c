/* breaker.c: circuit breaker and retry back-off (see breaker.h). */
#include "breaker.h"

#include <math.h>
#include <string.h>

#include "common.h"
#include "error.h"

void dbp_breaker_init(dbp_breaker *b, int threshold, double cooldown_s)
{
    memset(b, 0, sizeof *b);
    b->threshold = threshold;
    b->cooldown_ns = dbp_sec_to_ns(cooldown_s);
}

bool dbp_breaker_is_open(const dbp_breaker *b)
{
    return b->open_until_ns != 0;
}

dbp_admit dbp_breaker_admit(dbp_breaker *b, int64_t now)
{
    if (b->open_until_ns == 0)
        return DBP_ADMIT;
    if (now < b->open_until_ns || b->probing)
        return DBP_REFUSE;
    b->probing = true;
    return DBP_ADMIT_PROBE;
}

void dbp_breaker_success(dbp_breaker *b)
{
    b->failures = 0;
    b->open_until_ns = 0;
    b->probing = false;
}

bool dbp_breaker_failure(dbp_breaker *b, int64_t now, const char *message)
{
    bool was_probe = b->probing;

    dbp_copy_text(b->last_error, sizeof b->last_error, message);
    b->probing = false;
    if (b->threshold <= 0)
        return false;
    if (b->failures < b->threshold)
        b->failures++;
    if (was_probe || b->failures >= b->threshold) {
        b->open_until_ns = now + b->cooldown_ns;
        if (b->open_until_ns == 0)      /* cooldown 0 at clock 0: stay "open" */
            b->open_until_ns = 1;
        return true;
    }
    return false;
}

void dbp_breaker_cancel_probe(dbp_breaker *b)
{
    b->probing = false;
}

double dbp_breaker_retry_in(const dbp_breaker *b, int64_t now)
{
    if (b->open_until_ns == 0 || now >= b->open_until_ns)
        return 0;
    return (double)(b->open_until_ns - now) / (double)DBP_NS_PER_SEC;
}

int64_t dbp_backoff_ns(int attempt, double base_s, double max_s, double u)
{
    double d = base_s * ldexp(1.0, attempt < 1 ? 0 : (attempt > 60 ? 60 : attempt - 1));

    if (d > max_s)
        d = max_s;
    return dbp_sec_to_ns(d / 2 + u * d / 2);
}

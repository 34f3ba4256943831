/* common.h: status codes, attribute macros and the monotonic clock shared by
 * every module of the core.  No Lua, no libpq. */
#ifndef DBP_COMMON_H
#define DBP_COMMON_H

#include <stdint.h>
#include <time.h>

/* What every fallible core function returns.  The caller-provided dbp_error
 * says more; DBP_OK leaves it untouched. */
typedef enum dbp_status {
    DBP_OK = 0,
    DBP_TIMEOUT,        /* no slot within pool_timeout; a ping or reset past its timeout */
    DBP_AGAIN,          /* non-blocking call would have to wait */
    DBP_CLOSED,         /* object already closed / disposed */
    DBP_CONNECT,        /* could not open a server connection */
    DBP_QUERY,          /* the server (or the link) failed a statement */
    DBP_CIRCUIT_OPEN,   /* breaker open: failing fast */
    DBP_PENDING,        /* reserved, the caller drives the connect (event loops) */
    DBP_NOMEM,
    DBP_INVALID,        /* bad option or argument */
    DBP_QUERY_TIMEOUT   /* a statement outlasted its query_timeout (cancelled) */
} dbp_status;

#define DBP_MUSTCHECK __attribute__((warn_unused_result))
#define DBP_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#define DBP_UNUSED(x) ((void)(x))

#define DBP_NS_PER_SEC 1000000000LL

/* Monotonic nanoseconds: every deadline, age and timestamp in the core uses
 * this clock so that wall-clock jumps never expire or revive a connection. */
static inline int64_t dbp_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * DBP_NS_PER_SEC + ts.tv_nsec;
}

static inline int64_t dbp_sec_to_ns(double s)
{
    return (int64_t)(s * (double)DBP_NS_PER_SEC);
}

#endif

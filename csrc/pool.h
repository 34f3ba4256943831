/* pool.h: SQLAlchemy's QueuePool in C, shared by threads.
 *
 * Capacity is pool_size + max_overflow (max_overflow = -1 or pool_size = 0:
 * unbounded).  At most pool_size connections are kept idle; an overflow
 * connection returned while the idle set is full is closed.  A returned
 * connection goes straight to the longest waiter.  Reaches libpq only
 * through conn.h. */
#ifndef DBP_POOL_H
#define DBP_POOL_H

#include <stdbool.h>
#include <stdint.h>
#include "common.h"
#include "config.h"
#include "conn.h"
#include "error.h"
#include "metrics.h"

typedef struct dbp_pool dbp_pool;
typedef struct dbp_slot dbp_slot;

/* SQLAlchemy's counters plus the live state HikariCP reports. */
typedef struct dbp_pool_counts {
    int size;          /* pool_size */
    int checkedin;     /* idle connections */
    int checkedout;    /* total - checkedin: in use or being opened */
    int overflow;      /* total - pool_size; negative below pool_size */
    int total;         /* connections open or being opened */
    int waiting;       /* checkouts queued for a slot */
} dbp_pool_counts;

/* Creates an empty pool with its own copy of cfg; opens no connection.
 * Parses cfg->dsn with libpq, and checks each replica's (conninfo.h):
 * DBP_INVALID, naming the engine and the option, when libpq refuses one;
 * else fails only for lack of memory. */
DBP_MUSTCHECK dbp_status dbp_pool_new(const dbp_config *cfg, dbp_pool **out,
                                      dbp_error *err);

/* Closes the idle connections and frees the pool.  Every checkout must have
 * been released first. */
void dbp_pool_free(dbp_pool *p);

/* Checks a connection out.  On DBP_OK *out is in use and owned by the caller
 * until dbp_pool_release or dbp_pool_invalidate.  Serves an idle connection
 * (FIFO, or LIFO with use_lifo), else opens one while under capacity, else
 * queues behind earlier waiters until a connection is handed over or
 * pool_timeout passes (monotonic deadline).  Blocks the calling thread:
 * not for an event loop.  Fails with DBP_TIMEOUT (SQLAlchemy's message, live
 * state in err->detail) or DBP_CONNECT, leaving every count as it was. */
DBP_MUSTCHECK dbp_status dbp_pool_checkout(dbp_pool *p, dbp_slot **out, dbp_error *err);

/* The same, but never waits for a slot: returns DBP_AGAIN when it would have
 * to queue (also when others are already queued: no barging).  For event
 * loops, which then wait in their own way and try again. */
DBP_MUSTCHECK dbp_status dbp_pool_try_checkout(dbp_pool *p, dbp_slot **out,
                                               dbp_error *err);

/* What a checkout or a return did, for echo_pool logging. */
enum {
    DBP_EV_CONNECT = 1u << 0,        /* opened a new connection */
    DBP_EV_RECYCLE = 1u << 1,        /* replaced one for pool_recycle or max_queries */
    DBP_EV_INVALIDATE = 1u << 2,     /* replaced or discarded a dead or invalidated one */
    DBP_EV_WAIT = 1u << 3,           /* queued for a slot */
    DBP_EV_BREAKER_OPEN = 1u << 4,
    DBP_EV_BREAKER_CLOSE = 1u << 5,
    DBP_EV_CLOSE = 1u << 6           /* the return closed the connection */
};

/* How a checkout may wait. */
typedef enum dbp_checkout_mode {
    DBP_CHECKOUT_WAIT,      /* queue until pool_timeout; connect here (blocks the thread) */
    DBP_CHECKOUT_TRY,       /* never queue: DBP_AGAIN when it would; connect here (blocks) */
    DBP_CHECKOUT_DEFER      /* never queue, never connect: an event loop's checkout.  When a
                               new connection is needed, returns DBP_PENDING with *out
                               reserved (capacity held, the breaker asked) but not
                               connected; the caller drives dbp_pool_connect_step */
} dbp_checkout_mode;

/* The one checkout: dbp_pool_checkout and dbp_pool_try_checkout are
 * DBP_CHECKOUT_WAIT and DBP_CHECKOUT_TRY of it.  Also tells what happened on
 * the way in *events (DBP_EV_*; NULL: not wanted), on success and on
 * failure alike.  since_ns (dbp_now_ns() nanoseconds, 0 = now) is when the
 * caller started waiting, for the wait histogram and the checkout's
 * deadline, when an event loop waits by itself between tries.
 *
 * DBP_CHECKOUT_DEFER: drive a DBP_PENDING slot with dbp_pool_connect_step
 * whenever dbp_slot_conn(*out)'s socket is ready (readable, or writable when
 * *want_write; the first step needs no wait) until DBP_OK (checked out, as
 * from dbp_pool_checkout) or a failure (the slot is freed, capacity given
 * back, the breaker told).  A caller that gives up calls
 * dbp_pool_connect_abandon, which counts as a failed connect. */
DBP_MUSTCHECK dbp_status dbp_pool_checkout_mode(dbp_pool *p, dbp_checkout_mode mode,
                                                int64_t since_ns, dbp_slot **out,
                                                unsigned *events, dbp_error *err);
DBP_MUSTCHECK dbp_status dbp_pool_connect_step(dbp_pool *p, dbp_slot *s, bool *want_write,
                                               unsigned *events, dbp_error *err);
void dbp_pool_connect_abandon(dbp_pool *p, dbp_slot *s, const char *why);

/* For a caller that waits by itself (an event loop polling try_checkout):
 * count one waiting checkout, and, when it gives up, count the timeout and
 * fill err with the QueuePool sentence and live state (DBP_TIMEOUT). */
void dbp_pool_note_wait(dbp_pool *p);
DBP_MUSTCHECK dbp_status dbp_pool_timed_out(dbp_pool *p, dbp_error *err);

/* The seconds a checkout's network work (connects, pre-pings) may take in
 * all, counted from the checkout's start: pool_timeout, but at least one
 * second.  An event loop driving its own connect bounds it by this. */
double dbp_pool_checkout_budget(const dbp_pool *p);

/* For an event loop whose own connect ran past the checkout's budget
 * (dbp_pool_checkout_budget): counts a checkout timeout and fills err
 * (DBP_TIMEOUT, "could not connect within pool_timeout"). */
DBP_MUSTCHECK dbp_status dbp_pool_connect_timed_out(dbp_pool *p, dbp_error *err);

/* True when min_idle asks for connections a return lost: for a host that
 * refills by itself (dbp_refill_by_host).  Takes the pool's lock only when
 * min_idle is set. */
bool dbp_pool_refill_due(dbp_pool *p);

/* Returns a checked-out connection.  Resets it (reset_on_return) only when
 * libpq reports an open transaction, then hands it to the first waiter, keeps
 * it idle, or closes it (broken, invalidated, or overflow beyond pool_size).
 * Never fails; returns DBP_EV_* flags (0: pooled again). */
unsigned dbp_pool_release(dbp_pool *p, dbp_slot *s);

/* Closes a checked-out connection for good and frees its capacity. */
void dbp_pool_invalidate(dbp_pool *p, dbp_slot *s);

/* Replaces stale idle connections and opens new ones until min_idle are
 * idle, never growing past pool_size, never ahead of a queued checkout, one
 * connect attempt each (within connect_timeout, seconds).  Blocks the
 * calling thread for those connects: engine creation (pre-warming) calls
 * it; after a return, the refill thread does (refill.h).  Returns the first
 * failure (DBP_CONNECT, DBP_CIRCUIT_OPEN); the pool stays usable. */
DBP_MUSTCHECK dbp_status dbp_pool_refill(dbp_pool *p, dbp_error *err);

/* One connection of dbp_pool_refill: *more is true when it opened one and
 * min_idle may want another.  DBP_OK with *more false: nothing wanted. */
DBP_MUSTCHECK dbp_status dbp_pool_refill_step(dbp_pool *p, bool *more, dbp_error *err);

/* For an event loop's timer: when min_idle wants a connection, reserves it
 * and returns DBP_PENDING with *out, to be driven by dbp_pool_connect_step
 * as a DBP_CHECKOUT_DEFER checkout's (not counted as one) and then given
 * back with dbp_pool_release, which idles it.  DBP_OK with *out untouched:
 * nothing wanted; DBP_CIRCUIT_OPEN: the breaker refuses. */
DBP_MUSTCHECK dbp_status dbp_pool_refill_start(dbp_pool *p, dbp_slot **out, dbp_error *err);

/* A statement on s failed: when the failure was a disconnect (or a primary
 * turned read-only), records the pool-wide invalidation time at once, so
 * that other checkouts stop getting connections born before it. */
void dbp_pool_note_failure(dbp_pool *p, dbp_slot *s);

/* Closes every idle connection; connections checked out now are closed
 * when they come back.  The pool stays usable. */
void dbp_pool_dispose(dbp_pool *p);

/* dbpool.remove: dispose, and from now on neither min_idle's refill nor
 * pool_size = "auto" opens a connection for p (other Lua states' handles
 * still check out through it; what they return is pooled, never refilled). */
void dbp_pool_retire(dbp_pool *p);

void dbp_pool_counts_get(dbp_pool *p, dbp_pool_counts *out);

/* The most connections p may hold, as checkouts are refused beyond it:
 * pool_size + max_overflow (dbp_config_capacity; HUGE_VAL when unbounded),
 * or under pool_size = "auto" with dbpool.budget's allowance applied
 * (dbp_pool_autosize_limit) that allowance + max_overflow when lower.
 * Takes p's lock; never fails. */
double dbp_pool_capacity(dbp_pool *p);
const dbp_config *dbp_pool_config(const dbp_pool *p);
/* The DSN as parsed at creation: dbp_conninfo_shown for showing it,
 * dbp_conninfo_connect_timeout for the connect clock. */
const dbp_conninfo *dbp_pool_conninfo(const dbp_pool *p);
dbp_metrics *dbp_pool_metrics(dbp_pool *p);

/* Most connections checked out at once, and seconds since the pool was
 * created: the inputs of sizing advice besides the histograms. */
int dbp_pool_peak_in_use(dbp_pool *p);
double dbp_pool_age(const dbp_pool *p);

/* The wait histogram and the number of timeouts since the previous call
 * (or since creation), for a health check that judges the recent past, not
 * the whole life. */
void dbp_pool_wait_window(dbp_pool *p, dbp_hist_snapshot *out, uint64_t *timeouts);

/* "closed", "open" or "half-open" (a probe connect may go). */
const char *dbp_pool_breaker_state(dbp_pool *p);

/* ---- leak tracking (leak_threshold > 0) ---- */

typedef struct dbp_leak {
    char *trace;     /* malloc'd copy for the caller to free */
    double held;     /* seconds held so far */
} dbp_leak;

/* Records the checkout's traceback (ownership passes to the pool; freed
 * when the slot is returned) and starts its leak_threshold clock. */
void dbp_pool_track(dbp_pool *p, dbp_slot *s, char *trace);

/* Checkouts held past leak_threshold and not reported before: marks them
 * reported (each is reported once) and fills up to max records.  Cheap when
 * nothing can be due yet: no scan before the earliest deadline. */
int dbp_pool_overdue(dbp_pool *p, dbp_leak *out, int max);

/* At return: a copy of s's traceback when it was held past leak_threshold
 * and not reported yet (then marks it reported), else NULL. */
char *dbp_slot_take_overdue(dbp_pool *p, dbp_slot *s, double *held);

/* Formats dbp_pool_counts as SQLAlchemy's status() string. */
void dbp_pool_status_text(const dbp_pool_counts *c, char *out, size_t size);

/* The slot's connection, for the holder of the checkout. */
dbp_conn *dbp_slot_conn(dbp_slot *s);
/* A DBP_CHECKOUT_DEFER checkout's DBP_PENDING slot that waits for the
 * pre-ping of an idle connection (not for a connect): its seconds left
 * until ping_timeout or the checkout's deadline (at least 0), else -1. */
double dbp_slot_ping_left(const dbp_slot *s);
/* True in a fork()ed child for a connection the parent checked out: its
 * socket is the parent's, so it must not be used here. */
bool dbp_slot_inherited(const dbp_slot *s);

#endif

/* pool_internal.h: what the pool's files share, and nothing else includes.
 *
 * The pool is five files, one job each:
 *   pool.c          checkout and return, the pool's lifecycle, inspection
 *   pool_slots.c    the slot floor: capacity, waiters, the idle list's
 *                   bulk moves, fork orphans (its hot half is inline below)
 *   pool_connect.c  opening connections: breaker, retries and back-off,
 *                   the event loop's async connect, min_idle refill
 *   pool_leak.c     leak tracking (leak_threshold), on links of its own
 *   cap.c           max_total_connections across processes (cap.h); for
 *                   an engine declared in a worker, from the instance
 *                   arena (arena.h)
 *
 * Lock rules, for all of them: one lock per pool (p->mu, lock.h), never
 * held across I/O: decide under the lock, connect, ping, reset and close
 * outside it (puddle's rule).  A function named *_locked needs p->mu held
 * by its caller and leaves it held; lock_pool and unlock_pool take and drop
 * it around the fork check.  A slot owned by one checkout (SLOT_OPENING,
 * SLOT_IN_USE) is on no list and is touched by its owner without the lock,
 * except for the fields noted in struct dbp_slot.
 *
 * The small helpers of the checkout and return paths are static inline
 * here (DBP_HOT forces it) so that those paths inline them as when they
 * were one file: their calls would otherwise be a visible share of a
 * checkout + checkin (bench/results/comparison.md, "dbpool cycle, C"). */
#ifndef DBP_POOL_INTERNAL_H
#define DBP_POOL_INTERNAL_H

#include <stdio.h>
#include <stdlib.h>

#include "autosize.h"
#include "breaker.h"
#include "cap.h"
#include "fork.h"
#include "lock.h"
#include "pool.h"
#include "refill.h"

#define DBP_HOT inline __attribute__((always_inline))

/* Where a slot lives.  A slot is always counted in p->total. */
typedef enum slot_state {
    SLOT_OPENING,   /* reserved by one checkout, on no list, conn being opened */
    SLOT_IDLE,      /* on p->idle_head..idle_tail, oldest return first */
    SLOT_IN_USE     /* owned by one checkout, on no list */
} slot_state;

struct dbp_slot {
    dbp_conn *conn;
    slot_state state;       /* changed under p->mu by slot_set_state_locked
                               while it involves SLOT_IDLE */
    unsigned gen;           /* fork generation the connection was opened in */
    int64_t born_ns;        /* when the connection finished opening */
    int64_t expires_ns;     /* recycle deadline (jitter fixed at birth); INT64_MAX = never */
    int64_t last_used_ns;   /* last return: for pre-ping bypass */
    int queries;            /* statements run, for max_queries */
    dbp_slot *prev, *next;  /* idle list links while SLOT_IDLE (p->mu); on a
                               list of slots leaving the pool, next only */
    int64_t checkout_ns;    /* when the current checkout got it: hold time;
                               while connecting for an event loop: since when it waits */
    int64_t connect_ns;     /* event-loop connect: when it started */
    bool probe;             /* event-loop connect: the breaker's half-open probe */
    /* Leak tracking (leak_threshold > 0, pool_leak.c), under p->mu. */
    char *trace;            /* owned; non-NULL exactly while on p->tracked */
    dbp_slot *leak_prev, *leak_next;   /* p->tracked links */
    bool leak_reported;
    unsigned epoch;         /* p->epoch when its unit of capacity was reserved */
    int64_t query_timeout_ns;   /* this checkout's statements' deadline; 0 = none */
    bool refill;            /* opened for min_idle by a host's timer, not a checkout */
    bool pinging;           /* an event loop's checkout waits for its pre-ping
                               (dbp_pool_connect_step reads the answer) */
    unsigned pending_ev;    /* DBP_EV_* of that checkout before its connect */
};

/* pool_size = "auto" (autosize.c): the window since the last sizing step
 * and the resizes not reported yet.  Under the pool's p->mu. */
typedef struct auto_state {
    int64_t mark_ns;                  /* the window's start */
    uint64_t mark_checkouts, mark_hold_count, mark_hold_sum_ns;
    uint32_t in_use[DBP_AUTO_BUCKETS];    /* in use as each checkout of the window saw it */
    int idle_low;                     /* fewest idle any checkout of the window left: that
                                         many were spare all window */
    int idle_low_before[DBP_AUTO_SPARE_WINDOWS - 1];   /* the same of the windows before,
                                         latest first; the step trims what all of them spared */
    int limit;                        /* dbpool.budget's allowance; 0 = none */
    bool decided;                     /* last holds a step */
    dbp_resize last;
    dbp_resize log[DBP_AUTO_LOG];     /* a ring: log_start oldest, log_n kept */
    int log_start, log_n;
    unsigned log_lost;
    /* Under nginx, this process's part of the instance's decision (published
     * as shstats gauges): its share of the target, its own burst, and its
     * shares of the decision's busy connections and checkout rate. */
    int share, burst;
    double busy_share, rate_share;
} auto_state;

/* One queued checkout.  Lives on the waiting thread's stack. */
typedef struct waiter {
    dbp_wake wake;
    dbp_slot *slot;         /* handed over by release: ours, SLOT_IN_USE */
    int may_create;         /* a unit of capacity reserved for us in p->total */
    unsigned epoch;         /* ... in this epoch */
    struct waiter *prev, *next;
} waiter;

struct dbp_pool {
    /* mu guards every field below it; never held across I/O. */
    dbp_lock mu;
    int total;              /* connections open or being opened, of this epoch */
    int size;               /* pool_size now: cfg.pool_size, or under pool_size = "auto"
                               the last sizing step's (autosize.c); what size(),
                               status(), overflow() and the timeout sentence say */
    auto_state *autosize;   /* NULL unless pool_size = "auto"; its fields under mu */
    unsigned epoch;         /* bumped by dispose: older connections are retired,
                               no longer counted, closed on return */
    int n_idle;
    dbp_slot *idle_head, *idle_tail;
    waiter *wait_head, *wait_tail;
    int n_waiting;
    int64_t invalidate_ns;  /* connections born before this are discarded */
    unsigned rng;           /* recycle and back-off jitter */
    unsigned gen;           /* fork generation this pool's state belongs to */
    dbp_breaker breaker;
    bool refill_pending;    /* capacity was lost: top idle back up to min_idle */
    bool retired;           /* dbpool.remove: no refill, no sizing step any more */
    dbp_slot *tracked;      /* checkouts traced for leak warnings */
    int64_t next_leak_scan_ns;
    dbp_cap *cap;           /* NULL unless max_total_connections; atomics, no lock */
    int peak_in_use;        /* most connections checked out at once */
    int64_t created_ns;
    int64_t query_timeout_ns;        /* query_timeout; immutable */
    dbp_hist_snapshot health_mark;   /* wait histogram at the last health window */
    uint64_t health_timeouts;        /* timeouts then */

    /* Immutable after dbp_pool_new. */
    dbp_config cfg;
    dbp_conninfo *conninfo; /* cfg.dsn as libpq parsed it, cfg merged in */
    /* Atomics: no lock. */
    dbp_metrics metrics;
};

typedef enum staleness {
    FRESH,
    STALE_INVALIDATED,      /* born before a disconnect, dispose or restart */
    STALE_RECYCLE           /* pool_recycle age or max_queries reached */
} staleness;

/* ==== pool_slots.c: the slot floor ====================================== */

/* Capacity: pool_size + max_overflow, and the host-wide cap. */
int has_capacity_locked(const dbp_pool *p);
/* Reserves capacity for one new connection (p->total and the cap). */
bool reserve_locked(dbp_pool *p);
/* Gives back n units reserved in epoch: the cap's always, p->total's only
 * when epoch is still current (dispose already dropped older ones). */
void give_back_locked(dbp_pool *p, int n, unsigned epoch);
/* Capacity was freed: let the longest waiters open connections of their own. */
void wake_for_capacity_locked(dbp_pool *p);
/* Gives back n units of capacity and wakes waiters for them; the second
 * takes and drops p->mu itself. */
void give_back_and_wake_locked(dbp_pool *p, int n, unsigned epoch);
void give_back_and_wake(dbp_pool *p, int n, unsigned epoch);

/* Queues the caller and sleeps until a slot is handed over (*slot), capacity
 * is reserved for it (*create, in *epoch), or deadline passes (DBP_TIMEOUT,
 * err set). */
DBP_MUSTCHECK dbp_status wait_for_slot_locked(dbp_pool *p, int64_t deadline, dbp_slot **slot,
                                              int *create, unsigned *epoch, dbp_error *err);
/* SQLAlchemy's timeout sentence, the live state in err->detail. */
dbp_status timeout_error_locked(dbp_pool *p, dbp_error *err);
void counts_locked(const dbp_pool *p, dbp_pool_counts *c);

/* A disconnect seen anywhere: connections born before now are replaced. */
void note_lost_locked(dbp_pool *p, int64_t now);

/* Empties the idle list and returns it, linked by next: the slots leave the
 * pool, so their state no longer matters.  p->total is the caller's. */
dbp_slot *idle_take_all_locked(dbp_pool *p);
/* This process is a fork()ed child: resets the pool and returns the
 * inherited idle slots for the caller to forget. */
dbp_slot *after_fork_locked(dbp_pool *p);

/* Frees slots: closing their connections, or (inherited across fork())
 * without a byte on their sockets.  Lists are linked by next. */
void close_slot(dbp_slot *s);
void close_list(dbp_slot *list);
void forget_slot(dbp_slot *s);
void forget_list(dbp_slot *list);

/* ==== pool_connect.c: opening connections =============================== */

/* Opens a connection into s (SLOT_OPENING) for a unit of capacity already
 * reserved.  Asks the breaker first; retries with back-off (none whose wait
 * would end after deadline) unless this is the breaker's probe or once is
 * set.  On DBP_OK s is SLOT_IN_USE; on failure the capacity is given back,
 * s freed and err filled. */
DBP_MUSTCHECK dbp_status open_into(dbp_pool *p, dbp_slot *s, int64_t deadline, bool once,
                                   unsigned *ev, dbp_error *err);
/* For an event loop: asks the breaker for s (SLOT_OPENING, capacity
 * reserved) and leaves the connect to dbp_pool_connect_step: DBP_PENDING.
 * On refusal as open_into. */
DBP_MUSTCHECK dbp_status connect_later(dbp_pool *p, dbp_slot *s, int64_t since,
                                       dbp_error *err);

/* ==== pool.c, for pool_connect.c: an event loop's pre-ping ============== */

/* Reads the answer to s's pre-ping (s->pinging) without waiting: DBP_AGAIN
 * until it came (*want_write as dbp_conn_wants_write); DBP_OK: alive,
 * checked out.  A failed or late ping replaces the connection in place:
 * DBP_PENDING, s reserved for a connect the caller steps on; or, when the
 * ping used the checkout's whole budget, DBP_TIMEOUT (counted, no connect
 * tried), or the breaker's refusal (either way the capacity given back, s
 * freed). */
DBP_MUSTCHECK dbp_status ping_step(dbp_pool *p, dbp_slot *s, bool *want_write, unsigned *ev,
                                   dbp_error *err);
/* The caller gave up waiting for s's pre-ping: the connection is closed as
 * a failed pre-ping, the capacity given back, s freed. */
void ping_abandon(dbp_pool *p, dbp_slot *s);

/* ==== pool_leak.c: leak tracking ======================================== */

/* Takes s (which has a traceback) off p->tracked and frees the traceback. */
void leak_unlink_locked(dbp_pool *p, dbp_slot *s);

/* ==== the hot half of the slot floor ==================================== */

static DBP_HOT void idle_unlink_locked(dbp_pool *p, dbp_slot *s)
{
    if (s->prev) s->prev->next = s->next; else p->idle_head = s->next;
    if (s->next) s->next->prev = s->prev; else p->idle_tail = s->prev;
    s->prev = s->next = NULL;
    p->n_idle--;
}

/* The one door for state changes: keeps the idle list and n_idle in step
 * with the states and refuses impossible moves. */
static DBP_HOT void slot_set_state_locked(dbp_pool *p, dbp_slot *s, slot_state to)
{
    if (s->state == to) {
        fprintf(stderr, "dbpool: impossible slot transition to state %d\n", to);
        abort();
    }
    if (s->state == SLOT_IDLE)
        idle_unlink_locked(p, s);
    if (to == SLOT_IDLE) {
        if (s->state != SLOT_IN_USE)
            abort();
        s->prev = p->idle_tail;
        s->next = NULL;
        if (p->idle_tail) p->idle_tail->next = s; else p->idle_head = s;
        p->idle_tail = s;
        p->n_idle++;
    }
    s->state = to;
}

/* FIFO takes the connection returned longest ago, LIFO the latest. */
static DBP_HOT dbp_slot *idle_pop_locked(dbp_pool *p)
{
    dbp_slot *s = p->cfg.use_lifo ? p->idle_tail : p->idle_head;
    if (s != NULL)
        slot_set_state_locked(p, s, SLOT_IN_USE);
    return s;
}

/* Returns are kept up to cfg.pool_size idle: under pool_size = "auto" that
 * is auto.max, or dbpool.budget's allowance when that is lower, and the
 * sizing step trims idle connections above the size gradually instead
 * (docs/decisions.md). */
static inline int idle_full_locked(const dbp_pool *p)
{
    int keep = p->cfg.pool_size;

    if (p->autosize != NULL && p->autosize->limit > 0 && p->autosize->limit < keep)
        keep = p->autosize->limit;
    return keep > 0 && p->n_idle >= keep;
}

static inline void waiter_remove_locked(dbp_pool *p, waiter *w)
{
    if (w->prev) w->prev->next = w->next; else p->wait_head = w->next;
    if (w->next) w->next->prev = w->prev; else p->wait_tail = w->prev;
    w->prev = w->next = NULL;
    p->n_waiting--;
}

/* Puts a healthy in-use slot back: to the first waiter, else idle.  Returns
 * false when it must be closed instead: the idle set is full, or
 * keep_no_spare (another process waits for the host-wide cap) and one
 * connection already idles here. */
static DBP_HOT bool place_locked(dbp_pool *p, dbp_slot *s, bool keep_no_spare)
{
    waiter *w = p->wait_head;

    if (w != NULL) {                      /* hand-off: no barging */
        waiter_remove_locked(p, w);
        w->slot = s;
        dbp_wake_set(&w->wake);
        return true;
    }
    if (idle_full_locked(p) || (keep_no_spare && p->n_idle >= 1))
        return false;
    slot_set_state_locked(p, s, SLOT_IDLE);
    return true;
}

/* Should this connection be replaced rather than handed out? */
static DBP_HOT staleness slot_stale_locked(const dbp_pool *p, const dbp_slot *s, int64_t now)
{
    if (s->born_ns < p->invalidate_ns)
        return STALE_INVALIDATED;
    if (now > s->expires_ns)
        return STALE_RECYCLE;
    if (p->cfg.max_queries > 0 && s->queries >= p->cfg.max_queries)
        return STALE_RECYCLE;
    return FRESH;
}

/* The checkout is complete: count it (the wait histogram's count is the
 * checkout count). */
static DBP_HOT void note_checkout_locked(dbp_pool *p, dbp_slot *s, int64_t start, int64_t now)
{
    int in_use = p->total - p->n_idle;

    if (now == start)
        dbp_hist_add_zero_locked(&p->metrics, DBP_H_WAIT);
    else
        dbp_hist_add_locked(&p->metrics, DBP_H_WAIT, now - start);
    if (in_use > p->peak_in_use)
        p->peak_in_use = in_use;
    if (p->autosize != NULL) {            /* the p99 burst and the spare of the next step */
        p->autosize->in_use[in_use < DBP_AUTO_BUCKETS ? in_use : DBP_AUTO_BUCKETS - 1]++;
        if (p->n_idle < p->autosize->idle_low)
            p->autosize->idle_low = p->n_idle;
    }
    s->checkout_ns = now;
    s->query_timeout_ns = p->query_timeout_ns;   /* conn:set_query_timeout lasts one checkout */
}

/* Another process could not open a connection for the cap a moment ago:
 * then this one keeps no idle spare (place_locked). */
static DBP_HOT bool cap_wanted_elsewhere(const dbp_pool *p, int64_t now)
{
    return p->cap != NULL && dbp_cap_wanted_elsewhere(p->cap, now);
}

/* Stale idle connections count as missing, so the pending flag alone
 * decides for min_idle; dbp_pool_refill sorts them out.  An auto pool
 * below its size wants growing. */
static DBP_HOT bool wants_refill_locked(const dbp_pool *p)
{
    return (p->refill_pending && p->cfg.min_idle > 0) ||
           (p->autosize != NULL && p->total < p->size && p->wait_head == NULL);
}

/* Does anything refill this pool ahead of demand (min_idle, "auto")? */
static inline bool refills(const dbp_pool *p)
{
    return p->cfg.min_idle > 0 || p->autosize != NULL;
}

/* Takes s off the leak tracker, if it is on it. */
static DBP_HOT void untrack_locked(dbp_pool *p, dbp_slot *s)
{
    if (s->trace != NULL)
        leak_unlink_locked(p, s);
}

/* Takes p->mu, first noticing a fork: *orphans gets the inherited idle
 * slots, to be forgotten by unlock_pool. */
static DBP_HOT void lock_pool(dbp_pool *p, dbp_slot **orphans)
{
    dbp_lock_acquire(&p->mu);
    *orphans = NULL;
    if (p->gen != dbp_fork_generation())
        *orphans = after_fork_locked(p);
}

/* Drops p->mu, then forgets what lock_pool found inherited. */
static DBP_HOT void unlock_pool(dbp_pool *p, dbp_slot *orphans)
{
    dbp_lock_release(&p->mu);
    if (orphans != NULL)
        forget_list(orphans);
}

#endif

/* pool.c: QueuePool.  One lock per pool (lock.h); no I/O while it is held: decide
 * under the lock, connect/reset/ping/close outside it (puddle's rule).
 *
 * Recovery lives here too: pre-ping and pool-wide invalidation at checkout,
 * connect retries and the circuit breaker (breaker.h), refilling min_idle,
 * forgetting connections inherited across fork() (fork.h), and the
 * bookkeeping for leak warnings (the Lua binding supplies the tracebacks). */
#include "pool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "breaker.h"
#include "cap.h"
#include "fork.h"
#include "lock.h"

/* Where a slot lives.  A slot is always counted in p->total. */
typedef enum slot_state {
    SLOT_OPENING,   /* reserved by one checkout, on no list, conn being opened */
    SLOT_IDLE,      /* on p->idle_head..idle_tail, oldest return first */
    SLOT_IN_USE     /* owned by one checkout, on no list */
} slot_state;

struct dbp_slot {
    dbp_conn *conn;
    slot_state state;
    unsigned gen;           /* fork generation the connection was opened in */
    int64_t born_ns;        /* when the connection finished opening */
    int64_t expires_ns;     /* recycle deadline (jitter fixed at birth); INT64_MAX = never */
    int64_t last_used_ns;   /* last return: for pre-ping bypass */
    int queries;            /* statements run, for max_queries */
    dbp_slot *prev, *next;  /* idle list links while SLOT_IDLE */
    int64_t checkout_ns;    /* when the current checkout got it: hold time;
                               while connecting for an event loop: since when it waits */
    int64_t connect_ns;     /* event-loop connect: when it started */
    bool probe;             /* event-loop connect: the breaker's half-open probe */
    /* Leak tracking (leak_threshold > 0), set by dbp_pool_track. */
    char *trace;            /* owned; non-NULL exactly while on p->tracked */
    dbp_slot *leak_prev, *leak_next;   /* p->tracked links */
    bool leak_reported;
};

/* One queued checkout.  lives on the waiting thread's stack. */
typedef struct waiter {
    dbp_wake wake;
    dbp_slot *slot;         /* handed over by release: ours, SLOT_IN_USE */
    int may_create;         /* a unit of capacity reserved for us in p->total */
    struct waiter *prev, *next;
} waiter;

struct dbp_pool {
    /* mu guards every field below it; never held across I/O. */
    dbp_lock mu;
    int total;              /* connections open or being opened */
    int n_idle;
    dbp_slot *idle_head, *idle_tail;
    waiter *wait_head, *wait_tail;
    int n_waiting;
    int64_t invalidate_ns;  /* connections born before this are discarded */
    unsigned rng;           /* recycle and back-off jitter */
    unsigned gen;           /* fork generation this pool's state belongs to */
    dbp_breaker breaker;
    bool refill_pending;    /* capacity was lost: top idle back up to min_idle */
    dbp_slot *tracked;      /* checkouts traced for leak warnings */
    int64_t next_leak_scan_ns;
    dbp_cap *cap;           /* NULL unless max_total_connections */
    int peak_in_use;        /* most connections checked out at once */
    int64_t created_ns;
    dbp_hist_snapshot health_mark;   /* wait histogram at the last health window */
    uint64_t health_timeouts;        /* timeouts then */

    /* Immutable after dbp_pool_new. */
    dbp_config cfg;
    /* Atomics: no lock. */
    dbp_metrics metrics;
};

/* Small helpers of the checkout and return paths, inlined into them:
 * their calls were a sixth of a C checkout + checkin (callgrind). */
#define DBP_HOT inline __attribute__((always_inline))

/* ---- locked helpers (caller holds p->mu) ------------------------------ */

static void idle_unlink_locked(dbp_pool *p, dbp_slot *s)
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
static dbp_slot *idle_pop_locked(dbp_pool *p)
{
    dbp_slot *s = p->cfg.use_lifo ? p->idle_tail : p->idle_head;
    if (s != NULL)
        slot_set_state_locked(p, s, SLOT_IN_USE);
    return s;
}

static int has_capacity_locked(const dbp_pool *p)
{
    if (p->cfg.pool_size == 0 || p->cfg.max_overflow < 0)
        return 1;
    return p->total < p->cfg.pool_size + p->cfg.max_overflow;
}

/* Another process could not open a connection for the cap a moment ago:
 * then this one keeps no idle spare (place_locked). */
static bool cap_wanted_elsewhere(const dbp_pool *p, int64_t now)
{
    return p->cap != NULL && dbp_cap_wanted_elsewhere(p->cap, now);
}

/* Reserves capacity for one new connection: p->total and the cap. */
static bool reserve_locked(dbp_pool *p)
{
    if (!has_capacity_locked(p) || (p->cap != NULL && !dbp_cap_take(p->cap)))
        return false;
    p->total++;
    return true;
}

/* n connections of this process closed (or never opened). */
static void give_back_locked(dbp_pool *p, int n)
{
    p->total -= n;
    if (p->cap != NULL)
        dbp_cap_give_back(p->cap, n);
}

static int idle_full_locked(const dbp_pool *p)
{
    return p->cfg.pool_size > 0 && p->n_idle >= p->cfg.pool_size;
}

static void waiter_remove_locked(dbp_pool *p, waiter *w)
{
    if (w->prev) w->prev->next = w->next; else p->wait_head = w->next;
    if (w->next) w->next->prev = w->prev; else p->wait_tail = w->prev;
    w->prev = w->next = NULL;
    p->n_waiting--;
}

/* Capacity was freed: let the longest waiter open a connection of its own. */
static void wake_for_capacity_locked(dbp_pool *p)
{
    while (p->wait_head != NULL && reserve_locked(p)) {
        waiter *w = p->wait_head;
        waiter_remove_locked(p, w);
        w->may_create = 1;
        dbp_wake_set(&w->wake);
    }
}

typedef enum staleness {
    FRESH,
    STALE_INVALIDATED,      /* born before a disconnect, dispose or restart */
    STALE_RECYCLE           /* pool_recycle age or max_queries reached */
} staleness;

/* Should this connection be replaced rather than handed out? */
static staleness slot_stale_locked(const dbp_pool *p, const dbp_slot *s, int64_t now)
{
    if (s->born_ns < p->invalidate_ns)
        return STALE_INVALIDATED;
    if (now > s->expires_ns)
        return STALE_RECYCLE;
    if (p->cfg.max_queries > 0 && s->queries >= p->cfg.max_queries)
        return STALE_RECYCLE;
    return FRESH;
}

static double uniform_locked(dbp_pool *p)
{
    return (double)rand_r(&p->rng) / ((double)RAND_MAX + 1.0);
}

/* A disconnect seen anywhere: every connection born before now is replaced
 * at its next checkout (SQLAlchemy's _invalidate_time). */
static void note_lost_locked(dbp_pool *p, int64_t now)
{
    if (now > p->invalidate_ns)
        p->invalidate_ns = now;
    p->refill_pending = true;
}

/* Takes s off the tracked list and drops its traceback: a slot has a
 * traceback exactly while it is on that list. */
static void untrack_locked(dbp_pool *p, dbp_slot *s)
{
    if (s->trace == NULL)
        return;
    if (s->leak_prev) s->leak_prev->leak_next = s->leak_next; else p->tracked = s->leak_next;
    if (s->leak_next) s->leak_next->leak_prev = s->leak_prev;
    s->leak_prev = s->leak_next = NULL;
    free(s->trace);
    s->trace = NULL;
}

/* This process is a fork()ed child of the one the pool's state belongs to.
 * Every connection open now belongs to the parent: the idle ones are
 * returned for the caller to forget (no byte sent on them), checked-out ones
 * are forgotten when released (their gen differs).  Threads other than the
 * forking one do not exist here, so their waiters and reservations go. */
static dbp_slot *after_fork_locked(dbp_pool *p)
{
    dbp_slot *orphans = p->idle_head;

    p->idle_head = p->idle_tail = NULL;
    p->n_idle = 0;
    p->total = 0;
    p->wait_head = p->wait_tail = NULL;
    p->n_waiting = 0;
    p->tracked = NULL;       /* their traces are freed with the slots on release */
    p->breaker.probing = false;
    p->refill_pending = true;
    p->gen = dbp_fork_generation();
    return orphans;
}

/* Frees slots inherited across fork() without touching their sockets. */
static void forget_list(dbp_slot *list)
{
    while (list != NULL) {
        dbp_slot *next = list->next;
        dbp_conn_forget(list->conn);
        free(list->trace);
        free(list);
        list = next;
    }
}

/* Locks p->mu, first noticing a fork.  *orphans gets what to forget. */
static DBP_HOT void lock_pool(dbp_pool *p, dbp_slot **orphans)
{
    dbp_lock_acquire(&p->mu);
    *orphans = NULL;
    if (p->gen != dbp_fork_generation())
        *orphans = after_fork_locked(p);
}

static int64_t lifetime_end_locked(dbp_pool *p, int64_t born)
{
    double life = p->cfg.pool_recycle;
    if (life < 0)
        return INT64_MAX;
    if (p->cfg.recycle_jitter > 0)
        life -= life * p->cfg.recycle_jitter * uniform_locked(p);   /* shorter, never longer */
    return born + dbp_sec_to_ns(life);
}

static void counts_locked(const dbp_pool *p, dbp_pool_counts *c)
{
    c->size = p->cfg.pool_size;
    c->checkedin = p->n_idle;
    c->total = p->total;
    c->checkedout = p->total - p->n_idle;
    c->overflow = p->total - p->cfg.pool_size;
    c->waiting = p->n_waiting;
}

/* ---- lifecycle -------------------------------------------------------- */

dbp_status dbp_pool_new(const dbp_config *cfg, dbp_pool **out, dbp_error *err)
{
    dbp_pool *p = calloc(1, sizeof *p);

    if (p == NULL || dbp_config_copy(&p->cfg, cfg) != DBP_OK) {
        free(p);
        return dbp_error_set(err, DBP_NOMEM, "out of memory creating pool");
    }
    dbp_lock_init(&p->mu);
    dbp_metrics_init(&p->metrics);
    dbp_breaker_init(&p->breaker, cfg->breaker_failures, cfg->breaker_cooldown);
    p->rng = (unsigned)dbp_now_ns() ^ (unsigned)(uintptr_t)p;
    p->invalidate_ns = 0;
    p->gen = dbp_fork_generation();
    p->next_leak_scan_ns = INT64_MAX;
    p->created_ns = dbp_now_ns();
    if (cfg->max_total_connections > 0 &&
        dbp_cap_new(cfg->max_total_connections, &p->cap) != DBP_OK) {
        dbp_config_free(&p->cfg);
        free(p);
        return dbp_error_set(err, DBP_NOMEM, "cannot map the max_total_connections counter");
    }
    dbp_fork_register(&p->mu);
    *out = p;
    return DBP_OK;
}

static void close_slot(dbp_slot *s)
{
    dbp_conn_close(s->conn);
    free(s->trace);
    free(s);
}

void dbp_pool_dispose(dbp_pool *p)
{
    dbp_slot *list, *orphans;

    lock_pool(p, &orphans);
    list = p->idle_head;
    give_back_locked(p, p->n_idle);
    p->idle_head = p->idle_tail = NULL;
    p->n_idle = 0;
    p->invalidate_ns = dbp_now_ns();   /* checked-out ones close on return */
    wake_for_capacity_locked(p);
    dbp_lock_release(&p->mu);
    forget_list(orphans);
    while (list != NULL) {
        dbp_slot *next = list->next;
        close_slot(list);
        list = next;
    }
}

void dbp_pool_free(dbp_pool *p)
{
    if (p == NULL)
        return;
    dbp_pool_dispose(p);
    dbp_fork_unregister(&p->mu);
    dbp_cap_free(p->cap);
    dbp_config_free(&p->cfg);
    free(p);
}

/* ---- checkout --------------------------------------------------------- */

static dbp_status timeout_error_locked(dbp_pool *p, dbp_error *err)
{
    dbp_pool_counts c;

    counts_locked(p, &c);
    dbp_error_set(err, DBP_TIMEOUT,
                  "QueuePool limit of size %d overflow %d reached, connection timed out, "
                  "timeout %.2f",
                  c.size, c.overflow, p->cfg.pool_timeout);
    snprintf(err->detail, sizeof err->detail, "total=%d, in_use=%d, idle=%d, waiting=%d",
             c.total, c.checkedout, c.checkedin, c.waiting);
    return DBP_TIMEOUT;
}

/* Queues the caller and sleeps until a slot is handed over, capacity is
 * reserved for it, or the deadline passes.  Caller holds p->mu. */
static dbp_status wait_locked(dbp_pool *p, int64_t deadline, dbp_slot **slot,
                              int *create, dbp_error *err)
{
    waiter w;

    memset(&w, 0, sizeof w);
    dbp_wake_init(&w.wake);
    w.prev = p->wait_tail;
    if (p->wait_tail) p->wait_tail->next = &w; else p->wait_head = &w;
    p->wait_tail = &w;
    p->n_waiting++;
    dbp_metrics_inc_locked(&p->metrics, DBP_M_WAITS);

    while (w.slot == NULL && !w.may_create && dbp_now_ns() < deadline)
        dbp_wake_wait(&w.wake, &p->mu, deadline);
    if (w.slot == NULL && !w.may_create) {
        waiter_remove_locked(p, &w);   /* still queued: nobody served us */
        dbp_metrics_inc_locked(&p->metrics, DBP_M_TIMEOUTS);
        return timeout_error_locked(p, err);
    }
    *slot = w.slot;
    *create = w.may_create;
    return DBP_OK;
}

/* Gives back one unit of capacity reserved for a connect that did not
 * happen or failed. */
static void unreserve(dbp_pool *p)
{
    dbp_lock_acquire(&p->mu);
    give_back_locked(p, 1);
    wake_for_capacity_locked(p);
    dbp_lock_release(&p->mu);
}

static dbp_status circuit_open_error_locked(dbp_pool *p, int64_t now, dbp_error *err)
{
    const dbp_breaker *b = &p->breaker;

    dbp_error_set(err, DBP_CIRCUIT_OPEN,
                  "circuit breaker open after %d failed connects in a row; next attempt in "
                  "%.2f s; last error: %s",
                  b->failures, dbp_breaker_retry_in(b, now), b->last_error);
    dbp_copy_text(err->detail, sizeof err->detail, b->last_error);
    return DBP_CIRCUIT_OPEN;
}

static void sleep_ns(int64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / DBP_NS_PER_SEC),
                          .tv_nsec = (long)(ns % DBP_NS_PER_SEC)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Opens a connection into s for a unit of capacity already reserved in
 * p->total.  Asks the breaker first; retries with back-off (at most
 * retry.attempts tries, none whose back-off would end after deadline) unless
 * this is the breaker's single probe or `once` is set.  On failure the
 * capacity is given back and s freed. */
/* Asks the breaker whether a connect may be made now.  On refusal, gives
 * the reserved capacity back, frees s and fills err (circuit_open). */
static dbp_status admit_connect(dbp_pool *p, dbp_slot *s, dbp_admit *admit, dbp_error *err)
{
    int64_t now = dbp_now_ns();
    dbp_status st;

    dbp_lock_acquire(&p->mu);
    *admit = dbp_breaker_admit(&p->breaker, now);
    if (*admit != DBP_REFUSE) {
        dbp_lock_release(&p->mu);
        return DBP_OK;
    }
    st = circuit_open_error_locked(p, now, err);
    give_back_locked(p, 1);
    wake_for_capacity_locked(p);
    dbp_lock_release(&p->mu);
    dbp_metrics_inc(&p->metrics, DBP_M_CIRCUIT_OPEN);
    free(s);
    return st;
}

/* s's connect succeeded: it is a checked-out connection now.  Caller holds
 * p->mu; counts CONNECTS after unlocking. */
static void opened_locked(dbp_pool *p, dbp_slot *s, int64_t started, int64_t now, unsigned *ev)
{
    if (dbp_breaker_is_open(&p->breaker))
        *ev |= DBP_EV_BREAKER_CLOSE;
    dbp_breaker_success(&p->breaker);
    dbp_hist_add_locked(&p->metrics, DBP_H_CONNECT, now - started);
    *ev |= DBP_EV_CONNECT;
    s->gen = p->gen;
    s->born_ns = now;
    s->last_used_ns = now;
    s->expires_ns = lifetime_end_locked(p, now);
    s->queries = 0;
    s->state = SLOT_IN_USE;
}

/* A connect attempt failed with st: the breaker counts the server's
 * failures (not out of memory).  Returns true when that opened it.  Caller
 * holds p->mu. */
static bool connect_failed_locked(dbp_pool *p, dbp_status st, bool probe, int64_t now,
                                  unsigned *ev, const dbp_error *err)
{
    if (st != DBP_CONNECT) {
        if (probe)
            dbp_breaker_cancel_probe(&p->breaker);
        return false;
    }
    if (!dbp_breaker_failure(&p->breaker, now, err->message))
        return false;
    *ev |= DBP_EV_BREAKER_OPEN;
    return true;
}

static dbp_status open_into(dbp_pool *p, dbp_slot *s, int64_t deadline, bool once,
                            unsigned *ev, dbp_error *err)
{
    int64_t now;
    dbp_admit admit;
    dbp_status st = DBP_CONNECT;
    int attempts;

    if ((st = admit_connect(p, s, &admit, err)) != DBP_OK)
        return st;
    now = dbp_now_ns();

    attempts = (admit == DBP_ADMIT_PROBE || once) ? 1 : p->cfg.retry_attempts;
    for (int attempt = 1; attempt <= attempts; attempt++) {
        bool opened;
        int64_t delay, started = now;

        st = dbp_conn_open(&p->cfg, p->cfg.dsn, &s->conn, err);
        now = dbp_now_ns();
        dbp_lock_acquire(&p->mu);
        if (st == DBP_OK) {
            opened_locked(p, s, started, now, ev);
            dbp_lock_release(&p->mu);
            dbp_metrics_inc(&p->metrics, DBP_M_CONNECTS);
            return DBP_OK;
        }
        opened = connect_failed_locked(p, st, admit == DBP_ADMIT_PROBE, now, ev, err);
        if (st != DBP_CONNECT) {              /* out of memory: not the server's fault */
            dbp_lock_release(&p->mu);
            break;
        }
        delay = dbp_backoff_ns(attempt, p->cfg.retry_base, p->cfg.retry_max, uniform_locked(p));
        dbp_lock_release(&p->mu);
        dbp_metrics_inc(&p->metrics, DBP_M_CONNECT_FAILURES);
        if (opened || attempt == attempts || now + delay > deadline)
            break;
        sleep_ns(delay);
    }
    unreserve(p);
    free(s);
    return st;
}

/* Is this connection fit to hand out?  Stale ones (invalidated, too old,
 * too many queries) are replaced without a look; with pool_pre_ping the
 * socket is checked (no round trip) and, outside the pre_ping_bypass window
 * since its last use, pinged (one round trip). */
static bool fit_for_checkout(dbp_pool *p, dbp_slot *s, staleness stale, unsigned *ev)
{
    int64_t now;
    bool alive;
    dbp_error err;

    if (stale != FRESH) {
        bool recycle = stale == STALE_RECYCLE;
        dbp_metrics_inc(&p->metrics, recycle ? DBP_M_RECYCLES : DBP_M_INVALIDATIONS);
        *ev |= recycle ? DBP_EV_RECYCLE : DBP_EV_INVALIDATE;
        return false;
    }
    if (!p->cfg.pool_pre_ping)
        return true;
    now = dbp_now_ns();
    alive = dbp_conn_alive_passive(s->conn);
    if (alive && now - s->last_used_ns >= dbp_sec_to_ns(p->cfg.pre_ping_bypass))
        alive = dbp_conn_ping(s->conn, &err) == DBP_OK;
    if (alive)
        return true;
    dbp_metrics_inc(&p->metrics, DBP_M_PREPING_FAILURES);
    dbp_metrics_inc(&p->metrics, DBP_M_INVALIDATIONS);
    *ev |= DBP_EV_INVALIDATE;
    if (dbp_conn_lost(s->conn)) {
        dbp_lock_acquire(&p->mu);
        note_lost_locked(p, dbp_now_ns());
        dbp_lock_release(&p->mu);
    }
    return false;
}

/* The checkout is complete: count it (the wait histogram's count is the
 * checkout count).  Caller holds p->mu. */
static DBP_HOT void note_checkout_locked(dbp_pool *p, dbp_slot *s, int64_t start, int64_t now)
{
    int in_use = p->total - p->n_idle;

    if (now == start)
        dbp_hist_add_zero_locked(&p->metrics, DBP_H_WAIT);
    else
        dbp_hist_add_locked(&p->metrics, DBP_H_WAIT, now - start);
    if (in_use > p->peak_in_use)
        p->peak_in_use = in_use;
    s->checkout_ns = now;
}

static dbp_status checkout(dbp_pool *p, bool block, bool defer, int64_t since, dbp_slot **out,
                           unsigned *ev, dbp_error *err)
{
    int64_t now = dbp_now_ns(), start = since > 0 ? since : now;
    dbp_slot *s = NULL, *orphans;
    int create = 0;
    staleness stale = FRESH;
    dbp_status st = DBP_OK;

    lock_pool(p, &orphans);
    if (p->wait_head == NULL) {          /* nobody queued ahead of us */
        s = idle_pop_locked(p);
        if (s == NULL && reserve_locked(p))
            create = 1;
    }
    if (s != NULL) {
        stale = slot_stale_locked(p, s, now);
        if (stale == FRESH && !p->cfg.pool_pre_ping && orphans == NULL) {
            /* The fast path: an idle connection, nothing to check. */
            note_checkout_locked(p, s, start, now);
            dbp_lock_release(&p->mu);
            *out = s;
            return DBP_OK;
        }
    } else if (!create) {
        if (!block) {
            dbp_lock_release(&p->mu);
            forget_list(orphans);
            return dbp_error_set(err, DBP_AGAIN, "no connection available without waiting");
        }
        *ev |= DBP_EV_WAIT;
        st = wait_locked(p, now + dbp_sec_to_ns(p->cfg.pool_timeout), &s, &create, err);
        if (s != NULL)
            stale = slot_stale_locked(p, s, dbp_now_ns());
    }
    dbp_lock_release(&p->mu);
    forget_list(orphans);
    if (st != DBP_OK)
        return st;

    if (s != NULL && !fit_for_checkout(p, s, stale, ev)) {
        dbp_conn_close(s->conn);          /* replace in place: capacity unchanged */
        s->conn = NULL;
        create = 1;
    }
    if (create) {
        if (s == NULL && (s = calloc(1, sizeof *s)) == NULL) {
            unreserve(p);
            return dbp_error_set(err, DBP_NOMEM, "out of memory opening a connection");
        }
        s->state = SLOT_OPENING;
        if (defer) {                      /* the event loop connects it: dbp_pool_connect_step */
            dbp_admit admit;
            if ((st = admit_connect(p, s, &admit, err)) != DBP_OK)
                return st;
            s->conn = NULL;
            s->probe = admit == DBP_ADMIT_PROBE;
            s->checkout_ns = start;
            *out = s;
            return DBP_PENDING;
        }
        st = open_into(p, s, now + dbp_sec_to_ns(p->cfg.pool_timeout), false, ev, err);
        if (st != DBP_OK)
            return st;
    }
    dbp_lock_acquire(&p->mu);
    note_checkout_locked(p, s, start, dbp_now_ns());
    dbp_lock_release(&p->mu);
    *out = s;
    return DBP_OK;
}

dbp_status dbp_pool_checkout_ev(dbp_pool *p, bool block, int64_t since_ns, dbp_slot **out,
                                unsigned *events, dbp_error *err)
{
    unsigned ev = 0;
    dbp_status st = checkout(p, block, false, since_ns, out, &ev, err);

    if (events != NULL)
        *events = ev;
    return st;
}

dbp_status dbp_pool_checkout(dbp_pool *p, dbp_slot **out, dbp_error *err)
{
    return dbp_pool_checkout_ev(p, true, 0, out, NULL, err);
}

dbp_status dbp_pool_try_checkout(dbp_pool *p, dbp_slot **out, dbp_error *err)
{
    return dbp_pool_checkout_ev(p, false, 0, out, NULL, err);
}

dbp_status dbp_pool_checkout_async(dbp_pool *p, int64_t since_ns, dbp_slot **out,
                                  unsigned *events, dbp_error *err)
{
    unsigned ev = 0;
    dbp_status st = checkout(p, false, true, since_ns, out, &ev, err);

    if (events != NULL)
        *events = ev;
    return st;
}

/* The event loop's connect of s ended without a connection. */
static dbp_status async_connect_failed(dbp_pool *p, dbp_slot *s, dbp_status st, unsigned *ev,
                                       dbp_error *err)
{
    bool connect_failure = st == DBP_CONNECT;

    dbp_conn_close(s->conn);
    dbp_lock_acquire(&p->mu);
    untrack_locked(p, s);                 /* leak_threshold traced it at checkout */
    connect_failed_locked(p, st, s->probe, dbp_now_ns(), ev, err);
    give_back_locked(p, 1);
    wake_for_capacity_locked(p);
    dbp_lock_release(&p->mu);
    if (connect_failure)
        dbp_metrics_inc(&p->metrics, DBP_M_CONNECT_FAILURES);
    free(s);
    return st;
}

dbp_status dbp_pool_connect_step(dbp_pool *p, dbp_slot *s, bool *want_write, unsigned *events,
                                 dbp_error *err)
{
    unsigned ev = 0;
    dbp_status st = DBP_OK;
    int64_t now;

    if (s->conn == NULL) {
        s->connect_ns = dbp_now_ns();
        st = dbp_conn_start(&p->cfg, p->cfg.dsn, &s->conn, err);
    }
    if (st == DBP_OK)
        st = dbp_conn_connect_step(s->conn, p->cfg.dsn, want_write, err);
    if (st == DBP_AGAIN)
        return DBP_AGAIN;
    if (st != DBP_OK) {
        st = async_connect_failed(p, s, st, &ev, err);
    } else {
        now = dbp_now_ns();
        dbp_lock_acquire(&p->mu);
        opened_locked(p, s, s->connect_ns, now, &ev);
        note_checkout_locked(p, s, s->checkout_ns, now);
        dbp_lock_release(&p->mu);
        dbp_metrics_inc(&p->metrics, DBP_M_CONNECTS);
    }
    if (events != NULL)
        *events = ev;
    return st;
}

void dbp_pool_connect_abandon(dbp_pool *p, dbp_slot *s, const char *why)
{
    dbp_error err;
    unsigned ev = 0;

    dbp_error_set(&err, DBP_CONNECT, "could not connect: %s", why);
    (void)async_connect_failed(p, s, DBP_CONNECT, &ev, &err);
}

void dbp_pool_note_wait(dbp_pool *p)
{
    dbp_lock_acquire(&p->mu);
    dbp_metrics_inc_locked(&p->metrics, DBP_M_WAITS);
    dbp_lock_release(&p->mu);
}

dbp_status dbp_pool_timed_out(dbp_pool *p, dbp_error *err)
{
    dbp_status st;

    dbp_lock_acquire(&p->mu);
    dbp_metrics_inc_locked(&p->metrics, DBP_M_TIMEOUTS);
    st = timeout_error_locked(p, err);
    dbp_lock_release(&p->mu);
    return st;
}

/* ---- return ----------------------------------------------------------- */

/* reset_on_return, only when a transaction is open: an idle return costs no
 * round trip.  Returns nonzero when the connection must be discarded. */
static DBP_HOT int reset_for_return(dbp_pool *p, dbp_slot *s)
{
    dbp_error err;

    if (dbp_conn_clean(s->conn))          /* the usual return */
        return 0;
    if (dbp_conn_broken(s->conn))
        return 1;
    switch (dbp_conn_txn(s->conn)) {
    case DBP_TXN_IDLE:
        return 0;
    case DBP_TXN_OPEN:
        if (dbp_conn_reset(s->conn, (dbp_reset)p->cfg.reset_on_return, &err) != DBP_OK)
            return 1;
        return dbp_conn_broken(s->conn);
    case DBP_TXN_BROKEN:
        break;
    }
    return 1;
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

/* At a return: the failure is already counted (connect_failures, breaker)
 * and the caller of release has no use for it. */
static void refill_best_effort(dbp_pool *p)
{
    dbp_error err;

    if (dbp_pool_refill(p, &err) != DBP_OK)
        return;
}

/* Stale idle connections count as missing, so the pending flag alone
 * decides; dbp_pool_refill sorts them out. */
static bool wants_refill_locked(const dbp_pool *p)
{
    return p->refill_pending && p->cfg.min_idle > 0;
}

unsigned dbp_pool_release(dbp_pool *p, dbp_slot *s)
{
    int broken = reset_for_return(p, s);
    int64_t now = dbp_now_ns();
    dbp_slot *orphans;
    bool refill;

    lock_pool(p, &orphans);
    if (s->gen != p->gen) {               /* opened by the parent process */
        dbp_lock_release(&p->mu);
        forget_list(orphans);
        s->next = NULL;
        forget_list(s);
        return DBP_EV_CLOSE;
    }
    untrack_locked(p, s);
    dbp_hist_add_locked(&p->metrics, DBP_H_HOLD, now - s->checkout_ns);
    s->last_used_ns = now;
    if (broken && dbp_conn_lost(s->conn))
        note_lost_locked(p, now);
    if (!broken && s->born_ns >= p->invalidate_ns && place_locked(p, s, cap_wanted_elsewhere(p, now))) {
        refill = wants_refill_locked(p);
        dbp_lock_release(&p->mu);
        forget_list(orphans);
        if (refill)
            refill_best_effort(p);
        return 0;
    }
    give_back_locked(p, 1);
    if (broken || s->born_ns < p->invalidate_ns)
        p->refill_pending = true;
    wake_for_capacity_locked(p);
    refill = wants_refill_locked(p);
    dbp_lock_release(&p->mu);
    forget_list(orphans);
    if (broken)
        dbp_metrics_inc(&p->metrics, DBP_M_INVALIDATIONS);
    close_slot(s);
    if (refill)
        refill_best_effort(p);
    return DBP_EV_CLOSE | (broken ? DBP_EV_INVALIDATE : 0);
}

void dbp_pool_invalidate(dbp_pool *p, dbp_slot *s)
{
    dbp_slot *orphans;

    lock_pool(p, &orphans);
    if (s->gen != p->gen) {
        dbp_lock_release(&p->mu);
        forget_list(orphans);
        s->next = NULL;
        forget_list(s);
        return;
    }
    untrack_locked(p, s);
    if (dbp_conn_lost(s->conn))
        note_lost_locked(p, dbp_now_ns());
    give_back_locked(p, 1);
    p->refill_pending = true;
    wake_for_capacity_locked(p);
    dbp_lock_release(&p->mu);
    forget_list(orphans);
    dbp_metrics_inc(&p->metrics, DBP_M_INVALIDATIONS);
    close_slot(s);
}

void dbp_pool_note_failure(dbp_pool *p, dbp_slot *s)
{
    if (!dbp_conn_lost(s->conn))
        return;
    dbp_lock_acquire(&p->mu);
    note_lost_locked(p, dbp_now_ns());
    dbp_lock_release(&p->mu);
}

/* ---- min_idle --------------------------------------------------------- */

/* Opening for min_idle never grows the pool into overflow, never competes
 * with a queued checkout, and never waits: one attempt per connection, and
 * the first failure ends the round (the breaker counts it). */
static bool refill_more_locked(const dbp_pool *p)
{
    int keep = p->cfg.pool_size > 0 ? p->cfg.pool_size : p->cfg.min_idle;
    return p->n_idle < p->cfg.min_idle && p->wait_head == NULL && p->total < keep &&
           has_capacity_locked(p);
}

dbp_status dbp_pool_refill(dbp_pool *p, dbp_error *err)
{
    dbp_slot *orphans, *stale = NULL, *s, *next;
    int64_t now = dbp_now_ns();
    int n_invalidated = 0, n_recycled = 0;
    unsigned ev = 0;
    dbp_status st = DBP_OK;

    if (p->cfg.min_idle <= 0)
        return DBP_OK;
    /* Replace idle connections that a checkout would refuse anyway. */
    lock_pool(p, &orphans);
    p->refill_pending = false;
    for (s = p->idle_head; s != NULL; s = next) {
        staleness why = slot_stale_locked(p, s, now);
        next = s->next;
        if (why == FRESH)
            continue;
        slot_set_state_locked(p, s, SLOT_IN_USE);
        give_back_locked(p, 1);
        s->next = stale;
        stale = s;
        if (why == STALE_RECYCLE) n_recycled++; else n_invalidated++;
    }
    dbp_lock_release(&p->mu);
    forget_list(orphans);
    for (; stale != NULL; stale = next) {
        next = stale->next;
        close_slot(stale);
    }
    for (int i = 0; i < n_recycled; i++)
        dbp_metrics_inc(&p->metrics, DBP_M_RECYCLES);
    for (int i = 0; i < n_invalidated; i++)
        dbp_metrics_inc(&p->metrics, DBP_M_INVALIDATIONS);

    for (;;) {
        dbp_lock_acquire(&p->mu);
        if (!refill_more_locked(p) || !reserve_locked(p)) {
            wake_for_capacity_locked(p);
            dbp_lock_release(&p->mu);
            return st;
        }
        dbp_lock_release(&p->mu);
        if ((s = calloc(1, sizeof *s)) == NULL) {
            unreserve(p);
            return dbp_error_set(err, DBP_NOMEM, "out of memory pre-warming");
        }
        s->state = SLOT_OPENING;
        /* A failure is not retried at every return (a down server would
         * make each one wait for a connect); the next discard asks again. */
        if ((st = open_into(p, s, now, true, &ev, err)) != DBP_OK)
            return st;
        dbp_lock_acquire(&p->mu);
        if (place_locked(p, s, false)) {      /* min_idle asked for it */
            dbp_lock_release(&p->mu);
            continue;
        }
        give_back_locked(p, 1);
        dbp_lock_release(&p->mu);
        close_slot(s);
        return st;
    }
}

/* ---- leak tracking ---------------------------------------------------- */

void dbp_pool_track(dbp_pool *p, dbp_slot *s, char *trace)
{
    dbp_lock_acquire(&p->mu);
    untrack_locked(p, s);
    s->trace = trace;
    s->leak_reported = false;
    if (trace != NULL) {
        int64_t due = s->checkout_ns + dbp_sec_to_ns(p->cfg.leak_threshold);
        s->leak_prev = NULL;
        s->leak_next = p->tracked;
        if (p->tracked) p->tracked->leak_prev = s;
        p->tracked = s;
        if (due < p->next_leak_scan_ns)
            p->next_leak_scan_ns = due;
    }
    dbp_lock_release(&p->mu);
}

int dbp_pool_overdue(dbp_pool *p, dbp_leak *out, int max)
{
    int64_t now = dbp_now_ns(), threshold = dbp_sec_to_ns(p->cfg.leak_threshold);
    int64_t next = INT64_MAX;
    int n = 0;

    dbp_lock_acquire(&p->mu);
    if (now < p->next_leak_scan_ns) {
        dbp_lock_release(&p->mu);
        return 0;
    }
    for (dbp_slot *s = p->tracked; s != NULL; s = s->leak_next) {
        if (s->leak_reported)
            continue;
        if (now - s->checkout_ns < threshold || n == max) {
            if (s->checkout_ns + threshold < next)
                next = s->checkout_ns + threshold;
            continue;
        }
        s->leak_reported = true;
        out[n].held = (double)(now - s->checkout_ns) / (double)DBP_NS_PER_SEC;
        out[n].trace = strdup(s->trace);
        n += out[n].trace != NULL;
    }
    p->next_leak_scan_ns = next;
    dbp_lock_release(&p->mu);
    return n;
}

char *dbp_slot_take_overdue(dbp_pool *p, dbp_slot *s, double *held)
{
    int64_t now = dbp_now_ns();
    char *trace = NULL;

    dbp_lock_acquire(&p->mu);
    if (s->trace != NULL && !s->leak_reported &&
        now - s->checkout_ns >= dbp_sec_to_ns(p->cfg.leak_threshold)) {
        s->leak_reported = true;
        *held = (double)(now - s->checkout_ns) / (double)DBP_NS_PER_SEC;
        trace = strdup(s->trace);
    }
    dbp_lock_release(&p->mu);
    return trace;
}

/* ---- inspection ------------------------------------------------------- */

void dbp_pool_counts_get(dbp_pool *p, dbp_pool_counts *out)
{
    dbp_lock_acquire(&p->mu);
    counts_locked(p, out);
    dbp_lock_release(&p->mu);
}

void dbp_pool_status_text(const dbp_pool_counts *c, char *out, size_t size)
{
    /* SQLAlchemy's exact text, two spaces after the size included. */
    snprintf(out, size,
             "Pool size: %d  Connections in pool: %d Current Overflow: %d "
             "Current Checked out connections: %d",
             c->size, c->checkedin, c->overflow, c->checkedout);
}

const char *dbp_pool_breaker_state(dbp_pool *p)
{
    const char *state;
    int64_t now = dbp_now_ns();

    dbp_lock_acquire(&p->mu);
    if (!dbp_breaker_is_open(&p->breaker))
        state = "closed";
    else if (now < p->breaker.open_until_ns)
        state = "open";
    else
        state = "half-open";
    dbp_lock_release(&p->mu);
    return state;
}

int dbp_pool_peak_in_use(dbp_pool *p)
{
    int peak;

    dbp_lock_acquire(&p->mu);
    peak = p->peak_in_use;
    dbp_lock_release(&p->mu);
    return peak;
}

double dbp_pool_age(const dbp_pool *p)
{
    return (double)(dbp_now_ns() - p->created_ns) / (double)DBP_NS_PER_SEC;
}

void dbp_pool_wait_window(dbp_pool *p, dbp_hist_snapshot *out, uint64_t *timeouts)
{
    dbp_hist_snapshot now;
    uint64_t t;

    dbp_lock_acquire(&p->mu);
    dbp_hist_read(&p->metrics, DBP_H_WAIT, &now);
    t = dbp_metrics_get(&p->metrics, DBP_M_TIMEOUTS);
    dbp_hist_diff(&now, &p->health_mark, out);
    *timeouts = t - p->health_timeouts;
    p->health_mark = now;
    p->health_timeouts = t;
    dbp_lock_release(&p->mu);
}

const dbp_config *dbp_pool_config(const dbp_pool *p)
{
    return &p->cfg;
}

dbp_metrics *dbp_pool_metrics(dbp_pool *p)
{
    return &p->metrics;
}

dbp_conn *dbp_slot_conn(dbp_slot *s)
{
    return s->conn;
}

void dbp_slot_note_query(dbp_slot *s)
{
    s->queries++;
}

bool dbp_slot_inherited(const dbp_slot *s)
{
    return s->gen != dbp_fork_generation();
}

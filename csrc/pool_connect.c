/* pool_connect.c: opening connections for the pool.  Every connect asks
 * the circuit breaker first (breaker.h) and tells it the outcome; a
 * blocking connect retries with back-off within the checkout's deadline
 * (open_into); an event loop drives its connect step by step
 * (connect_later, dbp_pool_connect_step); min_idle is kept by
 * dbp_pool_refill_step (the refill thread, refill.c) or, for an event
 * loop's timer, dbp_pool_refill_start.
 *
 * Lock rules (pool_internal.h): the capacity for a connect is reserved
 * before it starts; the connect itself runs with p->mu dropped, and its
 * outcome is recorded under it.  A failed connect gives the capacity back
 * and wakes a waiter for it. */
#include "pool_internal.h"

#include <errno.h>

static double uniform_locked(dbp_pool *p)
{
    return (double)rand_r(&p->rng) / ((double)RAND_MAX + 1.0);
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

static void sleep_ns(int64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / DBP_NS_PER_SEC),
                          .tv_nsec = (long)(ns % DBP_NS_PER_SEC)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- the breaker -------------------------------------------------------- */

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
    give_back_and_wake_locked(p, 1, s->epoch);
    dbp_lock_release(&p->mu);
    dbp_metrics_inc(&p->metrics, DBP_M_CIRCUIT_OPEN);
    free(s);
    return st;
}

/* s's connect succeeded: it is a checked-out connection now.  The caller
 * counts CONNECTS after unlocking. */
static void opened_locked(dbp_pool *p, dbp_slot *s, int64_t started, int64_t now, unsigned *ev)
{
    if (dbp_breaker_is_open(&p->breaker))
        *ev |= DBP_EV_BREAKER_CLOSE;
    dbp_breaker_success(&p->breaker);
    dbp_hist_add_locked(&p->metrics, DBP_H_CONNECT, now - started);
    *ev |= DBP_EV_CONNECT;
    /* Overflow is closed again on return while pool_size are idle: opened
     * every second under steady load, it is churn that a larger pool_size
     * removes (advise.lua says so). */
    if (p->size > 0 && p->total > p->size)
        dbp_metrics_inc_locked(&p->metrics, DBP_M_OVERFLOW_CONNECTS);
    s->gen = p->gen;
    s->born_ns = now;
    s->last_used_ns = now;
    s->expires_ns = lifetime_end_locked(p, now);
    s->queries = 0;
    s->state = SLOT_IN_USE;               /* from SLOT_OPENING: on no list either way */
}

/* A connect attempt failed with st: the breaker counts the server's
 * failures (not out of memory).  Returns true when that opened it. */
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

/* ---- blocking connect --------------------------------------------------- */

/* When one attempt starting at now must end: connect_timeout after it (0:
 * no limit of its own), and never after the checkout's deadline. */
static int64_t attempt_deadline(const dbp_pool *p, int64_t now, int64_t deadline)
{
    double timeout = dbp_conninfo_connect_timeout(p->conninfo);
    int64_t own = timeout > 0 ? now + dbp_sec_to_ns(timeout) : INT64_MAX;
    return own < deadline ? own : deadline;
}

/* An attempt ran out of time (dbp_conn_open_by said DBP_TIMEOUT): the
 * checkout's deadline (DBP_TIMEOUT, the checkout fails) or the attempt's
 * own connect_timeout (DBP_CONNECT, the next attempt may follow). */
static dbp_status attempt_expired(const dbp_pool *p, bool checkout_ended, dbp_error *err)
{
    if (checkout_ended)
        return dbp_error_set(err, DBP_TIMEOUT,
                             "could not connect within pool_timeout (%.2f s): the server did "
                             "not answer in time", p->cfg.pool_timeout);
    return dbp_error_set(err, DBP_CONNECT, "could not connect: no answer within connect_timeout "
                         "(%g s)", dbp_conninfo_connect_timeout(p->conninfo));
}

dbp_status dbp_pool_connect_timed_out(dbp_pool *p, dbp_error *err)
{
    dbp_lock_acquire(&p->mu);
    dbp_metrics_inc_locked(&p->metrics, DBP_M_TIMEOUTS);   /* a locked counter */
    dbp_lock_release(&p->mu);
    return attempt_expired(p, true, err);
}

/* One attempt into s: its outcome recorded (breaker, histogram, counters).
 * Returns DBP_OK, or the failure with *delay the back-off before the next
 * attempt and *stop set when no other attempt may follow. */
static dbp_status attempt(dbp_pool *p, dbp_slot *s, int64_t deadline, bool probe, int n,
                          int64_t *delay, bool *stop, unsigned *ev, dbp_error *err)
{
    int64_t started = dbp_now_ns(), until = attempt_deadline(p, started, deadline), now;
    dbp_status st = dbp_conn_open_by(&p->cfg, p->conninfo, until, &s->conn, err);

    if (st == DBP_TIMEOUT)
        st = attempt_expired(p, until == deadline, err);
    now = dbp_now_ns();
    dbp_lock_acquire(&p->mu);
    if (st == DBP_OK) {
        opened_locked(p, s, started, now, ev);
        dbp_lock_release(&p->mu);
        dbp_metrics_inc(&p->metrics, DBP_M_CONNECTS);
        return DBP_OK;
    }
    /* A silent server fails the attempt as a refusal does: the breaker counts it. */
    *stop = connect_failed_locked(p, st == DBP_TIMEOUT ? DBP_CONNECT : st, probe, now, ev, err) ||
            st != DBP_CONNECT;
    *delay = dbp_backoff_ns(n, p->cfg.retry_base, p->cfg.retry_max, uniform_locked(p));
    if (st == DBP_TIMEOUT)
        dbp_metrics_inc_locked(&p->metrics, DBP_M_TIMEOUTS);
    dbp_lock_release(&p->mu);
    if (st == DBP_CONNECT || st == DBP_TIMEOUT)   /* out of memory: not the server's */
        dbp_metrics_inc(&p->metrics, DBP_M_CONNECT_FAILURES);
    return st;
}

dbp_status open_into(dbp_pool *p, dbp_slot *s, int64_t deadline, bool once, unsigned *ev,
                     dbp_error *err)
{
    dbp_admit admit;
    dbp_status st;
    int attempts;

    if (dbp_now_ns() >= deadline) {       /* a pre-ping used the whole checkout */
        give_back_and_wake(p, 1, s->epoch);
        free(s);
        return dbp_pool_connect_timed_out(p, err);
    }
    if ((st = admit_connect(p, s, &admit, err)) != DBP_OK)
        return st;
    attempts = (admit == DBP_ADMIT_PROBE || once) ? 1 : p->cfg.retry_attempts;
    for (int n = 1; n <= attempts; n++) {
        int64_t delay = 0;
        bool stop = false;

        if ((st = attempt(p, s, deadline, admit == DBP_ADMIT_PROBE, n, &delay, &stop, ev,
                          err)) == DBP_OK)
            return DBP_OK;
        if (stop || n == attempts || dbp_now_ns() + delay > deadline)
            break;
        sleep_ns(delay);
    }
    give_back_and_wake(p, 1, s->epoch);
    free(s);
    return st;
}

/* ---- the event loop's connect ------------------------------------------- */

dbp_status connect_later(dbp_pool *p, dbp_slot *s, int64_t since, dbp_error *err)
{
    dbp_admit admit;
    dbp_status st;

    if ((st = admit_connect(p, s, &admit, err)) != DBP_OK)
        return st;
    s->conn = NULL;
    s->probe = admit == DBP_ADMIT_PROBE;
    s->checkout_ns = since;
    return DBP_PENDING;
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
    give_back_and_wake_locked(p, 1, s->epoch);
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

    if (s->pinging) {                     /* an idle connection's pre-ping */
        st = ping_step(p, s, want_write, &ev, err);
        if (st != DBP_PENDING) {          /* answered, not yet, or refused */
            if (events != NULL)
                *events = ev;
            return st;
        }
        st = DBP_OK;                      /* replaced: its connect starts now */
    }
    if (s->conn == NULL) {
        s->connect_ns = dbp_now_ns();
        st = dbp_conn_start(&p->cfg, p->conninfo, &s->conn, err);
    }
    if (st == DBP_OK)
        st = dbp_conn_connect_step(s->conn, p->conninfo, want_write, err);
    if (st == DBP_AGAIN)
        return DBP_AGAIN;
    ev |= s->pending_ev;                  /* what a failed pre-ping did first */
    s->pending_ev = 0;
    if (st != DBP_OK) {
        st = async_connect_failed(p, s, st, &ev, err);
    } else {
        now = dbp_now_ns();
        dbp_lock_acquire(&p->mu);
        opened_locked(p, s, s->connect_ns, now, &ev);
        if (s->refill)                    /* min_idle's, not a checkout: not counted */
            s->checkout_ns = now;
        else
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

    if (s->pinging) {
        ping_abandon(p, s);
        return;
    }
    dbp_error_set(&err, DBP_CONNECT, "could not connect: %s", why);
    (void)async_connect_failed(p, s, DBP_CONNECT, &ev, &err);
}

/* ---- min_idle ----------------------------------------------------------- */

/* Opening for min_idle never grows the pool into overflow, never competes
 * with a queued checkout, and never waits: one attempt per connection, and
 * the first failure ends the round (the breaker counts it).  Under
 * pool_size = "auto" it also grows the pool to its size, ahead of demand. */
static bool refill_more_locked(const dbp_pool *p)
{
    int keep = p->cfg.pool_size > 0 ? p->cfg.pool_size : p->cfg.min_idle;

    if (p->retired || p->wait_head != NULL || !has_capacity_locked(p))
        return false;
    if (p->autosize != NULL && p->total < p->size)
        return true;
    return p->n_idle < p->cfg.min_idle && p->total < keep;
}

/* Closes the idle connections a checkout would refuse anyway (their
 * capacity given back, counted as recycles and invalidations). */
static void drop_stale_idle(dbp_pool *p, int64_t now)
{
    dbp_slot *orphans, *stale = NULL, *s, *next;
    int n_invalidated = 0, n_recycled = 0;

    lock_pool(p, &orphans);
    p->refill_pending = false;
    for (s = p->idle_head; s != NULL; s = next) {
        staleness why = slot_stale_locked(p, s, now);
        next = s->next;
        if (why == FRESH)
            continue;
        slot_set_state_locked(p, s, SLOT_IN_USE);
        give_back_locked(p, 1, s->epoch);
        s->next = stale;
        stale = s;
        if (why == STALE_RECYCLE) n_recycled++; else n_invalidated++;
    }
    unlock_pool(p, orphans);
    close_list(stale);
    for (int i = 0; i < n_recycled; i++)
        dbp_metrics_inc(&p->metrics, DBP_M_RECYCLES);
    for (int i = 0; i < n_invalidated; i++)
        dbp_metrics_inc(&p->metrics, DBP_M_INVALIDATIONS);
}

/* Reserves capacity for one min_idle connection into *out (SLOT_OPENING),
 * after dropping stale idle ones; false when none is wanted now. */
static bool refill_reserve(dbp_pool *p, dbp_slot **out)
{
    dbp_slot *s;
    unsigned epoch;

    drop_stale_idle(p, dbp_now_ns());
    dbp_lock_acquire(&p->mu);
    if (!refill_more_locked(p) || !reserve_locked(p)) {
        wake_for_capacity_locked(p);
        dbp_lock_release(&p->mu);
        return false;
    }
    epoch = p->epoch;
    dbp_lock_release(&p->mu);
    if ((s = calloc(1, sizeof *s)) == NULL) {
        give_back_and_wake(p, 1, epoch);
        return false;
    }
    s->epoch = epoch;
    s->state = SLOT_OPENING;
    *out = s;
    return true;
}

/* A refill connection s is open: idle it (or hand it to a waiter); closed
 * when the pool no longer wants it (disposed meanwhile, or full). */
static bool refill_place(dbp_pool *p, dbp_slot *s)
{
    dbp_lock_acquire(&p->mu);
    if (s->epoch == p->epoch && place_locked(p, s, false)) {
        dbp_lock_release(&p->mu);
        return true;
    }
    give_back_locked(p, 1, s->epoch);
    dbp_lock_release(&p->mu);
    close_slot(s);
    return false;
}

dbp_status dbp_pool_refill_step(dbp_pool *p, bool *more, dbp_error *err)
{
    dbp_slot *s = NULL;
    unsigned ev = 0;
    dbp_status st;

    *more = false;
    if (!refills(p) || !refill_reserve(p, &s))
        return DBP_OK;
    /* One attempt, within connect_timeout.  A failure is not retried here
     * (a down server would keep the refill connecting); the next discard
     * asks again. */
    if ((st = open_into(p, s, INT64_MAX, true, &ev, err)) != DBP_OK)
        return st;
    *more = refill_place(p, s);
    return DBP_OK;
}

dbp_status dbp_pool_refill(dbp_pool *p, dbp_error *err)
{
    bool more = true;
    dbp_status st = DBP_OK;

    while (more && st == DBP_OK)
        st = dbp_pool_refill_step(p, &more, err);
    return st;
}

dbp_status dbp_pool_refill_start(dbp_pool *p, dbp_slot **out, dbp_error *err)
{
    dbp_slot *s = NULL;
    dbp_status st;

    if (!refills(p) || !refill_reserve(p, &s))
        return DBP_OK;
    if ((st = connect_later(p, s, dbp_now_ns(), err)) == DBP_PENDING) {
        s->refill = true;
        *out = s;
    }
    return st;
}

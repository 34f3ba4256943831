/* pool_connect.c: opening connections for the pool.  Every connect asks
 * the circuit breaker first (breaker.h) and tells it the outcome; a
 * blocking connect retries with back-off within the checkout's deadline
 * (open_into); an event loop drives its connect step by step
 * (connect_later, dbp_pool_connect_step); min_idle is kept by
 * dbp_pool_refill.
 *
 * Lock rules (pool_internal.h): the capacity for a connect is reserved
 * before it starts; the connect itself runs with p->mu dropped, and its
 * outcome is recorded under it.  A failed connect gives the capacity back
 * and wakes a waiter for it. */
#include "pool_internal.h"
#include "evloop.h"

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

dbp_status open_into(dbp_pool *p, dbp_slot *s, int64_t deadline, bool once, unsigned *ev,
                     dbp_error *err)
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

/* ---- min_idle ----------------------------------------------------------- */

/* Opening for min_idle never grows the pool into overflow, never competes
 * with a queued checkout, and never waits: one attempt per connection, and
 * the first failure ends the round (the breaker counts it). */
static bool refill_more_locked(const dbp_pool *p)
{
    int keep = p->cfg.pool_size > 0 ? p->cfg.pool_size : p->cfg.min_idle;
    return p->n_idle < p->cfg.min_idle && p->wait_head == NULL && p->total < keep &&
           has_capacity_locked(p);
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

dbp_status dbp_pool_refill(dbp_pool *p, dbp_error *err)
{
    dbp_slot *s;
    int64_t now = dbp_now_ns();
    unsigned ev = 0, epoch;
    dbp_status st = DBP_OK;

    if (p->cfg.min_idle <= 0)
        return DBP_OK;
    drop_stale_idle(p, now);
    for (;;) {
        dbp_lock_acquire(&p->mu);
        if (!refill_more_locked(p) || !reserve_locked(p)) {
            wake_for_capacity_locked(p);
            dbp_lock_release(&p->mu);
            return st;
        }
        epoch = p->epoch;
        dbp_lock_release(&p->mu);
        if ((s = calloc(1, sizeof *s)) == NULL) {
            give_back_and_wake(p, 1, epoch);
            return dbp_error_set(err, DBP_NOMEM, "out of memory pre-warming");
        }
        s->epoch = epoch;
        s->state = SLOT_OPENING;
        /* A failure is not retried at every return (a down server would
         * make each one wait for a connect); the next discard asks again. */
        if ((st = open_into(p, s, now, true, &ev, err)) != DBP_OK)
            return st;
        dbp_lock_acquire(&p->mu);
        if (s->epoch == p->epoch && place_locked(p, s, false)) {   /* min_idle asked for it */
            dbp_lock_release(&p->mu);
            continue;
        }
        give_back_locked(p, 1, s->epoch);
        dbp_lock_release(&p->mu);
        close_slot(s);
        return st;
    }
}

/* At a return: the failure is already counted (connect_failures, breaker)
 * and the caller of release has no use for it. */
void refill_best_effort(dbp_pool *p)
{
    dbp_error err;

    if (dbp_evloop_refill_deferred())       /* an event loop's timer refills */
        return;
    if (dbp_pool_refill(p, &err) != DBP_OK)
        return;
}

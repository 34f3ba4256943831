/* pool.c: QueuePool's checkout and return, the pool's lifecycle and what
 * it reports.  A checkout serves an idle connection (after pre-ping and
 * the invalidation and recycle checks), else reserves capacity and has
 * pool_connect.c open one, else waits in the slot floor's queue
 * (pool_slots.c); a return resets the connection when a transaction is
 * open and hands it to the first waiter, keeps it idle, or closes it.
 *
 * Lock rules: pool_internal.h (one lock per pool, no I/O while it is held).
 * The fast paths (an idle connection with nothing to check out, a clean
 * return to the idle list) take the lock once each. */
#include "pool_internal.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

/* ---- lifecycle -------------------------------------------------------- */

/* pool_size = "auto": starts at auto.min (or min_idle, if more), its first window now; the refill
 * thread (none inside nginx: a worker's timer) runs its sizing steps. */
static dbp_status start_autosize(dbp_pool *p)
{
    p->size = p->cfg.pool_size;
    if (!p->cfg.pool_size_auto)
        return DBP_OK;
    if ((p->autosize = calloc(1, sizeof *p->autosize)) == NULL)
        return DBP_NOMEM;
    p->size = dbp_autosize_floor(&p->cfg);
    p->autosize->mark_ns = p->created_ns;
    p->autosize->idle_low = INT_MAX;      /* no checkout yet: nothing known to be needed */
    for (int i = 0; i < DBP_AUTO_SPARE_WINDOWS - 1; i++)
        p->autosize->idle_low_before[i] = INT_MAX;
    return DBP_OK;
}

/* The DSN parsed once, here (a malformed one is refused before the pool
 * exists), and each replica's DSN checked, so that a typo there is refused
 * with the primary rather than after it. */
static dbp_status parse_dsns(const dbp_config *cfg, dbp_conninfo **out, dbp_error *err)
{
    dbp_status st = dbp_conninfo_new(cfg, cfg->dsn, "dsn", out, err);

    for (int i = 0; st == DBP_OK && i < cfg->n_replicas; i++) {
        dbp_conninfo *replica = NULL;
        char what[32];
        snprintf(what, sizeof what, "replicas[%d]", i + 1);
        st = dbp_conninfo_new(NULL, cfg->replicas[i], what, &replica, err);
        dbp_conninfo_free(replica);
    }
    if (st != DBP_OK) {
        dbp_conninfo_free(*out);
        *out = NULL;
    }
    return st;
}

dbp_status dbp_pool_new(const dbp_config *cfg, dbp_pool **out, dbp_error *err)
{
    dbp_pool *p = calloc(1, sizeof *p);
    dbp_status st;

    if (p == NULL || dbp_config_copy(&p->cfg, cfg) != DBP_OK) {
        free(p);
        return dbp_error_set(err, DBP_NOMEM, "out of memory creating pool");
    }
    /* From the pool's own copy: the parameters point into it. */
    if ((st = parse_dsns(&p->cfg, &p->conninfo, err)) != DBP_OK) {
        dbp_config_free(&p->cfg);
        free(p);
        return st;
    }
    dbp_lock_init(&p->mu);
    dbp_metrics_init(&p->metrics);
    dbp_breaker_init(&p->breaker, cfg->breaker_failures, cfg->breaker_cooldown);
    p->rng = (unsigned)dbp_now_ns() ^ (unsigned)(uintptr_t)p;
    p->invalidate_ns = 0;
    p->gen = dbp_fork_generation();
    p->next_leak_scan_ns = INT64_MAX;
    p->created_ns = dbp_now_ns();
    p->query_timeout_ns = dbp_sec_to_ns(cfg->query_timeout);
    if (cfg->max_total_connections > 0 &&
        dbp_cap_share(p->cfg.name, cfg->max_total_connections, &p->cap) != DBP_OK) {
        dbp_config_free(&p->cfg);
        dbp_conninfo_free(p->conninfo);
        free(p);
        return dbp_error_set(err, DBP_NOMEM, "cannot map the max_total_connections counter");
    }
    if (start_autosize(p) != DBP_OK) {
        dbp_cap_free(p->cap);
        dbp_config_free(&p->cfg);
        free(p);
        return dbp_error_set(err, DBP_NOMEM, "out of memory creating pool");
    }
    dbp_fork_register(&p->mu);
    if (p->autosize != NULL)
        dbp_refill_watch(p, p->cfg.auto_interval);
    *out = p;
    return DBP_OK;
}

void dbp_pool_dispose(dbp_pool *p)
{
    dbp_slot *idle, *orphans;
    int n;

    lock_pool(p, &orphans);
    n = p->n_idle;
    idle = idle_take_all_locked(p);
    p->invalidate_ns = dbp_now_ns();
    give_back_locked(p, n, p->epoch);
    /* SQLAlchemy's Engine.dispose() starts a fresh pool: the checked-out
     * connections are retired, no longer counted (their host-wide cap units
     * stay until they close on return, when they really go). */
    p->total = 0;
    p->epoch++;
    wake_for_capacity_locked(p);
    unlock_pool(p, orphans);
    close_list(idle);
}

void dbp_pool_retire(dbp_pool *p)
{
    dbp_slot *orphans;

    lock_pool(p, &orphans);
    p->retired = true;
    unlock_pool(p, orphans);
    dbp_refill_forget(p);
    dbp_pool_dispose(p);
}

void dbp_pool_free(dbp_pool *p)
{
    if (p == NULL)
        return;
    dbp_refill_forget(p);
    dbp_pool_dispose(p);
    dbp_fork_unregister(&p->mu);
    dbp_cap_free(p->cap);
    dbp_config_free(&p->cfg);
    free(p->autosize);
    dbp_conninfo_free(p->conninfo);
    free(p);
}

/* ---- checkout --------------------------------------------------------- */

/* Is this connection fit to hand out?  Stale ones (invalidated, too old,
 * too many queries) are replaced without a look; with pool_pre_ping the
 * socket is checked (no round trip) and, outside the pre_ping_bypass window
 * since its last use, pinged (one round trip) within ping_timeout or what
 * is left of the checkout (deadline), whichever ends first.  An event
 * loop's checkout (DBP_CHECKOUT_DEFER) only sends that ping: PINGING, and
 * ping_step reads the answer, so that a silent server never stalls the
 * loop for ping_timeout. */
typedef enum fitness { FIT, UNFIT, PINGING } fitness;

/* A pre-ping failed (the connection dead, late, or read-only for a
 * primary): counted, and a lost link makes the older connections suspect. */
static void ping_failed(dbp_pool *p, dbp_slot *s, dbp_status st, unsigned *ev)
{
    if (st == DBP_TIMEOUT)                /* replaced like a dead one */
        dbp_metrics_inc(&p->metrics, DBP_M_PING_TIMEOUTS);
    dbp_metrics_inc(&p->metrics, DBP_M_PREPING_FAILURES);
    dbp_metrics_inc(&p->metrics, DBP_M_INVALIDATIONS);
    *ev |= DBP_EV_INVALIDATE;
    if (dbp_conn_lost(s->conn)) {
        dbp_lock_acquire(&p->mu);
        note_lost_locked(p, dbp_now_ns());
        dbp_lock_release(&p->mu);
    }
}

static fitness fit_for_checkout(dbp_pool *p, dbp_slot *s, staleness stale,
                                dbp_checkout_mode mode, int64_t deadline, unsigned *ev)
{
    dbp_status st = DBP_QUERY;            /* the passive look found it dead */
    dbp_error err;

    if (stale != FRESH) {
        bool recycle = stale == STALE_RECYCLE;
        dbp_metrics_inc(&p->metrics, recycle ? DBP_M_RECYCLES : DBP_M_INVALIDATIONS);
        *ev |= recycle ? DBP_EV_RECYCLE : DBP_EV_INVALIDATE;
        return UNFIT;
    }
    if (!p->cfg.pool_pre_ping)
        return FIT;
    if (dbp_conn_alive_passive(s->conn)) {
        if (dbp_now_ns() - s->last_used_ns < dbp_sec_to_ns(p->cfg.pre_ping_bypass))
            return FIT;
        if (mode == DBP_CHECKOUT_DEFER) {
            if ((st = dbp_conn_ping_send(s->conn, deadline, &err)) == DBP_OK)
                return PINGING;
        } else if ((st = dbp_conn_ping(s->conn, deadline, &err)) == DBP_OK) {
            return FIT;
        }
    }
    ping_failed(p, s, st, ev);
    return UNFIT;
}

/* The checkout holds capacity for a new connection: opens it into *sp (the
 * slot of a replaced connection) or a new slot, by the checkout's deadline
 * (dbp_now_ns() nanoseconds), or with DBP_CHECKOUT_DEFER leaves it to the
 * caller (DBP_PENDING).  On failure the capacity is given back. */
static dbp_status checkout_connect(dbp_pool *p, dbp_checkout_mode mode, dbp_slot **sp,
                                   unsigned epoch, int64_t start, int64_t deadline, unsigned *ev,
                                   dbp_error *err)
{
    dbp_slot *s = *sp;

    if (s == NULL && (s = calloc(1, sizeof *s)) == NULL) {
        give_back_and_wake(p, 1, epoch);
        return dbp_error_set(err, DBP_NOMEM, "out of memory opening a connection");
    }
    s->epoch = epoch;
    s->state = SLOT_OPENING;              /* ours alone and on no list: no lock */
    *sp = s;
    if (mode == DBP_CHECKOUT_DEFER)
        return connect_later(p, s, start, err);
    return open_into(p, s, deadline, false, ev, err);
}

/* pool_timeout bounds the whole checkout (slot wait, connects, pre-pings),
 * but the network work gets at least DBP_CHECKOUT_FLOOR_NS, so that a
 * pool_timeout set tiny to fail fast on a full pool does not make every
 * connect fail (docs/decisions.md). */
#define DBP_CHECKOUT_FLOOR_NS DBP_NS_PER_SEC

double dbp_pool_checkout_budget(const dbp_pool *p)
{
    double floor = (double)DBP_CHECKOUT_FLOOR_NS / (double)DBP_NS_PER_SEC;
    return p->cfg.pool_timeout > floor ? p->cfg.pool_timeout : floor;
}

/* The deadline of a checkout's network work, which started at start. */
static int64_t work_deadline(const dbp_pool *p, int64_t start)
{
    return start + dbp_sec_to_ns(dbp_pool_checkout_budget(p));
}

/* Every checkout: an idle connection when nobody is queued ahead, else
 * capacity for a new one, else (DBP_CHECKOUT_WAIT) a place in the queue
 * until pool_timeout.  since: when the caller started waiting (0 = now);
 * pool_timeout counts from then. */
/* A checkout of an engine that dbpool.remove retired: the checkouts made
 * before are returned and closed, but no new connection may open. */
static dbp_status removed_error(const dbp_pool *p, dbp_error *err)
{
    return dbp_error_set(err, DBP_CLOSED, "engine '%s' was removed (dbpool.remove) before this "
                         "checkout got a connection", p->cfg.name);
}

static dbp_status checkout(dbp_pool *p, dbp_checkout_mode mode, int64_t since, dbp_slot **out,
                           unsigned *ev, dbp_error *err)
{
    int64_t now = dbp_now_ns(), start = since > 0 ? since : now;
    dbp_slot *s = NULL, *orphans;
    int create = 0;
    unsigned epoch;                      /* of the capacity this checkout holds */
    staleness stale = FRESH;
    dbp_status st = DBP_OK;

    lock_pool(p, &orphans);
    if (p->retired) {
        unlock_pool(p, orphans);
        return removed_error(p, err);
    }
    epoch = p->epoch;
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
        if (mode != DBP_CHECKOUT_WAIT) {
            unlock_pool(p, orphans);
            return dbp_error_set(err, DBP_AGAIN, "no connection available without waiting");
        }
        *ev |= DBP_EV_WAIT;
        st = wait_for_slot_locked(p, start + dbp_sec_to_ns(p->cfg.pool_timeout), &s, &create,
                                  &epoch, err);
        if (st == DBP_OK && create && p->retired) {   /* woken by the removal's dispose */
            give_back_and_wake_locked(p, 1, epoch);
            create = 0;
            st = removed_error(p, err);
        }
        if (s != NULL)
            stale = slot_stale_locked(p, s, dbp_now_ns());
    }
    unlock_pool(p, orphans);
    if (st != DBP_OK)
        return st;

    if (s != NULL) {
        fitness fit = fit_for_checkout(p, s, stale, mode, work_deadline(p, start), ev);
        if (fit == PINGING) {             /* the caller steps on: ping_step */
            s->pinging = true;
            s->pending_ev = *ev;
            s->checkout_ns = start;
            *out = s;
            return DBP_PENDING;
        }
        if (fit == UNFIT) {
            dbp_conn_close(s->conn);      /* replace in place: capacity unchanged */
            s->conn = NULL;
            epoch = s->epoch;
            create = 1;
        }
    }
    if (create && (st = checkout_connect(p, mode, &s, epoch, start, work_deadline(p, start), ev,
                                         err)) != DBP_OK) {
        if (st == DBP_PENDING)
            *out = s;
        return st;
    }
    dbp_lock_acquire(&p->mu);
    note_checkout_locked(p, s, start, dbp_now_ns());
    dbp_lock_release(&p->mu);
    *out = s;
    return DBP_OK;
}

dbp_status ping_step(dbp_pool *p, dbp_slot *s, bool *want_write, unsigned *ev, dbp_error *err)
{
    dbp_error perr;
    dbp_status st = dbp_conn_ping_step(s->conn, &perr);
    int64_t start = s->checkout_ns;

    if (st == DBP_AGAIN) {
        *want_write = dbp_conn_wants_write(s->conn);
        return DBP_AGAIN;
    }
    s->pinging = false;
    *ev |= s->pending_ev;
    s->pending_ev = 0;
    if (st == DBP_OK) {
        dbp_lock_acquire(&p->mu);
        note_checkout_locked(p, s, start, dbp_now_ns());
        dbp_lock_release(&p->mu);
        return DBP_OK;
    }
    ping_failed(p, s, st, ev);
    dbp_conn_close(s->conn);              /* replace in place: capacity unchanged */
    s->conn = NULL;
    if (dbp_now_ns() >= work_deadline(p, start)) {
        /* The ping used the whole checkout: as open_into, no connect is
         * tried (one given no time would count as failed, for the breaker
         * too, against a server that was never asked). */
        dbp_lock_acquire(&p->mu);
        untrack_locked(p, s);             /* leak_threshold traced it at checkout */
        give_back_and_wake_locked(p, 1, s->epoch);
        dbp_lock_release(&p->mu);
        free(s);
        return dbp_pool_connect_timed_out(p, err);
    }
    s->pending_ev = *ev;                  /* told with the connect's outcome */
    return checkout_connect(p, DBP_CHECKOUT_DEFER, &s, s->epoch, start, work_deadline(p, start),
                            ev, err);
}

void ping_abandon(dbp_pool *p, dbp_slot *s)
{
    unsigned ev = 0;

    ping_failed(p, s, DBP_QUERY, &ev);   /* not answered: closed as a dead one */
    dbp_conn_close(s->conn);
    dbp_lock_acquire(&p->mu);
    untrack_locked(p, s);                 /* leak_threshold traced it at checkout */
    give_back_and_wake_locked(p, 1, s->epoch);
    dbp_lock_release(&p->mu);
    free(s);
}

dbp_status dbp_pool_checkout_mode(dbp_pool *p, dbp_checkout_mode mode, int64_t since_ns,
                                  dbp_slot **out, unsigned *events, dbp_error *err)
{
    unsigned ev = 0;
    dbp_status st = checkout(p, mode, since_ns, out, &ev, err);

    if (events != NULL)
        *events = ev;
    return st;
}

dbp_status dbp_pool_checkout(dbp_pool *p, dbp_slot **out, dbp_error *err)
{
    return checkout(p, DBP_CHECKOUT_WAIT, 0, out, &(unsigned){0}, err);
}

dbp_status dbp_pool_try_checkout(dbp_pool *p, dbp_slot **out, dbp_error *err)
{
    return checkout(p, DBP_CHECKOUT_TRY, 0, out, &(unsigned){0}, err);
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

bool dbp_pool_refill_due(dbp_pool *p)
{
    bool due;

    if (!refills(p))
        return false;
    dbp_lock_acquire(&p->mu);
    due = wants_refill_locked(p);
    dbp_lock_release(&p->mu);
    return due;
}

/* ---- return ----------------------------------------------------------- */

/* A reset on return failed: count a timeout, say whether to discard. */
static int reset_failed(dbp_pool *p, dbp_status st)
{
    if (st == DBP_TIMEOUT)
        dbp_metrics_inc(&p->metrics, DBP_M_RESET_TIMEOUTS);
    return 1;
}

/* What a return does to the session before the next borrower:
 * reset_on_return when a transaction is open, then DISCARD ALL when
 * reset_session asks for it (never through PgBouncer, where the session is
 * not the client's).  Returns nonzero when the connection must be
 * discarded instead: broken, too big a message went through, a reset
 * failed or timed out, or a dirty session left in a transaction on
 * purpose (reset_on_return = false). */
static DBP_HOT int reset_for_return(dbp_pool *p, dbp_slot *s)
{
    dbp_session_reset mode = p->cfg.pgbouncer ? DBP_SESSION_KEEP
                                              : (dbp_session_reset)p->cfg.reset_session;
    dbp_error err;
    dbp_status st;

    if (dbp_conn_clean(s->conn, mode))    /* the usual return */
        return 0;
    if (dbp_conn_broken(s->conn)) {
        if (dbp_conn_oversized(s->conn))
            dbp_metrics_inc(&p->metrics, DBP_M_OVERSIZED);
        return 1;
    }
    switch (dbp_conn_txn(s->conn)) {
    case DBP_TXN_IDLE:
        break;
    case DBP_TXN_OPEN:
        if (p->cfg.reset_on_return == DBP_RESET_NONE)
            return dbp_conn_needs_discard(s->conn, mode);
        if ((st = dbp_conn_reset(s->conn, (dbp_reset)p->cfg.reset_on_return, &err)) != DBP_OK)
            return reset_failed(p, st);
        break;
    case DBP_TXN_BROKEN:
        return 1;
    }
    if (dbp_conn_needs_discard(s->conn, mode)) {
        if ((st = dbp_conn_discard(s->conn, &err)) != DBP_OK)
            return reset_failed(p, st);
        dbp_metrics_inc(&p->metrics, DBP_M_SESSION_RESETS);
    }
    return dbp_conn_broken(s->conn);
}

/* Takes p->mu for the return of s.  Returns false, unlocked, when s was
 * opened by the parent process (this is a fork()ed child): then s is
 * forgotten without a byte on its socket. */
static DBP_HOT bool lock_for_return(dbp_pool *p, dbp_slot *s, dbp_slot **orphans)
{
    lock_pool(p, orphans);
    if (s->gen == p->gen)
        return true;
    unlock_pool(p, *orphans);
    forget_slot(s);
    return false;
}

unsigned dbp_pool_release(dbp_pool *p, dbp_slot *s)
{
    int broken = reset_for_return(p, s);
    int64_t now = dbp_now_ns();
    dbp_slot *orphans;
    bool refill;

    if (!lock_for_return(p, s, &orphans))
        return DBP_EV_CLOSE;
    untrack_locked(p, s);
    if (!s->refill)                       /* a refill's hand-over is not a hold */
        dbp_hist_add_locked(&p->metrics, DBP_H_HOLD, now - s->checkout_ns);
    s->refill = false;
    s->last_used_ns = now;
    if (broken && dbp_conn_lost(s->conn))
        note_lost_locked(p, now);
    if (!broken && s->epoch == p->epoch && s->born_ns >= p->invalidate_ns &&
        place_locked(p, s, cap_wanted_elsewhere(p, now))) {
        refill = wants_refill_locked(p);
        unlock_pool(p, orphans);
        if (refill)
            dbp_refill_request(p);
        return 0;
    }
    if (broken || s->born_ns < p->invalidate_ns)
        p->refill_pending = true;
    give_back_and_wake_locked(p, 1, s->epoch);
    refill = wants_refill_locked(p);
    unlock_pool(p, orphans);
    if (broken)
        dbp_metrics_inc(&p->metrics, DBP_M_INVALIDATIONS);
    close_slot(s);
    if (refill)
        dbp_refill_request(p);
    return DBP_EV_CLOSE | (broken ? DBP_EV_INVALIDATE : 0);
}

void dbp_pool_invalidate(dbp_pool *p, dbp_slot *s)
{
    dbp_slot *orphans;
    bool refill;

    if (!lock_for_return(p, s, &orphans))
        return;
    untrack_locked(p, s);
    if (dbp_conn_lost(s->conn))
        note_lost_locked(p, dbp_now_ns());
    p->refill_pending = true;
    give_back_and_wake_locked(p, 1, s->epoch);
    refill = wants_refill_locked(p);
    unlock_pool(p, orphans);
    dbp_metrics_inc(&p->metrics, DBP_M_INVALIDATIONS);
    close_slot(s);
    if (refill)
        dbp_refill_request(p);
}

void dbp_pool_note_failure(dbp_pool *p, dbp_slot *s)
{
    if (!dbp_conn_lost(s->conn))
        return;
    dbp_lock_acquire(&p->mu);
    note_lost_locked(p, dbp_now_ns());
    dbp_lock_release(&p->mu);
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

const dbp_conninfo *dbp_pool_conninfo(const dbp_pool *p)
{
    return p->conninfo;
}

dbp_metrics *dbp_pool_metrics(dbp_pool *p)
{
    return &p->metrics;
}

dbp_conn *dbp_slot_conn(dbp_slot *s)
{
    return s->conn;
}

double dbp_slot_ping_left(const dbp_slot *s)
{
    return s->pinging ? dbp_conn_deadline_left(s->conn) : -1;
}


bool dbp_slot_inherited(const dbp_slot *s)
{
    return s->gen != dbp_fork_generation();
}

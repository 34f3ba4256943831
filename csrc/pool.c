/* pool.c: QueuePool.  One mutex per pool; no I/O while it is held: decide
 * under the lock, connect/reset/close outside it (puddle's rule). */
#include "pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Where a slot lives.  A slot is always counted in p->total. */
typedef enum slot_state {
    SLOT_OPENING,   /* reserved by one checkout, on no list, conn being opened */
    SLOT_IDLE,      /* on p->idle_head..idle_tail, oldest return first */
    SLOT_IN_USE     /* owned by one checkout, on no list */
} slot_state;

struct dbp_slot {
    dbp_conn *conn;
    slot_state state;
    int64_t born_ns;        /* when the connection finished opening */
    int64_t expires_ns;     /* recycle deadline (jitter fixed at birth); INT64_MAX = never */
    int64_t last_used_ns;   /* last return: for pre-ping bypass */
    int queries;            /* statements run, for max_queries */
    dbp_slot *prev, *next;  /* idle list links while SLOT_IDLE */
};

/* One queued checkout.  lives on the waiting thread's stack. */
typedef struct waiter {
    pthread_cond_t cond;
    dbp_slot *slot;         /* handed over by release: ours, SLOT_IN_USE */
    int may_create;         /* a unit of capacity reserved for us in p->total */
    struct waiter *prev, *next;
} waiter;

struct dbp_pool {
    /* mu guards every field below it; never held across I/O. */
    pthread_mutex_t mu;
    int total;              /* connections open or being opened */
    int n_idle;
    dbp_slot *idle_head, *idle_tail;
    waiter *wait_head, *wait_tail;
    int n_waiting;
    int64_t invalidate_ns;  /* connections born before this are discarded */
    unsigned rng;           /* recycle jitter */

    /* Immutable after dbp_pool_new. */
    dbp_config cfg;
    /* Atomics: no lock. */
    dbp_metrics metrics;
};

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
static void slot_set_state_locked(dbp_pool *p, dbp_slot *s, slot_state to)
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
    while (p->wait_head != NULL && has_capacity_locked(p)) {
        waiter *w = p->wait_head;
        waiter_remove_locked(p, w);
        p->total++;
        w->may_create = 1;
        pthread_cond_signal(&w->cond);
    }
}

/* Should this connection be replaced rather than handed out? */
static int slot_stale_locked(const dbp_pool *p, const dbp_slot *s, int64_t now)
{
    if (s->born_ns < p->invalidate_ns)
        return 1;
    if (now > s->expires_ns)
        return 1;
    return p->cfg.max_queries > 0 && s->queries >= p->cfg.max_queries;
}

static int64_t lifetime_end_locked(dbp_pool *p, int64_t born)
{
    double life = p->cfg.pool_recycle;
    if (life < 0)
        return INT64_MAX;
    if (p->cfg.recycle_jitter > 0) {
        double u = (double)rand_r(&p->rng) / ((double)RAND_MAX + 1.0);
        life -= life * p->cfg.recycle_jitter * u;   /* shorter, never longer */
    }
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
    pthread_mutex_init(&p->mu, NULL);
    dbp_metrics_init(&p->metrics);
    p->rng = (unsigned)dbp_now_ns();
    p->invalidate_ns = 0;
    *out = p;
    return DBP_OK;
}

static void close_slot(dbp_slot *s)
{
    dbp_conn_close(s->conn);
    free(s);
}

void dbp_pool_dispose(dbp_pool *p)
{
    dbp_slot *list;

    pthread_mutex_lock(&p->mu);
    list = p->idle_head;
    p->total -= p->n_idle;
    p->idle_head = p->idle_tail = NULL;
    p->n_idle = 0;
    p->invalidate_ns = dbp_now_ns();   /* checked-out ones close on return */
    wake_for_capacity_locked(p);
    pthread_mutex_unlock(&p->mu);
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
    pthread_mutex_destroy(&p->mu);
    dbp_config_free(&p->cfg);
    free(p);
}

/* ---- checkout --------------------------------------------------------- */

static void abs_deadline(struct timespec *ts, int64_t deadline_ns)
{
    ts->tv_sec = (time_t)(deadline_ns / DBP_NS_PER_SEC);
    ts->tv_nsec = (long)(deadline_ns % DBP_NS_PER_SEC);
}

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
    pthread_condattr_t attr;
    struct timespec ts;

    memset(&w, 0, sizeof w);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w.cond, &attr);
    pthread_condattr_destroy(&attr);
    w.prev = p->wait_tail;
    if (p->wait_tail) p->wait_tail->next = &w; else p->wait_head = &w;
    p->wait_tail = &w;
    p->n_waiting++;
    dbp_metrics_inc(&p->metrics, DBP_M_WAITS);

    abs_deadline(&ts, deadline);
    while (w.slot == NULL && !w.may_create) {
        if (pthread_cond_timedwait(&w.cond, &p->mu, &ts) == ETIMEDOUT &&
            w.slot == NULL && !w.may_create)
            break;
    }
    pthread_cond_destroy(&w.cond);
    if (w.slot == NULL && !w.may_create) {
        waiter_remove_locked(p, &w);   /* still queued: nobody served us */
        dbp_metrics_inc(&p->metrics, DBP_M_TIMEOUTS);
        return timeout_error_locked(p, err);
    }
    *slot = w.slot;
    *create = w.may_create;
    return DBP_OK;
}

/* Opens a connection into s (a reserved unit of capacity).  On failure the
 * capacity is given back and s freed. */
static dbp_status open_into(dbp_pool *p, dbp_slot *s, dbp_error *err)
{
    dbp_status st = dbp_conn_open(&p->cfg, p->cfg.dsn, &s->conn, err);
    int64_t now = dbp_now_ns();

    pthread_mutex_lock(&p->mu);
    if (st != DBP_OK) {
        p->total--;
        wake_for_capacity_locked(p);
        pthread_mutex_unlock(&p->mu);
        free(s);
        dbp_metrics_inc(&p->metrics, DBP_M_CONNECT_FAILURES);
        return st;
    }
    s->born_ns = now;
    s->last_used_ns = now;
    s->expires_ns = lifetime_end_locked(p, now);
    s->queries = 0;
    s->state = SLOT_IN_USE;
    pthread_mutex_unlock(&p->mu);
    dbp_metrics_inc(&p->metrics, DBP_M_CONNECTS);
    return DBP_OK;
}

static dbp_status checkout(dbp_pool *p, int block, dbp_slot **out, dbp_error *err)
{
    int64_t now = dbp_now_ns();
    dbp_slot *s = NULL;
    int create = 0, stale = 0;
    dbp_status st = DBP_OK;

    pthread_mutex_lock(&p->mu);
    if (p->wait_head == NULL) {          /* nobody queued ahead of us */
        s = idle_pop_locked(p);
        if (s == NULL && has_capacity_locked(p)) {
            p->total++;
            create = 1;
        }
    }
    if (s == NULL && !create) {
        if (!block) {
            pthread_mutex_unlock(&p->mu);
            return dbp_error_set(err, DBP_AGAIN, "no connection available without waiting");
        }
        st = wait_locked(p, now + dbp_sec_to_ns(p->cfg.pool_timeout), &s, &create, err);
    }
    if (s != NULL)
        stale = slot_stale_locked(p, s, dbp_now_ns());
    pthread_mutex_unlock(&p->mu);
    if (st != DBP_OK)
        return st;

    if (stale) {                          /* replace it in place: capacity unchanged */
        dbp_conn_close(s->conn);
        s->conn = NULL;
        dbp_metrics_inc(&p->metrics, DBP_M_RECYCLES);
        create = 1;
    }
    if (create) {
        if (s == NULL && (s = calloc(1, sizeof *s)) == NULL) {
            pthread_mutex_lock(&p->mu);
            p->total--;
            wake_for_capacity_locked(p);
            pthread_mutex_unlock(&p->mu);
            return dbp_error_set(err, DBP_NOMEM, "out of memory opening a connection");
        }
        s->state = SLOT_OPENING;
        if ((st = open_into(p, s, err)) != DBP_OK)
            return st;
    }
    dbp_metrics_inc(&p->metrics, DBP_M_CHECKOUTS);
    *out = s;
    return DBP_OK;
}

dbp_status dbp_pool_checkout(dbp_pool *p, dbp_slot **out, dbp_error *err)
{
    return checkout(p, 1, out, err);
}

dbp_status dbp_pool_try_checkout(dbp_pool *p, dbp_slot **out, dbp_error *err)
{
    return checkout(p, 0, out, err);
}

/* ---- return ----------------------------------------------------------- */

/* Gives up a slot's capacity and closes its connection outside the lock. */
static void discard(dbp_pool *p, dbp_slot *s)
{
    pthread_mutex_lock(&p->mu);
    p->total--;
    wake_for_capacity_locked(p);
    pthread_mutex_unlock(&p->mu);
    close_slot(s);
}

/* reset_on_return, only when a transaction is open: an idle return costs no
 * round trip.  Returns nonzero when the connection must be discarded. */
static int reset_for_return(dbp_pool *p, dbp_slot *s)
{
    dbp_error err;

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

void dbp_pool_release(dbp_pool *p, dbp_slot *s)
{
    int broken = reset_for_return(p, s);
    int64_t now = dbp_now_ns();

    pthread_mutex_lock(&p->mu);
    s->last_used_ns = now;
    if (!broken && s->born_ns >= p->invalidate_ns) {
        waiter *w = p->wait_head;
        if (w != NULL) {                  /* hand-off: no barging */
            waiter_remove_locked(p, w);
            w->slot = s;
            pthread_cond_signal(&w->cond);
            pthread_mutex_unlock(&p->mu);
            return;
        }
        if (!idle_full_locked(p)) {
            slot_set_state_locked(p, s, SLOT_IDLE);
            pthread_mutex_unlock(&p->mu);
            return;
        }
    }
    pthread_mutex_unlock(&p->mu);
    if (broken)
        dbp_metrics_inc(&p->metrics, DBP_M_INVALIDATIONS);
    discard(p, s);
}

void dbp_pool_invalidate(dbp_pool *p, dbp_slot *s)
{
    dbp_metrics_inc(&p->metrics, DBP_M_INVALIDATIONS);
    discard(p, s);
}

/* ---- inspection ------------------------------------------------------- */

void dbp_pool_counts_get(dbp_pool *p, dbp_pool_counts *out)
{
    pthread_mutex_lock(&p->mu);
    counts_locked(p, out);
    pthread_mutex_unlock(&p->mu);
}

void dbp_pool_status_text(const dbp_pool_counts *c, char *out, size_t size)
{
    /* SQLAlchemy's exact text, two spaces after the size included. */
    snprintf(out, size,
             "Pool size: %d  Connections in pool: %d Current Overflow: %d "
             "Current Checked out connections: %d",
             c->size, c->checkedin, c->overflow, c->checkedout);
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

/* ---- pre-warming ------------------------------------------------------ */

dbp_status dbp_pool_prewarm(dbp_pool *p, dbp_error *err)
{
    int want = p->cfg.min_idle, got = 0;
    dbp_status st = DBP_OK;
    dbp_slot **held;

    if (want <= 0)
        return DBP_OK;
    held = calloc((size_t)want, sizeof *held);
    if (held == NULL)
        return dbp_error_set(err, DBP_NOMEM, "out of memory pre-warming");
    /* Hold min_idle checkouts at once so that each one is a distinct
     * connection, then return them all: they land in the idle set.  Never
     * waits: a busy pool is warm enough. */
    while (got < want && (st = dbp_pool_try_checkout(p, &held[got], err)) == DBP_OK)
        got++;
    for (int i = 0; i < got; i++)
        dbp_pool_release(p, held[i]);
    free(held);
    return st == DBP_AGAIN ? DBP_OK : st;
}

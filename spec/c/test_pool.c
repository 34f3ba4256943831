/* test_pool.c: csrc/pool.c against a real PostgreSQL (DBPOOL_TEST_DSN, set by
 * scripts/with-pg.sh), from one thread and from many.
 *
 * SQLAlchemy's counters and status text, lazy opening, overflow closed on
 * return, LIFO/FIFO, unbounded pools, the timeout error, try_checkout without
 * barging, invalidate and dispose, connect failures (no leaked slot, no
 * password), reset on return, server-side kills, and under threads: the
 * capacity bound, FIFO service of waiters and per-waiter deadlines.  Last, a
 * real fork(): the child forgets inherited connections without a byte on
 * their sockets, and the parent's keep working.
 *
 * Each test gives its pool a unique application_name, so that a separate
 * monitor connection can count the pool's backends in pg_stat_activity. */
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "conn.h"
#include "pool.h"
#include "testlib.h"
#include "testpool.h"

static const char *g_dsn;     /* DBPOOL_TEST_DSN */
static dbp_conn *g_monitor;   /* main thread only */

/* ---- helpers ---------------------------------------------------------- */

static const dbp_option *opt(const char *name)
{
    const dbp_option *o = dbp_option_find(name);

    if (o == NULL)
        bail_out("option '%s' is not in dbp_options", name);
    return o;
}

/* Sets one numeric option of an unfinished config. */
static void cfg_set(dbp_config *c, const char *name, double value)
{
    dbp_error err;

    if (dbp_config_set_number(c, opt(name), value, &err) != DBP_OK)
        bail_out("%s: %s", name, err.message);
}

/* A config named and application_name'd "dbpct_<pid>_<tag>", left
 * unfinished so that a test can set more before dbp_config_finish. */
static void cfg_begin(dbp_config *c, const char *tag, const char *dsn, int size, int overflow,
                      double timeout)
{
    char app[64];
    dbp_error err;

    snprintf(app, sizeof app, "dbpct_%d_%s", (int)getpid(), tag);
    dbp_config_init(c);
    if (dbp_config_set_string(c, opt("name"), app, &err) != DBP_OK ||
        dbp_config_set_string(c, opt("dsn"), dsn, &err) != DBP_OK ||
        dbp_config_set_string(c, opt("application_name"), app, &err) != DBP_OK ||
        dbp_config_set_number(c, opt("pool_size"), size, &err) != DBP_OK ||
        dbp_config_set_number(c, opt("max_overflow"), overflow, &err) != DBP_OK ||
        dbp_config_set_number(c, opt("pool_timeout"), timeout, &err) != DBP_OK ||
        dbp_config_set_number(c, opt("connect_timeout"), 5, &err) != DBP_OK)
        bail_out("config for %s: %s", tag, err.message);
}

static void cfg_end(dbp_config *c)
{
    dbp_error err;

    if (dbp_config_finish(c, &err) != DBP_OK)
        bail_out("config for %s: %s", c->name, err.message);
}

static void cfg_make(dbp_config *c, const char *tag, const char *dsn, int size, int overflow,
                     double timeout)
{
    cfg_begin(c, tag, dsn, size, overflow, timeout);
    cfg_end(c);
}

/* A pool from cfg; cfg is freed (the pool keeps its own copy). */
static dbp_pool *pool_from(dbp_config *cfg)
{
    dbp_pool *p = NULL;
    dbp_error err;

    if (dbp_pool_new(cfg, &p, &err) != DBP_OK)
        bail_out("dbp_pool_new: %s", err.message);
    dbp_config_free(cfg);
    return p;
}

static dbp_pool *pool_make(const char *tag, int size, int overflow, double timeout)
{
    dbp_config cfg;

    cfg_make(&cfg, tag, g_dsn, size, overflow, timeout);
    return pool_from(&cfg);
}

static const char *app_of(dbp_pool *p)
{
    return dbp_pool_config(p)->application_name;
}

/* A checkout that the test needs in order to go on. */
static dbp_slot *take(dbp_pool *p)
{
    dbp_slot *s = NULL;
    dbp_error err;

    if (dbp_pool_checkout(p, &s, &err) != DBP_OK)
        bail_out("checkout from %s failed: %s", app_of(p), err.message);
    return s;
}

static int pid_of(dbp_slot *s)
{
    return dbp_conn_backend_pid(dbp_slot_conn(s));
}

static dbp_status run(dbp_conn *c, const char *sql, dbp_error *err)
{
    dbp_result *r = NULL;
    dbp_statement stmt = {.sql = sql, .simple = true};
    dbp_status st = dbp_conn_exec(c, &stmt, 0, &r, err);

    if (st == DBP_OK)
        dbp_result_free(r);
    return st;
}

/* The first value of a one-row query with at most one text parameter, or
 * "ERROR: ..." when it fails. */
static void q_text(dbp_conn *c, const char *sql, const char *param, char *out, size_t size)
{
    dbp_result *r = NULL;
    dbp_error err;
    const char *values[1] = {param};
    dbp_statement stmt = {.sql = sql, .nparams = param ? 1 : 0, .values = values};
    size_t len;
    const char *v;

    if (dbp_conn_exec(c, &stmt, 0, &r, &err) != DBP_OK) {
        snprintf(out, size, "ERROR: %s", err.message);
        return;
    }
    v = dbp_result_rows(r) > 0 ? dbp_result_field(r, 0, 0, &len) : "(no rows)";
    snprintf(out, size, "%s", v ? v : "NULL");
    dbp_result_free(r);
}

static long q_long(dbp_conn *c, const char *sql, const char *param)
{
    char buf[600];

    q_text(c, sql, param, buf, sizeof buf);
    if (strncmp(buf, "ERROR", 5) == 0) {
        diag("query failed: %s: %s", sql, buf);
        return LONG_MIN;
    }
    return atol(buf);
}

static long backends(const char *app)
{
    return q_long(g_monitor,
                  "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", app);
}

/* Backends leave pg_stat_activity a moment after their client hangs up:
 * poll until the count is want or 3 s pass; returns the last count. */
static long wait_backends(const char *app, long want)
{
    double end = tl_now() + 3.0;
    long n;

    while ((n = backends(app)) != want && tl_now() < end)
        tl_sleep(0.01);
    return n;
}

/* Polls until `waiting` is want (3 s at most). */
static int wait_for_waiters(dbp_pool *p, int want)
{
    double end = tl_now() + 3.0;

    while (counts(p).waiting != want && tl_now() < end)
        tl_sleep(0.002);
    return counts(p).waiting;
}

/* One checkout on its own thread. */
typedef struct job {
    dbp_pool *pool;
    int release;            /* give it back at once (else main does) */
    atomic_int *served;     /* when set: order = the how-many-th to be served */
    /* results */
    dbp_status st;
    dbp_error err;
    dbp_slot *slot;
    int pid;
    int order;
    double elapsed;
    pthread_t thread;
} job;

static void *job_main(void *arg)
{
    job *j = arg;
    double t0 = tl_now();

    j->st = dbp_pool_checkout(j->pool, &j->slot, &j->err);
    j->elapsed = tl_now() - t0;
    if (j->st == DBP_OK) {
        j->pid = pid_of(j->slot);
        if (j->served != NULL)
            j->order = atomic_fetch_add(j->served, 1);
        if (j->release) {
            dbp_pool_release(j->pool, j->slot);
            j->slot = NULL;
        }
    }
    return NULL;
}

static void job_start(job *j, dbp_pool *p, int release, atomic_int *served)
{
    memset(j, 0, sizeof *j);
    j->pool = p;
    j->release = release;
    j->served = served;
    j->order = -1;
    if (pthread_create(&j->thread, NULL, job_main, j) != 0)
        bail_out("pthread_create failed");
}

static void job_join(job *j)
{
    pthread_join(j->thread, NULL);
}

/* ---- dbpool.remove with a checkout waiting --------------------------------- */

/* dbp_pool_retire (dbpool.remove) wakes the queued checkouts: they fail
 * with DBP_CLOSED instead of opening connections on the removed pool,
 * which nobody would close. */
static void test_retire_wakes_waiters(void)
{
    dbp_pool *p = pool_make("retire_waiters", 1, 0, 5);
    dbp_slot *held = NULL, *s = NULL;
    dbp_error err;
    job j;

    if (dbp_pool_checkout(p, &held, &err) != DBP_OK)
        bail_out("checkout: %s", err.message);
    job_start(&j, p, 1, NULL);
    is_int(wait_for_waiters(p, 1), 1, "removal: one checkout queued");
    dbp_pool_retire(p);
    job_join(&j);
    is_int(j.st, DBP_CLOSED, "... the queued checkout fails with DBP_CLOSED");
    ok(j.elapsed < 2, "... at the removal, not at pool_timeout (%.2f s)", j.elapsed);
    like(j.err.message, "was removed", "... saying the engine was removed");
    is_int(dbp_pool_checkout(p, &s, &err), DBP_CLOSED, "... and so does a new checkout");
    is_int(metric(p, DBP_M_CONNECTS), 1, "... no connection opened after it");
    dbp_pool_release(p, held);
    is_int(counts(p).total, 0, "... the held one closed at its return");
    dbp_pool_free(p);
}

/* ---- SQLAlchemy's counters, lazy opening -------------------------------- */

static void test_counters(void)
{
    dbp_pool *p = pool_make("counters", 5, 10, 30);
    dbp_pool_counts c = counts(p);
    char text[256];
    dbp_slot *s;
    int pid;

    is_int(c.size, 5, "fresh pool: size 5");
    is_int(c.checkedin, 0, "fresh pool: checkedin 0");
    is_int(c.checkedout, 0, "fresh pool: checkedout 0");
    is_int(c.overflow, -5, "fresh pool: overflow -5");
    is_int(c.total, 0, "fresh pool: total 0");
    is_int(c.waiting, 0, "fresh pool: waiting 0");
    dbp_pool_status_text(&c, text, sizeof text);
    is_str(text,
           "Pool size: 5  Connections in pool: 0 Current Overflow: -5 "
           "Current Checked out connections: 0",
           "fresh pool: status text");
    tl_sleep(0.05);
    is_int(backends(app_of(p)), 0, "a new pool opens no connection");

    s = take(p);
    pid = pid_of(s);
    c = counts(p);
    is_int(c.checkedout, 1, "after one checkout: checkedout 1");
    is_int(c.overflow, -4, "after one checkout: overflow -4");
    is_int(c.checkedin, 0, "after one checkout: checkedin 0");
    is_int(wait_backends(app_of(p), 1), 1, "after one checkout: the server sees 1 backend");

    dbp_pool_release(p, s);
    c = counts(p);
    is_int(c.checkedin, 1, "after release: checkedin 1");
    is_int(c.checkedout, 0, "after release: checkedout 0");
    is_int(c.overflow, -4, "after release: overflow -4");
    dbp_pool_status_text(&c, text, sizeof text);
    is_str(text,
           "Pool size: 5  Connections in pool: 1 Current Overflow: -4 "
           "Current Checked out connections: 0",
           "after release: status text");

    s = take(p);
    is_int(pid_of(s), pid, "the next checkout reuses the idle connection");
    dbp_pool_release(p, s);
    is_int(metric(p, DBP_M_CONNECTS), 1, "metrics: 1 connect");
    is_int(dbp_metrics_checkouts(dbp_pool_metrics(p)), 2, "metrics: 2 checkouts");
    is_int(metric(p, DBP_M_WAITS), 0, "metrics: no waits");

    char app[64];
    snprintf(app, sizeof app, "%s", app_of(p));
    dbp_pool_free(p);
    is_int(wait_backends(app, 0), 0, "dbp_pool_free closes the idle connection");
}

/* ---- overflow ----------------------------------------------------------- */

static void test_overflow(void)
{
    dbp_pool *p = pool_make("overflow", 2, 2, 0.1);
    dbp_slot *s[4], *extra = NULL;
    dbp_pool_counts c;
    dbp_error err;
    int pid[4];

    for (int i = 0; i < 4; i++) {
        s[i] = take(p);
        pid[i] = pid_of(s[i]);
    }
    c = counts(p);
    is_int(c.checkedout, 4, "pool 2+2, 4 taken: checkedout 4");
    is_int(c.overflow, 2, "pool 2+2, 4 taken: overflow 2");
    is_int(c.total, 4, "pool 2+2, 4 taken: total 4");
    is_int(dbp_pool_try_checkout(p, &extra, &err), DBP_AGAIN,
           "pool 2+2, 4 taken: a fifth try_checkout is DBP_AGAIN");
    is_int(wait_backends(app_of(p), 4), 4, "the server sees 4 backends");

    for (int i = 0; i < 4; i++)
        dbp_pool_release(p, s[i]);
    c = counts(p);
    is_int(c.checkedin, 2, "all 4 returned: checkedin 2 (pool_size)");
    is_int(c.total, 2, "all 4 returned: total 2 (overflow closed)");
    is_int(c.overflow, 0, "all 4 returned: overflow 0");
    is_int(c.checkedout, 0, "all 4 returned: checkedout 0");
    is_int(wait_backends(app_of(p), 2), 2, "the server sees 2 backends left");

    s[0] = take(p);
    s[1] = take(p);
    ok(pid_of(s[0]) == pid[0] && pid_of(s[1]) == pid[1],
       "the first two returned were kept, the later two closed");
    dbp_pool_release(p, s[0]);
    dbp_pool_release(p, s[1]);
    dbp_pool_free(p);
}

/* ---- LIFO / FIFO -------------------------------------------------------- */

static void test_lifo_fifo(void)
{
    for (int lifo = 0; lifo <= 1; lifo++) {
        dbp_config cfg;
        dbp_pool *p;
        dbp_slot *a, *b, *n;
        int pa, pb;

        cfg_make(&cfg, lifo ? "lifo" : "fifo", g_dsn, 2, 0, 1);
        cfg.use_lifo = lifo;
        p = pool_from(&cfg);
        a = take(p);
        b = take(p);
        pa = pid_of(a);
        pb = pid_of(b);
        dbp_pool_release(p, a);   /* returned first */
        dbp_pool_release(p, b);   /* returned last */
        n = take(p);
        if (lifo)
            is_int(pid_of(n), pb, "use_lifo: the most recently returned comes back first");
        else
            is_int(pid_of(n), pa, "FIFO: the connection returned longest ago comes back first");
        dbp_pool_release(p, n);
        dbp_pool_free(p);
    }
}

/* ---- unbounded pools ---------------------------------------------------- */

static void test_unbounded(void)
{
    enum { N = 12 };
    static const struct { const char *tag; int size, overflow; } cases[] = {
        {"unbounded_overflow", 2, -1},   /* max_overflow = -1 */
        {"unbounded_size", 0, 0},        /* pool_size = 0: no limit */
    };

    for (size_t k = 0; k < 2; k++) {
        dbp_pool *p = pool_make(cases[k].tag, cases[k].size, cases[k].overflow, 0.1);
        dbp_slot *s[N];
        dbp_error err;
        int got = 0, distinct = 1;
        dbp_pool_counts c;
        char app[64];

        for (int i = 0; i < N; i++) {
            if (dbp_pool_try_checkout(p, &s[i], &err) != DBP_OK) {
                diag("checkout %d: %s", i, err.message);
                break;
            }
            got++;
        }
        is_int(got, N, "%s (size %d, overflow %d): %d checkouts at once", cases[k].tag,
               cases[k].size, cases[k].overflow, N);
        for (int i = 0; i < got; i++)
            for (int j = 0; j < i; j++)
                if (pid_of(s[i]) == pid_of(s[j]))
                    distinct = 0;
        ok(distinct, "%s: %d distinct backends", cases[k].tag, got);
        c = counts(p);
        is_int(c.total, got, "%s: total %d", cases[k].tag, got);
        /* SQLAlchemy 2.x: no size limit, no overflow. */
        is_int(c.overflow, cases[k].size > 0 ? got - cases[k].size : 0, "%s: overflow %d",
               cases[k].tag, cases[k].size > 0 ? got - cases[k].size : 0);
        for (int i = 0; i < got; i++)
            dbp_pool_release(p, s[i]);
        c = counts(p);
        if (cases[k].size > 0) {
            is_int(c.checkedin, cases[k].size, "%s: returned, pool_size %d kept", cases[k].tag,
                   cases[k].size);
            is_int(wait_backends(app_of(p), cases[k].size), cases[k].size,
                   "%s: the server sees %d backends left", cases[k].tag, cases[k].size);
        } else {
            is_int(c.checkedin, got, "%s: returned, all %d kept (no idle limit)", cases[k].tag,
                   got);
        }
        snprintf(app, sizeof app, "%s", app_of(p));
        dbp_pool_free(p);
        is_int(wait_backends(app, 0), 0, "%s: freed, no backend left", cases[k].tag);
    }
}

/* ---- timeout ------------------------------------------------------------ */

static void test_timeout(void)
{
    dbp_pool *p = pool_make("timeout", 1, 0, 0.2);
    dbp_slot *held = take(p), *s = NULL;
    dbp_pool_counts before = counts(p), after;
    dbp_error err;
    double t0, el;
    dbp_status st;

    t0 = tl_now();
    st = dbp_pool_checkout(p, &s, &err);
    el = tl_now() - t0;
    is_int(st, DBP_TIMEOUT, "exhausted pool: checkout fails with DBP_TIMEOUT");
    is_int(err.status, DBP_TIMEOUT, "... err.status is DBP_TIMEOUT");
    between(el, 0.2, 0.45, "... after pool_timeout 0.2 s (took %.3f s)", el);
    is_str(err.message,
           "QueuePool limit of size 1 overflow 0 reached, connection timed out, timeout 0.20",
           "... with SQLAlchemy's message");
    is_str(err.detail, "total=1, in_use=1, idle=0, waiting=0", "... and the live state in detail");
    is_str(dbp_status_kind(st), "timeout", "... kind 'timeout'");
    after = counts(p);
    ok(memcmp(&before, &after, sizeof before) == 0, "... and the counts are unchanged");
    is_int(after.waiting, 0, "... nobody left waiting");
    is_int(metric(p, DBP_M_TIMEOUTS), 1, "metrics: 1 timeout");
    is_int(metric(p, DBP_M_WAITS), 1, "metrics: 1 wait");
    dbp_pool_release(p, held);
    is_int(counts(p).checkedin, 1, "after the timeout, release still works");
    dbp_pool_free(p);
}

/* ---- try_checkout ------------------------------------------------------- */

static void test_try_checkout(void)
{
    dbp_pool *p = pool_make("try", 1, 0, 5);
    dbp_slot *held = take(p), *s = NULL;
    int held_pid = pid_of(held);
    dbp_error err;
    double t0 = tl_now(), el;
    job w;

    is_int(dbp_pool_try_checkout(p, &s, &err), DBP_AGAIN, "try_checkout on an exhausted pool: DBP_AGAIN");
    el = tl_now() - t0;
    between(el, 0, 0.05, "... at once (took %.3f s)", el);
    is_int(err.status, DBP_AGAIN, "... err.status is DBP_AGAIN");
    is_int(counts(p).waiting, 0, "... and it does not queue");

    job_start(&w, p, 0, NULL);
    is_int(wait_for_waiters(p, 1), 1, "a blocking checkout queues (waiting 1)");
    is_int(dbp_pool_try_checkout(p, &s, &err), DBP_AGAIN, "try_checkout with a waiter queued: DBP_AGAIN");
    dbp_pool_release(p, held);
    is_int(dbp_pool_try_checkout(p, &s, &err), DBP_AGAIN,
           "try_checkout right after a release: DBP_AGAIN (the waiter got it: no barging)");
    job_join(&w);
    is_int(w.st, DBP_OK, "the waiter was served");
    is_int(w.pid, held_pid, "... with the released connection (hand-off)");
    is_int(counts(p).checkedout, 1, "... and holds it");
    dbp_pool_release(p, w.slot);
    is_int(dbp_pool_try_checkout(p, &s, &err), DBP_OK, "try_checkout with an idle connection: DBP_OK");
    dbp_pool_release(p, s);
    dbp_pool_free(p);
}

/* ---- invalidate, dispose ------------------------------------------------ */

static void test_invalidate(void)
{
    dbp_pool *p = pool_make("invalidate", 1, 0, 3);
    dbp_slot *held = take(p);
    int old = pid_of(held);
    dbp_pool_counts c;
    job w;

    job_start(&w, p, 0, NULL);
    is_int(wait_for_waiters(p, 1), 1, "a waiter queues behind the held connection");
    dbp_pool_invalidate(p, held);
    job_join(&w);
    is_int(w.st, DBP_OK, "invalidate frees the capacity: the waiter is served");
    ok(w.pid != old && w.pid > 0, "... by a new connection (pid %d, old %d)", w.pid, old);
    c = counts(p);
    is_int(c.total, 1, "... total 1");
    is_int(c.checkedout, 1, "... checkedout 1");
    is_int(metric(p, DBP_M_INVALIDATIONS), 1, "metrics: 1 invalidation");
    is_int(metric(p, DBP_M_CONNECTS), 2, "metrics: 2 connects");
    is_int(wait_backends(app_of(p), 1), 1, "the invalidated connection is closed on the server");
    dbp_pool_release(p, w.slot);
    is_int(counts(p).checkedin, 1, "the new one goes idle on release");
    dbp_pool_free(p);
}

static void test_dispose(void)
{
    dbp_pool *p = pool_make("dispose", 2, 2, 1);
    dbp_slot *a = take(p), *b = take(p), *c = take(p), *d;
    int pa = pid_of(a), pb = pid_of(b), pc = pid_of(c);
    dbp_pool_counts n;

    dbp_pool_release(p, a);
    dbp_pool_release(p, b);
    n = counts(p);
    ok(n.checkedin == 2 && n.total == 3, "before dispose: 2 idle, 1 out");
    is_int(wait_backends(app_of(p), 3), 3, "before dispose: the server sees 3 backends");
    dbp_pool_dispose(p);
    n = counts(p);
    is_int(n.checkedin, 0, "dispose closes the idle connections: checkedin 0");
    /* SQLAlchemy's Engine.dispose(): a fresh pool; the one checked out is
     * retired, no longer counted, and closed on return. */
    is_int(n.total, 0, "... total 0 (the one checked out is retired)");
    is_int(n.checkedout, 0, "... checkedout 0");
    is_int(wait_backends(app_of(p), 1), 1, "... the server sees 1 backend: the retired one");
    dbp_pool_release(p, c);
    n = counts(p);
    is_int(n.total, 0, "a connection checked out before dispose is closed on return: total 0");
    is_int(n.checkedin, 0, "... checkedin 0");
    is_int(wait_backends(app_of(p), 0), 0, "... the server sees no backend");
    d = take(p);
    ok(pid_of(d) != pa && pid_of(d) != pb && pid_of(d) != pc,
       "the pool stays usable after dispose, with a new connection");
    dbp_pool_release(p, d);
    is_int(counts(p).checkedin, 1, "... which is kept idle on return");
    dbp_pool_free(p);
}

/* ---- connect failures --------------------------------------------------- */

static void test_connect_failure(void)
{
    static const char *const dsns[] = {
        "postgresql://u:TopSecret99@127.0.0.1:1/x",
        "host=127.0.0.1 port=1 user=u password=TopSecret99 dbname=x",
    };

    for (size_t k = 0; k < 2; k++) {
        dbp_config cfg;
        dbp_pool *p;
        dbp_slot *s = NULL;
        dbp_error err;
        dbp_pool_counts c;
        dbp_status st;
        const char *form = k == 0 ? "URI" : "key=value";

        /* One attempt per checkout and no breaker: each checkout must reach
         * the (closed) port again.  Retries and the breaker have their own
         * tests (test_breaker.c, spec/recovery_spec.lua). */
        cfg_begin(&cfg, "connfail", dsns[k], 1, 0, 0.1);
        cfg_set(&cfg, "retry.attempts", 1);
        cfg_set(&cfg, "breaker.failures", 0);
        cfg_end(&cfg);
        p = pool_from(&cfg);
        st = dbp_pool_checkout(p, &s, &err);
        is_int(st, DBP_CONNECT, "%s: a closed port gives DBP_CONNECT", form);
        is_str(dbp_status_kind(err.status), "connect", "%s: ... kind 'connect'", form);
        like(err.message, "could not connect", "%s: ... the message says so", form);
        unlike(err.message, "TopSecret99", "%s: ... and holds no password", form);
        diag("%s: %s", form, err.message);
        c = counts(p);
        ok(c.total == 0 && c.checkedout == 0 && c.waiting == 0,
           "%s: ... and leaves total 0, checkedout 0, waiting 0", form);
        /* pool_size 1, max_overflow 0: a leaked slot would make this a timeout. */
        is_int(dbp_pool_checkout(p, &s, &err), DBP_CONNECT,
               "%s: a second checkout tries to connect again (no leaked slot)", form);
        is_int(dbp_pool_try_checkout(p, &s, &err), DBP_CONNECT,
               "%s: so does try_checkout", form);
        unlike(err.message, "TopSecret99", "%s: ... still no password", form);
        is_int(metric(p, DBP_M_CONNECT_FAILURES), 3, "%s: metrics: 3 connect failures", form);
        is_int(dbp_metrics_checkouts(dbp_pool_metrics(p)), 0, "%s: metrics: 0 checkouts", form);
        is_int(counts(p).total, 0, "%s: total still 0", form);
        dbp_pool_free(p);
    }
}

/* ---- reset on return ---------------------------------------------------- */

static void must_run(dbp_slot *s, const char *sql)
{
    dbp_error err;

    if (run(dbp_slot_conn(s), sql, &err) != DBP_OK)
        bail_out("%s: %s", sql, err.message);
}

static void test_reset_on_return(void)
{
    dbp_pool *p = pool_make("reset", 1, 0, 2);
    dbp_slot *s = take(p);
    int pid = pid_of(s);
    dbp_error err;
    char buf[600];

    must_run(s, "BEGIN");
    must_run(s, "CREATE TEMP TABLE dbpct_marker (x int)");
    is_int(dbp_conn_txn(dbp_slot_conn(s)), DBP_TXN_OPEN, "BEGIN: the transaction is open");
    dbp_pool_release(p, s);
    s = take(p);
    is_int(pid_of(s), pid, "the same connection comes back");
    is_int(dbp_conn_txn(dbp_slot_conn(s)), DBP_TXN_IDLE, "... with no transaction open");
    q_text(dbp_slot_conn(s), "SELECT to_regclass('pg_temp.dbpct_marker') IS NULL", NULL, buf,
           sizeof buf);
    is_str(buf, "t", "... and the work of the open transaction rolled back");

    must_run(s, "BEGIN");
    is_int(run(dbp_slot_conn(s), "SELECT 1/0", &err), DBP_QUERY,
           "a failed statement inside a transaction: DBP_QUERY");
    is_str(err.sqlstate, "22012", "... sqlstate 22012");
    is_int(dbp_conn_txn(dbp_slot_conn(s)), DBP_TXN_OPEN, "... the transaction is open (failed)");
    ok(!dbp_conn_broken(dbp_slot_conn(s)), "... the connection is not broken");
    dbp_pool_release(p, s);
    s = take(p);
    is_int(pid_of(s), pid, "the same connection comes back");
    is_int(dbp_conn_txn(dbp_slot_conn(s)), DBP_TXN_IDLE, "... rolled back");
    is_int(q_long(dbp_slot_conn(s), "SELECT 41 + 1", NULL), 42, "... and usable");
    dbp_pool_release(p, s);
    is_int(metric(p, DBP_M_INVALIDATIONS), 0, "metrics: no invalidation");
    is_int(metric(p, DBP_M_CONNECTS), 1, "metrics: 1 connect");
    dbp_pool_free(p);

    /* reset_on_return = "commit" keeps the work. */
    dbp_config cfg;
    cfg_make(&cfg, "reset_commit", g_dsn, 1, 0, 2);
    cfg.reset_on_return = DBP_RESET_COMMIT;
    cfg.reset_session = DBP_SESSION_KEEP;      /* else DISCARD ALL drops the temp table */
    p = pool_from(&cfg);
    s = take(p);
    pid = pid_of(s);
    must_run(s, "BEGIN");
    must_run(s, "CREATE TEMP TABLE dbpct_marker (x int)");
    dbp_pool_release(p, s);
    s = take(p);
    is_int(pid_of(s), pid, "reset_on_return commit: the same connection comes back");
    is_int(dbp_conn_txn(dbp_slot_conn(s)), DBP_TXN_IDLE, "... with no transaction open");
    q_text(dbp_slot_conn(s), "SELECT to_regclass('pg_temp.dbpct_marker') IS NOT NULL", NULL,
           buf, sizeof buf);
    is_str(buf, "t", "... and the work committed");
    dbp_pool_release(p, s);
    dbp_pool_free(p);
}

static void test_killed(void)
{
    dbp_pool *p = pool_make("killed", 2, 0, 2);
    dbp_slot *s = take(p);
    int pid = pid_of(s);
    char pidtext[16], buf[600];
    dbp_error err;

    snprintf(pidtext, sizeof pidtext, "%d", pid);
    q_text(g_monitor, "SELECT pg_terminate_backend($1::int, 5000)", pidtext, buf, sizeof buf);
    is_str(buf, "t", "pg_terminate_backend on a checked-out connection");
    is_int(run(dbp_slot_conn(s), "SELECT 1", &err), DBP_QUERY, "its next query fails");
    diag("after the kill: [%s] %s", err.sqlstate, err.message);
    ok(dbp_conn_broken(dbp_slot_conn(s)), "... and marks it broken");
    dbp_pool_release(p, s);
    is_int(counts(p).total, 0, "release discards it: total 0");
    is_int(counts(p).checkedin, 0, "... checkedin 0");
    is_int(metric(p, DBP_M_INVALIDATIONS), 1, "metrics: 1 invalidation");
    s = take(p);
    ok(pid_of(s) != pid, "the killed connection does not come back");
    is_int(q_long(dbp_slot_conn(s), "SELECT 7", NULL), 7, "... its replacement works");
    dbp_pool_release(p, s);
    dbp_pool_free(p);
}

/* ---- threads ------------------------------------------------------------ */

enum { HAMMER_THREADS = 16, HAMMER_ITERS = 50, HAMMER_CAP = 5 };

typedef struct hammer {
    dbp_pool *pool;
    atomic_int in_use, max_in_use, failures;
    pthread_mutex_t mu;             /* guards first_error */
    char first_error[600];
} hammer;

static void *hammer_main(void *arg)
{
    hammer *h = arg;
    dbp_error err;

    for (int i = 0; i < HAMMER_ITERS; i++) {
        dbp_slot *s = NULL;
        dbp_status st = dbp_pool_checkout(h->pool, &s, &err);
        if (st == DBP_OK) {
            int now = atomic_fetch_add(&h->in_use, 1) + 1;
            int max = atomic_load(&h->max_in_use);
            while (now > max && !atomic_compare_exchange_weak(&h->max_in_use, &max, now))
                ;
            st = run(dbp_slot_conn(s), i % 4 == 0 ? "SELECT pg_sleep(0.001)" : "SELECT 1", &err);
            atomic_fetch_sub(&h->in_use, 1);
            dbp_pool_release(h->pool, s);
        }
        if (st != DBP_OK) {
            atomic_fetch_add(&h->failures, 1);
            pthread_mutex_lock(&h->mu);
            if (h->first_error[0] == '\0')
                snprintf(h->first_error, sizeof h->first_error, "%s", err.message);
            pthread_mutex_unlock(&h->mu);
        }
    }
    return NULL;
}

static void test_threads_hammer(void)
{
    static hammer h;
    pthread_t t[HAMMER_THREADS];
    dbp_pool_counts c;
    double t0 = tl_now();

    memset(&h, 0, sizeof h);
    h.pool = pool_make("hammer", 3, 2, 5);
    pthread_mutex_init(&h.mu, NULL);
    for (int i = 0; i < HAMMER_THREADS; i++)
        if (pthread_create(&t[i], NULL, hammer_main, &h) != 0)
            bail_out("pthread_create failed");
    for (int i = 0; i < HAMMER_THREADS; i++)
        pthread_join(t[i], NULL);
    diag("hammer: %d threads x %d checkouts in %.2f s, at most %d in use, %llu waits",
         HAMMER_THREADS, HAMMER_ITERS, tl_now() - t0, atomic_load(&h.max_in_use),
         (unsigned long long)metric(h.pool, DBP_M_WAITS));

    is_int(atomic_load(&h.failures), 0, "hammer: no checkout or query failed%s%s",
           h.first_error[0] ? ": " : "", h.first_error);
    ok(atomic_load(&h.max_in_use) <= HAMMER_CAP && atomic_load(&h.max_in_use) >= 1,
       "hammer: in use never above capacity %d (max %d)", HAMMER_CAP,
       atomic_load(&h.max_in_use));
    c = counts(h.pool);
    is_int(c.checkedout, 0, "hammer: afterwards checkedout 0");
    is_int(c.waiting, 0, "hammer: afterwards waiting 0");
    ok(c.total <= HAMMER_CAP && c.total >= 1, "hammer: afterwards total %d <= %d", c.total,
       HAMMER_CAP);
    is_int(c.checkedin, c.total, "hammer: afterwards every connection is idle");
    is_int(c.checkedin <= 3, 1, "hammer: no more than pool_size 3 kept idle");
    is_int(dbp_metrics_checkouts(dbp_pool_metrics(h.pool)), HAMMER_THREADS * HAMMER_ITERS,
           "hammer: metrics count every checkout (%d)", HAMMER_THREADS * HAMMER_ITERS);
    is_int(metric(h.pool, DBP_M_TIMEOUTS), 0, "hammer: no timeouts");
    is_int(wait_backends(app_of(h.pool), c.total), c.total,
           "hammer: the server sees exactly the pool's %d connections", c.total);
    dbp_pool_free(h.pool);
    pthread_mutex_destroy(&h.mu);
}

enum { QUEUE_THREADS = 8 };

static void test_fifo_waiters(void)
{
    dbp_pool *p = pool_make("queue", 1, 0, 5);
    dbp_slot *held = take(p);
    atomic_int served;
    job j[QUEUE_THREADS];
    int queued = 1, in_order = 1, all_ok = 1;
    char orders[128] = "";

    atomic_init(&served, 0);
    for (int k = 0; k < QUEUE_THREADS; k++) {
        job_start(&j[k], p, 1, &served);
        if (wait_for_waiters(p, k + 1) != k + 1)
            queued = 0;
        tl_sleep(0.03);
    }
    ok(queued, "%d threads queue one by one (waiting reached each count)", QUEUE_THREADS);
    dbp_pool_release(p, held);
    for (int k = 0; k < QUEUE_THREADS; k++) {
        size_t len = strlen(orders);
        job_join(&j[k]);
        if (j[k].st != DBP_OK) {
            all_ok = 0;
            diag("waiter %d: %s", k, j[k].err.message);
        }
        if (j[k].order != k)
            in_order = 0;
        snprintf(orders + len, sizeof orders - len, "%s%d", k ? " " : "", j[k].order);
    }
    ok(all_ok, "every waiter was served");
    ok(in_order, "waiters were served in arrival order (service order by arrival: %s)", orders);
    is_int(counts(p).checkedin, 1, "afterwards the one connection is idle");
    is_int(metric(p, DBP_M_CONNECTS), 1, "... and it was the only one ever opened");
    dbp_pool_free(p);
}

static void test_deadlines(void)
{
    dbp_pool *p = pool_make("deadlines", 1, 0, 0.3);
    dbp_slot *held = take(p);
    job j[QUEUE_THREADS];
    int timeouts = 0, in_window = 0;
    double lo = 1e9, hi = 0;

    for (int k = 0; k < QUEUE_THREADS; k++)
        job_start(&j[k], p, 1, NULL);
    for (int k = 0; k < QUEUE_THREADS; k++) {
        job_join(&j[k]);
        if (j[k].st == DBP_TIMEOUT)
            timeouts++;
        if (j[k].elapsed >= 0.3 && j[k].elapsed < 0.6)
            in_window++;
        if (j[k].elapsed < lo)
            lo = j[k].elapsed;
        if (j[k].elapsed > hi)
            hi = j[k].elapsed;
    }
    is_int(timeouts, QUEUE_THREADS, "%d waiters on a held connection all time out",
           QUEUE_THREADS);
    is_int(in_window, QUEUE_THREADS,
           "each within [0.3, 0.6) s of its own start (from %.3f to %.3f s)", lo, hi);
    is_int(counts(p).waiting, 0, "afterwards nobody is waiting");
    is_int(counts(p).total, 1, "... total 1");
    is_int(metric(p, DBP_M_TIMEOUTS), QUEUE_THREADS, "metrics: %d timeouts", QUEUE_THREADS);
    dbp_pool_release(p, held);
    is_int(counts(p).checkedin, 1, "the held connection goes idle on release");
    dbp_pool_free(p);
}

/* In the child: checks that print nothing (TAP lines belong to the parent);
 * the exit status says which one failed. */
static int child_after_fork(dbp_pool *p, dbp_slot *held, int idle_pid, int held_pid)
{
    dbp_slot *s = NULL;
    dbp_error err;
    int pid;

    if (!dbp_slot_inherited(held))
        return 10;
    dbp_pool_release(p, held);                 /* forgotten, not pooled */
    if (counts(p).total != 0)
        return 11;
    if (dbp_pool_checkout(p, &s, &err) != DBP_OK)
        return 12;
    pid = pid_of(s);
    if (pid == idle_pid || pid == held_pid)
        return 13;                             /* got the parent's backend */
    if (run(dbp_slot_conn(s), "SELECT 1", &err) != DBP_OK)
        return 14;
    dbp_pool_release(p, s);
    if (counts(p).total != 1 || counts(p).checkedin != 1)
        return 15;
    dbp_pool_free(p);                          /* closes the child's own politely */
    return 0;
}

static void test_fork(void)
{
    dbp_pool *p = pool_make("fork", 2, 0, 2);
    dbp_slot *idle = take(p), *held = take(p);
    int idle_pid = pid_of(idle), held_pid = pid_of(held), status = -1;
    dbp_error err;
    pid_t child;

    dbp_pool_release(p, idle);
    fflush(stdout);
    child = fork();
    if (child == 0)
        _exit(child_after_fork(p, held, idle_pid, held_pid));
    ok(child > 0 && waitpid(child, &status, 0) == child, "fork and wait");
    ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
       "child: inherited checkout forgotten, own connection opened (exit status %d)",
       WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    ok(!dbp_slot_inherited(held), "in the parent the checkout is its own");
    is_int(run(dbp_slot_conn(held), "SELECT 1", &err), DBP_OK,
           "the parent's checked-out connection still works");
    dbp_pool_release(p, held);
    held = take(p);
    is_int(pid_of(held), idle_pid, "the parent's idle connection is still the same backend");
    is_int(run(dbp_slot_conn(held), "SELECT 1", &err), DBP_OK, "... and still works");
    dbp_pool_release(p, held);
    is_int(counts(p).total, 2, "the parent still counts 2 connections");
    is_int(wait_backends(app_of(p), 2), 2, "the server sees the parent's 2 (the child's left)");
    dbp_pool_free(p);
}

/* max_total_connections across processes: the cap is shared with a forked
 * child, and what a child that died holding connections had is taken back. */
static void test_cap_across_fork(void)
{
    dbp_config cfg;
    dbp_pool *p;
    dbp_slot *mine, *second = NULL, *third = NULL;
    dbp_error err;
    int status = -1;
    pid_t child;

    cfg_begin(&cfg, "cap", g_dsn, 4, 0, 0.2);
    cfg_set(&cfg, "max_total_connections", 2);
    cfg_end(&cfg);
    p = pool_from(&cfg);
    mine = take(p);
    fflush(stdout);
    child = fork();
    if (child == 0) {
        dbp_slot *a = NULL, *b = NULL;
        if (dbp_pool_checkout(p, &a, &err) != DBP_OK)
            _exit(20);                          /* 1 of the parent + 1: within the cap */
        if (dbp_pool_checkout(p, &b, &err) != DBP_TIMEOUT)
            _exit(21);                          /* a third one anywhere: over it */
        _exit(0);                               /* dies holding a: never returned */
    }
    ok(child > 0 && waitpid(child, &status, 0) == child, "fork and wait (cap)");
    ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
       "child: one connection within max_total_connections 2, the next times out (status %d)",
       WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    is_int(dbp_pool_checkout(p, &second, &err), DBP_OK,
           "parent: the dead child's connection is taken back from the cap");
    is_int(dbp_pool_checkout(p, &third, &err), DBP_TIMEOUT,
           "parent: a third connection is over the cap of 2 (pool_size is 4)");
    like(err.message, "QueuePool limit of size 4 overflow", "... with QueuePool's sentence");
    dbp_pool_release(p, mine);
    dbp_pool_release(p, second);
    is_int(dbp_pool_checkout(p, &third, &err), DBP_OK, "after returns, within the cap again");
    dbp_pool_release(p, third);
    dbp_pool_free(p);
}

/* Under the cap, a process keeps no idle spare while another one could not
 * open a connection for it: without that, a worker that once held the whole
 * cap would keep it idle while the other's requests time out. */
static void test_cap_spare_given_up(void)
{
    dbp_config cfg;
    dbp_pool *p;
    dbp_slot *a, *b;
    dbp_pool_counts c;
    int status = -1, sync[2];
    char byte = 0;
    pid_t child;

    cfg_begin(&cfg, "capspare", g_dsn, 4, 0, 0.2);
    cfg_set(&cfg, "max_total_connections", 2);
    cfg_end(&cfg);
    p = pool_from(&cfg);
    a = take(p);
    b = take(p);                                /* the whole cap, in the parent */
    ok(pipe(sync) == 0, "pipe");
    fflush(stdout);
    child = fork();
    if (child == 0) {                           /* polls, as an nginx worker does */
        dbp_slot *s = NULL;
        dbp_error err;
        if (dbp_pool_try_checkout(p, &s, &err) != DBP_AGAIN)
            _exit(30);                          /* the cap is full: no connection */
        if (write(sync[1], "x", 1) != 1)
            _exit(31);
        for (int i = 0; i < 200; i++) {         /* 2 s */
            if (dbp_pool_try_checkout(p, &s, &err) == DBP_OK) {
                dbp_pool_release(p, s);
                _exit(0);
            }
            tl_sleep(0.01);
        }
        _exit(32);
    }
    ok(child > 0 && read(sync[0], &byte, 1) == 1, "the child found the cap full");
    dbp_pool_release(p, a);                     /* kept: the parent's one idle connection */
    dbp_pool_release(p, b);                     /* a spare while the child waits: closed */
    dbp_pool_counts_get(p, &c);
    is_int(c.total, 1, "the parent keeps one connection, not two");
    is_int(c.checkedin, 1, "... idle");
    ok(waitpid(child, &status, 0) == child, "wait (cap spare)");
    ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
       "the child got the unit the parent gave back (status %d)",
       WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    close(sync[0]);
    close(sync[1]);
    dbp_pool_free(p);
}

int main(void)
{
    dbp_config mon_cfg;
    dbp_conninfo *mon_ci = NULL;
    dbp_error err;
    double t0 = tl_now();

    g_dsn = tl_env_or_bail("DBPOOL_TEST_DSN");
    cfg_make(&mon_cfg, "monitor", g_dsn, 1, 0, 1);
    if (dbp_conninfo_new(&mon_cfg, g_dsn, "dsn", &mon_ci, &err) != DBP_OK ||
        dbp_conn_open(&mon_cfg, mon_ci, &g_monitor, &err) != DBP_OK)
        bail_out("cannot connect to DBPOOL_TEST_DSN: %s", err.message);
    dbp_conninfo_free(mon_ci);
    dbp_config_free(&mon_cfg);

    test_counters();
    test_overflow();
    test_lifo_fifo();
    test_unbounded();
    test_timeout();
    test_try_checkout();
    test_invalidate();
    test_dispose();
    test_connect_failure();
    test_reset_on_return();
    test_killed();
    test_threads_hammer();
    test_fifo_waiters();
    test_deadlines();
    test_retire_wakes_waiters();
    test_fork();
    test_cap_across_fork();
    test_cap_spare_given_up();

    dbp_conn_close(g_monitor);
    diag("test_pool ran in %.2f s", tl_now() - t0);
    return done_testing();
}

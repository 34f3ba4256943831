/* test_autosize.c: pool_size = "auto" (csrc/autosize.c) against a real
 * PostgreSQL (DBPOOL_TEST_DSN), from one thread and from many.
 *
 * The decision (busy plus headroom to the p99 burst, within min..max and
 * the budget's limit); the options and their refusals; steps driven by hand
 * (a long interval): the size follows a burst, shrinking closes at most a
 * quarter of the pool per step, oldest connections first, and capacity and
 * SQLAlchemy's counters stay exact; then the refill thread's own steps under
 * concurrent load (a short interval): the pool grows while threads work and
 * shrinks back after, never beyond auto.max. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "autosize.h"
#include "testlib.h"
#include "testpool.h"

static const char *g_dsn;

/* ---- the decision -------------------------------------------------------- */

static void test_want(void)
{
    is_int(dbp_autosize_want(0, 0, 1, 10, 0), 1, "no traffic: auto.min");
    is_int(dbp_autosize_want(2.2, 2, 1, 10, 0), 3, "busy 2.2, burst 2: ceil(busy) = 3");
    is_int(dbp_autosize_want(2.2, 6, 1, 10, 0), 6, "busy 2.2, burst 6: headroom up to 6");
    is_int(dbp_autosize_want(40, 45, 1, 10, 0), 10, "never above auto.max");
    is_int(dbp_autosize_want(0.1, 1, 3, 10, 0), 3, "never below auto.min");
    is_int(dbp_autosize_want(8, 9, 3, 10, 4), 4, "never above the budget's limit");
    is_int(dbp_autosize_want(0, 0, 3, 10, 2), 2, "the budget wins over auto.min");
    is_int(dbp_autosize_want(1e12, 0, 1, 10, 0), 10, "a huge busy value is auto.max");
}

/* ---- options ------------------------------------------------------------- */

/* finish() of a config with pool_size "auto" (or size when >= 0) and the
 * auto.* values given (0: unset); the message into msg. */
static dbp_status finish_with(int size, int min, int max, double interval, char *msg, size_t n)
{
    dbp_config c;
    dbp_error err;
    dbp_status st = DBP_OK;

    dbp_config_init(&c);
    if (dbp_config_set_string(&c, dbp_option_find("name"), "a", &err) != DBP_OK ||
        dbp_config_set_string(&c, dbp_option_find("dsn"), "host=x", &err) != DBP_OK)
        bail_out("config: %s", err.message);
    st = size >= 0 ? dbp_config_set_number(&c, dbp_option_find("pool_size"), size, &err)
                   : dbp_config_set_string(&c, dbp_option_find("pool_size"), "auto", &err);
    if (st == DBP_OK && min > 0)
        st = dbp_config_set_number(&c, dbp_option_find("auto.min"), min, &err);
    if (st == DBP_OK && max > 0)
        st = dbp_config_set_number(&c, dbp_option_find("auto.max"), max, &err);
    if (st == DBP_OK && interval > 0)
        st = dbp_config_set_number(&c, dbp_option_find("auto.interval"), interval, &err);
    if (st == DBP_OK)
        st = dbp_config_finish(&c, &err);
    snprintf(msg, n, "%s", st == DBP_OK ? "" : err.message);
    if (st == DBP_OK && (c.pool_size != max || c.auto_min != (min ? min : 1) ||
                         c.auto_interval != (interval ? interval : 30)))
        st = DBP_INVALID, snprintf(msg, n, "not resolved");
    dbp_config_free(&c);
    return st;
}

static void test_options(void)
{
    char msg[512];
    dbp_config c;
    dbp_error err;

    is_int(finish_with(-1, 2, 9, 0.5, msg, sizeof msg), DBP_OK, "auto: min 2, max 9 resolve");
    is_int(finish_with(-1, 0, 9, 0, msg, sizeof msg), DBP_OK,
           "auto: min 1 and interval 30 s by default, pool_size = auto.max");
    is_int(finish_with(-1, 0, 0, 0, msg, sizeof msg), DBP_INVALID, "auto without auto.max");
    like(msg, "'auto.max' is required", "... names auto.max");
    is_int(finish_with(-1, 5, 3, 0, msg, sizeof msg), DBP_INVALID, "auto.min > auto.max");
    like(msg, "'auto.min' must be at most auto.max (3), got 5", "... says both");
    is_int(finish_with(5, 0, 9, 0, msg, sizeof msg), DBP_INVALID, "auto without \"auto\"");
    like(msg, "'auto' applies only with pool_size = \"auto\"", "... names the option");
    dbp_config_init(&c);
    is_int(dbp_config_set_number(&c, dbp_option_find("auto.interval"), 0, &err), DBP_INVALID,
           "auto.interval 0 is refused");
    like(err.message, "'auto.interval' must be a number of seconds", "... naming it");
    is_int(dbp_config_set_string(&c, dbp_option_find("pool_size"), "big", &err), DBP_INVALID,
           "pool_size \"big\" is refused");
    like(err.message, "or \"auto\", got \"big\"", "... saying \"auto\" is the string it takes");
    dbp_config_free(&c);
}

/* ---- steps by hand ------------------------------------------------------- */

static dbp_pool *auto_pool(const char *tag, int min, int max, double interval)
{
    char name[64];
    dbp_config c;
    dbp_error err;
    dbp_pool *p = NULL;

    /* testpool.h sets numbers only: "auto" is a string. */
    snprintf(name, sizeof name, "dbpt_%d_%s", (int)getpid(), tag);
    dbp_config_init(&c);
    if (dbp_config_set_string(&c, dbp_option_find("name"), name, &err) != DBP_OK ||
        dbp_config_set_string(&c, dbp_option_find("dsn"), g_dsn, &err) != DBP_OK ||
        dbp_config_set_string(&c, dbp_option_find("pool_size"), "auto", &err) != DBP_OK ||
        dbp_config_set_number(&c, dbp_option_find("auto.min"), min, &err) != DBP_OK ||
        dbp_config_set_number(&c, dbp_option_find("auto.max"), max, &err) != DBP_OK ||
        dbp_config_set_number(&c, dbp_option_find("auto.interval"), interval, &err) != DBP_OK ||
        dbp_config_set_number(&c, dbp_option_find("max_overflow"), 2, &err) != DBP_OK ||
        dbp_config_set_number(&c, dbp_option_find("pool_timeout"), 10, &err) != DBP_OK ||
        dbp_config_set_bool(&c, dbp_option_find("echo_pool"), true, &err) != DBP_OK ||
        dbp_config_finish(&c, &err) != DBP_OK || dbp_pool_new(&c, &p, &err) != DBP_OK)
        bail_out("auto pool %s: %s", tag, err.message);
    dbp_config_free(&c);
    return p;
}

/* Waits up to secs for p to hold total connections (the refill thread). */
static bool wait_total(dbp_pool *p, int total, double secs)
{
    double until = tl_now() + secs;

    while (counts(p).total != total && tl_now() < until)
        tl_sleep(0.02);
    return counts(p).total == total;
}

/* Waits up to secs for p to hold idle connections: opened, not only
 * reserved (total counts a connect in progress). */
static bool wait_idle(dbp_pool *p, int idle, double secs)
{
    double until = tl_now() + secs;

    while (counts(p).checkedin != idle && tl_now() < until)
        tl_sleep(0.02);
    return counts(p).checkedin == idle;
}

static void test_steps(void)
{
    dbp_pool *p = auto_pool("steps", 1, 8, 1000);     /* the thread's first step only */
    dbp_slot *held[8];
    int pids[8], got[8];
    dbp_resize r;
    dbp_error err;
    unsigned lost;

    /* Idle, not only counted: a checkout racing the warming connect would
     * open its own, and the oldest would not be pids[0]. */
    ok(wait_idle(p, 1, 10), "the first step warms auto.min (1) through the refill path");
    is_int(counts(p).size, 1, "size() is auto.min at first");
    for (int i = 0; i < 8; i++) {
        held[i] = NULL;
        if (dbp_pool_checkout(p, &held[i], &err) != DBP_OK)
            bail_out("checkout %d: %s", i, err.message);
        pids[i] = dbp_conn_backend_pid(dbp_slot_conn(held[i]));
    }
    is_int(counts(p).overflow, 7, "8 in use over size 1: overflow 7 (QueuePool's total - size)");
    for (int i = 0; i < 8; i++)
        dbp_pool_release(p, held[i]);
    is_int(counts(p).checkedin, 8, "returns are kept up to auto.max, not closed at size 1");
    dbp_pool_autosize_step(p, &r);
    is_int(r.to, 8, "a burst of 8 in use: the step sizes the pool to 8 (the p99 burst)");
    is_int(r.p99, 8, "... and says p99 = 8");
    is_int(counts(p).size, 8, "size() tells the new size");
    is_int(r.closed, 0, "... nothing closed");
    dbp_pool_autosize_step(p, &r);
    is_int(r.to, 1, "an idle window: back to auto.min");
    is_int(r.closed, 0, "... closing none: the window before needed all 8");
    dbp_pool_autosize_step(p, &r);
    is_int(r.closed, 0, "... nor at the next (DBP_AUTO_SPARE_WINDOWS windows must spare them)");
    dbp_pool_autosize_step(p, &r);
    is_int(r.closed, 2, "three windows spared them: a quarter of the 8 closed, not all 7 above size");
    is_int(counts(p).total, 6, "6 connections left");
    is_int(counts(p).overflow, 5, "overflow is total - size: 5");
    for (int i = 0; i < 6; i++) {
        if (dbp_pool_checkout(p, &held[i], &err) != DBP_OK)
            bail_out("checkout %d: %s", i, err.message);
        got[i] = dbp_conn_backend_pid(dbp_slot_conn(held[i]));
    }
    is_int(counts(p).total, 6, "6 checkouts took the 6 idle ones, none opened");
    for (int i = 0; i < 6; i++)
        dbp_pool_release(p, held[i]);
    {
        int first_two_left = 0;
        for (int i = 0; i < 6; i++)
            first_two_left += got[i] == pids[0] || got[i] == pids[1];
        is_int(first_two_left, 0, "the two closed were the oldest connections");
    }
    dbp_pool_autosize_step(p, &r);               /* in use 1..6 seen: p99 6 */
    for (int i = 0; i < DBP_AUTO_SPARE_WINDOWS; i++)
        dbp_pool_autosize_step(p, &r);
    is_int(r.closed, 1, "6 connections: a quarter rounds to 1 closed per step");
    is_int(dbp_metrics_get(dbp_pool_metrics(p), DBP_M_RESIZES), 4,
           "every step that changed the size counted (1->8, 8->1, 1->6, 6->1)");
    is_int(dbp_pool_take_resizes(p, &r, 1, &lost), 1, "echo_pool keeps the records for the log");
    ok(r.from == 1 && r.to == 8 && r.processes == 1, "... oldest first: 1 -> 8, one process");
    dbp_pool_autosize_limit(p, 3);
    /* The budget's limit bounds capacity too: 3 + max_overflow 2, not
     * auto.max + 2, and returns are kept up to 3. */
    for (int i = 0; i < 5; i++)
        if (dbp_pool_checkout(p, &held[i], &err) != DBP_OK)
            bail_out("checkout %d: %s", i, err.message);
    dbp_slot *more = NULL;
    is_int(dbp_pool_try_checkout(p, &more, &err), DBP_AGAIN,
           "the budget's limit 3 + max_overflow 2: a 6th checkout must wait");
    for (int i = 0; i < 5; i++)
        dbp_pool_release(p, held[i]);
    dbp_pool_counts counts;
    dbp_pool_counts_get(p, &counts);
    is_int(counts.checkedin, 3, "returns kept up to the limit 3, the rest closed");
    dbp_pool_autosize_step(p, &r);
    is_int(r.to, 3, "a burst of 5 with the budget's limit 3: size 3");
    dbp_pool_free(p);
}

/* A step closes only what no checkout of its window needed: a pool whose
 * p99 is below what it holds keeps the connections its peak used, as a
 * fixed pool of pool_size = auto.max would, and gives them up after a
 * window that did not need them. */
static void test_spare(void)
{
    dbp_pool *p = auto_pool("spare", 1, 8, 1000);     /* the thread's first step only */
    dbp_slot *held[4];
    dbp_resize r;
    dbp_error err;
    uint64_t closes;

    ok(wait_idle(p, 1, 10), "spare: the first step warms auto.min");
    dbp_pool_autosize_step(p, &r);                    /* a window of its own */
    for (int i = 0; i < 4; i++)                       /* the peak: 4 in use at once */
        if (dbp_pool_checkout(p, &held[i], &err) != DBP_OK)
            bail_out("checkout %d: %s", i, err.message);
    for (int i = 0; i < 4; i++)
        dbp_pool_release(p, held[i]);
    for (int i = 0; i < 300; i++) {                   /* then 300 checkouts one at a time */
        if (dbp_pool_checkout(p, &held[0], &err) != DBP_OK)
            bail_out("checkout: %s", err.message);
        dbp_pool_release(p, held[0]);
    }
    dbp_pool_autosize_step(p, &r);
    ok(r.to < 4 && r.p99 == 1, "spare: p99 in use is 1, the size below the 4 held (got %d)", r.to);
    is_int(r.closed, 0, "... but the window's peak needed all 4: none closed");
    dbp_pool_autosize_step(p, &r);
    is_int(r.closed, 0, "... nor after one idle window");
    is_int(counts(p).total, 4, "... 4 still held (overflow 3)");
    closes = dbp_metrics_get(dbp_pool_metrics(p), DBP_M_RESIZE_CLOSES);
    for (int i = 0; i < DBP_AUTO_SPARE_WINDOWS - 1; i++)
        dbp_pool_autosize_step(p, &r);
    is_int(r.closed, 1, "idle windows: a quarter of 4 closed, once three windows spared it");
    is_int((int)(dbp_metrics_get(dbp_pool_metrics(p), DBP_M_RESIZE_CLOSES) - closes), 1,
           "... and counted in resize_closes, though the size did not change");
    is_int(r.from, r.to, "... (the size did not change)");
    dbp_pool_free(p);
}

/* ---- the thread's steps under load --------------------------------------- */

typedef struct load {
    dbp_pool *pool;
    _Atomic bool stop;
    _Atomic int max_total, failures;
} load;

static void *worker(void *arg)
{
    load *l = arg;
    dbp_error err;

    while (!atomic_load(&l->stop)) {
        dbp_slot *s = NULL;
        int total;
        if (dbp_pool_checkout(l->pool, &s, &err) != DBP_OK) {
            atomic_fetch_add(&l->failures, 1);
            continue;
        }
        total = counts(l->pool).total;
        if (total > atomic_load(&l->max_total))
            atomic_store(&l->max_total, total);
        tl_sleep(0.01);
        dbp_pool_release(l->pool, s);
        tl_sleep(0.002);
    }
    return NULL;
}

static void test_thread(void)
{
    load l = {.pool = auto_pool("thread", 1, 6, 0.2)};
    pthread_t t[6];
    double until;
    int peak = 0;

    atomic_init(&l.stop, false);
    atomic_init(&l.max_total, 0);
    atomic_init(&l.failures, 0);
    for (int i = 0; i < 6; i++)
        pthread_create(&t[i], NULL, worker, &l);
    for (until = tl_now() + 20; tl_now() < until && peak < 5;)
        if (counts(l.pool).size > peak)
            peak = counts(l.pool).size, tl_sleep(0.05);
        else
            tl_sleep(0.05);
    ok(peak >= 5, "under 6 threads the size grows (to %d)", peak);
    atomic_store(&l.stop, true);
    for (int i = 0; i < 6; i++)
        pthread_join(t[i], NULL);
    is_int(atomic_load(&l.failures), 0, "no checkout failed");
    ok(atomic_load(&l.max_total) <= 6 + 2, "never beyond auto.max + max_overflow");
    ok(wait_total(l.pool, 1, 30), "idle after: the thread shrinks it back to auto.min");
    is_int(counts(l.pool).size, 1, "... and size() says 1");
    ok(dbp_metrics_get(dbp_pool_metrics(l.pool), DBP_M_RESIZES) >= 2, "resizes were counted");
    dbp_pool_free(l.pool);
}

/* A fork()ed child sizes its own pools: refill.c starts its thread at
 * once, so the child warms auto.min with no checkout.  Not under TSan,
 * which does not support threads started after a multi-threaded fork. */
static void test_fork(void)
{
#ifdef __SANITIZE_THREAD__
    diag("skipped under ThreadSanitizer (threads after a multi-threaded fork)");
#else
    dbp_pool *p = auto_pool("fork", 2, 4, 0.2);
    uint64_t before;
    int status = -1;
    pid_t pid;

    ok(wait_idle(p, 2, 30), "the parent's first step warms auto.min");
    before = dbp_metrics_get(dbp_pool_metrics(p), DBP_M_CONNECTS);
    fflush(stdout);
    if ((pid = fork()) < 0)
        bail_out("fork");
    if (pid == 0) {
        double until = tl_now() + 30;
        while (tl_now() < until &&
               !(counts(p).checkedin == 2 &&
                 dbp_metrics_get(dbp_pool_metrics(p), DBP_M_CONNECTS) >= before + 2))
            tl_sleep(0.02);
        _exit(counts(p).checkedin == 2 &&
              dbp_metrics_get(dbp_pool_metrics(p), DBP_M_CONNECTS) >= before + 2 ? 0 : 1);
    }
    waitpid(pid, &status, 0);
    ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
       "the child's own steps opened its auto.min connections, with no checkout");
    is_int(counts(p).total, 2, "the parent's pool is untouched");
    dbp_pool_free(p);
#endif
}

int main(void)
{
    g_dsn = tl_env_or_bail("DBPOOL_TEST_DSN");
    test_want();
    test_options();
    test_steps();
    test_spare();
    test_thread();
    test_fork();
    return done_testing();
}

/* faults.c: the fault soak (issue 15, acceptance point 10).  THREADS
 * threads share one pool, each doing checkout + SELECT 1 + return (every
 * fourth inside a transaction left open, so the return's ROLLBACK runs) for
 * SECONDS, while a fault thread terminates a random backend of the pool
 * every 1-2 s, stops one (SIGSTOP) for 3 s at a third of the run, and
 * restarts the server (scripts/pg-ctl.sh restart) at two thirds.  Every
 * operation is timed against its own deadline; at the end the program prints
 * a Markdown report (requests, errors by kind, the longest wait of each
 * operation against its deadline, slots in use, the pool's counters and
 * whether they agree with what the threads saw) and exits non-zero when a
 * wait passed its deadline by a second or more, a slot stayed in use, or the
 * counters disagree.
 *   DBPOOL_TEST_DSN=... faults SECONDS THREADS   (under scripts/with-pg.sh) */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "conn.h"
#include "pool.h"
#include "pool_stmt.h"

#define APP "dbpool_faults"
#define N_STATUS (DBP_QUERY_TIMEOUT + 1)

/* The pool's deadlines, seconds. */
static const double pool_timeout = 2, connect_timeout = 1, ping_timeout = 0.5,
                    reset_timeout = 0.5, query_timeout = 1;

static dbp_pool *pool;
static atomic_int stop;
static atomic_long requests, ok_checkouts, ok_queries;
static atomic_long by_status[N_STATUS];      /* failures by status, any operation */
static atomic_long checkout_timeouts, query_timeouts;

/* The longest time each operation took, nanoseconds (max by CAS). */
enum { OP_CHECKOUT, OP_QUERY, OP_RETURN, N_OPS };
static const char *const op_names[N_OPS] = {"checkout", "query", "return"};
static _Atomic int64_t longest[N_OPS];

static double seconds_since(int64_t t0) { return (double)(dbp_now_ns() - t0) / 1e9; }

static void note_time(int op, int64_t t0)
{
    int64_t took = dbp_now_ns() - t0, seen = atomic_load(&longest[op]);

    while (took > seen && !atomic_compare_exchange_weak(&longest[op], &seen, took))
        ;
}

static void sleep_s(double s)
{
    struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

static void note_failure(dbp_status st)
{
    if (st < N_STATUS)
        atomic_fetch_add(&by_status[st], 1);
}

/* ---- the workers --------------------------------------------------------- */

static const dbp_statement select1 = {.sql = "SELECT 1"};
static const dbp_statement begin = {.sql = "BEGIN", .simple = true};

/* One request: checkout, (BEGIN,) SELECT 1, return. */
static void request(long n)
{
    dbp_slot *s = NULL;
    dbp_result *r = NULL;
    dbp_error err;
    dbp_status st;
    int64_t t0 = dbp_now_ns();

    atomic_fetch_add(&requests, 1);
    st = dbp_pool_checkout(pool, &s, &err);
    note_time(OP_CHECKOUT, t0);
    if (st != DBP_OK) {
        note_failure(st);
        if (st == DBP_TIMEOUT)
            atomic_fetch_add(&checkout_timeouts, 1);
        sleep_s(0.01);                    /* as an app would, rather than spin */
        return;
    }
    atomic_fetch_add(&ok_checkouts, 1);
    t0 = dbp_now_ns();
    if (n % 4 == 0 && (st = dbp_slot_exec(pool, s, &begin, &r, &err)) == DBP_OK)
        dbp_result_free(r);
    if (st == DBP_OK && (st = dbp_slot_exec(pool, s, &select1, &r, &err)) == DBP_OK) {
        dbp_result_free(r);
        atomic_fetch_add(&ok_queries, 1);
    }
    note_time(OP_QUERY, t0);
    if (st != DBP_OK)
        note_failure(st);
    if (st == DBP_QUERY_TIMEOUT)
        atomic_fetch_add(&query_timeouts, 1);
    t0 = dbp_now_ns();
    dbp_pool_release(pool, s);
    note_time(OP_RETURN, t0);
}

static void *worker(void *arg)
{
    (void)arg;
    for (long n = 0; !atomic_load(&stop); n++)
        request(n);
    return NULL;
}

/* ---- the faults ---------------------------------------------------------- */

static dbp_conn *monitor;         /* the fault thread's own connection */

/* Runs sql on the monitor (reconnecting first when needed); the first
 * column of its first row as a number, or 0. */
static long monitor_long(const dbp_config *cfg, const char *sql)
{
    dbp_statement stmt = {.sql = sql, .simple = true};
    dbp_result *r = NULL;
    dbp_error err;
    long v = 0;
    size_t len;

    if (monitor != NULL && dbp_conn_broken(monitor)) {
        dbp_conn_close(monitor);
        monitor = NULL;
    }
    if (monitor == NULL && dbp_conn_open(cfg, cfg->dsn, &monitor, &err) != DBP_OK)
        return 0;
    if (dbp_conn_exec(monitor, &stmt, 0, &r, &err) != DBP_OK)
        return 0;
    if (dbp_result_rows(r) > 0)
        v = atol(dbp_result_field(r, 0, 0, &len));
    dbp_result_free(r);
    return v;
}

static const char *const random_backend =
    "SELECT coalesce((SELECT pid FROM pg_stat_activity WHERE application_name = '" APP "' "
    "ORDER BY random() LIMIT 1), 0)";
static const char *const terminate_one =
    "SELECT count(pg_terminate_backend(pid)) FROM (SELECT pid FROM pg_stat_activity "
    "WHERE application_name = '" APP "' ORDER BY random() LIMIT 1) b";

static dbp_config cfg, mon_cfg;   /* the pool's options; the monitor's (another app) */
static double run_seconds;
static long terminated, stopped_pid;
static int restarted;

/* Terminates a backend every 1-2 s; stops one for 3 s at a third of the
 * run; restarts the server at two thirds. */
static void *faults(void *arg)
{
    double seconds = run_seconds;
    int64_t t0 = dbp_now_ns();
    unsigned rng = (unsigned)t0;
    bool did_stop = false, did_restart = false;

    (void)arg;

    while (!atomic_load(&stop)) {
        double now = seconds_since(t0);
        if (!did_stop && now >= seconds / 3) {
            did_stop = true;
            if ((stopped_pid = monitor_long(&mon_cfg, random_backend)) > 0) {
                kill((pid_t)stopped_pid, SIGSTOP);
                sleep_s(3);
                kill((pid_t)stopped_pid, SIGCONT);
            }
        } else if (!did_restart && now >= 2 * seconds / 3) {
            did_restart = true;
            restarted = system("scripts/pg-ctl.sh restart") == 0;
        } else {
            terminated += monitor_long(&mon_cfg, terminate_one);
        }
        sleep_s(1.0 + (double)rand_r(&rng) / RAND_MAX);
    }
    dbp_conn_close(monitor);
    return NULL;
}

/* ---- setup and report ---------------------------------------------------- */

/* One consistency row: what the pool counted against what the threads saw. */
static int check(const char *what, long counted, long seen)
{
    printf("| %s | %ld = %ld: %s |\n", what, counted, seen, counted == seen ? "yes" : "NO");
    return counted != seen;
}

static void set(dbp_config *c, const char *name, double v)
{
    dbp_error err;

    if (dbp_config_set_number(c, dbp_option_find(name), v, &err) != DBP_OK) {
        fprintf(stderr, "faults: %s: %s\n", name, err.message);
        exit(2);
    }
}

/* The options of app on dsn: the pool's deadlines, pre-ping, min_idle. */
static void make_config(dbp_config *c, const char *dsn, const char *app)
{
    dbp_error err;

    dbp_config_init(c);
    if (dbp_config_set_string(c, dbp_option_find("name"), app, &err) != DBP_OK ||
        dbp_config_set_string(c, dbp_option_find("dsn"), dsn, &err) != DBP_OK ||
        dbp_config_set_string(c, dbp_option_find("application_name"), app, &err) != DBP_OK ||
        dbp_config_set_bool(c, dbp_option_find("pool_pre_ping"), true, &err) != DBP_OK)
        exit(2);
    set(c, "pool_size", 4), set(c, "max_overflow", 2), set(c, "min_idle", 4);
    set(c, "pool_timeout", pool_timeout), set(c, "connect_timeout", connect_timeout);
    set(c, "ping_timeout", ping_timeout), set(c, "reset_timeout", reset_timeout);
    set(c, "query_timeout", query_timeout), set(c, "pre_ping_bypass", 0);
    if (dbp_config_finish(c, &err) != DBP_OK) {
        fprintf(stderr, "faults: %s\n", err.message);
        exit(2);
    }
}

/* The deadline each operation answers to, seconds: a checkout's whole
 * budget; a query's query_timeout; a return's reset_timeout. */
static double deadline_of(int op)
{
    return op == OP_CHECKOUT ? dbp_pool_checkout_budget(pool)
                             : op == OP_QUERY ? query_timeout : reset_timeout;
}

/* Prints the report; returns the number of broken promises. */
static int report(void)
{
    dbp_metrics *m = dbp_pool_metrics(pool);
    dbp_hist_snapshot wait;
    dbp_pool_counts c;
    int broken = 0;

    dbp_pool_counts_get(pool, &c);
    dbp_hist_read(m, DBP_H_WAIT, &wait);
    printf("| requests | %ld |\n| checkouts served | %ld |\n| queries served | %ld |\n",
           atomic_load(&requests), atomic_load(&ok_checkouts), atomic_load(&ok_queries));
    for (int st = 1; st < N_STATUS; st++)
        if (atomic_load(&by_status[st]) > 0)
            printf("| errors of kind %s | %ld |\n", dbp_status_kind((dbp_status)st),
                   atomic_load(&by_status[st]));
    printf("| faults | %ld backends terminated, backend %ld stopped 3 s, server restarted: %s |\n",
           terminated, stopped_pid, restarted ? "yes" : "no");
    for (int op = 0; op < N_OPS; op++) {
        double took = (double)atomic_load(&longest[op]) / 1e9, limit = deadline_of(op);
        printf("| longest %s | %.3f s (deadline %.2f s) |\n", op_names[op], took, limit);
        broken += took >= limit + 1.0;
    }
    printf("| slots in use at the end | %d (total %d, idle %d, waiting %d) |\n", c.checkedout,
           c.total, c.checkedin, c.waiting);
    broken += c.checkedout != 0 || c.waiting != 0;
    broken += check("checkouts (wait histogram) = checkouts served", (long)wait.count,
                    atomic_load(&ok_checkouts));
    broken += check("timeouts counter = checkout timeouts seen", (long)dbp_metrics_get(m, DBP_M_TIMEOUTS),
                    atomic_load(&checkout_timeouts));
    broken += check("query_timeouts counter = query timeouts seen",
                    (long)dbp_metrics_get(m, DBP_M_QUERY_TIMEOUTS), atomic_load(&query_timeouts));
    for (int k = 0; k < DBP_M_COUNT; k++)
        printf("| counter %s | %llu |\n", dbp_counter_names[k],
               (unsigned long long)dbp_metrics_get(m, (dbp_counter)k));
    return broken;
}

int main(int argc, char **argv)
{
    const char *dsn = getenv("DBPOOL_TEST_DSN");
    int threads = argc > 2 ? atoi(argv[2]) : 0, broken;
    pthread_t tids[64], fault;
    dbp_error err;

    run_seconds = argc > 1 ? atof(argv[1]) : 0;
    if (dsn == NULL || run_seconds <= 0 || threads < 1 || threads > 64) {
        fprintf(stderr, "usage: DBPOOL_TEST_DSN=... faults SECONDS THREADS(1-64)\n");
        return 2;
    }
    make_config(&cfg, dsn, APP);
    make_config(&mon_cfg, dsn, APP "_monitor");
    if (dbp_pool_new(&cfg, &pool, &err) != DBP_OK || dbp_pool_refill(pool, &err) != DBP_OK) {
        fprintf(stderr, "faults: %s\n", err.message);
        return 2;
    }
    for (int i = 0; i < threads; i++)
        pthread_create(&tids[i], NULL, worker, NULL);
    pthread_create(&fault, NULL, faults, NULL);
    sleep_s(run_seconds);
    atomic_store(&stop, 1);
    for (int i = 0; i < threads; i++)
        pthread_join(tids[i], NULL);
    pthread_join(fault, NULL);
    printf("| measure | value |\n|---|---|\n| threads x seconds | %d x %.0f |\n", threads,
           run_seconds);
    broken = report();
    printf("\n%s\n", broken ? "FAILED: a promise above is broken" : "every promise held");
    dbp_pool_free(pool);
    dbp_config_free(&cfg);
    dbp_config_free(&mon_cfg);
    return broken ? 1 : 0;
}

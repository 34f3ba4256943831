/* autosize.c: pool_size = "auto" against a fixed pool of the same max,
 * under a load that steps from 1 to 50 to 5 concurrent workers (threads).
 *
 * Each worker loops: checkout, SELECT pg_sleep(0.005) (a 5 ms hold), return,
 * 5 ms of think time.  The same load runs twice on one server, first
 * against pool_size = "auto" (auto = {min = 1, max = 50, interval = 1}),
 * then against pool_size = 50; both with max_overflow = 10 and pool_timeout
 * = 5.  The main thread samples the connections the pool holds (open or
 * opening) every 10 ms; every checkout's wait is recorded exactly.  Prints a
 * Markdown report (make bench-autosize writes it to
 * bench/results/autosize.md):
 *   autosize [SECONDS]    SECONDS per pool, default 85: 15% at 1 worker,
 *                         40% at 50, 45% at 5 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "autosize.h"
#include "config.h"
#include "conn.h"
#include "pool.h"
#include "pool_stmt.h"

#define WORKERS 50
#define PHASES 3

static const int phase_workers[PHASES] = {1, 50, 5};
static const double phase_share[PHASES] = {0.15, 0.40, 0.45};
static const dbp_statement hold_query = {.sql = "SELECT pg_sleep(0.005)"};

typedef struct waits {
    double *v;            /* seconds */
    size_t n, cap;
} waits;

typedef struct worker {
    pthread_t tid;
    dbp_pool *pool;
    int index;
    waits w;
    long failures;
} worker;

static atomic_int active;          /* workers with index < active run */
static atomic_int stop;

static void sleep_s(double s)
{
    struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

static double now_s(void)
{
    return (double)dbp_now_ns() / 1e9;
}

static void add_wait(waits *w, double v)
{
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 4096;
        double *grown = realloc(w->v, cap * sizeof *grown);
        if (grown == NULL)
            return;                       /* a sample lost, not the run */
        w->v = grown;
        w->cap = cap;
    }
    w->v[w->n++] = v;
}

/* One checkout, the hold and the return; the wait recorded. */
static void cycle(worker *me)
{
    dbp_slot *s;
    dbp_result *r;
    dbp_error err;
    double t0 = now_s();

    if (dbp_pool_checkout(me->pool, &s, &err) != DBP_OK) {
        me->failures++;                   /* a timeout: counted by the pool too */
        return;
    }
    add_wait(&me->w, now_s() - t0);
    if (dbp_slot_exec(me->pool, s, &hold_query, &r, &err) == DBP_OK)
        dbp_result_free(r);
    dbp_pool_release(me->pool, s);
}

static void *work(void *arg)
{
    worker *me = arg;

    while (!atomic_load(&stop)) {
        if (me->index >= atomic_load(&active)) {
            sleep_s(0.01);
            continue;
        }
        cycle(me);
        sleep_s(0.005);                   /* think time */
    }
    return NULL;
}

static dbp_pool *make_pool(const char *dsn, bool autosize)
{
    dbp_config cfg;
    dbp_error err;
    dbp_pool *p = NULL;
    dbp_status st;

    dbp_config_init(&cfg);
    st = dbp_config_set_string(&cfg, dbp_option_find("name"), autosize ? "auto" : "fixed", &err);
    if (st == DBP_OK)
        st = dbp_config_set_string(&cfg, dbp_option_find("dsn"), dsn, &err);
    if (st == DBP_OK && autosize) {
        st = dbp_config_set_string(&cfg, dbp_option_find("pool_size"), "auto", &err);
        if (st == DBP_OK)
            st = dbp_config_set_number(&cfg, dbp_option_find("auto.max"), WORKERS, &err);
        if (st == DBP_OK)
            st = dbp_config_set_number(&cfg, dbp_option_find("auto.interval"), 1, &err);
    } else if (st == DBP_OK) {
        st = dbp_config_set_number(&cfg, dbp_option_find("pool_size"), WORKERS, &err);
    }
    if (st == DBP_OK)
        st = dbp_config_set_number(&cfg, dbp_option_find("max_overflow"), 10, &err);
    if (st == DBP_OK)
        st = dbp_config_set_number(&cfg, dbp_option_find("pool_timeout"), 5, &err);
    if (st == DBP_OK)
        st = dbp_config_finish(&cfg, &err);
    if (st == DBP_OK)
        st = dbp_pool_new(&cfg, &p, &err);
    dbp_config_free(&cfg);
    if (st != DBP_OK) {
        fprintf(stderr, "autosize: %s\n", err.message);
        exit(1);
    }
    return p;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct result {
    double held[PHASES];          /* time-average connections held, per phase */
    double held_all, max_held;
    uint64_t checkouts, waits, timeouts, resizes;
    double p99_wait, p999_wait, max_wait;
} result;

/* The quantile q of every worker's waits, exact. */
static void wait_quantiles(worker *ws, result *res)
{
    size_t n = 0, k = 0;
    double *all;

    for (int i = 0; i < WORKERS; i++)
        n += ws[i].w.n;
    if (n == 0 || (all = malloc(n * sizeof *all)) == NULL)
        return;
    for (int i = 0; i < WORKERS; i++) {
        memcpy(all + k, ws[i].w.v, ws[i].w.n * sizeof *all);
        k += ws[i].w.n;
    }
    qsort(all, n, sizeof *all, cmp_double);
    res->p99_wait = all[(size_t)(0.99 * (double)(n - 1))];
    res->p999_wait = all[(size_t)(0.999 * (double)(n - 1))];
    res->max_wait = all[n - 1];
    free(all);
}

/* Runs the three phases against p, sampling what it holds. */
static void run(dbp_pool *p, double seconds, result *res)
{
    worker ws[WORKERS];
    dbp_metrics *m = dbp_pool_metrics(p);
    double held_sum = 0, samples_all = 0;

    memset(ws, 0, sizeof ws);
    memset(res, 0, sizeof *res);
    atomic_store(&stop, 0);
    atomic_store(&active, 0);
    for (int i = 0; i < WORKERS; i++) {
        ws[i].pool = p;
        ws[i].index = i;
        pthread_create(&ws[i].tid, NULL, work, &ws[i]);
    }
    for (int ph = 0; ph < PHASES; ph++) {
        double end = now_s() + seconds * phase_share[ph], sum = 0, n = 0;
        atomic_store(&active, phase_workers[ph]);
        while (now_s() < end) {
            dbp_pool_counts c;
            dbp_pool_counts_get(p, &c);
            sum += c.total;
            n++;
            if (c.total > res->max_held)
                res->max_held = c.total;
            sleep_s(0.01);
        }
        res->held[ph] = n > 0 ? sum / n : 0;
        held_sum += sum;
        samples_all += n;
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < WORKERS; i++)
        pthread_join(ws[i].tid, NULL);
    res->held_all = samples_all > 0 ? held_sum / samples_all : 0;
    res->checkouts = dbp_metrics_checkouts(m);
    res->waits = dbp_metrics_get(m, DBP_M_WAITS);
    res->timeouts = dbp_metrics_get(m, DBP_M_TIMEOUTS);
    res->resizes = dbp_metrics_get(m, DBP_M_RESIZES);
    wait_quantiles(ws, res);
    for (int i = 0; i < WORKERS; i++)
        free(ws[i].w.v);
}

static void row(const char *name, const result *r)
{
    printf("| %s | %.1f | %.1f | %.1f | %.1f | %.0f | %llu | %llu | %llu | %.3f | %.3f | %.3f | %llu |\n",
           name, r->held_all, r->held[0], r->held[1], r->held[2], r->max_held,
           (unsigned long long)r->checkouts, (unsigned long long)r->waits,
           (unsigned long long)r->timeouts, r->p99_wait * 1e3, r->p999_wait * 1e3,
           r->max_wait * 1e3, (unsigned long long)r->resizes);
}

int main(int argc, char **argv)
{
    const char *dsn = getenv("DBPOOL_TEST_DSN");
    double seconds = argc > 1 ? atof(argv[1]) : 85;
    result res[2];
    dbp_pool *p;

    if (dsn == NULL || seconds <= 0) {
        fprintf(stderr, "usage: DBPOOL_TEST_DSN=... autosize [SECONDS per pool, default 85]\n");
        return 2;
    }
    for (int i = 0; i < 2; i++) {
        p = make_pool(dsn, i == 0);
        run(p, seconds, &res[i]);
        dbp_pool_free(p);
    }
    printf("| pool | held, mean | held @1 | held @50 | held @5 | held, max | checkouts | "
           "waits | timeouts | p99 wait ms | p99.9 wait ms | max wait ms | resizes |\n"
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    row("pool_size = \"auto\" (1..50, interval 1 s)", &res[0]);
    row("pool_size = 50", &res[1]);
    printf("\n%.0f s per pool: %.0f s at 1 worker, %.0f s at 50, %.0f s at 5; max_overflow 10, "
           "pool_timeout 5 for both.\n", seconds, seconds * phase_share[0],
           seconds * phase_share[1], seconds * phase_share[2]);
    return 0;
}

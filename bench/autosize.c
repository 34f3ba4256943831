/* autosize.c: pool_size = "auto" against a fixed pool of the same max
 * (issue 22), under a load that steps from 1 to 50 to 5 concurrent workers
 * (threads).
 *
 * Each worker loops: checkout, SELECT pg_sleep(0.005) (a 5 ms hold), return,
 * 5 ms of think time; the load is 15% of a run at 1 worker, 40% at 50, 45%
 * at 5.  Two scenarios, each a series of runs on one server:
 *   over   capacity 10 + 2 for 50 workers, pool_timeout 0.02 s: the 50-worker
 *          phase queues all the time and the step from 1 to 50 opens 11
 *          connections at once, so waits and timeouts happen in both pools;
 *   within capacity 50 + 10, pool_timeout 5 s: nobody waits for capacity,
 *          only for connects.
 * In each, "auto" is pool_size = "auto" with auto = {min = 1, max = M,
 * interval = 1} and "fixed" is pool_size = M (M = 10 or 50), the same
 * max_overflow and pool_timeout.  Runs alternate ABBA (auto, fixed, fixed,
 * auto, ...) so that a machine getting busier or quieter weighs on both.
 *
 * Per run: the connections the pool holds (open or opening), sampled every
 * 10 ms and averaged over the run and each phase; the pool's counters
 * (checkouts, waits, timeouts, connects, resizes, resize_closes); every
 * checkout's wait, exact (checkout call to connection in hand or to the
 * timeout: a timed-out wait counts with its length).  Prints a Markdown
 * report: each run, then each scenario's medians, ratios and verdict
 * (make bench-autosize writes it to bench/results/autosize.md).
 *   autosize [SECONDS [ROUNDS]]   SECONDS per run (default 45), ROUNDS
 *                                 runs of each pool per scenario (default 3) */
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
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
#define MAX_ROUNDS 15

static const int phase_workers[PHASES] = {1, 50, 5};
static const double phase_share[PHASES] = {0.15, 0.40, 0.45};
static const dbp_statement hold_query = {.sql = "SELECT pg_sleep(0.005)"};

typedef struct scenario {
    const char *name, *what;
    int max, max_overflow;
    double pool_timeout;   /* seconds */
} scenario;

static const scenario scenarios[] = {
    {"over", "capacity 10 + 2 for 50 workers, pool_timeout 0.02 s", 10, 2, 0.02},
    {"within", "capacity 50 + 10 for 50 workers, pool_timeout 5 s", 50, 10, 5},
};
#define SCENARIOS (int)(sizeof scenarios / sizeof scenarios[0])

typedef struct waits {
    double *v;            /* seconds */
    size_t n, cap;
} waits;

typedef struct worker {
    pthread_t tid;
    dbp_pool *pool;
    int index;
    waits w[PHASES];      /* by the phase the checkout began in */
} worker;

static atomic_int active;          /* workers with index < active run */
static atomic_int phase;           /* the phase running */
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

/* One checkout, the hold and the return; the wait recorded, also when it
 * ended in a timeout (counted by the pool). */
static void cycle(worker *me)
{
    dbp_slot *s;
    dbp_result *r;
    dbp_error err;
    double t0 = now_s();
    dbp_status st = dbp_pool_checkout(me->pool, &s, &err);

    add_wait(&me->w[atomic_load(&phase)], now_s() - t0);
    if (st != DBP_OK)
        return;
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

static void check(dbp_status st, const dbp_error *err)
{
    if (st != DBP_OK) {
        fprintf(stderr, "autosize: %s\n", err->message);
        exit(1);
    }
}

static dbp_pool *make_pool(const char *dsn, const scenario *sc, bool autosize)
{
    dbp_config cfg;
    dbp_error err;
    dbp_pool *p = NULL;

    dbp_config_init(&cfg);
    check(dbp_config_set_string(&cfg, dbp_option_find("name"), autosize ? "auto" : "fixed", &err),
          &err);
    check(dbp_config_set_string(&cfg, dbp_option_find("dsn"), dsn, &err), &err);
    if (autosize) {
        check(dbp_config_set_string(&cfg, dbp_option_find("pool_size"), "auto", &err), &err);
        check(dbp_config_set_number(&cfg, dbp_option_find("auto.max"), sc->max, &err), &err);
        check(dbp_config_set_number(&cfg, dbp_option_find("auto.interval"), 1, &err), &err);
    } else {
        check(dbp_config_set_number(&cfg, dbp_option_find("pool_size"), sc->max, &err), &err);
    }
    check(dbp_config_set_number(&cfg, dbp_option_find("max_overflow"), sc->max_overflow, &err),
          &err);
    check(dbp_config_set_number(&cfg, dbp_option_find("pool_timeout"), sc->pool_timeout, &err),
          &err);
    check(dbp_config_finish(&cfg, &err), &err);
    check(dbp_pool_new(&cfg, &p, &err), &err);
    dbp_config_free(&cfg);
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
    double checkouts, waits, timeouts, connects, resizes, closes;
    double p99_wait, p999_wait, max_wait;   /* seconds */
    double p99_phase[PHASES];     /* seconds: the p99 wait of the checkouts of each phase */
    double *all_waits;            /* every checkout's wait, seconds, sorted; owned */
    size_t n_waits;
} result;

/* The sorted waits of phases from..to-1 of every worker; *n gets how many. */
static double *sorted_waits(worker *ws, int from, int to, size_t *n)
{
    size_t k = 0;
    double *all;

    *n = 0;
    for (int i = 0; i < WORKERS; i++)
        for (int ph = from; ph < to; ph++)
            *n += ws[i].w[ph].n;
    if (*n == 0 || (all = malloc(*n * sizeof *all)) == NULL)
        return NULL;
    for (int i = 0; i < WORKERS; i++)
        for (int ph = from; ph < to; ph++) {
            memcpy(all + k, ws[i].w[ph].v, ws[i].w[ph].n * sizeof *all);
            k += ws[i].w[ph].n;
        }
    qsort(all, *n, sizeof *all, cmp_double);
    return all;
}

/* Every worker's waits, exact quantiles: over the run, and the p99 of each
 * phase. */
static void wait_quantiles(worker *ws, result *res)
{
    size_t n;
    double *all;

    for (int ph = 0; ph < PHASES; ph++) {
        if ((all = sorted_waits(ws, ph, ph + 1, &n)) != NULL)
            res->p99_phase[ph] = all[(size_t)(0.99 * (double)(n - 1))];
        free(all);
    }
    if ((all = sorted_waits(ws, 0, PHASES, &n)) == NULL)
        return;
    res->p99_wait = all[(size_t)(0.99 * (double)(n - 1))];
    res->p999_wait = all[(size_t)(0.999 * (double)(n - 1))];
    res->max_wait = all[n - 1];
    res->all_waits = all;
    res->n_waits = n;
}

/* The 99th percentile of the waits of n runs together, seconds. */
static double pooled_p99(const result *rs, int n)
{
    size_t total = 0, k = 0;
    double *all, q;

    for (int i = 0; i < n; i++)
        total += rs[i].n_waits;
    if (total == 0 || (all = malloc(total * sizeof *all)) == NULL)
        return 0;
    for (int i = 0; i < n; i++) {
        memcpy(all + k, rs[i].all_waits, rs[i].n_waits * sizeof *all);
        k += rs[i].n_waits;
    }
    qsort(all, total, sizeof *all, cmp_double);
    q = all[(size_t)(0.99 * (double)(total - 1))];
    free(all);
    return q;
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
        atomic_store(&phase, ph);
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
    res->checkouts = (double)dbp_metrics_checkouts(m);
    res->waits = (double)dbp_metrics_get(m, DBP_M_WAITS);
    res->timeouts = (double)dbp_metrics_get(m, DBP_M_TIMEOUTS);
    res->connects = (double)dbp_metrics_get(m, DBP_M_CONNECTS);
    res->resizes = (double)dbp_metrics_get(m, DBP_M_RESIZES);
    res->closes = (double)dbp_metrics_get(m, DBP_M_RESIZE_CLOSES);
    wait_quantiles(ws, res);
    for (int i = 0; i < WORKERS; i++)
        for (int ph = 0; ph < PHASES; ph++)
            free(ws[i].w[ph].v);
}

static void row(const char *label, const result *r)
{
    printf("| %s | %.1f | %.1f | %.1f | %.1f | %.0f | %.0f | %.0f | %.0f | %.0f | %.3f | "
           "%.3f / %.3f / %.3f | %.3f | %.1f | %.0f | %.0f |\n",
           label, r->held_all, r->held[0], r->held[1], r->held[2], r->max_held, r->checkouts,
           r->waits, r->timeouts, r->connects, r->p99_wait * 1e3, r->p99_phase[0] * 1e3,
           r->p99_phase[1] * 1e3, r->p99_phase[2] * 1e3, r->p999_wait * 1e3, r->max_wait * 1e3,
           r->resizes, r->closes);
}

static void header(void)
{
    printf("| run | held, mean | held @1 | held @50 | held @5 | held, max | checkouts | waits | "
           "timeouts | connects | p99 wait ms | p99 @1 / @50 / @5 ms | p99.9 wait ms | "
           "max wait ms | resizes | resize closes |\n"
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
}

/* The median of the field at offset off over n results. */
static double median(const result *rs, int n, size_t off)
{
    double v[MAX_ROUNDS];

    for (int i = 0; i < n; i++)
        v[i] = *(const double *)((const char *)&rs[i] + off);
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double sum(const result *rs, int n, size_t off)
{
    double s = 0;

    for (int i = 0; i < n; i++)
        s += *(const double *)((const char *)&rs[i] + off);
    return s;
}

static void summary(const scenario *sc, const result *a, const result *f, int rounds)
{
    double ha = median(a, rounds, offsetof(result, held_all));
    double hf = median(f, rounds, offsetof(result, held_all));
    double ta = sum(a, rounds, offsetof(result, timeouts));
    double tf = sum(f, rounds, offsetof(result, timeouts));
    double pa = median(a, rounds, offsetof(result, p99_wait));
    double pf = median(f, rounds, offsetof(result, p99_wait));
    double qa = pooled_p99(a, rounds), qf = pooled_p99(f, rounds);
    double fmin = f[0].p99_wait, fmax = f[0].p99_wait;
    double ca = median(a, rounds, offsetof(result, connects));
    double cf = median(f, rounds, offsetof(result, connects));
    int fewer = 0, timeouts_ok = 0, p99_ok = 0;

    for (int i = 0; i < rounds; i++) {
        fewer += a[i].held_all < f[i].held_all;
        timeouts_ok += a[i].timeouts <= f[i].timeouts;
        p99_ok += a[i].p99_wait <= f[i].p99_wait;
        fmin = f[i].p99_wait < fmin ? f[i].p99_wait : fmin;
        fmax = f[i].p99_wait > fmax ? f[i].p99_wait : fmax;
    }
    printf("\n**%s** (%s), medians of %d runs each, auto against fixed:\n\n", sc->name, sc->what,
           rounds);
    printf("- held on average: %.1f against %.1f (%.2fx); fewer in %d of %d pairs\n", ha, hf,
           hf > 0 ? ha / hf : 0, fewer, rounds);
    printf("- timeouts, all runs: %.0f against %.0f; no more in %d of %d pairs\n", ta, tf,
           timeouts_ok, rounds);
    printf("- p99 wait: %.3f ms against %.3f ms (%.2fx); no worse in %d of %d pairs\n", pa * 1e3,
           pf * 1e3, pf > 0 ? pa / pf : 0, p99_ok, rounds);
    printf("- p99 wait of every run's checkouts together: %.3f ms against %.3f ms (%.2fx); "
           "the fixed pool's own runs range %.3f..%.3f ms, the auto median is %s it\n",
           qa * 1e3, qf * 1e3, qf > 0 ? qa / qf : 0, fmin * 1e3, fmax * 1e3,
           pa < fmin ? "below" : pa <= fmax ? "within" : "above");
    printf("- connects: %.0f against %.0f\n", ca, cf);
}

int main(int argc, char **argv)
{
    const char *dsn = getenv("DBPOOL_TEST_DSN");
    double seconds = argc > 1 ? atof(argv[1]) : 45;
    int rounds = argc > 2 ? atoi(argv[2]) : 3;
    static result res[SCENARIOS][2][MAX_ROUNDS];   /* [scenario][auto, fixed][round] */

    if (dsn == NULL || seconds <= 0 || rounds < 1 || rounds > MAX_ROUNDS) {
        fprintf(stderr, "usage: DBPOOL_TEST_DSN=... autosize [SECONDS per run, default 45 "
                        "[ROUNDS, 1..%d, default 3]]\n", MAX_ROUNDS);
        return 2;
    }
    for (int s = 0; s < SCENARIOS; s++) {
        for (int i = 0; i < 2 * rounds; i++) {
            /* ABBA: auto, fixed, fixed, auto, auto, fixed, ... */
            int fixed = (i % 4 == 1 || i % 4 == 2);
            dbp_pool *p = make_pool(dsn, &scenarios[s], !fixed);
            fprintf(stderr, "autosize: %s %s run %d\n", scenarios[s].name,
                    fixed ? "fixed" : "auto", i / 2 + 1);
            run(p, seconds, &res[s][fixed][i / 2]);
            dbp_pool_free(p);
        }
    }
    for (int s = 0; s < SCENARIOS; s++) {
        const scenario *sc = &scenarios[s];
        char label[96];

        printf("\n### %s: %s\n\n", sc->name, sc->what);
        header();
        for (int i = 0; i < rounds; i++) {
            snprintf(label, sizeof label, "auto (1..%d, interval 1 s) #%d", sc->max, i + 1);
            row(label, &res[s][0][i]);
            snprintf(label, sizeof label, "fixed (pool_size %d) #%d", sc->max, i + 1);
            row(label, &res[s][1][i]);
        }
        summary(sc, res[s][0], res[s][1], rounds);
        for (int i = 0; i < rounds; i++) {
            free(res[s][0][i].all_waits);
            free(res[s][1][i].all_waits);
        }
    }
    printf("\n%.0f s per run: %.0f s at 1 worker, %.0f s at 50, %.0f s at 5; runs in ABBA order; "
           "a pair is auto #i with fixed #i.\n", seconds, seconds * phase_share[0],
           seconds * phase_share[1], seconds * phase_share[2]);
    return 0;
}

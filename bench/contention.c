/* contention.c: T threads share one pool of size P (no overflow), each
 * running checkout + SELECT 1 + checkin for a fixed time.  Prints
 * "threads size ops_per_s p99_wait_us" using the pool's own wait histogram.
 *   contention THREADS POOL_SIZE SECONDS */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "conn.h"
#include "pool.h"
#include "pool_stmt.h"

static const dbp_statement select1 = {.sql = "SELECT 1"};
static dbp_pool *pool;
static atomic_int stop;
static atomic_long ops;

static void *worker(void *arg)
{
    long mine = 0;
    dbp_error err;

    (void)arg;
    while (!atomic_load(&stop)) {
        dbp_slot *s;
        dbp_result *r;
        if (dbp_pool_checkout(pool, &s, &err) != DBP_OK)
            continue;                                   /* a timeout: try again */
        if (dbp_slot_exec(pool, s, &select1, &r, &err) == DBP_OK)
            dbp_result_free(r);
        dbp_pool_release(pool, s);
        mine++;
    }
    atomic_fetch_add(&ops, mine);
    return NULL;
}

int main(int argc, char **argv)
{
    const char *dsn = getenv("DBPOOL_TEST_DSN");
    int threads = argc > 1 ? atoi(argv[1]) : 0, size = argc > 2 ? atoi(argv[2]) : 0;
    double seconds = argc > 3 ? atof(argv[3]) : 0;
    pthread_t tids[256];
    dbp_config cfg;
    dbp_error err;
    dbp_hist_snapshot wait;
    struct timespec ts;

    if (dsn == NULL || threads < 1 || threads > 256 || size < 1 || seconds <= 0) {
        fprintf(stderr, "usage: DBPOOL_TEST_DSN=... contention THREADS(1-256) POOL_SIZE SECONDS\n");
        return 2;
    }
    dbp_config_init(&cfg);
    if (dbp_config_set_string(&cfg, dbp_option_find("name"), "bench_contention", &err) != DBP_OK ||
        dbp_config_set_string(&cfg, dbp_option_find("dsn"), dsn, &err) != DBP_OK ||
        dbp_config_set_number(&cfg, dbp_option_find("pool_size"), size, &err) != DBP_OK ||
        dbp_config_set_number(&cfg, dbp_option_find("max_overflow"), 0, &err) != DBP_OK ||
        dbp_config_set_number(&cfg, dbp_option_find("min_idle"), size, &err) != DBP_OK ||
        dbp_config_finish(&cfg, &err) != DBP_OK || dbp_pool_new(&cfg, &pool, &err) != DBP_OK ||
        dbp_pool_refill(pool, &err) != DBP_OK) {
        fprintf(stderr, "contention: %s\n", err.message);
        return 1;
    }
    dbp_config_free(&cfg);
    for (int i = 0; i < threads; i++)
        pthread_create(&tids[i], NULL, worker, NULL);
    ts.tv_sec = (time_t)seconds;
    ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
    nanosleep(&ts, NULL);
    atomic_store(&stop, 1);
    for (int i = 0; i < threads; i++)
        pthread_join(tids[i], NULL);
    dbp_hist_read(dbp_pool_metrics(pool), DBP_H_WAIT, &wait);
    printf("%d %d %.0f %.1f\n", threads, size, (double)atomic_load(&ops) / seconds,
           dbp_hist_quantile(&wait, 0.99) * 1e6);
    dbp_pool_free(pool);
    return 0;
}

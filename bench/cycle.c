/* cycle.c: dbpool's checkout + checkin cycle in C, N times, against a real
 * server (DBPOOL_TEST_DSN).  Prints the seconds the loop took.  Run under
 * `valgrind --tool=callgrind` with two values of N, the difference of the
 * instruction counts divided by the difference of N is the cost of one
 * cycle, with start-up and the one connect cancelled out.
 *   cycle N [select1]   select1: also run SELECT 1 inside each checkout */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "conn.h"
#include "pool.h"
#include "pool_stmt.h"

static const dbp_statement select1_stmt = {.sql = "SELECT 1"};

static void die(const char *what, const dbp_error *err)
{
    fprintf(stderr, "cycle: %s: %s\n", what, err->message);
    exit(1);
}

int main(int argc, char **argv)
{
    const char *dsn = getenv("DBPOOL_TEST_DSN");
    long n = argc > 1 ? atol(argv[1]) : 0;
    int select1 = argc > 2 && strcmp(argv[2], "select1") == 0;
    dbp_config cfg;
    dbp_pool *p;
    dbp_slot *s;
    dbp_error err;
    int64_t t0;

    if (dsn == NULL || n <= 0) {
        fprintf(stderr, "usage: DBPOOL_TEST_DSN=... cycle N [select1]\n");
        return 2;
    }
    dbp_config_init(&cfg);
    if (dbp_config_set_string(&cfg, dbp_option_find("name"), "bench_cycle", &err) != DBP_OK ||
        dbp_config_set_string(&cfg, dbp_option_find("dsn"), dsn, &err) != DBP_OK ||
        dbp_config_set_number(&cfg, dbp_option_find("pool_size"), 1, &err) != DBP_OK ||
        dbp_config_finish(&cfg, &err) != DBP_OK)
        die("config", &err);
    if (dbp_pool_new(&cfg, &p, &err) != DBP_OK)
        die("pool", &err);
    dbp_config_free(&cfg);
    if (dbp_pool_checkout(p, &s, &err) != DBP_OK)   /* the one connect, before timing */
        die("checkout", &err);
    dbp_pool_release(p, s);

    t0 = dbp_now_ns();
    for (long i = 0; i < n; i++) {
        if (dbp_pool_checkout(p, &s, &err) != DBP_OK)
            die("checkout", &err);
        if (select1) {
            dbp_result *r;
            if (dbp_slot_exec(p, s, &select1_stmt, &r, &err) != DBP_OK)
                die("SELECT 1", &err);
            dbp_result_free(r);
        }
        dbp_pool_release(p, s);
    }
    printf("%.9f\n", (double)(dbp_now_ns() - t0) / 1e9);
    dbp_pool_free(p);
    return 0;
}

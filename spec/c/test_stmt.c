/* test_stmt.c: the core's statement API on a checked-out slot (pool_stmt.h)
 * against a real PostgreSQL (DBPOOL_TEST_DSN, set by scripts/with-pg.sh):
 * what every caller, C included, gets without doing anything itself:
 * statements and errors counted, max_queries rotating the connection, a
 * query error keeping the pool, a disconnect retiring every connection
 * born before it, a query_timeout cancelling and counting. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "pool.h"
#include "pool_stmt.h"
#include "result.h"
#include "testlib.h"
#include "testpool.h"

static const char *g_dsn;     /* DBPOOL_TEST_DSN */

static dbp_slot *take(dbp_pool *p)
{
    dbp_slot *s;
    dbp_error err;

    if (dbp_pool_checkout(p, &s, &err) != DBP_OK)
        bail_out("checkout: %s", err.message);
    return s;
}

static dbp_status run(dbp_pool *p, dbp_slot *s, const char *sql, dbp_error *err)
{
    dbp_statement stmt = {.sql = sql};
    dbp_result *r;
    dbp_status st = dbp_slot_exec(p, s, &stmt, &r, err);

    if (st == DBP_OK)
        dbp_result_free(r);
    return st;
}

static int pid_of(dbp_slot *s)
{
    return dbp_conn_backend_pid(dbp_slot_conn(s));
}

static void test_counts_and_rotation(void)
{
    dbp_pool *p = pool_with("rotate", g_dsn, "pool_size=1,max_overflow=0,max_queries=3");
    dbp_error err;
    dbp_slot *s = take(p);
    int pid = pid_of(s);

    for (int i = 0; i < 3; i++)
        is_int(run(p, s, "SELECT 1", &err), DBP_OK, "statement %d runs", i + 1);
    dbp_pool_release(p, s);
    is_int(metric(p, DBP_M_QUERIES), 3, "three statements counted");
    s = take(p);
    ok(pid_of(s) != pid, "max_queries = 3: the next checkout gets a new connection");
    is_int(metric(p, DBP_M_RECYCLES), 1, "... counted as a recycle");
    dbp_pool_release(p, s);
    dbp_pool_free(p);
}

static void test_query_error_keeps_pool(void)
{
    dbp_pool *p = pool_with("qerr", g_dsn, "pool_size=2,max_overflow=0");
    dbp_error err;
    dbp_slot *a = take(p), *b = take(p);
    int pa = pid_of(a), pb = pid_of(b);

    is_int(run(p, a, "SELEC 1", &err), DBP_QUERY, "a syntax error fails");
    is_str(err.sqlstate, "42601", "... with its SQLSTATE");
    is_int(run(p, a, "SELECT 1/0", &err), DBP_QUERY, "a division by zero fails");
    is_int(metric(p, DBP_M_QUERY_ERRORS), 2, "two query errors counted");
    is_int(run(p, a, "SELECT 1", &err), DBP_OK, "the connection stays usable");
    dbp_pool_release(p, a);
    dbp_pool_release(p, b);
    a = take(p);
    b = take(p);
    ok((pid_of(a) == pa || pid_of(a) == pb) && (pid_of(b) == pa || pid_of(b) == pb),
       "both connections kept: a query error is not a disconnect");
    dbp_pool_release(p, a);
    dbp_pool_release(p, b);
    dbp_pool_free(p);
}

static void test_disconnect_retires_older(void)
{
    dbp_pool *p = pool_with("lost", g_dsn, "pool_size=2,max_overflow=0");
    dbp_error err;
    dbp_slot *a = take(p), *b = take(p);
    int pb = pid_of(b);
    char sql[96];

    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d)", pid_of(a));
    is_int(run(p, b, sql, &err), DBP_OK, "terminate a's backend from b");
    tl_sleep(0.2);
    is_int(run(p, a, "SELECT 1", &err), DBP_QUERY, "a's next statement fails");
    ok(dbp_conn_lost(dbp_slot_conn(a)), "... and the connection is lost");
    dbp_pool_release(p, a);
    dbp_pool_release(p, b);
    is_int(counts(p).checkedin, 0, "a discarded, and b, born before the disconnect, too");
    b = take(p);
    ok(pid_of(b) != pb, "the next checkout gets a new connection");
    dbp_pool_release(p, b);
    dbp_pool_free(p);
}

static void test_query_timeout(void)
{
    dbp_pool *p = pool_with("qtimeout", g_dsn, "pool_size=1,max_overflow=0");
    dbp_error err;
    dbp_slot *s = take(p);
    int pid = pid_of(s);
    double t0 = tl_now();

    dbp_slot_set_query_timeout(s, 0.3);
    is_int(run(p, s, "SELECT pg_sleep(5)", &err), DBP_QUERY_TIMEOUT,
           "a statement past set_query_timeout fails");
    between(tl_now() - t0, 0.25, 1.5, "... near the deadline");
    like(err.message, "query_timeout", "... naming query_timeout");
    is_int(metric(p, DBP_M_QUERY_TIMEOUTS), 1, "... counted");
    dbp_pool_release(p, s);
    s = take(p);
    ok(pid_of(s) != pid, "the connection was not pooled");
    is_int(run(p, s, "SELECT pg_sleep(0.05)", &err), DBP_OK,
           "the next checkout has no deadline again");
    is_int(dbp_slot_ping(p, s, &err), DBP_OK, "ping on a healthy connection");
    dbp_pool_release(p, s);
    dbp_pool_free(p);
}

int main(void)
{
    g_dsn = tl_env_or_bail("DBPOOL_TEST_DSN");
    test_counts_and_rotation();
    test_query_error_keeps_pool();
    test_disconnect_retires_older();
    test_query_timeout();
    return done_testing();
}

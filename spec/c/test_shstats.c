/* test_shstats.c: one pool's numbers across processes (shstats.h): forked
 * children publish as nginx workers do, the parent reads them by worker id,
 * and a process that is gone leaves its numbers behind, never less.
 * Counts statements with dbp_metrics_inc: no server needed. */
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "metrics.h"
#include "pool.h"
#include "shstats.h"
#include "testlib.h"

static dbp_pool *pool_make(void)
{
    dbp_config cfg;
    dbp_pool *p = NULL;
    dbp_error err;

    dbp_config_init(&cfg);
    if (dbp_config_set_string(&cfg, dbp_option_find("name"), "SH", &err) != DBP_OK ||
        dbp_config_set_string(&cfg, dbp_option_find("dsn"), "host=/nonexistent", &err) != DBP_OK ||
        dbp_config_finish(&cfg, &err) != DBP_OK || dbp_pool_new(&cfg, &p, &err) != DBP_OK)
        bail_out("pool: %s", err.message);
    dbp_config_free(&cfg);
    return p;
}

static void count_queries(dbp_pool *p, int n)
{
    for (int i = 0; i < n; i++)
        dbp_metrics_inc(dbp_pool_metrics(p), DBP_M_QUERIES);
}

/* Forks a "worker" that publishes, counts n statements, publishes, then
 * waits for a byte on hold[0] (if hold) and exits.  Returns its pid. */
static pid_t worker(dbp_shstats *sh, dbp_pool *p, int id, int n, int *hold)
{
    int ready[2];
    char c;
    pid_t pid;

    if (pipe(ready) != 0)
        bail_out("pipe");
    if ((pid = fork()) == 0) {
        (void)dbp_shstats_publish(sh, p, id);
        count_queries(p, n);
        (void)dbp_shstats_publish(sh, p, id);
        (void)!write(ready[1], "r", 1);
        if (hold != NULL)
            (void)!read(hold[0], &c, 1);
        _exit(0);
    }
    (void)!read(ready[0], &c, 1);
    close(ready[0]);
    close(ready[1]);
    return pid;
}

/* Worker id's row: its queries, and its live processes through *procs. */
static long queries_of(dbp_shstats *sh, int id, int *procs)
{
    dbp_shstats_row rows[DBP_SH_WORKERS];
    int n = dbp_shstats_read(sh, rows);

    *procs = 0;
    for (int i = 0; i < n; i++)
        if (rows[i].worker == id) {
            *procs = rows[i].processes;
            return (long)rows[i].counters[DBP_M_QUERIES];
        }
    return -1;
}

/* Forks a process that takes the lease for secs and writes decision
 * number n, then waits for a byte on hold[0] (if hold) and exits. */
static pid_t leaser(dbp_shstats *sh, double secs, uint64_t n, int *hold)
{
    pid_t pid = fork();

    if (pid < 0)
        bail_out("fork");
    if (pid == 0) {
        dbp_sh_decision d = {.number = n, .target = 5, .workers = 2, .rate = 12.5};
        char c;
        int rc = dbp_shstats_lease(sh, dbp_now_ns(), dbp_sec_to_ns(secs)) &&
                         dbp_shstats_decide(sh, &d) ? 0 : 1;
        if (hold != NULL) {
            close(hold[1]);
            (void)!read(hold[0], &c, 1);
        }
        _exit(rc);
    }
    return pid;
}

/* The instance's sizing lease and decision (pool_size = "auto"). */
static void test_lease(dbp_shstats *sh)
{
    dbp_sh_decision d;
    int hold[2], status;
    pid_t a;

    ok(dbp_shstats_decision(sh, &d) && d.number == 0, "no decision before the first");
    if (pipe(hold) != 0)
        bail_out("pipe");
    a = leaser(sh, 60, 1, hold);
    close(hold[0]);
    for (int i = 0; i < 500 && !(dbp_shstats_decision(sh, &d) && d.number == 1); i++)
        tl_sleep(0.01);
    is_int((long long)d.number, 1, "the holder's decision is every process's");
    is_int(d.target, 5, "... with its target");
    ok(d.rate == 12.5, "... and its inputs");
    ok(!dbp_shstats_lease(sh, dbp_now_ns(), dbp_sec_to_ns(1)),
       "a live holder's lease is not taken");
    (void)!write(hold[1], "x", 1);
    close(hold[1]);
    waitpid(a, &status, 0);
    is_int(WEXITSTATUS(status), 0, "the holder took the lease and decided");
    ok(dbp_shstats_lease(sh, dbp_now_ns(), dbp_sec_to_ns(0.05)),
       "a dead holder's lease is taken at once, though not expired");
    ok(dbp_shstats_lease(sh, dbp_now_ns(), dbp_sec_to_ns(0.05)), "... and renewed by its holder");
    waitpid(leaser(sh, 1, 2, NULL), &status, 0);
    is_int(WEXITSTATUS(status), 1, "another process cannot take it while it runs");
    tl_sleep(0.2);
    waitpid(leaser(sh, 1, 3, NULL), &status, 0);
    is_int(WEXITSTATUS(status), 0, "... and takes it once it expired (a holder that hangs)");
    ok(dbp_shstats_decision(sh, &d) && d.number == 3, "the new holder's decision is read");
    ok(dbp_shstats_lease(sh, dbp_now_ns(), dbp_sec_to_ns(60)), "taken again here, for long");
    dbp_shstats_lease_release(sh);
    waitpid(leaser(sh, 1, 4, NULL), &status, 0);
    is_int(WEXITSTATUS(status), 0, "a lease given up is taken at once by another process");
}

int main(void)
{
    dbp_pool *p = pool_make();
    dbp_shstats *sh = dbp_shstats_of(p, true);
    int hold[2], procs;
    pid_t b;

    ok(sh != NULL, "a table is mapped");
    ok(dbp_shstats_of(p, false) == sh, "the same table is found again");
    count_queries(p, 7);                     /* the "master's": not a worker's */

    waitpid(worker(sh, p, 0, 3, NULL), NULL, 0);
    is_int(queries_of(sh, 0, &procs), 3, "a worker's numbers, without what it inherited");
    is_int(procs, 0, "... and it is gone");

    if (pipe(hold) != 0)
        bail_out("pipe");
    b = worker(sh, p, 0, 2, hold);
    is_int(queries_of(sh, 0, &procs), 5, "its replacement adds on top of what the first left");
    is_int(procs, 1, "... one live process of worker 0");
    (void)!write(hold[1], "x", 1);
    waitpid(b, NULL, 0);
    is_int(queries_of(sh, 0, &procs), 5, "the replacement's exit takes nothing away");
    is_int(procs, 0, "... and nobody is left");

    waitpid(worker(sh, p, 1, 4, NULL), NULL, 0);
    is_int(queries_of(sh, 1, &procs), 4, "worker 1 has its own row");
    is_int(queries_of(sh, 0, &procs), 5, "... and worker 0 keeps its own");
    test_lease(sh);
    return done_testing();
}

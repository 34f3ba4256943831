/* test_arena.c: the instance arena (arena.h) across real fork()ed
 * processes, as nginx's workers use it: two children claiming one key get
 * one block, other keys other blocks, a full arena says so, a slot left
 * half-written by a dead process is taken over, a slow live writer makes
 * others fall back.  Then what sits on it: engines declared in "workers"
 * (children of the process that mapped the instance arena) share one
 * shstats table and one cap per name and options, and an engine removed
 * and declared again never makes a counter go backwards.  No server needed. */
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "arena.h"
#include "cap.h"
#include "config.h"
#include "metrics.h"
#include "pool.h"
#include "registry.h"
#include "shstats.h"
#include "testlib.h"

/* What children report to the test, outside the arena under test. */
typedef struct report {
    _Atomic long offset[4];     /* a block's place in the arena, per child */
    _Atomic long value[4];      /* something a child read */
    _Atomic int why[4];
} report;

static report *report_new(void)
{
    report *r = mmap(NULL, sizeof *r, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    if (r == MAP_FAILED)
        bail_out("mmap");
    return r;
}

/* Waits for child and says whether it exited with status 0. */
static int child_ok(pid_t child)
{
    int status = -1;

    return waitpid(child, &status, 0) == child && WIFEXITED(status) &&
           WEXITSTATUS(status) == 0;
}

/* ---- the directory ------------------------------------------------------- */

/* Child i claims (name, fp): reports the block's offset and the long found
 * in it, then writes 100 + i there if it was 0. */
static pid_t claimer(dbp_arena *a, report *r, int i, const char *name, uint64_t fp)
{
    pid_t pid = fork();

    if (pid == 0) {
        dbp_arena_why why;
        _Atomic long *block = dbp_arena_claim(a, DBP_ARENA_STATS, name, fp, 4096, NULL, NULL, &why);
        atomic_store(&r->why[i], (int)why);
        if (block == NULL)
            _exit(1);
        atomic_store(&r->offset[i], (long)((char *)block - (char *)a));
        long zero = 0;
        atomic_compare_exchange_strong(block, &zero, 100 + i);
        atomic_store(&r->value[i], atomic_load(block));
        _exit(0);
    }
    return pid;
}

static void test_same_and_other_keys(void)
{
    dbp_arena *a = dbp_arena_new(1 << 20, 16);
    report *r = report_new();
    pid_t c0, c1, c2, c3;

    ok(a != NULL, "an arena of 1 MiB, 16 slots, maps");
    c0 = claimer(a, r, 0, "KG", 7);
    c1 = claimer(a, r, 1, "KG", 7);
    ok(child_ok(c0) && child_ok(c1), "two children claim KG/7 at once");
    is_int(atomic_load(&r->offset[0]), atomic_load(&r->offset[1]), "... and get the same block");
    is_int(atomic_load(&r->value[0]), atomic_load(&r->value[1]),
           "... whose contents one wrote and both read");
    c2 = claimer(a, r, 2, "KG", 8);
    c3 = claimer(a, r, 3, "US", 7);
    ok(child_ok(c2) && child_ok(c3), "other keys claim too");
    ok(atomic_load(&r->offset[2]) != atomic_load(&r->offset[0]),
       "the same name with another fingerprint gets another block");
    ok(atomic_load(&r->offset[3]) != atomic_load(&r->offset[0]) &&
       atomic_load(&r->offset[3]) != atomic_load(&r->offset[2]),
       "another name gets another block");
    is_int(atomic_load(&r->value[2]), 102, "... zero-filled when new");
    is_int((long)dbp_arena_used(a), 3 * 4096, "three blocks used");
    dbp_arena_free(a);
    munmap(r, sizeof *r);
}

static void test_full(void)
{
    /* Room for the directory and two 4 KiB blocks. */
    dbp_arena *a = dbp_arena_new(4096 + 2 * 4096, 4);
    dbp_arena_why why = DBP_ARENA_OK;
    void *b1, *b2, *b3, *again;

    b1 = dbp_arena_claim(a, DBP_ARENA_STATS, "A", 1, 4096, NULL, NULL, &why);
    b2 = dbp_arena_claim(a, DBP_ARENA_STATS, "B", 1, 4096, NULL, NULL, &why);
    ok(b1 != NULL && b2 != NULL && b1 != b2, "two blocks fit");
    b3 = dbp_arena_claim(a, DBP_ARENA_STATS, "C", 1, 4096, NULL, NULL, &why);
    ok(b3 == NULL, "a third does not");
    is_int(why, DBP_ARENA_FULL, "... and the claim says the arena is full");
    again = dbp_arena_claim(a, DBP_ARENA_STATS, "A", 1, 4096, NULL, NULL, &why);
    ok(again == b1 && why == DBP_ARENA_OK, "a key already there is still found");
    dbp_arena_free(a);

    a = dbp_arena_new(1 << 20, 2);
    b1 = dbp_arena_claim(a, DBP_ARENA_CAP, "A", 1, 64, NULL, NULL, &why);
    b2 = dbp_arena_claim(a, DBP_ARENA_CAP, "B", 1, 64, NULL, NULL, &why);
    b3 = dbp_arena_claim(a, DBP_ARENA_CAP, "C", 1, 64, NULL, NULL, &why);
    ok(b1 != NULL && b2 != NULL && b3 == NULL && why == DBP_ARENA_FULL,
       "with every slot taken, a new key finds the arena full");
    b3 = dbp_arena_claim(a, DBP_ARENA_CAP, "B", 1, 64, NULL, NULL, &why);
    ok(b3 == b2, "... and an old one its block");
    ok(dbp_arena_claim(NULL, DBP_ARENA_CAP, "B", 1, 64, NULL, NULL, &why) == NULL &&
       why == DBP_ARENA_ABSENT, "no arena: absent");
    dbp_arena_free(a);
}

/* init callbacks that stop in the middle of a claim. */
static void die_in_init(void *block, void *arg)
{
    (void)block;
    (void)arg;
    _exit(0);
}

static void slow_init(void *block, void *arg)
{
    (void)block;
    tl_sleep(*(double *)arg);
}

static void test_writers_that_stop(void)
{
    dbp_arena *a = dbp_arena_new(1 << 20, 8);
    report *r = report_new();
    dbp_arena_why why;
    double secs = 1.0;
    pid_t dead, slow;
    void *b;

    dead = fork();
    if (dead == 0) {
        (void)dbp_arena_claim(a, DBP_ARENA_STATS, "DEAD", 1, 128, die_in_init, NULL, NULL);
        _exit(1);                       /* not reached: init exits */
    }
    waitpid(dead, NULL, 0);
    b = dbp_arena_claim(a, DBP_ARENA_STATS, "DEAD", 1, 128, NULL, NULL, &why);
    ok(b != NULL && why == DBP_ARENA_OK,
       "a slot whose writer died half-way is taken over, not waited for");

    slow = fork();
    if (slow == 0) {
        (void)dbp_arena_claim(a, DBP_ARENA_STATS, "SLOW", 1, 128, slow_init, &secs, NULL);
        _exit(0);
    }
    tl_sleep(0.2);                      /* the child is in its init */
    double t0 = tl_now();
    b = dbp_arena_claim(a, DBP_ARENA_STATS, "SLOW", 1, 128, NULL, NULL, &why);
    double waited = tl_now() - t0;
    ok(b == NULL && why == DBP_ARENA_BUSY, "a live writer past the wait: busy, no block");
    between(waited, 0.15, 0.6, "... after waiting about DBP_ARENA_WAIT_NS (%.3f s)", waited);
    waitpid(slow, NULL, 0);
    b = dbp_arena_claim(a, DBP_ARENA_STATS, "SLOW", 1, 128, NULL, NULL, &why);
    ok(b != NULL, "once it published, the block is there");
    dbp_arena_free(a);
    munmap(r, sizeof *r);
}

/* ---- the process's instance arena, and what sits on it ------------------- */

static dbp_config config_of(const char *name, int pool_size, int cap)
{
    dbp_config cfg;
    dbp_error err;

    dbp_config_init(&cfg);
    if (dbp_config_set_string(&cfg, dbp_option_find("name"), name, &err) != DBP_OK ||
        dbp_config_set_string(&cfg, dbp_option_find("dsn"), "host=/nonexistent", &err) != DBP_OK ||
        dbp_config_set_number(&cfg, dbp_option_find("pool_size"), pool_size, &err) != DBP_OK ||
        dbp_config_set_number(&cfg, dbp_option_find("max_total_connections"), cap, &err) !=
            DBP_OK ||
        dbp_config_finish(&cfg, &err) != DBP_OK)
        bail_out("config: %s", err.message);
    return cfg;
}

/* An engine declared now, in this process (a worker), through the registry. */
static dbp_pool *declare(const char *name, int pool_size, int cap)
{
    dbp_config cfg = config_of(name, pool_size, cap);
    dbp_pool *p = NULL;
    dbp_error err;
    int created;

    if (dbp_registry_open(&cfg, &p, &created, &err) != DBP_OK)
        bail_out("open: %s", err.message);
    dbp_config_free(&cfg);
    return p;
}

static void count_queries(dbp_pool *p, int n)
{
    for (int i = 0; i < n; i++)
        dbp_metrics_inc(dbp_pool_metrics(p), DBP_M_QUERIES);
}

/* Sum of every worker's queries in sh. */
static long queries_in(dbp_shstats *sh)
{
    dbp_shstats_row rows[DBP_SH_WORKERS];
    int n = dbp_shstats_read(sh, rows);
    long q = 0;

    for (int i = 0; i < n; i++)
        q += (long)rows[i].counters[DBP_M_QUERIES];
    return q;
}

/* A worker of id i: declares W (pool_size size) after fork, counts i + 1
 * statements, publishes; reports its table's offset in the arena; then
 * waits for a byte on hold[0], and reports the instance's queries. */
static pid_t worker(report *r, int i, int size, int *hold)
{
    int ready[2];
    char c;
    pid_t pid;

    if (pipe(ready) != 0)
        bail_out("pipe");
    if ((pid = fork()) == 0) {
        dbp_arena_why why;
        dbp_pool *p = declare("W", size, 0);
        dbp_shstats *sh = dbp_shstats_share(p, &why);
        atomic_store(&r->why[i], (int)why);
        atomic_store(&r->offset[i],
                     (long)((char *)sh - (char *)dbp_arena_instance(NULL)));
        (void)dbp_shstats_publish(sh, p, i);   /* at once, as lua/dbpool/ngx.lua does */
        count_queries(p, i + 1);
        (void)dbp_shstats_publish(sh, p, i);
        (void)!write(ready[1], "r", 1);
        (void)!read(hold[0], &c, 1);
        atomic_store(&r->value[i], queries_in(sh));
        _exit(0);
    }
    (void)!read(ready[0], &c, 1);
    close(ready[0]);
    close(ready[1]);
    return pid;
}

static void test_workers_share_tables(void)
{
    report *r = report_new();
    int hold[2];
    pid_t w0, w1, w2;

    ok(dbp_arena_open_instance() == DBP_OK, "the master maps the instance arena");
    ok(dbp_arena_instance(NULL) == NULL && dbp_arena_mapped_here(),
       "... and claims nothing from it itself");
    if (pipe(hold) != 0)
        bail_out("pipe");
    w0 = worker(r, 0, 5, hold);
    w1 = worker(r, 1, 5, hold);
    w2 = worker(r, 2, 6, hold);          /* the same name, other options */
    (void)!write(hold[1], "xxx", 3);
    ok(child_ok(w0) && child_ok(w1) && child_ok(w2), "three workers declared W after fork");
    ok(atomic_load(&r->why[0]) == DBP_ARENA_OK && atomic_load(&r->why[1]) == DBP_ARENA_OK,
       "... their tables are the instance's");
    is_int(atomic_load(&r->offset[0]), atomic_load(&r->offset[1]),
           "the two with the same options share one table");
    ok(atomic_load(&r->offset[2]) != atomic_load(&r->offset[0]),
       "the one with another pool_size has its own");
    is_int(atomic_load(&r->value[0]), 3, "a worker reads both workers' statements (1 + 2)");
    is_int(atomic_load(&r->value[2]), 3, "... the other options' table only its own 3");
    munmap(r, sizeof *r);
}

/* In one worker: W2 declared, 5 statements, removed, declared again with
 * the same options (the same table), 2 statements (each declaration
 * published at once, as lua/dbpool/ngx.lua does): the instance's count
 * goes 5 -> 7, never back.  Exits 0 when it did. */
static void redeclare_in_worker(report *r)
{
    dbp_pool *p = declare("W2", 3, 0);
    dbp_shstats *sh = dbp_shstats_share(p, NULL);
    long before, after;

    (void)dbp_shstats_publish(sh, p, 0);
    count_queries(p, 5);
    (void)dbp_shstats_publish(sh, p, 0);
    before = queries_in(sh);
    if (!dbp_registry_remove("W2"))
        _exit(2);
    p = declare("W2", 3, 0);
    if (dbp_shstats_share(p, NULL) != sh)
        _exit(3);                       /* the same key: the same table */
    (void)dbp_shstats_publish(sh, p, 0);
    count_queries(p, 2);
    (void)dbp_shstats_publish(sh, p, 0);
    after = queries_in(sh);
    atomic_store(&r->value[0], before);
    atomic_store(&r->value[1], after);
    _exit(0);
}

static void test_redeclared_engine(void)
{
    report *r = report_new();
    pid_t w = fork();

    if (w == 0)
        redeclare_in_worker(r);
    ok(child_ok(w), "a worker removes W2 and declares it again with the same options");
    is_int(atomic_load(&r->value[0]), 5, "5 statements before the removal");
    is_int(atomic_load(&r->value[1]), 7, "... 7 after 2 more: the old pool's numbers are kept, "
                                         "never the new one's base");
    munmap(r, sizeof *r);
}

/* A worker that declares C (max_total_connections = 2) and takes what it
 * can, reporting how many; holds them until a byte on hold[0]. */
static pid_t cap_worker(report *r, int i, int *hold, int *ready)
{
    pid_t pid = fork();
    char c;

    if (pid == 0) {
        dbp_cap *cap = NULL;
        int got = 0;
        if (dbp_cap_share("C", 2, &cap) != DBP_OK)
            _exit(1);
        while (got < 5 && dbp_cap_take(cap))
            got++;
        atomic_store(&r->value[i], got);
        (void)!write(ready[1], "r", 1);
        (void)!read(hold[0], &c, 1);
        _exit(0);
    }
    return pid;
}

static void test_cap_shared(void)
{
    report *r = report_new();
    int hold[2], ready[2];
    char c;
    pid_t a, b;

    if (pipe(hold) != 0 || pipe(ready) != 0)
        bail_out("pipe");
    a = cap_worker(r, 0, hold, ready);
    (void)!read(ready[0], &c, 1);
    b = cap_worker(r, 1, hold, ready);
    (void)!read(ready[0], &c, 1);
    (void)!write(hold[1], "xx", 2);
    ok(child_ok(a) && child_ok(b), "two workers declare C with max_total_connections = 2");
    is_int(atomic_load(&r->value[0]) + atomic_load(&r->value[1]), 2,
           "... and hold 2 between them: one cap for the instance");
    munmap(r, sizeof *r);
}

int main(void)
{
    test_same_and_other_keys();
    test_full();
    test_writers_that_stop();
    test_workers_share_tables();
    test_redeclared_engine();
    test_cap_shared();
    return done_testing();
}

/* test_cap.c: csrc/cap.c, the max_total_connections table, across real
 * fork()ed processes (no server needed): the cap is exact while processes
 * race for it, a dead process's units are taken back, and a refused take
 * is seen by the others as a want. */
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cap.h"
#include "testlib.h"

/* Counters the children share with the test, outside the table under test. */
typedef struct shared {
    _Atomic int held;       /* units held right now, as the children count them */
    _Atomic int most;       /* the most ever held at once */
} shared;

static dbp_cap *cap_make(int limit)
{
    dbp_cap *cap = NULL;

    if (dbp_cap_new(limit, &cap) != DBP_OK)
        bail_out("dbp_cap_new(%d) failed", limit);
    return cap;
}

/* Waits for child and says whether it exited with status 0. */
static int child_ok(pid_t child)
{
    int status = -1;

    return waitpid(child, &status, 0) == child && WIFEXITED(status) &&
           WEXITSTATUS(status) == 0;
}

static void test_one_process(void)
{
    dbp_cap *cap = cap_make(3);
    int taken = 0;

    while (taken < 10 && dbp_cap_take(cap))
        taken++;
    is_int(taken, 3, "one process takes exactly the cap of 3");
    is_int(dbp_cap_open(cap), 3, "the table counts 3 open");
    is_int(dbp_cap_open_here(cap), 3, "... all of them this process's");
    ok(!dbp_cap_wanted_elsewhere(cap, dbp_now_ns()), "its own refused take is no want elsewhere");
    dbp_cap_give_back(cap, 2);
    is_int(dbp_cap_open(cap), 1, "giving 2 back leaves 1");
    ok(dbp_cap_take(cap), "and a take succeeds again");
    dbp_cap_free(cap);
}

/* One child: take and give back, round after round, counting what is held
 * in s; exits 0 when it took at least one unit. */
static void churn(dbp_cap *cap, shared *s, int rounds)
{
    int got = 0;

    for (int i = 0; i < rounds; i++) {
        if (!dbp_cap_take(cap))
            continue;
        got++;
        int now = atomic_fetch_add(&s->held, 1) + 1, most = atomic_load(&s->most);
        while (now > most && !atomic_compare_exchange_weak(&s->most, &most, now))
            ;
        atomic_fetch_sub(&s->held, 1);
        dbp_cap_give_back(cap, 1);
    }
    _exit(got > 0 ? 0 : 1);
}

static void test_exact_across_processes(void)
{
    enum { CHILDREN = 4, LIMIT = 2, ROUNDS = 20000 };
    dbp_cap *cap = cap_make(LIMIT);
    shared *s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pid_t kids[CHILDREN];
    int all_ok = 1;

    if (s == MAP_FAILED)
        bail_out("mmap");
    fflush(stdout);
    for (int i = 0; i < CHILDREN; i++)
        if ((kids[i] = fork()) == 0)
            churn(cap, s, ROUNDS);
    for (int i = 0; i < CHILDREN; i++)
        all_ok &= kids[i] > 0 && child_ok(kids[i]);
    ok(all_ok, "%d processes each took units of the cap", CHILDREN);
    between(atomic_load(&s->most), 1, LIMIT + 1,
            "at most %d held at once across %d racing processes", LIMIT, CHILDREN);
    is_int(dbp_cap_open(cap), 0, "everything given back: 0 open");
    munmap(s, sizeof *s);
    dbp_cap_free(cap);
}

static void test_reclaim_after_death(void)
{
    dbp_cap *cap = cap_make(3);
    pid_t child;

    ok(dbp_cap_take(cap), "the parent takes 1 of 3");
    fflush(stdout);
    if ((child = fork()) == 0)                 /* dies holding 2, never given back */
        _exit(dbp_cap_take(cap) && dbp_cap_take(cap) && !dbp_cap_take(cap) ? 0 : 1);
    ok(child > 0 && child_ok(child), "a child took the other 2, and a third was refused");
    is_int(dbp_cap_open(cap), 3, "its 2 stay counted after it died");
    ok(dbp_cap_wanted_elsewhere(cap, dbp_now_ns()), "the parent sees the child's want");
    ok(!dbp_cap_wanted_elsewhere(cap, dbp_now_ns() + DBP_CAP_WANT_NS),
       "... for a moment only");
    ok(dbp_cap_take(cap), "a take at the full cap takes the dead child's units back");
    is_int(dbp_cap_open(cap), 2, "then 2 are open: the parent's");
    is_int(dbp_cap_open_here(cap), 2, "... both counted for the parent");
    ok(dbp_cap_take(cap), "the third unit is free again");
    ok(!dbp_cap_take(cap), "a fourth is over the cap");
    dbp_cap_give_back(cap, 3);
    is_int(dbp_cap_open(cap), 0, "all given back");
    dbp_cap_free(cap);
}

/* A live process keeps its units however long it holds them. */
static void test_live_holder_kept(void)
{
    dbp_cap *cap = cap_make(1);
    int go[2], done[2];
    char byte = 0;
    pid_t child;

    if (pipe(go) != 0 || pipe(done) != 0)
        bail_out("pipe");
    fflush(stdout);
    if ((child = fork()) == 0) {
        int took = dbp_cap_take(cap);
        if (write(done[1], "x", 1) != 1 || read(go[0], &byte, 1) != 1)
            _exit(2);
        _exit(took ? 0 : 1);
    }
    ok(child > 0 && read(done[0], &byte, 1) == 1, "a child took the only unit");
    ok(!dbp_cap_take(cap), "the parent is refused while the child lives");
    is_int(dbp_cap_open(cap), 1, "... and the child's unit stays counted");
    ok(write(go[1], "x", 1) == 1 && child_ok(child), "the child exits");
    ok(dbp_cap_take(cap), "then its unit is taken back");
    for (int i = 0; i < 2; i++) {
        close(go[i]);
        close(done[i]);
    }
    dbp_cap_free(cap);
}

int main(void)
{
    test_one_process();
    test_exact_across_processes();
    test_reclaim_after_death();
    test_live_holder_kept();
    return done_testing();
}

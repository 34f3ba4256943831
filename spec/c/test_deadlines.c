/* test_deadlines.c: the core's deadlines against a real PostgreSQL
 * (DBPOOL_TEST_DSN, set by scripts/with-pg.sh) and a listener that accepts
 * TCP and never answers: a checkout bounded by pool_timeout whatever
 * connect_timeout says, each connect attempt by connect_timeout, a ping to a
 * stopped backend (SIGSTOP, always resumed) by ping_timeout, also in an
 * event loop's steps, a pre-ping by what is left of the checkout, and an
 * event loop's pre-ping sent without waiting and stepped to its answer or
 * its replacement; and min_idle refilled by the refill thread,
 * not by the caller of release, in a fork()ed child too. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "conn.h"
#include "pool.h"
#include "pool_stmt.h"
#include "testlib.h"
#include "testpool.h"

static const char *g_dsn;     /* DBPOOL_TEST_DSN */

/* ---- helpers ---------------------------------------------------------- */


/* A loopback port whose kernel accepts connections nobody ever answers. */
static int silent_listener(char *dsn, size_t size)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 16) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        bail_out("cannot make a listener on 127.0.0.1");
    snprintf(dsn, size, "postgresql://postgres@127.0.0.1:%d/postgres", ntohs(a.sin_port));
    return fd;
}

/* Checks out, keeps the backend's pid, returns the connection idle. */
static int idle_backend(dbp_pool *p)
{
    dbp_slot *s = NULL;
    dbp_error err;
    int pid;

    if (dbp_pool_checkout(p, &s, &err) != DBP_OK)
        bail_out("checkout: %s", err.message);
    pid = dbp_conn_backend_pid(dbp_slot_conn(s));
    dbp_pool_release(p, s);
    return pid;
}

/* Waits up to seconds for p to hold want idle connections. */
static int wait_idle(dbp_pool *p, int want, double seconds)
{
    double end = tl_now() + seconds;

    while (counts(p).checkedin != want && tl_now() < end)
        tl_sleep(0.01);
    return counts(p).checkedin;
}

/* ---- connect ---------------------------------------------------------- */

static void test_silent_server(void)
{
    char dsn[128];
    int fd = silent_listener(dsn, sizeof dsn);
    dbp_pool *p = pool_with("silent", dsn, "pool_size=1,max_overflow=0,pool_timeout=1");
    dbp_slot *s = NULL;
    dbp_error err;
    double t0 = tl_now();
    dbp_status st = dbp_pool_checkout(p, &s, &err);
    double took = tl_now() - t0;

    is_int(st, DBP_TIMEOUT, "a silent server: the checkout times out (connect_timeout 10)");
    between(took, 0.95, 2.0, "... within pool_timeout (1 s) plus one second");
    like(err.message, "pool_timeout", "... the message names pool_timeout");
    is_int(counts(p).total, 0, "... no capacity kept");
    is_int(metric(p, DBP_M_TIMEOUTS), 1, "... one timeout counted");
    is_int(metric(p, DBP_M_CONNECT_FAILURES), 1, "... one failed connect counted");
    dbp_pool_free(p);

    p = pool_with("silent_attempts", dsn,
                  "pool_size=1,max_overflow=0,pool_timeout=5,connect_timeout=0.3");
    t0 = tl_now();
    st = dbp_pool_checkout(p, &s, &err);
    took = tl_now() - t0;
    is_int(st, DBP_CONNECT, "connect_timeout 0.3 s: every attempt gives up (kind connect)");
    between(took, 0.9, 2.0, "... three attempts of 0.3 s and their back-off");
    like(err.message, "connect_timeout", "... the message names connect_timeout");
    is_int(metric(p, DBP_M_CONNECT_FAILURES), 3, "... three failed connects counted");
    is_int(counts(p).total, 0, "... no capacity kept");
    dbp_pool_free(p);
    close(fd);
}

/* ---- a stopped backend ------------------------------------------------- */

static void test_stopped_ping(void)
{
    dbp_pool *p = pool_with("ping", g_dsn, "pool_size=1,max_overflow=0,ping_timeout=0.3");
    dbp_slot *s = NULL;
    dbp_error err;
    dbp_status st;
    double t0, took;
    int pid;

    if (dbp_pool_checkout(p, &s, &err) != DBP_OK)
        bail_out("checkout: %s", err.message);
    pid = dbp_conn_backend_pid(dbp_slot_conn(s));
    kill(pid, SIGSTOP);
    t0 = tl_now();
    st = dbp_slot_ping(p, s, &err);
    took = tl_now() - t0;
    kill(pid, SIGCONT);                    /* at once, whatever the checks say */
    is_int(st, DBP_TIMEOUT, "a ping to a stopped backend times out");
    between(took, 0.29, 1.3, "... within ping_timeout (0.3 s) plus one second");
    is_int(metric(p, DBP_M_PING_TIMEOUTS), 1, "... counted as a ping timeout");
    dbp_pool_release(p, s);
    is_int(counts(p).total, 0, "... and the connection discarded at its return");
    dbp_pool_free(p);
}

/* The same ping in two halves, as an event loop runs it: the send does not
 * wait; the steps answer DBP_AGAIN until ping_timeout, then DBP_TIMEOUT. */
static void test_stopped_ping_steps(void)
{
    dbp_pool *p = pool_with("ping_steps", g_dsn, "pool_size=1,max_overflow=0,ping_timeout=0.3");
    dbp_slot *s = NULL;
    dbp_error err;
    dbp_status st;
    double t0, sent, took;
    int pid, again = 0;

    if (dbp_pool_checkout(p, &s, &err) != DBP_OK)
        bail_out("checkout: %s", err.message);
    st = dbp_slot_ping_send(p, s, &err);
    while (st == DBP_OK && (st = dbp_slot_ping_step(p, s, &err)) == DBP_AGAIN) {
        tl_sleep(0.001);
        st = DBP_OK;                      /* sent, not answered yet: step again */
    }
    is_int(st, DBP_OK, "a ping in steps to a live backend: answered");
    pid = dbp_conn_backend_pid(dbp_slot_conn(s));
    kill(pid, SIGSTOP);
    t0 = tl_now();
    st = dbp_slot_ping_send(p, s, &err);
    sent = tl_now() - t0;
    while (st == DBP_OK && (st = dbp_slot_ping_step(p, s, &err)) == DBP_AGAIN && tl_now() < t0 + 5) {
        again++;
        tl_sleep(0.01);
        st = DBP_OK;
    }
    took = tl_now() - t0;
    kill(pid, SIGCONT);                    /* at once, whatever the checks say */
    ok(sent < 0.1, "a stopped backend: the send did not wait (%.3f s)", sent);
    ok(again > 1, "... the steps said DBP_AGAIN while it was due (%d)", again);
    is_int(st, DBP_TIMEOUT, "... then DBP_TIMEOUT");
    between(took, 0.29, 1.3, "... at ping_timeout (0.3 s)");
    like(err.message, "ping_timeout", "... the message names ping_timeout");
    is_int(metric(p, DBP_M_PING_TIMEOUTS), 1, "... counted as a ping timeout");
    dbp_pool_release(p, s);
    is_int(counts(p).total, 0, "... and the connection discarded at its return");
    dbp_pool_free(p);
}

static void test_stopped_preping(void)
{
    dbp_pool *p = pool_with("preping", g_dsn,
                            "pool_size=1,max_overflow=0,pool_pre_ping=1,pre_ping_bypass=0,"
                            "pool_timeout=1.5");
    dbp_slot *s = NULL;
    dbp_error err;
    int pid = idle_backend(p);
    double t0, took;
    dbp_status st;

    kill(pid, SIGSTOP);
    t0 = tl_now();
    st = dbp_pool_checkout(p, &s, &err);     /* ping_timeout 5: the checkout ends first */
    took = tl_now() - t0;
    kill(pid, SIGCONT);
    is_int(st, DBP_TIMEOUT, "pre-ping of a stopped backend: the checkout times out");
    between(took, 1.45, 2.5, "... within pool_timeout (1.5 s) plus one second");
    is_int(metric(p, DBP_M_PING_TIMEOUTS), 1, "... one ping timeout counted");
    is_int(metric(p, DBP_M_TIMEOUTS), 1, "... one checkout timeout counted");
    is_int(counts(p).total, 0, "... the stopped connection discarded, its slot free");
    if (dbp_pool_checkout(p, &s, &err) == DBP_OK) {
        ok(dbp_conn_backend_pid(dbp_slot_conn(s)) != pid, "the next checkout has a new backend");
        dbp_pool_release(p, s);
    } else {
        ok(0, "the next checkout has a new backend: %s", err.message);
    }
    dbp_pool_free(p);
}

/* An event loop's checkout (DBP_CHECKOUT_DEFER) steps its pre-ping: until
 * the slot is ready or fails, polling its socket at most 10 ms at a time
 * for up to seconds.  *replaced_after: when the ping phase ended (s no
 * longer pinging), seconds after t0; -1 if it never did. */
static dbp_status step_pending(dbp_pool *p, dbp_slot *s, double t0, double seconds,
                               double *replaced_after, unsigned *events)
{
    double end = tl_now() + seconds;
    dbp_error err;
    dbp_status st;

    *replaced_after = -1;
    for (;;) {
        bool want_write = false;
        unsigned ev = 0;
        st = dbp_pool_connect_step(p, s, &want_write, &ev, &err);
        *events |= ev;
        if (*replaced_after < 0 && (st != DBP_AGAIN || dbp_slot_ping_left(s) < 0))
            *replaced_after = tl_now() - t0;
        if (st != DBP_AGAIN || tl_now() > end)
            return st;
        if (dbp_slot_conn(s) != NULL) {
            struct pollfd pfd = {.fd = dbp_conn_socket(dbp_slot_conn(s)),
                                 .events = POLLIN | (want_write ? POLLOUT : 0)};
            (void)poll(&pfd, 1, 10);
        } else {
            tl_sleep(0.001);
        }
    }
}

static void test_deferred_preping(void)
{
    dbp_pool *p = pool_with("deferred_preping", g_dsn,
                            "pool_size=1,max_overflow=0,pool_pre_ping=1,pre_ping_bypass=0,"
                            "ping_timeout=0.3,pool_timeout=5");
    dbp_slot *s = NULL;
    dbp_error err;
    unsigned events = 0;
    int pid = idle_backend(p);
    double t0, took, ended;
    dbp_status st;

    /* A live server: the ping is sent, answered, and the same connection
     * checked out. */
    st = dbp_pool_checkout_mode(p, DBP_CHECKOUT_DEFER, 0, &s, &events, &err);
    is_int(st, DBP_PENDING, "an event loop's pre-ping is sent, not waited for: DBP_PENDING");
    ok(dbp_slot_ping_left(s) > 0 && dbp_slot_ping_left(s) <= 0.3, "... pinging, within ping_timeout");
    st = step_pending(p, s, tl_now(), 5, &ended, &events);
    is_int(st, DBP_OK, "... answered: checked out");
    is_int(dbp_conn_backend_pid(dbp_slot_conn(s)), pid, "... the same connection");
    is_int(metric(p, DBP_M_PREPING_FAILURES), 0, "... no pre-ping failure");
    dbp_pool_release(p, s);

    /* A stopped backend: the checkout returns at once; the ping times out
     * at ping_timeout and the step replaces the connection. */
    kill(pid, SIGSTOP);
    events = 0;
    t0 = tl_now();
    st = dbp_pool_checkout_mode(p, DBP_CHECKOUT_DEFER, 0, &s, &events, &err);
    took = tl_now() - t0;
    if (st == DBP_PENDING)
        st = step_pending(p, s, t0, 5, &ended, &events);
    kill(pid, SIGCONT);                   /* at once, whatever the checks say */
    ok(took < 0.1, "a stopped backend: the deferred checkout did not wait (%.3f s)", took);
    is_int(st, DBP_OK, "... the steps end checked out");
    between(ended, 0.29, 1.3, "... the ping ended at ping_timeout (0.3 s)");
    ok(st == DBP_OK && dbp_conn_backend_pid(dbp_slot_conn(s)) != pid, "... on a new backend");
    is_int(metric(p, DBP_M_PING_TIMEOUTS), 1, "... one ping timeout counted");
    is_int(metric(p, DBP_M_PREPING_FAILURES), 1, "... one pre-ping failure counted");
    ok((events & DBP_EV_INVALIDATE) && (events & DBP_EV_CONNECT), "... events: invalidate, connect");
    is_int(counts(p).total, 1, "... capacity exact: one connection");
    if (st == DBP_OK)
        dbp_pool_release(p, s);

    /* A ping that uses the whole checkout (ping_timeout beyond the 1 s
     * budget): no connect is tried after it, none counted as failed. */
    dbp_pool_free(p);
    p = pool_with("deferred_preping_budget", g_dsn,
                  "pool_size=1,max_overflow=0,pool_pre_ping=1,pre_ping_bypass=0,"
                  "ping_timeout=5,pool_timeout=0.5");
    pid = idle_backend(p);
    kill(pid, SIGSTOP);
    t0 = tl_now();
    st = dbp_pool_checkout_mode(p, DBP_CHECKOUT_DEFER, 0, &s, &events, &err);
    if (st == DBP_PENDING)
        st = step_pending(p, s, t0, 5, &ended, &events);
    took = tl_now() - t0;
    kill(pid, SIGCONT);
    is_int(st, DBP_TIMEOUT, "a pre-ping that used the checkout's budget: DBP_TIMEOUT");
    between(took, 0.95, 2.0, "... at the budget (1 s, pool_timeout 0.5 s)");
    is_int(metric(p, DBP_M_CONNECT_FAILURES), 0, "... no connect tried, none failed");
    is_int(metric(p, DBP_M_TIMEOUTS), 1, "... one checkout timeout counted");
    is_int(counts(p).total, 0, "... the stopped connection closed, its capacity given back");

    /* Given up while pinging: closed as a failed pre-ping, capacity back. */
    pid = idle_backend(p);
    kill(pid, SIGSTOP);
    st = dbp_pool_checkout_mode(p, DBP_CHECKOUT_DEFER, 0, &s, &events, &err);
    if (st == DBP_PENDING)
        dbp_pool_connect_abandon(p, s, "given up");
    kill(pid, SIGCONT);
    is_int(st, DBP_PENDING, "abandoned while pinging: it was pending");
    is_int(counts(p).total, 0, "... the connection closed, its capacity given back");
    is_int(metric(p, DBP_M_PREPING_FAILURES), 2, "... counted as a failed pre-ping (the 2nd here)");
    is_int(metric(p, DBP_M_CONNECT_FAILURES), 0, "... not as a failed connect");
    dbp_pool_free(p);
}

/* ---- min_idle off the caller's path ------------------------------------ */

/* Discards one connection at its return; true when the refill thread then
 * brought the pool back to want idle connections, the return itself having
 * opened none. */
static int refill_after_discard(dbp_pool *p, int want, double *release_took, int *by_caller)
{
    dbp_slot *s = NULL;
    dbp_error err;
    uint64_t before;
    double t0;

    if (dbp_pool_checkout(p, &s, &err) != DBP_OK)
        return 0;
    dbp_conn_mark_broken(dbp_slot_conn(s));
    before = metric(p, DBP_M_CONNECTS);
    t0 = tl_now();
    dbp_pool_release(p, s);
    *release_took = tl_now() - t0;
    *by_caller = (int)(metric(p, DBP_M_CONNECTS) - before);
    return wait_idle(p, want, 3.0) == want;
}

static void test_refill_thread(void)
{
    dbp_pool *p = pool_with("refill", g_dsn, "pool_size=3,max_overflow=0,min_idle=3");
    dbp_error err;
    double took;
    int by_caller, refilled;
    pid_t child;
    int status;

    if (dbp_pool_refill(p, &err) != DBP_OK)
        bail_out("pre-warming: %s", err.message);
    is_int(counts(p).checkedin, 3, "min_idle 3: pre-warmed");
    refilled = refill_after_discard(p, 3, &took, &by_caller);
    is_int(by_caller, 0, "a return that discards opens no connection itself");
    ok(refilled, "... the refill thread brings min_idle back");
    is_int(counts(p).checkedout, 0, "... nothing left checked out");

#ifdef __SANITIZE_THREAD__
    /* TSan refuses to start a thread in the child of a threaded process. */
    (void)child, (void)status;
    ok(1, "in a fork()ed child the refill thread starts anew # SKIP not under TSan");
#else
    fflush(stdout);
    if ((child = fork()) == 0) {             /* no thread here: it starts again */
        refilled = refill_after_discard(p, 3, &took, &by_caller);
        _exit(refilled && by_caller == 0 ? 0 : 1);
    }
    waitpid(child, &status, 0);
    ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
       "in a fork()ed child the refill thread starts anew (status %d)",
       WIFEXITED(status) ? WEXITSTATUS(status) : -1);
#endif
    refilled = refill_after_discard(p, 3, &took, &by_caller);
    ok(refilled && by_caller == 0, "... and the parent's still refills");
    dbp_pool_free(p);                        /* waits for a refill in flight */
}

int main(void)
{
    double t0 = tl_now();

    signal(SIGPIPE, SIG_IGN);
    g_dsn = tl_env_or_bail("DBPOOL_TEST_DSN");
    test_silent_server();
    test_stopped_ping();
    test_stopped_ping_steps();
    test_stopped_preping();
    test_deferred_preping();
    test_refill_thread();
    diag("test_deadlines ran in %.2f s", tl_now() - t0);
    return done_testing();
}

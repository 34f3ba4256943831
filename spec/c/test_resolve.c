/* test_resolve.c: csrc/resolve.c, host names looked up ahead of a connect
 * (no server needed).  "localhost" comes from /etc/hosts, so no name
 * server is asked; a name under .invalid (RFC 2606) never resolves. */
#include "resolve.h"
#include "testlib.h"

/* Asks for hosts until the answer is not PENDING or 60 s pass. */
static dbp_resolve_state settle(const char *hosts, dbp_error *err)
{
    double until = tl_now() + 60;
    dbp_resolve_state s;

    while ((s = dbp_resolve_hosts(hosts, err)) == DBP_RESOLVE_PENDING && tl_now() < until)
        tl_sleep(0.005);
    return s;
}

static void test_names_resolve_on_a_thread(void)
{
    dbp_error err;
    char host[512], addr[512], port[512];
    double t0 = tl_now();
    dbp_resolve_state first = dbp_resolve_hosts("localhost", &err);

    ok(tl_now() - t0 < 0.5, "asking for a new name returns at once (%.3f s)", tl_now() - t0);
    ok(first == DBP_RESOLVE_PENDING || first == DBP_RESOLVE_READY,
       "a new name is looked up in the background (state %d)", (int)first);
    is_int(settle("localhost", &err), DBP_RESOLVE_READY, "localhost is resolved");
    ok(dbp_resolve_expand("localhost", "5432", host, addr, port, sizeof host),
       "a resolved name expands");
    like(addr, "127.0.0.1", "localhost's addresses include 127.0.0.1: %s", addr);
    ok(strncmp(host, "localhost", 9) == 0, "host keeps the name for TLS and the passfile: %s",
       host);
    ok(strncmp(port, "5432", 4) == 0, "the port follows each address: %s", port);
}

static void test_lists_keep_their_order(void)
{
    dbp_error err;
    char host[512], addr[512], port[512];

    is_int(settle("/run/postgresql,127.0.0.2,localhost,::1", &err), DBP_RESOLVE_READY,
           "socket directories and numeric addresses need no lookup");
    ok(dbp_resolve_expand("/run/postgresql,127.0.0.2,localhost,::1", "1,2,3,4", host, addr,
                          port, sizeof host), "a mixed list expands");
    ok(strncmp(host, "/run/postgresql,127.0.0.2,localhost", 35) == 0,
       "hosts in the DSN's order: %s", host);
    ok(strncmp(addr, ",,", 2) == 0, "no hostaddr for a socket or an address: %s", addr);
    ok(strncmp(port, "1,2,3", 5) == 0, "each host keeps its own port: %s", port);
    like(port, ",4", "the last host keeps its port: %s", port);
    ok(!dbp_resolve_expand("127.0.0.2,/tmp", NULL, host, addr, port, sizeof host),
       "a list without a name is left to libpq as it is");
    ok(!dbp_resolve_expand("localhost", NULL, host, addr, port, 8),
       "a list that does not fit is left to libpq");
}

static void test_unknown_names_fail_with_the_reason(void)
{
    dbp_error err;
    char host[512], addr[512], port[512];

    dbp_error_clear(&err);
    is_int(settle("no-such-host.invalid", &err), DBP_RESOLVE_FAILED, "an unknown name fails");
    like(err.message, "no-such-host.invalid", "the error names the host: %s", err.message);
    like(err.message, "could not translate host name", "as libpq says it: %s", err.message);
    is_int(err.status, DBP_CONNECT, "kind connect");
    is_int(dbp_resolve_hosts("no-such-host.invalid,localhost", &err), DBP_RESOLVE_READY,
           "a list with another host left is ready: libpq skips a name it cannot resolve");
    ok(dbp_resolve_expand("no-such-host.invalid,localhost", "1,2", host, addr, port, sizeof host),
       "... and it expands");
    is_str(host, "localhost", "... without the name that does not resolve");
    is_str(port, "2", "... keeping the other host's port");
    ok(!dbp_resolve_expand("no-such-host.invalid", NULL, host, addr, port, sizeof host),
       "a list with no host left expands to nothing");
    is_int(dbp_resolve_hosts("no-such-host.invalid", &err), DBP_RESOLVE_FAILED,
           "asked again at once, the failure stands (no lookup storm)");
}

static void test_flush_forgets(void)
{
    dbp_error err;
    char host[512], addr[512], port[512];

    dbp_resolve_flush();
    ok(!dbp_resolve_expand("localhost", NULL, host, addr, port, sizeof host),
       "after a flush nothing is known");
    is_int(settle("localhost", &err), DBP_RESOLVE_READY, "and the next ask looks up again");
}

int main(void)
{
    test_names_resolve_on_a_thread();
    test_lists_keep_their_order();
    test_unknown_names_fail_with_the_reason();
    test_flush_forgets();
    return done_testing();
}

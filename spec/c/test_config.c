/* test_config.c: csrc/config.c from C, no server needed.
 *
 * Defaults (DESIGN.md's option table), "did you mean" suggestions, setter
 * validation and its messages, cross-option checks, diff, deep copy and
 * capacity.  Redaction is test_redact.c, policies test_policy.c. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "testlib.h"

static const dbp_option *opt(const char *name)
{
    const dbp_option *o = dbp_option_find(name);

    if (o == NULL)
        bail_out("option '%s' is not in dbp_options", name);
    return o;
}

/* ---- defaults ---------------------------------------------------------- */

static void test_defaults(void)
{
    dbp_config c;

    dbp_config_init(&c);
    ok(c.name == NULL && c.dsn == NULL, "defaults: name and dsn are unset (required)");
    is_int(c.pool_size, 5, "defaults: pool_size = 5");
    is_int(c.max_overflow, 10, "defaults: max_overflow = 10");
    ok(c.pool_timeout == 30, "defaults: pool_timeout = 30");
    ok(c.pool_recycle == -1, "defaults: pool_recycle = -1 (never)");
    ok(c.recycle_jitter == 0, "defaults: recycle_jitter = 0");
    ok(!c.pool_pre_ping, "defaults: pool_pre_ping = false");
    ok(c.pre_ping_bypass == 0.5, "defaults: pre_ping_bypass = 0.5");
    is_int(c.reset_on_return, DBP_RESET_ROLLBACK, "defaults: reset_on_return = \"rollback\"");
    ok(!c.use_lifo, "defaults: use_lifo = false");
    is_int(c.min_idle, 0, "defaults: min_idle = 0");
    is_int(c.max_queries, 0, "defaults: max_queries = 0");
    ok(c.connect_timeout == 10, "defaults: connect_timeout = 10");
    ok(c.application_name == NULL, "defaults: application_name unset");
    is_int(c.statement_timeout, -1, "defaults: statement_timeout unset (-1)");
    is_int(c.lock_timeout, -1, "defaults: lock_timeout unset (-1)");
    is_int(c.idle_in_transaction_session_timeout, -1,
           "defaults: idle_in_transaction_session_timeout unset (-1)");
    is_int(c.role, DBP_ROLE_ANY, "defaults: role = \"any\"");
    ok(!c.pgbouncer, "defaults: pgbouncer = false");
    ok(c.replicas == NULL && c.n_replicas == 0, "defaults: replicas = {}");
    is_int(c.retry_attempts, 3, "defaults: retry.attempts = 3");
    ok(c.retry_base == 0.05, "defaults: retry.base = 0.05");
    ok(c.retry_max == 2, "defaults: retry.max = 2");
    is_int(c.breaker_failures, 5, "defaults: breaker.failures = 5");
    ok(c.breaker_cooldown == 5, "defaults: breaker.cooldown = 5");
    ok(c.leak_threshold == 0, "defaults: leak_threshold = 0 (off)");
    ok(!c.echo && !c.echo_pool, "defaults: echo and echo_pool = false");
    dbp_config_free(&c);

    /* Every option of DESIGN.md's table is known by its stable name. */
    static const char *const names[] = {
        "name", "dsn", "pool_size", "max_overflow", "pool_timeout", "pool_recycle",
        "recycle_jitter", "pool_pre_ping", "pre_ping_bypass", "reset_on_return", "use_lifo",
        "min_idle", "max_queries", "connect_timeout", "application_name",
        "statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout", "role",
        "pgbouncer", "replicas", "retry", "retry.attempts", "retry.base", "retry.max",
        "breaker", "breaker.failures", "breaker.cooldown", "leak_threshold", "echo",
        "echo_pool", "policy",
    };
    int missing = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (dbp_option_find(names[i]) == NULL) {
            diag("unknown option: %s", names[i]);
            missing++;
        }
    }
    is_int(missing, 0, "every option of DESIGN.md is in dbp_options");
    ok(dbp_option_find("pool_sise") == NULL, "dbp_option_find: unknown name gives NULL");
}

/* ---- suggestions ------------------------------------------------------- */

static void test_suggest(void)
{
    is_str(dbp_option_suggest("pool_sise", NULL), "pool_size", "suggest: pool_sise -> pool_size");
    is_str(dbp_option_suggest("pool_szie", NULL), "pool_size",
           "suggest: pool_szie (swap) -> pool_size");
    is_str(dbp_option_suggest("max_overflw", NULL), "max_overflow",
           "suggest: max_overflw -> max_overflow");
    is_str(dbp_option_suggest("xyzzy_frobnicate", NULL), NULL, "suggest: nonsense -> NULL");
    is_str(dbp_option_suggest("q", NULL), NULL, "suggest: a one-letter name -> NULL");
    is_str(dbp_option_suggest("atempts", "retry."), "attempts",
           "suggest: atempts under retry. -> attempts");
    is_str(dbp_option_suggest("cooldwn", "breaker."), "cooldown",
           "suggest: cooldwn under breaker. -> cooldown");
    is_str(dbp_option_suggest("atempts", NULL), NULL,
           "suggest: sub-option names are not offered at top level");
}

/* ---- setters ----------------------------------------------------------- */

/* Rejection of one number: DBP_INVALID, field untouched, message naming the
 * option, what it must be and the value. */
static void reject_number(const char *name, double v, const char *shown)
{
    dbp_config c, before;
    dbp_error err;
    const dbp_option *o = opt(name);

    dbp_config_init(&c);
    before = c;
    dbp_error_clear(&err);
    is_int(dbp_config_set_number(&c, o, v, &err), DBP_INVALID, "%s = %s is rejected", name,
           shown);
    is_int(err.status, DBP_INVALID, "%s = %s: err.status is DBP_INVALID", name, shown);
    ok(memcmp(&c, &before, sizeof c) == 0, "%s = %s: the config is unchanged", name, shown);
    like(err.message, name, "%s = %s: message names the option", name, shown);
    like(err.message, o->must_be, "%s = %s: message says what it must be", name, shown);
    like(err.message, shown, "%s = %s: message shows the value", name, shown);
    dbp_config_free(&c);
}

static void accept_number(const char *name, double v, const char *shown)
{
    dbp_config c;
    dbp_error err;
    const dbp_option *o = opt(name);

    dbp_config_init(&c);
    dbp_error_clear(&err);
    is_int(dbp_config_set_number(&c, o, v, &err), DBP_OK, "%s = %s is accepted", name, shown);
    if (o->type == DBP_OPT_INT)
        is_int(*(int *)((char *)&c + o->offset), (int)v, "%s = %s is stored", name, shown);
    else
        ok(*(double *)((char *)&c + o->offset) == v, "%s = %s is stored", name, shown);
    dbp_config_free(&c);
}

static void test_set_number(void)
{
    dbp_config c;
    dbp_error err;

    reject_number("pool_size", 2.5, "2.5");
    reject_number("pool_size", -1, "-1");
    accept_number("pool_size", 0, "0");
    accept_number("pool_size", 20, "20");
    reject_number("max_overflow", -2, "-2");
    accept_number("max_overflow", -1, "-1");
    accept_number("max_overflow", 0, "0");
    reject_number("max_overflow", 1.5, "1.5");
    reject_number("pool_timeout", NAN, "nan");
    reject_number("pool_timeout", INFINITY, "inf");
    reject_number("pool_timeout", -0.25, "-0.25");
    accept_number("pool_timeout", 0.2, "0.2");
    accept_number("pool_recycle", -1, "-1");
    accept_number("pool_recycle", 3600, "3600");
    reject_number("pool_recycle", -0.5, "-0.5");
    reject_number("recycle_jitter", 0.75, "0.75");
    accept_number("recycle_jitter", 0.025, "0.025");
    reject_number("retry.attempts", 0, "0");
    accept_number("retry.attempts", 5, "5");
    reject_number("statement_timeout", -1, "-1");

    /* The message in full, once. */
    dbp_config_init(&c);
    dbp_error_clear(&err);
    if (dbp_config_set_number(&c, opt("pool_size"), 2.5, &err) != DBP_INVALID)
        diag("pool_size = 2.5 was accepted");
    is_str(err.message, "option 'pool_size' must be an integer >= 0 (0 = no limit), or \"auto\", got 2.5",
           "set_number: the whole message for pool_size = 2.5");

    /* A number for a non-numeric option is a type error. */
    is_int(dbp_config_set_number(&c, opt("use_lifo"), 1, &err), DBP_INVALID,
           "set_number on a boolean option is rejected");
    like(err.message, "use_lifo", "... and the message names it");
    dbp_config_free(&c);
}

static void test_set_string_bool(void)
{
    dbp_config c;
    dbp_error err;

    dbp_config_init(&c);
    dbp_error_clear(&err);

    is_int(dbp_config_set_string(&c, opt("reset_on_return"), "rollbak", &err), DBP_INVALID,
           "reset_on_return = \"rollbak\" is rejected");
    like(err.message, "reset_on_return", "... message names the option");
    like(err.message, "\"rollback\", \"commit\" or false", "... says what it must be");
    like(err.message, "rollbak", "... shows the value");
    is_int(c.reset_on_return, DBP_RESET_ROLLBACK, "... and leaves the default");
    is_int(dbp_config_set_string(&c, opt("reset_on_return"), "commit", &err), DBP_OK,
           "reset_on_return = \"commit\" is accepted");
    is_int(c.reset_on_return, DBP_RESET_COMMIT, "... and stored");
    is_int(dbp_config_set_bool(&c, opt("reset_on_return"), false, &err), DBP_OK,
           "reset_on_return = false is accepted");
    is_int(c.reset_on_return, DBP_RESET_NONE, "... and stored as DBP_RESET_NONE");
    is_int(dbp_config_set_bool(&c, opt("reset_on_return"), true, &err), DBP_INVALID,
           "reset_on_return = true is rejected");
    is_int(dbp_config_set_string(&c, opt("reset_on_return"), "rollback", &err), DBP_OK,
           "reset_on_return = \"rollback\" is accepted");
    is_int(c.reset_on_return, DBP_RESET_ROLLBACK, "... and stored");

    is_int(dbp_config_set_string(&c, opt("role"), "replica", &err), DBP_INVALID,
           "role = \"replica\" is rejected");
    like(err.message, "role", "... message names the option");
    like(err.message, "\"any\" or \"primary\"", "... says what it must be");
    like(err.message, "replica", "... shows the value");
    is_int(c.role, DBP_ROLE_ANY, "... and leaves the default");
    is_int(dbp_config_set_string(&c, opt("role"), "postgresql://u:S3cretPw@h/db", &err),
           DBP_INVALID, "role = a DSN pasted into the wrong option is rejected");
    unlike(err.message, "S3cretPw", "... without showing it: %s", err.message);
    like(err.message, "\"any\" or \"primary\"", "... still saying what it must be");
    is_int(dbp_config_set_string(&c, opt("reset_on_return"), "password=S3cretPw", &err),
           DBP_INVALID, "reset_on_return = a conninfo string is rejected");
    unlike(err.message, "S3cretPw", "... without showing it: %s", err.message);
    is_int(dbp_config_set_string(&c, opt("role"), "primary", &err), DBP_OK,
           "role = \"primary\" is accepted");
    is_int(c.role, DBP_ROLE_PRIMARY, "... and stored");

    is_int(dbp_config_set_string(&c, opt("name"), "", &err), DBP_INVALID,
           "name = \"\" is rejected");
    is_int(dbp_config_set_string(&c, opt("application_name"), "", &err), DBP_OK,
           "application_name = \"\" is accepted");
    is_int(dbp_config_set_string(&c, opt("name"), "KG", &err), DBP_OK, "name = \"KG\"");
    is_int(dbp_config_set_string(&c, opt("name"), "US", &err), DBP_OK,
           "name can be set twice (no leak: see ASan)");
    is_str(c.name, "US", "... and keeps the last value");
    is_int(dbp_config_set_string(&c, opt("pool_size"), "5", &err), DBP_INVALID,
           "a string for pool_size is rejected");
    is_int(dbp_config_set_bool(&c, opt("use_lifo"), true, &err), DBP_OK, "use_lifo = true");
    ok(c.use_lifo, "... and stored");
    is_int(dbp_config_set_bool(&c, opt("pool_size"), true, &err), DBP_INVALID,
           "a boolean for pool_size is rejected");
    is_int(dbp_config_add_replica(&c, "", &err), DBP_INVALID, "an empty replica DSN is rejected");
    is_int(dbp_config_add_replica(&c, "postgresql://app:pw@r1/db", &err), DBP_OK,
           "a replica DSN is added");
    is_int(c.n_replicas, 1, "... n_replicas = 1");
    dbp_config_free(&c);
}

/* Engine names: a character set the registry, metrics labels and logs can
 * carry; replicas get a name outside it. */
static void test_names(void)
{
    static const char *const bad[] = {"KG/replica1", "K\xffG", "a b", "K\"G", "K\\G", "K\nG",
                                      "\xd0\x9a\xd0\x93"};
    char long_name[80];
    dbp_config c;
    dbp_error err;

    dbp_config_init(&c);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        is_int(dbp_config_set_string(&c, opt("name"), bad[i], &err), DBP_INVALID,
               "name #%zu outside the character set is rejected", i);
        like(err.message, "option 'name' must be 1 to 63 ASCII letters", "... naming the set");
        ok(c.name == NULL, "... and nothing is stored");
    }
    like(err.message, "\"\\xd0\\x9a\\xd0\\x93\" (0xd0 at byte 1)",
         "a byte outside ASCII is shown as \\xHH, never raw");
    memset(long_name, 'x', 64);
    long_name[64] = '\0';
    is_int(dbp_config_set_string(&c, opt("name"), long_name, &err), DBP_INVALID,
           "a 64-byte name is rejected");
    like(err.message, "(64 bytes)", "... saying how long it was");
    long_name[63] = '\0';
    is_int(dbp_config_set_string(&c, opt("name"), long_name, &err), DBP_OK,
           "a 63-byte name is accepted");
    is_int(dbp_config_set_string(&c, opt("name"), "shop:KG-2.a_b", &err), DBP_OK,
           "letters, digits, ':', '-', '.', '_' are accepted");
    is_int(dbp_config_name_replica(&c, 2, &err), DBP_OK, "a replica name is given");
    is_str(c.name, "shop:KG-2.a_b/replica2", "... \"<name>/replica<i>\"");

    long_name[63] = 'x';
    is_int(dbp_config_set_string(&c, opt("application_name"), long_name, &err), DBP_INVALID,
           "a 64-byte application_name is rejected");
    like(err.message, "at most 63 bytes (what the server keeps: NAMEDATALEN - 1), got 64 bytes",
         "... naming the limit");
    long_name[63] = '\0';
    is_int(dbp_config_set_string(&c, opt("application_name"), long_name, &err), DBP_OK,
           "a 63-byte application_name is accepted");
    dbp_config_free(&c);
}

/* ---- cross-option checks ------------------------------------------------ */

static void test_finish(void)
{
    dbp_config c;
    dbp_error err;

    dbp_config_init(&c);
    dbp_error_clear(&err);
    is_int(dbp_config_finish(&c, &err), DBP_INVALID, "finish: name is required");
    like(err.message, "'name'", "... message names 'name'");
    if (dbp_config_set_string(&c, opt("name"), "KG", &err) != DBP_OK)
        diag("setting name failed: %s", err.message);
    is_int(dbp_config_finish(&c, &err), DBP_INVALID, "finish: dsn is required");
    like(err.message, "'dsn'", "... message names 'dsn'");
    if (dbp_config_set_string(&c, opt("dsn"), "postgresql://app@h/db", &err) != DBP_OK)
        diag("setting dsn failed: %s", err.message);
    is_int(dbp_config_finish(&c, &err), DBP_OK, "finish: defaults plus name and dsn pass");

    c.min_idle = 6;
    is_int(dbp_config_finish(&c, &err), DBP_INVALID, "finish: min_idle 6 > pool_size 5 fails");
    like(err.message, "min_idle", "... message names min_idle");
    like(err.message, "6", "... and shows the value");
    c.min_idle = 5;
    is_int(dbp_config_finish(&c, &err), DBP_OK, "finish: min_idle = pool_size passes");
    c.pool_size = 0;
    c.min_idle = 50;
    is_int(dbp_config_finish(&c, &err), DBP_OK, "finish: any min_idle with pool_size 0 (no limit)");
    c.min_idle = 0;
    c.retry_base = 3;
    c.retry_max = 2;
    is_int(dbp_config_finish(&c, &err), DBP_INVALID, "finish: retry.max < retry.base fails");
    like(err.message, "retry.max", "... message names retry.max");
    dbp_config_free(&c);
}

/* ---- diff and copy ------------------------------------------------------ */

static void base_config(dbp_config *c)
{
    dbp_error err;

    dbp_config_init(c);
    if (dbp_config_set_string(c, opt("name"), "KG", &err) != DBP_OK ||
        dbp_config_set_string(c, opt("dsn"), "postgresql://app:pw@h/db", &err) != DBP_OK ||
        dbp_config_set_string(c, opt("application_name"), "shop", &err) != DBP_OK ||
        dbp_config_add_replica(c, "postgresql://app:pw@r1/db", &err) != DBP_OK ||
        dbp_config_add_replica(c, "postgresql://app:pw@r2/db", &err) != DBP_OK)
        bail_out("building a config failed: %s", err.message);
}

static void test_diff(void)
{
    dbp_config a, b;
    dbp_error err;
    char out[256], small[8];

    base_config(&a);
    base_config(&b);
    strcpy(out, "junk");
    is_int(dbp_config_diff(&a, &b, out, sizeof out), 0, "diff: equal configs differ in nothing");
    is_str(out, "", "... and the list is empty");

    b.pool_size = 7;
    b.use_lifo = true;
    b.retry_attempts = 9;
    if (dbp_config_set_string(&b, opt("dsn"), "postgresql://app:pw@other/db", &err) != DBP_OK)
        diag("setting dsn failed");
    is_int(dbp_config_diff(&a, &b, out, sizeof out), 4, "diff: four options differ");
    is_str(out, "dsn, pool_size, use_lifo, retry.attempts",
           "diff: lists exactly the differing keys, in table order");
    is_int(dbp_config_diff(&b, &a, out, sizeof out), 4, "diff is symmetric in count");
    is_int(dbp_config_diff(&a, &b, small, sizeof small), 4,
           "diff: a short buffer still counts every difference");
    ok(memchr(small, '\0', sizeof small) != NULL, "... and stays terminated");
    dbp_config_free(&b);

    base_config(&b);
    free(b.replicas[1]);
    b.replicas[1] = strdup("postgresql://app:pw@r3/db");
    is_int(dbp_config_diff(&a, &b, out, sizeof out), 1, "diff: a different replica");
    is_str(out, "replicas", "... is reported as replicas");
    dbp_config_free(&b);

    base_config(&b);
    free(b.application_name);
    b.application_name = NULL;
    b.pool_timeout = 0.2;
    is_int(dbp_config_diff(&a, &b, out, sizeof out), 2, "diff: unset vs set string, and a number");
    is_str(out, "pool_timeout, application_name", "... both named");
    dbp_config_free(&b);

    /* connect_timeout given as 10 is not the default 10: unset, the DSN's
     * or PGCONNECT_TIMEOUT would apply (conninfo.h). */
    base_config(&b);
    ok(!b.connect_timeout_set, "connect_timeout: not given, not marked");
    if (dbp_config_set_number(&b, opt("connect_timeout"), 10, &err) != DBP_OK)
        diag("setting connect_timeout failed");
    ok(b.connect_timeout_set, "connect_timeout: given, marked");
    is_int(dbp_config_diff(&a, &b, out, sizeof out), 1, "diff: connect_timeout given vs not");
    is_str(out, "connect_timeout", "... is reported as connect_timeout");
    dbp_config_free(&b);
    dbp_config_free(&a);
}

static void test_copy(void)
{
    dbp_config src, dst;
    char out[256];

    base_config(&src);
    src.pool_size = 11;
    src.pool_recycle = 3600;
    is_int(dbp_config_copy(&dst, &src), DBP_OK, "copy succeeds");
    is_int(dbp_config_diff(&src, &dst, out, sizeof out), 0, "copy equals the original");
    ok(dst.name != src.name && dst.dsn != src.dsn && dst.application_name != src.application_name,
       "copy: strings are new allocations");
    ok(dst.replicas != src.replicas, "copy: the replica array is a new allocation");
    ok(dst.n_replicas == 2 && dst.replicas[0] != src.replicas[0] &&
           dst.replicas[1] != src.replicas[1],
       "copy: each replica string is a new allocation");
    dbp_config_free(&src);   /* dst must not depend on src any more (ASan) */
    is_str(dst.name, "KG", "copy survives freeing the source: name");
    is_str(dst.dsn, "postgresql://app:pw@h/db", "... dsn");
    is_str(dst.application_name, "shop", "... application_name");
    is_str(dst.n_replicas == 2 ? dst.replicas[1] : NULL, "postgresql://app:pw@r2/db",
           "... replicas");
    is_int(dst.pool_size, 11, "... numbers");
    dbp_config_free(&dst);

    dbp_config_init(&src);   /* unset strings, no replicas */
    is_int(dbp_config_copy(&dst, &src), DBP_OK, "copy of a config with nothing set");
    ok(dst.name == NULL && dst.replicas == NULL && dst.n_replicas == 0, "... stays empty");
    dbp_config_free(&dst);
    dbp_config_free(&src);
}

/* ---- capacity ---------------------------------------------------------- */

static void test_capacity(void)
{
    dbp_config c;

    dbp_config_init(&c);
    ok(dbp_config_capacity(&c) == 15, "capacity: defaults 5 + 10");
    c.max_overflow = 0;
    ok(dbp_config_capacity(&c) == 5, "capacity: max_overflow 0 is pool_size");
    c.max_overflow = -1;
    ok(isinf(dbp_config_capacity(&c)) && dbp_config_capacity(&c) > 0,
       "capacity: max_overflow -1 is unbounded (HUGE_VAL)");
    c.max_overflow = 3;
    c.pool_size = 0;
    ok(isinf(dbp_config_capacity(&c)), "capacity: pool_size 0 is unbounded");
    c.pool_size = INT_MAX;
    c.max_overflow = INT_MAX;
    ok(dbp_config_capacity(&c) == 2.0 * INT_MAX, "capacity: INT_MAX + INT_MAX does not overflow");
    dbp_config_free(&c);
}

int main(void)
{
    test_defaults();
    test_suggest();
    test_set_number();
    test_set_string_bool();
    test_names();
    test_finish();
    test_diff();
    test_copy();
    test_capacity();
    return done_testing();
}

/* lua_pool.c: dbpool.Pool, a Lua handle on a registry pool.  Boxes hold only
 * a pointer: pools belong to the process-wide registry and outlive every
 * Lua state, so a box needs no __gc. */
#include <stdio.h>
#include <string.h>

#include "lua_conn.h"
#include "lua_error.h"
#include "lua_log.h"
#include "lua_pool.h"
#include "lua_util.h"
#include "refill.h"
#include "shstats.h"

typedef struct pool_box {
    const char *tag;    /* dbp_pool_tag: see dbp_lua_checkself */
    dbp_pool *pool;
} pool_box;

dbp_pool *dbp_lua_test_pool(lua_State *L, int idx)
{
    pool_box *box = luaL_testudata(L, idx, DBP_POOL_MT);
    return box ? box->pool : NULL;
}

/* For Pool methods only: they carry the metatables as upvalues. */
static dbp_pool *check_pool(lua_State *L, int idx)
{
    return ((pool_box *)dbp_lua_checkself(L, idx, dbp_pool_tag, sizeof(pool_box), DBP_POOL_MT))->pool;
}

dbp_pool *dbp_lua_check_pool(lua_State *L, int idx)
{
    return check_pool(L, idx);
}

void dbp_lua_push_pool(lua_State *L, dbp_pool *p)
{
    pool_box *box = dbp_compat_newuserdata(L, sizeof *box);
    box->tag = dbp_pool_tag;
    box->pool = p;
    luaL_setmetatable(L, DBP_POOL_MT);
}

/* ===== Checkout ======================================================== */

static int checkout(lua_State *L, dbp_checkout_mode mode)
{
    dbp_pool *p = check_pool(L, 1);
    int64_t since = dbp_sec_to_ns(luaL_optnumber(L, 2, 0));
    dbp_slot *s;
    dbp_error err;
    unsigned events = 0;
    dbp_status st = dbp_pool_checkout_mode(p, mode, since, &s, &events, &err);

    return dbp_lua_checked_out(L, p, st, s, events, &err);
}

/* pool:connect() -> Conn | nil, msg, err: waits up to pool_timeout. */
static int pool_connect(lua_State *L)
{
    return checkout(L, DBP_CHECKOUT_WAIT);
}

/* pool:try_connect([since[, async]]) -> Conn | nil, msg, err: never waits for a
 * slot; err.kind "again" when it would have to.  since (core.now()
 * seconds): when the caller began waiting by itself, for the wait
 * histogram.  async: never connects either; when a connection must be
 * opened, returns conn, "connecting", to be driven with conn:connect_step(). */
static int pool_try_connect(lua_State *L)
{
    return checkout(L, lua_toboolean(L, 3) ? DBP_CHECKOUT_DEFER : DBP_CHECKOUT_TRY);
}

/* pool:query(sql, ...) -> rows | nil, msg, err: checkout (waiting up to
 * pool_timeout), one statement, return; see dbp_lua_pool_query. */
static int pool_query(lua_State *L)
{
    return dbp_lua_pool_query(L, check_pool(L, 1), false);
}

/* pool:query_params(sql, params) -> rows | nil, msg, err: pool:query with
 * the parameters in one array (conn:query_params). */
static int pool_query_params(lua_State *L)
{
    return dbp_lua_pool_query(L, check_pool(L, 1), true);
}

/* ===== Engine methods in C ============================================ */

/* Outside nginx, init.lua makes these engine:connect and engine:query
 * themselves: the app's call reaches C in one step, the checkout site is
 * the app's frame with none of ours to skip, and an argument error names
 * the app's line (luaL_error's level 1 is then the app).  A Lua wrapper
 * costs a call frame per checkout (bench/results/comparison.md). */

/* Replaces the Engine table at index 1 by its Pool handle. */
static void engine_to_pool(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "pool");
    lua_replace(L, 1);
}

/* core.engine_connect(engine) -> Conn | nil, msg, err: pool:connect(). */
static int engine_connect(lua_State *L)
{
    lua_settop(L, 1);                   /* engine:connect takes no arguments */
    engine_to_pool(L);
    return checkout(L, DBP_CHECKOUT_WAIT);
}

/* core.engine_query(engine, sql, ...) -> rows | nil, msg, err: pool:query. */
static int engine_query(lua_State *L)
{
    engine_to_pool(L);
    return dbp_lua_pool_query(L, check_pool(L, 1), false);
}

/* core.engine_query_params(engine, sql, params) -> rows | nil, msg, err:
 * pool:query_params. */
static int engine_query_params(lua_State *L)
{
    engine_to_pool(L);
    return dbp_lua_pool_query(L, check_pool(L, 1), true);
}

/* core.now() -> monotonic seconds, the clock of every deadline in dbpool. */
static int core_now(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)dbp_now_ns() / 1e9);
    return 1;
}

/* core.hist_bounds() -> the histogram buckets' upper bounds in seconds. */
static int core_hist_bounds(lua_State *L)
{
    lua_createtable(L, DBP_HIST_BOUNDS, 0);
    for (int i = 0; i < DBP_HIST_BOUNDS; i++) {
        lua_pushnumber(L, dbp_hist_bound(i));
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int core_refill_by_host(lua_State *L);
static int core_arena_open(lua_State *L);

static const luaL_Reg core_functions[] = {
    {"engine_connect", engine_connect},
    {"engine_query", engine_query},
    {"engine_query_params", engine_query_params},
    {"now", core_now},
    {"hist_bounds", core_hist_bounds},
    {"refill_by_host", core_refill_by_host},
    {"arena_open", core_arena_open},
    {NULL, NULL},
};

/* ===== SQLAlchemy's counters =========================================== */

static int pool_count(lua_State *L, size_t offset)
{
    dbp_pool_counts c;

    dbp_pool_counts_get(check_pool(L, 1), &c);
    lua_pushinteger(L, *(int *)((char *)&c + offset));
    return 1;
}

static int pool_size(lua_State *L) { return pool_count(L, offsetof(dbp_pool_counts, size)); }
static int pool_checkedin(lua_State *L) { return pool_count(L, offsetof(dbp_pool_counts, checkedin)); }
static int pool_checkedout(lua_State *L) { return pool_count(L, offsetof(dbp_pool_counts, checkedout)); }
static int pool_overflow(lua_State *L) { return pool_count(L, offsetof(dbp_pool_counts, overflow)); }

static int pool_status(lua_State *L)
{
    dbp_pool_counts c;
    char buf[256];

    dbp_pool_counts_get(check_pool(L, 1), &c);
    dbp_pool_status_text(&c, buf, sizeof buf);
    lua_pushstring(L, buf);
    return 1;
}

static int pool_class(lua_State *L)
{
    check_pool(L, 1);
    lua_pushliteral(L, "QueuePool");
    return 1;
}

/* pool:note_wait(): an event loop's checkout found no slot and waits. */
static int pool_note_wait(lua_State *L)
{
    dbp_pool_note_wait(check_pool(L, 1));
    return 0;
}

/* pool:timed_out([connecting]) -> nil, msg, err: an event loop's checkout
 * gives up after pool_timeout; counted, with QueuePool's sentence and the
 * live state, or, connecting, the sentence of a connect cut short. */
static int pool_timed_out(lua_State *L)
{
    dbp_error err;
    dbp_pool *p = check_pool(L, 1);
    dbp_status st = lua_toboolean(L, 2) ? dbp_pool_connect_timed_out(p, &err)
                                        : dbp_pool_timed_out(p, &err);

    if (st != DBP_OK)
        return dbp_lua_fail(L, dbp_pool_config(p)->name, &err);
    return 0;
}

/* pool:timing() -> pool_timeout, yield_after, connect_timeout, budget: what
 * an event loop's waits need (seconds; connect_timeout as it applies: the
 * engine's, the DSN's, PGCONNECT_TIMEOUT's or the default; budget: what a
 * checkout's connects may take in all, dbp_pool_checkout_budget). */
static int pool_timing(lua_State *L)
{
    dbp_pool *p = check_pool(L, 1);
    const dbp_config *cfg = dbp_pool_config(p);

    lua_pushnumber(L, cfg->pool_timeout);
    lua_pushnumber(L, cfg->yield_after);
    lua_pushnumber(L, dbp_conninfo_connect_timeout(dbp_pool_conninfo(p)));
    lua_pushnumber(L, dbp_pool_checkout_budget(p));
    return 4;
}

/* pool:refill_start() -> Conn, "connecting" | nil | nil, msg, err: an event
 * loop's timer opens one connection min_idle wants (dbp_pool_refill_start):
 * drive it with conn:connect_step(), then conn:close() idles it.  Nothing
 * (nil) when none is wanted. */
static int pool_refill_start(lua_State *L)
{
    dbp_pool *p = check_pool(L, 1);
    dbp_slot *s = NULL;
    dbp_error err;
    dbp_status st = dbp_pool_refill_start(p, &s, &err);

    if (st == DBP_OK)
        return 0;
    return dbp_lua_checked_out(L, p, st, s, 0, &err);
}

/* pool:resolve_ahead() -> true | false | nil, msg, err: whether a connect
 * can start without looking up a host name on this thread (true), or a
 * lookup runs in the background now (false: ask again shortly), or the
 * DSN's host name does not resolve (kind "connect").  For hosts whose
 * thread must not block (the nginx path); see csrc/resolve.h. */
static int pool_resolve_ahead(lua_State *L)
{
    dbp_pool *p = check_pool(L, 1);
    dbp_error err;
    dbp_resolve_state st = dbp_conn_resolve_ahead(dbp_pool_conninfo(p), &err);

    if (st == DBP_RESOLVE_FAILED)
        return dbp_lua_fail(L, dbp_pool_config(p)->name, &err);
    lua_pushboolean(L, st == DBP_RESOLVE_READY);
    return 1;
}

/* pool:refill_due() -> boolean: min_idle wants connections a return lost. */
static int pool_refill_due(lua_State *L)
{
    lua_pushboolean(L, dbp_pool_refill_due(check_pool(L, 1)));
    return 1;
}

/* core.refill_by_host(): this process refills min_idle through its host's
 * timers (nginx) instead of a thread of its own. */
static int core_refill_by_host(lua_State *L)
{
    (void)L;
    dbp_refill_by_host();
    return 0;
}

/* core.arena_open() -> true | false: maps a fresh instance arena (arena.h)
 * for the workers nginx's master forks next; call it in init_by_lua only
 * (the master, before fork).  false when the mapping failed: engines
 * declared in workers then keep tables of their own. */
static int core_arena_open(lua_State *L)
{
    lua_pushboolean(L, dbp_arena_open_instance() == DBP_OK);
    return 1;
}

/* pool:breaker() -> "closed" | "open" | "half-open", without a stats table. */
static int pool_breaker(lua_State *L)
{
    lua_pushstring(L, dbp_pool_breaker_state(check_pool(L, 1)));
    return 1;
}

/* pool:note_read_fallback(): engine:read found no healthy replica. */
static int pool_note_read_fallback(lua_State *L)
{
    dbp_metrics_inc(dbp_pool_metrics(check_pool(L, 1)), DBP_M_READ_FALLBACKS);
    return 0;
}

static int pool_dispose(lua_State *L)
{
    dbp_pool_dispose(check_pool(L, 1));
    return 0;
}

/* {count=, sum=, mean=, p50=, p95=, p99=, buckets = {n1, ..., n_inf}}:
 * durations in seconds, bucket counts not cumulative (core.hist_bounds()
 * gives the upper bounds; the last bucket is +Inf). */
static void push_hist(lua_State *L, const dbp_hist_snapshot *h)
{
    static const struct { const char *name; double q; } qs[] = {
        {"p50", 0.50}, {"p95", 0.95}, {"p99", 0.99}};
    double sum = (double)h->sum_ns / 1e9;

    lua_createtable(L, 0, 7);
    lua_pushinteger(L, (lua_Integer)h->count);
    lua_setfield(L, -2, "count");
    lua_pushnumber(L, sum);
    lua_setfield(L, -2, "sum");
    lua_pushnumber(L, h->count ? sum / (double)h->count : 0);
    lua_setfield(L, -2, "mean");
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
        lua_pushnumber(L, dbp_hist_quantile(h, qs[i].q));
        lua_setfield(L, -2, qs[i].name);
    }
    lua_createtable(L, DBP_HIST_BUCKETS, 0);
    for (int b = 0; b < DBP_HIST_BUCKETS; b++) {
        lua_pushinteger(L, (lua_Integer)h->buckets[b]);
        lua_rawseti(L, -2, b + 1);
    }
    lua_setfield(L, -2, "buckets");
}

/* stats() -> {size=, capacity=, checkedin=, checkedout=, overflow=, total=,
 * waiting=, checkouts=, waits=, ..., wait=, hold=, connect=}: one snapshot
 * table.  capacity is dbp_pool_capacity: pool_size + max_overflow (or
 * dbpool.budget's applied limit + max_overflow, when lower), an
 * integer, or math.huge when unbounded (pool_size 0 or max_overflow -1), so
 * that it compares above any count (docs/decisions.md). */
static int pool_stats(lua_State *L)
{
    dbp_pool *p = check_pool(L, 1);
    dbp_metrics *m = dbp_pool_metrics(p);
    dbp_pool_counts c;

    if (dbp_pool_config(p)->echo_pool)    /* the refill thread's resizes, so far */
        dbp_lua_log_resizes(L, p);
    dbp_pool_counts_get(p, &c);
    lua_createtable(L, 0, 6 + DBP_M_COUNT);
#define SET_INT(name, v) (lua_pushinteger(L, (v)), lua_setfield(L, -2, name))
    SET_INT("size", c.size);
    SET_INT("max_overflow", dbp_pool_config(p)->max_overflow);
    dbp_lua_push_capacity(L, dbp_pool_capacity(p));
    lua_setfield(L, -2, "capacity");
    SET_INT("checkedin", c.checkedin);
    SET_INT("checkedout", c.checkedout);
    SET_INT("overflow", c.overflow);
    SET_INT("total", c.total);
    SET_INT("waiting", c.waiting);
    /* The same gauges by the names of DESIGN.md's metrics list. */
    SET_INT("idle", c.checkedin);
    SET_INT("in_use", c.checkedout);
    SET_INT("waiters", c.waiting);
    SET_INT("peak_in_use", dbp_pool_peak_in_use(p));
    lua_pushnumber(L, dbp_pool_age(p));
    lua_setfield(L, -2, "age");
    lua_pushstring(L, dbp_pool_breaker_state(p));
    lua_setfield(L, -2, "breaker");
    SET_INT("checkouts", (lua_Integer)dbp_metrics_checkouts(m));
    for (int i = 0; i < DBP_M_COUNT; i++)
        SET_INT(dbp_counter_names[i], (lua_Integer)dbp_metrics_get(m, (dbp_counter)i));
#undef SET_INT
    for (int k = 0; k < DBP_H_COUNT; k++) {
        dbp_hist_snapshot h;
        dbp_hist_read(m, (dbp_hist_kind)k, &h);
        push_hist(L, &h);
        lua_setfield(L, -2, dbp_hist_names[k]);
    }
    dbp_lua_push_autosize(L, p);                          /* stats, autosize or nil */
    lua_setfield(L, -2, "autosize");
    return 1;
}

/* ===== One view per nginx instance (shstats.h) ========================== */

/* A row's autosize table (pool_size = "auto"): {min=, max=, interval=} times
 * its live processes, target= (its share of the instance's size), p99= (its
 * burst), busy= and rate= (its shares of the decision's), and the
 * decision's hold=, decision= (its number), instance_target= and
 * decided_by= (the pid of the worker that took it); summed rows sum the
 * shares. */
static void push_row_autosize(lua_State *L, dbp_pool *p, const dbp_shstats_row *r)
{
    const dbp_config *cfg = dbp_pool_config(p);
    dbp_shstats *sh = dbp_shstats_of(p, false);
    int procs = r->processes > 0 ? r->processes : 1;
    dbp_sh_decision d;

    lua_createtable(L, 0, 10);
#define SET_NUM(name, v) (lua_pushnumber(L, (v)), lua_setfield(L, -2, name))
    SET_NUM("min", (double)cfg->auto_min * procs);
    SET_NUM("max", (double)cfg->auto_max * procs);
    SET_NUM("interval", cfg->auto_interval);
    SET_NUM("limit", sh != NULL ? (double)dbp_shstats_limit(sh) * procs : 0);
    SET_NUM("target", (double)r->gauges[DBP_G_AUTO_TARGET]);
    SET_NUM("p99", (double)r->gauges[DBP_G_AUTO_BURST]);
    SET_NUM("busy", (double)r->gauges[DBP_G_AUTO_BUSY_MILLI] / 1000);
    SET_NUM("rate", (double)r->gauges[DBP_G_AUTO_RATE_MILLI] / 1000);
    if (sh != NULL && dbp_shstats_decision(sh, &d) && d.number > 0) {
        SET_NUM("hold", d.hold);
        SET_NUM("decision", (double)d.number);
        SET_NUM("instance_target", d.target);
        SET_NUM("decided_by", d.pid);     /* the lease holder's pid */
        SET_NUM("share", dbp_sh_decision_share(&d, r->worker));   /* the decision's split */
    }
#undef SET_NUM
}

/* A row as stats() shapes its table, with .worker and .processes; capacity
 * is the pool's times its live processes. */
static void push_row(lua_State *L, dbp_pool *p, const dbp_shstats_row *r)
{
    const dbp_config *cfg = dbp_pool_config(p);
    double cap = dbp_pool_capacity(p);

    lua_createtable(L, 0, 24 + DBP_M_COUNT);
#define SET_INT(name, v) (lua_pushinteger(L, (lua_Integer)(v)), lua_setfield(L, -2, name))
    SET_INT("worker", r->worker);
    SET_INT("processes", r->processes);
    /* Under pool_size = "auto" each process has its own size: their sum. */
    SET_INT("size", cfg->pool_size_auto ? r->gauges[DBP_G_SIZE] : cfg->pool_size);
    SET_INT("max_overflow", cfg->max_overflow);
    dbp_lua_push_capacity(L, r->processes > 0 ? cap * r->processes : cap);
    lua_setfield(L, -2, "capacity");
    SET_INT("idle", r->gauges[DBP_G_IDLE]);
    SET_INT("checkedin", r->gauges[DBP_G_IDLE]);
    SET_INT("in_use", r->gauges[DBP_G_IN_USE]);
    SET_INT("checkedout", r->gauges[DBP_G_IN_USE]);
    SET_INT("overflow", r->gauges[DBP_G_OVERFLOW]);
    SET_INT("total", r->gauges[DBP_G_TOTAL]);
    SET_INT("waiters", r->gauges[DBP_G_WAITERS]);
    SET_INT("waiting", r->gauges[DBP_G_WAITERS]);
    SET_INT("peak_in_use", r->gauges[DBP_G_PEAK_IN_USE]);
    lua_pushnumber(L, dbp_pool_age(p));
    lua_setfield(L, -2, "age");
    lua_pushstring(L, r->gauges[DBP_G_BREAKER_OPEN] > 0 ? "open" : "closed");
    lua_setfield(L, -2, "breaker");
    SET_INT("checkouts", r->hists[DBP_H_WAIT].count);
    for (int i = 0; i < DBP_M_COUNT; i++)
        SET_INT(dbp_counter_names[i], r->counters[i]);
#undef SET_INT
    if (cfg->pool_size_auto) {
        push_row_autosize(L, p, r);
        lua_setfield(L, -2, "autosize");
    }
    for (int k = 0; k < DBP_H_COUNT; k++) {
        push_hist(L, &r->hists[k]);
        lua_setfield(L, -2, dbp_hist_names[k]);
    }
}

/* pool:share_stats() -> true | true, why | false: gives the pool its table
 * if it has none (shstats.h, dbp_shstats_share): in nginx's master, before
 * fork, every worker's; in a worker, the instance arena's.  why, a
 * sentence, when the table is this process's alone (no arena, arena full);
 * false when no table could be mapped. */
static int pool_share_stats(lua_State *L)
{
    dbp_arena_why why;

    if (dbp_shstats_share(check_pool(L, 1), &why) == NULL) {
        lua_pushboolean(L, 0);
        return 1;
    }
    lua_pushboolean(L, 1);
    if (why == DBP_ARENA_OK)
        return 1;
    lua_pushstring(L, dbp_arena_why_text(why));
    return 2;
}

/* pool:publish_stats(worker) -> true | false: this process's numbers into
 * the table, labelled worker; false without a table or a free entry. */
static int pool_publish_stats(lua_State *L)
{
    dbp_pool *p = check_pool(L, 1);
    int worker = (int)luaL_checkinteger(L, 2);
    dbp_shstats *sh = dbp_shstats_of(p, false);

    lua_pushboolean(L, sh != NULL && dbp_shstats_publish(sh, p, worker));
    return 1;
}

/* pool:worker_stats([total]) -> { row, ... } in worker order, or with total
 * one row summing them (.worker = -1); nil without a table. */
static int pool_worker_stats(lua_State *L)
{
    dbp_pool *p = check_pool(L, 1);
    dbp_shstats *sh = dbp_shstats_of(p, false);
    dbp_shstats_row *rows;
    int n;

    if (sh == NULL)
        return 0;
    /* GC-owned scratch: nothing leaks if a push raises. */
    rows = lua_newuserdata(L, (DBP_SH_WORKERS + 1) * sizeof *rows);
    n = dbp_shstats_read(sh, rows);
    if (lua_toboolean(L, 2)) {
        dbp_shstats_row *sum = &rows[DBP_SH_WORKERS];
        memset(sum, 0, sizeof *sum);
        sum->worker = -1;
        for (int i = 0; i < n; i++)
            dbp_shstats_add(sum, &rows[i]);
        push_row(L, p, sum);
        return 1;
    }
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        push_row(L, p, &rows[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* pool:wait_window() -> the wait histogram (as in stats) since the previous
 * call, with .timeouts: what health checks judge, the recent past. */
static int pool_wait_window(lua_State *L)
{
    dbp_hist_snapshot h;
    uint64_t timeouts;

    dbp_pool_wait_window(check_pool(L, 1), &h, &timeouts);
    push_hist(L, &h);
    lua_pushinteger(L, (lua_Integer)timeouts);
    lua_setfield(L, -2, "timeouts");
    return 1;
}

/* The DSN with its password replaced: safe for logs and tostring. */
static int pool_dsn(lua_State *L)
{
    lua_pushstring(L, dbp_conninfo_shown(dbp_pool_conninfo(check_pool(L, 1))));
    return 1;
}

static int pool_name(lua_State *L)
{
    lua_pushstring(L, dbp_pool_config(check_pool(L, 1))->name);
    return 1;
}

static int pool_tostring(lua_State *L)
{
    dbp_pool *p = check_pool(L, 1);

    lua_pushfstring(L, "dbpool.Pool(%s, %s)", dbp_pool_config(p)->name,
                    dbp_conninfo_shown(dbp_pool_conninfo(p)));
    return 1;
}

/* Two handles are equal when they reach the same registry pool. */
static int pool_eq(lua_State *L)
{
    lua_pushboolean(L, check_pool(L, 1) == check_pool(L, 2));
    return 1;
}

static const luaL_Reg pool_methods[] = {
    {"connect", pool_connect},
    {"try_connect", pool_try_connect},
    {"query", pool_query},
    {"query_params", pool_query_params},
    {"wait_window", pool_wait_window},
    {"size", pool_size},
    {"checkedin", pool_checkedin},
    {"checkedout", pool_checkedout},
    {"overflow", pool_overflow},
    {"status", pool_status},
    {"class", pool_class},
    {"dispose", pool_dispose},
    {"note_read_fallback", pool_note_read_fallback},
    {"breaker", pool_breaker},
    {"note_wait", pool_note_wait},
    {"timed_out", pool_timed_out},
    {"timing", pool_timing},
    {"refill_start", pool_refill_start},
    {"resolve_ahead", pool_resolve_ahead},
    {"refill_due", pool_refill_due},
    {"stats", pool_stats},
    {"share_stats", pool_share_stats},
    {"publish_stats", pool_publish_stats},
    {"worker_stats", pool_worker_stats},
    {"dsn", pool_dsn},
    {"name", pool_name},
    {NULL, NULL},
};

static const luaL_Reg pool_metamethods[] = {
    {"__tostring", pool_tostring},
    {"__eq", pool_eq},
    {NULL, NULL},
};

void dbp_lua_open_pool(lua_State *L)
{
    dbp_lua_setfuncs(L, core_functions);
    luaL_getmetatable(L, DBP_POOL_MT);
    lua_newtable(L);
    dbp_lua_setfuncs(L, pool_methods);
    dbp_lua_setfuncs(L, dbp_lua_autosize_methods);
    lua_setfield(L, -2, "__index");
    dbp_lua_setfuncs(L, pool_metamethods);
    lua_pushliteral(L, DBP_POOL_MT);
    lua_setfield(L, -2, "__name");
    lua_pushliteral(L, DBP_POOL_MT);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
}

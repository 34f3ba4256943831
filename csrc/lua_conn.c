/* lua_conn.c: dbpool.Conn, one checked-out connection.  close, __close and
 * __gc share one idempotent release; after it the box is empty and every
 * method but close raises "dbpool.Conn is closed". */
#include <libpq-fe.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua_dbpool.h"

typedef struct conn_box {
    const char *tag;    /* dbp_conn_tag: see dbp_lua_checkself */
    dbp_pool *pool;
    dbp_slot *slot;     /* NULL once returned or invalidated */
    bool traced;        /* leak_threshold: the pool holds its traceback */
    bool connecting;    /* an event loop still drives its connect (connect_step) */
    dbp_site site;      /* where it was checked out, for a leak report */
} conn_box;

void dbp_lua_push_conn(lua_State *L, dbp_pool *p, dbp_slot *s)
{
    conn_box *box = dbp_compat_newuserdata(L, sizeof *box);
    box->tag = dbp_conn_tag;
    box->pool = p;
    box->slot = s;
    box->traced = dbp_pool_config(p)->leak_threshold > 0;
    box->connecting = false;
    dbp_lua_checkout_site(L, &box->site);
    lua_pushvalue(L, DBP_UV_CONN_MT);            /* called from Pool methods only */
    lua_setmetatable(L, -2);
    if (box->traced)
        dbp_lua_track_checkout(L, p, s);
}

static conn_box *check_box(lua_State *L)
{
    return dbp_lua_checkself(L, 1, dbp_conn_tag, sizeof(conn_box), DBP_CONN_MT);
}

static conn_box *check_open(lua_State *L)
{
    conn_box *box = check_box(L);
    if (box->slot == NULL)
        luaL_error(L, "dbpool.Conn is closed");
    if (box->connecting)
        luaL_error(L, "dbpool.Conn is still connecting: call conn:connect_step() until it returns true");
    return box;
}

dbp_conn *dbp_lua_check_conn(lua_State *L)
{
    return dbp_slot_conn(check_open(L)->slot);
}

void dbp_lua_conn_set_connecting(lua_State *L, int idx)
{
    ((conn_box *)lua_touserdata(L, idx))->connecting = true;
}

/* ===== Returning ======================================================= */

static void release(lua_State *L, conn_box *box)
{
    dbp_slot *s = box->slot;
    unsigned events;

    box->slot = NULL;                   /* first: a second call is a no-op */
    if (s == NULL)
        return;
    if (box->connecting) {              /* given up before it connected */
        box->connecting = false;
        dbp_pool_connect_abandon(box->pool, s, "given up before the connection was made");
        return;
    }
    events = dbp_pool_release(box->pool, s);
    if (dbp_pool_config(box->pool)->echo_pool)
        dbp_lua_echo_checkin(L, box->pool, events, false);
}

static int conn_close(lua_State *L)
{
    conn_box *box = check_box(L);
    if (box->traced && box->slot != NULL)
        dbp_lua_report_return(L, box->pool, box->slot);
    release(L, box);
    return 0;
}

/* A connection nobody closed: give it back, count the leak and say where
 * it was checked out. */
static int conn_gc(lua_State *L)
{
    conn_box *box = check_box(L);
    if (box->slot != NULL) {
        dbp_metrics_inc(dbp_pool_metrics(box->pool), DBP_M_LEAKS);
        release(L, box);
        lua_pushfstring(L,
                        "engine %s: connection checked out at %s:%d was never closed; "
                        "returned by the garbage collector",
                        dbp_pool_config(box->pool)->name, box->site.src, box->site.line);
        dbp_lua_log(L, "warn", lua_tostring(L, -1));
    }
    return 0;
}

static int conn_invalidate(lua_State *L)
{
    conn_box *box = check_box(L);
    dbp_slot *s = box->slot;

    if (box->connecting) {               /* nothing to invalidate yet */
        release(L, box);
        return 0;
    }
    box->slot = NULL;
    if (s == NULL)
        return 0;
    dbp_pool_invalidate(box->pool, s);
    if (dbp_pool_config(box->pool)->echo_pool)
        dbp_lua_echo_checkin(L, box->pool, DBP_EV_CLOSE, true);
    return 0;
}

/* ===== Arguments ======================================================= */

#define STACK_PARAMS 16

typedef struct params {
    const char **values;
    int *lengths;
    int *formats;
} params;

/* Text for a Lua number that the server parses back to the same value:
 * integers exactly, floats in the shortest form that round-trips. */
static void push_number_text(lua_State *L, int idx)
{
    char buf[40];
    lua_Number v = lua_tonumber(L, idx);

    if (dbp_compat_isinteger(L, idx) && fabs((double)v) < 9.2e18) {
#if LUA_VERSION_NUM >= 503
        snprintf(buf, sizeof buf, "%lld", (long long)lua_tointeger(L, idx));
#else
        snprintf(buf, sizeof buf, "%.0f", (double)v);
#endif
    } else if (isnan(v)) {
        snprintf(buf, sizeof buf, "NaN");
    } else if (isinf(v)) {
        snprintf(buf, sizeof buf, v > 0 ? "Infinity" : "-Infinity");
    } else {
        snprintf(buf, sizeof buf, "%.15g", (double)v);
        if (strtod(buf, NULL) != (double)v)
            snprintf(buf, sizeof buf, "%.17g", (double)v);
    }
    lua_pushstring(L, buf);
}

/* Fills prm from stack slots first..first+n-1.  Converted texts are pushed
 * on the stack, which keeps them alive until the call returns.  Raises on
 * a value that has no SQL meaning, before anything is sent. */
static void collect_params(lua_State *L, int first, int n, params *prm)
{
    luaL_checkstack(L, n + 4, "too many query parameters");
    for (int i = 0; i < n; i++) {
        int idx = first + i;
        size_t len = 0;
        prm->values[i] = NULL;
        prm->lengths[i] = 0;
        prm->formats[i] = 0;
        switch (lua_type(L, idx)) {
        case LUA_TNIL:
            break;
        case LUA_TLIGHTUSERDATA:
            if (lua_touserdata(L, idx) == NULL)        /* dbpool.null */
                break;
            goto bad;
        case LUA_TBOOLEAN:
            prm->values[i] = lua_toboolean(L, idx) ? "true" : "false";
            break;
        case LUA_TNUMBER:
            push_number_text(L, idx);
            prm->values[i] = lua_tostring(L, -1);
            break;
        case LUA_TSTRING:
            prm->values[i] = lua_tolstring(L, idx, &len);
            /* Text parameters end at a zero byte; raw bytes (bytea) go in
             * binary format, which the server takes as they are. */
            if (strlen(prm->values[i]) != len) {
                prm->formats[i] = 1;
                prm->lengths[i] = (int)len;
            }
            break;
        default:
        bad:
            luaL_error(L,
                       "bad argument #%d to 'query' (parameter $%d must be a string, "
                       "number, boolean, nil or dbpool.null, got %s)",
                       idx, i + 1, luaL_typename(L, idx));
        }
    }
}

/* ===== Queries ========================================================= */

/* A Conn checked out before fork() must not touch the parent's socket. */
static int fail_inherited(lua_State *L)
{
    dbp_error err;

    dbp_error_set(&err, DBP_CLOSED,
                  "dbpool.Conn was checked out before fork(); its socket belongs to the "
                  "parent process: check out a connection in this one");
    return dbp_lua_fail(L, &err);
}

/* A statement failed: count it and tell the pool (a disconnect
 * invalidates older connections). */
static void note_statement_failure(conn_box *box)
{
    dbp_metrics_inc(dbp_pool_metrics(box->pool), DBP_M_QUERY_ERRORS);
    dbp_pool_note_failure(box->pool, box->slot);
}

/* ... and return nil, err. */
static int fail_statement(lua_State *L, conn_box *box, const dbp_error *err)
{
    note_statement_failure(box);
    return dbp_lua_fail(L, err);
}

/* What every statement does first: echo it, count it. */
static void note_statement(lua_State *L, conn_box *box, const char *sql, int nparams,
                           const params *prm)
{
    if (dbp_pool_config(box->pool)->echo)
        dbp_lua_echo_statement(L, box->pool, sql, nparams, prm ? prm->values : NULL,
                               prm ? prm->formats : NULL);
    dbp_slot_note_query(box->slot);
    dbp_metrics_inc(dbp_pool_metrics(box->pool), DBP_M_QUERIES);
}

/* Runs a statement and waits for its result: with prm through the
 * extended protocol, without it through the simple one. */
static dbp_status exec_statement(lua_State *L, conn_box *box, const char *sql, int nparams,
                                 const params *prm, struct pg_result **res, dbp_error *err)
{
    note_statement(L, box, sql, nparams, prm);
    return dbp_conn_exec(dbp_slot_conn(box->slot), sql, nparams, prm ? prm->values : NULL,
                         prm ? prm->lengths : NULL, prm ? prm->formats : NULL, prm == NULL,
                         res, err);
}

/* Runs a statement and pushes its rows (blocking), or with send only
 * queues it (non-blocking) and pushes true; conn:collect gets the rows.
 * No prm: the simple query protocol (conn:exec, several statements). */
static int run(lua_State *L, conn_box *box, const char *sql, int nparams, params *prm,
               bool send)
{
    struct pg_result *res;
    dbp_error err;

    if (dbp_slot_inherited(box->slot))
        return fail_inherited(L);
    if (send) {
        note_statement(L, box, sql, nparams, prm);
        if (dbp_conn_send(dbp_slot_conn(box->slot), sql, nparams, prm ? prm->values : NULL,
                          prm ? prm->lengths : NULL, prm ? prm->formats : NULL, prm == NULL,
                          &err) != DBP_OK)
            return fail_statement(L, box, &err);
        lua_pushboolean(L, 1);
        return 1;
    }
    if (exec_statement(L, box, sql, nparams, prm, &res, &err) != DBP_OK)
        return fail_statement(L, box, &err);
    dbp_lua_push_rows(L, res);
    dbp_conn_free_result(res);
    return 1;
}

/* Points prm at room for n parameters: the caller's stack arrays, or
 * GC-owned scratch when there are more (nothing leaks if we raise). */
static void room_for_params(lua_State *L, int n, params *prm)
{
    if (n > STACK_PARAMS) {
        char *mem = lua_newuserdata(L, (size_t)n * (sizeof(char *) + 2 * sizeof(int)));
        prm->values = (const char **)(void *)mem;
        prm->lengths = (int *)(void *)(mem + (size_t)n * sizeof(char *));
        prm->formats = prm->lengths + n;
    }
}

/* conn:query(sql, ...) or conn:send(sql, ...): parameters $1..$n. */
static int query(lua_State *L, bool send)
{
    conn_box *box = check_open(L);
    const char *sql = luaL_checkstring(L, 2);
    int n = lua_gettop(L) - 2;
    const char *v[STACK_PARAMS];
    int len[STACK_PARAMS], fmt[STACK_PARAMS];
    params prm = {v, len, fmt};

    room_for_params(L, n, &prm);
    collect_params(L, 3, n, &prm);
    return run(L, box, sql, n, &prm, send);
}

/* pool:query(sql, ...) -> rows | nil, err: engine:query outside nginx.
 * Checkout, one statement, return, with no Conn made: nothing escapes to
 * the app, so there is nothing to leak, no checkout site to record and no
 * userdata for the garbage collector (2,500 of a pooled SELECT 1's 14,000
 * instructions on Lua 5.4, bench/results).  Arguments are checked before the
 * checkout, and the slot goes back before the rows are built, so neither
 * a bad argument nor a memory error there can hold it.  While it is held,
 * only echo and leak_threshold run Lua code (dbpool.log, in a protected
 * call) and only a memory error could raise.  The pool is at index 1. */
int dbp_lua_pool_query(lua_State *L, dbp_pool *p)
{
    const char *sql = luaL_checkstring(L, 2);
    int n = lua_gettop(L) - 2;
    const char *v[STACK_PARAMS];
    int len[STACK_PARAMS], fmt[STACK_PARAMS];
    params prm = {v, len, fmt};
    conn_box box = {dbp_conn_tag, p, NULL, false, false, {{0}, 0}};
    struct pg_result *res;
    unsigned events = 0;
    dbp_error err;
    dbp_status st;

    room_for_params(L, n, &prm);
    collect_params(L, 3, n, &prm);
    st = dbp_pool_checkout_ev(p, true, 0, &box.slot, &events, &err);
    if (dbp_pool_config(p)->echo_pool)
        dbp_lua_echo_checkout(L, p, st, events, &err);
    if (st != DBP_OK)
        return dbp_lua_fail(L, &err);
    box.traced = dbp_pool_config(p)->leak_threshold > 0;
    if (box.traced)                     /* a statement can outlast the threshold too */
        dbp_lua_track_checkout(L, p, box.slot);
    st = exec_statement(L, &box, sql, n, &prm, &res, &err);
    if (st != DBP_OK)
        note_statement_failure(&box);
    if (box.traced)
        dbp_lua_report_return(L, p, box.slot);
    release(L, &box);
    if (st != DBP_OK)
        return dbp_lua_fail(L, &err);
    dbp_lua_push_rows(L, res);          /* raises only for memory: res is then lost */
    dbp_conn_free_result(res);
    return 1;
}

/* conn:query(sql, ...) -> rows | nil, err.  $1..$n from the extra
 * arguments, through PQexecParams: no value is ever spliced into SQL. */
static int conn_query(lua_State *L)
{
    return query(L, false);
}

/* conn:exec(sql) -> rows of the last statement | nil, err.  Simple query
 * protocol: several statements allowed, no parameters. */
static int conn_exec(lua_State *L)
{
    conn_box *box = check_open(L);
    const char *sql = luaL_checkstring(L, 2);
    return run(L, box, sql, 0, NULL, false);
}

/* ----- non-blocking: for event loops (the OpenResty path in init.lua) ---- */

/* conn:send(sql, ...) -> true | nil, err: queues the statement, no wait. */
static int conn_send(lua_State *L)
{
    return query(L, true);
}

/* conn:send_exec(sql) -> true | nil, err: conn:exec's statement, no wait. */
static int conn_send_exec(lua_State *L)
{
    conn_box *box = check_open(L);
    const char *sql = luaL_checkstring(L, 2);
    return run(L, box, sql, 0, NULL, true);
}

/* conn:collect([seconds]) -> rows | nil, err | false: the sent statement's
 * rows, waiting at most that long (default 0); false while it still runs. */
static int conn_collect(lua_State *L)
{
    conn_box *box = check_open(L);
    double wait = luaL_optnumber(L, 2, 0);
    struct pg_result *res;
    dbp_error err;
    dbp_status st;

    if (dbp_slot_inherited(box->slot))
        return fail_inherited(L);
    st = dbp_conn_collect(dbp_slot_conn(box->slot), dbp_sec_to_ns(wait > 0 ? wait : 0), &res, &err);
    if (st == DBP_AGAIN) {
        lua_pushboolean(L, 0);
        return 1;
    }
    if (st != DBP_OK)
        return fail_statement(L, box, &err);
    dbp_lua_push_rows(L, res);
    dbp_conn_free_result(res);
    return 1;
}

/* conn:ping() -> true | nil, err: the pre-ping check on demand (socket,
 * then one round trip).  A dead server counts as a disconnect for the pool. */
static int conn_ping(lua_State *L)
{
    conn_box *box = check_open(L);
    dbp_conn *c = dbp_slot_conn(box->slot);
    dbp_error err;

    if (dbp_slot_inherited(box->slot))
        return fail_inherited(L);
    if (!dbp_conn_alive_passive(c))
        dbp_error_set(&err, DBP_QUERY, "the server closed the connection");
    else if (dbp_conn_ping(c, &err) == DBP_OK) {
        lua_pushboolean(L, 1);
        return 1;
    }
    dbp_pool_note_failure(box->pool, box->slot);
    return dbp_lua_fail(L, &err);
}

/* ===== Session facts =================================================== */

static int conn_backend_pid(lua_State *L)
{
    conn_box *box = check_open(L);
    lua_pushinteger(L, dbp_conn_backend_pid(dbp_slot_conn(box->slot)));
    return 1;
}

static int conn_in_transaction(lua_State *L)
{
    conn_box *box = check_open(L);
    lua_pushboolean(L, dbp_conn_txn(dbp_slot_conn(box->slot)) != DBP_TXN_IDLE);
    return 1;
}

/* libpq's PQtransactionStatus by name: "idle", "active", "intrans",
 * "inerror" or "unknown".  engine:transaction uses it to see an aborted
 * transaction that COMMIT would silently roll back. */
static int conn_transaction_status(lua_State *L)
{
    static const char *const names[] = {"idle", "active", "intrans", "inerror", "unknown"};
    conn_box *box = check_open(L);
    PGTransactionStatusType t = PQtransactionStatus(dbp_conn_pg(dbp_slot_conn(box->slot)));
    lua_pushstring(L, names[(unsigned)t < 5 ? t : 4]);
    return 1;
}

static int escape(lua_State *L, int identifier)
{
    conn_box *box = check_open(L);
    size_t len;
    const char *s = luaL_checklstring(L, 2, &len);
    PGconn *pg = dbp_conn_pg(dbp_slot_conn(box->slot));
    char *out = identifier ? PQescapeIdentifier(pg, s, len) : PQescapeLiteral(pg, s, len);
    dbp_error err;

    if (out == NULL) {
        dbp_error_set(&err, DBP_QUERY, "could not escape: ");
        dbp_copy_text(err.message + strlen(err.message),
                      sizeof err.message - strlen(err.message), PQerrorMessage(pg));
        return dbp_lua_fail(L, &err);
    }
    lua_pushstring(L, out);   /* may raise only for memory; out is then lost */
    PQfreemem(out);
    return 1;
}

static int conn_escape_literal(lua_State *L) { return escape(L, 0); }
static int conn_escape_identifier(lua_State *L) { return escape(L, 1); }

/* conn:connect_step() -> true | false, want_write | nil, err: advances a
 * connect of pool:try_connect(since, true) without blocking.  true: ready
 * to use; false: not yet, call again later (want_write: libpq waits to
 * write, else to read); nil, err: it failed and the Conn is closed. */
static int conn_connect_step(lua_State *L)
{
    conn_box *box = check_box(L);
    bool want_write = false;
    unsigned events = 0;
    dbp_error err;
    dbp_status st;

    if (box->slot == NULL)
        luaL_error(L, "dbpool.Conn is closed");
    if (!box->connecting) {
        lua_pushboolean(L, 1);
        return 1;
    }
    st = dbp_pool_connect_step(box->pool, box->slot, &want_write, &events, &err);
    if (st == DBP_AGAIN) {
        lua_pushboolean(L, 0);
        lua_pushboolean(L, want_write);
        return 2;
    }
    box->connecting = false;
    if (dbp_pool_config(box->pool)->echo_pool)
        dbp_lua_echo_checkout(L, box->pool, st, events, &err);
    if (st != DBP_OK) {
        box->slot = NULL;                       /* freed by the pool */
        return dbp_lua_fail(L, &err);
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* conn:yield_after() -> its engine's yield_after (the OpenResty path). */
static int conn_yield_after(lua_State *L)
{
    lua_pushnumber(L, dbp_pool_config(check_box(L)->pool)->yield_after);
    return 1;
}

/* conn:pool_name() -> the engine's name, also once closed (the OpenResty
 * path wakes that pool's slot waiters after a return). */
static int conn_pool_name(lua_State *L)
{
    lua_pushstring(L, dbp_pool_config(check_box(L)->pool)->name);
    return 1;
}

static int conn_is_closed(lua_State *L)
{
    lua_pushboolean(L, check_box(L)->slot == NULL);
    return 1;
}

static int conn_tostring(lua_State *L)
{
    conn_box *box = check_box(L);
    if (box->slot == NULL)
        lua_pushliteral(L, "dbpool.Conn(closed)");
    else
        lua_pushfstring(L, "dbpool.Conn(%s, pid %d)", dbp_pool_config(box->pool)->name,
                        dbp_conn_backend_pid(dbp_slot_conn(box->slot)));
    return 1;
}

static const luaL_Reg conn_methods[] = {
    {"query", conn_query},
    {"exec", conn_exec},
    {"send", conn_send},
    {"send_exec", conn_send_exec},
    {"collect", conn_collect},
    {"ping", conn_ping},
    {"close", conn_close},
    {"invalidate", conn_invalidate},
    {"backend_pid", conn_backend_pid},
    {"in_transaction", conn_in_transaction},
    {"transaction_status", conn_transaction_status},
    {"escape_literal", conn_escape_literal},
    {"escape_identifier", conn_escape_identifier},
    {"is_closed", conn_is_closed},
    {"pool_name", conn_pool_name},
    {"yield_after", conn_yield_after},
    {"connect_step", conn_connect_step},
    {NULL, NULL},
};

static const luaL_Reg conn_metamethods[] = {
    {"__gc", conn_gc},
    {"__close", conn_close},                  /* 5.4; an unused key on 5.1 */
    {"__tostring", conn_tostring},
    {NULL, NULL},
};

/* Fills the Conn metatable (created by luaopen_dbpool_core). */
void dbp_lua_open_conn(lua_State *L)
{
    luaL_getmetatable(L, DBP_CONN_MT);
    lua_newtable(L);
    dbp_lua_setfuncs(L, conn_methods);
    lua_setfield(L, -2, "__index");
    dbp_lua_setfuncs(L, conn_metamethods);
    lua_pushliteral(L, DBP_CONN_MT);
    lua_setfield(L, -2, "__name");
    lua_pushliteral(L, DBP_CONN_MT);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
}

/* lua_conn.c: dbpool.Conn, one checked-out connection.  close, __close and
 * __gc share one idempotent return; after it the box is empty and every
 * method but close raises "dbpool.Conn is closed".  Statements go through
 * the core's statement API (pool_stmt.h), which counts them and tells the
 * pool of disconnects; this file adds only what Lua needs: arguments,
 * echo, rows. */
#include <string.h>

#include "lua_conn.h"
#include "lua_error.h"
#include "lua_log.h"
#include "lua_params.h"
#include "lua_result.h"
#include "lua_util.h"
#include "pool_stmt.h"

typedef struct conn_box {
    const char *tag;    /* dbp_conn_tag: see dbp_lua_checkself */
    dbp_pool *pool;
    dbp_slot *slot;     /* NULL once returned or invalidated */
    bool traced;        /* leak_threshold: the pool holds its traceback */
    bool connecting;    /* an event loop still drives its connect (connect_step) */
    bool expired;       /* returned by a query_timeout: statements fail with kind closed */
    dbp_site site;      /* where it was checked out, for a leak report */
} conn_box;

/* ===== Checking out and returning ====================================== */

static void push_conn(lua_State *L, dbp_pool *p, dbp_slot *s)
{
    conn_box *box = dbp_compat_newuserdata(L, sizeof *box);
    box->tag = dbp_conn_tag;
    box->pool = p;
    box->slot = s;
    box->traced = dbp_pool_config(p)->leak_threshold > 0;
    box->connecting = false;
    box->expired = false;
    dbp_lua_checkout_site(L, &box->site);
    lua_pushvalue(L, DBP_UV_CONN_MT);            /* called from Pool methods only */
    lua_setmetatable(L, -2);
    if (box->traced)
        dbp_lua_track_checkout(L, p, s);
}

int dbp_lua_checked_out(lua_State *L, dbp_pool *p, dbp_status st, dbp_slot *s, unsigned events,
                        const dbp_error *err)
{
    if (st == DBP_PENDING) {              /* the caller drives conn:connect_step() */
        push_conn(L, p, s);
        ((conn_box *)lua_touserdata(L, -1))->connecting = true;
        lua_pushliteral(L, "connecting");
        return 2;
    }
    if (dbp_pool_config(p)->echo_pool)
        dbp_lua_echo_checkout(L, p, st, events, err);
    if (st != DBP_OK)
        return dbp_lua_fail(L, dbp_pool_config(p)->name, err);
    push_conn(L, p, s);
    dbp_lua_log_notices(L, p, s);         /* the startup's, here or in the refill thread */
    return 1;
}

/* nil, msg, err for a failure on box's connection. */
static int fail(lua_State *L, const conn_box *box, const dbp_error *err)
{
    return dbp_lua_fail(L, dbp_pool_config(box->pool)->name, err);
}

/* How a checkout ends: conn:close() (also __close and pool:query's
 * return), the garbage collector, or conn:invalidate(). */
typedef enum return_how { RETURN_CLOSE, RETURN_GC, RETURN_INVALIDATE } return_how;

/* The one way a box gives its slot back; a second call is a no-op. */
static void give_back(lua_State *L, conn_box *box, return_how how)
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
    if (how == RETURN_INVALIDATE) {
        dbp_pool_invalidate(box->pool, s);
        events = DBP_EV_CLOSE;
    } else {
        if (how == RETURN_CLOSE && box->traced)
            dbp_lua_report_return(L, box->pool, s);
        events = dbp_pool_release(box->pool, s);
    }
    if (dbp_pool_config(box->pool)->echo_pool)
        dbp_lua_echo_checkin(L, box->pool, events, how == RETURN_INVALIDATE);
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

dbp_conn *dbp_lua_check_watched_conn(lua_State *L)
{
    conn_box *box = check_box(L);

    if (box->slot != NULL && box->connecting && dbp_slot_ping_left(box->slot) >= 0)
        return dbp_slot_conn(box->slot);
    return dbp_lua_check_conn(L);
}

/* For a statement: the open box, or NULL after pushing nil, msg, err (kind
 * closed) when a query_timeout closed it.  Raises when it was closed by
 * the app, and when a statement is still in flight on it: one statement at
 * a time per connection (another coroutine or ngx.thread sharing the Conn
 * would otherwise take the first one's result). */
static conn_box *check_for_statement(lua_State *L, bool collect)
{
    conn_box *box = check_box(L);
    dbp_error err;

    if (box->slot == NULL && box->expired) {
        dbp_error_set(&err, DBP_CLOSED, "dbpool.Conn was closed by its query_timeout: check out "
                                        "another connection");
        fail(L, box, &err);
        return NULL;
    }
    box = check_open(L);
    if (!collect && dbp_conn_busy(dbp_slot_conn(box->slot)))
        luaL_error(L, "dbpool.Conn is busy: a statement sent before (by another coroutine or "
                      "ngx.thread?) is still running on it; one statement at a time per "
                      "connection");
    return box;
}

/* A statement failed: after a query_timeout the connection goes at once
 * (cancelled, never pooled; the slot is free for others). */
static int statement_failed(lua_State *L, conn_box *box, const dbp_error *err)
{
    if (err->status == DBP_QUERY_TIMEOUT) {
        give_back(L, box, RETURN_CLOSE);
        box->expired = true;
    }
    return fail(L, box, err);
}

bool dbp_lua_conn_for_op(lua_State *L, bool continuing, dbp_pool **p, dbp_slot **s)
{
    conn_box *box = check_for_statement(L, continuing);

    if (box == NULL)
        return false;
    *p = box->pool;
    *s = box->slot;
    return true;
}

int dbp_lua_conn_failed(lua_State *L, const dbp_error *err)
{
    return statement_failed(L, check_box(L), err);
}

static int conn_close(lua_State *L)
{
    give_back(L, check_box(L), RETURN_CLOSE);
    return 0;
}

/* A connection nobody closed: give it back, count the leak and say where
 * it was checked out. */
static int conn_gc(lua_State *L)
{
    conn_box *box = check_box(L);
    if (box->slot != NULL) {
        dbp_metrics_inc(dbp_pool_metrics(box->pool), DBP_M_LEAKS);
        give_back(L, box, RETURN_GC);
        dbp_lua_log_gc_leak(L, box->pool, &box->site);
    }
    return 0;
}

static int conn_invalidate(lua_State *L)
{
    give_back(L, check_box(L), RETURN_INVALIDATE);
    return 0;
}

/* ===== Statements ====================================================== */

/* Runs the statement and pushes its rows (blocking), or with send only
 * queues it (non-blocking) and pushes true; conn:collect gets the rows. */
static int run(lua_State *L, conn_box *box, const dbp_lua_params *prm, bool send)
{
    dbp_result *res;
    dbp_error err;
    dbp_status st;

    if (dbp_pool_config(box->pool)->echo)
        dbp_lua_echo_statement(L, box->pool, &prm->stmt);
    if (send) {
        if (dbp_slot_send(box->pool, box->slot, &prm->stmt, &err) != DBP_OK)
            return statement_failed(L, box, &err);
        lua_pushboolean(L, 1);
        return 1;
    }
    st = dbp_slot_exec(box->pool, box->slot, &prm->stmt, &res, &err);
    dbp_lua_log_notices(L, box->pool, box->slot);     /* before a failure may return it */
    if (st != DBP_OK)
        return statement_failed(L, box, &err);
    dbp_lua_push_result(L, box->pool, res);
    return 1;
}

/* conn:query(sql, ...) or conn:send(sql, ...): parameters $1..$n. */
static int query(lua_State *L, bool send)
{
    conn_box *box = check_for_statement(L, false);
    dbp_lua_params prm;

    if (box == NULL)
        return 3;
    dbp_lua_read_statement(L, 2, 3, lua_gettop(L) - 2, &prm, send ? "send" : "query");
    return run(L, box, &prm, send);
}

/* conn:query_params(sql, params) or conn:send_params(sql, params). */
static int query_params(lua_State *L, bool send)
{
    conn_box *box = check_for_statement(L, false);
    dbp_lua_params prm;

    if (box == NULL)
        return 3;
    dbp_lua_read_statement_table(L, 2, 3, &prm, send ? "send_params" : "query_params");
    return run(L, box, &prm, send);
}

/* conn:exec(sql) or conn:send_exec(sql): the simple query protocol. */
static int exec(lua_State *L, bool send)
{
    conn_box *box = check_for_statement(L, false);
    dbp_lua_params prm;

    if (box == NULL)
        return 3;
    dbp_lua_read_simple(L, 2, &prm, send ? "send_exec" : "exec");
    return run(L, box, &prm, send);
}

/* Checkout, one statement, return, with no Conn made: nothing escapes to
 * the app, so there is nothing to leak, no checkout site to record and no
 * userdata for the garbage collector.  Arguments are checked before the
 * checkout, and the slot goes back before the rows are built, so neither a
 * bad argument nor a memory error there can hold it.  While it is held,
 * only echo and leak_threshold run Lua code (dbpool.log, in a protected
 * call) and only a memory error could raise. */
int dbp_lua_pool_query(lua_State *L, dbp_pool *p, bool params_table)
{
    const dbp_config *cfg = dbp_pool_config(p);
    conn_box box = {.tag = dbp_conn_tag, .pool = p, .traced = cfg->leak_threshold > 0};
    dbp_lua_params prm;
    dbp_result *res;
    unsigned events = 0;
    dbp_error err;
    dbp_status st;

    if (params_table)
        dbp_lua_read_statement_table(L, 2, 3, &prm, "query_params");
    else
        dbp_lua_read_statement(L, 2, 3, lua_gettop(L) - 2, &prm, "query");
    st = dbp_pool_checkout_mode(p, DBP_CHECKOUT_WAIT, 0, &box.slot, &events, &err);
    if (cfg->echo_pool)
        dbp_lua_echo_checkout(L, p, st, events, &err);
    if (st != DBP_OK)
        return fail(L, &box, &err);
    if (box.traced)                     /* a statement can outlast the threshold too */
        dbp_lua_track_checkout(L, p, box.slot);
    if (cfg->echo)
        dbp_lua_echo_statement(L, p, &prm.stmt);
    st = dbp_slot_exec(p, box.slot, &prm.stmt, &res, &err);
    dbp_lua_log_notices(L, p, box.slot);   /* the checkout's and the statement's */
    give_back(L, &box, RETURN_CLOSE);
    if (st != DBP_OK)
        return fail(L, &box, &err);
    dbp_lua_push_result(L, p, res);
    return 1;
}

/* conn:query(sql, ...) -> rows | nil, msg, err.  $1..$n from the extra
 * arguments, through PQexecParams: no value is ever spliced into SQL. */
static int conn_query(lua_State *L)
{
    return query(L, false);
}

/* conn:query_params(sql, params) -> rows | nil, msg, err: conn:query with
 * the parameters in one array (params.n counts trailing nils), for up to
 * PostgreSQL's 65,535 on every Lua (varargs stop near 8,000 on LuaJIT). */
static int conn_query_params(lua_State *L)
{
    return query_params(L, false);
}

/* conn:exec(sql) -> rows of the last statement | nil, msg, err.  Simple query
 * protocol: several statements allowed, no parameters. */
static int conn_exec(lua_State *L)
{
    return exec(L, false);
}

/* ----- non-blocking: for event loops (the OpenResty path in init.lua) ---- */

/* conn:send(sql, ...) -> true | nil, msg, err: queues the statement, no wait. */
static int conn_send(lua_State *L)
{
    return query(L, true);
}

/* conn:send_params(sql, params) -> true | nil, msg, err: conn:query_params's
 * statement, no wait. */
static int conn_send_params(lua_State *L)
{
    return query_params(L, true);
}

/* conn:send_exec(sql) -> true | nil, msg, err: conn:exec's statement, no wait. */
static int conn_send_exec(lua_State *L)
{
    return exec(L, true);
}

/* conn:collect([seconds]) -> rows | nil, msg, err | false: the sent statement's
 * rows, waiting at most that long (default 0); false while it still runs. */
static int conn_collect(lua_State *L)
{
    conn_box *box = check_for_statement(L, true);
    double wait = luaL_optnumber(L, 2, 0);
    dbp_result *res;
    dbp_error err;
    dbp_status st;

    if (box == NULL)
        return 3;
    st = dbp_slot_collect(box->pool, box->slot, dbp_sec_to_ns(wait > 0 ? wait : 0), &res, &err);
    dbp_lua_log_notices(L, box->pool, box->slot);
    if (st == DBP_AGAIN) {
        lua_pushboolean(L, 0);
        return 1;
    }
    if (st != DBP_OK)
        return statement_failed(L, box, &err);
    dbp_lua_push_result(L, box->pool, res);
    return 1;
}

/* conn:ping() -> true | nil, msg, err: the pre-ping check on demand (socket,
 * then one round trip).  A dead server counts as a disconnect for the pool. */
static int conn_ping(lua_State *L)
{
    conn_box *box = check_for_statement(L, false);
    dbp_error err;

    if (box == NULL)
        return 3;
    if (dbp_slot_ping(box->pool, box->slot, &err) != DBP_OK)
        return fail(L, box, &err);
    lua_pushboolean(L, 1);
    return 1;
}

/* conn:_ping_send() -> true | nil, msg, err, then conn:_ping_collect() ->
 * true | false (not answered yet: wait for the socket) | nil, msg, err:
 * conn:ping() in two halves, for nginx's event loop (dbpool.ngx), which
 * waits between them; within ping_timeout as conn:ping(). */
static int conn_ping_send(lua_State *L)
{
    conn_box *box = check_for_statement(L, false);
    dbp_error err;

    if (box == NULL)
        return 3;
    if (dbp_slot_ping_send(box->pool, box->slot, &err) != DBP_OK)
        return fail(L, box, &err);
    lua_pushboolean(L, 1);
    return 1;
}

static int conn_ping_collect(lua_State *L)
{
    conn_box *box = check_for_statement(L, true);
    dbp_error err;
    dbp_status st;

    if (box == NULL)
        return 3;
    st = dbp_slot_ping_step(box->pool, box->slot, &err);
    if (st != DBP_OK && st != DBP_AGAIN)
        return fail(L, box, &err);
    lua_pushboolean(L, st == DBP_OK);
    return 1;
}

/* conn:set_query_timeout(seconds): the deadline of this checkout's
 * statements, in seconds (0: none), until the connection is returned;
 * overrides the engine's query_timeout.  Past it a statement is cancelled,
 * the connection closed, and the call returns nil, msg, err of kind
 * query_timeout. */
static int conn_set_query_timeout(lua_State *L)
{
    conn_box *box = check_open(L);
    double seconds = luaL_checknumber(L, 2);

    if (!(seconds >= 0) || seconds > 1e9)
        luaL_error(L, "bad argument #2 to 'set_query_timeout' (seconds must be a number from 0 "
                      "(none) to 1e9, got %f)", seconds);
    dbp_slot_set_query_timeout(box->slot, seconds);
    return 0;
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
    lua_pushstring(L, dbp_conn_txn_name(dbp_slot_conn(check_open(L)->slot)));
    return 1;
}

static int escape(lua_State *L, bool identifier)
{
    conn_box *box = check_open(L);
    size_t len;
    const char *s = dbp_lua_check_cstring(L, 2, identifier ? "escape_identifier" : "escape_literal",
                                          &len);
    char *out;
    dbp_error err;

    if (dbp_conn_escape(dbp_slot_conn(box->slot), s, len, identifier, &out, &err) != DBP_OK)
        return fail(L, box, &err);
    lua_pushstring(L, out);   /* may raise only for memory; out is then lost */
    dbp_conn_free_text(out);
    return 1;
}

static int conn_escape_literal(lua_State *L) { return escape(L, false); }
static int conn_escape_identifier(lua_State *L) { return escape(L, true); }

/* conn:connect_step() -> true | false, want_write | nil, msg, err: advances a
 * connect of pool:try_connect(since, true) without blocking.  true: ready
 * to use; false: not yet, call again later (want_write: libpq waits to
 * write, else to read); nil, msg, err: it failed and the Conn is closed. */
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
        return fail(L, box, &err);
    }
    dbp_lua_log_notices(L, box->pool, box->slot);     /* the startup's */
    lua_pushboolean(L, 1);
    return 1;
}

/* conn:_ping_left() -> seconds | nil: a pending checkout (pool:try_connect(since,
 * true)) that waits for an idle connection's pre-ping, not for a connect:
 * the seconds left until its ping_timeout or the checkout's deadline (at
 * least 0); nil otherwise.  Until then conn:connect_step() reads the
 * answer; the socket can be watched (conn:_ngx_watch). */
static int conn_ping_left(lua_State *L)
{
    conn_box *box = check_box(L);
    double left = box->slot != NULL && box->connecting ? dbp_slot_ping_left(box->slot) : -1;

    if (left < 0)
        lua_pushnil(L);
    else
        lua_pushnumber(L, left);
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

/* conn:refill_due() -> boolean: its pool's min_idle wants connections a
 * return lost (the OpenResty path's refill timer), also once closed. */
static int conn_refill_due(lua_State *L)
{
    lua_pushboolean(L, dbp_pool_refill_due(check_box(L)->pool));
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
    else if (box->connecting)
        lua_pushfstring(L, "dbpool.Conn(%s, connecting)", dbp_pool_config(box->pool)->name);
    else
        lua_pushfstring(L, "dbpool.Conn(%s, pid %d)", dbp_pool_config(box->pool)->name,
                        dbp_conn_backend_pid(dbp_slot_conn(box->slot)));
    return 1;
}

static const luaL_Reg conn_methods[] = {
    {"query", conn_query},
    {"exec", conn_exec},
    {"query_params", conn_query_params},
    {"send", conn_send},
    {"send_params", conn_send_params},
    {"send_exec", conn_send_exec},
    {"collect", conn_collect},
    {"ping", conn_ping},
    {"set_query_timeout", conn_set_query_timeout},
    {"close", conn_close},
    {"invalidate", conn_invalidate},
    {"backend_pid", conn_backend_pid},
    {"in_transaction", conn_in_transaction},
    {"transaction_status", conn_transaction_status},
    {"escape_literal", conn_escape_literal},
    {"escape_identifier", conn_escape_identifier},
    {"is_closed", conn_is_closed},
    {"pool_name", conn_pool_name},
    {"refill_due", conn_refill_due},
    {"yield_after", conn_yield_after},
    {"connect_step", conn_connect_step},
    {"_ping_left", conn_ping_left},
    {"_ping_send", conn_ping_send},
    {"_ping_collect", conn_ping_collect},
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
    /* core.conn_methods: the Lua layer adds the yielding query for
     * OpenResty there (the metatable itself is protected by __metatable). */
    lua_pushvalue(L, -1);
    lua_setfield(L, -4, "conn_methods");
    lua_setfield(L, -2, "__index");
    dbp_lua_setfuncs(L, conn_metamethods);
    lua_pushliteral(L, DBP_CONN_MT);
    lua_setfield(L, -2, "__name");
    lua_pushliteral(L, DBP_CONN_MT);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
}

/* lua_listen.c: the C half of a Listener (engine:listen): a connection of
 * its own, opened with a copy of the engine's options (its DSN, its
 * connect-time settings, keepalives) but outside the pool: no slot, no
 * capacity, no counters.  These are steps (core.listener, and the
 * "dbpool.Listener" box's _open, _connect_step, _send, _collect, _wait,
 * _escape, _close, _connected); lua/dbpool/listen.lua strings them
 * together, waits between them as its host wants, and keeps the channels
 * to LISTEN again after a reconnect.
 *
 * Arguments: a step's wait is in seconds, -1 for "until done".  Results:
 * false when a step is not done yet, nil, msg, err on failure. */
#include <stdint.h>

#include "conn.h"
#include "lua_error.h"
#include "lua_listen.h"
#include "lua_params.h"
#include "lua_pool.h"
#include "lua_util.h"

typedef struct listener_box {
    dbp_config cfg;      /* the engine's options, copied: the engine may go first */
    bool has_cfg;
    dbp_conninfo *ci;    /* cfg.dsn as libpq parsed it, cfg merged in (conninfo.h) */
    dbp_conn *conn;      /* NULL: not connected */
    bool connecting;     /* _open(false) started a connect that _connect_step drives */
} listener_box;

static listener_box *check_listener(lua_State *L)
{
    return luaL_checkudata(L, 1, DBP_LISTENER_MT);
}

dbp_conn *dbp_lua_test_listener_conn(lua_State *L, int idx)
{
    listener_box *box = luaL_testudata(L, idx, DBP_LISTENER_MT);
    if (box == NULL)
        return NULL;
    if (box->conn == NULL || box->connecting)
        luaL_error(L, "dbpool.Listener is not connected");
    return box->conn;
}

static int fail(lua_State *L, listener_box *box, const dbp_error *err)
{
    return dbp_lua_fail(L, box->cfg.name, err);
}

static void close_conn(listener_box *box)
{
    dbp_conn_close(box->conn);
    box->conn = NULL;
    box->connecting = false;
}

/* core.listener(pool) -> a Listener box, not connected yet. */
static int listener_new(lua_State *L)
{
    dbp_pool *p = dbp_lua_test_pool(L, 1);
    listener_box *box;

    luaL_argcheck(L, p != NULL, 1, "dbpool.Pool expected");
    if (dbp_pool_config(p)->pgbouncer)
        return luaL_error(L, "dbpool: engine:listen needs a session of its own, which "
                             "PgBouncer's transaction pooling (pgbouncer = true) does not keep: "
                             "listen through an engine with the server's own DSN");
    box = dbp_compat_newuserdata(L, sizeof *box);
    box->has_cfg = false;
    box->ci = NULL;
    box->conn = NULL;
    box->connecting = false;
    luaL_setmetatable(L, DBP_LISTENER_MT);
    if (dbp_config_copy(&box->cfg, dbp_pool_config(p)) != DBP_OK)
        return luaL_error(L, "dbpool: out of memory copying the engine's options");
    box->has_cfg = true;
    /* The engine's DSN parsed as it was (it was valid then): the same
     * keywords, precedence and secrets as the engine's own connects. */
    dbp_error err;
    if (dbp_conninfo_new(&box->cfg, box->cfg.dsn, "dsn", &box->ci, &err) != DBP_OK)
        return luaL_error(L, "dbpool: %s", err.message);
    return 1;
}

/* l:_open(seconds) -> true | nil, msg, err: connects, blocking at most that
 * long and connect_timeout; l:_open(false) starts a connect without
 * waiting, for _connect_step to drive. */
static int listener_open(lua_State *L)
{
    listener_box *box = check_listener(L);
    dbp_error err;
    dbp_status st;

    close_conn(box);
    if (lua_isboolean(L, 2) && !lua_toboolean(L, 2)) {
        st = dbp_conn_start(&box->cfg, box->ci, &box->conn, &err);
        box->connecting = st == DBP_OK;
    } else {
        double limit = luaL_checknumber(L, 2), ct = dbp_conninfo_connect_timeout(box->ci);
        if (ct > 0 && ct < limit)
            limit = ct;
        st = dbp_conn_open_by(&box->cfg, box->ci, dbp_now_ns() + dbp_sec_to_ns(limit),
                              &box->conn, &err);
        if (st == DBP_TIMEOUT)
            st = dbp_error_set(&err, DBP_CONNECT, "could not connect: no answer within %g s",
                               limit);
    }
    if (st != DBP_OK)
        return fail(L, box, &err);
    lua_pushboolean(L, 1);
    return 1;
}

/* l:_resolve_ahead() -> true | false | nil, msg, err: pool:resolve_ahead()
 * for the Listener's DSN (an event loop's connect must not look names up). */
static int listener_resolve_ahead(lua_State *L)
{
    listener_box *box = check_listener(L);
    dbp_error err;
    dbp_resolve_state st = dbp_conn_resolve_ahead(box->ci, &err);

    if (st == DBP_RESOLVE_FAILED)
        return fail(L, box, &err);
    lua_pushboolean(L, st == DBP_RESOLVE_READY);
    return 1;
}

/* l:_connect_step() -> true | false, want_write | nil, msg, err */
static int listener_connect_step(lua_State *L)
{
    listener_box *box = check_listener(L);
    bool want_write = false;
    dbp_error err;
    dbp_status st;

    if (!box->connecting) {
        lua_pushboolean(L, box->conn != NULL);
        return 1;
    }
    st = dbp_conn_connect_step(box->conn, box->ci, &want_write, &err);
    if (st == DBP_AGAIN) {
        lua_pushboolean(L, 0);
        lua_pushboolean(L, want_write);
        return 2;
    }
    box->connecting = false;
    if (st != DBP_OK) {
        close_conn(box);
        return fail(L, box, &err);
    }
    lua_pushboolean(L, 1);
    return 1;
}

static dbp_conn *connected(lua_State *L, listener_box *box)
{
    if (box->conn == NULL || box->connecting)
        luaL_error(L, "dbpool.Listener is not connected");
    return box->conn;
}

/* l:_send(sql, seconds) -> true | nil, msg, err: a statement (LISTEN,
 * UNLISTEN) with that deadline. */
static int listener_send(lua_State *L)
{
    listener_box *box = check_listener(L);
    dbp_statement stmt = {.sql = dbp_lua_check_cstring(L, 2, "listen", NULL), .simple = true};
    dbp_error err;

    if (dbp_conn_send(connected(L, box), &stmt, dbp_sec_to_ns(luaL_checknumber(L, 3)), &err)
        != DBP_OK)
        return fail(L, box, &err);
    lua_pushboolean(L, 1);
    return 1;
}

/* l:_collect(wait) -> true | false | nil, msg, err */
static int listener_collect(lua_State *L)
{
    listener_box *box = check_listener(L);
    int64_t wait = dbp_lua_wait_arg(L, 2);
    dbp_result *res;
    dbp_error err;
    dbp_status st = dbp_conn_collect(connected(L, box), wait < 0 ? INT64_MAX / 4 : wait, &res,
                                     &err);

    if (st == DBP_AGAIN) {
        lua_pushboolean(L, 0);
        return 1;
    }
    if (st != DBP_OK)
        return fail(L, box, &err);
    dbp_result_free(res);
    lua_pushboolean(L, 1);
    return 1;
}

/* l:_wait(wait) -> {channel=, payload=, pid=} | false | nil, msg, err (the
 * link is gone: then the connection is closed here). */
static int listener_wait(lua_State *L)
{
    listener_box *box = check_listener(L);
    dbp_notification n;
    dbp_error err;
    dbp_status st = dbp_conn_notify_wait(connected(L, box), dbp_lua_wait_arg(L, 2), &n, &err);

    if (st == DBP_AGAIN) {
        lua_pushboolean(L, 0);
        return 1;
    }
    if (st != DBP_OK) {
        close_conn(box);
        return fail(L, box, &err);
    }
    lua_createtable(L, 0, 3);
    lua_pushstring(L, n.channel);                /* a memory error here loses n */
    lua_setfield(L, -2, "channel");
    lua_pushstring(L, n.payload);
    lua_setfield(L, -2, "payload");
    lua_pushinteger(L, n.pid);
    lua_setfield(L, -2, "pid");
    dbp_conn_free_notification(&n);
    return 1;
}

/* l:_escape(name) -> name quoted as an identifier (PQescapeIdentifier). */
static int listener_escape(lua_State *L)
{
    listener_box *box = check_listener(L);
    size_t len;
    const char *s = dbp_lua_check_cstring(L, 2, "listen", &len);
    char *out;
    dbp_error err;

    if (dbp_conn_escape(connected(L, box), s, len, true, &out, &err) != DBP_OK)
        return fail(L, box, &err);
    lua_pushstring(L, out);
    dbp_conn_free_text(out);
    return 1;
}

static int listener_close(lua_State *L)
{
    close_conn(check_listener(L));
    return 0;
}

static int listener_connected(lua_State *L)
{
    listener_box *box = check_listener(L);
    lua_pushboolean(L, box->conn != NULL && !box->connecting);
    return 1;
}

/* l:_backend_pid() -> the server process of its connection, or nil. */
static int listener_backend_pid(lua_State *L)
{
    listener_box *box = check_listener(L);
    if (box->conn == NULL || box->connecting)
        return 0;
    lua_pushinteger(L, dbp_conn_backend_pid(box->conn));
    return 1;
}

static int listener_gc(lua_State *L)
{
    listener_box *box = check_listener(L);
    close_conn(box);
    dbp_conninfo_free(box->ci);
    box->ci = NULL;
    if (box->has_cfg)
        dbp_config_free(&box->cfg);
    box->has_cfg = false;
    return 0;
}

/* l:_timing() -> connect_timeout, ping_timeout (seconds; 0: none) */
static int listener_timing(lua_State *L)
{
    listener_box *box = check_listener(L);
    lua_pushnumber(L, box->cfg.connect_timeout);
    lua_pushnumber(L, box->cfg.ping_timeout);
    return 2;
}

static const luaL_Reg methods[] = {
    {"_open", listener_open},
    {"_connect_step", listener_connect_step},
    {"_resolve_ahead", listener_resolve_ahead},
    {"_send", listener_send},
    {"_collect", listener_collect},
    {"_wait", listener_wait},
    {"_escape", listener_escape},
    {"_close", listener_close},
    {"_connected", listener_connected},
    {"_timing", listener_timing},
    {"_backend_pid", listener_backend_pid},
    {NULL, NULL},
};

void dbp_lua_open_listen(lua_State *L)
{
    luaL_newmetatable(L, DBP_LISTENER_MT);          /* core, mt */
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_pushvalue(L, -1);
    lua_setfield(L, -4, "listener_methods");        /* core.listener_methods */
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, listener_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushliteral(L, DBP_LISTENER_MT);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
    lua_pushcfunction(L, listener_new);
    lua_setfield(L, -2, "listener");
}

/* lua_ffi.c: the classic side of the LuaJIT FFI path
 * (lua/dbpool/fastpath.lua, ffi_call.h).  Hands Lua the table of function
 * pointers and the pool's address, and takes back what the FFI path leaves
 * to the classic binding because it calls Lua: logging notices, rows that
 * need decoders or lua_decode.c's types, and a checkout that must connect
 * first (a Conn then drives it, as on the classic path). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "ffi_call.h"
#include "lua_conn.h"
#include "lua_decode.h"
#include "lua_ffi.h"
#include "lua_log.h"
#include "lua_ngx_wait.h"
#include "lua_pool.h"
#include "lua_result.h"
#include "lua_util.h"
#include "pgtype.h"

static void pool_info(const dbp_pool *p, dbp_ffi_pool_info *out)
{
    const dbp_config *cfg = dbp_pool_config(p);

    out->name = cfg->name;
    out->slow = cfg->echo || cfg->echo_pool || cfg->leak_threshold > 0;
    out->numeric_text = cfg->numeric == DBP_NUMERIC_STRING;
    out->yield_after = cfg->yield_after;
}

static int ngx_watch(dbp_call *c, int new_id, void *new_sem, const char **why)
{
    dbp_conn *conn = c->slot != NULL ? dbp_slot_conn(c->slot) : NULL;

    if (conn == NULL) {
        *why = "no connection";
        return 0;
    }
    return dbp_ngx_watch(conn, new_id, new_sem, why);
}

/* As lua_result.c's push_field reads DBP_VAL_INT and DBP_VAL_FLOAT. */
static int number(const dbp_result *r, int row, int col, int kind, double *out)
{
    size_t len;
    const char *v = dbp_result_field(r, row, col, &len);
    int64_t n;

    if (kind != DBP_TYPE_INT) {
        *out = strtod(v, NULL);
        return 1;
    }
    n = dbp_parse_int(v);
    if (n > ((int64_t)1 << 53) || n < -((int64_t)1 << 53))
        return 0;                        /* dbp_compat_push_int64: LuaJIT keeps the text */
    *out = (double)n;
    return 1;
}

static int type_kind(unsigned oid)
{
    return (int)dbp_type_kind_of(oid);
}

static const char *status_kind(int status)
{
    return dbp_status_kind((dbp_status)status);
}

static double now(void)
{
    return (double)dbp_now_ns() / 1e9;
}

static const dbp_ffi_api api = {
    .call_size = sizeof(dbp_call),
    .pool_info = pool_info,
    .checkout = dbp_call_checkout,
    .exec = dbp_call_exec,
    .send = dbp_call_send,
    .collect = dbp_call_collect,
    .has_notices = dbp_call_has_notices,
    .release = dbp_call_release,
    .invalidate = dbp_call_invalidate,
    .ngx_watch = ngx_watch,
    .rows = dbp_result_rows,
    .columns = dbp_result_columns,
    .column_name = dbp_result_column_name,
    .column_type = dbp_result_column_type,
    .field = dbp_result_field,
    .affected = dbp_result_affected,
    .number = number,
    .type_kind = type_kind,
    .array_elem = dbp_type_array_elem,
    .decoders_maybe = dbp_lua_decoders_maybe,
    .result_free = dbp_result_free,
    .status_kind = status_kind,
    .now = now,
};

/* core._ffi_api() -> light userdata: the dbp_ffi_api table. */
static int ffi_api(lua_State *L)
{
    lua_pushlightuserdata(L, (void *)&api);
    return 1;
}

/* core._ffi_pool(pool) -> light userdata: the dbp_pool behind a Pool
 * handle, valid while the handle lives; nil for anything else. */
static int ffi_pool(lua_State *L)
{
    dbp_pool *p = dbp_lua_test_pool(L, 1);

    if (p == NULL)
        lua_pushnil(L);
    else
        lua_pushlightuserdata(L, p);
    return 1;
}

/* LuaJIT's type number of cdata, which lua.h does not name. */
enum { LUAJIT_TCDATA = 10 };

/* The dbp_call cdata at idx (dbpool.fastpath's); raises for anything that
 * is no cdata at all.  Internal: the FFI path passes only its own calls. */
static dbp_call *check_call(lua_State *L, int idx)
{
    dbp_call *c = lua_type(L, idx) == LUAJIT_TCDATA ? (dbp_call *)lua_topointer(L, idx) : NULL;

    if (c == NULL)
        luaL_argerror(L, idx, "dbpool.fastpath's dbp_call expected");
    return c;
}

/* core._ffi_log_notices(call) -> nothing: the notices its connection got
 * go to dbpool.log, as after a classic statement. */
static int ffi_log_notices(lua_State *L)
{
    dbp_call *c = check_call(L, 1);

    dbp_lua_log_notices(L, c->pool, c->slot);
    return 0;
}

/* core._ffi_push_result(call) -> rows: c->res built by lua_result.c, which
 * frees it (c->res is NULL after, also when a decoder raised). */
static int ffi_push_result(lua_State *L)
{
    dbp_call *c = check_call(L, 1);
    dbp_result *r = c->res;

    c->res = NULL;
    dbp_lua_push_result(L, c->pool, r);
    return 1;
}

/* core._ffi_note_site(call): the app's frame that called engine:query,
 * as a Conn records it at checkout, into the call (before it yields). */
static int ffi_note_site(lua_State *L)
{
    dbp_call *c = check_call(L, 1);
    dbp_site site;

    dbp_lua_checkout_site(L, &site);
    snprintf(c->site_src, sizeof c->site_src, "%s", site.src);
    c->site_line = site.line;
    return 0;
}

/* core._ffi_leaked(call): the finalizer of a call dropped with its
 * checkout (the request was killed while it waited): counted and reported
 * as a Conn the garbage collector returns, then given back. */
static int ffi_leaked(lua_State *L)
{
    dbp_call *c = check_call(L, 1);
    dbp_site site;

    if (c->slot == NULL || c->pool == NULL)
        return 0;
    snprintf(site.src, sizeof site.src, "%s", c->site_line > 0 ? c->site_src : "?");
    site.line = c->site_line;
    dbp_metrics_inc(dbp_pool_metrics(c->pool), DBP_M_LEAKS);
    (void)dbp_call_release(c);
    dbp_lua_log_gc_leak(L, c->pool, &site);
    return 0;
}

/* core._ffi_adopt(call) -> Conn, "connecting": the slot that the FFI
 * checkout reserved for a new connection (DBP_PENDING), as the Conn that
 * pool:try_connect(since, true) would have returned; c->slot is then NULL. */
static int ffi_adopt(lua_State *L)
{
    dbp_call *c = check_call(L, 1);
    dbp_slot *s = c->slot;

    if (s == NULL)
        return luaL_error(L, "dbpool: core._ffi_adopt(): no reserved slot");
    c->slot = NULL;
    return dbp_lua_checked_out(L, c->pool, DBP_PENDING, s, 0, &c->err);
}

void dbp_lua_open_ffi(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"_ffi_api", ffi_api},
        {"_ffi_pool", ffi_pool},
        {"_ffi_log_notices", ffi_log_notices},
        {"_ffi_push_result", ffi_push_result},
        {"_ffi_adopt", ffi_adopt},
        {"_ffi_note_site", ffi_note_site},
        {"_ffi_leaked", ffi_leaked},
        {NULL, NULL},
    };
    dbp_lua_setfuncs(L, fns);              /* _ffi_adopt makes a Conn: the upvalues */
}

/* lua_core.c: luaopen_dbpool_core, the only exported symbol.  Registers the
 * metatables and returns {open = ..., null = ...}. */
#include "lua_dbpool.h"
#include "redact.h"
#include "registry.h"

#define DBP_EXPORT __attribute__((visibility("default")))

/* core.redact(dsn) -> the DSN with its password replaced by "***". */
static int core_redact(lua_State *L)
{
    char buf[1024];

    dbp_redact_dsn(luaL_checkstring(L, 1), buf, sizeof buf);
    lua_pushstring(L, buf);
    return 1;
}

/* core.options() -> the known option names, in DESIGN.md's order. */
static int core_options(lua_State *L)
{
    int n = 0;

    lua_newtable(L);
    for (const dbp_option *o = dbp_options; o->name != NULL; o++) {
        lua_pushstring(L, o->name);
        lua_rawseti(L, -2, ++n);
    }
    return 1;
}

/* core.find(name) -> the registry pool of that name, opened by any Lua
 * state or thread of this process, or nil. */
static int core_find(lua_State *L)
{
    dbp_pool *p = dbp_registry_find(luaL_checkstring(L, 1));

    if (p == NULL)
        return 0;
    dbp_lua_push_pool(L, p);
    return 1;
}

/* core.pools() -> every registry pool of the process, oldest first: what
 * dbpool.metrics() renders, whichever Lua state created them. */
static int core_pools(lua_State *L)
{
    dbp_pool *stack[64], **list = stack;
    int n = dbp_registry_list(stack, 64);

    if (n > 64) {            /* GC-owned scratch: nothing leaks if we raise */
        list = lua_newuserdata(L, (size_t)n * sizeof *list);
        n = dbp_registry_list(list, n);
    }
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        dbp_lua_push_pool(L, list[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
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

/* core.suggest(name[, prefix]) -> the nearest known option name, or nil. */
static int core_suggest(lua_State *L)
{
    const char *near = dbp_option_suggest(luaL_checkstring(L, 1), luaL_optstring(L, 2, NULL));

    if (near == NULL)
        return 0;
    lua_pushstring(L, near);
    return 1;
}

static const luaL_Reg core_functions[] = {
    {"suggest", core_suggest},
    {"find", core_find},
    {"open", dbp_lua_pool_open},
    {"redact", core_redact},
    {"options", core_options},
    {"pools", core_pools},
    {"hist_bounds", core_hist_bounds},
    {"now", core_now},
    {NULL, NULL},
};

void dbp_lua_setfuncs(lua_State *L, const luaL_Reg *l)
{
    luaL_getmetatable(L, DBP_CONN_MT);
    luaL_getmetatable(L, DBP_POOL_MT);
    luaL_setfuncs(L, l, 2);
}

const char dbp_conn_tag[] = DBP_CONN_MT, dbp_pool_tag[] = DBP_POOL_MT;

void *dbp_lua_checkself(lua_State *L, int idx, const char *tag, size_t size, const char *tname)
{
    const char **p = lua_touserdata(L, idx);

    /* Size first: a light userdata has none, and a smaller block cannot be read. */
    if (p != NULL && lua_rawlen(L, idx) == size && *p == tag)
        return p;
    return luaL_checkudata(L, idx, tname);        /* raises the standard type error */
}

DBP_EXPORT int luaopen_dbpool_core(lua_State *L)
{
    /* Both metatables first: each is an upvalue of the other's methods. */
    luaL_newmetatable(L, DBP_CONN_MT);
    luaL_newmetatable(L, DBP_POOL_MT);
    lua_pop(L, 2);
    dbp_lua_open_error(L);
    dbp_lua_open_pool(L);
    dbp_lua_open_conn(L);
    luaL_newlib(L, core_functions);
    dbp_lua_open_engine_functions(L);
    dbp_lua_open_policy(L);
    /* SQL NULL is the NULL light userdata: the same value as cjson.null and
     * ngx.null, so rows encode to JSON null unchanged. */
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");
    luaL_getmetatable(L, DBP_ERROR_MT);
    lua_setfield(L, -2, "Error");
    /* The Conn methods, so that the Lua layer can add the yielding query
     * for OpenResty (the metatable itself is protected by __metatable). */
    luaL_getmetatable(L, DBP_CONN_MT);
    lua_getfield(L, -1, "__index");
    dbp_lua_open_ngx_wait(L, lua_absindex(L, -3), lua_absindex(L, -1));
    lua_setfield(L, -3, "conn_methods");
    lua_pop(L, 1);
    return 1;
}

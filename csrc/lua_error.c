/* lua_error.c: runtime failures as `nil, msg, err`, as luv and the
 * lua-resty libraries return them: msg a string, err a dbpool.Error table
 * with message (= msg), kind, engine and, for server errors, sqlstate,
 * severity, detail, hint. */
#include "lua_error.h"
#include "lua_util.h"

static void set_if(lua_State *L, const char *key, const char *value)
{
    if (value[0] == '\0')
        return;
    lua_pushstring(L, value);
    lua_setfield(L, -2, key);                     /* err[key] = value */
}

int dbp_lua_fail(lua_State *L, const char *engine, const dbp_error *err)
{
    lua_pushnil(L);
    lua_pushstring(L, err->message);
    lua_createtable(L, 0, 7);                     /* nil, msg, err */
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "message");
    if (engine != NULL) {
        lua_pushstring(L, engine);
        lua_setfield(L, -2, "engine");
    }
    lua_pushstring(L, dbp_status_kind(err->status));
    lua_setfield(L, -2, "kind");
    set_if(L, "sqlstate", err->sqlstate);
    set_if(L, "severity", err->severity);
    set_if(L, "detail", err->detail);
    set_if(L, "hint", err->hint);
    luaL_setmetatable(L, DBP_ERROR_MT);
    return 3;
}

/* tostring(err) is the message, so assert(conn:query(...)) reads well. */
static int error_tostring(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "message");
    if (lua_type(L, -1) != LUA_TSTRING)
        lua_pushliteral(L, "dbpool error");
    return 1;
}

void dbp_lua_open_error(lua_State *L)
{
    luaL_newmetatable(L, DBP_ERROR_MT);
    lua_pushcfunction(L, error_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, DBP_ERROR_MT);
    lua_setfield(L, -2, "__name");                /* 5.1 lacks it */
    lua_setfield(L, -2, "Error");                 /* core.Error */
}

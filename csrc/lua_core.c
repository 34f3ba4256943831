/* lua_core.c: luaopen_dbpool_core, the only exported symbol.  It only opens
 * the binding's modules, each of which adds its functions to the core table
 * or fills its metatable. */
#include "lua_config.h"
#include "lua_conn.h"
#include "lua_error.h"
#include "lua_ngx_wait.h"
#include "lua_params.h"
#include "lua_policy.h"
#include "lua_pool.h"
#include "lua_registry.h"
#include "lua_util.h"

#define DBP_EXPORT __attribute__((visibility("default")))

DBP_EXPORT int luaopen_dbpool_core(lua_State *L)
{
    /* Both metatables first: each is an upvalue of the other's methods. */
    luaL_newmetatable(L, DBP_CONN_MT);
    luaL_newmetatable(L, DBP_POOL_MT);
    lua_pop(L, 2);
    dbp_lua_open_error(L);
    dbp_lua_open_conn(L);
    lua_newtable(L);                              /* core */
    dbp_lua_open_pool(L);
    dbp_lua_open_params(L);
    dbp_lua_open_registry(L);
    dbp_lua_open_config(L);
    dbp_lua_open_policy(L);
    dbp_lua_open_ngx_wait(L);
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
    lua_setfield(L, -3, "conn_methods");
    lua_pop(L, 1);
    return 1;
}

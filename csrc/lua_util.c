/* lua_util.c: helpers shared by the binding's files (lua_util.h). */
#include <math.h>

#include "lua_util.h"

#include "common.h"

void dbp_lua_push_capacity(lua_State *L, double capacity)
{
    if (isinf(capacity))
        lua_pushnumber(L, HUGE_VAL);                     /* math.huge: unbounded */
    else
        lua_pushinteger(L, (lua_Integer)capacity);
}

void dbp_lua_open_metatables(lua_State *L)
{
    luaL_newmetatable(L, DBP_CONN_MT);
    luaL_newmetatable(L, DBP_POOL_MT);
    lua_pop(L, 2);
}

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

int64_t dbp_lua_wait_arg(lua_State *L, int idx)
{
    double wait = luaL_optnumber(L, idx, 0);
    return wait < 0 ? -1 : dbp_sec_to_ns(wait);
}

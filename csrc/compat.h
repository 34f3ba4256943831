/* compat.h: the only place that knows Lua 5.1 (LuaJIT 2.1) from Lua 5.4.
 * LuaJIT 2.1 already carries luaL_setfuncs, luaL_newlib, luaL_testudata,
 * luaL_setmetatable and LUA_OK; the gaps we use are filled here. */
#ifndef DBP_COMPAT_H
#define DBP_COMPAT_H

#include <stdint.h>
#include <stdio.h>
#include <lua.h>
#include <lauxlib.h>

#if LUA_VERSION_NUM == 501

#define lua_rawlen(L, i) lua_objlen((L), (i))

/* PUC Lua 5.1 (a LuaRocks build without LuaJIT) lacks what LuaJIT 2.1 added
 * from 5.2; LuaJIT's lauxlib.h defines luaL_newlib, PUC 5.1's does not. */
#ifndef luaL_newlib
static inline void dbp_compat_setfuncs(lua_State *L, const luaL_Reg *l, int nup)
{
    luaL_checkstack(L, nup, "too many upvalues");
    for (; l->name != NULL; l++) {
        for (int i = 0; i < nup; i++)       /* copies of the nup values below the table */
            lua_pushvalue(L, -nup);
        lua_pushcclosure(L, l->func, nup);
        lua_setfield(L, -(nup + 2), l->name);
    }
    lua_pop(L, nup);
}
#define luaL_setfuncs(L, l, n) dbp_compat_setfuncs((L), (l), (n))
#define luaL_newlib(L, l) (lua_newtable(L), luaL_setfuncs((L), (l), 0))

static inline void *dbp_compat_testudata(lua_State *L, int ud, const char *tname)
{
    void *p = lua_touserdata(L, ud);
    int same;

    if (p == NULL || !lua_getmetatable(L, ud))
        return NULL;
    luaL_getmetatable(L, tname);
    same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same ? p : NULL;
}
#define luaL_testudata(L, ud, t) dbp_compat_testudata((L), (ud), (t))

static inline void dbp_compat_setmetatable(lua_State *L, const char *tname)
{
    luaL_getmetatable(L, tname);
    lua_setmetatable(L, -2);
}
#define luaL_setmetatable(L, t) dbp_compat_setmetatable((L), (t))
#endif

#ifndef LUA_OK
#define LUA_OK 0
#endif

/* A userdata without user values (5.4 gives one by default). */
#define dbp_compat_newuserdata(L, size) lua_newuserdata((L), (size))

static inline int lua_absindex(lua_State *L, int idx)
{
    return (idx > 0 || idx <= LUA_REGISTRYINDEX) ? idx : lua_gettop(L) + idx + 1;
}

/* Numbers are doubles: "integer" means an integral value. */
static inline int dbp_compat_isinteger(lua_State *L, int idx)
{
    lua_Number n = lua_tonumber(L, idx);
    return n == (lua_Number)(int64_t)n;
}

/* The decimal text of the integral number at idx. */
static inline void dbp_compat_integer_text(lua_State *L, int idx, char *buf, size_t size)
{
    snprintf(buf, size, "%.0f", (double)lua_tonumber(L, idx));
}

/* int8 beyond 2^53 has no exact double: hand it over as its text (len
 * bytes; an array's element is not NUL-terminated). */
static inline void dbp_compat_push_int64(lua_State *L, int64_t v, const char *text, size_t len)
{
    if (v > ((int64_t)1 << 53) || v < -((int64_t)1 << 53))
        lua_pushlstring(L, text, len);
    else
        lua_pushnumber(L, (lua_Number)v);
}

#else

#define dbp_compat_newuserdata(L, size) lua_newuserdatauv((L), (size), 0)

static inline int dbp_compat_isinteger(lua_State *L, int idx)
{
    return lua_isinteger(L, idx);
}

static inline void dbp_compat_integer_text(lua_State *L, int idx, char *buf, size_t size)
{
    snprintf(buf, size, "%lld", (long long)lua_tointeger(L, idx));
}

static inline void dbp_compat_push_int64(lua_State *L, int64_t v, const char *text, size_t len)
{
    (void)text;
    (void)len;
    lua_pushinteger(L, (lua_Integer)v);
}

#endif

#endif

/* lua_pool.h: dbpool.Pool, a Lua handle on a registry pool (lua_pool.c). */
#ifndef DBP_LUA_POOL_H
#define DBP_LUA_POOL_H

#include "compat.h"
#include "pool.h"

/* Pushes a new handle on p. */
void dbp_lua_push_pool(lua_State *L, dbp_pool *p);
/* The pool of a dbpool.Pool handle at idx, or NULL for anything else. */
dbp_pool *dbp_lua_test_pool(lua_State *L, int idx);

/* The pool of the Pool method's self at idx; raises for anything else.
 * For Pool methods registered by dbp_lua_open_pool only (upvalues). */
dbp_pool *dbp_lua_check_pool(lua_State *L, int idx);

/* pool_size = "auto" (lua_autosize.c): Pool methods autosize_step and
 * size_limit, and stats()'s autosize table. */
extern const luaL_Reg dbp_lua_autosize_methods[];
void dbp_lua_push_autosize(lua_State *L, dbp_pool *p);

/* Fills the Pool metatable (created by luaopen_dbpool_core with the Conn
 * one, since each is the other's methods' upvalue) and adds
 * core.engine_connect, core.engine_query (engine:connect and engine:query
 * outside nginx), core.now and core.hist_bounds to the core table on top of
 * the stack. */
void dbp_lua_open_pool(lua_State *L);

#endif

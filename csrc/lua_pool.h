/* lua_pool.h: dbpool.Pool, a Lua handle on a registry pool (lua_pool.c). */
#ifndef DBP_LUA_POOL_H
#define DBP_LUA_POOL_H

#include "compat.h"
#include "pool.h"

/* Pushes a new handle on p. */
void dbp_lua_push_pool(lua_State *L, dbp_pool *p);
/* The pool of a dbpool.Pool handle at idx, or NULL for anything else. */
dbp_pool *dbp_lua_test_pool(lua_State *L, int idx);

/* Fills the Pool metatable (created by luaopen_dbpool_core with the Conn
 * one, since each is the other's methods' upvalue) and adds
 * core.engine_connect, core.engine_query (engine:connect and engine:query
 * outside nginx), core.now and core.hist_bounds to the core table on top of
 * the stack. */
void dbp_lua_open_pool(lua_State *L);

#endif

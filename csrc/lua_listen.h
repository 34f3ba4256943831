/* lua_listen.h: the C half of a Listener, engine:listen (lua_listen.c). */
#ifndef DBP_LUA_LISTEN_H
#define DBP_LUA_LISTEN_H

#include "compat.h"
#include "conn.h"

#define DBP_LISTENER_MT "dbpool.Listener"

/* The connection of the Listener box at idx, or NULL when idx holds no
 * Listener; raises when it is one that is not connected. */
dbp_conn *dbp_lua_test_listener_conn(lua_State *L, int idx);

/* Creates the Listener metatable, core.listener(pool) and
 * core.listener_methods in the core table on top of the stack. */
void dbp_lua_open_listen(lua_State *L);

#endif

/* lua_conn.h: dbpool.Conn, one checked-out connection (lua_conn.c). */
#ifndef DBP_LUA_CONN_H
#define DBP_LUA_CONN_H

#include "compat.h"
#include "pool.h"

/* What a Pool method's checkout got, for Lua: pushes the Conn (and for
 * DBP_PENDING, the string "connecting": the caller drives
 * conn:connect_step()) or nil, msg, err; logs echo_pool.  Returns the number of
 * values pushed.  Only for Pool methods (they carry the metatables as
 * upvalues). */
int dbp_lua_checked_out(lua_State *L, dbp_pool *p, dbp_status st, dbp_slot *s, unsigned events,
                        const dbp_error *err);

/* pool:query's work: checkout (waiting up to pool_timeout), one statement,
 * return, with no Conn made; the pool is at index 1, sql at 2, parameters
 * after it (params_table: one array of them, as conn:query_params).
 * Returns rows | nil, msg, err. */
int dbp_lua_pool_query(lua_State *L, dbp_pool *p, bool params_table);

/* The connection of the checked-out Conn at index 1; raises when it is
 * closed or still connecting. */
dbp_conn *dbp_lua_check_conn(lua_State *L);
/* The same for a socket watch, which may also wait for a pending checkout's
 * pre-ping (conn:_ping_left()). */
dbp_conn *dbp_lua_check_watched_conn(lua_State *L);

/* For a step of an operation (lua_pipeline.c, lua_copy.c): the pool and
 * slot of the Conn at index 1, or false after pushing nil, msg, err (kind
 * closed: a query_timeout closed it).  Raises when the app closed it, and,
 * unless continuing (a later step of the operation in flight), when a
 * statement is in flight on it. */
bool dbp_lua_conn_for_op(lua_State *L, bool continuing, dbp_pool **p, dbp_slot **s);

/* A step of the Conn at index 1 failed: pushes nil, msg, err, and after a
 * query_timeout returns the connection (closed, never pooled) at once, as
 * conn:query does.  Returns 3. */
int dbp_lua_conn_failed(lua_State *L, const dbp_error *err);

/* Fills the Conn metatable (created by dbp_lua_open_metatables) and sets
 * core.conn_methods in the core table on top of the stack. */
void dbp_lua_open_conn(lua_State *L);

#endif

/* lua_util.h: what every file of the Lua binding (csrc/lua_*.c) shares: the
 * metatable names and the checks of a method's self.  Only the binding
 * includes Lua headers (through compat.h). */
#ifndef DBP_LUA_UTIL_H
#define DBP_LUA_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "compat.h"

#define DBP_POOL_MT "dbpool.Pool"
#define DBP_CONN_MT "dbpool.Conn"
#define DBP_ERROR_MT "dbpool.Error"

/* Every Pool and Conn method (metamethods included) carries the two
 * metatables as upvalues, so the hot path checks and sets them without
 * looking a name up in the registry. */
#define DBP_UV_CONN_MT lua_upvalueindex(1)
#define DBP_UV_POOL_MT lua_upvalueindex(2)

/* Creates the (empty) Conn and Pool metatables: first of all, since each is
 * an upvalue of the other's methods. */
void dbp_lua_open_metatables(lua_State *L);

/* Registers l into the table on top of the stack with those upvalues; both
 * metatables must exist (dbp_lua_open_metatables). */
void dbp_lua_setfuncs(lua_State *L, const luaL_Reg *l);

/* Pool and Conn boxes start with a tag: the address of a static of this
 * module, which no other code puts at the start of a userdata of the same
 * size.  Checking it takes fewer API calls than comparing metatables. */
extern const char dbp_conn_tag[], dbp_pool_tag[];

/* The full userdata at idx when it is size bytes and starts with tag, else
 * raises luaL_checkudata's type error naming tname. */
void *dbp_lua_checkself(lua_State *L, int idx, const char *tag, size_t size, const char *tname);

/* Pushes a dbp_config_capacity: an integer, or math.huge when unbounded, as
 * stats().capacity and core.capacity give it. */
void dbp_lua_push_capacity(lua_State *L, double capacity);

/* A step's wait argument at idx: seconds (0 when absent: do not wait), a
 * negative number for "until done" (-1); returned in nanoseconds, or -1. */
int64_t dbp_lua_wait_arg(lua_State *L, int idx);

#endif

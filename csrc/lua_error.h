/* lua_error.h: runtime failures returned to Lua as `nil, err`. */
#ifndef DBP_LUA_ERROR_H
#define DBP_LUA_ERROR_H

#include "compat.h"
#include "error.h"

/* Pushes nil and a dbpool.Error table (message, kind, and for server
 * errors sqlstate, severity, detail, hint); returns 2. */
int dbp_lua_fail(lua_State *L, const dbp_error *err);

/* Creates the dbpool.Error metatable. */
void dbp_lua_open_error(lua_State *L);

#endif

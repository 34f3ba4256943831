/* lua_error.h: runtime failures returned to Lua as `nil, msg, err`. */
#ifndef DBP_LUA_ERROR_H
#define DBP_LUA_ERROR_H

#include "compat.h"
#include "error.h"

/* Pushes nil, err->message and a dbpool.Error table (message, kind, engine
 * when not NULL, and for server errors sqlstate, severity, detail, hint);
 * returns 3. */
int dbp_lua_fail(lua_State *L, const char *engine, const dbp_error *err);

/* Creates the dbpool.Error metatable, as core.Error in the core table on
 * top of the stack. */
void dbp_lua_open_error(lua_State *L);

#endif

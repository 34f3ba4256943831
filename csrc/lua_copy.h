/* lua_copy.h: the steps of conn:copy_from and conn:copy_to (lua_copy.c). */
#ifndef DBP_LUA_COPY_H
#define DBP_LUA_COPY_H

#include "compat.h"

/* Adds the internal _copy_* methods to the Conn methods (after
 * dbp_lua_open_conn). */
void dbp_lua_open_copy(lua_State *L);

#endif

/* lua_registry.h: the process-wide registry of pools, from Lua. */
#ifndef DBP_LUA_REGISTRY_H
#define DBP_LUA_REGISTRY_H

#include "compat.h"

/* Adds core.open, core.find and core.pools to the core table on top of the
 * stack. */
void dbp_lua_open_registry(lua_State *L);

#endif

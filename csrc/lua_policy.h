/* lua_policy.h: policy checks from Lua (lua_policy.c). */
#ifndef DBP_LUA_POLICY_H
#define DBP_LUA_POLICY_H

#include "compat.h"

/* Adds core.check and core.capacity to the core table on top of the stack. */
void dbp_lua_open_policy(lua_State *L);

#endif

/* lua_config.h: option tables from Lua (lua_config.c). */
#ifndef DBP_LUA_CONFIG_H
#define DBP_LUA_CONFIG_H

#include "compat.h"
#include "config.h"

/* Reads the option table at idx into c (initialised with defaults first).
 * Raises, after freeing c, with a message naming the option, what it must
 * be and what it got. */
void dbp_lua_read_config(lua_State *L, int idx, dbp_config *c);

/* Adds core.redact, core.options and core.suggest to the core table on top
 * of the stack. */
void dbp_lua_open_config(lua_State *L);

#endif

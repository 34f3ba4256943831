/* lua_result.h: a statement's result as Lua rows: an array of tables keyed
 * by column name, with rows.columns (names in order) and rows.affected
 * (the command's count, when it reports one). */
#ifndef DBP_LUA_RESULT_H
#define DBP_LUA_RESULT_H

#include "compat.h"
#include "result.h"

void dbp_lua_push_rows(lua_State *L, const dbp_result *r);
/* The same, then frees r. */
void dbp_lua_push_result(lua_State *L, dbp_result *r);

#endif

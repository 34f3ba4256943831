/* lua_result.h: a statement's result as Lua rows: an array of tables keyed
 * by column name, with rows.columns (names in order) and rows.affected
 * (the command's count, when it reports one).  Values by type OID, as
 * DESIGN.md "Results" says: integers, numbers (numeric as text with the
 * engine's numeric = "string"), booleans, dbpool.null, raw bytea, json and
 * jsonb through lua-cjson, arrays as Lua arrays, the rest as text, unless
 * this Lua state's decoders for the pool say otherwise. */
#ifndef DBP_LUA_RESULT_H
#define DBP_LUA_RESULT_H

#include "compat.h"
#include "pool.h"
#include "result.h"

/* Pushes r's rows, read with p's options and this state's decoders for p,
 * then frees r.  Raises, naming the column, what a decoder (or lua-cjson)
 * raised, r freed; and for lack of memory (r is then lost). */
void dbp_lua_push_result(lua_State *L, dbp_pool *p, dbp_result *r);

#endif

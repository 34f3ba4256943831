/* lua_array.h: a Lua array as a PostgreSQL array literal, for
 * dbpool.array(t) (lua_array.c). */
#ifndef DBP_LUA_ARRAY_H
#define DBP_LUA_ARRAY_H

#include "compat.h"

/* Pushes the array literal of the Lua array at idx: "{1,\"a b\",NULL}",
 * nested tables as further dimensions ("{{1,2},{3,4}}"), {} as "{}".
 * Elements: numbers, strings (always quoted, '"' and '\' escaped),
 * booleans, dbpool.null (NULL), dbpool.bytea(s) (hex), dbpool.json(v) (its
 * text), dbpool.array(t) (a sub-array).  Raises "bad argument #1 to
 * 'array' (...)", naming the element by its path ([2][1]), for: a hole (nil
 * inside 1..#t), a key other than 1..#t, a value of another type, a string
 * with a zero byte, sub-arrays of unequal lengths or mixed with scalars
 * (PostgreSQL's arrays are rectangular), more than 6 dimensions
 * (PostgreSQL's MAXDIM). */
void dbp_lua_push_array_literal(lua_State *L, int idx);

#endif

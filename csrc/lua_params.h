/* lua_params.h: a statement's SQL and parameters from the Lua stack, the
 * one place Lua values become the texts libpq sends. */
#ifndef DBP_LUA_PARAMS_H
#define DBP_LUA_PARAMS_H

#include "compat.h"
#include "conn.h"

#define DBP_LUA_STACK_PARAMS 16

/* stmt points into the arrays below, or, for more parameters, into
 * scratch memory the garbage collector owns (nothing leaks on a raise). */
typedef struct dbp_lua_params {
    dbp_statement stmt;
    const char *values[DBP_LUA_STACK_PARAMS];
    int lengths[DBP_LUA_STACK_PARAMS];
    int formats[DBP_LUA_STACK_PARAMS];
} dbp_lua_params;

/* Fills prm with the SQL text at sql_idx and the n values from first on as
 * $1..$n (the extended protocol).  Converted texts are pushed on the stack,
 * which keeps them alive until the calling C function returns: the caller
 * must not pop them.  Raises before anything is sent: a non-string SQL, a
 * value that has no SQL meaning (tables, functions, other userdata). */
void dbp_lua_read_statement(lua_State *L, int sql_idx, int first, int n, dbp_lua_params *prm);

/* The SQL text at sql_idx alone, for the simple query protocol (several
 * statements, no parameters). */
void dbp_lua_read_simple(lua_State *L, int sql_idx, dbp_lua_params *prm);

#endif

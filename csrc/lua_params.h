/* lua_params.h: a statement's SQL and parameters from Lua, the one place Lua
 * values become what libpq sends (lua_params.c).
 *
 * Parameters: nil and dbpool.null are SQL NULL; booleans, numbers and
 * strings go as text (a string with a zero byte is refused: text cannot
 * hold one); dbpool.bytea(s) goes as binary bytea, byte for byte;
 * dbpool.array(t) as an array literal and dbpool.json(v) as lua-cjson's
 * text, both of a type the server infers (unknown, OID 0).  At most
 * PostgreSQL's 65,535.  SQL text with a zero byte is refused too: C would
 * cut it there. */
#ifndef DBP_LUA_PARAMS_H
#define DBP_LUA_PARAMS_H

#include "compat.h"
#include "conn.h"

#define DBP_LUA_STACK_PARAMS 16
#define DBP_LUA_NUMBER_TEXT 40          /* room for any number's text */
#define DBP_LUA_MAX_PARAMS 65535        /* PostgreSQL's limit (the protocol's Int16) */
#define DBP_PARAM_MT "dbpool.Param"     /* metatable of typed parameters */

/* stmt points into the arrays below, or, for more parameters, into scratch
 * memory the garbage collector owns (nothing leaks on a raise). */
typedef struct dbp_lua_params {
    dbp_statement stmt;
    const char *values[DBP_LUA_STACK_PARAMS];
    int lengths[DBP_LUA_STACK_PARAMS];
    int formats[DBP_LUA_STACK_PARAMS];
    unsigned types[DBP_LUA_STACK_PARAMS];
    char numbers[DBP_LUA_STACK_PARAMS][DBP_LUA_NUMBER_TEXT];
} dbp_lua_params;

/* Fills prm with the SQL text at sql_idx and the n values from first on as
 * $1..$n (the extended protocol).  fname names the Lua function in errors.
 * The values must stay on the stack until the statement is sent.  Raises
 * before anything is sent: SQL that is not a string or holds a zero byte, a
 * value that has no SQL meaning, more than 65,535 parameters. */
void dbp_lua_read_statement(lua_State *L, int sql_idx, int first, int n, dbp_lua_params *prm,
                            const char *fname);

/* The same with the parameters in the array at params_idx: params[1..n],
 * n = params.n when set (trailing nils), else #params. */
void dbp_lua_read_statement_table(lua_State *L, int sql_idx, int params_idx, dbp_lua_params *prm,
                                  const char *fname);

/* The SQL text at sql_idx alone, for the simple query protocol (several
 * statements, no parameters). */
void dbp_lua_read_simple(lua_State *L, int sql_idx, dbp_lua_params *prm, const char *fname);

/* The string at idx, raising (bad argument idx to fname) when it is not a
 * string or holds a zero byte, which C would silently cut there. */
const char *dbp_lua_check_cstring(lua_State *L, int idx, const char *fname, size_t *len);

/* The shortest text of the number at idx that the server reads back as
 * the same value (integers exactly; NaN, Infinity, -Infinity) into buf
 * (DBP_LUA_NUMBER_TEXT bytes). */
void dbp_lua_number_text(lua_State *L, int idx, char *buf);

/* The kind of the typed parameter at idx ("bytea", "array", "json"; the
 * string lives as long as the parameter), or NULL for any other value. */
const char *dbp_lua_is_typed(lua_State *L, int idx);

/* Creates the typed-parameter metatable and adds core.null (SQL NULL),
 * core.bytea, core.array, core.json,
 * core.check_statement and core.check_statement_table to the core table on
 * top of the stack. */
void dbp_lua_open_params(lua_State *L);

#endif

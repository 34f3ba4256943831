/* lua_decode.h: one value's text as a Lua value, by the kind its type
 * gives (DESIGN.md "Results"): numbers, booleans, bytea, a call (lua-cjson
 * for json and jsonb, or a decoder of the engine's `decoders`), and arrays
 * of those, parsed from PostgreSQL's array text.  lua_result.c decides the
 * kind once per column and calls these for the kinds that are not plain
 * text, integer, float or boolean. */
#ifndef DBP_LUA_DECODE_H
#define DBP_LUA_DECODE_H

#include <stddef.h>

#include <stdbool.h>

#include "compat.h"

typedef enum dbp_val_kind {
    DBP_VAL_TEXT = 0,   /* the text itself */
    DBP_VAL_BOOL,       /* 't' or 'f' */
    DBP_VAL_INT,        /* digits: an integer (LuaJIT: beyond 2^53 the text) */
    DBP_VAL_FLOAT,      /* a number (strtod: also NaN, Infinity, -Infinity) */
    DBP_VAL_BYTEA,      /* hex or escape format: the raw bytes */
    DBP_VAL_CALL,       /* fn(text) -> value: lua-cjson's decode or a decoder */
    DBP_VAL_ARRAY       /* PostgreSQL array text: a Lua array of elem values */
} dbp_val_kind;

/* How a column's values are read; fn and array_mt are stack indices of the
 * caller's frame (0: none). */
typedef struct dbp_decode {
    unsigned char kind;     /* dbp_val_kind */
    unsigned char elem;     /* DBP_VAL_ARRAY: its elements' kind (never an array) */
    char delim;             /* DBP_VAL_ARRAY: between elements (pg_type.typdelim) */
    int fn;                 /* DBP_VAL_CALL, or an array of them: the function */
    int array_mt;           /* DBP_VAL_ARRAY: a metatable for each array (lua-cjson's
                               array_mt, so that cjson.encode writes [] for {}), or 0 */
} dbp_decode;

/* Pushes the value of kind (not DBP_VAL_ARRAY) for the len bytes at v, which
 * need no NUL after them.  DBP_VAL_CALL calls the function at fn, which may
 * raise.  A bytea value that does not unescape comes back as its text. */
void dbp_lua_push_scalar(lua_State *L, dbp_val_kind kind, int fn, const char *v, size_t len);

/* Pushes the array text v (len bytes) as a Lua array, nested for each
 * dimension: elements decoded as d->elem (d->fn for calls), SQL NULL
 * elements as dbpool.null.  Lower bounds ("[0:1]={1,2}") are dropped: a Lua
 * array starts at 1.  Text that is not an array comes back as it is.  May
 * raise where a call does, or for memory. */
void dbp_lua_push_array(lua_State *L, const dbp_decode *d, const char *v, size_t len);

/* ===== This Lua state's codecs ==========================================
 * lua-cjson's functions (core.set_json, from lua/dbpool/init.lua) and each
 * pool's decoders (core.set_decoders: functions cannot cross Lua states, so
 * every state keeps its own, in its registry). */

/* Pushes the codec table's field ("decode", "encode", "array_mt") or nil. */
void dbp_lua_push_codec(lua_State *L, const char *field);

/* Pushes the decoders of pool (a table: [oid] = function, and .arrays =
 * {[array oid] = element oid} for arrays of types not built in) and returns
 * 1, or pushes nothing and returns 0 when this process set none at all
 * (then no lookup is made) or this state none for that pool. */
int dbp_lua_push_decoders(lua_State *L, const void *pool);
/* False until some pool got decoders (core.set_decoders): until then every
 * result of every pool reads the built-in way.  No lua_State: the FFI
 * path asks it before it builds rows itself. */
bool dbp_lua_decoders_maybe(void);

/* Adds core.set_json, core.set_decoders and core.builtin_type to the table
 * on top. */
void dbp_lua_open_decode(lua_State *L);

#endif

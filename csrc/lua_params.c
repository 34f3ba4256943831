/* lua_params.c: Lua values as statement parameters (lua_params.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua_array.h"
#include "lua_decode.h"
#include "lua_params.h"

enum { OID_BYTEA = 17 };        /* pg_type.dat */

const char *dbp_lua_check_cstring(lua_State *L, int idx, const char *fname, size_t *len)
{
    size_t n;
    const char *s;

    if (lua_type(L, idx) != LUA_TSTRING)
        luaL_error(L, "bad argument #%d to '%s' (string expected, got %s)", idx - 1, fname,
                   luaL_typename(L, idx));
    s = lua_tolstring(L, idx, &n);
    if (strlen(s) != n)
        luaL_error(L, "bad argument #%d to '%s' (string contains a zero byte at byte %d)",
                   idx, fname, (int)strlen(s) + 1);
    if (len != NULL)
        *len = n;
    return s;
}

/* Text for a Lua number that the server parses back to the same value:
 * integers exactly, floats in the shortest form that round-trips. */
void dbp_lua_number_text(lua_State *L, int idx, char *buf)
{
    lua_Number v = lua_tonumber(L, idx);

    if (dbp_compat_isinteger(L, idx)) {                  /* 5.4: exact; LuaJIT: %.0f, exact too */
        dbp_compat_integer_text(L, idx, buf, DBP_LUA_NUMBER_TEXT);
    } else if (isnan(v)) {
        strcpy(buf, "NaN");
    } else if (isinf(v)) {
        strcpy(buf, v > 0 ? "Infinity" : "-Infinity");
    } else {
        snprintf(buf, DBP_LUA_NUMBER_TEXT, "%.15g", (double)v);
        if (strtod(buf, NULL) != (double)v)
            snprintf(buf, DBP_LUA_NUMBER_TEXT, "%.17g", (double)v);
    }
}

/* Where parameter values go: prm's arrays or scratch, and its number texts. */
typedef struct slots {
    const char **values;
    int *lengths, *formats;
    unsigned *types;
    char (*numbers)[DBP_LUA_NUMBER_TEXT];
} slots;

static void room_for_params(lua_State *L, int64_t n, dbp_lua_params *prm, slots *sl,
                            const char *fname)
{
    size_t each = sizeof(char *) + 2 * sizeof(int) + sizeof(unsigned) + DBP_LUA_NUMBER_TEXT;
    char *mem;

    if (n > DBP_LUA_MAX_PARAMS) {
        char count[32];
        snprintf(count, sizeof count, "%lld", (long long)n);
        luaL_error(L, "bad argument to '%s' (%s parameters; PostgreSQL takes at most 65535)",
                   fname, count);
    }
    if (n <= DBP_LUA_STACK_PARAMS) {
        *sl = (slots){prm->values, prm->lengths, prm->formats, prm->types, prm->numbers};
        return;
    }
    mem = lua_newuserdata(L, (size_t)n * each);          /* GC-owned: nothing leaks on a raise */
    sl->numbers = (char (*)[DBP_LUA_NUMBER_TEXT])(void *)mem;
    sl->values = (const char **)(void *)(mem + (size_t)n * DBP_LUA_NUMBER_TEXT);
    sl->lengths = (int *)(void *)(sl->values + n);
    sl->formats = sl->lengths + n;
    sl->types = (unsigned *)(void *)(sl->formats + n);
}

/* How parameter i was given, for errors: "parameter $3" or "params[3]". */
typedef struct origin {
    const char *fname;
    int arg;            /* the argument's position as the caller counts */
    bool in_table;
} origin;

static void bad_param(lua_State *L, const origin *o, int i, const char *why)
{
    if (o->in_table)
        luaL_error(L, "bad argument #%d to '%s' (params[%d] %s)", o->arg, o->fname, i + 1, why);
    luaL_error(L, "bad argument #%d to '%s' (parameter $%d %s)", o->arg, o->fname, i + 1, why);
}

const char *dbp_lua_is_typed(lua_State *L, int idx)
{
    const char *kind;
    bool typed = false;

    if (lua_type(L, idx) != LUA_TTABLE || !lua_getmetatable(L, idx))
        return NULL;
    luaL_getmetatable(L, DBP_PARAM_MT);
    typed = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    if (!typed)
        return NULL;
    lua_rawgeti(L, idx, 4);
    kind = lua_tostring(L, -1);             /* a literal of core_*: the table keeps it */
    lua_pop(L, 1);
    return kind;
}

/* A typed parameter at idx (dbpool.bytea, dbpool.array, dbpool.json): a
 * table {value, type OID, format, kind} under DBP_PARAM_MT. */
static bool read_typed(lua_State *L, int idx, const slots *sl, int i)
{
    size_t len;

    if (dbp_lua_is_typed(L, idx) == NULL)
        return false;
    lua_rawgeti(L, idx, 1);                 /* the value; the table keeps it alive */
    sl->values[i] = lua_tolstring(L, -1, &len);
    lua_rawgeti(L, idx, 2);                 /* value, oid */
    lua_rawgeti(L, idx, 3);                 /* value, oid, format */
    sl->types[i] = (unsigned)lua_tonumber(L, -2);
    sl->formats[i] = (int)lua_tonumber(L, -1);
    lua_pop(L, 3);
    sl->lengths[i] = (int)len;
    return true;
}

/* Sets parameter i (0-based) from the value at idx. */
static void read_param(lua_State *L, int idx, const slots *sl, int i, const origin *o)
{
    size_t len = 0;

    sl->values[i] = NULL;
    sl->lengths[i] = sl->formats[i] = 0;
    sl->types[i] = 0;
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        return;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL)        /* dbpool.null */
            return;
        break;
    case LUA_TBOOLEAN:
        sl->values[i] = lua_toboolean(L, idx) ? "true" : "false";
        return;
    case LUA_TNUMBER:
        dbp_lua_number_text(L, idx, sl->numbers[i]);
        sl->values[i] = sl->numbers[i];
        return;
    case LUA_TSTRING:
        sl->values[i] = lua_tolstring(L, idx, &len);
        if (strlen(sl->values[i]) != len)
            bad_param(L, o, i, "contains a zero byte, which text cannot hold: use "
                               "dbpool.bytea(s) for binary data");
        return;
    case LUA_TTABLE:
        if (read_typed(L, idx, sl, i))
            return;
        break;
    default:
        break;
    }
    lua_pushfstring(L, "must be a string, number, boolean, nil, dbpool.null, dbpool.bytea(s), "
                       "dbpool.array(t) or dbpool.json(v), got %s", luaL_typename(L, idx));
    bad_param(L, o, i, lua_tostring(L, -1));
}

static void set_stmt(dbp_lua_params *prm, const slots *sl, int n)
{
    prm->stmt.nparams = n;
    prm->stmt.simple = false;
    prm->stmt.values = sl->values;
    prm->stmt.lengths = sl->lengths;
    prm->stmt.formats = sl->formats;
    prm->stmt.types = sl->types;
}

void dbp_lua_read_statement(lua_State *L, int sql_idx, int first, int n, dbp_lua_params *prm,
                            const char *fname)
{
    origin o = {fname, 0, false};
    slots sl;

    prm->stmt.sql = dbp_lua_check_cstring(L, sql_idx, fname, NULL);
    room_for_params(L, n, prm, &sl, fname);
    for (int i = 0; i < n; i++) {
        o.arg = first + i;
        read_param(L, first + i, &sl, i, &o);
    }
    set_stmt(prm, &sl, n);
}

void dbp_lua_read_statement_table(lua_State *L, int sql_idx, int params_idx, dbp_lua_params *prm,
                                  const char *fname)
{
    origin o = {fname, params_idx, true};
    lua_Integer n;
    slots sl;

    prm->stmt.sql = dbp_lua_check_cstring(L, sql_idx, fname, NULL);
    luaL_checktype(L, params_idx, LUA_TTABLE);
    lua_getfield(L, params_idx, "n");
    if (lua_isnil(L, -1))
        n = (lua_Integer)lua_rawlen(L, params_idx);
    else if (lua_type(L, -1) == LUA_TNUMBER && dbp_compat_isinteger(L, -1) && lua_tonumber(L, -1) >= 0)
        n = (lua_Integer)lua_tonumber(L, -1);
    else
        return (void)luaL_error(L, "bad argument #%d to '%s' (params.n must be a whole number "
                                   ">= 0, got %s)", params_idx, fname, luaL_typename(L, -1));
    lua_pop(L, 1);
    room_for_params(L, (int64_t)n, prm, &sl, fname);
    for (int i = 0; i < (int)n; i++) {
        lua_rawgeti(L, params_idx, i + 1);     /* kept alive by the params table */
        read_param(L, lua_gettop(L), &sl, i, &o);
        lua_pop(L, 1);
    }
    set_stmt(prm, &sl, (int)n);
}

void dbp_lua_read_simple(lua_State *L, int sql_idx, dbp_lua_params *prm, const char *fname)
{
    memset(&prm->stmt, 0, sizeof prm->stmt);
    prm->stmt.sql = dbp_lua_check_cstring(L, sql_idx, fname, NULL);
    prm->stmt.simple = true;
}

/* core.check_statement(fname, sql, ...): raises as conn:query would on bad
 * SQL or parameters ($1 at argument 3, as for a method), naming fname.
 * For the Lua paths that read a statement only after the checkout. */
static int core_check_statement(lua_State *L)
{
    dbp_lua_params prm;
    const char *fname = luaL_checkstring(L, 1);

    dbp_lua_read_statement(L, 2, 3, lua_gettop(L) - 2, &prm, fname);
    return 0;
}

/* core.check_statement_table(fname, sql, params): the same for
 * query_params. */
static int core_check_statement_table(lua_State *L)
{
    dbp_lua_params prm;
    const char *fname = luaL_checkstring(L, 1);

    dbp_lua_read_statement_table(L, 2, 3, &prm, fname);
    return 0;
}

/* Pushes a typed parameter {value, oid, format, kind} for the value on
 * top, which it replaces. */
static void make_typed(lua_State *L, unsigned oid, int format, const char *kind)
{
    lua_createtable(L, 4, 0);                            /* value, param */
    lua_insert(L, -2);                                   /* param, value */
    lua_rawseti(L, -2, 1);
    lua_pushinteger(L, (lua_Integer)oid);
    lua_rawseti(L, -2, 2);
    lua_pushinteger(L, format);
    lua_rawseti(L, -2, 3);
    lua_pushstring(L, kind);
    lua_rawseti(L, -2, 4);
    luaL_setmetatable(L, DBP_PARAM_MT);                  /* param */
}

/* core.bytea(s) -> a parameter that sends s as bytea, byte for byte. */
static int core_bytea(lua_State *L)
{
    if (lua_type(L, 1) != LUA_TSTRING)
        luaL_error(L, "bad argument #1 to 'bytea' (string expected, got %s)", luaL_typename(L, 1));
    lua_settop(L, 1);
    make_typed(L, OID_BYTEA, 1, "bytea");
    return 1;
}

/* core.array(t) -> a parameter that sends t as an array literal
 * (lua_array.c), its type left to the server. */
static int core_array(lua_State *L)
{
    if (lua_type(L, 1) != LUA_TTABLE || dbp_lua_is_typed(L, 1))
        luaL_error(L, "bad argument #1 to 'array' (a Lua array expected, got %s)",
                   dbp_lua_is_typed(L, 1) ? "a typed parameter" : luaL_typename(L, 1));
    dbp_lua_push_array_literal(L, 1);                    /* t, literal */
    make_typed(L, 0, 0, "array");
    return 1;
}

/* core.json(v) -> a parameter that sends v as JSON text (lua-cjson's
 * encode), its type left to the server.  nil is refused: dbpool.null is
 * JSON's null. */
static int core_json(lua_State *L)
{
    int t = lua_type(L, 1);

    if (t == LUA_TNIL || t == LUA_TNONE || t == LUA_TFUNCTION || t == LUA_TTHREAD ||
        t == LUA_TUSERDATA || dbp_lua_is_typed(L, 1))
        luaL_error(L, "bad argument #1 to 'json' (a table, string, number, boolean or "
                      "dbpool.null expected, got %s)",
                   dbp_lua_is_typed(L, 1) ? "a typed parameter" : luaL_typename(L, 1));
    lua_settop(L, 1);
    dbp_lua_push_codec(L, "encode");                     /* v, encode */
    if (!lua_isfunction(L, -1))
        luaL_error(L, "dbpool.json needs lua-cjson: load dbpool with require \"dbpool\"");
    lua_pushvalue(L, 1);                                 /* v, encode, v */
    if (lua_pcall(L, 1, 1, 0) != LUA_OK)                 /* v, text | v, error */
        luaL_error(L, "bad argument #1 to 'json' (lua-cjson cannot encode it: %s)",
                   lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "an error");
    make_typed(L, 0, 0, "json");
    return 1;
}

void dbp_lua_open_params(lua_State *L)
{
    luaL_newmetatable(L, DBP_PARAM_MT);
    lua_pushliteral(L, DBP_PARAM_MT);
    lua_setfield(L, -2, "__name");
    lua_pushliteral(L, DBP_PARAM_MT);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
    lua_pushcfunction(L, core_bytea);
    lua_setfield(L, -2, "bytea");
    lua_pushcfunction(L, core_array);
    lua_setfield(L, -2, "array");
    lua_pushcfunction(L, core_json);
    lua_setfield(L, -2, "json");
    /* SQL NULL is the NULL light userdata: the same value as cjson.null and
     * ngx.null, so rows encode to JSON null unchanged. */
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");
    lua_pushcfunction(L, core_check_statement);
    lua_setfield(L, -2, "check_statement");
    lua_pushcfunction(L, core_check_statement_table);
    lua_setfield(L, -2, "check_statement_table");
}

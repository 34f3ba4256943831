/* lua_params.c: Lua values as statement parameters (lua_params.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lua_params.h"

/* Text for a Lua number that the server parses back to the same value:
 * integers exactly, floats in the shortest form that round-trips. */
static void push_number_text(lua_State *L, int idx)
{
    char buf[40];
    lua_Number v = lua_tonumber(L, idx);

    if (dbp_compat_isinteger(L, idx) && fabs((double)v) < 9.2e18) {
        dbp_compat_integer_text(L, idx, buf, sizeof buf);
    } else if (isnan(v)) {
        snprintf(buf, sizeof buf, "NaN");
    } else if (isinf(v)) {
        snprintf(buf, sizeof buf, v > 0 ? "Infinity" : "-Infinity");
    } else {
        snprintf(buf, sizeof buf, "%.15g", (double)v);
        if (strtod(buf, NULL) != (double)v)
            snprintf(buf, sizeof buf, "%.17g", (double)v);
    }
    lua_pushstring(L, buf);
}

/* Room for n parameters: prm's arrays, or GC-owned scratch for more. */
static void room_for_params(lua_State *L, int n, dbp_lua_params *prm, const char ***values,
                            int **lengths, int **formats)
{
    char *mem;

    if (n <= DBP_LUA_STACK_PARAMS) {
        *values = prm->values;
        *lengths = prm->lengths;
        *formats = prm->formats;
        return;
    }
    mem = lua_newuserdata(L, (size_t)n * (sizeof(char *) + 2 * sizeof(int)));
    *values = (const char **)(void *)mem;
    *lengths = (int *)(void *)(mem + (size_t)n * sizeof(char *));
    *formats = *lengths + n;
}

/* Sets parameter i (0-based) from the value at idx. */
static void read_param(lua_State *L, int idx, int i, const char **value, int *length,
                       int *format)
{
    size_t len = 0;

    *value = NULL;
    *length = 0;
    *format = 0;
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        return;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL)        /* dbpool.null */
            return;
        break;
    case LUA_TBOOLEAN:
        *value = lua_toboolean(L, idx) ? "true" : "false";
        return;
    case LUA_TNUMBER:
        push_number_text(L, idx);
        *value = lua_tostring(L, -1);
        return;
    case LUA_TSTRING:
        *value = lua_tolstring(L, idx, &len);
        /* Text parameters end at a zero byte; raw bytes (bytea) go in
         * binary format, which the server takes as they are. */
        if (strlen(*value) != len) {
            *format = 1;
            *length = (int)len;
        }
        return;
    default:
        break;
    }
    luaL_error(L,
               "bad argument #%d to 'query' (parameter $%d must be a string, "
               "number, boolean, nil or dbpool.null, got %s)",
               idx, i + 1, luaL_typename(L, idx));
}

void dbp_lua_read_statement(lua_State *L, int sql_idx, int first, int n, dbp_lua_params *prm)
{
    const char **values;
    int *lengths, *formats;

    prm->stmt.sql = luaL_checkstring(L, sql_idx);
    prm->stmt.nparams = n;
    prm->stmt.simple = false;
    luaL_checkstack(L, n + 4, "too many query parameters");
    room_for_params(L, n, prm, &values, &lengths, &formats);
    for (int i = 0; i < n; i++)
        read_param(L, first + i, i, &values[i], &lengths[i], &formats[i]);
    prm->stmt.values = values;
    prm->stmt.lengths = lengths;
    prm->stmt.formats = formats;
}

void dbp_lua_read_simple(lua_State *L, int sql_idx, dbp_lua_params *prm)
{
    memset(&prm->stmt, 0, sizeof prm->stmt);
    prm->stmt.sql = luaL_checkstring(L, sql_idx);
    prm->stmt.simple = true;
}

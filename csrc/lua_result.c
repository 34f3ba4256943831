/* lua_result.c: a statement's result as Lua rows.  Hot: runs once per
 * field, so column kinds are decided once per result and column names are
 * pushed once and reused as keys.  Reads the result through result.h. */
#include <stdlib.h>

#include "lua_result.h"

static void push_field(lua_State *L, const dbp_result *r, int row, int col, dbp_col_kind k)
{
    size_t len = 0;
    const char *v = dbp_result_field(r, row, col, &len);

    if (v == NULL) {
        lua_pushlightuserdata(L, NULL);                  /* dbpool.null */
        return;
    }
    switch (k) {
    case DBP_COL_BOOL:
        lua_pushboolean(L, v[0] == 't');
        break;
    case DBP_COL_INT:
        dbp_compat_push_int64(L, dbp_parse_int(v), v);
        break;
    case DBP_COL_NUMBER:
        lua_pushnumber(L, (lua_Number)strtod(v, NULL));
        break;
    case DBP_COL_BYTEA: {
        size_t n;
        unsigned char *raw = dbp_result_bytea(v, &n);
        if (raw == NULL) {
            lua_pushlstring(L, v, len);
            break;
        }
        lua_pushlstring(L, (const char *)raw, n);
        dbp_result_free_bytes(raw);
        break;
    }
    case DBP_COL_TEXT:
        lua_pushlstring(L, v, len);
        break;
    }
}

void dbp_lua_push_rows(lua_State *L, const dbp_result *r)
{
    int nrows = dbp_result_rows(r), ncols = dbp_result_columns(r);
    int64_t affected = dbp_result_affected(r);
    dbp_col_kind stack_kinds[32], *kinds = stack_kinds;
    int rows, names;

    luaL_checkstack(L, ncols + 6, "too many result columns");
    lua_createtable(L, nrows, 2);                        /* rows */
    rows = lua_gettop(L);
    if (ncols > 32)
        kinds = lua_newuserdata(L, (size_t)ncols * sizeof *kinds);   /* GC-owned */
    names = lua_gettop(L) + 1;
    for (int j = 0; j < ncols; j++) {                    /* rows, [kinds], name1..nameN */
        kinds[j] = dbp_result_column_kind(r, j);
        lua_pushstring(L, dbp_result_column_name(r, j));
    }
    lua_createtable(L, ncols, 0);                        /* ..., columns */
    for (int j = 0; j < ncols; j++) {
        lua_pushvalue(L, names + j);                     /* each name made once */
        lua_rawseti(L, -2, j + 1);
    }
    lua_setfield(L, rows, "columns");
    if (affected >= 0) {
        lua_pushinteger(L, (lua_Integer)affected);
        lua_setfield(L, rows, "affected");
    }
    for (int i = 0; i < nrows; i++) {
        lua_createtable(L, 0, ncols);                    /* ..., row */
        for (int j = 0; j < ncols; j++) {
            lua_pushvalue(L, names + j);
            push_field(L, r, i, j, kinds[j]);
            lua_rawset(L, -3);                           /* row[name] = value */
        }
        lua_rawseti(L, rows, i + 1);
    }
    lua_settop(L, rows);                                 /* rows */
}

void dbp_lua_push_result(lua_State *L, dbp_result *r)
{
    dbp_lua_push_rows(L, r);            /* raises only for memory: r is then lost */
    dbp_result_free(r);
}

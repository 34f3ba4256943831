/* lua_result.c: a PGresult as Lua rows.  Hot: runs once per field, so
 * column kinds are decided once per result and column names are pushed
 * once and reused as keys. */
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "lua_dbpool.h"

/* Type OIDs from PostgreSQL's catalog (pg_type.dat); stable across versions. */
enum { OID_BOOL = 16, OID_BYTEA = 17, OID_INT8 = 20, OID_INT2 = 21, OID_INT4 = 23,
       OID_OID = 26, OID_FLOAT4 = 700, OID_FLOAT8 = 701, OID_NUMERIC = 1700 };

typedef enum kind { K_TEXT, K_BOOL, K_INT, K_NUMBER, K_BYTEA } kind;

static kind kind_of(Oid oid)
{
    switch (oid) {
    case OID_BOOL: return K_BOOL;
    case OID_INT2: case OID_INT4: case OID_INT8: case OID_OID: return K_INT;
    case OID_FLOAT4: case OID_FLOAT8: case OID_NUMERIC: return K_NUMBER;
    case OID_BYTEA: return K_BYTEA;
    default: return K_TEXT;
    }
}

/* The server's text of an integer (int2/4/8, oid, a command's tuple
 * count) as int64: digits only, so a loop instead of strtoll's locale and
 * base handling (200 of the 4,700 instructions of a one-row result). */
static int64_t parse_int(const char *v)
{
    bool negative = *v == '-';
    uint64_t n = 0;

    for (v += negative; *v >= '0' && *v <= '9'; v++)
        n = n * 10 + (uint64_t)(*v - '0');
    /* Unsigned, so that -9223372036854775808 wraps to itself. */
    return negative ? (int64_t)(0 - n) : (int64_t)n;
}

static void push_field(lua_State *L, PGresult *r, int row, int col, kind k)
{
    const char *v;

    if (PQgetisnull(r, row, col)) {
        lua_pushlightuserdata(L, NULL);                  /* dbpool.null */
        return;
    }
    v = PQgetvalue(r, row, col);
    switch (k) {
    case K_BOOL:
        lua_pushboolean(L, v[0] == 't');
        break;
    case K_INT:
        dbp_compat_push_int64(L, parse_int(v), v);
        break;
    case K_NUMBER:
        lua_pushnumber(L, (lua_Number)strtod(v, NULL));
        break;
    case K_BYTEA: {
        size_t n;
        unsigned char *raw = PQunescapeBytea((const unsigned char *)v, &n);
        if (raw == NULL) {
            lua_pushlstring(L, v, (size_t)PQgetlength(r, row, col));
            break;
        }
        lua_pushlstring(L, (const char *)raw, n);
        PQfreemem(raw);
        break;
    }
    case K_TEXT:
        lua_pushlstring(L, v, (size_t)PQgetlength(r, row, col));
        break;
    }
}

void dbp_lua_push_rows(lua_State *L, struct pg_result *r)
{
    int nrows = PQntuples(r), ncols = PQnfields(r);
    const char *tuples = PQcmdTuples(r);
    kind stack_kinds[32], *kinds = stack_kinds;
    int rows, names;

    luaL_checkstack(L, ncols + 6, "too many result columns");
    lua_createtable(L, nrows, 2);                        /* rows */
    rows = lua_gettop(L);
    if (ncols > 32)
        kinds = lua_newuserdata(L, (size_t)ncols * sizeof *kinds);   /* GC-owned */
    names = lua_gettop(L) + 1;
    for (int j = 0; j < ncols; j++) {                    /* rows, [kinds], name1..nameN */
        kinds[j] = kind_of(PQftype(r, j));
        lua_pushstring(L, PQfname(r, j));
    }
    lua_createtable(L, ncols, 0);                        /* ..., columns */
    for (int j = 0; j < ncols; j++) {
        lua_pushvalue(L, names + j);                     /* each name made once */
        lua_rawseti(L, -2, j + 1);
    }
    lua_setfield(L, rows, "columns");
    if (tuples[0] != '\0') {
        lua_pushinteger(L, (lua_Integer)parse_int(tuples));
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

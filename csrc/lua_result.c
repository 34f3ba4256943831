/* lua_result.c: a statement's result as Lua rows.  Hot: runs once per
 * field, so how each column is read (its plan: pgtype.h's kind of its type
 * OID, the engine's numeric option, this state's decoders) is decided once
 * per result, and column names are pushed once and reused as keys.  Plain
 * text, integers, floats and booleans are read right here; everything else
 * through lua_decode.c.  A result whose values call Lua (json through
 * lua-cjson, decoders) is built under lua_pcall, so that a raising call
 * cannot leak the result.  Reads the result through result.h. */
#include <stdlib.h>
#include <string.h>

#include "lua_decode.h"
#include "lua_result.h"
#include "pgtype.h"

enum { STACK_COLS = 32 };

/* What building the rows needs; the plan's stack indices are the building
 * frame's. */
typedef struct build {
    const dbp_result *r;
    dbp_decode *plan;       /* one per column */
    int ncols;
    int col;                /* the column a call decodes, for its error */
    bool calls;             /* some value calls Lua: build under lua_pcall */
} build;

/* Stack indices the planning pushed, 0 not looked up yet, -1 not there. */
typedef struct planning {
    int decoders, json, array_mt;
    bool numeric_text;
} planning;

/* The function that decodes values of type oid, pushed: the decoder this
 * state has for it, else for json and jsonb lua-cjson's decode; or 0. */
static int call_for(lua_State *L, planning *pl, unsigned oid, dbp_type_kind k)
{
    if (pl->decoders > 0) {
        lua_pushinteger(L, (lua_Integer)oid);
        lua_rawget(L, pl->decoders);                     /* ..., decoders[oid] */
        if (lua_isfunction(L, -1))
            return lua_gettop(L);
        lua_pop(L, 1);
    }
    if (k != DBP_TYPE_JSON)
        return 0;
    if (pl->json == 0) {
        dbp_lua_push_codec(L, "decode");                 /* ..., cjson decode */
        pl->json = lua_isfunction(L, -1) ? lua_gettop(L) : -1;
        if (pl->json < 0)
            lua_pop(L, 1);                               /* no lua-cjson: json stays text */
    }
    return pl->json > 0 ? pl->json : 0;
}

/* How a value of type oid (not an array) is read: *kind and its *fn. */
static void plan_value(lua_State *L, planning *pl, unsigned oid, unsigned char *kind, int *fn)
{
    dbp_type_kind k = dbp_type_kind_of(oid);

    *fn = call_for(L, pl, oid, k);
    if (*fn != 0) {
        *kind = DBP_VAL_CALL;
        return;
    }
    switch (k) {
    case DBP_TYPE_BOOL: *kind = DBP_VAL_BOOL; break;
    case DBP_TYPE_INT: *kind = DBP_VAL_INT; break;
    case DBP_TYPE_FLOAT: *kind = DBP_VAL_FLOAT; break;
    case DBP_TYPE_NUMERIC: *kind = pl->numeric_text ? DBP_VAL_TEXT : DBP_VAL_FLOAT; break;
    case DBP_TYPE_BYTEA: *kind = DBP_VAL_BYTEA; break;
    default: *kind = DBP_VAL_TEXT; break;
    }
}

/* The element type of array type oid: built in, or one this state's
 * decoders looked up (decoders.arrays); else 0. */
static unsigned array_elem(lua_State *L, const planning *pl, unsigned oid)
{
    unsigned elem = dbp_type_array_elem(oid);

    if (elem != 0 || pl->decoders <= 0)
        return elem;
    lua_getfield(L, pl->decoders, "arrays");             /* ..., arrays */
    if (lua_istable(L, -1)) {
        lua_pushinteger(L, (lua_Integer)oid);
        lua_rawget(L, -2);                               /* ..., arrays, elem */
        elem = lua_isnumber(L, -1) ? (unsigned)lua_tonumber(L, -1) : 0;
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return elem;
}

static void plan_column(lua_State *L, build *b, planning *pl, int j)
{
    unsigned oid = dbp_result_column_type(b->r, j), elem;
    dbp_decode *d = &b->plan[j];

    memset(d, 0, sizeof *d);
    plan_value(L, pl, oid, &d->kind, &d->fn);            /* a decoder of the array type wins */
    if (d->kind == DBP_VAL_CALL || (elem = array_elem(L, pl, oid)) == 0) {
        b->calls |= d->kind == DBP_VAL_CALL;
        return;
    }
    d->kind = DBP_VAL_ARRAY;
    d->delim = dbp_type_array_delim(oid);
    plan_value(L, pl, elem, &d->elem, &d->fn);
    b->calls |= d->elem == DBP_VAL_CALL;
    if (pl->array_mt == 0) {
        dbp_lua_push_codec(L, "array_mt");               /* ..., cjson.array_mt */
        pl->array_mt = lua_istable(L, -1) ? lua_gettop(L) : -1;
        if (pl->array_mt < 0)
            lua_pop(L, 1);
    }
    d->array_mt = pl->array_mt > 0 ? pl->array_mt : 0;
}

/* Plans every column, pushing what the plans refer to. */
static void plan_columns(lua_State *L, build *b, dbp_pool *p)
{
    planning pl = {0, 0, 0, dbp_pool_config(p)->numeric == DBP_NUMERIC_STRING};

    if (dbp_lua_push_decoders(L, p))                     /* ..., decoders */
        pl.decoders = lua_gettop(L);
    for (int j = 0; j < b->ncols; j++)
        plan_column(L, b, &pl, j);
}

/* A value that is not text, an integer, a float or a boolean. */
static void push_decoded(lua_State *L, build *b, int col, const char *v, size_t len)
{
    const dbp_decode *d = &b->plan[col];

    b->col = col;
    if (d->kind == DBP_VAL_ARRAY)
        dbp_lua_push_array(L, d, v, len);
    else
        dbp_lua_push_scalar(L, (dbp_val_kind)d->kind, d->fn, v, len);
}

static void push_field(lua_State *L, build *b, int row, int col)
{
    size_t len = 0;
    const char *v = dbp_result_field(b->r, row, col, &len);

    if (v == NULL) {
        lua_pushlightuserdata(L, NULL);                  /* dbpool.null */
        return;
    }
    switch (b->plan[col].kind) {
    case DBP_VAL_TEXT:
        lua_pushlstring(L, v, len);
        break;
    case DBP_VAL_INT:
        dbp_compat_push_int64(L, dbp_parse_int(v), v, len);
        break;
    case DBP_VAL_FLOAT:
        lua_pushnumber(L, (lua_Number)strtod(v, NULL));
        break;
    case DBP_VAL_BOOL:
        lua_pushboolean(L, v[0] == 't');
        break;
    default:
        push_decoded(L, b, col, v, len);
        break;
    }
}

/* Pushes the rows of a planned result. */
static void push_rows(lua_State *L, build *b)
{
    int nrows = dbp_result_rows(b->r), ncols = b->ncols;
    int64_t affected = dbp_result_affected(b->r);
    int rows, names;

    luaL_checkstack(L, ncols + 6, "too many result columns");
    lua_createtable(L, nrows, 2);                        /* rows */
    rows = lua_gettop(L);
    names = rows + 1;
    for (int j = 0; j < ncols; j++)                      /* rows, name1..nameN */
        lua_pushstring(L, dbp_result_column_name(b->r, j));
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
            push_field(L, b, i, j);
            lua_rawset(L, -3);                           /* row[name] = value */
        }
        lua_rawseti(L, rows, i + 1);
    }
    lua_settop(L, rows);                                 /* rows */
}

/* lua_pcall'd: args are the values the plan refers to (re-indexed from 1),
 * then the build. */
static int push_rows_protected(lua_State *L)
{
    build *b = lua_touserdata(L, -1);

    lua_pop(L, 1);
    push_rows(L, b);
    return 1;
}

/* Builds the rows under lua_pcall, values from base + 1 on as its
 * arguments; frees r either way; re-raises a call's error naming the
 * column. */
static void push_rows_calling(lua_State *L, build *b, int base, dbp_result *r)
{
    int n = lua_gettop(L) - base;

    for (int j = 0; j < b->ncols; j++) {                 /* indices of the called frame */
        b->plan[j].fn = b->plan[j].fn > 0 ? b->plan[j].fn - base : 0;
        b->plan[j].array_mt = b->plan[j].array_mt > 0 ? b->plan[j].array_mt - base : 0;
    }
    lua_pushcfunction(L, push_rows_protected);
    lua_insert(L, base + 1);                             /* fn, values */
    lua_pushlightuserdata(L, b);
    if (lua_pcall(L, n + 1, 1, 0) == LUA_OK) {           /* rows */
        dbp_result_free(r);
        return;
    }
    if (lua_type(L, -1) == LUA_TSTRING) {                /* the error */
        lua_pushfstring(L, "dbpool: decoding column '%s' (type OID %d): %s",
                        dbp_result_column_name(r, b->col),
                        (int)dbp_result_column_type(r, b->col), lua_tostring(L, -1));
    }
    dbp_result_free(r);
    lua_error(L);
}

void dbp_lua_push_result(lua_State *L, dbp_pool *p, dbp_result *r)
{
    int base = lua_gettop(L);
    dbp_decode stack_plan[STACK_COLS];
    build b = {r, stack_plan, dbp_result_columns(r), 0, false};

    luaL_checkstack(L, 2 * b.ncols + 8, "too many result columns");
    if (b.ncols > STACK_COLS)                            /* GC-owned */
        b.plan = lua_newuserdata(L, (size_t)b.ncols * sizeof *b.plan);
    plan_columns(L, &b, p);
    if (b.calls) {
        push_rows_calling(L, &b, base, r);
    } else {
        push_rows(L, &b);               /* raises only for memory: r is then lost */
        dbp_result_free(r);
    }
    if (lua_gettop(L) > base + 1) {
        lua_replace(L, base + 1);                        /* rows, over what the plan pushed */
        lua_settop(L, base + 1);
    }
}

/* lua_array.c: Lua arrays as PostgreSQL array literals (lua_array.h), as
 * array_in reads them.  The literal grows in a userdata at a fixed stack
 * slot (GC-owned: nothing leaks when a bad element raises), replaced by a
 * bigger one when full. */
#include <stdio.h>
#include <string.h>

#include "lua_array.h"
#include "lua_params.h"

enum { MAX_DIMS = 6 };      /* PostgreSQL's MAXDIM */

typedef struct literal {
    lua_State *L;
    int slot;               /* stack index of the buffer userdata */
    char *p;
    size_t len, cap;
    int path[MAX_DIMS + 1]; /* the element being written, for errors: [2][1] */
    int depth;
    size_t dims[MAX_DIMS];  /* each dimension's length, from its first sub-array */
    int nested[MAX_DIMS];   /* 0 unknown, 1 sub-arrays, 2 elements, at each depth */
} literal;

static void room(literal *b, size_t more)
{
    char *bigger;
    size_t cap = b->cap;

    if (b->len + more <= b->cap)
        return;
    while (cap < b->len + more)
        cap *= 2;
    bigger = lua_newuserdata(b->L, cap);                 /* ..., bigger */
    memcpy(bigger, b->p, b->len);
    lua_replace(b->L, b->slot);                          /* the old one is garbage */
    b->p = bigger;
    b->cap = cap;
}

static void put(literal *b, const char *s, size_t n)
{
    room(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

/* s quoted: "..." with '"' and '\' escaped. */
static void put_quoted(literal *b, const char *s, size_t n)
{
    room(b, 2 * n + 2);
    b->p[b->len++] = '"';
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\')
            b->p[b->len++] = '\\';
        b->p[b->len++] = s[i];
    }
    b->p[b->len++] = '"';
}

/* Raises naming the value at the current path: the array itself at depth
 * 0, else its element [i][j]... */
static void bad(literal *b, const char *why)
{
    char where[16 * (MAX_DIMS + 1)] = "";
    size_t used = 0;

    for (int d = 0; d < b->depth && used < sizeof where; d++)
        used += (size_t)snprintf(where + used, sizeof where - used, "[%d]", b->path[d]);
    if (b->depth == 0)
        luaL_error(b->L, "bad argument #1 to 'array' (the array %s)", why);
    luaL_error(b->L, "bad argument #1 to 'array' (element %s %s)", where, why);
}

/* bytea's hex format, "\x0aff", quoted: "\\x0aff". */
static void put_bytea(literal *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";

    room(b, 2 * n + 5);
    memcpy(b->p + b->len, "\"\\\\x", 4);
    b->len += 4;
    for (size_t i = 0; i < n; i++) {
        b->p[b->len++] = hex[(unsigned char)s[i] >> 4];
        b->p[b->len++] = hex[(unsigned char)s[i] & 15];
    }
    b->p[b->len++] = '"';
}

/* A typed parameter as an element: its text (bytea as hex). */
static void put_typed(literal *b, int idx, const char *kind)
{
    size_t n;
    const char *s;

    lua_rawgeti(b->L, idx, 1);                           /* ..., value (kept by the param) */
    s = lua_tolstring(b->L, -1, &n);
    lua_pop(b->L, 1);
    if (strcmp(kind, "bytea") == 0)
        put_bytea(b, s, n);
    else if (strcmp(kind, "array") == 0)
        put(b, s, n);                                    /* a sub-array, as it is */
    else
        put_quoted(b, s, n);
}

/* Notes whether depth holds sub-arrays (1) or elements (2); raises on a mix. */
static void shape(literal *b, int what)
{
    int *seen = &b->nested[b->depth - 1];

    if (*seen == 0)
        *seen = what;
    else if (*seen != what)
        bad(b, what == 1 ? "is an array where the elements before it are not (PostgreSQL's "
                           "arrays are rectangular)"
                         : "is not an array where the elements before it are (PostgreSQL's "
                           "arrays are rectangular)");
}

static void put_array(literal *b, int idx);

static void put_element(literal *b, int idx)
{
    size_t n;
    const char *s, *kind;
    char num[DBP_LUA_NUMBER_TEXT];

    switch (lua_type(b->L, idx)) {
    case LUA_TNIL:
        bad(b, "is nil (a hole in the array): use dbpool.null for NULL");
        break;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(b->L, idx) != NULL)
            break;
        shape(b, 2);
        put(b, "NULL", 4);                               /* dbpool.null */
        return;
    case LUA_TBOOLEAN:
        shape(b, 2);
        put(b, lua_toboolean(b->L, idx) ? "t" : "f", 1);
        return;
    case LUA_TNUMBER:
        shape(b, 2);
        dbp_lua_number_text(b->L, idx, num);
        put(b, num, strlen(num));
        return;
    case LUA_TSTRING:
        shape(b, 2);
        s = lua_tolstring(b->L, idx, &n);
        if (strlen(s) != n)
            bad(b, "contains a zero byte, which text cannot hold");
        put_quoted(b, s, n);
        return;
    case LUA_TTABLE:
        kind = dbp_lua_is_typed(b->L, idx);
        shape(b, kind == NULL || strcmp(kind, "array") == 0 ? 1 : 2);
        if (kind != NULL)
            put_typed(b, idx, kind);
        else
            put_array(b, idx);
        return;
    default:
        break;
    }
    lua_pushfstring(b->L, "is a %s: elements must be strings, numbers, booleans, dbpool.null, "
                          "dbpool.bytea(s), dbpool.json(v) or arrays", luaL_typename(b->L, idx));
    bad(b, lua_tostring(b->L, -1));
}

/* Raises when t (at idx) has a key other than 1..n. */
static void only_sequence(literal *b, int idx, size_t n)
{
    lua_pushnil(b->L);
    while (lua_next(b->L, idx) != 0) {                   /* ..., key, value */
        int kt = lua_type(b->L, -2);
        lua_pop(b->L, 1);
        if (kt == LUA_TNUMBER && dbp_compat_isinteger(b->L, -1) &&
            lua_tonumber(b->L, -1) >= 1 && lua_tonumber(b->L, -1) <= (lua_Number)n)
            continue;
        if (kt == LUA_TSTRING)
            lua_pushfstring(b->L, "has the key '%s'", lua_tostring(b->L, -1));
        else if (kt == LUA_TNUMBER && dbp_compat_isinteger(b->L, -1) && lua_tonumber(b->L, -1) > 1)
            lua_pushfstring(b->L, "has the key %s beyond its length %d (a hole, a nil, before "
                                  "it? use dbpool.null for NULL)",
                            lua_tostring(b->L, -1), (int)n);
        else if (kt == LUA_TNUMBER)
            lua_pushfstring(b->L, "has the key %s", lua_tostring(b->L, -1));
        else
            lua_pushfstring(b->L, "has a %s key", luaL_typename(b->L, -1));
        lua_pushfstring(b->L, "%s: a Lua array's keys are 1..#t", lua_tostring(b->L, -1));
        bad(b, lua_tostring(b->L, -1));
    }
}

/* The table at idx as "{...}": its elements one level deeper. */
static void put_array(literal *b, int idx)
{
    size_t n = lua_rawlen(b->L, idx);
    size_t *dim = &b->dims[b->depth];

    if (b->depth == MAX_DIMS)
        bad(b, "is a 7th dimension: PostgreSQL's arrays have at most 6");
    if (*dim == (size_t)-1)
        *dim = n;
    else if (*dim != n)
        bad(b, "has another length than the sub-arrays before it (PostgreSQL's arrays are "
               "rectangular)");
    only_sequence(b, idx, n);
    luaL_checkstack(b->L, 4, "array too deep");
    b->depth++;
    put(b, "{", 1);
    for (size_t i = 1; i <= n; i++) {
        if (i > 1)
            put(b, ",", 1);
        b->path[b->depth - 1] = (int)i;
        lua_rawgeti(b->L, idx, (int)i);                  /* ..., t[i] (kept by t) */
        put_element(b, lua_gettop(b->L));
        lua_pop(b->L, 1);
    }
    put(b, "}", 1);
    b->depth--;
}

void dbp_lua_push_array_literal(lua_State *L, int idx)
{
    literal b;

    memset(&b, 0, sizeof b);
    b.L = L;
    b.cap = 64;
    idx = lua_absindex(L, idx);
    b.p = lua_newuserdata(L, b.cap);                     /* ..., buffer */
    b.slot = lua_gettop(L);
    for (int d = 0; d < MAX_DIMS; d++)
        b.dims[d] = (size_t)-1;
    put_array(&b, idx);
    lua_pushlstring(L, b.p, b.len);                      /* ..., buffer, literal */
    lua_remove(L, b.slot);
}

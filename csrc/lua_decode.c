/* lua_decode.c: values that are not plain text, integers, floats or
 * booleans (lua_decode.h).  Array text is parsed as PostgreSQL's array_in
 * reads it: "{1,2}", "{{1,2},{3,4}}", "{}", "[0:1]={1,2}", elements quoted
 * ("a,b", "\"", "NULL") or not (abc, NULL for SQL NULL), backslash escapes
 * in both. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lua_decode.h"
#include "lua_pool.h"
#include "pgtype.h"
#include "result.h"

/* Deeper than PostgreSQL's 6 dimensions (MAXDIM) is not an array it sent. */
enum { MAX_DEPTH = 6, SMALL_SCRATCH = 256 };

static void push_bytea(lua_State *L, const char *v, size_t len)
{
    size_t n;
    unsigned char *raw;

    if (v[len] != '\0') {                       /* PQunescapeBytea reads to a NUL */
        lua_pushlstring(L, v, len);
        return;
    }
    raw = dbp_result_bytea(v, &n);
    if (raw == NULL) {
        lua_pushlstring(L, v, len);
        return;
    }
    lua_pushlstring(L, (const char *)raw, n);   /* may raise for memory: raw is then lost */
    dbp_result_free_bytes(raw);
}

void dbp_lua_push_scalar(lua_State *L, dbp_val_kind kind, int fn, const char *v, size_t len)
{
    switch (kind) {
    case DBP_VAL_BOOL:
        lua_pushboolean(L, v[0] == 't');
        break;
    case DBP_VAL_INT:
        dbp_compat_push_int64(L, dbp_parse_int(v), v, len);
        break;
    case DBP_VAL_FLOAT:
        lua_pushnumber(L, (lua_Number)strtod(v, NULL));    /* stops at the element's end */
        break;
    case DBP_VAL_BYTEA:
        push_bytea(L, v, len);
        break;
    case DBP_VAL_CALL:
        lua_pushvalue(L, fn);                              /* fn */
        lua_pushlstring(L, v, len);                        /* fn, text */
        lua_call(L, 1, 1);                                 /* value */
        break;
    default:
        lua_pushlstring(L, v, len);
        break;
    }
}

/* ===== Arrays =========================================================== */

typedef struct parse {
    const char *s, *end;
    char *scratch;          /* room for the longest element and a NUL */
    const dbp_decode *d;
} parse;

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static void skip_space(parse *p)
{
    while (p->s < p->end && is_space(*p->s))
        p->s++;
}

/* A quoted element: its text, unescaped, into scratch.  False when the
 * closing quote is missing. */
static int read_quoted(parse *p, size_t *len)
{
    size_t n = 0;

    for (p->s++; p->s < p->end; p->s++) {
        char c = *p->s;
        if (c == '"') {
            p->s++;
            p->scratch[n] = '\0';
            *len = n;
            return 1;
        }
        if (c == '\\' && ++p->s == p->end)
            return 0;
        p->scratch[n++] = *p->s;
    }
    return 0;
}

/* An unquoted element, up to the delimiter or '}', trailing blanks off.
 * *text points into the array when no backslash was seen (copy 0), else at
 * scratch.  *null: it is the bare word NULL. */
static int read_bare(parse *p, const char **text, size_t *len, int copy, int *null)
{
    const char *start = p->s;
    size_t n = 0, kept = 0;     /* kept: length up to the last non-blank or escaped byte */
    int escaped = 0;

    for (; p->s < p->end && *p->s != p->d->delim && *p->s != '}'; p->s++) {
        char c = *p->s;
        if (c == '\\') {
            if (++p->s == p->end)
                return 0;
            escaped = 1;
            p->scratch[n++] = *p->s;
            kept = n;
            continue;
        }
        if (c == '{' || c == '"')
            return 0;
        p->scratch[n++] = c;
        if (!is_space(c))
            kept = n;
    }
    if (p->s == p->end)
        return 0;
    *null = !escaped && kept == 4 && strncasecmp(start, "NULL", 4) == 0;
    *len = kept;
    p->scratch[kept] = '\0';
    *text = (escaped || copy) ? p->scratch : start;
    return 1;
}

static int read_element(lua_State *L, parse *p)
{
    const char *text = p->scratch;
    size_t len;
    int null = 0;

    if (*p->s == '"') {
        if (!read_quoted(p, &len))
            return 0;
    } else if (!read_bare(p, &text, &len, p->d->elem == DBP_VAL_BYTEA, &null)) {
        return 0;
    }
    if (null)
        lua_pushlightuserdata(L, NULL);                  /* dbpool.null */
    else
        dbp_lua_push_scalar(L, (dbp_val_kind)p->d->elem, p->d->fn, text, len);
    return 1;
}

static void new_array(lua_State *L, const parse *p)
{
    lua_newtable(L);
    if (p->d->array_mt != 0) {
        lua_pushvalue(L, p->d->array_mt);
        lua_setmetatable(L, -2);
    }
}

/* At '{': pushes one dimension's table, its elements (or sub-arrays) in
 * order.  False on text that is not an array. */
static int read_level(lua_State *L, parse *p, int depth)
{
    int n = 0;

    new_array(L, p);                                     /* ..., array */
    p->s++;
    skip_space(p);
    if (p->s < p->end && *p->s == '}') {
        p->s++;
        return 1;
    }
    for (;;) {
        skip_space(p);
        if (p->s == p->end)
            return 0;
        if (*p->s == '{') {
            if (depth == MAX_DEPTH || !read_level(L, p, depth + 1))
                return 0;
        } else if (!read_element(L, p)) {
            return 0;
        }
        lua_rawseti(L, -2, ++n);                         /* array[n] = value */
        skip_space(p);
        if (p->s == p->end)
            return 0;
        if (*p->s == p->d->delim) {
            p->s++;
        } else if (*p->s == '}') {
            p->s++;
            return 1;
        } else {
            return 0;
        }
    }
}

void dbp_lua_push_array(lua_State *L, const dbp_decode *d, const char *v, size_t len)
{
    char small[SMALL_SCRATCH];
    parse p = {v, v + len, small, d};
    int base = lua_gettop(L), big = len >= sizeof small;

    luaL_checkstack(L, MAX_DEPTH + 8, "array too deep");
    if (big)                                             /* GC-owned: nothing leaks on a raise */
        p.scratch = lua_newuserdata(L, len + 1);
    if (len > 0 && *p.s == '[') {                        /* "[0:1]={...}": bounds, dropped */
        const char *eq = memchr(p.s, '=', len);
        p.s = eq != NULL ? eq + 1 : p.end;
    }
    skip_space(&p);
    if (p.s < p.end && *p.s == '{' && read_level(L, &p, 1)) {
        skip_space(&p);
        if (p.s == p.end) {
            if (big)
                lua_replace(L, base + 1);                /* the array, over the scratch */
            return;
        }
    }
    lua_settop(L, base);                                 /* not an array: its text */
    lua_pushlstring(L, v, len);
}

/* ===== This Lua state's codecs ========================================== */

static const char codecs_key = 0;     /* registry[&codecs_key] = { decode=, encode=,
                                          array_mt=, pools = { [pool] = decoders } } */
/* Pools given decoders by any Lua state of the process: while none are,
 * no result looks for them. */
static int decoders_set = 0;

/* The codec table on top, made on first use. */
static void push_codecs(lua_State *L)
{
    lua_pushlightuserdata(L, (void *)&codecs_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    if (!lua_isnil(L, -1))
        return;
    lua_pop(L, 1);
    lua_newtable(L);                                     /* codecs */
    lua_newtable(L);
    lua_setfield(L, -2, "pools");
    lua_pushlightuserdata(L, (void *)&codecs_key);
    lua_pushvalue(L, -2);
    lua_rawset(L, LUA_REGISTRYINDEX);
}

void dbp_lua_push_codec(lua_State *L, const char *field)
{
    push_codecs(L);                                      /* codecs */
    lua_getfield(L, -1, field);                          /* codecs, value */
    lua_remove(L, -2);
}

bool dbp_lua_decoders_maybe(void)
{
    return __atomic_load_n(&decoders_set, __ATOMIC_RELAXED) != 0;
}

int dbp_lua_push_decoders(lua_State *L, const void *pool)
{
    if (__atomic_load_n(&decoders_set, __ATOMIC_RELAXED) == 0)
        return 0;
    push_codecs(L);
    lua_getfield(L, -1, "pools");                        /* codecs, pools */
    lua_pushlightuserdata(L, (void *)pool);
    lua_rawget(L, -2);                                   /* codecs, pools, decoders */
    lua_replace(L, -3);
    lua_pop(L, 1);                                       /* decoders */
    if (lua_istable(L, -1))
        return 1;
    lua_pop(L, 1);
    return 0;
}

/* core.set_json(decode, encode[, array_mt]): lua-cjson's functions, used for
 * json and jsonb results and for dbpool.json parameters. */
static int core_set_json(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    push_codecs(L);                                      /* ..., codecs */
    lua_pushvalue(L, 1);
    lua_setfield(L, -2, "decode");
    lua_pushvalue(L, 2);
    lua_setfield(L, -2, "encode");
    lua_pushvalue(L, 3);                                 /* nil clears it */
    lua_setfield(L, -2, "array_mt");
    return 0;
}

/* core.set_decoders(pool, decoders | nil): this state's decoders of pool,
 * as dbp_lua_push_decoders gives them back (the table itself: the Lua layer
 * fills in OIDs it looks up later). */
static int core_set_decoders(lua_State *L)
{
    dbp_pool *pool = dbp_lua_test_pool(L, 1);

    if (pool == NULL)
        luaL_argerror(L, 1, "dbpool.Pool expected");
    if (!lua_isnil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        __atomic_store_n(&decoders_set, 1, __ATOMIC_RELAXED);
    }
    push_codecs(L);
    lua_getfield(L, -1, "pools");                        /* ..., codecs, pools */
    lua_pushlightuserdata(L, pool);
    lua_pushvalue(L, 2);
    lua_rawset(L, -3);                                   /* pools[pool] = decoders */
    return 0;
}

/* core.builtin_type(typname | oid) -> oid, array oid | nil: a built-in
 * type (pgtype.h), which needs no lookup in pg_type. */
static int core_builtin_type(lua_State *L)
{
    unsigned oid = 0, array_oid = 0;

    if (lua_type(L, 1) == LUA_TSTRING) {
        if (!dbp_type_by_name(lua_tostring(L, 1), &oid, &array_oid))
            return 0;
    } else {
        lua_Number n = luaL_checknumber(L, 1);
        oid = n >= 1 && n <= 4294967295.0 ? (unsigned)n : 0;
        array_oid = dbp_type_array_of(oid);
        if (array_oid == 0)
            return 0;
    }
    lua_pushinteger(L, (lua_Integer)oid);
    lua_pushinteger(L, (lua_Integer)array_oid);
    return 2;
}

void dbp_lua_open_decode(lua_State *L)
{
    lua_pushcfunction(L, core_builtin_type);
    lua_setfield(L, -2, "builtin_type");
    lua_pushcfunction(L, core_set_json);
    lua_setfield(L, -2, "set_json");
    lua_pushcfunction(L, core_set_decoders);
    lua_setfield(L, -2, "set_decoders");
}

/* lua_copy.c: the steps of conn:copy_from and conn:copy_to as internal Conn
 * methods (_copy_start, _copy_ready, _copy_put, _copy_put_rows,
 * _copy_flush, _copy_end, _copy_get, _copy_result), strung together by
 * lua/dbpool/conn.lua, which waits between them as its host wants (as in
 * lua_pipeline.c: wait -1 blocks in the step, 0 returns false when not
 * done).  Rows given as Lua arrays are written in COPY's text format here:
 * values tab-separated, one row a line, NULL as \N, and backslash, tab,
 * newline and carriage return escaped with a backslash (PostgreSQL, COPY,
 * "Text Format"). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua_conn.h"
#include "lua_copy.h"
#include "lua_log.h"
#include "lua_params.h"
#include "lua_util.h"
#include "pool_stmt.h"

#define COPY_CHUNK (64 * 1024)  /* bytes of rows per put: one send, little memory */
#define COPY_BATCH 256          /* rows handed to Lua per _copy_get */

/* Pushes false (not done) or nil, msg, err for a step's status st (already
 * through dbp_slot_step); returns the count, or 0 for DBP_OK. */
static int step_result(lua_State *L, dbp_status st, const dbp_error *err)
{
    if (st == DBP_AGAIN) {
        lua_pushboolean(L, 0);
        return 1;
    }
    return st == DBP_OK ? 0 : dbp_lua_conn_failed(L, err);
}

/* ===== Starting and ending ============================================== */

/* conn:_copy_start(sql) -> true | nil, msg, err */
static int conn_copy_start(lua_State *L)
{
    dbp_pool *p;
    dbp_slot *s;
    dbp_error err;
    dbp_status st;
    dbp_statement stmt = {0};

    if (!dbp_lua_conn_for_op(L, false, &p, &s))
        return 3;
    stmt.sql = dbp_lua_check_cstring(L, 2, "copy", NULL);
    if (dbp_pool_config(p)->echo)
        dbp_lua_echo_statement(L, p, &stmt);
    if ((st = dbp_slot_begin(p, s, 1, &err)) == DBP_OK)
        st = dbp_slot_step(p, s, dbp_conn_copy_start(dbp_slot_conn(s), stmt.sql,
                                                     dbp_slot_query_timeout_ns(s), &err));
    if (st != DBP_OK)
        return dbp_lua_conn_failed(L, &err);
    lua_pushboolean(L, 1);
    return 1;
}

/* conn:_copy_ready(wait) -> "in" | "out" | false | nil, msg, err */
static int conn_copy_ready(lua_State *L)
{
    dbp_pool *p;
    dbp_slot *s;
    dbp_error err;
    bool in = false;
    int n;

    if (!dbp_lua_conn_for_op(L, true, &p, &s))
        return 3;
    n = step_result(L, dbp_slot_step(p, s, dbp_conn_copy_ready(dbp_slot_conn(s), dbp_lua_wait_arg(L, 2),
                                                               &in, &err)), &err);
    if (n > 0)
        return n;
    lua_pushstring(L, in ? "in" : "out");
    return 1;
}

/* conn:_copy_end([why]) -> true | nil, msg, err: CopyDone, or with why
 * CopyFail (the server fails the COPY, saying why). */
static int conn_copy_end(lua_State *L)
{
    const char *why = lua_isnoneornil(L, 2) ? NULL : dbp_lua_check_cstring(L, 2, "copy", NULL);
    dbp_pool *p;
    dbp_slot *s;
    dbp_error err;
    int n;

    if (!dbp_lua_conn_for_op(L, true, &p, &s))
        return 3;
    n = step_result(L, dbp_slot_step(p, s, dbp_conn_copy_end(dbp_slot_conn(s), why, &err)), &err);
    if (n > 0)
        return n;
    lua_pushboolean(L, 1);
    return 1;
}

/* conn:_copy_result(wait) -> rows copied | false | nil, msg, err */
static int conn_copy_result(lua_State *L)
{
    dbp_pool *p;
    dbp_slot *s;
    dbp_error err;
    int64_t rows = 0;
    int n;

    if (!dbp_lua_conn_for_op(L, true, &p, &s))
        return 3;
    n = step_result(L, dbp_slot_step(p, s, dbp_conn_copy_result(dbp_slot_conn(s), dbp_lua_wait_arg(L, 2),
                                                                &rows, &err)), &err);
    if (n > 0)
        return n;
    lua_pushinteger(L, (lua_Integer)rows);
    return 1;
}

/* ===== COPY FROM STDIN ================================================== */

/* A growing byte buffer in a userdata at stack index idx (GC-owned: a raise
 * while encoding leaks nothing). */
typedef struct copybuf {
    int idx;
    char *data;
    size_t len, cap;
} copybuf;

static void reserve(lua_State *L, copybuf *b, size_t more)
{
    char *grown;
    size_t cap = b->cap;

    if (b->len + more <= b->cap)
        return;
    while (cap < b->len + more)
        cap *= 2;
    grown = lua_newuserdata(L, cap);
    memcpy(grown, b->data, b->len);
    lua_replace(L, b->idx);
    b->data = grown;
    b->cap = cap;
}

static void put_bytes(lua_State *L, copybuf *b, const char *s, size_t n)
{
    reserve(L, b, n);
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

/* A string value, escaped for the text format. */
static void put_text(lua_State *L, copybuf *b, const char *s, size_t n, int row, int col)
{
    reserve(L, b, 2 * n);
    for (size_t i = 0; i < n; i++) {
        char ch = s[i], esc = 0;
        switch (ch) {
        case '\\': esc = '\\'; break;
        case '\t': esc = 't'; break;
        case '\n': esc = 'n'; break;
        case '\r': esc = 'r'; break;
        case '\0':
            luaL_error(L, "bad argument #2 to 'copy_from' (row %d, column %d: a string with a "
                          "zero byte, which COPY's text format cannot carry)", row, col);
            break;
        default: break;
        }
        if (esc) {
            b->data[b->len++] = '\\';
            ch = esc;
        }
        b->data[b->len++] = ch;
    }
}

/* A number as the server parses it back: integers exactly, floats in the
 * shortest text that round-trips (as lua_params.c sends parameters). */
static void put_number(lua_State *L, copybuf *b, int idx)
{
    char buf[48];
    double v = (double)lua_tonumber(L, idx);

    if (dbp_compat_isinteger(L, idx) && fabs(v) < 9.2e18)
        dbp_compat_integer_text(L, idx, buf, sizeof buf);
    else if (isnan(v))
        strcpy(buf, "NaN");
    else if (isinf(v))
        strcpy(buf, v > 0 ? "Infinity" : "-Infinity");
    else if (snprintf(buf, sizeof buf, "%.15g", v), strtod(buf, NULL) != v)
        snprintf(buf, sizeof buf, "%.17g", v);
    put_bytes(L, b, buf, strlen(buf));
}

/* The value on top of the stack (popped) as a field. */
static void put_value(lua_State *L, copybuf *b, int row, int col)
{
    size_t n;
    const char *s;

    switch (lua_type(L, -1)) {
    case LUA_TNIL:
        put_bytes(L, b, "\\N", 2);
        break;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, -1) != NULL)
            goto bad;
        put_bytes(L, b, "\\N", 2);                         /* dbpool.null */
        break;
    case LUA_TBOOLEAN:
        put_bytes(L, b, lua_toboolean(L, -1) ? "t" : "f", 1);
        break;
    case LUA_TNUMBER:
        put_number(L, b, -1);
        break;
    case LUA_TSTRING:
        s = lua_tolstring(L, -1, &n);
        put_text(L, b, s, n, row, col);
        break;
    default:
    bad:
        luaL_error(L, "bad argument #2 to 'copy_from' (row %d, column %d: a number, string, "
                      "boolean or dbpool.null expected, got %s)", row, col, luaL_typename(L, -1));
    }
    lua_pop(L, 1);
}

/* rows[i] as one line. */
static void put_row(lua_State *L, copybuf *b, int rows, int i)
{
    int row, n;

    lua_rawgeti(L, rows, i);                               /* ..., row */
    if (!lua_istable(L, -1))
        luaL_error(L, "bad argument #2 to 'copy_from' (row %d must be an array of values, got "
                      "%s)", i, luaL_typename(L, -1));
    row = lua_gettop(L);
    lua_getfield(L, row, "n");
    n = lua_isnumber(L, -1) ? (int)lua_tointeger(L, -1) : (int)lua_rawlen(L, row);
    lua_pop(L, 1);
    for (int j = 1; j <= n; j++) {
        if (j > 1)
            put_bytes(L, b, "\t", 1);
        lua_rawgeti(L, row, j);
        put_value(L, b, i, j);
    }
    put_bytes(L, b, "\n", 1);
    lua_pop(L, 1);                                         /* ... */
}

/* Queues b's bytes on the Conn at 1; pushes nil, msg, err on failure. */
static int put(lua_State *L, const char *data, size_t len)
{
    dbp_pool *p;
    dbp_slot *s;
    dbp_error err;
    dbp_status st;

    if (!dbp_lua_conn_for_op(L, true, &p, &s))
        return 3;
    st = dbp_slot_step(p, s, dbp_conn_copy_put(dbp_slot_conn(s), data, len, &err));
    return st == DBP_OK ? 0 : dbp_lua_conn_failed(L, &err);
}

/* conn:_copy_put_rows(rows, i) -> next i | nil, msg, err: rows i.. written
 * as text and queued, about COPY_CHUNK bytes of them.  Raises on a value
 * that has no text form here (nothing of that chunk is queued). */
static int conn_copy_put_rows(lua_State *L)
{
    int i = (int)luaL_checkinteger(L, 3), n, r;
    copybuf b = {0, NULL, 0, COPY_CHUNK + 1024};

    luaL_checktype(L, 2, LUA_TTABLE);
    n = (int)lua_rawlen(L, 2);
    lua_settop(L, 3);
    b.data = lua_newuserdata(L, b.cap);                    /* conn, rows, i, buffer */
    b.idx = lua_gettop(L);
    while (i <= n && b.len < COPY_CHUNK)
        put_row(L, &b, 2, i++);
    if ((r = put(L, b.data, b.len)) > 0)
        return r;
    lua_pushinteger(L, i);
    return 1;
}

/* conn:_copy_put(chunk) -> true | nil, msg, err: COPY text as it is. */
static int conn_copy_put(lua_State *L)
{
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    int r = put(L, data, len);

    if (r > 0)
        return r;
    lua_pushboolean(L, 1);
    return 1;
}

/* conn:_copy_flush(wait) -> true | false | nil, msg, err: what was queued
 * went out. */
static int conn_copy_flush(lua_State *L)
{
    dbp_pool *p;
    dbp_slot *s;
    dbp_error err;
    int n;

    if (!dbp_lua_conn_for_op(L, true, &p, &s))
        return 3;
    n = step_result(L, dbp_slot_step(p, s, dbp_conn_copy_flush(dbp_slot_conn(s), dbp_lua_wait_arg(L, 2),
                                                               &err)), &err);
    if (n > 0)
        return n;
    lua_pushboolean(L, 1);
    return 1;
}

/* ===== COPY TO STDOUT =================================================== */

/* conn:_copy_get(wait) -> lines | false | true (the end: _copy_result) |
 * nil, msg, err: the rows that have arrived (up to COPY_BATCH), each in
 * COPY text format without its newline, waiting for the first. */
static int conn_copy_get(lua_State *L)
{
    int64_t wait = dbp_lua_wait_arg(L, 2);
    dbp_pool *p;
    dbp_slot *s;
    dbp_error err;
    dbp_status st;
    char *line;
    size_t len;
    int k = 0;

    if (!dbp_lua_conn_for_op(L, true, &p, &s))
        return 3;
    lua_createtable(L, 16, 0);
    while (k < COPY_BATCH) {
        st = dbp_conn_copy_get(dbp_slot_conn(s), k == 0 ? wait : 0, &line, &len, &err);
        if ((st = dbp_slot_step(p, s, st)) == DBP_AGAIN)
            break;
        if (st != DBP_OK)
            return dbp_lua_conn_failed(L, &err);
        if (line == NULL) {                                /* the end */
            if (k == 0)
                lua_pushboolean(L, 1);
            return 1;
        }
        lua_pushlstring(L, line, len);         /* a memory error here loses line */
        dbp_conn_free_line(line);
        lua_rawseti(L, -2, ++k);
    }
    if (k == 0)
        lua_pushboolean(L, 0);
    return 1;
}

static const luaL_Reg methods[] = {
    {"_copy_start", conn_copy_start},
    {"_copy_ready", conn_copy_ready},
    {"_copy_put", conn_copy_put},
    {"_copy_put_rows", conn_copy_put_rows},
    {"_copy_flush", conn_copy_flush},
    {"_copy_end", conn_copy_end},
    {"_copy_get", conn_copy_get},
    {"_copy_result", conn_copy_result},
    {NULL, NULL},
};

void dbp_lua_open_copy(lua_State *L)
{
    luaL_getmetatable(L, DBP_CONN_MT);
    lua_getfield(L, -1, "__index");
    dbp_lua_setfuncs(L, methods);
    lua_pop(L, 2);
}

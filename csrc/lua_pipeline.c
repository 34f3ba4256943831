/* lua_pipeline.c: the steps of conn:pipeline and conn:stream, as internal
 * Conn methods (_pipeline_send, _pipeline_collect, _stream_send,
 * _stream_next, _drain) that lua/dbpool/conn.lua strings together, waiting
 * between them as its host wants: blocking in the step (wait -1: threads,
 * Lua 5.4, init_by_lua) or yielding to nginx (wait 0, then the socket).
 * Every step goes through the statement API's gate (pool_stmt.h), so
 * counts, max_queries and disconnects are the core's as for conn:query.
 *
 * Arguments: a step's wait is in seconds, -1 for "until done".
 * Results: a step that is not done yet returns false; a failure returns
 * nil, msg, err (err.index: the pipeline's failing statement, 1-based). */
#include <stdio.h>

#include "lua_conn.h"
#include "lua_error.h"
#include "lua_log.h"
#include "lua_params.h"
#include "lua_pipeline.h"
#include "lua_result.h"
#include "lua_util.h"
#include "pool_stmt.h"

#define STREAM_BATCH 256        /* rows handed to Lua per step: calls amortized, memory bounded */

/* A step's wait argument at idx: -1 (until done) or nanoseconds. */
/* ===== Pipeline ========================================================= */

/* Reads list[i] = {sql, ...} into prm, its values pushed on the stack (kept
 * there until the pipeline is sent: a typed parameter's text lives there). */
static void read_entry(lua_State *L, int list, int i, dbp_lua_params *prm)
{
    int entry, n;

    lua_rawgeti(L, list, i);                              /* ..., entry */
    if (!lua_istable(L, -1))
        luaL_error(L, "bad argument #1 to 'pipeline' (statement %d must be a table {sql, ...}, "
                      "got %s)", i, luaL_typename(L, -1));
    entry = lua_gettop(L);
    lua_getfield(L, entry, "n");
    n = lua_isnumber(L, -1) ? (int)lua_tointeger(L, -1) : (int)lua_rawlen(L, entry);
    lua_pop(L, 1);
    if (n < 1 || n > DBP_LUA_MAX_PARAMS + 1)
        luaL_error(L, "bad argument #1 to 'pipeline' (statement %d must start with its SQL "
                      "text)", i);
    luaL_checkstack(L, n + 8, "too many parameters in a pipeline");
    for (int k = 1; k <= n; k++)
        lua_rawgeti(L, entry, k);                          /* ..., entry, sql, v1..vn-1 */
    dbp_lua_read_statement(L, entry + 1, entry + 2, n - 1, prm, "pipeline");
}

/* conn:_pipeline_send(list) -> true | nil, msg, err.  Raises on a bad
 * entry before anything is sent. */
static int conn_pipeline_send(lua_State *L)
{
    dbp_pool *p;
    dbp_slot *s;
    dbp_lua_params *prms;
    dbp_statement *stmts;
    dbp_error err;
    dbp_status st;
    int n;

    if (!dbp_lua_conn_for_op(L, false, &p, &s))
        return 3;
    luaL_checktype(L, 2, LUA_TTABLE);
    n = (int)lua_rawlen(L, 2);
    if (n < 1 || n > 100000)
        luaL_error(L, "bad argument #1 to 'pipeline' (1 to 100000 statements expected, got %d)",
                   n);
    prms = lua_newuserdata(L, (size_t)n * sizeof *prms);            /* GC-owned */
    stmts = lua_newuserdata(L, (size_t)n * sizeof *stmts);
    for (int i = 0; i < n; i++) {
        read_entry(L, 2, i + 1, &prms[i]);
        stmts[i] = prms[i].stmt;
        if (dbp_pool_config(p)->echo)
            dbp_lua_echo_statement(L, p, &stmts[i]);
    }
    if ((st = dbp_slot_begin(p, s, n, &err)) == DBP_OK)
        st = dbp_slot_step(p, s, dbp_conn_pipeline_send(dbp_slot_conn(s), stmts, n,
                                                        dbp_slot_query_timeout_ns(s), &err));
    if (st != DBP_OK)
        return dbp_lua_conn_failed(L, &err);
    lua_pushboolean(L, 1);
    return 1;
}

/* The results not yet handed to Lua: a full userdata whose __gc frees
 * them, so that a decoder raising half way through loses nothing. */
typedef struct pending_results {
    dbp_result **results;
    int n;
} pending_results;

static int pending_results_gc(lua_State *L)
{
    pending_results *pr = lua_touserdata(L, 1);
    dbp_conn_free_results(pr->results, pr->n);    /* PQclear(NULL) is a no-op */
    pr->results = NULL;
    return 0;
}

/* Pushes results[0..n-1] as an array of rows (each as conn:query builds
 * it, with p's decoders), freeing them, also when building one raises. */
static void push_results(lua_State *L, dbp_pool *p, dbp_result **results, int n)
{
    pending_results *pr = lua_newuserdata(L, sizeof *pr);
    pr->results = results, pr->n = n;
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, pending_results_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);                               /* ..., pending */
    lua_createtable(L, n, 0);                              /* ..., pending, list */
    for (int i = 0; i < n; i++) {
        dbp_result *r = results[i];
        results[i] = NULL;                                 /* push_result frees it */
        dbp_lua_push_result(L, p, r);
        lua_rawseti(L, -2, i + 1);
    }
    lua_remove(L, -2);                                     /* ..., list */
    dbp_conn_free_results(pr->results, pr->n);             /* the array; entries are NULL */
    pr->results = NULL;
}

/* conn:_pipeline_collect(wait) -> results | false | nil, msg, err: results[i]
 * the rows of statement i; err.index the failing statement (1-based). */
static int conn_pipeline_collect(lua_State *L)
{
    dbp_pool *p;
    dbp_slot *s;
    dbp_result **results = NULL;
    dbp_error err;
    dbp_status st;
    int failed, n = 0;

    if (!dbp_lua_conn_for_op(L, true, &p, &s))
        return 3;
    st = dbp_conn_pipeline_collect(dbp_slot_conn(s), dbp_lua_wait_arg(L, 2), &results, &n, &failed, &err);
    if ((st = dbp_slot_step(p, s, st)) == DBP_AGAIN) {
        lua_pushboolean(L, 0);
        return 1;
    }
    if (st != DBP_OK) {
        if (failed >= 0) {
            char msg[sizeof err.message + 32];
            snprintf(msg, sizeof msg, "pipeline statement %d: %s", failed + 1, err.message);
            dbp_copy_text(err.message, sizeof err.message, msg);
        }
        dbp_lua_conn_failed(L, &err);                     /* nil, msg, err */
        if (failed >= 0 && lua_istable(L, -1)) {
            lua_pushinteger(L, failed + 1);
            lua_setfield(L, -2, "index");
        }
        return 3;
    }
    push_results(L, p, results, n);
    return 1;
}

/* ===== Stream =========================================================== */

/* conn:_stream_send(sql, ...) -> true | nil, msg, err: the statement in
 * single-row mode. */
static int conn_stream_send(lua_State *L)
{
    dbp_pool *p;
    dbp_slot *s;
    dbp_lua_params prm;
    dbp_error err;
    dbp_status st;

    if (!dbp_lua_conn_for_op(L, false, &p, &s))
        return 3;
    dbp_lua_read_statement(L, 2, 3, lua_gettop(L) - 2, &prm, "stream");
    if (dbp_pool_config(p)->echo)
        dbp_lua_echo_statement(L, p, &prm.stmt);
    if ((st = dbp_slot_begin(p, s, 1, &err)) == DBP_OK)
        st = dbp_slot_step(p, s, dbp_conn_stream_send(dbp_slot_conn(s), &prm.stmt,
                                                      dbp_slot_query_timeout_ns(s), &err));
    if (st != DBP_OK)
        return dbp_lua_conn_failed(L, &err);
    lua_pushboolean(L, 1);
    return 1;
}

/* Moves row (a one-row result, freed) to batch[k]: built by conn:query's
 * own code (lua_result.c), so decoding is the same. */
static void add_row(lua_State *L, dbp_pool *p, int batch, int k, dbp_result *row)
{
    dbp_lua_push_result(L, p, row);                         /* ..., rows (one row) */
    lua_rawgeti(L, -1, 1);                               /* ..., rows, row */
    lua_rawseti(L, batch, k);
    lua_pop(L, 1);
}

/* conn:_stream_next(wait) -> rows, last | false | true (the end) | nil, msg,
 * err: the rows that have arrived, up to STREAM_BATCH, waiting for the
 * first; last: the result ended with them. */
static int conn_stream_next(lua_State *L)
{
    int64_t wait = dbp_lua_wait_arg(L, 2);
    dbp_pool *p;
    dbp_slot *s;
    dbp_result *row;
    dbp_error err;
    dbp_status st;
    bool done = false;
    int batch, k = 0;

    if (!dbp_lua_conn_for_op(L, true, &p, &s))
        return 3;
    lua_createtable(L, k, 0);
    batch = lua_gettop(L);
    while (k < STREAM_BATCH && !done) {
        st = dbp_conn_stream_next(dbp_slot_conn(s), k == 0 ? wait : 0, &row, &done, &err);
        if ((st = dbp_slot_step(p, s, st)) == DBP_AGAIN)
            break;
        if (st != DBP_OK)
            return dbp_lua_conn_failed(L, &err);   /* rows of this batch are dropped */
        if (done)
            dbp_result_free(row);                  /* the final result: no rows */
        else
            add_row(L, p, batch, ++k, row);
    }
    if (k == 0) {
        lua_pushboolean(L, done);                  /* true: the end; false: not yet */
        return 1;
    }
    lua_pushboolean(L, done);                      /* rows, and whether they were the last */
    return 2;
}

/* conn:_drain(wait) -> true | false | nil, msg, err: ends an operation
 * given up on (dbp_conn_drain), the connection usable again. */
static int conn_drain(lua_State *L)
{
    dbp_pool *p;
    dbp_slot *s;
    dbp_error err;
    dbp_status st;

    if (!dbp_lua_conn_for_op(L, true, &p, &s))
        return 3;
    st = dbp_slot_step(p, s, dbp_conn_drain(dbp_slot_conn(s), dbp_lua_wait_arg(L, 2), &err));
    if (st == DBP_AGAIN) {
        lua_pushboolean(L, 0);
        return 1;
    }
    if (st != DBP_OK)
        return dbp_lua_conn_failed(L, &err);
    lua_pushboolean(L, 1);
    return 1;
}

static const luaL_Reg methods[] = {
    {"_pipeline_send", conn_pipeline_send},
    {"_pipeline_collect", conn_pipeline_collect},
    {"_stream_send", conn_stream_send},
    {"_stream_next", conn_stream_next},
    {"_drain", conn_drain},
    {NULL, NULL},
};

void dbp_lua_open_pipeline(lua_State *L)
{
    luaL_getmetatable(L, DBP_CONN_MT);
    lua_getfield(L, -1, "__index");
    dbp_lua_setfuncs(L, methods);
    lua_pop(L, 2);
}

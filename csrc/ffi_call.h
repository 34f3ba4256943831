/* ffi_call.h: engine:query's request path for LuaJIT's FFI (DESIGN.md,
 * "Inside nginx"): checkout, send, wait, read, return, as plain C
 * functions that take no lua_State, so that LuaJIT compiles the Lua that
 * calls them instead of stopping its trace at every classic C API call.
 *
 * A dbp_call is one engine:query in flight; Lua owns its memory (ffi.new,
 * kept in a free list) and declares the same layout with ffi.cdef
 * (lua/dbpool/fastpath.lua), checked against dbp_ffi_api.call_size when
 * the module loads.  Nothing here is exported from core.so: Lua reaches the
 * functions through the table of pointers dbp_ffi_api, which
 * core._ffi_api() hands over as a light userdata. */
#ifndef DBP_FFI_CALL_H
#define DBP_FFI_CALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "pool.h"
#include "result.h"

enum {
    DBP_CALL_SITE = 60,        /* LUA_IDSIZE of Lua 5.4 and LuaJIT */
    DBP_CALL_MAX_PARAMS = 32   /* more go the classic way */
};

typedef struct dbp_call {
    dbp_pool *pool;        /* set by the caller before checkout */
    dbp_slot *slot;        /* the checkout; NULL when none is held */
    dbp_result *res;       /* the statement's result, once collected */
    dbp_error err;         /* the last failure's */
    /* The parameters' texts, this call's own: a query that runs meanwhile
     * (a finalizer's) cannot overwrite them. */
    const char *values[DBP_CALL_MAX_PARAMS];
    /* Where the app called engine:query, noted before the request yields
     * (only a yielded request can be killed): a leak report names it. */
    char site_src[DBP_CALL_SITE];
    int site_line;
} dbp_call;

/* What the Lua side must know of a pool before it takes the fast path. */
typedef struct dbp_ffi_pool_info {
    const char *name;      /* the engine's name, for errors */
    int slow;              /* echo, echo_pool or leak_threshold: the classic path logs */
    int numeric_text;      /* numeric = "string" */
    double yield_after;    /* seconds a statement may keep the worker */
} dbp_ffi_pool_info;

/* Checks out from c->pool.  wait true: as dbp_pool_checkout, blocking
 * (outside nginx); false: DBP_CHECKOUT_DEFER, for an event loop
 * (DBP_AGAIN: no slot now; DBP_PENDING: c->slot reserved, its connect to
 * be driven).  Returns the dbp_status; c->err on failure. */
int dbp_call_checkout(dbp_call *c, bool wait);

/* sql with nparams (at most DBP_CALL_MAX_PARAMS) texts from c->values
 * (NULL: SQL NULL), as conn:query sends it: the extended protocol, every
 * type left to the server.  exec waits for the result (blocking); send
 * only queues it and collect waits at most wait_ns nanoseconds for it
 * (0: not at all; DBP_AGAIN: still running).  On DBP_OK c->res is set. */
int dbp_call_exec(dbp_call *c, const char *sql, int nparams);
int dbp_call_send(dbp_call *c, const char *sql, int nparams);
int dbp_call_collect(dbp_call *c, int64_t wait_ns);

/* The server's notices wait to be logged (the classic binding logs them). */
bool dbp_call_has_notices(dbp_call *c);

/* Gives the checkout back (a statement still running is cancelled and the
 * connection discarded); a no-op when none is held.  c->res stays the
 * caller's (rows are built after the return, as the classic path does);
 * the Lua finalizer of a dbp_call whose request was killed mid-wait calls
 * this and frees c->res.  Returns whether the pool's min_idle now wants a
 * connection (the OpenResty path's refill timer). */
bool dbp_call_release(dbp_call *c);

/* Gives the checkout back closed, never pooled (a worker shutting down). */
void dbp_call_invalidate(dbp_call *c);

/* The functions the FFI path calls, by pointer. */
typedef struct dbp_ffi_api {
    size_t call_size;                    /* sizeof(dbp_call): the cdef is checked against it */
    void (*pool_info)(const dbp_pool *p, dbp_ffi_pool_info *out);
    int (*checkout)(dbp_call *c, bool wait);
    int (*exec)(dbp_call *c, const char *sql, int nparams);
    int (*send)(dbp_call *c, const char *sql, int nparams);
    int (*collect)(dbp_call *c, int64_t wait_ns);
    bool (*has_notices)(dbp_call *c);
    bool (*release)(dbp_call *c);
    void (*invalidate)(dbp_call *c);
    /* nginx's socket watch (lua_ngx_wait.c): the semaphore id, 0 with
     * *why when there is none to be had, -1 for a wrong new_id */
    int (*ngx_watch)(dbp_call *c, int new_id, void *new_sem, const char **why);
    /* reading a result (result.h, pgtype.h) */
    int (*rows)(const dbp_result *r);
    int (*columns)(const dbp_result *r);
    const char *(*column_name)(const dbp_result *r, int col);
    unsigned (*column_type)(const dbp_result *r, int col);
    const char *(*field)(const dbp_result *r, int row, int col, size_t *len);
    int64_t (*affected)(const dbp_result *r);
    /* A number field as lua_result.c pushes it: 1 with *out, or 0 when the
     * integer is beyond 2^53 (LuaJIT then keeps its text). */
    int (*number)(const dbp_result *r, int row, int col, int kind, double *out);
    int (*type_kind)(unsigned oid);
    unsigned (*array_elem)(unsigned oid);
    bool (*decoders_maybe)(void);        /* some pool has decoders: rows the classic way */
    void (*result_free)(dbp_result *r);
    const char *(*status_kind)(int status);
    double (*now)(void);                 /* core.now(): monotonic seconds */
} dbp_ffi_api;

#endif

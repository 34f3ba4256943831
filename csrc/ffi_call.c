/* ffi_call.c: engine:query's request path as plain C for LuaJIT's FFI
 * (ffi_call.h).  Every step is the core's own (pool.h, pool_stmt.h): the
 * FFI path and the classic binding check out, count, time out and return
 * alike. */
#include <string.h>

#include "ffi_call.h"
#include "pool_stmt.h"

int dbp_call_checkout(dbp_call *c, bool wait)
{
    c->res = NULL;
    return dbp_pool_checkout_mode(c->pool, wait ? DBP_CHECKOUT_WAIT : DBP_CHECKOUT_DEFER, 0,
                                  &c->slot, NULL, &c->err);
}

/* Every parameter's type left to the server, declared as lua_params.c
 * declares them (zeros, not none): a surplus parameter then fails as it
 * does there, "could not determine data type of parameter $n". */
static const unsigned any_types[DBP_CALL_MAX_PARAMS];

static bool statement(dbp_call *c, const char *sql, int nparams, dbp_statement *out)
{
    if (nparams < 0 || nparams > DBP_CALL_MAX_PARAMS) {
        dbp_error_set(&c->err, DBP_INVALID, "at most %d parameters on this path", DBP_CALL_MAX_PARAMS);
        return false;
    }
    *out = (dbp_statement){.sql = sql, .nparams = nparams, .values = c->values,
                           .types = nparams > 0 ? any_types : NULL};
    return true;
}

int dbp_call_exec(dbp_call *c, const char *sql, int nparams)
{
    dbp_statement stmt;

    if (!statement(c, sql, nparams, &stmt))
        return c->err.status;
    return dbp_slot_exec(c->pool, c->slot, &stmt, &c->res, &c->err);
}

int dbp_call_send(dbp_call *c, const char *sql, int nparams)
{
    dbp_statement stmt;

    if (!statement(c, sql, nparams, &stmt))
        return c->err.status;
    return dbp_slot_send(c->pool, c->slot, &stmt, &c->err);
}

int dbp_call_collect(dbp_call *c, int64_t wait_ns)
{
    return dbp_slot_collect(c->pool, c->slot, wait_ns, &c->res, &c->err);
}

bool dbp_call_has_notices(dbp_call *c)
{
    dbp_conn *conn;

    if (c->slot == NULL || dbp_slot_inherited(c->slot) || (conn = dbp_slot_conn(c->slot)) == NULL)
        return false;
    return !dbp_notices_empty(dbp_conn_notices(conn));
}

bool dbp_call_release(dbp_call *c)
{
    dbp_slot *s = c->slot;

    if (s == NULL || c->pool == NULL)
        return false;
    c->slot = NULL;
    (void)dbp_pool_release(c->pool, s);
    return dbp_pool_refill_due(c->pool);
}

void dbp_call_invalidate(dbp_call *c)
{
    dbp_slot *s = c->slot;

    if (s == NULL || c->pool == NULL)
        return;
    c->slot = NULL;
    dbp_pool_invalidate(c->pool, s);
}

/* lua_log.h: the binding's one logging seam (lua_log.c): dbpool.log, echo
 * and echo_pool, checkout sites and leak reports. */
#ifndef DBP_LUA_LOG_H
#define DBP_LUA_LOG_H

#include "compat.h"
#include "conn.h"
#include "pool.h"

/* Calls dbpool.log(message, level) ("debug", "info" or "warn") in a protected
 * call; writes to stderr when dbpool is not loaded or the call fails. */
void dbp_lua_log(lua_State *L, const char *level, const char *message);

/* Where a checkout was made: the first Lua frame outside dbpool's own
 * wrappers.  Recorded at every checkout; formatted only for a report. */
typedef struct dbp_site {
    char src[LUA_IDSIZE];    /* lua_Debug.short_src */
    int line;
} dbp_site;
void dbp_lua_checkout_site(lua_State *L, dbp_site *site);

/* leak_threshold > 0: records the checkout's traceback with the pool, and
 * reports checkouts of p held past the threshold (each once). */
void dbp_lua_track_checkout(lua_State *L, dbp_pool *p, dbp_slot *s);
/* At a traced return: reports s when it was held past the threshold and
 * not reported yet. */
void dbp_lua_report_return(lua_State *L, dbp_pool *p, dbp_slot *s);
/* A Conn the garbage collector returned: warns with its checkout site. */
void dbp_lua_log_gc_leak(lua_State *L, dbp_pool *p, const dbp_site *site);

/* echo: the statement (parameters only with echo_params, PASSWORD literals
 * hidden).  echo_pool: a checkout's outcome and what happened on the way
 * (DBP_EV_*), and a checkin's.  Callers test the option first. */
void dbp_lua_echo_statement(lua_State *L, dbp_pool *p, const dbp_statement *stmt);
void dbp_lua_echo_checkout(lua_State *L, dbp_pool *p, dbp_status st, unsigned events,
                           const dbp_error *err);
void dbp_lua_echo_checkin(lua_State *L, dbp_pool *p, unsigned events, bool invalidated);
/* echo_pool: logs the resizes of p (pool_size = "auto") not logged yet,
 * with what led to each (rate, hold, busy, p99 burst, old -> new). */
void dbp_lua_log_resizes(lua_State *L, dbp_pool *p);

/* Logs the server notices queued on s's connection (notice.h) through
 * dbpool.log, "warn" for WARNING, "debug" for the rest, and how many were
 * dropped, if any.  Call after anything that read from the server: a
 * checkout (startup notices, also of a connection the refill thread
 * opened), a connect step, a statement.  Costs one load when there is
 * nothing. */
void dbp_lua_log_notices_slow(lua_State *L, dbp_pool *p, dbp_notices *q);
static inline void dbp_lua_log_notices(lua_State *L, dbp_pool *p, dbp_slot *s)
{
    dbp_conn *c;
    dbp_notices *q;

    if (s == NULL || dbp_slot_inherited(s) || (c = dbp_slot_conn(s)) == NULL)
        return;                                  /* inherited: the parent's to log */
    q = dbp_conn_notices(c);
    if (!dbp_notices_empty(q))
        dbp_lua_log_notices_slow(L, p, q);
}

#endif

/* lua_dbpool.h: what the binding's files (csrc/lua_*.c) share.  Not part of
 * the core: only these files include Lua headers. */
#ifndef DBP_LUA_DBPOOL_H
#define DBP_LUA_DBPOOL_H

#include "compat.h"
#include "config.h"
#include "error.h"
#include "pool.h"

#define DBP_POOL_MT "dbpool.Pool"
#define DBP_CONN_MT "dbpool.Conn"
#define DBP_ERROR_MT "dbpool.Error"

/* Every Pool and Conn method (metamethods included) carries the two
 * metatables as upvalues, so the hot path checks and sets them without
 * looking a name up in the registry. */
#define DBP_UV_CONN_MT lua_upvalueindex(1)
#define DBP_UV_POOL_MT lua_upvalueindex(2)

/* Registers l into the table on top of the stack with those upvalues. */
void dbp_lua_setfuncs(lua_State *L, const luaL_Reg *l);

/* Pool and Conn boxes start with a tag: the address of a static of this
 * module, which no other code puts at the start of a userdata of the same
 * size.  Checking it costs two cheap API calls where comparing metatables
 * costs four (a third of a checkout's instructions, bench/results). */
extern const char dbp_conn_tag[], dbp_pool_tag[];

/* The full userdata at idx when it is size bytes and starts with tag, else
 * raises luaL_checkudata's type error naming tname. */
void *dbp_lua_checkself(lua_State *L, int idx, const char *tag, size_t size, const char *tname);

struct pg_result;

/* lua_error.c: pushes nil and a dbpool.Error table; returns 2. */
int dbp_lua_fail(lua_State *L, const dbp_error *err);
void dbp_lua_open_error(lua_State *L);

/* lua_config.c: reads the option table at idx into c (initialised with
 * defaults first).  Raises, after freeing c, with a message naming the
 * option, what it must be and what it got. */
void dbp_lua_read_config(lua_State *L, int idx, dbp_config *c);

/* lua_pool.c */
void dbp_lua_open_pool(lua_State *L);
int dbp_lua_pool_open(lua_State *L);
void dbp_lua_push_pool(lua_State *L, dbp_pool *p);
/* The pool of a dbpool.Pool handle at idx, or NULL for anything else. */
dbp_pool *dbp_lua_test_pool(lua_State *L, int idx);
/* Adds core.engine_connect and core.engine_query (engine:connect and
 * engine:query outside nginx) to the table on top of the stack. */
void dbp_lua_open_engine_functions(lua_State *L);

/* lua_conn.c: pushes a dbpool.Conn owning the checkout of s. */
void dbp_lua_push_conn(lua_State *L, dbp_pool *p, dbp_slot *s);
/* pool:query's work: checkout, one statement, return; the pool is at index
 * 1, sql at 2, parameters after it. */
int dbp_lua_pool_query(lua_State *L, dbp_pool *p);
/* The Conn at idx holds a slot still connecting (dbp_pool_checkout_async). */
void dbp_lua_conn_set_connecting(lua_State *L, int idx);
/* The libpq connection of the checked-out Conn at index 1; raises when it
 * is closed or still connecting. */
struct dbp_conn *dbp_lua_check_conn(lua_State *L);

/* lua_ngx_wait.c: core.ngx_wait_ready and conn:_ngx_watch (nginx's event loop
 * watches libpq's socket); core_table and conn_methods are absolute indexes. */
void dbp_lua_open_ngx_wait(lua_State *L, int core_table, int conn_methods);
void dbp_lua_open_conn(lua_State *L);

/* lua_leak.c: dbpool.log from C (stderr when dbpool is not loaded); the
 * checkout's call site; leak_threshold tracebacks and their reports. */
void dbp_lua_log(lua_State *L, const char *level, const char *message);
typedef struct dbp_site {
    char src[LUA_IDSIZE];    /* lua_Debug.short_src */
    int line;
} dbp_site;
void dbp_lua_checkout_site(lua_State *L, dbp_site *site);
void dbp_lua_track_checkout(lua_State *L, dbp_pool *p, dbp_slot *s);
void dbp_lua_report_return(lua_State *L, dbp_pool *p, dbp_slot *s);

/* lua_echo.c: echo (statements) and echo_pool (pool events). */
void dbp_lua_echo_statement(lua_State *L, dbp_pool *p, const char *sql, int nparams,
                            const char *const *values, const int *formats);
void dbp_lua_echo_checkout(lua_State *L, dbp_pool *p, dbp_status st, unsigned events,
                           const dbp_error *err);
void dbp_lua_echo_checkin(lua_State *L, dbp_pool *p, unsigned events, bool invalidated);

/* lua_policy.c: adds core.check and core.capacity to the table on top of
 * the stack; pushes a dbp_config_capacity (an integer, math.huge when
 * unbounded), as stats().capacity and core.capacity give it. */
void dbp_lua_open_policy(lua_State *L);
void dbp_lua_push_capacity(lua_State *L, double capacity);

/* lua_result.c: pushes rows (array of tables, .columns, .affected). */
void dbp_lua_push_rows(lua_State *L, struct pg_result *res);

#endif

/* pool_stmt.h: a statement on a checked-out slot, the one way every caller
 * (the Lua binding, the LuaJIT FFI path, C programs and tests) runs SQL on
 * a pooled connection.  Each function takes no lua_State and:
 *   - refuses a slot inherited across fork() (DBP_CLOSED: its socket is the
 *     parent's);
 *   - counts the statement (the `queries` counter, and the slot's count
 *     that max_queries rotates on);
 *   - on failure counts a query error and tells the pool, which records a
 *     disconnect (and for role = "primary" a read-only server) as the
 *     pool-wide invalidation time, so that every connection born before it
 *     is replaced at its next checkout, as SQLAlchemy does.
 * Statements have a deadline: the engine's query_timeout, or what
 * dbp_slot_set_query_timeout set for this checkout.  Past it the statement
 * is cancelled and the call fails with DBP_QUERY_TIMEOUT; the connection is
 * broken then, and goes when the slot is returned.
 * The caller holds the checkout of s throughout. */
#ifndef DBP_POOL_STMT_H
#define DBP_POOL_STMT_H

#include "pool.h"

/* Runs stmt and waits for its result (blocking: threads, Lua 5.4).  On
 * DBP_OK *res is the last result, for the caller to free with
 * dbp_result_free.  Fails with DBP_QUERY (the server's error, or the
 * link's), DBP_QUERY_TIMEOUT, DBP_INVALID (a statement already in flight on
 * the connection) or DBP_CLOSED. */
DBP_MUSTCHECK dbp_status dbp_slot_exec(dbp_pool *p, dbp_slot *s, const dbp_statement *stmt,
                                       dbp_result **res, dbp_error *err);

/* Queues stmt without waiting (event loops).  One statement at a time: a
 * second send before its collect fails with DBP_INVALID. */
DBP_MUSTCHECK dbp_status dbp_slot_send(dbp_pool *p, dbp_slot *s, const dbp_statement *stmt,
                                       dbp_error *err);

/* The sent statement's result, waiting at most timeout_ns nanoseconds (0:
 * not at all): DBP_OK with *res, DBP_AGAIN while it still runs (call again
 * when the socket, dbp_conn_socket, is ready), or a failure as
 * dbp_slot_exec's. */
DBP_MUSTCHECK dbp_status dbp_slot_collect(dbp_pool *p, dbp_slot *s, int64_t timeout_ns,
                                          dbp_result **res, dbp_error *err);

/* The pre-ping check on demand: the socket first (no round trip), then the
 * ping (one round trip; for role = "primary" also that the server accepts
 * writes).  A dead server counts as a disconnect for the pool.  Not counted
 * as a statement. */
DBP_MUSTCHECK dbp_status dbp_slot_ping(dbp_pool *p, dbp_slot *s, dbp_error *err);
/* The same for an event loop, in two halves: dbp_slot_ping_send looks at
 * the socket and sends the ping; dbp_slot_ping_step reads its answer
 * without waiting (DBP_AGAIN until it came: wait for the socket), or
 * fails as dbp_slot_ping, past ping_timeout with DBP_TIMEOUT. */
DBP_MUSTCHECK dbp_status dbp_slot_ping_send(dbp_pool *p, dbp_slot *s, dbp_error *err);
DBP_MUSTCHECK dbp_status dbp_slot_ping_step(dbp_pool *p, dbp_slot *s, dbp_error *err);

/* The operations of several steps (a pipeline, COPY, a stream: conn.h)
 * get the same bookkeeping through a gate: dbp_slot_begin before the
 * first step refuses an inherited slot (DBP_CLOSED) and counts n
 * statements; every step's status then passes dbp_slot_step, which counts
 * a failure and tells the pool of a disconnect as dbp_slot_exec does, and
 * returns st.  Their deadline is dbp_slot_query_timeout_ns (0: none). */
DBP_MUSTCHECK dbp_status dbp_slot_begin(dbp_pool *p, dbp_slot *s, int n, dbp_error *err);
dbp_status dbp_slot_step(dbp_pool *p, dbp_slot *s, dbp_status st);
int64_t dbp_slot_query_timeout_ns(const dbp_slot *s);

/* The deadline of s's statements until the slot is returned, in seconds
 * (0: none); the next checkout starts again from query_timeout. */
void dbp_slot_set_query_timeout(dbp_slot *s, double seconds);

#endif

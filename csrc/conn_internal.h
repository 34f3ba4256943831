/* conn_internal.h: a libpq connection's state, shared by the files of the
 * libpq seam (conn.c, conn_exec.c) and nothing else. */
#ifndef DBP_CONN_INTERNAL_H
#define DBP_CONN_INTERNAL_H

#include <libpq-fe.h>

#include "conn.h"
#include "notice.h"
#include "stmt_cache.h"

struct dbp_conn {
    PGconn *pg;
    PGresult *pending;  /* non-blocking: the result kept while more arrive */
    bool busy;          /* non-blocking: a statement sent, results not all read */
    bool broken;        /* discard this connection */
    bool lost;          /* the server or the link went away: a pool-wide event */
    bool primary;       /* role = "primary": a read-only server counts as dead */
    bool verify_role;   /* primary through PgBouncer: ask the session once connected */
    dbp_stmt_cache *stmts; /* prepare_threshold > 0: statements worth preparing */
    dbp_stmt *sent_stmt;   /* non-blocking: the prepared statement being run */
    bool want_write;       /* non-blocking: libpq has output it could not send yet */
    dbp_notices notices;   /* the server's notices, until the binding logs them */
    dbp_close_hook close_hook; /* told before the socket goes: an event loop watching it */
    void *close_hook_arg;

    /* What the statements so far did to the session (command tags). */
    bool session_dirty;    /* SET, LISTEN, PREPARE, ...: DISCARD ALL before reuse */
    bool ran_statement;    /* any statement since the last DISCARD ALL */
    bool oversized;        /* a message over max_message went through: close on return */
    size_t max_message;    /* bytes; 0 = no bound */
    int64_t ping_timeout_ns, reset_timeout_ns;   /* the engine's, fixed at connect */

    /* The statement in flight. */
    int64_t deadline_ns;   /* when it is cancelled; INT64_MAX = never */
    double timeout_s;      /* the timeout behind it, for the message */
    dbp_status on_expiry;  /* DBP_QUERY_TIMEOUT, or DBP_TIMEOUT for a ping or reset */
    const char *timeout_name;  /* "query_timeout", "ping_timeout", "reset_timeout" */
    bool copy_refused;     /* it started a COPY, which the plain path refuses */
    bool copy_out;         /* ... a COPY TO STDOUT whose rows are being skipped */
    char *sent_sql;        /* a copy of its SQL when it may DEALLOCATE a statement of ours */

    /* prepare_threshold: statements evicted while a transaction was aborted,
     * deallocated once it ends. */
    char (*dealloc)[24];
    int n_dealloc, dealloc_cap;
};

/* conn_exec.c: one internal statement through the simple protocol, blocking
 * for at most timeout_ns (the ping, the reset's ROLLBACK or COMMIT, DISCARD
 * ALL); on expiry the statement is cancelled, the connection marked broken,
 * and on_expiry returned with a message naming timeout_name. */
dbp_status dbp_conn_exec_internal(dbp_conn *c, const char *sql, int64_t timeout_ns,
                                  dbp_status on_expiry, const char *timeout_name,
                                  dbp_result **res, dbp_error *err);

/* conn_exec.c: waits up to timeout_ns nanoseconds (-1: no limit) for the
 * connection's socket to be readable (and writable when want_write):
 * ppoll's answer, >0 ready, 0 not in time, <0 failed (errno). */
int dbp_conn_wait_socket(dbp_conn *c, bool want_write, int64_t timeout_ns);

/* conn.c: asks the server to cancel what the connection runs, without
 * waiting: a cancel request opens a connection of its own, which a silent
 * server would hold, so a detached thread sends it. */
void dbp_conn_cancel_async(dbp_conn *c);

#endif

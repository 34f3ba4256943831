/* conn_internal.h: a libpq connection's state, shared by the files of the
 * libpq seam (conn.c, conn_exec.c) and nothing else. */
#ifndef DBP_CONN_INTERNAL_H
#define DBP_CONN_INTERNAL_H

#include <libpq-fe.h>

#include "conn.h"
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
    dbp_close_hook close_hook; /* told before the socket goes: an event loop watching it */
    void *close_hook_arg;
};

/* conn_exec.c: one statement through the simple protocol, blocking (the
 * reset's ROLLBACK or COMMIT, the ping). */
dbp_status dbp_conn_exec_simple(dbp_conn *c, const char *sql, dbp_result **res, dbp_error *err);

#endif

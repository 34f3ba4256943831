/* conn_internal.h: a libpq connection's state, shared by the files of the
 * libpq seam (conn.c, conn_exec.c) and nothing else. */
#ifndef DBP_CONN_INTERNAL_H
#define DBP_CONN_INTERNAL_H

#include <libpq-fe.h>

#include "conn.h"
#include "notice.h"
#include "stmt_cache.h"

/* An operation of several steps in flight (conn_pipeline.c, conn_copy.c,
 * conn_stream.c); c->busy is true throughout, so a connection returned
 * in the middle of one is discarded, never pooled. */
typedef enum dbp_conn_op {
    DBP_OP_NONE,
    DBP_OP_PIPELINE,      /* pipeline mode: results being read */
    DBP_OP_COPY_START,    /* COPY sent, its COPY IN/OUT answer awaited */
    DBP_OP_COPY_IN,       /* rows going out */
    DBP_OP_COPY_OUT,      /* rows coming in */
    DBP_OP_COPY_END,      /* COPY over: its result awaited */
    DBP_OP_STREAM,        /* single-row mode: rows coming in */
    DBP_OP_DRAIN          /* results read and dropped after a failure of ours */
} dbp_conn_op;

typedef struct dbp_pipeline dbp_pipeline;

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
    dbp_conn_op op;        /* an operation of several steps, or DBP_OP_NONE */
    dbp_pipeline *pipe;    /* DBP_OP_PIPELINE's results so far (conn_pipeline.c) */
    PGresult *op_error;    /* the first error an operation met, kept until it ends */

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

/* The same statement for an event loop, in two halves: sent without
 * waiting (its deadline timeout_ns from now, 0: none), then its result read
 * without waiting: DBP_AGAIN while it is not all in, past the deadline as
 * above. */
dbp_status dbp_conn_send_internal(dbp_conn *c, const char *sql, int64_t timeout_ns,
                                  dbp_status on_expiry, const char *timeout_name,
                                  dbp_error *err);
dbp_status dbp_conn_collect_internal(dbp_conn *c, dbp_result **res, dbp_error *err);

/* ---- conn_exec.c, for the other statement files of the seam ----------- */

/* Reads what has arrived for the operation in flight: 1 when it is where
 * its caller wants it (all results in, a row, a notification), 0 when more
 * input is needed, -1 when the link failed.  Called only once libpq's
 * output is flushed. */
typedef int (*dbp_conn_reader)(dbp_conn *c, void *ctx);

/* Flushes, reads (read) and waits for the socket until read says 1
 * (DBP_OK), until wait_until (dbp_now_ns() nanoseconds: DBP_AGAIN), or until
 * the statement's deadline, c->deadline_ns (cancelled, the connection
 * broken: c->on_expiry).  A failed link is DBP_QUERY, the connection lost.
 * consume_first: read the socket before looking (an event loop was woken). */
dbp_status dbp_conn_pump(dbp_conn *c, bool consume_first, int64_t wait_until,
                         dbp_conn_reader read, void *ctx, dbp_error *err);

/* The reader of a statement's results: every result read, the last kept
 * in c->pending (or the first error), COPY refused (COPY TO rows read and
 * dropped while c->copy_out, COPY FROM ended with an error). */
int dbp_conn_read_results(dbp_conn *c, void *unused);

/* A user's statement starts: refused while another runs (DBP_INVALID),
 * non-blocking mode, the deadline timeout_ns from now (0: none) under the
 * name query_timeout. */
dbp_status dbp_conn_begin(dbp_conn *c, int64_t timeout_ns, dbp_error *err);

/* A failed statement's error from r (NULL: libpq's own message), deciding
 * whether the connection is broken or lost; always DBP_QUERY.  r is not
 * freed. */
dbp_status dbp_conn_fail(dbp_conn *c, PGresult *r, dbp_error *err);

/* Past the deadline: cancelled, broken, c->on_expiry with its message. */
dbp_status dbp_conn_expired(dbp_conn *c, dbp_error *err);

/* What a result says about the session (its command tag: reset_session,
 * the prepared statements) and its size (max_message_size). */
void dbp_conn_note_result(dbp_conn *c, const PGresult *r);
void dbp_conn_note_tag(dbp_conn *c, const char *tag);

/* The monotonic time timeout_ns from now; INT64_MAX for 0 (no limit). */
int64_t dbp_conn_deadline_of(int64_t timeout_ns);

/* conn_ops.c: an operation's end, whatever happened (c->op back to
 * DBP_OP_NONE, what it held freed), and its name for messages. */
void dbp_conn_op_clear(dbp_conn *c);
/* conn_pipeline.c: frees a pipeline's state, NULL a no-op. */
void dbp_conn_pipeline_free(dbp_pipeline *pl);
const char *dbp_conn_op_name(const dbp_conn *c);

/* conn_exec.c: waits up to timeout_ns nanoseconds (-1: no limit) for the
 * connection's socket to be readable (and writable when want_write):
 * ppoll's answer, >0 ready, 0 not in time, <0 failed (errno). */
int dbp_conn_wait_socket(dbp_conn *c, bool want_write, int64_t timeout_ns);

/* conn.c: asks the server to cancel what the connection runs, without
 * waiting: a cancel request opens a connection of its own, which a silent
 * server would hold, so a detached thread sends it. */
void dbp_conn_cancel_async(dbp_conn *c);

#endif

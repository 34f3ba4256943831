/* conn.h: one libpq connection.  With result.c the only code that calls
 * libpq: the pool and the binding see dbp_conn as opaque, and no function
 * hands libpq's PGconn out. */
#ifndef DBP_CONN_H
#define DBP_CONN_H

#include <stdbool.h>
#include "common.h"
#include "config.h"
#include "conninfo.h"
#include "error.h"
#include "notice.h"
#include "result.h"
#include "resolve.h"

typedef struct dbp_conn dbp_conn;

/* One statement: SQL text and its parameters $1..$n. */
typedef struct dbp_statement {
    const char *sql;
    int nparams;
    const char *const *values;  /* nparams texts; NULL entries are SQL NULL */
    const int *lengths;         /* byte lengths of binary values; NULL: all text */
    const int *formats;         /* 1: binary (raw bytes), 0: text; NULL: all text */
    const unsigned *types;      /* type OIDs, 0: the server infers it; NULL: all inferred */
    bool simple;                /* the simple query protocol: several statements,
                                   no parameters */
} dbp_statement;

typedef enum dbp_txn {
    DBP_TXN_IDLE,      /* no transaction open: nothing to reset */
    DBP_TXN_OPEN,      /* in a transaction block, healthy or failed */
    DBP_TXN_BROKEN     /* unknown or a command still active: discard */
} dbp_txn;

/* Opens a connection with ci's parameters (conninfo.h: the DSN as libpq
 * parsed it at engine creation, with cfg's connect-time settings merged by
 * precedence), blocking the calling thread until deadline_ns at most
 * (dbp_now_ns() nanoseconds; INT64_MAX: no limit): libpq's non-blocking
 * connect and a poll, so the limit is dbpool's, to the nanosecond.  cfg
 * gives what the connection keeps (ping_timeout, role, ...).  Returns
 * DBP_OK with *out; DBP_TIMEOUT when deadline_ns passed first; DBP_CONNECT
 * with libpq's message, scrubbed of the DSN's secrets
 * (dbp_conninfo_scrub); DBP_NOMEM.  On failure *out is untouched. */
DBP_MUSTCHECK dbp_status dbp_conn_open_by(const dbp_config *cfg, const dbp_conninfo *ci,
                                          int64_t deadline_ns, dbp_conn **out, dbp_error *err);

/* dbp_conn_open_by within ci's connect_timeout (seconds; 0: no limit);
 * running past it is DBP_CONNECT, "no answer within connect_timeout". */
DBP_MUSTCHECK dbp_status dbp_conn_open(const dbp_config *cfg, const dbp_conninfo *ci,
                                       dbp_conn **out, dbp_error *err);

/* The same connect without blocking, for event loops: dbp_conn_start sends
 * nothing yet and returns the connection being opened; call
 * dbp_conn_connect_step whenever its socket (dbp_conn_socket) is readable,
 * or writable when *want_write, until DBP_OK (ready, as from
 * dbp_conn_open) or DBP_CONNECT (then close it).  DBP_AGAIN: not yet.
 * connect_timeout is the caller's to enforce. */
DBP_MUSTCHECK dbp_status dbp_conn_start(const dbp_config *cfg, const dbp_conninfo *ci,
                                        dbp_conn **out, dbp_error *err);
DBP_MUSTCHECK dbp_status dbp_conn_connect_step(dbp_conn *c, const dbp_conninfo *ci,
                                               bool *want_write, dbp_error *err);

/* Whether a connect with ci can start without a name lookup on the calling
 * thread: the DSN's host names are looked up on threads of their own, into
 * the cache that every later connect of this process uses (resolve.h).
 * READY also when the DSN needs no lookup (addresses, sockets, hostaddr)
 * or cannot be parsed; PENDING: ask again shortly; FAILED fills err (kind
 * `connect`, naming the host).  Never blocks on I/O. */
dbp_resolve_state dbp_conn_resolve_ahead(const dbp_conninfo *ci, dbp_error *err);

/* Something outside the pool that watches the connection's socket (an
 * nginx worker's event loop, csrc/lua_ngx_wait.c) is told before the
 * connection goes: DBP_CLOSE_NOW from dbp_conn_close, before PQfinish, with
 * the descriptor libpq still holds (-1 when libpq already dropped it after a
 * failure: then the number may belong to someone else); DBP_CLOSE_FORGET
 * from dbp_conn_forget, in a forked child, where the watcher's state is the
 * parent's.  The hook runs on the closing thread, which may be any. */
typedef enum dbp_close_how { DBP_CLOSE_NOW, DBP_CLOSE_FORGET } dbp_close_how;
typedef void (*dbp_close_hook)(void *arg, dbp_close_how how, int fd);
void dbp_conn_set_close_hook(dbp_conn *c, dbp_close_hook hook, void *arg);
/* The arg of the hook set, or NULL. */
void *dbp_conn_close_hook_arg(const dbp_conn *c);

/* Closes politely (libpq sends Terminate) and frees.  NULL is a no-op. */
void dbp_conn_close(dbp_conn *c);

/* Frees a connection inherited across fork() without sending a byte on its
 * socket, which the parent still uses.  NULL is a no-op. */
void dbp_conn_forget(dbp_conn *c);

/* Checkout-time liveness, no round trip: an idle connection whose socket is
 * readable has been sent a goodbye (FATAL) or EOF.  Reads it; false, and
 * the connection marked lost, when the server is gone. */
bool dbp_conn_alive_passive(dbp_conn *c);

/* One round trip within the engine's ping_timeout, or until deadline_ns
 * (dbp_now_ns() nanoseconds; INT64_MAX: ping_timeout alone) when that comes
 * sooner: DBP_TIMEOUT past it (cancelled, the connection broken).  The
 * empty query, or for role = "primary" SHOW transaction_read_only, failing
 * with DBP_QUERY and SQLSTATE 25006 (and marking the connection lost) when
 * the server no longer accepts writes; DBP_QUERY when the link is gone. */
DBP_MUSTCHECK dbp_status dbp_conn_ping(dbp_conn *c, int64_t deadline_ns, dbp_error *err);

/* The same ping for an event loop, which never waits in it:
 * dbp_conn_ping_send sends it (its time as dbp_conn_ping's, from now);
 * dbp_conn_ping_step reads its answer without waiting: DBP_AGAIN until it
 * came (wait for dbp_conn_socket, readable, or writable too when
 * dbp_conn_wants_write), then dbp_conn_ping's outcome; past its time
 * DBP_TIMEOUT, cancelled and the connection broken. */
DBP_MUSTCHECK dbp_status dbp_conn_ping_send(dbp_conn *c, int64_t deadline_ns, dbp_error *err);
DBP_MUSTCHECK dbp_status dbp_conn_ping_step(dbp_conn *c, dbp_error *err);
/* Seconds left until the deadline of the statement in flight (at least 0;
 * HUGE_VAL without one). */
double dbp_conn_deadline_left(const dbp_conn *c);

/* Runs one statement and waits for its result, at most timeout_ns
 * nanoseconds (0: no limit): through the extended protocol (prepared after
 * repeated use with prepare_threshold; a statement the server lost is run
 * again unprepared outside a transaction), or, when stmt->simple, the whole
 * text through the simple protocol.  Every statement goes out in libpq's
 * non-blocking mode and the wait is a poll with the deadline.  On success
 * *res is the last result for the caller to free with dbp_result_free.
 * Fails with DBP_QUERY (the server's sqlstate/severity/detail/hint; the
 * connection marked broken or lost when the link or the session is gone;
 * COPY refused, the connection usable), DBP_QUERY_TIMEOUT (past the
 * deadline: cancelled, the connection broken), or DBP_INVALID (a statement
 * is already in flight on this connection). */
DBP_MUSTCHECK dbp_status dbp_conn_exec(dbp_conn *c, const dbp_statement *stmt, int64_t timeout_ns,
                                       dbp_result **res, dbp_error *err);

/* Non-blocking statements, for event loops.  dbp_conn_send queues the
 * statement (with its deadline, timeout_ns from now, 0: none) without
 * waiting; dbp_conn_collect then waits at most wait_ns (0: not at all) for
 * all of its results: DBP_OK with *res, DBP_AGAIN while the statement
 * still runs (call again later, e.g. when dbp_conn_socket is readable),
 * or a failure as dbp_conn_exec's.  One statement at a time; returning a
 * connection mid-statement cancels it and discards the connection. */
DBP_MUSTCHECK dbp_status dbp_conn_send(dbp_conn *c, const dbp_statement *stmt, int64_t timeout_ns,
                                       dbp_error *err);
DBP_MUSTCHECK dbp_status dbp_conn_collect(dbp_conn *c, int64_t wait_ns, dbp_result **res,
                                          dbp_error *err);
int dbp_conn_socket(const dbp_conn *c);
/* After dbp_conn_collect said DBP_AGAIN: true when it waits to send (the
 * socket must become writable), not only to receive. */
bool dbp_conn_wants_write(const dbp_conn *c);

/* ---- operations of several steps: event loops wait between steps ----
 * Each starts like a statement (refused with DBP_INVALID while another
 * runs; the deadline timeout_ns from now, 0: none, under the name
 * query_timeout: past it cancelled and the connection broken), keeps
 * dbp_conn_busy true until it ends (a connection returned in the middle is
 * discarded), and ends on DBP_OK or on any failure.  wait_ns: how long a
 * step may block, -1 until it is done (threads, Lua 5.4), 0 not at all
 * (DBP_AGAIN: call again when dbp_conn_socket is ready, writable too when
 * dbp_conn_wants_write).  Failures are dbp_conn_exec's. */

/* A pipeline (conn_pipeline.c): the n statements go out in libpq's
 * pipeline mode with one Sync, before any result is read; atomic outside a
 * transaction block (the server's implicit transaction up to the Sync),
 * part of the open one inside.  collect: DBP_OK with *results, *n results
 * (freed with dbp_conn_free_results); or the failure with *failed the
 * failing statement's index (0-based; -1 when none is to blame: the link,
 * the deadline), no result kept. */
DBP_MUSTCHECK dbp_status dbp_conn_pipeline_send(dbp_conn *c, const dbp_statement *stmts, int n,
                                                int64_t timeout_ns, dbp_error *err);
DBP_MUSTCHECK dbp_status dbp_conn_pipeline_collect(dbp_conn *c, int64_t wait_ns,
                                                   dbp_result ***results, int *n,
                                                   int *failed, dbp_error *err);
void dbp_conn_free_results(dbp_result **results, int n);

/* COPY (conn_copy.c).  start sends the one statement (the extended
 * protocol: no list of statements); ready waits for the server's answer:
 * DBP_OK with *from_stdin (COPY FROM STDIN: put, flush, end; else COPY TO
 * STDOUT: get), or the statement's failure, or DBP_QUERY when it was no
 * COPY (it ran).  put queues a chunk of COPY data without waiting; flush
 * sends what is queued; end queues CopyDone (why NULL) or CopyFail (why: the
 * server fails the COPY with that text).  get: DBP_OK with *line (one row in
 * COPY text format without its newline, *len bytes, freed with
 * dbp_conn_free_line), or with *line NULL at the end.  result (after end,
 * or get's end): DBP_OK with *rows copied, or the COPY's failure. */
DBP_MUSTCHECK dbp_status dbp_conn_copy_start(dbp_conn *c, const char *sql, int64_t timeout_ns,
                                             dbp_error *err);
DBP_MUSTCHECK dbp_status dbp_conn_copy_ready(dbp_conn *c, int64_t wait_ns, bool *from_stdin,
                                             dbp_error *err);
DBP_MUSTCHECK dbp_status dbp_conn_copy_put(dbp_conn *c, const char *data, size_t len,
                                           dbp_error *err);
DBP_MUSTCHECK dbp_status dbp_conn_copy_flush(dbp_conn *c, int64_t wait_ns, dbp_error *err);
DBP_MUSTCHECK dbp_status dbp_conn_copy_end(dbp_conn *c, const char *why, dbp_error *err);
DBP_MUSTCHECK dbp_status dbp_conn_copy_get(dbp_conn *c, int64_t wait_ns, char **line, size_t *len,
                                           dbp_error *err);
void dbp_conn_free_line(char *line);
DBP_MUSTCHECK dbp_status dbp_conn_copy_result(dbp_conn *c, int64_t wait_ns, int64_t *rows,
                                              dbp_error *err);

/* A stream (conn_stream.c): stmt's rows one at a time in libpq's
 * single-row mode, nothing held.  next: DBP_OK with *row a one-row result,
 * or with *done and *row the final result (no rows: the command's tag),
 * both freed with dbp_result_free; or the statement's failure (also after
 * rows: an error mid-result). */
DBP_MUSTCHECK dbp_status dbp_conn_stream_send(dbp_conn *c, const dbp_statement *stmt,
                                              int64_t timeout_ns, dbp_error *err);
DBP_MUSTCHECK dbp_status dbp_conn_stream_next(dbp_conn *c, int64_t wait_ns, dbp_result **row,
                                              bool *done, dbp_error *err);

/* Ends the operation in flight that its caller gave up on (conn_ops.c):
 * COPY FROM ended with an error, a stream's or COPY TO's rows read and
 * dropped, within the statement's deadline; DBP_OK leaves the connection
 * usable (outside a transaction nothing of it stays). */
DBP_MUSTCHECK dbp_status dbp_conn_drain(dbp_conn *c, int64_t wait_ns, dbp_error *err);
/* An operation of several steps is in flight. */
bool dbp_conn_in_op(const dbp_conn *c);

/* A notification (NOTIFY) that reached a connection that LISTENs. */
typedef struct dbp_notification {
    char *channel;     /* malloc'd, freed by dbp_conn_free_notification */
    char *payload;     /* "" when none */
    int pid;           /* the sending backend's */
} dbp_notification;

/* Waits at most wait_ns (-1: no limit, 0: only what has arrived) for the
 * next notification on an idle connection (conn_notify.c): DBP_OK with
 * *out; DBP_AGAIN when none came in time (call again when dbp_conn_socket
 * is readable); DBP_QUERY when the link is gone (the connection lost);
 * DBP_INVALID while a statement runs on it. */
DBP_MUSTCHECK dbp_status dbp_conn_notify_wait(dbp_conn *c, int64_t wait_ns,
                                              dbp_notification *out, dbp_error *err);
void dbp_conn_free_notification(dbp_notification *n);

/* Where the session stands, from PQtransactionStatus: no round trip. */
dbp_txn dbp_conn_txn(const dbp_conn *c);
/* The same by libpq's name: "idle", "active", "intrans", "inerror" or
 * "unknown". */
const char *dbp_conn_txn_name(const dbp_conn *c);

/* s (len bytes) quoted as a string literal (PQescapeLiteral) or an
 * identifier (PQescapeIdentifier) for this connection's encoding: *out is
 * malloc'd for dbp_conn_free_text.  DBP_QUERY with libpq's reason when s is
 * not valid in that encoding. */
DBP_MUSTCHECK dbp_status dbp_conn_escape(dbp_conn *c, const char *s, size_t len, bool identifier,
                                         char **out, dbp_error *err);
void dbp_conn_free_text(char *text);

/* ROLLBACK or COMMIT an open transaction (one round trip), within the
 * engine's reset_timeout (DBP_TIMEOUT past it: cancelled, the connection
 * broken).  Callers ask dbp_conn_txn first, so an idle connection costs
 * nothing. */
DBP_MUSTCHECK dbp_status dbp_conn_reset(dbp_conn *c, dbp_reset how, dbp_error *err);

/* DISCARD ALL (reset_session), within reset_timeout as dbp_conn_reset. */
DBP_MUSTCHECK dbp_status dbp_conn_discard(dbp_conn *c, dbp_error *err);
/* True when reset_session (mode) asks for DISCARD ALL before the next
 * borrower: "auto" after a command tag that may have changed the session
 * (SET, RESET, LISTEN, PREPARE, DECLARE CURSOR, CREATE TABLE, LOAD),
 * "always" after any statement. */
bool dbp_conn_needs_discard(const dbp_conn *c, dbp_session_reset mode);
/* A statement is in flight (sent, its results not all read). */
bool dbp_conn_busy(const dbp_conn *c);
/* A message over max_message_size went through (then broken too). */
bool dbp_conn_oversized(const dbp_conn *c);

/* True once a failure showed that the link or session is unusable, or a
 * message over max_message_size went through (libpq keeps its grown
 * buffers until the connection closes). */
bool dbp_conn_broken(const dbp_conn *c);
/* Sound, idle outside a transaction, and nothing for reset_session (mode)
 * to discard: nothing to do at a return.  One libpq call. */
bool dbp_conn_clean(const dbp_conn *c, dbp_session_reset mode);
/* True when the failure was the server's, not this session's: a disconnect
 * (class 08, 57P01-03, a dead socket) or, for a primary, a read-only server.
 * The pool then replaces every connection born before it. */
bool dbp_conn_lost(const dbp_conn *c);
void dbp_conn_mark_broken(dbp_conn *c);

int dbp_conn_backend_pid(const dbp_conn *c);

/* The server's notices received on c and not yet logged (notice.h): from
 * the first byte of the connect on, whichever call read them.  Owned by
 * whoever holds the connection. */
dbp_notices *dbp_conn_notices(dbp_conn *c);

/* True for SQLSTATEs by which the server says it is ending the session:
 * 57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now.
 * Class 08 is not among them: on a live connection (08P01, a wrong
 * parameter count) it is the statement's error; a link that is really gone
 * shows in libpq's connection status. */
bool dbp_sqlstate_is_disconnect(const char *sqlstate);

#endif

/* conn_exec.c: statements on a libpq connection (conn.h).  Every statement
 * goes out in libpq's non-blocking mode and is driven here to its end, so
 * every wait has a deadline (a blocking caller waits in poll, an event loop
 * between calls).  Also here: the prepared-statement cache
 * (prepare_threshold) kept in step with the server (conn_tags.c reads what
 * command tags say of it and of the session), COPY refused on the plain path, and
 * failures read into dbp_error, deciding whether the connection is broken
 * or lost.  Part of the libpq seam with conn.c and result.c. */
#include "conn_internal.h"

#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A connection lost mid-query yields a result without fields; its text,
 * verbose, reads "FATAL:  57P01: terminating connection due to administrator
 * command\nLOCATION: ...\nserver closed the connection unexpectedly...".
 * Recover severity, SQLSTATE and message from it; libpq's own last line
 * becomes the detail. */
static void parse_lost_message(const char *text, dbp_error *err)
{
    const char *sep = strstr(text, ":  ");
    const char *code = sep ? sep + 3 : NULL;
    const char *eol, *last;

    if (code == NULL || (size_t)(sep - text) >= sizeof err->severity)
        return;
    for (int i = 0; i < 5; i++)
        if (!isdigit((unsigned char)code[i]) && !isupper((unsigned char)code[i]))
            return;
    if (code[5] != ':' || code[6] != ' ')
        return;
    memcpy(err->severity, text, (size_t)(sep - text));
    err->severity[sep - text] = '\0';
    memcpy(err->sqlstate, code, 5);
    err->sqlstate[5] = '\0';
    eol = strchr(code + 7, '\n');
    dbp_copy_text(err->message, sizeof err->message, code + 7);
    if (eol != NULL && (size_t)(eol - (code + 7)) < sizeof err->message)
        err->message[eol - (code + 7)] = '\0';
    /* libpq's own words ("server closed the connection unexpectedly") */
    for (last = eol; last != NULL && strncmp(last + 1, "LOCATION:", 9) == 0;)
        last = strchr(last + 1, '\n');
    if (last != NULL)
        dbp_copy_text(err->detail, sizeof err->detail, last + 1);
    if ((eol = strchr(err->detail, '\n')) != NULL)
        *(char *)eol = '\0';
}

/* A failed statement's error.  The connection is lost (a pool-wide event)
 * only when it is gone: libpq reports it bad, or the server said it is
 * ending the session (57P01-57P03, or any FATAL: the server closes the
 * session after one, as PgBouncer's "database removed"), or, for role =
 * "primary", the server turned read-only (25006).  Any other error on a
 * live connection, class 08 included (08P01 for a wrong parameter count),
 * is the statement's own. */
dbp_status dbp_conn_fail(dbp_conn *c, PGresult *r, dbp_error *err)
{
    const char *primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *sqlstate = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;

    dbp_error_clear(err);
    err->status = DBP_QUERY;
    dbp_copy_text(err->message, sizeof err->message,
                  primary ? primary : PQerrorMessage(c->pg));
    if (r != NULL) {
        dbp_copy_text(err->sqlstate, sizeof err->sqlstate, sqlstate);
        dbp_copy_text(err->severity, sizeof err->severity,
                      PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED));
        dbp_copy_text(err->detail, sizeof err->detail,
                      PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL));
        dbp_copy_text(err->hint, sizeof err->hint, PQresultErrorField(r, PG_DIAG_MESSAGE_HINT));
    }
    if (PQstatus(c->pg) != CONNECTION_OK) {
        if (err->sqlstate[0] == '\0')
            parse_lost_message(PQerrorMessage(c->pg), err);
        c->broken = c->lost = true;
    }
    if (dbp_sqlstate_is_disconnect(err->sqlstate) || strcmp(err->severity, "FATAL") == 0 ||
        strcmp(err->severity, "PANIC") == 0)
        c->broken = c->lost = true;
    if (c->primary && strcmp(err->sqlstate, "25006") == 0)
        c->broken = c->lost = true;
    if (err->message[0] == '\0')
        dbp_copy_text(err->message, sizeof err->message, "connection lost");
    return DBP_QUERY;
}

/* The statement in flight outlasted its deadline: cancel it, give up on
 * the connection (its protocol state is mid-statement), say which timeout. */
dbp_status dbp_conn_expired(dbp_conn *c, dbp_error *err)
{
    dbp_conn_cancel_async(c);
    c->broken = true;
    c->busy = false;
    c->copy_out = false;
    PQclear(c->pending);
    c->pending = NULL;
    return dbp_error_set(err, c->on_expiry,
                         "canceled: no answer within %s (%.3g s); the connection is closed",
                         c->timeout_name, c->timeout_s);
}

/* A statement's final result: *res on success, else the error (and r is
 * freed).  r may be NULL (libpq could not even build a result). */
static dbp_status take_result(dbp_conn *c, PGresult *r, dbp_result **res, dbp_error *err)
{
    switch (r ? PQresultStatus(r) : PGRES_FATAL_ERROR) {
    case PGRES_COMMAND_OK:
    case PGRES_TUPLES_OK:
    case PGRES_EMPTY_QUERY:
        *res = r;
        return DBP_OK;
    default: {
        dbp_status st = dbp_conn_fail(c, r, err);
        PQclear(r);
        return st;
    }
    }
}

/* ---- reading results ---------------------------------------------------- */

void dbp_conn_note_result(dbp_conn *c, const PGresult *r)
{
    if (c->max_message > 0 && PQresultMemorySize(r) > c->max_message)
        c->oversized = true;
    dbp_conn_note_tag(c, PQcmdStatus((PGresult *)r));
}

/* Keeps the last result, as PQexec does, but never lets a later one hide an
 * error; notes its command tag and its size. */
static void keep_result(dbp_conn *c, PGresult *r)
{
    dbp_conn_note_result(c, r);
    if (c->pending != NULL && PQresultStatus(c->pending) == PGRES_FATAL_ERROR) {
        PQclear(r);
    } else {
        PQclear(c->pending);
        c->pending = r;
    }
}

/* Reads what has arrived: 1 when every result is in (c->pending holds the
 * last, or the first error), 0 when more input is needed, -1 when the link
 * failed.  COPY is refused here: COPY FROM STDIN is ended with an error,
 * COPY TO STDOUT's rows are read and dropped. */
int dbp_conn_read_results(dbp_conn *c, void *unused)
{
    (void)unused;
    for (;;) {
        if (c->copy_out) {
            char *row;
            int n;
            while ((n = PQgetCopyData(c->pg, &row, 1)) > 0)
                PQfreemem(row);
            if (n == 0)
                return 0;
            c->copy_out = false;              /* -1: done; -2: its error result follows */
        }
        if (PQisBusy(c->pg))
            return 0;
        PGresult *r = PQgetResult(c->pg);
        if (r == NULL)
            return 1;
        switch (PQresultStatus(r)) {
        case PGRES_COPY_OUT:
            c->copy_refused = c->copy_out = true;
            PQclear(r);
            break;
        case PGRES_COPY_IN:
        case PGRES_COPY_BOTH:
            c->copy_refused = true;
            PQclear(r);
            if (PQputCopyEnd(c->pg, "COPY is not run by query or exec") != 1)
                return -1;
            break;
        default:
            keep_result(c, r);
        }
    }
}

int dbp_conn_wait_socket(dbp_conn *c, bool want_write, int64_t timeout_ns)
{
    struct pollfd pfd = {.fd = PQsocket(c->pg), .events = POLLIN | (want_write ? POLLOUT : 0)};
    struct timespec ts;

    if (timeout_ns < 0)
        return ppoll(&pfd, 1, NULL, NULL);
    ts.tv_sec = (time_t)(timeout_ns / DBP_NS_PER_SEC);
    ts.tv_nsec = (long)(timeout_ns % DBP_NS_PER_SEC);
    return ppoll(&pfd, 1, &ts, NULL);
}

dbp_status dbp_conn_pump(dbp_conn *c, bool consume_first, int64_t wait_until,
                         dbp_conn_reader read, void *ctx, dbp_error *err)
{
    if (consume_first && !PQconsumeInput(c->pg))
        goto link_failed;
    for (;;) {
        int flushing = PQflush(c->pg), got = 0;     /* flush: 1 more to send, -1 failed */
        int64_t now, until;

        c->want_write = flushing == 1;
        if (flushing < 0 || (flushing == 0 && (got = read(c, ctx)) < 0))
            goto link_failed;
        if (got == 1)
            return DBP_OK;
        until = wait_until < c->deadline_ns ? wait_until : c->deadline_ns;
        now = until == INT64_MAX ? 0 : dbp_now_ns();   /* no clock without a deadline */
        if (now >= c->deadline_ns)
            return dbp_conn_expired(c, err);
        if (now >= until) {
            /* An event loop's watch is edge-triggered (nginx): it wakes once
             * per arrival, and one PQconsumeInput may leave part of a large
             * result in the socket.  Read on while it is readable, or the
             * rest would wait for a wake that never comes. */
            if (flushing == 0 && dbp_conn_wait_socket(c, false, 0) > 0) {
                if (!PQconsumeInput(c->pg))
                    goto link_failed;
                continue;
            }
            return DBP_AGAIN;
        }
        int ready = dbp_conn_wait_socket(c, flushing == 1, until == INT64_MAX ? -1 : until - now);
        if (ready < 0 && errno != EINTR)
            goto link_failed;
        if (ready > 0 && !PQconsumeInput(c->pg))
            goto link_failed;
    }
link_failed:                              /* no more results will come */
    c->busy = false;
    c->copy_out = false;
    PQclear(c->pending);
    c->pending = NULL;
    return dbp_conn_fail(c, NULL, err);
}

/* Drives the statement in flight until every result is in (DBP_OK, *out the
 * last result or the first error, to be taken), until wait_until
 * (DBP_AGAIN), or until its deadline (cancelled).  consume_first: read the
 * socket before looking (an event loop that was woken); a statement just
 * sent has nothing to read yet, and skipping the read saves a system call. */
static dbp_status drive(dbp_conn *c, bool consume_first, int64_t wait_until, PGresult **out,
                        dbp_error *err)
{
    dbp_status st = dbp_conn_pump(c, consume_first, wait_until, dbp_conn_read_results, NULL, err);

    if (st != DBP_OK)
        return st;
    c->busy = false;
    *out = c->pending;
    c->pending = NULL;
    return DBP_OK;
}

/* ---- starting a statement -------------------------------------------- */

/* The monotonic time timeout_ns from now; INT64_MAX for 0 (no limit). */
int64_t dbp_conn_deadline_of(int64_t timeout_ns)
{
    return timeout_ns > 0 ? dbp_now_ns() + timeout_ns : INT64_MAX;
}

/* Everything a statement does before its first byte goes out: one at a
 * time, non-blocking mode (every wait is dbpool's, with a deadline), the
 * deadline itself. */
static dbp_status begin(dbp_conn *c, int64_t deadline, int64_t timeout_ns, dbp_status on_expiry,
                        const char *timeout_name, dbp_error *err)
{
    if (c->op != DBP_OP_NONE)
        return dbp_error_set(err, DBP_INVALID, "a %s is still running on this connection",
                             dbp_conn_op_name(c));
    if (c->busy)
        return dbp_error_set(err, DBP_INVALID, "a statement is already running on this connection");
    if (!PQisnonblocking(c->pg) && PQsetnonblocking(c->pg, 1) != 0)
        return dbp_conn_fail(c, NULL, err);
    c->deadline_ns = deadline;
    c->timeout_s = (double)timeout_ns / (double)DBP_NS_PER_SEC;
    c->on_expiry = on_expiry;
    c->timeout_name = timeout_name;
    c->copy_refused = c->copy_out = false;
    if (c->sent_sql != NULL) {
        free(c->sent_sql);
        c->sent_sql = NULL;
    }
    return DBP_OK;
}

/* The statement was handed to libpq (sent is its PQsend* answer). */
static dbp_status sent_or_failed(dbp_conn *c, int sent, dbp_error *err)
{
    if (!sent)
        return dbp_conn_fail(c, NULL, err);
    c->busy = true;
    c->ran_statement = true;
    return DBP_OK;
}

/* A statement run to its end: the result, or the error (COPY refused). */
static dbp_status finish(dbp_conn *c, PGresult *r, dbp_result **res, dbp_error *err)
{
    if (c->copy_refused) {
        PQclear(r);
        return dbp_error_set(err, DBP_QUERY,
                             "COPY is not run by conn:query or conn:exec: use conn:copy_from(sql, "
                             "rows or chunks) or conn:copy_to(sql, fn); the connection stays usable");
    }
    return take_result(c, r, res, err);
}

dbp_status dbp_conn_begin(dbp_conn *c, int64_t timeout_ns, dbp_error *err)
{
    return begin(c, dbp_conn_deadline_of(timeout_ns), timeout_ns, DBP_QUERY_TIMEOUT,
                 "query_timeout", err);
}

dbp_status dbp_conn_exec_internal(dbp_conn *c, const char *sql, int64_t timeout_ns,
                                  dbp_status on_expiry, const char *timeout_name,
                                  dbp_result **res, dbp_error *err)
{
    PGresult *r;
    dbp_status st = begin(c, dbp_conn_deadline_of(timeout_ns), timeout_ns, on_expiry, timeout_name, err);

    if (st == DBP_OK)
        st = sent_or_failed(c, PQsendQuery(c->pg, sql), err);
    if (st == DBP_OK)
        st = drive(c, false, INT64_MAX, &r, err);
    return st == DBP_OK ? take_result(c, r, res, err) : st;
}

dbp_status dbp_conn_send_internal(dbp_conn *c, const char *sql, int64_t timeout_ns,
                                  dbp_status on_expiry, const char *timeout_name,
                                  dbp_error *err)
{
    dbp_status st = begin(c, dbp_conn_deadline_of(timeout_ns), timeout_ns, on_expiry, timeout_name, err);

    if (st == DBP_OK)
        st = sent_or_failed(c, PQsendQuery(c->pg, sql), err);
    return st;
}

dbp_status dbp_conn_collect_internal(dbp_conn *c, dbp_result **res, dbp_error *err)
{
    PGresult *r;
    dbp_status st;

    if (!c->busy)
        return dbp_error_set(err, DBP_INVALID, "no statement is running on this connection");
    st = drive(c, true, dbp_now_ns(), &r, err);
    return st == DBP_OK ? take_result(c, r, res, err) : st;
}

/* An internal statement of a user's statement, whose result only matters
 * as success or failure, within that statement's deadline. */
static dbp_status run_internal(dbp_conn *c, const char *sql, int64_t deadline, dbp_error *err)
{
    int64_t timeout_s = c->timeout_s > 0 ? (int64_t)(c->timeout_s * 1e9) : 0;
    PGresult *r;
    dbp_status st = begin(c, deadline, timeout_s, DBP_QUERY_TIMEOUT, "query_timeout", err);

    if (st == DBP_OK)
        st = sent_or_failed(c, PQsendQuery(c->pg, sql), err);
    if (st == DBP_OK)
        st = drive(c, false, INT64_MAX, &r, err);
    if (st != DBP_OK)
        return st;
    st = PQresultStatus(r) == PGRES_FATAL_ERROR ? dbp_conn_fail(c, r, err) : DBP_OK;
    PQclear(r);
    return st;
}

/* ---- prepare_threshold: statements prepared after repeated use -------- */

/* A statement the cache let go: deallocated with the next statement, or,
 * inside an aborted transaction (where DEALLOCATE cannot run), once it has
 * ended, so the server never keeps more of ours than prepared_max. */
static void queue_dealloc(dbp_conn *c, const char *name)
{
    if (c->n_dealloc == c->dealloc_cap) {
        int cap = c->dealloc_cap ? 2 * c->dealloc_cap : 4;
        void *grown = realloc(c->dealloc, (size_t)cap * sizeof *c->dealloc);
        if (grown == NULL) {          /* cannot track it: close the session instead */
            c->broken = true;
            return;
        }
        c->dealloc = grown;
        c->dealloc_cap = cap;
    }
    memcpy(c->dealloc[c->n_dealloc++], name, sizeof *c->dealloc);
}

/* Deallocates the queued statements in one round trip, unless a
 * transaction is aborted.  Only a broken link or the deadline fails it: a
 * statement the app deallocated already is nothing to worry about. */
static dbp_status flush_deallocs(dbp_conn *c, int64_t deadline, dbp_error *err)
{
    char *sql;
    size_t used = 0;
    dbp_status st;

    if (c->n_dealloc == 0 || PQtransactionStatus(c->pg) == PQTRANS_INERROR)
        return DBP_OK;
    if ((sql = malloc((size_t)c->n_dealloc * (sizeof *c->dealloc + 12) + 1)) == NULL)
        return dbp_error_set(err, DBP_NOMEM, "out of memory deallocating statements");
    for (int i = 0; i < c->n_dealloc; i++)
        used += (size_t)sprintf(sql + used, "DEALLOCATE %s;", c->dealloc[i]);
    c->n_dealloc = 0;
    st = run_internal(c, sql, deadline, err);
    free(sql);
    return st == DBP_QUERY && !c->broken ? DBP_OK : st;
}

/* The server lost our statement s (the app deallocated it: 26000 naming
 * it) or its plan went stale (0A000 raised by the plan cache's
 * revalidation, "cached plan must not change result type").  Any other
 * 0A000 is the statement's own, and running it again could repeat a side
 * effect. */
static bool statement_gone(const PGresult *r, const dbp_stmt *s)
{
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char *message = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    const char *where = PQresultErrorField(r, PG_DIAG_SOURCE_FUNCTION);

    if (state == NULL || PQresultStatus(r) != PGRES_FATAL_ERROR)
        return false;
    if (strcmp(state, "26000") == 0)
        return message != NULL && strstr(message, s->name) != NULL;
    return strcmp(state, "0A000") == 0 && where != NULL &&
           strcmp(where, "RevalidateCachedQuery") == 0;
}

/* stmt's cache entry when it runs prepared (prepared first if it just
 * became due), else NULL: run it unprepared.  A failed PREPARE is the
 * statement's own error (a syntax error, say), left in *failed.  Returns
 * only a broken link or the deadline. */
static dbp_status prepare_if_due(dbp_conn *c, const dbp_statement *stmt, int64_t deadline,
                                 dbp_stmt **entry, PGresult **failed, dbp_error *err)
{
    char evicted[24];
    dbp_stmt *s = dbp_stmt_use(c->stmts, stmt->sql, evicted);
    int64_t timeout_ns = (int64_t)(c->timeout_s * 1e9);
    PGresult *r;
    dbp_status st;

    *entry = NULL;
    *failed = NULL;
    if (evicted[0] != '\0')
        queue_dealloc(c, evicted);
    if ((st = flush_deallocs(c, deadline, err)) != DBP_OK || s == NULL)
        return st;
    if (dbp_stmt_due(c->stmts, s)) {
        st = begin(c, deadline, timeout_ns, DBP_QUERY_TIMEOUT, "query_timeout", err);
        if (st == DBP_OK)
            st = sent_or_failed(c, PQsendPrepare(c->pg, s->name, stmt->sql, stmt->nparams,
                                                 stmt->types), err);
        if (st == DBP_OK)
            st = drive(c, false, INT64_MAX, &r, err);
        if (st != DBP_OK)
            return st;
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            *failed = r;
            return DBP_OK;
        }
        PQclear(r);
        s->prepared = true;
    }
    *entry = s->prepared ? s : NULL;
    return DBP_OK;
}

/* s's statement is gone on the server (statement_gone): forget it, and
 * deallocate it when it still exists (a stale plan). */
static void forget_gone(dbp_conn *c, dbp_stmt *s, const PGresult *r)
{
    if (strcmp(PQresultErrorField(r, PG_DIAG_SQLSTATE), "0A000") == 0)
        queue_dealloc(c, s->name);
    dbp_stmt_forget(c->stmts, s);
}

/* ---- running statements ------------------------------------------------ */

/* Bytes a statement sends: its text and its parameters. */
static size_t message_size(const dbp_statement *stmt)
{
    size_t n = strlen(stmt->sql);

    for (int i = 0; i < stmt->nparams; i++)
        if (stmt->values[i] != NULL)
            n += stmt->formats != NULL && stmt->formats[i] == 1 ? (size_t)stmt->lengths[i]
                                                                 : strlen(stmt->values[i]);
    return n;
}

/* Sends stmt (prepared when the cache says so and use_cache), to be driven
 * to its end by deadline. */
static dbp_status send_statement(dbp_conn *c, const dbp_statement *stmt, bool use_cache,
                                 int64_t deadline, int64_t timeout_ns, dbp_error *err)
{
    PGresult *failed = NULL;
    dbp_status st;
    int sent;

    c->sent_stmt = NULL;
    c->timeout_s = (double)timeout_ns / (double)DBP_NS_PER_SEC;
    if (use_cache && !stmt->simple && c->stmts != NULL) {
        if ((st = prepare_if_due(c, stmt, deadline, &c->sent_stmt, &failed, err)) != DBP_OK)
            return st;
        if (failed != NULL)
            return take_result(c, failed, NULL, err);
    }
    if ((st = begin(c, deadline, timeout_ns, DBP_QUERY_TIMEOUT, "query_timeout", err)) != DBP_OK)
        return st;
    if (c->stmts != NULL && strcasestr(stmt->sql, "deallocate") != NULL)
        c->sent_sql = strdup(stmt->sql);      /* NULL when out of memory: tags then miss it */
    if (c->max_message > 0 && message_size(stmt) > c->max_message)
        c->oversized = true;
    if (stmt->simple)
        sent = PQsendQuery(c->pg, stmt->sql);
    else if (c->sent_stmt != NULL)
        sent = PQsendQueryPrepared(c->pg, c->sent_stmt->name, stmt->nparams, stmt->values,
                                   stmt->lengths, stmt->formats, 0);
    else
        sent = PQsendQueryParams(c->pg, stmt->sql, stmt->nparams, stmt->types, stmt->values,
                                 stmt->lengths, stmt->formats, 0);
    return sent_or_failed(c, sent, err);
}

/* The common statement, with no deadline and nothing to prepare: libpq's
 * PQexecParams sends it and waits in one call, which costs less than
 * driving it here, and waiting without a deadline is what the caller asked
 * for.  A COPY it started is handed to drive, which refuses it. */
static dbp_status exec_plain(dbp_conn *c, const dbp_statement *stmt, dbp_result **res,
                             dbp_error *err)
{
    PGresult *r;
    dbp_status st;

    if ((st = begin(c, INT64_MAX, 0, DBP_QUERY_TIMEOUT, "query_timeout", err)) != DBP_OK)
        return st;
    if (c->max_message > 0 && message_size(stmt) > c->max_message)
        c->oversized = true;
    c->ran_statement = true;
    r = PQexecParams(c->pg, stmt->sql, stmt->nparams, stmt->types, stmt->values, stmt->lengths,
                     stmt->formats, 0);
    switch (r != NULL ? PQresultStatus(r) : PGRES_FATAL_ERROR) {
    case PGRES_COPY_OUT:
    case PGRES_COPY_IN:
    case PGRES_COPY_BOTH:
        c->copy_refused = true;
        c->copy_out = PQresultStatus(r) == PGRES_COPY_OUT;
        if (!c->copy_out && PQputCopyEnd(c->pg, "COPY is not run by query or exec") != 1) {
            PQclear(r);
            return dbp_conn_fail(c, NULL, err);
        }
        PQclear(r);
        c->busy = true;
        if ((st = drive(c, false, INT64_MAX, &r, err)) != DBP_OK)
            return st;
        return finish(c, r, res, err);
    default:
        if (r != NULL) {
            if (c->max_message > 0 && PQresultMemorySize(r) > c->max_message)
                c->oversized = true;
            dbp_conn_note_tag(c, PQcmdStatus(r));
        }
        return take_result(c, r, res, err);
    }
}

dbp_status dbp_conn_exec(dbp_conn *c, const dbp_statement *stmt, int64_t timeout_ns,
                         dbp_result **res, dbp_error *err)
{
    int64_t deadline;
    dbp_status st;
    PGresult *r;

    if (timeout_ns == 0 && !stmt->simple && c->stmts == NULL)
        return exec_plain(c, stmt, res, err);
    deadline = dbp_conn_deadline_of(timeout_ns);
    st = send_statement(c, stmt, true, deadline, timeout_ns, err);

    if (st == DBP_OK)
        st = drive(c, false, INT64_MAX, &r, err);
    if (st != DBP_OK)
        return st;
    if (c->sent_stmt != NULL && statement_gone(r, c->sent_stmt)) {
        forget_gone(c, c->sent_stmt, r);
        /* Outside a transaction nothing was lost: run the text unprepared.
         * Inside one, the transaction is aborted and the error is the
         * caller's. */
        if (PQtransactionStatus(c->pg) == PQTRANS_IDLE) {
            PQclear(r);
            st = send_statement(c, stmt, false, deadline, timeout_ns, err);
            if (st == DBP_OK)
                st = drive(c, false, INT64_MAX, &r, err);
            if (st != DBP_OK)
                return st;
        }
    }
    return finish(c, r, res, err);
}

dbp_status dbp_conn_send(dbp_conn *c, const dbp_statement *stmt, int64_t timeout_ns,
                         dbp_error *err)
{
    return send_statement(c, stmt, true, dbp_conn_deadline_of(timeout_ns), timeout_ns, err);
}

dbp_status dbp_conn_collect(dbp_conn *c, int64_t timeout_ns, dbp_result **res, dbp_error *err)
{
    PGresult *r;
    dbp_status st;

    if (!c->busy)
        return dbp_error_set(err, DBP_INVALID, "no statement is running on this connection");
    st = drive(c, true, dbp_now_ns() + timeout_ns, &r, err);
    if (st != DBP_OK)
        return st;
    /* Unlike the blocking path this cannot rerun the text (its parameters
     * are gone): the error is returned once and the next run prepares anew. */
    if (c->sent_stmt != NULL && statement_gone(r, c->sent_stmt))
        forget_gone(c, c->sent_stmt, r);
    return finish(c, r, res, err);
}

/* ---- at a return ------------------------------------------------------- */

dbp_status dbp_conn_reset(dbp_conn *c, dbp_reset how, dbp_error *err)
{
    int64_t timeout_ns = c->reset_timeout_ns;
    dbp_result *r = NULL;
    dbp_status st;

    if (how == DBP_RESET_NONE)
        return DBP_OK;
    st = dbp_conn_exec_internal(c, how == DBP_RESET_COMMIT ? "COMMIT" : "ROLLBACK", timeout_ns,
                                DBP_TIMEOUT, "reset_timeout", &r, err);
    if (st != DBP_OK)
        return st;
    PQclear(r);
    return flush_deallocs(c, dbp_conn_deadline_of(timeout_ns), err);
}

dbp_status dbp_conn_discard(dbp_conn *c, dbp_error *err)
{
    dbp_result *r = NULL;
    dbp_status st = dbp_conn_exec_internal(c, "DISCARD ALL", c->reset_timeout_ns, DBP_TIMEOUT,
                                           "reset_timeout", &r, err);
    if (st == DBP_OK) {
        PQclear(r);
        c->n_dealloc = 0;                 /* DISCARD ALL dropped every statement */
    }
    return st;
}

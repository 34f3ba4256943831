/* conn_exec.c: statements on a libpq connection (conn.h): blocking and
 * non-blocking, prepared after repeated use (prepare_threshold), and their
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

static dbp_status fail_from_result(dbp_conn *c, PGresult *r, dbp_error *err)
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
    if (dbp_sqlstate_is_disconnect(err->sqlstate))
        c->broken = c->lost = true;
    /* role = "primary" and the server refused a write as read-only: it was
     * demoted (failover) or fenced; every connection to it is suspect. */
    if (c->primary && strcmp(err->sqlstate, "25006") == 0)
        c->broken = c->lost = true;
    if (err->message[0] == '\0')
        dbp_copy_text(err->message, sizeof err->message, "connection lost");
    return DBP_QUERY;
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
        dbp_status st = fail_from_result(c, r, err);
        PQclear(r);
        return st;
    }
    }
}

/* ---- prepare_threshold: statements prepared after repeated use ---------- */

/* Best effort: a statement the cache let go.  Skipped inside a failed
 * transaction, where it could not run; the server then drops it with the
 * session. */
static void deallocate(dbp_conn *c, const char *name)
{
    char sql[64];

    if (PQtransactionStatus(c->pg) == PQTRANS_INERROR)
        return;
    snprintf(sql, sizeof sql, "DEALLOCATE %s", name);
    PQclear(PQexec(c->pg, sql));
}

/* The entry of sql when it is prepared now (after preparing it if it just
 * became due), else NULL: run it unprepared.  A failed PQprepare is the
 * statement's own error (a syntax error, say): returned as the result. */
static dbp_stmt *prepared_entry(dbp_conn *c, const dbp_statement *stmt, PGresult **failed)
{
    char evicted[24];
    dbp_stmt *s = dbp_stmt_use(c->stmts, stmt->sql, evicted);

    if (evicted[0] != '\0')
        deallocate(c, evicted);
    if (s != NULL && dbp_stmt_due(c->stmts, s)) {
        PGresult *r = PQprepare(c->pg, s->name, stmt->sql, stmt->nparams, stmt->types);
        if (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK) {
            *failed = r;
            return NULL;
        }
        PQclear(r);
        s->prepared = true;
    }
    return s != NULL && s->prepared ? s : NULL;
}

/* The server lost the statement (the app ran DEALLOCATE ALL or DISCARD
 * ALL: 26000) or its plan no longer fits the tables (0A000, "cached plan
 * must not change result type"). */
static bool statement_gone(const PGresult *r)
{
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    return state != NULL && (strcmp(state, "26000") == 0 || strcmp(state, "0A000") == 0);
}

static PGresult *exec_params(dbp_conn *c, const dbp_statement *stmt)
{
    return PQexecParams(c->pg, stmt->sql, stmt->nparams, stmt->types, stmt->values,
                        stmt->lengths, stmt->formats, 0);
}

static PGresult *exec_cached(dbp_conn *c, const dbp_statement *stmt)
{
    PGresult *r = NULL;
    dbp_stmt *s = prepared_entry(c, stmt, &r);

    if (r != NULL)                        /* PQprepare failed */
        return r;
    if (s == NULL)
        return exec_params(c, stmt);
    r = PQexecPrepared(c->pg, s->name, stmt->nparams, stmt->values, stmt->lengths,
                       stmt->formats, 0);
    if (PQresultStatus(r) == PGRES_FATAL_ERROR && statement_gone(r)) {
        char stale[sizeof s->name];
        memcpy(stale, s->name, sizeof stale);
        dbp_stmt_forget(c->stmts, s);
        /* Outside a transaction nothing was lost: drop the stale statement
         * and run the text as if it had never been prepared.  Inside one,
         * the transaction is aborted and the error is the caller's. */
        if (PQtransactionStatus(c->pg) == PQTRANS_IDLE) {
            deallocate(c, stale);
            PQclear(r);
            r = exec_params(c, stmt);
        }
    }
    return r;
}

dbp_status dbp_conn_exec(dbp_conn *c, const dbp_statement *stmt, dbp_result **res,
                         dbp_error *err)
{
    PGresult *r;

    if (stmt->simple)
        r = PQexec(c->pg, stmt->sql);
    else if (c->stmts != NULL)
        r = exec_cached(c, stmt);
    else
        r = exec_params(c, stmt);
    return take_result(c, r, res, err);
}

dbp_status dbp_conn_exec_simple(dbp_conn *c, const char *sql, dbp_result **res, dbp_error *err)
{
    dbp_statement stmt = {.sql = sql, .simple = true};
    return dbp_conn_exec(c, &stmt, res, err);
}

/* ---- non-blocking statements (event loops) ---------------------------- */

dbp_status dbp_conn_send(dbp_conn *c, const dbp_statement *stmt, dbp_error *err)
{
    int sent;

    if (c->busy)
        return dbp_error_set(err, DBP_INVALID, "a statement is already running on this connection");
    /* A statement that just became due is prepared here, blocking for that
     * one round trip: once per text and connection (docs/decisions.md). */
    c->sent_stmt = NULL;
    if (!stmt->simple && c->stmts != NULL) {
        PGresult *failed = NULL;
        c->sent_stmt = prepared_entry(c, stmt, &failed);
        if (failed != NULL || PQstatus(c->pg) != CONNECTION_OK)
            return take_result(c, failed, NULL, err);
    }
    if (!PQisnonblocking(c->pg) && PQsetnonblocking(c->pg, 1) != 0)
        return fail_from_result(c, NULL, err);
    if (stmt->simple)
        sent = PQsendQuery(c->pg, stmt->sql);
    else if (c->sent_stmt != NULL)
        sent = PQsendQueryPrepared(c->pg, c->sent_stmt->name, stmt->nparams, stmt->values,
                                   stmt->lengths, stmt->formats, 0);
    else
        sent = PQsendQueryParams(c->pg, stmt->sql, stmt->nparams, stmt->types, stmt->values,
                                 stmt->lengths, stmt->formats, 0);
    if (!sent)
        return fail_from_result(c, NULL, err);
    c->busy = true;
    return DBP_OK;
}

/* Waits up to timeout_ns for the socket to be ready for what libpq needs. */
static int wait_socket(dbp_conn *c, bool want_write, int64_t timeout_ns)
{
    struct pollfd pfd = {.fd = PQsocket(c->pg), .events = POLLIN | (want_write ? POLLOUT : 0)};
    struct timespec ts = {.tv_sec = (time_t)(timeout_ns / DBP_NS_PER_SEC),
                          .tv_nsec = (long)(timeout_ns % DBP_NS_PER_SEC)};

    return ppoll(&pfd, 1, &ts, NULL);
}

dbp_status dbp_conn_collect(dbp_conn *c, int64_t timeout_ns, dbp_result **res, dbp_error *err)
{
    int64_t deadline = dbp_now_ns() + timeout_ns;

    if (!c->busy)
        return dbp_error_set(err, DBP_INVALID, "no statement is running on this connection");
    for (;;) {
        int flushing = PQflush(c->pg);       /* 1: more to send, -1: failed */
        c->want_write = flushing == 1;
        if (flushing < 0 || !PQconsumeInput(c->pg))
            break;
        while (flushing == 0 && !PQisBusy(c->pg)) {
            PGresult *r = PQgetResult(c->pg);
            if (r == NULL) {                   /* all results read: done */
                c->busy = false;
                r = c->pending;
                c->pending = NULL;
                /* Unlike the blocking path this cannot rerun the text (its
                 * parameters are gone): the error is returned once and the
                 * next run prepares it anew. */
                if (c->sent_stmt != NULL && r != NULL && statement_gone(r))
                    dbp_stmt_forget(c->stmts, c->sent_stmt);
                return take_result(c, r, res, err);
            }
            /* Keep the last result, as PQexec does, but never let a later
             * one hide an error. */
            if (c->pending != NULL && PQresultStatus(c->pending) == PGRES_FATAL_ERROR) {
                PQclear(r);
            } else {
                PQclear(c->pending);
                c->pending = r;
            }
        }
        int64_t left = deadline - dbp_now_ns();
        if (left <= 0)
            return DBP_AGAIN;
        int ready = wait_socket(c, flushing == 1, left);
        if (ready < 0 && errno != EINTR)
            break;
        if (ready == 0)
            return DBP_AGAIN;
    }
    /* The link failed: no more results will come. */
    c->busy = false;
    PQclear(c->pending);
    c->pending = NULL;
    return fail_from_result(c, NULL, err);
}

dbp_status dbp_conn_reset(dbp_conn *c, dbp_reset how, dbp_error *err)
{
    dbp_result *r = NULL;
    dbp_status st;

    if (how == DBP_RESET_NONE)
        return DBP_OK;
    st = dbp_conn_exec_simple(c, how == DBP_RESET_COMMIT ? "COMMIT" : "ROLLBACK", &r, err);
    if (st == DBP_OK)
        PQclear(r);
    return st;
}

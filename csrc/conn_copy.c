/* conn_copy.c: COPY ... FROM STDIN and COPY ... TO STDOUT (conn.h,
 * dbp_conn_copy_*), step by step so that an event loop can wait between
 * steps: start, ready (the server's CopyInResponse or CopyOutResponse),
 * then put and flush (FROM) or get (TO), then end and result.  Every wait
 * is dbp_conn_pump's, within the statement's deadline (query_timeout).
 * A COPY that failed or was abandoned ends with the connection usable:
 * COPY FROM is ended with an error message (the server rolls the COPY
 * back), COPY TO is read to its end (dbp_conn_drain).  Part of the libpq
 * seam. */
#include "conn_internal.h"

#include <stdlib.h>

dbp_status dbp_conn_copy_start(dbp_conn *c, const char *sql, int64_t timeout_ns, dbp_error *err)
{
    dbp_status st = dbp_conn_begin(c, timeout_ns, err);

    if (st != DBP_OK)
        return st;
    /* The extended protocol: one statement, never a list of them. */
    if (PQsendQueryParams(c->pg, sql, 0, NULL, NULL, NULL, NULL, 0) != 1)
        return dbp_conn_fail(c, NULL, err);
    c->op = DBP_OP_COPY_START;
    c->busy = true;
    c->ran_statement = true;
    return DBP_OK;
}

/* The reader of a COPY's first answer: 1 at CopyIn/CopyOut (c->op says
 * which) or once the statement ended without one (c->op still
 * DBP_OP_COPY_START; an error kept in op_error, another result in pending). */
static int read_copy_answer(dbp_conn *c, void *unused)
{
    (void)unused;
    for (;;) {
        if (PQisBusy(c->pg))
            return 0;
        PGresult *r = PQgetResult(c->pg);
        if (r == NULL)
            return 1;
        switch (PQresultStatus(r)) {
        case PGRES_COPY_IN:
            c->op = DBP_OP_COPY_IN;
            PQclear(r);
            return 1;
        case PGRES_COPY_OUT:
            c->op = DBP_OP_COPY_OUT;
            PQclear(r);
            return 1;
        case PGRES_COPY_BOTH:                 /* replication only: never asked for */
            PQclear(r);
            c->broken = true;
            return -1;
        case PGRES_FATAL_ERROR:
            if (c->op_error == NULL)
                c->op_error = r;
            else
                PQclear(r);
            break;
        default:
            dbp_conn_note_result(c, r);
            PQclear(c->pending);
            c->pending = r;
        }
    }
}

dbp_status dbp_conn_copy_ready(dbp_conn *c, int64_t wait_ns, bool *from_stdin, dbp_error *err)
{
    int64_t until = wait_ns < 0 ? INT64_MAX : dbp_now_ns() + wait_ns;
    dbp_status st;

    if (c->op != DBP_OP_COPY_START)
        return dbp_error_set(err, DBP_INVALID, "no COPY is starting on this connection");
    st = dbp_conn_pump(c, wait_ns >= 0, until, read_copy_answer, NULL, err);
    if (st == DBP_AGAIN)
        return st;
    if (st == DBP_OK && c->op != DBP_OP_COPY_START) {
        *from_stdin = c->op == DBP_OP_COPY_IN;
        return DBP_OK;
    }
    if (st == DBP_OK)                         /* it ran, and was no COPY */
        st = c->op_error != NULL
                 ? dbp_conn_fail(c, c->op_error, err)
                 : dbp_error_set(err, DBP_QUERY, "the statement was not a COPY ... FROM STDIN "
                                 "or COPY ... TO STDOUT (it ran: %s)",
                                 c->pending ? PQcmdStatus(c->pending) : "no result");
    else
        c->broken = true;
    dbp_conn_op_clear(c);
    return st;
}

dbp_status dbp_conn_copy_put(dbp_conn *c, const char *data, size_t len, dbp_error *err)
{
    if (c->op != DBP_OP_COPY_IN)
        return dbp_error_set(err, DBP_INVALID, "no COPY FROM STDIN is running on this connection");
    if (len > 0x3fffffff)
        return dbp_error_set(err, DBP_INVALID, "a COPY chunk of %zu bytes: at most 1 GB", len);
    if (c->max_message > 0 && len > c->max_message)
        c->oversized = true;
    /* Non-blocking: libpq grows its buffer rather than wait; flush drains it. */
    if (PQputCopyData(c->pg, data, (int)len) != 1) {
        c->broken = true;
        dbp_conn_op_clear(c);
        return dbp_conn_fail(c, NULL, err);
    }
    return DBP_OK;
}

/* The reader of a flush: done as soon as libpq's output went out (pump
 * calls readers only then). */
static int flushed(dbp_conn *c, void *unused)
{
    (void)c;
    (void)unused;
    return 1;
}

dbp_status dbp_conn_copy_flush(dbp_conn *c, int64_t wait_ns, dbp_error *err)
{
    int64_t until = wait_ns < 0 ? INT64_MAX : dbp_now_ns() + wait_ns;
    dbp_status st;

    if (c->op != DBP_OP_COPY_IN)
        return dbp_error_set(err, DBP_INVALID, "no COPY FROM STDIN is running on this connection");
    st = dbp_conn_pump(c, false, until, flushed, NULL, err);
    if (st != DBP_OK && st != DBP_AGAIN) {
        c->broken = true;
        dbp_conn_op_clear(c);
    }
    return st;
}

dbp_status dbp_conn_copy_end(dbp_conn *c, const char *why, dbp_error *err)
{
    if (c->op != DBP_OP_COPY_IN)
        return dbp_error_set(err, DBP_INVALID, "no COPY FROM STDIN is running on this connection");
    if (PQputCopyEnd(c->pg, why) != 1) {
        c->broken = true;
        dbp_conn_op_clear(c);
        return dbp_conn_fail(c, NULL, err);
    }
    c->op = DBP_OP_COPY_END;
    return DBP_OK;
}

/* ctx of read_copy_row: the row read, or NULL at the end. */
typedef struct copy_row {
    char *buf;
    int len;
} copy_row;

static int read_copy_row(dbp_conn *c, void *ctx)
{
    copy_row *row = ctx;
    int n = PQgetCopyData(c->pg, &row->buf, 1);

    if (n == 0)
        return 0;                            /* more input needed */
    if (n > 0) {
        row->len = n;
        return 1;
    }
    row->buf = NULL;                         /* -1: the end; -2: an error, in the result */
    c->op = DBP_OP_COPY_END;
    return 1;
}

dbp_status dbp_conn_copy_get(dbp_conn *c, int64_t wait_ns, char **line, size_t *len,
                             dbp_error *err)
{
    int64_t until = wait_ns < 0 ? INT64_MAX : dbp_now_ns() + wait_ns;
    copy_row row = {NULL, 0};
    dbp_status st;

    *line = NULL;
    if (c->op == DBP_OP_COPY_END)             /* the end was seen before */
        return DBP_OK;
    if (c->op != DBP_OP_COPY_OUT)
        return dbp_error_set(err, DBP_INVALID, "no COPY TO STDOUT is running on this connection");
    st = dbp_conn_pump(c, false, until, read_copy_row, &row, err);
    if (st == DBP_AGAIN && wait_ns >= 0)     /* an event loop woke us: read, then look again */
        st = dbp_conn_pump(c, true, until, read_copy_row, &row, err);
    if (st != DBP_OK) {
        if (st != DBP_AGAIN) {
            c->broken = true;
            dbp_conn_op_clear(c);
        }
        return st;
    }
    if (row.buf != NULL) {
        if (c->max_message > 0 && (size_t)row.len > c->max_message)
            c->oversized = true;
        *len = (size_t)row.len;
        if (*len > 0 && row.buf[*len - 1] == '\n')   /* one row per message in text format */
            (*len)--;
        *line = row.buf;
    }
    return DBP_OK;
}

void dbp_conn_free_line(char *line)
{
    PQfreemem(line);
}

dbp_status dbp_conn_copy_result(dbp_conn *c, int64_t wait_ns, int64_t *rows, dbp_error *err)
{
    int64_t until = wait_ns < 0 ? INT64_MAX : dbp_now_ns() + wait_ns;
    dbp_status st;
    PGresult *r;

    if (c->op != DBP_OP_COPY_END)
        return dbp_error_set(err, DBP_INVALID, "no COPY is ending on this connection");
    st = dbp_conn_pump(c, wait_ns >= 0, until, dbp_conn_read_results, NULL, err);
    if (st == DBP_AGAIN)
        return st;
    if (st != DBP_OK) {
        c->broken = true;
        dbp_conn_op_clear(c);
        return st;
    }
    r = c->pending;
    if (r != NULL && PQresultStatus(r) == PGRES_COMMAND_OK) {
        *rows = PQcmdTuples(r)[0] != '\0' ? dbp_parse_int(PQcmdTuples(r)) : 0;
    } else {
        st = dbp_conn_fail(c, r, err);
    }
    dbp_conn_op_clear(c);                    /* frees pending */
    return st;
}

/* conn_stream.c: a statement's rows one at a time (conn.h,
 * dbp_conn_stream_*), through libpq's single-row mode, so that a result of
 * any size goes through in constant memory: libpq hands each row over as a
 * result of its own and keeps none.  Within the statement's deadline
 * (query_timeout) like any statement; a caller that stops early drains the
 * rest (dbp_conn_drain).  Part of the libpq seam. */
#include "conn_internal.h"

dbp_status dbp_conn_stream_send(dbp_conn *c, const dbp_statement *stmt, int64_t timeout_ns,
                                dbp_error *err)
{
    dbp_status st = dbp_conn_begin(c, timeout_ns, err);

    if (st != DBP_OK)
        return st;
    if (PQsendQueryParams(c->pg, stmt->sql, stmt->nparams, stmt->types, stmt->values,
                          stmt->lengths, stmt->formats, 0) != 1)
        return dbp_conn_fail(c, NULL, err);
    c->op = DBP_OP_STREAM;
    c->busy = true;
    c->ran_statement = true;
    if (PQsetSingleRowMode(c->pg) != 1) {     /* only refused right after a send */
        c->broken = true;
        dbp_conn_op_clear(c);
        return dbp_error_set(err, DBP_QUERY, "libpq refused single-row mode");
    }
    return DBP_OK;
}

/* The reader of a stream: 1 with a row in *ctx, or 1 at the end (*ctx
 * NULL; the last result in c->pending, or the error in c->op_error).  Rows
 * after an error (none come) or after the final result are dropped. */
static int read_row(dbp_conn *c, void *ctx)
{
    PGresult **row = ctx;

    for (;;) {
        if (PQisBusy(c->pg))
            return 0;
        PGresult *r = PQgetResult(c->pg);
        if (r == NULL)
            return 1;
        switch (PQresultStatus(r)) {
        case PGRES_SINGLE_TUPLE:
            if (c->op_error == NULL) {
                *row = r;
                return 1;
            }
            PQclear(r);
            break;
        case PGRES_FATAL_ERROR:
            if (c->op_error == NULL)
                c->op_error = r;
            else
                PQclear(r);
            break;
        case PGRES_COPY_IN: case PGRES_COPY_OUT: case PGRES_COPY_BOTH:
            /* COPY has an API of its own: stream_next ends it */
            c->op = PQresultStatus(r) == PGRES_COPY_OUT ? DBP_OP_COPY_OUT : DBP_OP_COPY_IN;
            PQclear(r);
            return 1;
        default:
            dbp_conn_note_result(c, r);
            PQclear(c->pending);
            c->pending = r;
        }
    }
}

dbp_status dbp_conn_stream_next(dbp_conn *c, int64_t wait_ns, dbp_result **row, bool *done,
                                dbp_error *err)
{
    int64_t until = wait_ns < 0 ? INT64_MAX : dbp_now_ns() + wait_ns;
    PGresult *r = NULL;
    dbp_status st;

    *row = NULL;
    *done = false;
    if (c->op != DBP_OP_STREAM)
        return dbp_error_set(err, DBP_INVALID, "no stream is running on this connection");
    st = dbp_conn_pump(c, false, until, read_row, &r, err);
    if (st == DBP_AGAIN && wait_ns >= 0)      /* an event loop woke us: read, look again */
        st = dbp_conn_pump(c, true, until, read_row, &r, err);
    if (st == DBP_AGAIN)
        return st;
    if (st == DBP_OK && r != NULL) {
        *row = r;
        return DBP_OK;
    }
    if (st == DBP_OK && c->op != DBP_OP_STREAM) {  /* a COPY, which the binding refuses
                                                       first: ended as conn:query does */
        st = dbp_conn_drain(c, -1, err);
        return st != DBP_OK ? st
                            : dbp_error_set(err, DBP_QUERY, "COPY is not run by conn:stream: use "
                                            "conn:copy_to(sql, fn); the connection stays usable");
    }
    if (st == DBP_OK && c->op_error != NULL) {
        st = dbp_conn_fail(c, c->op_error, err);
    } else if (st == DBP_OK) {
        *row = c->pending;                     /* the final result: no rows, its tag */
        c->pending = NULL;
        *done = true;
    } else {
        c->broken = true;
    }
    dbp_conn_op_clear(c);
    return st;
}

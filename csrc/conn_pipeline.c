/* conn_pipeline.c: several statements in one round trip (conn.h,
 * dbp_conn_pipeline_*), through libpq's pipeline mode: every statement
 * goes out (Parse, Bind, Describe, Execute each) before any result is read,
 * then one Sync.  Outside a transaction block the server runs everything up
 * to a Sync as one implicit transaction, committed at the Sync when all
 * succeeded and rolled back when one failed (PostgreSQL's protocol, "Extended
 * Query" and "Pipelining"): so the batch is atomic without a BEGIN of ours,
 * and PgBouncer in transaction mode keeps it on one server connection.
 * Inside an open transaction the batch is part of it.  Statements go
 * unprepared (the unnamed statement): prepare_threshold's cache is for
 * statements run one at a time.  Part of the libpq seam. */
#include "conn_internal.h"

#include <stdlib.h>

struct dbp_pipeline {
    int n;              /* statements sent */
    int next;           /* the statement whose results are being read */
    int failed;         /* the first that failed (0-based), -1: none yet */
    PGresult **res;     /* each statement's last result (n, malloc'd) */
};

void dbp_conn_pipeline_free(dbp_pipeline *pl)
{
    if (pl == NULL)
        return;
    dbp_conn_free_results((dbp_result **)pl->res, pl->n);
    free(pl);
}

void dbp_conn_free_results(dbp_result **results, int n)
{
    if (results == NULL)
        return;
    for (int i = 0; i < n; i++)
        PQclear(results[i]);
    free(results);
}

/* Queues the statements and the Sync; nothing waits. */
static dbp_status queue_all(dbp_conn *c, const dbp_statement *stmts, int n, dbp_error *err)
{
    if (PQenterPipelineMode(c->pg) != 1)
        return dbp_conn_fail(c, NULL, err);
    for (int i = 0; i < n; i++) {
        const dbp_statement *s = &stmts[i];
        if (PQsendQueryParams(c->pg, s->sql, s->nparams, s->types, s->values, s->lengths,
                              s->formats, 0) != 1)
            return dbp_conn_fail(c, NULL, err);
    }
    if (PQpipelineSync(c->pg) != 1)
        return dbp_conn_fail(c, NULL, err);
    return DBP_OK;
}

dbp_status dbp_conn_pipeline_send(dbp_conn *c, const dbp_statement *stmts, int n,
                                  int64_t timeout_ns, dbp_error *err)
{
    dbp_status st = dbp_conn_begin(c, timeout_ns, err);

    if (st != DBP_OK)
        return st;
    if (n < 1)
        return dbp_error_set(err, DBP_INVALID, "a pipeline needs at least one statement");
    if ((c->pipe = calloc(1, sizeof *c->pipe)) == NULL ||
        (c->pipe->res = calloc((size_t)n, sizeof(PGresult *))) == NULL) {
        free(c->pipe);
        c->pipe = NULL;
        return dbp_error_set(err, DBP_NOMEM, "out of memory for a pipeline of %d statements", n);
    }
    c->pipe->n = n;
    c->pipe->failed = -1;
    c->op = DBP_OP_PIPELINE;
    c->busy = true;
    c->ran_statement = true;
    if ((st = queue_all(c, stmts, n, err)) != DBP_OK) {
        c->broken = true;               /* mid-pipeline, the protocol state is unknown */
        dbp_conn_op_clear(c);
    }
    return st;
}

/* The reader of a pipeline's results: each statement's results, then NULL;
 * after the first error the rest come as PGRES_PIPELINE_ABORTED; last the
 * Sync's PGRES_PIPELINE_SYNC, which ends it (1). */
static int read_pipeline(dbp_conn *c, void *unused)
{
    dbp_pipeline *pl = c->pipe;

    (void)unused;
    for (;;) {
        if (PQisBusy(c->pg))
            return 0;
        PGresult *r = PQgetResult(c->pg);
        if (r == NULL) {                         /* a statement's results are all in */
            if (pl->next >= pl->n)
                return 0;                        /* only the Sync is to come */
            pl->next++;
            continue;
        }
        switch (PQresultStatus(r)) {
        case PGRES_PIPELINE_SYNC:
            PQclear(r);
            return 1;
        case PGRES_FATAL_ERROR:
            if (c->op_error == NULL) {
                c->op_error = r;
                pl->failed = pl->next;
            } else {
                PQclear(r);
            }
            break;
        case PGRES_COPY_IN: case PGRES_COPY_OUT: case PGRES_COPY_BOTH:
            PQclear(r);                          /* libpq cannot end a COPY in a pipeline */
            c->broken = true;
            return -1;
        case PGRES_PIPELINE_ABORTED:
            PQclear(r);
            break;
        default:
            dbp_conn_note_result(c, r);
            if (pl->next < pl->n) {
                PQclear(pl->res[pl->next]);
                pl->res[pl->next] = r;
            } else {
                PQclear(r);
            }
        }
    }
}

/* Every result is in: the results (the pipeline's, handed over) or the
 * first error. */
static dbp_status finished(dbp_conn *c, dbp_result ***results, int *n, int *failed,
                           dbp_error *err)
{
    dbp_pipeline *pl = c->pipe;
    dbp_status st = DBP_OK;

    if (PQexitPipelineMode(c->pg) != 1)          /* cannot fail after the Sync: be sure */
        c->broken = true;
    if (c->op_error != NULL) {
        *failed = pl->failed;
        st = dbp_conn_fail(c, c->op_error, err);
    } else {
        *results = (dbp_result **)pl->res;       /* handed over */
        *n = pl->n;
        pl->res = NULL;
        pl->n = 0;
    }
    dbp_conn_op_clear(c);
    return st;
}

dbp_status dbp_conn_pipeline_collect(dbp_conn *c, int64_t wait_ns, dbp_result ***results,
                                     int *n, int *failed, dbp_error *err)
{
    int64_t until = wait_ns < 0 ? INT64_MAX : dbp_now_ns() + wait_ns;
    dbp_status st;

    *failed = -1;
    if (c->op != DBP_OP_PIPELINE)
        return dbp_error_set(err, DBP_INVALID, "no pipeline is running on this connection");
    st = dbp_conn_pump(c, wait_ns >= 0, until, read_pipeline, NULL, err);
    if (st == DBP_AGAIN)
        return st;
    if (st != DBP_OK) {                          /* the link or the deadline */
        *failed = c->pipe->next < c->pipe->n ? c->pipe->next : -1;
        c->broken = true;
        dbp_conn_op_clear(c);
        return st;
    }
    return finished(c, results, n, failed, err);
}

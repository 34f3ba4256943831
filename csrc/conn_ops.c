/* conn_ops.c: what the operations of several steps (a pipeline, COPY, a
 * stream: conn_pipeline.c, conn_copy.c, conn_stream.c) share: their end,
 * their names, and the drain that leaves a connection usable after its
 * caller gave up on one (a Lua function that raised).  Part of the libpq
 * seam. */
#include "conn_internal.h"

void dbp_conn_op_clear(dbp_conn *c)
{
    dbp_conn_pipeline_free(c->pipe);
    c->pipe = NULL;
    PQclear(c->op_error);
    c->op_error = NULL;
    PQclear(c->pending);
    c->pending = NULL;
    c->op = DBP_OP_NONE;
    c->busy = false;
    c->copy_out = false;
}

const char *dbp_conn_op_name(const dbp_conn *c)
{
    switch (c->op) {
    case DBP_OP_PIPELINE: return "pipeline";
    case DBP_OP_COPY_START: case DBP_OP_COPY_IN: case DBP_OP_COPY_OUT: case DBP_OP_COPY_END:
        return "COPY";
    case DBP_OP_STREAM: return "stream";
    case DBP_OP_DRAIN: return "drain";
    default: return "statement";
    }
}

bool dbp_conn_in_op(const dbp_conn *c)
{
    return c->op != DBP_OP_NONE;
}

/* Reads and drops the rest of the operation's results (COPY TO rows, a
 * stream's rows, a COPY FROM's error after dbp_conn_copy_end with a
 * message) within the statement's deadline: a cancel would be quicker,
 * but libpq 15's PQcancel either blocks without a deadline or, sent from
 * a thread, may land on the next statement (docs/decisions.md). */
dbp_status dbp_conn_drain(dbp_conn *c, int64_t wait_ns, dbp_error *err)
{
    int64_t until = wait_ns < 0 ? INT64_MAX : dbp_now_ns() + wait_ns;
    dbp_status st;

    switch (c->op) {
    case DBP_OP_NONE:
        return DBP_OK;
    case DBP_OP_PIPELINE:
        return dbp_error_set(err, DBP_INVALID, "a pipeline is not drained");
    case DBP_OP_COPY_IN:                 /* no rows went out: end it with an error */
        if (PQputCopyEnd(c->pg, "abandoned by dbpool") != 1) {
            c->broken = true;
            dbp_conn_op_clear(c);
            return dbp_conn_fail(c, NULL, err);
        }
        break;
    case DBP_OP_COPY_OUT:
        c->copy_out = true;              /* dbp_conn_read_results drops its rows */
        break;
    default:
        break;
    }
    c->op = DBP_OP_DRAIN;
    st = dbp_conn_pump(c, wait_ns >= 0, until, dbp_conn_read_results, NULL, err);
    if (st == DBP_AGAIN)
        return st;
    if (st != DBP_OK)
        c->broken = true;
    dbp_conn_op_clear(c);                /* the results, an error among them, are dropped */
    return st;
}

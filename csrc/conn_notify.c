/* conn_notify.c: waiting for notifications (LISTEN/NOTIFY) on a
 * connection of its own (conn.h, dbp_conn_notify_wait), with dbpool's
 * deadline, and reading them.  Part of the libpq seam. */
#include "conn_internal.h"

#include <stdlib.h>
#include <string.h>

/* The reader of a wait: 1 with a notification in *ctx. */
static int read_notify(dbp_conn *c, void *ctx)
{
    PGnotify **n = ctx;

    if ((*n = PQnotifies(c->pg)) != NULL)    /* parses what arrived first */
        return 1;
    return PQstatus(c->pg) == CONNECTION_OK ? 0 : -1;
}

dbp_status dbp_conn_notify_wait(dbp_conn *c, int64_t wait_ns, dbp_notification *out,
                                dbp_error *err)
{
    int64_t until = wait_ns < 0 ? INT64_MAX : dbp_now_ns() + wait_ns;
    PGnotify *n = NULL;
    dbp_status st;

    memset(out, 0, sizeof *out);
    if (c->busy || c->op != DBP_OP_NONE)
        return dbp_error_set(err, DBP_INVALID, "a statement is running on this connection");
    c->deadline_ns = INT64_MAX;              /* a wait, not a statement: wait_ns alone bounds it */
    if (!PQisnonblocking(c->pg) && PQsetnonblocking(c->pg, 1) != 0)
        return dbp_conn_fail(c, NULL, err);
    st = dbp_conn_pump(c, false, until, read_notify, &n, err);
    if (st == DBP_AGAIN && wait_ns >= 0 && n == NULL)   /* an event loop woke us: read, look */
        st = dbp_conn_pump(c, true, until, read_notify, &n, err);
    if (st != DBP_OK)
        return st;
    out->channel = strdup(n->relname);
    out->payload = strdup(n->extra);
    out->pid = n->be_pid;
    PQfreemem(n);
    if (out->channel == NULL || out->payload == NULL) {
        dbp_conn_free_notification(out);
        return dbp_error_set(err, DBP_NOMEM, "out of memory reading a notification");
    }
    return DBP_OK;
}

void dbp_conn_free_notification(dbp_notification *n)
{
    free(n->channel);
    free(n->payload);
    n->channel = n->payload = NULL;
}

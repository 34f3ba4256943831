/* pool_stmt.c: statements on checked-out slots (pool_stmt.h): the
 * bookkeeping every caller gets, around conn.c's statements. */
#include "pool_internal.h"
#include "pool_stmt.h"

static dbp_status inherited(dbp_error *err)
{
    return dbp_error_set(err, DBP_CLOSED,
                         "dbpool.Conn was checked out before fork(); its socket belongs to the "
                         "parent process: check out a connection in this one");
}

static void note_statements(dbp_pool *p, dbp_slot *s, int n)
{
    s->queries += n;                     /* what max_queries rotates on */
    for (int i = 0; i < n; i++)
        dbp_metrics_inc(dbp_pool_metrics(p), DBP_M_QUERIES);
}

static void note_statement(dbp_pool *p, dbp_slot *s)
{
    note_statements(p, s, 1);
}

/* st is a failed statement's status: count it, and let the pool see a
 * disconnect.  A refusal that sent nothing (DBP_INVALID: misuse, such as a
 * second send) is no query error. */
static dbp_status failed(dbp_pool *p, dbp_slot *s, dbp_status st)
{
    if (st == DBP_INVALID)
        return st;
    if (st == DBP_QUERY_TIMEOUT)
        dbp_metrics_inc(&p->metrics, DBP_M_QUERY_TIMEOUTS);
    dbp_metrics_inc(&p->metrics, DBP_M_QUERY_ERRORS);
    dbp_pool_note_failure(p, s);
    return st;
}

dbp_status dbp_slot_exec(dbp_pool *p, dbp_slot *s, const dbp_statement *stmt, dbp_result **res,
                         dbp_error *err)
{
    dbp_status st;

    if (dbp_slot_inherited(s))
        return inherited(err);
    note_statement(p, s);
    st = dbp_conn_exec(s->conn, stmt, s->query_timeout_ns, res, err);
    return st == DBP_OK ? st : failed(p, s, st);
}

dbp_status dbp_slot_send(dbp_pool *p, dbp_slot *s, const dbp_statement *stmt, dbp_error *err)
{
    dbp_status st;

    if (dbp_slot_inherited(s))
        return inherited(err);
    note_statement(p, s);
    st = dbp_conn_send(s->conn, stmt, s->query_timeout_ns, err);
    return st == DBP_OK ? st : failed(p, s, st);
}

dbp_status dbp_slot_collect(dbp_pool *p, dbp_slot *s, int64_t timeout_ns, dbp_result **res,
                            dbp_error *err)
{
    dbp_status st;

    if (dbp_slot_inherited(s))
        return inherited(err);
    st = dbp_conn_collect(s->conn, timeout_ns, res, err);
    return st == DBP_OK || st == DBP_AGAIN ? st : failed(p, s, st);
}

/* The ping on demand failed (err): counted, and a dead server is a
 * disconnect for the pool. */
static dbp_status ping_failed(dbp_pool *p, dbp_slot *s, dbp_error *err)
{
    if (err->status == DBP_TIMEOUT)
        dbp_metrics_inc(&p->metrics, DBP_M_PING_TIMEOUTS);
    dbp_pool_note_failure(p, s);
    return err->status;
}

/* The ping's first half: the socket, then the ping sent (send) or run
 * (blocking). */
static dbp_status ping_start(dbp_pool *p, dbp_slot *s, bool send, dbp_error *err)
{
    dbp_conn *c = dbp_slot_conn(s);

    if (dbp_slot_inherited(s))
        return inherited(err);
    if (!dbp_conn_alive_passive(c))
        dbp_error_set(err, DBP_QUERY, "the server closed the connection");
    else if ((send ? dbp_conn_ping_send(c, INT64_MAX, err) : dbp_conn_ping(c, INT64_MAX, err)) ==
             DBP_OK)
        return DBP_OK;
    return ping_failed(p, s, err);
}

dbp_status dbp_slot_ping(dbp_pool *p, dbp_slot *s, dbp_error *err)
{
    return ping_start(p, s, false, err);
}

dbp_status dbp_slot_ping_send(dbp_pool *p, dbp_slot *s, dbp_error *err)
{
    return ping_start(p, s, true, err);
}

dbp_status dbp_slot_ping_step(dbp_pool *p, dbp_slot *s, dbp_error *err)
{
    dbp_status st;

    if (dbp_slot_inherited(s))
        return inherited(err);
    st = dbp_conn_ping_step(dbp_slot_conn(s), err);
    return st == DBP_OK || st == DBP_AGAIN ? st : ping_failed(p, s, err);
}

dbp_status dbp_slot_begin(dbp_pool *p, dbp_slot *s, int n, dbp_error *err)
{
    if (dbp_slot_inherited(s))
        return inherited(err);
    note_statements(p, s, n);
    return DBP_OK;
}

dbp_status dbp_slot_step(dbp_pool *p, dbp_slot *s, dbp_status st)
{
    return st == DBP_OK || st == DBP_AGAIN ? st : failed(p, s, st);
}

int64_t dbp_slot_query_timeout_ns(const dbp_slot *s)
{
    return s->query_timeout_ns;
}

void dbp_slot_set_query_timeout(dbp_slot *s, double seconds)
{
    s->query_timeout_ns = dbp_sec_to_ns(seconds);
}

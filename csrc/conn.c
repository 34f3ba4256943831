/* conn.c: the pool's only door to libpq. */
#include "conn.h"

#include <libpq-fe.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dbp_conn {
    PGconn *pg;
    bool broken;
};

bool dbp_sqlstate_is_disconnect(const char *s)
{
    if (s == NULL || s[0] == '\0')
        return false;
    return strncmp(s, "08", 2) == 0 || strcmp(s, "57P01") == 0 ||
           strcmp(s, "57P02") == 0 || strcmp(s, "57P03") == 0;
}

/* libpq's messages could echo a malformed DSN; no byte of the password may
 * reach an error.  Replace every occurrence of it with "***". */
static void scrub_password(char *msg, const char *dsn)
{
    PQconninfoOption *opts = PQconninfoParse(dsn, NULL);
    const char *pw = NULL;

    if (opts == NULL)
        return;
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++)
        if (strcmp(o->keyword, "password") == 0 && o->val != NULL && o->val[0] != '\0')
            pw = o->val;
    if (pw != NULL) {
        size_t pl = strlen(pw);
        char *hit;
        while ((hit = strstr(msg, pw)) != NULL) {
            size_t tail = strlen(hit + pl);
            if (pl >= 3) {
                memcpy(hit, "***", 3);
                memmove(hit + 3, hit + pl, tail + 1);
            } else {
                memset(hit, '*', pl);
            }
        }
    }
    PQconninfoFree(opts);
}

static void drop_notice(void *arg, const char *message)
{
    DBP_UNUSED(arg);
    DBP_UNUSED(message);
}

/* "-c statement_timeout=30000 -c lock_timeout=..." for the startup packet. */
static void build_options(const dbp_config *cfg, char *buf, size_t size)
{
    size_t used = 0;
    struct { const char *name; int value; } settings[] = {
        {"statement_timeout", cfg->statement_timeout},
        {"lock_timeout", cfg->lock_timeout},
        {"idle_in_transaction_session_timeout", cfg->idle_in_transaction_session_timeout},
    };

    buf[0] = '\0';
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++) {
        if (settings[i].value < 0)
            continue;
        int w = snprintf(buf + used, size - used, "%s-c %s=%d", used ? " " : "",
                         settings[i].name, settings[i].value);
        if (w > 0 && (size_t)w < size - used)
            used += (size_t)w;
    }
}

dbp_status dbp_conn_open(const dbp_config *cfg, const char *dsn, dbp_conn **out,
                         dbp_error *err)
{
    const char *keys[6], *vals[6];
    char timeout[32], options[256];
    int n = 0;
    dbp_conn *c;
    PGconn *pg;

    /* dbname first: with expand_dbname the later keywords override the DSN. */
    keys[n] = "dbname", vals[n++] = dsn;
    if (cfg->connect_timeout > 0) {
        /* libpq takes whole seconds (and treats 1 as 2): round up. */
        snprintf(timeout, sizeof timeout, "%d", (int)ceil(cfg->connect_timeout));
        keys[n] = "connect_timeout", vals[n++] = timeout;
    }
    if (cfg->application_name != NULL)
        keys[n] = "application_name", vals[n++] = cfg->application_name;
    build_options(cfg, options, sizeof options);
    if (options[0] != '\0')
        keys[n] = "options", vals[n++] = options;
    keys[n] = NULL, vals[n] = NULL;

    pg = PQconnectdbParams(keys, vals, 1);
    if (pg == NULL)
        return dbp_error_set(err, DBP_NOMEM, "out of memory opening a connection");
    if (PQstatus(pg) != CONNECTION_OK) {
        dbp_error_set(err, DBP_CONNECT, "could not connect: ");
        size_t used = strlen(err->message);
        dbp_copy_text(err->message + used, sizeof err->message - used, PQerrorMessage(pg));
        scrub_password(err->message, dsn);
        PQfinish(pg);
        return DBP_CONNECT;
    }
    /* libpq prints NOTICEs to stderr by default; a library must not write
     * to the app's stderr, so they are dropped. */
    PQsetNoticeProcessor(pg, drop_notice, NULL);
    c = calloc(1, sizeof *c);
    if (c == NULL) {
        PQfinish(pg);
        return dbp_error_set(err, DBP_NOMEM, "out of memory opening a connection");
    }
    c->pg = pg;
    *out = c;
    return DBP_OK;
}

void dbp_conn_close(dbp_conn *c)
{
    if (c == NULL)
        return;
    PQfinish(c->pg);
    free(c);
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
    if (PQstatus(c->pg) != CONNECTION_OK || dbp_sqlstate_is_disconnect(err->sqlstate))
        c->broken = true;
    if (err->message[0] == '\0')
        dbp_copy_text(err->message, sizeof err->message, "connection lost");
    return DBP_QUERY;
}

dbp_status dbp_conn_exec(dbp_conn *c, const char *sql, int nparams,
                         const char *const *values, const int *lengths, const int *formats, bool simple,
                         struct pg_result **res, dbp_error *err)
{
    PGresult *r;

    if (simple)
        r = PQexec(c->pg, sql);
    else
        r = PQexecParams(c->pg, sql, nparams, NULL, values, lengths, formats, 0);
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

void dbp_conn_free_result(struct pg_result *res)
{
    PQclear(res);
}

dbp_txn dbp_conn_txn(const dbp_conn *c)
{
    switch (PQtransactionStatus(c->pg)) {
    case PQTRANS_IDLE:
        return DBP_TXN_IDLE;
    case PQTRANS_INTRANS:
    case PQTRANS_INERROR:
        return DBP_TXN_OPEN;
    default:
        return DBP_TXN_BROKEN;
    }
}

dbp_status dbp_conn_reset(dbp_conn *c, dbp_reset how, dbp_error *err)
{
    struct pg_result *r = NULL;
    dbp_status st;

    if (how == DBP_RESET_NONE)
        return DBP_OK;
    st = dbp_conn_exec(c, how == DBP_RESET_COMMIT ? "COMMIT" : "ROLLBACK", 0, NULL, NULL,
                       NULL, true, &r, err);
    if (st == DBP_OK)
        PQclear(r);
    return st;
}

bool dbp_conn_broken(const dbp_conn *c)
{
    return c->broken || PQstatus(c->pg) != CONNECTION_OK;
}

void dbp_conn_mark_broken(dbp_conn *c)
{
    c->broken = true;
}

int dbp_conn_backend_pid(const dbp_conn *c)
{
    return PQbackendPID(c->pg);
}

struct pg_conn *dbp_conn_pg(dbp_conn *c)
{
    return c->pg;
}

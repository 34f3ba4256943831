/* conn.c: the pool's only door to libpq. */
#include "conn.h"
#include "redact.h"
#include "stmt_cache.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct dbp_conn {
    PGconn *pg;
    PGresult *pending;  /* non-blocking: the result kept while more arrive */
    bool busy;          /* non-blocking: a statement sent, results not all read */
    bool broken;        /* discard this connection */
    bool lost;          /* the server or the link went away: a pool-wide event */
    bool primary;       /* role = "primary": a read-only server counts as dead */
    bool verify_role;   /* primary through PgBouncer: ask the session once connected */
    dbp_stmt_cache *stmts; /* prepare_threshold > 0: statements worth preparing */
    dbp_stmt *sent_stmt;   /* non-blocking: the prepared statement being run */
    bool want_write;       /* non-blocking: libpq has output it could not send yet */
    dbp_close_hook close_hook; /* told before the socket goes: an event loop watching it */
    void *close_hook_arg;
};

void dbp_conn_set_close_hook(dbp_conn *c, dbp_close_hook hook, void *arg)
{
    c->close_hook = hook;
    c->close_hook_arg = arg;
}

void *dbp_conn_close_hook_arg(const dbp_conn *c)
{
    return c->close_hook_arg;
}

static void run_close_hook(dbp_conn *c, dbp_close_how how)
{
    if (c->close_hook != NULL)
        c->close_hook(c->close_hook_arg, how, PQsocket(c->pg));
}

bool dbp_sqlstate_is_disconnect(const char *s)
{
    if (s == NULL || s[0] == '\0')
        return false;
    return strncmp(s, "08", 2) == 0 || strcmp(s, "57P01") == 0 ||
           strcmp(s, "57P02") == 0 || strcmp(s, "57P03") == 0;
}

/* libpq's messages may echo a malformed DSN: no byte of a password may
 * reach an error.  Writes msg into out with every secret of dsn hidden:
 * what libpq parses as a password keyword, and what DSN redaction hides
 * (which covers a DSN libpq cannot parse). */
static void scrub_password(char *out, size_t size, const char *msg, const char *dsn)
{
    PQconninfoOption *opts = PQconninfoParse(dsn, NULL);
    dbp_secrets secrets;

    dbp_secrets_from_dsn(&secrets, dsn);
    for (PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++)
        if (o->dispchar[0] == '*' && o->val != NULL)     /* password, sslpassword */
            dbp_secrets_add(&secrets, o->val, strlen(o->val));
    dbp_redact_buf(DBP_TEXT_MESSAGE, msg, &secrets, out, size);
    PQconninfoFree(opts);
}

/* libpq prints NOTICEs to stderr by default; a library must not write to
 * the app's stderr, so they are dropped.  A FATAL or PANIC arriving here is
 * the server saying goodbye to an idle connection (pg_terminate_backend,
 * shutdown): libpq hands an ErrorResponse outside a query to the notice
 * receiver, and the connection is still CONNECTION_OK until the EOF behind
 * it is read. */
static void on_notice(void *arg, const PGresult *r)
{
    dbp_conn *c = arg;
    const char *sev = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);

    if (sev != NULL && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0))
        c->broken = c->lost = true;
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

/* The connect keywords for cfg and dsn; the buffers hold their values. */
typedef struct connect_params {
    const char *keys[8], *vals[8];
    char timeout[32], options[256];
} connect_params;

static void connect_params_init(connect_params *cp, const dbp_config *cfg, const char *dsn)
{
    int n = 0;

    /* role = "primary": libpq itself refuses a read-only server (hot standby
     * or default_transaction_read_only) and, with several hosts in the DSN,
     * moves on to the next one.  Placed before dbname so that a
     * target_session_attrs in the DSN wins. */
    if (cfg->role == DBP_ROLE_PRIMARY)
        cp->keys[n] = "target_session_attrs", cp->vals[n++] = "read-write";
    /* dbname next: with expand_dbname the later keywords override the DSN. */
    cp->keys[n] = "dbname", cp->vals[n++] = dsn;
    if (cfg->connect_timeout > 0) {
        /* libpq takes whole seconds (and treats 1 as 2): round up. */
        snprintf(cp->timeout, sizeof cp->timeout, "%d", (int)ceil(cfg->connect_timeout));
        cp->keys[n] = "connect_timeout", cp->vals[n++] = cp->timeout;
    }
    if (cfg->application_name != NULL)
        cp->keys[n] = "application_name", cp->vals[n++] = cfg->application_name;
    /* With pgbouncer the timeouts are refused by dbp_config_finish; only
     * application_name, which PgBouncer accepts, is sent. */
    build_options(cfg, cp->options, sizeof cp->options);
    if (cp->options[0] != '\0' && !cfg->pgbouncer)
        cp->keys[n] = "options", cp->vals[n++] = cp->options;
    cp->keys[n] = NULL, cp->vals[n] = NULL;
}

/* libpq's reason for a failed connect, the password scrubbed out. */
static dbp_status connect_error(PGconn *pg, const char *dsn, dbp_error *err)
{
    size_t used;

    dbp_error_set(err, DBP_CONNECT, "could not connect: ");
    used = strlen(err->message);
    scrub_password(err->message + used, sizeof err->message - used, PQerrorMessage(pg), dsn);
    return DBP_CONNECT;
}

/* A connection that just reached CONNECTION_OK gets its receivers. */
static void connected(dbp_conn *c)
{
    PQsetNoticeReceiver(c->pg, on_notice, c);
    /* Verbose messages carry the SQLSTATE in the text; a lost connection's
     * result has no fields, only that text (see parse_lost_message).  Errors
     * with fields are read field by field, so nothing else changes. */
    PQsetErrorVerbosity(c->pg, PQERRORS_VERBOSE);
}

/* A connection that reached CONNECTION_OK and may be handed out.  Through
 * PgBouncer, libpq's target_session_attrs cannot see a read-only server:
 * PgBouncer replays the parameters of its pool's first server login, so a
 * primary asks the session itself (the pre-ping's question), once. */
static dbp_status ready(dbp_conn *c, const char *dsn, dbp_error *err)
{
    connected(c);
    if (c->verify_role && dbp_conn_ping(c, err) != DBP_OK) {
        char why[sizeof err->message];
        scrub_password(why, sizeof why, err->message, dsn);
        dbp_error_set(err, DBP_CONNECT, "could not connect: %s (asked through PgBouncer)", why);
        return DBP_CONNECT;
    }
    return DBP_OK;
}

/* Opens (wait: PQconnectdbParams) or starts (PQconnectStartParams) a
 * connection to dsn with cfg's settings. */
static dbp_status make_conn(const dbp_config *cfg, const char *dsn, bool wait, dbp_conn **out,
                            dbp_error *err)
{
    connect_params cp;
    dbp_conn *c;
    PGconn *pg;

    connect_params_init(&cp, cfg, dsn);
    pg = wait ? PQconnectdbParams(cp.keys, cp.vals, 1) : PQconnectStartParams(cp.keys, cp.vals, 1);
    if (pg == NULL)
        return dbp_error_set(err, DBP_NOMEM, "out of memory opening a connection");
    if (wait ? PQstatus(pg) != CONNECTION_OK : PQstatus(pg) == CONNECTION_BAD) {
        connect_error(pg, dsn, err);
        PQfinish(pg);
        return DBP_CONNECT;
    }
    if ((c = calloc(1, sizeof *c)) == NULL) {
        PQfinish(pg);
        return dbp_error_set(err, DBP_NOMEM, "out of memory opening a connection");
    }
    c->pg = pg;
    c->primary = cfg->role == DBP_ROLE_PRIMARY;
    c->verify_role = c->primary && cfg->pgbouncer;
    if (cfg->prepare_threshold > 0 &&
        (c->stmts = dbp_stmt_cache_new((unsigned)cfg->prepare_threshold,
                                       (unsigned)cfg->prepared_max)) == NULL) {
        dbp_conn_close(c);
        return dbp_error_set(err, DBP_NOMEM, "out of memory opening a connection");
    }
    if (wait && ready(c, dsn, err) != DBP_OK) {
        dbp_conn_close(c);
        return DBP_CONNECT;
    }
    *out = c;
    return DBP_OK;
}

dbp_status dbp_conn_open(const dbp_config *cfg, const char *dsn, dbp_conn **out,
                         dbp_error *err)
{
    return make_conn(cfg, dsn, true, out, err);
}

dbp_status dbp_conn_start(const dbp_config *cfg, const char *dsn, dbp_conn **out,
                          dbp_error *err)
{
    return make_conn(cfg, dsn, false, out, err);
}

dbp_status dbp_conn_connect_step(dbp_conn *c, const char *dsn, bool *want_write,
                                 dbp_error *err)
{
    switch (PQconnectPoll(c->pg)) {
    case PGRES_POLLING_OK:
        return ready(c, dsn, err);
    case PGRES_POLLING_READING:
        *want_write = false;
        return DBP_AGAIN;
    case PGRES_POLLING_WRITING:
        *want_write = true;
        return DBP_AGAIN;
    default:
        return connect_error(c->pg, dsn, err);
    }
}

void dbp_conn_close(dbp_conn *c)
{
    if (c == NULL)
        return;
    if (c->busy && PQstatus(c->pg) == CONNECTION_OK) {
        /* Returned mid-statement (a request gave up): without a cancel the
         * server would run the statement to its end for nobody. */
        char errbuf[256];
        PGcancel *cancel = PQgetCancel(c->pg);
        if (cancel != NULL) {
            (void)PQcancel(cancel, errbuf, sizeof errbuf);
            PQfreeCancel(cancel);
        }
    }
    run_close_hook(c, DBP_CLOSE_NOW);
    PQclear(c->pending);
    PQfinish(c->pg);
    dbp_stmt_cache_free(c->stmts);
    free(c);
}

void dbp_conn_forget(dbp_conn *c)
{
    int fd, devnull;

    if (c == NULL)
        return;
    run_close_hook(c, DBP_CLOSE_FORGET);
    /* The socket is shared with the process that opened it.  Point our
     * copy of the descriptor at /dev/null so that whatever PQfinish writes
     * (Terminate, a TLS close_notify) goes nowhere; then PQfinish frees
     * libpq's memory and closes our descriptor only. */
    fd = PQsocket(c->pg);
    devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (fd >= 0 && devnull >= 0)
        dup2(devnull, fd);
    if (devnull >= 0)
        close(devnull);
    PQclear(c->pending);
    PQfinish(c->pg);
    dbp_stmt_cache_free(c->stmts);
    free(c);
}

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
static dbp_status take_result(dbp_conn *c, PGresult *r, struct pg_result **res, dbp_error *err)
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
static dbp_stmt *prepared_entry(dbp_conn *c, const char *sql, int nparams, PGresult **failed)
{
    char evicted[24];
    dbp_stmt *s = dbp_stmt_use(c->stmts, sql, evicted);

    if (evicted[0] != '\0')
        deallocate(c, evicted);
    if (s != NULL && dbp_stmt_due(c->stmts, s)) {
        PGresult *r = PQprepare(c->pg, s->name, sql, nparams, NULL);
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

static PGresult *exec_cached(dbp_conn *c, const char *sql, int nparams, const char *const *values,
                             const int *lengths, const int *formats)
{
    PGresult *r = NULL;
    dbp_stmt *s = prepared_entry(c, sql, nparams, &r);

    if (r != NULL)                        /* PQprepare failed */
        return r;
    if (s == NULL)
        return PQexecParams(c->pg, sql, nparams, NULL, values, lengths, formats, 0);
    r = PQexecPrepared(c->pg, s->name, nparams, values, lengths, formats, 0);
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
            r = PQexecParams(c->pg, sql, nparams, NULL, values, lengths, formats, 0);
        }
    }
    return r;
}

dbp_status dbp_conn_exec(dbp_conn *c, const char *sql, int nparams,
                         const char *const *values, const int *lengths, const int *formats, bool simple,
                         struct pg_result **res, dbp_error *err)
{
    PGresult *r;

    if (simple)
        r = PQexec(c->pg, sql);
    else if (c->stmts != NULL)
        r = exec_cached(c, sql, nparams, values, lengths, formats);
    else
        r = PQexecParams(c->pg, sql, nparams, NULL, values, lengths, formats, 0);
    return take_result(c, r, res, err);
}

void dbp_conn_free_result(struct pg_result *res)
{
    PQclear(res);
}

/* ---- non-blocking statements (event loops) ---------------------------- */

dbp_status dbp_conn_send(dbp_conn *c, const char *sql, int nparams, const char *const *values,
                         const int *lengths, const int *formats, bool simple, dbp_error *err)
{
    int sent;

    if (c->busy)
        return dbp_error_set(err, DBP_INVALID, "a statement is already running on this connection");
    /* A statement that just became due is prepared here, blocking for that
     * one round trip: once per text and connection (docs/decisions.md). */
    c->sent_stmt = NULL;
    if (!simple && c->stmts != NULL) {
        PGresult *failed = NULL;
        c->sent_stmt = prepared_entry(c, sql, nparams, &failed);
        if (failed != NULL || PQstatus(c->pg) != CONNECTION_OK)
            return take_result(c, failed, NULL, err);
    }
    if (!PQisnonblocking(c->pg) && PQsetnonblocking(c->pg, 1) != 0)
        return fail_from_result(c, NULL, err);
    if (simple)
        sent = PQsendQuery(c->pg, sql);
    else if (c->sent_stmt != NULL)
        sent = PQsendQueryPrepared(c->pg, c->sent_stmt->name, nparams, values, lengths, formats, 0);
    else
        sent = PQsendQueryParams(c->pg, sql, nparams, NULL, values, lengths, formats, 0);
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

dbp_status dbp_conn_collect(dbp_conn *c, int64_t timeout_ns, struct pg_result **res, dbp_error *err)
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

int dbp_conn_socket(const dbp_conn *c)
{
    return PQsocket(c->pg);
}

dbp_txn dbp_conn_txn(const dbp_conn *c)
{
    if (c->busy)                 /* returned mid-statement: state unknown */
        return DBP_TXN_BROKEN;
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

bool dbp_conn_clean(const dbp_conn *c)
{
    /* PQTRANS_IDLE implies CONNECTION_OK and no statement in flight. */
    return !c->broken && !c->busy && PQtransactionStatus(c->pg) == PQTRANS_IDLE;
}

bool dbp_conn_lost(const dbp_conn *c)
{
    return c->lost || PQstatus(c->pg) != CONNECTION_OK;
}

/* ---- liveness --------------------------------------------------------- */

/* Reads whatever the server sent to an idle connection.  False when the
 * link is gone or the server said goodbye. */
static bool drain_idle_input(dbp_conn *c)
{
    PGnotify *n;

    if (!PQconsumeInput(c->pg))
        return false;
    PQisBusy(c->pg);                       /* parses: a goodbye reaches on_notice */
    while ((n = PQnotifies(c->pg)) != NULL)    /* LISTEN left behind by a user */
        PQfreemem(n);
    return !c->broken && PQstatus(c->pg) == CONNECTION_OK;
}

bool dbp_conn_alive_passive(dbp_conn *c)
{
    int fd = PQsocket(c->pg);

    if (c->broken || fd < 0 || PQstatus(c->pg) != CONNECTION_OK)
        goto dead;
    /* Twice at most: the goodbye message first, then the EOF behind it. */
    for (int round = 0; round < 2; round++) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 0) <= 0)         /* nothing to read (or EINTR): alive */
            return true;
        if (!drain_idle_input(c))
            goto dead;
    }
    return true;
dead:
    c->broken = c->lost = true;
    return false;
}

dbp_status dbp_conn_ping(dbp_conn *c, dbp_error *err)
{
    struct pg_result *r = NULL;
    const char *standby = PQparameterStatus(c->pg, "in_hot_standby");
    dbp_status st;
    bool read_only;

    if (!c->primary) {
        /* The empty query: one round trip, no parsing, no transaction. */
        st = dbp_conn_exec(c, "", 0, NULL, NULL, NULL, true, &r, err);
        if (st == DBP_OK)
            PQclear(r);
        return st;
    }
    /* A primary must also still accept writes.  The reported parameters
     * (in_hot_standby, default_transaction_read_only) lag a configuration
     * reload by one statement, so ask the session directly: the same single
     * round trip as the empty query. */
    st = dbp_conn_exec(c, "SHOW transaction_read_only", 0, NULL, NULL, NULL, true, &r, err);
    if (st != DBP_OK)
        return st;
    read_only = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "on") == 0;
    PQclear(r);
    if (read_only || (standby != NULL && strcmp(standby, "on") == 0)) {
        c->broken = c->lost = true;
        dbp_error_set(err, DBP_QUERY, "server is read-only but the engine's role is primary");
        dbp_copy_text(err->sqlstate, sizeof err->sqlstate, "25006");
        return DBP_QUERY;
    }
    return DBP_OK;
}

void dbp_conn_mark_broken(dbp_conn *c)
{
    c->broken = true;
}

bool dbp_conn_wants_write(const dbp_conn *c)
{
    return c->want_write;
}

int dbp_conn_backend_pid(const dbp_conn *c)
{
    return PQbackendPID(c->pg);
}

struct pg_conn *dbp_conn_pg(dbp_conn *c)
{
    return c->pg;
}

/* conn.c: one libpq connection (conn.h): opening, closing, liveness and
 * session facts.  Statements are conn_exec.c's.  With conn_exec.c and
 * result.c, the only door to libpq. */
#include "conn_internal.h"
#include "redact.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


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
    return strcmp(s, "57P01") == 0 || strcmp(s, "57P02") == 0 || strcmp(s, "57P03") == 0;
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
    const char *keys[16], *vals[16];
    char timeout[32], options[256];
} connect_params;

/* TCP keepalives and tcp_user_timeout (milliseconds), so that a silent peer
 * (a half-open connection) is noticed on an idle connection too; libpq
 * ignores them on a Unix socket. */
static const char *const tcp_defaults[][2] = {
    {"keepalives", "1"},         {"keepalives_idle", "30"}, {"keepalives_interval", "10"},
    {"keepalives_count", "3"},   {"tcp_user_timeout", "30000"},
};

/* Adds the TCP defaults that dsn does not set itself (as PQconninfoParse
 * reads it: a DSN it cannot parse sets nothing, and fails at connect). */
static int add_tcp_defaults(connect_params *cp, int n, const char *dsn)
{
    PQconninfoOption *opts = PQconninfoParse(dsn, NULL);

    for (size_t i = 0; i < sizeof tcp_defaults / sizeof tcp_defaults[0]; i++) {
        bool set = false;
        for (PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++)
            if (o->val != NULL && strcmp(o->keyword, tcp_defaults[i][0]) == 0)
                set = true;
        if (!set)
            cp->keys[n] = tcp_defaults[i][0], cp->vals[n++] = tcp_defaults[i][1];
    }
    PQconninfoFree(opts);
    return n;
}

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
        /* libpq takes whole seconds (and treats 1 as 2): round up.  dbpool
         * keeps its own, finer clock (dbp_conn_open_by); this only reaches
         * what libpq times itself. */
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
    n = add_tcp_defaults(cp, n, dsn);
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
static dbp_status ready(dbp_conn *c, const char *dsn, int64_t deadline_ns, dbp_error *err)
{
    connected(c);
    if (c->verify_role && dbp_conn_ping(c, deadline_ns, err) != DBP_OK) {
        char why[sizeof err->message];
        scrub_password(why, sizeof why, err->message, dsn);
        dbp_error_set(err, DBP_CONNECT, "could not connect: %s (asked through PgBouncer)", why);
        return DBP_CONNECT;
    }
    return DBP_OK;
}

dbp_status dbp_conn_start(const dbp_config *cfg, const char *dsn, dbp_conn **out,
                          dbp_error *err)
{
    connect_params cp;
    dbp_conn *c;
    PGconn *pg;

    connect_params_init(&cp, cfg, dsn);
    if ((pg = PQconnectStartParams(cp.keys, cp.vals, 1)) == NULL)
        return dbp_error_set(err, DBP_NOMEM, "out of memory opening a connection");
    if (PQstatus(pg) == CONNECTION_BAD) {
        connect_error(pg, dsn, err);
        PQfinish(pg);
        return DBP_CONNECT;
    }
    if ((c = calloc(1, sizeof *c)) == NULL) {
        PQfinish(pg);
        return dbp_error_set(err, DBP_NOMEM, "out of memory opening a connection");
    }
    c->pg = pg;
    c->max_message = (size_t)cfg->max_message_size;
    c->ping_timeout_ns = dbp_sec_to_ns(cfg->ping_timeout);
    c->reset_timeout_ns = dbp_sec_to_ns(cfg->reset_timeout);
    c->primary = cfg->role == DBP_ROLE_PRIMARY;
    c->verify_role = c->primary && cfg->pgbouncer;
    if (cfg->prepare_threshold > 0 &&
        (c->stmts = dbp_stmt_cache_new((unsigned)cfg->prepare_threshold,
                                       (unsigned)cfg->prepared_max)) == NULL) {
        dbp_conn_close(c);
        return dbp_error_set(err, DBP_NOMEM, "out of memory opening a connection");
    }
    *out = c;
    return DBP_OK;
}

/* One step of libpq's connect state machine; ready() once it is done. */
static dbp_status connect_poll(dbp_conn *c, const char *dsn, int64_t deadline_ns,
                               bool *want_write, dbp_error *err)
{
    switch (PQconnectPoll(c->pg)) {
    case PGRES_POLLING_OK:
        return ready(c, dsn, deadline_ns, err);
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

dbp_status dbp_conn_connect_step(dbp_conn *c, const char *dsn, bool *want_write,
                                 dbp_error *err)
{
    return connect_poll(c, dsn, INT64_MAX, want_write, err);
}

dbp_status dbp_conn_open_by(const dbp_config *cfg, const char *dsn, int64_t deadline_ns,
                            dbp_conn **out, dbp_error *err)
{
    dbp_conn *c;
    bool want_write = true;              /* libpq: after the start, wait to write */
    dbp_status st = dbp_conn_start(cfg, dsn, &c, err);

    if (st != DBP_OK)
        return st;
    for (;;) {
        int64_t left = deadline_ns - dbp_now_ns();
        int ready;

        if (left <= 0) {
            st = dbp_error_set(err, DBP_TIMEOUT, "could not connect: no answer in time");
            break;
        }
        ready = dbp_conn_wait_socket(c, want_write, left);
        if (ready < 0 && errno != EINTR) {
            st = dbp_error_set(err, DBP_CONNECT, "could not connect: poll failed");
            break;
        }
        if (ready <= 0)
            continue;
        if ((st = connect_poll(c, dsn, deadline_ns, &want_write, err)) == DBP_OK) {
            *out = c;
            return DBP_OK;
        }
        if (st != DBP_AGAIN)
            break;
    }
    dbp_conn_close(c);
    return st;
}

dbp_status dbp_conn_open(const dbp_config *cfg, const char *dsn, dbp_conn **out,
                         dbp_error *err)
{
    int64_t deadline = cfg->connect_timeout > 0
                           ? dbp_now_ns() + dbp_sec_to_ns(cfg->connect_timeout) : INT64_MAX;
    dbp_status st = dbp_conn_open_by(cfg, dsn, deadline, out, err);

    if (st == DBP_TIMEOUT)
        dbp_error_set(err, DBP_CONNECT, "could not connect: no answer within connect_timeout "
                      "(%g s)", cfg->connect_timeout);
    return st == DBP_TIMEOUT ? DBP_CONNECT : st;
}

/* Frees what the connection holds, PQfinish included. */
static void free_conn(dbp_conn *c)
{
    dbp_conn_op_clear(c);                 /* a pipeline's results, an operation's error */
    PQclear(c->pending);
    PQfinish(c->pg);
    dbp_stmt_cache_free(c->stmts);
    free(c->sent_sql);
    free(c->dealloc);
    free(c);
}

void dbp_conn_close(dbp_conn *c)
{
    if (c == NULL)
        return;
    /* Returned mid-statement (a request gave up): without a cancel the
     * server would run the statement to its end for nobody. */
    if (c->busy && PQstatus(c->pg) == CONNECTION_OK)
        dbp_conn_cancel_async(c);
    run_close_hook(c, DBP_CLOSE_NOW);
    free_conn(c);
}

static void *send_cancel(void *arg)
{
    char why[256];

    (void)PQcancel(arg, why, sizeof why);
    PQfreeCancel(arg);
    return NULL;
}

void dbp_conn_cancel_async(dbp_conn *c)
{
    PGcancel *cancel = PQgetCancel(c->pg);
    pthread_attr_t attr;
    pthread_t thread;
    bool started;

    if (cancel == NULL)
        return;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    started = pthread_create(&thread, &attr, send_cancel, cancel) == 0;
    pthread_attr_destroy(&attr);
    if (!started)                /* no thread to spare: the discard alone must do */
        PQfreeCancel(cancel);
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
    free_conn(c);
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


bool dbp_conn_broken(const dbp_conn *c)
{
    return c->broken || c->oversized || PQstatus(c->pg) != CONNECTION_OK;
}

bool dbp_conn_busy(const dbp_conn *c)
{
    return c->busy;
}

bool dbp_conn_oversized(const dbp_conn *c)
{
    return c->oversized;
}

bool dbp_conn_needs_discard(const dbp_conn *c, dbp_session_reset mode)
{
    return (mode == DBP_SESSION_AUTO && c->session_dirty) ||
           (mode == DBP_SESSION_ALWAYS && c->ran_statement);
}

bool dbp_conn_clean(const dbp_conn *c, dbp_session_reset mode)
{
    /* PQTRANS_IDLE implies CONNECTION_OK and no statement in flight. */
    return !c->broken && !c->busy && !c->oversized && !dbp_conn_needs_discard(c, mode) &&
           PQtransactionStatus(c->pg) == PQTRANS_IDLE;
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

/* The ping's timeout: ping_timeout, or what is left until deadline_ns when
 * that is sooner (at least 1 ns: past the deadline the ping fails at once). */
static int64_t ping_budget(const dbp_conn *c, int64_t deadline_ns)
{
    int64_t left = deadline_ns == INT64_MAX ? INT64_MAX : deadline_ns - dbp_now_ns();

    if (left < 1)
        left = 1;
    return left < c->ping_timeout_ns ? left : c->ping_timeout_ns;
}

dbp_status dbp_conn_ping(dbp_conn *c, int64_t deadline_ns, dbp_error *err)
{
    int64_t timeout_ns = ping_budget(c, deadline_ns);
    dbp_result *r = NULL;
    const char *standby = PQparameterStatus(c->pg, "in_hot_standby");
    dbp_status st;
    bool read_only;

    if (!c->primary) {
        /* The empty query: one round trip, no parsing, no transaction. */
        st = dbp_conn_exec_internal(c, "", timeout_ns, DBP_TIMEOUT, "ping_timeout", &r, err);
        if (st == DBP_OK)
            PQclear(r);
        return st;
    }
    /* A primary must also still accept writes.  The reported parameters
     * (in_hot_standby, default_transaction_read_only) lag a configuration
     * reload by one statement, so ask the session directly: the same single
     * round trip as the empty query. */
    st = dbp_conn_exec_internal(c, "SHOW transaction_read_only", timeout_ns, DBP_TIMEOUT,
                                "ping_timeout", &r, err);
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

const char *dbp_conn_txn_name(const dbp_conn *c)
{
    static const char *const names[] = {"idle", "active", "intrans", "inerror", "unknown"};
    PGTransactionStatusType t = PQtransactionStatus(c->pg);
    return names[(unsigned)t < 5 ? t : 4];
}

dbp_status dbp_conn_escape(dbp_conn *c, const char *s, size_t len, bool identifier, char **out,
                           dbp_error *err)
{
    size_t used;

    *out = identifier ? PQescapeIdentifier(c->pg, s, len) : PQescapeLiteral(c->pg, s, len);
    if (*out != NULL)
        return DBP_OK;
    dbp_error_set(err, DBP_QUERY, "could not escape: ");
    used = strlen(err->message);
    dbp_copy_text(err->message + used, sizeof err->message - used, PQerrorMessage(c->pg));
    return DBP_QUERY;
}

void dbp_conn_free_text(char *text)
{
    PQfreemem(text);
}

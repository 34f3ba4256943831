/* conn.c: one libpq connection (conn.h): opening, closing, liveness and
 * session facts.  Statements are conn_exec.c's.  With conn_exec.c and
 * result.c, the only door to libpq. */
#include "conn_internal.h"
#include "conninfo.h"
#include "resolve.h"

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

/* libpq prints notices to stderr by default; a library must not write to
 * the app's stderr, so they are queued on the connection (notice.h) for the
 * binding to hand to dbpool.log.  Installed as soon as libpq has the
 * connection, so notices of the startup (an application_name the server
 * cut, a deprecated setting) are kept too.  A FATAL or PANIC arriving here
 * is the server saying goodbye to an idle connection (pg_terminate_backend,
 * shutdown): libpq hands an ErrorResponse outside a query to the notice
 * receiver, and the connection is still CONNECTION_OK until the EOF behind
 * it is read.  It is not queued: the pool replaces the connection and
 * counts it, and its queue goes with it. */
static void on_notice(void *arg, const PGresult *r)
{
    dbp_conn *c = arg;
    const char *sev = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    const char *detail = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL);
    const char *hint = PQresultErrorField(r, PG_DIAG_MESSAGE_HINT);
    char text[DBP_NOTICE_TEXT];

    if (sev == NULL)
        sev = PQresultErrorField(r, PG_DIAG_SEVERITY);
    if (sev != NULL && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0)) {
        c->broken = c->lost = true;
        return;
    }
    snprintf(text, sizeof text, "server %s: %s%s%s%s%s", sev ? sev : "NOTICE", msg ? msg : "",
             detail ? " DETAIL: " : "", detail ? detail : "", hint ? " HINT: " : "",
             hint ? hint : "");
    dbp_notices_push(&c->notices, sev != NULL && (strcmp(sev, "WARNING") == 0 ||
                                                  strcmp(sev, "ERROR") == 0), text);
}

dbp_notices *dbp_conn_notices(dbp_conn *c)
{
    return &c->notices;
}

/* libpq's reason for a failed connect, the password scrubbed out. */
static dbp_status connect_error(PGconn *pg, const dbp_conninfo *ci, dbp_error *err)
{
    size_t used;

    dbp_error_set(err, DBP_CONNECT, "could not connect: ");
    used = strlen(err->message);
    dbp_conninfo_scrub(ci, PQerrorMessage(pg), err->message + used, sizeof err->message - used);
    return DBP_CONNECT;
}

/* A connection that just reached CONNECTION_OK gets its error verbosity
 * (the notice receiver is set earlier, in dbp_conn_start). */
static void connected(dbp_conn *c)
{
    /* Verbose messages carry the SQLSTATE in the text; a lost connection's
     * result has no fields, only that text (see parse_lost_message).  Errors
     * with fields are read field by field, so nothing else changes. */
    PQsetErrorVerbosity(c->pg, PQERRORS_VERBOSE);
}

/* A connection that reached CONNECTION_OK and may be handed out.  Through
 * PgBouncer, libpq's target_session_attrs cannot see a read-only server:
 * PgBouncer replays the parameters of its pool's first server login, so a
 * primary asks the session itself (the pre-ping's question), once. */
static dbp_status ready(dbp_conn *c, const dbp_conninfo *ci, int64_t deadline_ns,
                        dbp_error *err)
{
    connected(c);
    if (c->verify_role && dbp_conn_ping(c, deadline_ns, err) != DBP_OK) {
        char why[sizeof err->message];
        dbp_conninfo_scrub(ci, err->message, why, sizeof why);
        dbp_error_set(err, DBP_CONNECT, "could not connect: %s (asked through PgBouncer)", why);
        return DBP_CONNECT;
    }
    return DBP_OK;
}

dbp_resolve_state dbp_conn_resolve_ahead(const dbp_conninfo *ci, dbp_error *err)
{
    if (dbp_conninfo_value(ci, "hostaddr") != NULL)
        return DBP_RESOLVE_READY;
    return dbp_resolve_hosts(dbp_conninfo_value(ci, "host"), err);
}

/* ci's keyword arrays with host, hostaddr and port from the addresses
 * looked up ahead of time (resolve.h), when this process looks names up so
 * (inside nginx): libpq then connects without getaddrinfo, and host keeps
 * the names for TLS verification and the passfile. */
typedef struct resolved_params {
    const char **keys, **vals;          /* NULL: use ci's own arrays */
    char *host, *hostaddr, *port;       /* one allocation, three lists */
} resolved_params;

static void resolved_params_free(resolved_params *rp)
{
    free(rp->keys), free(rp->vals), free(rp->host);
    rp->keys = rp->vals = NULL, rp->host = NULL;
}

/* Fills rp when ci's host names are all in the cache; false (rp->keys NULL)
 * when nothing is to change, a DSN with a hostaddr of its own included. */
static bool resolve_params(const dbp_conninfo *ci, resolved_params *rp)
{
    const char *const *keys = dbp_conninfo_keywords(ci), *const *vals = dbp_conninfo_values(ci);
    const char *hosts = dbp_conninfo_value(ci, "host"), *ports = dbp_conninfo_value(ci, "port");
    size_t size = dbp_resolve_expanded_size(hosts, ports);
    int n = 0, k = 0;

    memset(rp, 0, sizeof *rp);
    if (hosts == NULL || dbp_conninfo_value(ci, "hostaddr") != NULL)
        return false;
    while (keys[n] != NULL)
        n++;
    rp->keys = calloc((size_t)n + 4, sizeof *rp->keys);
    rp->vals = calloc((size_t)n + 4, sizeof *rp->vals);
    rp->host = malloc(3 * size);
    if (rp->keys == NULL || rp->vals == NULL || rp->host == NULL ||
        !dbp_resolve_expand(hosts, ports, rp->host, rp->hostaddr = rp->host + size,
                            rp->port = rp->host + 2 * size, size)) {
        resolved_params_free(rp);
        return false;                    /* libpq looks the names up itself */
    }
    for (int i = 0; i < n; i++)
        if (strcmp(keys[i], "host") != 0 && strcmp(keys[i], "port") != 0)
            rp->keys[k] = keys[i], rp->vals[k++] = vals[i];
    rp->keys[k] = "host", rp->vals[k++] = rp->host;
    rp->keys[k] = "hostaddr", rp->vals[k++] = rp->hostaddr;
    if (ports != NULL && ports[0] != '\0')
        rp->keys[k] = "port", rp->vals[k++] = rp->port;
    return true;
}

dbp_status dbp_conn_start(const dbp_config *cfg, const dbp_conninfo *ci, dbp_conn **out,
                          dbp_error *err)
{
    dbp_conn *c;
    PGconn *pg;
    resolved_params rp;

    /* Keywords parsed once (conninfo.c), expand_dbname off: a dbname is
     * only ever a database name. */
    if (resolve_params(ci, &rp)) {
        pg = PQconnectStartParams(rp.keys, rp.vals, 0);
        resolved_params_free(&rp);
    } else {
        pg = PQconnectStartParams(dbp_conninfo_keywords(ci), dbp_conninfo_values(ci), 0);
    }
    if (pg == NULL)
        return dbp_error_set(err, DBP_NOMEM, "out of memory opening a connection");
    if (PQstatus(pg) == CONNECTION_BAD) {
        connect_error(pg, ci, err);
        PQfinish(pg);
        return DBP_CONNECT;
    }
    if ((c = calloc(1, sizeof *c)) == NULL) {
        PQfinish(pg);
        return dbp_error_set(err, DBP_NOMEM, "out of memory opening a connection");
    }
    c->pg = pg;
    /* Before any byte from the server: libpq reads it only in PQconnectPoll. */
    PQsetNoticeReceiver(pg, on_notice, c);
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
static dbp_status connect_poll(dbp_conn *c, const dbp_conninfo *ci, int64_t deadline_ns,
                               bool *want_write, dbp_error *err)
{
    switch (PQconnectPoll(c->pg)) {
    case PGRES_POLLING_OK:
        return ready(c, ci, deadline_ns, err);
    case PGRES_POLLING_READING:
        *want_write = false;
        return DBP_AGAIN;
    case PGRES_POLLING_WRITING:
        *want_write = true;
        return DBP_AGAIN;
    default:
        return connect_error(c->pg, ci, err);
    }
}

dbp_status dbp_conn_connect_step(dbp_conn *c, const dbp_conninfo *ci, bool *want_write,
                                 dbp_error *err)
{
    return connect_poll(c, ci, INT64_MAX, want_write, err);
}

dbp_status dbp_conn_open_by(const dbp_config *cfg, const dbp_conninfo *ci, int64_t deadline_ns,
                            dbp_conn **out, dbp_error *err)
{
    dbp_conn *c;
    bool want_write = true;              /* libpq: after the start, wait to write */
    dbp_status st = dbp_conn_start(cfg, ci, &c, err);

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
        if ((st = connect_poll(c, ci, deadline_ns, &want_write, err)) == DBP_OK) {
            *out = c;
            return DBP_OK;
        }
        if (st != DBP_AGAIN)
            break;
    }
    dbp_conn_close(c);
    return st;
}

dbp_status dbp_conn_open(const dbp_config *cfg, const dbp_conninfo *ci, dbp_conn **out,
                         dbp_error *err)
{
    double timeout = dbp_conninfo_connect_timeout(ci);
    int64_t deadline = timeout > 0 ? dbp_now_ns() + dbp_sec_to_ns(timeout) : INT64_MAX;
    dbp_status st = dbp_conn_open_by(cfg, ci, deadline, out, err);

    if (st == DBP_TIMEOUT)
        dbp_error_set(err, DBP_CONNECT, "could not connect: no answer within connect_timeout "
                      "(%g s)", timeout);
    return st == DBP_TIMEOUT ? DBP_CONNECT : st;
}

/* Frees what the connection holds, PQfinish included. */
static void free_conn(dbp_conn *c)
{
    dbp_conn_op_clear(c);                 /* a pipeline's results, an operation's error */
    PQclear(c->pending);
    PQfinish(c->pg);
    dbp_notices_clear(&c->notices);
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

/* The ping's statement: the empty query (one round trip, no parsing, no
 * transaction), or for a primary SHOW transaction_read_only: it must also
 * still accept writes, and the reported parameters (in_hot_standby,
 * default_transaction_read_only) lag a configuration reload by one
 * statement, so the session is asked directly, in the same round trip. */
static const char *ping_sql(const dbp_conn *c)
{
    return c->primary ? "SHOW transaction_read_only" : "";
}

/* The ping's answer r (freed here): alive, or for a primary that turned
 * read-only DBP_QUERY with SQLSTATE 25006, the connection lost. */
static dbp_status judge_ping(dbp_conn *c, dbp_result *r, dbp_error *err)
{
    const char *standby = PQparameterStatus(c->pg, "in_hot_standby");
    bool read_only;

    if (!c->primary) {
        PQclear(r);
        return DBP_OK;
    }
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

dbp_status dbp_conn_ping(dbp_conn *c, int64_t deadline_ns, dbp_error *err)
{
    dbp_result *r = NULL;
    dbp_status st = dbp_conn_exec_internal(c, ping_sql(c), ping_budget(c, deadline_ns), DBP_TIMEOUT,
                                           "ping_timeout", &r, err);

    return st == DBP_OK ? judge_ping(c, r, err) : st;
}

dbp_status dbp_conn_ping_send(dbp_conn *c, int64_t deadline_ns, dbp_error *err)
{
    return dbp_conn_send_internal(c, ping_sql(c), ping_budget(c, deadline_ns), DBP_TIMEOUT,
                                  "ping_timeout", err);
}

dbp_status dbp_conn_ping_step(dbp_conn *c, dbp_error *err)
{
    dbp_result *r = NULL;
    dbp_status st = dbp_conn_collect_internal(c, &r, err);

    return st == DBP_OK ? judge_ping(c, r, err) : st;
}

double dbp_conn_deadline_left(const dbp_conn *c)
{
    int64_t left;

    if (c->deadline_ns == INT64_MAX)
        return HUGE_VAL;
    left = c->deadline_ns - dbp_now_ns();
    return left > 0 ? (double)left / (double)DBP_NS_PER_SEC : 0;
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

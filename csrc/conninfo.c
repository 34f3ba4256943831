/* conninfo.c: a DSN parsed by libpq, merged with the engine's settings,
 * and what of it may be shown (conninfo.h).  With conn.c, conn_exec.c and
 * result.c, the only door to libpq. */
#include "conninfo.h"

#include <libpq-fe.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redact.h"

struct dbp_conninfo {
    PQconninfoOption *parsed;     /* libpq's; the values below point into it */
    const char **keys, **vals;    /* NULL-terminated, for PQconnectStartParams */
    int n, cap;
    char *shown;
    char *options;                /* the merged "options", when dbpool adds to it */
    char timeout[24];
    double connect_timeout;
    dbp_secrets secrets;          /* pointers into parsed */
    PQconninfoOption *env;        /* the environment's values, read once; keys may point here */
};

/* TCP keepalives and tcp_user_timeout (milliseconds), so that a silent peer
 * (a half-open connection) is noticed on an idle connection too; libpq
 * ignores them on a Unix socket.  No environment variable sets them, so a
 * DSN's value or these. */
static const char *const tcp_defaults[][2] = {
    {"keepalives", "1"},       {"keepalives_idle", "30"}, {"keepalives_interval", "10"},
    {"keepalives_count", "3"}, {"tcp_user_timeout", "30000"},
};

static const char *parsed_value(const PQconninfoOption *opts, const char *keyword)
{
    for (const PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++)
        if (strcmp(o->keyword, keyword) == 0)
            return o->val;
    return NULL;
}

/* Sets keyword to val (not copied), replacing the DSN's value if any. */
static void set(dbp_conninfo *ci, const char *keyword, const char *val)
{
    for (int i = 0; i < ci->n; i++)
        if (strcmp(ci->keys[i], keyword) == 0) {
            ci->vals[i] = val;
            return;
        }
    ci->keys[ci->n] = keyword;           /* cap counts every keyword we may add */
    ci->vals[ci->n++] = val;
    ci->keys[ci->n] = ci->vals[ci->n] = NULL;
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

/* dbpool's -c settings after the DSN's options, or else the environment's
 * (PGOPTIONS): the server applies them in order, so the engine's own win
 * where both set one, and every other setting stays.  PgBouncer takes no
 * options (dbp_config_finish refuses the settings there). */
static dbp_status merge_options(dbp_conninfo *ci, const dbp_config *cfg,
                                const PQconninfoOption *env)
{
    char own[256];
    const char *base = parsed_value(ci->parsed, "options");
    size_t size;

    build_options(cfg, own, sizeof own);
    if (own[0] == '\0' || cfg->pgbouncer)
        return DBP_OK;
    if (base == NULL || base[0] == '\0')
        base = parsed_value(env, "options");
    size = (base ? strlen(base) : 0) + strlen(own) + 2;
    if ((ci->options = malloc(size)) == NULL)
        return DBP_NOMEM;
    snprintf(ci->options, size, "%s%s%s", base && *base ? base : "", base && *base ? " " : "",
             own);
    set(ci, "options", ci->options);
    return DBP_OK;
}

/* A connect_timeout as libpq reads it (an integer, blanks around it
 * allowed; <= 0 waits forever), or -1 when it is not one. */
static double timeout_value(const char *s)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    while (*end == ' ' || *end == '\t' || *end == '\n')
        end++;
    if (end == s || *end != '\0' || errno != 0)
        return -1;
    return v > 0 ? (double)v : 0;
}

/* The engine's connect_timeout if given, else the DSN's, else
 * PGCONNECT_TIMEOUT, else the default; and libpq gets the same (it counts
 * whole seconds: rounded up). */
static dbp_status resolve_timeout(dbp_conninfo *ci, const dbp_config *cfg,
                                  const PQconninfoOption *env, dbp_error *err)
{
    const char *dsn = parsed_value(ci->parsed, "connect_timeout");
    const char *from_env = parsed_value(env, "connect_timeout");
    const char *text = dsn != NULL ? dsn : from_env;

    ci->connect_timeout = cfg != NULL ? cfg->connect_timeout : 10;
    if ((cfg == NULL || !cfg->connect_timeout_set) && text != NULL) {
        if ((ci->connect_timeout = timeout_value(text)) < 0)
            return dbp_error_set(err, DBP_INVALID,
                                 "engine '%s': %s must be a whole number of seconds, got "
                                 "\"%.32s\"", cfg && cfg->name ? cfg->name : "?",
                                 dsn != NULL ? "the DSN's connect_timeout" : "PGCONNECT_TIMEOUT",
                                 text);
    }
    snprintf(ci->timeout, sizeof ci->timeout, "%.0f", ceil(ci->connect_timeout));
    set(ci, "connect_timeout", ci->timeout);
    return DBP_OK;
}

/* Where the server is, from the environment (PGHOST, PGHOSTADDR, PGPORT)
 * when the DSN says nothing of it, written into the arrays as libpq would
 * read it at connect: the names a worker looks up ahead (resolve.h) are
 * then the ones libpq would have used.  A service file (service=,
 * PGSERVICE) ranks above the environment, so it is left to libpq. */
static void take_server_from_env(dbp_conninfo *ci)
{
    static const char *const keys[] = {"host", "hostaddr", "port"};
    const char *service = parsed_value(ci->parsed, "service");

    if ((service != NULL && service[0] != '\0') || parsed_value(ci->env, "service") != NULL ||
        parsed_value(ci->parsed, "host") != NULL || parsed_value(ci->parsed, "hostaddr") != NULL)
        return;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *v = parsed_value(ci->env, keys[i]);
        if (v != NULL && v[0] != '\0' && parsed_value(ci->parsed, keys[i]) == NULL)
            set(ci, keys[i], v);
    }
}

/* The application_name a connect would send (the engine's, the DSN's or
 * PGAPPNAME): over what the server keeps, the server cuts it with a NOTICE
 * on every connect, and a much longer one fails every connect. */
static dbp_status check_application_name(dbp_conninfo *ci, const dbp_config *cfg,
                                         dbp_error *err)
{
    const char *v = dbp_conninfo_value(ci, "application_name");

    if (v == NULL)
        v = parsed_value(ci->env, "application_name");
    if (v == NULL || strlen(v) <= DBP_NAME_MAX)
        return DBP_OK;
    return dbp_error_set(err, DBP_INVALID, "engine '%s': application_name (from the DSN or "
                         "PGAPPNAME) must be at most %d bytes (what the server keeps: "
                         "NAMEDATALEN - 1), got %zu bytes", cfg->name ? cfg->name : "?",
                         DBP_NAME_MAX, strlen(v));
}

/* The keyword arrays: the DSN's values, then the engine's, by precedence. */
static dbp_status build_params(dbp_conninfo *ci, const dbp_config *cfg, dbp_error *err)
{
    dbp_status st = DBP_OK;

    if ((ci->env = PQconndefaults()) == NULL)     /* the environment's values */
        return dbp_error_set(err, DBP_NOMEM, "out of memory reading connection defaults");
    /* role = "primary": libpq itself refuses a read-only server (hot standby
     * or default_transaction_read_only) and, with several hosts in the DSN,
     * moves on to the next one.  A target_session_attrs in the DSN wins. */
    if (cfg->role == DBP_ROLE_PRIMARY && parsed_value(ci->parsed, "target_session_attrs") == NULL)
        set(ci, "target_session_attrs", "read-write");
    if (cfg->application_name != NULL)
        set(ci, "application_name", cfg->application_name);
    for (size_t i = 0; i < sizeof tcp_defaults / sizeof tcp_defaults[0]; i++)
        if (parsed_value(ci->parsed, tcp_defaults[i][0]) == NULL)
            set(ci, tcp_defaults[i][0], tcp_defaults[i][1]);
    take_server_from_env(ci);
    if ((st = check_application_name(ci, cfg, err)) == DBP_OK &&
        (st = resolve_timeout(ci, cfg, ci->env, err)) == DBP_OK &&
        merge_options(ci, cfg, ci->env) != DBP_OK)
        st = dbp_error_set(err, DBP_NOMEM, "out of memory building connection options");
    return st;
}

/* A value quoted as key=value wants it: '...' with \ and ' escaped. */
static size_t render_value(char *out, const char *v)
{
    size_t n = 0;
    bool quote = v[0] == '\0' || strpbrk(v, " \t\n\r\f\v'\\") != NULL;

    if (quote)
        out[n++] = '\'';
    for (; *v; v++) {
        if (quote && (*v == '\'' || *v == '\\'))
            out[n++] = '\\';
        out[n++] = *v;
    }
    if (quote)
        out[n++] = '\'';
    return n;
}

/* "host=h user=u password=***", from libpq's keywords: when DSN redaction
 * missed a secret libpq found, nothing of the user's text is shown. */
static char *render(const PQconninfoOption *opts)
{
    size_t size = 1, n = 0;
    char *out;

    for (const PQconninfoOption *o = opts; o->keyword != NULL; o++)
        if (o->val != NULL)
            size += strlen(o->keyword) + 2 * strlen(o->val) + sizeof DBP_REDACTED + 4;
    if ((out = malloc(size)) == NULL)
        return NULL;
    for (const PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        if (o->val == NULL)
            continue;
        n += (size_t)sprintf(out + n, "%s%s=", n > 0 ? " " : "", o->keyword);
        if (o->dispchar[0] == '*')
            n += (size_t)sprintf(out + n, "%s", DBP_REDACTED);
        else
            n += render_value(out + n, o->val);
    }
    out[n] = '\0';
    return out;
}

/* The shown form: the user's text redacted, if that hides every secret. */
static char *shown_form(const dbp_conninfo *ci, const char *dsn)
{
    size_t size = 4 * strlen(dsn) + 16;     /* each hidden span grows to 3 bytes at most */
    char *out;

    for (int i = 0; i < ci->secrets.n; i++)
        if (!dbp_dsn_hides(dsn, ci->secrets.val[i], ci->secrets.len[i]))
            return render(ci->parsed);
    if ((out = malloc(size)) != NULL)
        dbp_redact_dsn(dsn, out, size);
    return out;
}

static dbp_status refused(const dbp_config *cfg, const char *dsn, const char *what,
                          const char *why, dbp_error *err)
{
    char reason[400];

    if (why == NULL)
        return dbp_error_set(err, DBP_NOMEM, "out of memory parsing the DSN");
    dbp_redact_dsn_error(dsn, why, reason, sizeof reason);
    if (cfg != NULL && cfg->name != NULL)
        return dbp_error_set(err, DBP_INVALID, "engine '%s': option '%s' is not a valid libpq "
                             "connection string: %s", cfg->name, what, reason);
    return dbp_error_set(err, DBP_INVALID, "option '%s' is not a valid libpq connection "
                         "string: %s", what, reason);
}

dbp_status dbp_conninfo_new(const dbp_config *cfg, const char *dsn, const char *what,
                            dbp_conninfo **out, dbp_error *err)
{
    dbp_conninfo *ci = calloc(1, sizeof *ci);
    char *why = NULL;
    dbp_status st;

    if (ci == NULL)
        return dbp_error_set(err, DBP_NOMEM, "out of memory parsing the DSN");
    if (dbp_uri_password_unencoded(dsn)) {
        free(ci);
        return refused(cfg, dsn, what, "the URI's password (or a part after it) holds a '/' "
                       "or '@' that is not percent-encoded (write '/' as %2F and '@' as %40): "
                       "libpq would read part of the password as the host, port or database", err);
    }
    if ((ci->parsed = PQconninfoParse(dsn, &why)) == NULL) {
        st = refused(cfg, dsn, what, why, err);
        PQfreemem(why);
        free(ci);
        return st;
    }
    dbp_secrets_init(&ci->secrets);
    for (const PQconninfoOption *o = ci->parsed; o->keyword != NULL; o++) {
        ci->cap++;
        if (o->val != NULL && o->dispchar[0] == '*')   /* password, sslpassword, ... */
            dbp_secrets_add(&ci->secrets, o->val, strlen(o->val));
    }
    ci->cap += 16;                           /* what build_params may add */
    ci->keys = calloc((size_t)ci->cap + 1, sizeof *ci->keys);
    ci->vals = calloc((size_t)ci->cap + 1, sizeof *ci->vals);
    if (ci->keys == NULL || ci->vals == NULL || (ci->shown = shown_form(ci, dsn)) == NULL) {
        dbp_conninfo_free(ci);
        return dbp_error_set(err, DBP_NOMEM, "out of memory parsing the DSN");
    }
    for (const PQconninfoOption *o = ci->parsed; o->keyword != NULL; o++)
        if (o->val != NULL)
            set(ci, o->keyword, o->val);
    ci->connect_timeout = 10;
    if (cfg != NULL && (st = build_params(ci, cfg, err)) != DBP_OK) {
        dbp_conninfo_free(ci);
        return st;
    }
    *out = ci;
    return DBP_OK;
}

void dbp_conninfo_free(dbp_conninfo *ci)
{
    if (ci == NULL)
        return;
    PQconninfoFree(ci->parsed);
    PQconninfoFree(ci->env);
    free(ci->keys);
    free(ci->vals);
    free(ci->shown);
    free(ci->options);
    free(ci);
}

const char *dbp_conninfo_shown(const dbp_conninfo *ci)
{
    return ci->shown;
}

double dbp_conninfo_connect_timeout(const dbp_conninfo *ci)
{
    return ci->connect_timeout;
}

void dbp_conninfo_scrub(const dbp_conninfo *ci, const char *msg, char *out, size_t size)
{
    dbp_redact_buf(DBP_TEXT_MESSAGE, msg, ci != NULL ? &ci->secrets : NULL, out, size);
}

const char *const *dbp_conninfo_keywords(const dbp_conninfo *ci)
{
    return ci->keys;
}

const char *const *dbp_conninfo_values(const dbp_conninfo *ci)
{
    return ci->vals;
}

const char *dbp_conninfo_value(const dbp_conninfo *ci, const char *keyword)
{
    for (int i = 0; i < ci->n; i++)
        if (strcmp(ci->keys[i], keyword) == 0)
            return ci->vals[i];
    return NULL;
}

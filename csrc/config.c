/* config.c: option descriptors, defaults, validation, copy and options as
 * numbers (comparison: config_compare.c).  The descriptor table is the single
 * list of option names: the Lua binding reads options through it, the
 * registry compares through it, policy.c bounds values through it. */
#include "config_internal.h"

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOBOUND 0, 0, false

const dbp_option dbp_options[] = {
    {"name", DBP_OPT_STRING, OFF(name), NOBOUND,
     "1 to 63 ASCII letters, digits, '_', '-', '.' or ':'"},
    {"dsn", DBP_OPT_STRING, OFF(dsn), NOBOUND, "a non-empty libpq URI or key=value string"},
    {"pool_size", DBP_OPT_INT, OFF(pool_size), 0, INT_MAX, false,
     "an integer >= 0 (0 = no limit), or \"auto\""},
    {"auto", DBP_OPT_TABLE, 0, NOBOUND, "a table {min=, max=, interval=}"},
    {"auto.min", DBP_OPT_INT, OFF(auto_min), 1, INT_MAX, false, "an integer >= 1"},
    /* 1,000,000 as pool:size_limit's: an nginx instance multiplies it by its
     * worker count, which must not overflow an int. */
    {"auto.max", DBP_OPT_INT, OFF(auto_max), 1, 1000000, false, "an integer from 1 to 1000000"},
    {"auto.interval", DBP_OPT_NUMBER, OFF(auto_interval), 0.01, 86400, false,
     "a number of seconds between 0.01 and 86400"},
    {"max_overflow", DBP_OPT_INT, OFF(max_overflow), 0, INT_MAX, true,
     "an integer >= 0, or -1 for unbounded"},
    {"pool_timeout", DBP_OPT_NUMBER, OFF(pool_timeout), 0, 1e9, false,
     "a number of seconds >= 0"},
    {"pool_recycle", DBP_OPT_NUMBER, OFF(pool_recycle), 0, 1e9, true,
     "a number of seconds >= 0, or -1 for never"},
    {"recycle_jitter", DBP_OPT_NUMBER, OFF(recycle_jitter), 0, 0.5, false,
     "a fraction between 0 and 0.5"},
    {"pool_pre_ping", DBP_OPT_BOOL, OFF(pool_pre_ping), NOBOUND, "a boolean"},
    {"pre_ping_bypass", DBP_OPT_NUMBER, OFF(pre_ping_bypass), 0, 1e9, false,
     "a number of seconds >= 0"},
    {"reset_on_return", DBP_OPT_RESET, OFF(reset_on_return), NOBOUND,
     "\"rollback\", \"commit\" or false"},
    {"reset_session", DBP_OPT_SESSION, OFF(reset_session), NOBOUND,
     "\"auto\", \"always\" or false"},
    {"numeric", DBP_OPT_NUMERIC, OFF(numeric), NOBOUND, "\"number\" or \"string\""},
    {"decoders", DBP_OPT_DECODERS, 0, NOBOUND,
     "a table of functions keyed by type name (pg_type.typname) or OID"},
    {"ping_timeout", DBP_OPT_NUMBER, OFF(ping_timeout), 0.001, 1e6, false,
     "a number of seconds > 0"},
    {"reset_timeout", DBP_OPT_NUMBER, OFF(reset_timeout), 0.001, 1e6, false,
     "a number of seconds > 0"},
    {"query_timeout", DBP_OPT_NUMBER, OFF(query_timeout), 0, 1e9, false,
     "a number of seconds >= 0 (0 = none)"},
    {"max_message_size", DBP_OPT_INT, OFF(max_message_size), 0, INT_MAX, false,
     "an integer number of bytes >= 0 (0 = no bound)"},
    {"use_lifo", DBP_OPT_BOOL, OFF(use_lifo), NOBOUND, "a boolean"},
    {"min_idle", DBP_OPT_INT, OFF(min_idle), 0, INT_MAX, false, "an integer >= 0"},
    {"max_queries", DBP_OPT_INT, OFF(max_queries), 0, INT_MAX, false,
     "an integer >= 0 (0 = never)"},
    {"prepare_threshold", DBP_OPT_INT, OFF(prepare_threshold), 0, INT_MAX, false,
     "an integer >= 0 (0 = never prepare)"},
    {"prepared_max", DBP_OPT_INT, OFF(prepared_max), 1, 100000, false,
     "an integer from 1 to 100000"},
    {"connect_timeout", DBP_OPT_NUMBER, OFF(connect_timeout), 0, 1e6, false,
     "a number of seconds >= 0 (0 = wait forever)"},
    {"application_name", DBP_OPT_STRING, OFF(application_name), NOBOUND,
     "a string of at most 63 bytes"},
    {"statement_timeout", DBP_OPT_INT, OFF(statement_timeout), 0, INT_MAX, false,
     "an integer number of milliseconds >= 0"},
    {"lock_timeout", DBP_OPT_INT, OFF(lock_timeout), 0, INT_MAX, false,
     "an integer number of milliseconds >= 0"},
    {"idle_in_transaction_session_timeout", DBP_OPT_INT,
     OFF(idle_in_transaction_session_timeout), 0, INT_MAX, false,
     "an integer number of milliseconds >= 0"},
    {"role", DBP_OPT_ROLE, OFF(role), NOBOUND, "\"any\" or \"primary\""},
    {"pgbouncer", DBP_OPT_BOOL, OFF(pgbouncer), NOBOUND, "a boolean"},
    {"replicas", DBP_OPT_LIST, OFF(replicas), NOBOUND, "a list of DSN strings"},
    {"retry", DBP_OPT_TABLE, 0, NOBOUND, "a table {attempts=, base=, max=}"},
    {"retry.attempts", DBP_OPT_INT, OFF(retry_attempts), 1, 100, false,
     "an integer between 1 and 100"},
    {"retry.base", DBP_OPT_NUMBER, OFF(retry_base), 0, 60, false,
     "a number of seconds between 0 and 60"},
    {"retry.max", DBP_OPT_NUMBER, OFF(retry_max), 0, 3600, false,
     "a number of seconds between 0 and 3600"},
    {"breaker", DBP_OPT_TABLE, 0, NOBOUND, "a table {failures=, cooldown=}"},
    {"breaker.failures", DBP_OPT_INT, OFF(breaker_failures), 0, INT_MAX, false,
     "an integer >= 0 (0 = breaker off)"},
    {"breaker.cooldown", DBP_OPT_NUMBER, OFF(breaker_cooldown), 0, 86400, false,
     "a number of seconds between 0 and 86400"},
    {"leak_threshold", DBP_OPT_NUMBER, OFF(leak_threshold), 0, 1e9, false,
     "a number of seconds >= 0 (0 = off)"},
    {"echo", DBP_OPT_BOOL, OFF(echo), NOBOUND, "a boolean"},
    {"echo_pool", DBP_OPT_BOOL, OFF(echo_pool), NOBOUND, "a boolean"},
    {"echo_params", DBP_OPT_BOOL, OFF(echo_params), NOBOUND, "a boolean"},
    {"yield_after", DBP_OPT_NUMBER, OFF(yield_after), 0, 1, false,
     "a number of seconds between 0 and 1"},
    {"max_total_connections", DBP_OPT_INT, OFF(max_total_connections), 0, INT_MAX, false,
     "an integer >= 0 (0 = no host-wide cap)"},
    {"policy", DBP_OPT_LUA, 0, NOBOUND, "a policy name or table"},
    {NULL, DBP_OPT_LUA, 0, NOBOUND, NULL},
};

void dbp_config_init(dbp_config *c)
{
    memset(c, 0, sizeof *c);
    c->pool_size = 5;
    c->max_overflow = 10;
    c->pool_timeout = 30;
    c->pool_recycle = -1;
    c->pre_ping_bypass = 0.5;
    c->yield_after = 0;          /* see docs/decisions.md, OpenResty */
    c->reset_on_return = DBP_RESET_ROLLBACK;
    c->reset_session = DBP_SESSION_AUTO;
    c->ping_timeout = 5;
    c->reset_timeout = 5;
    c->max_message_size = 8 * 1024 * 1024;   /* see docs/decisions.md */
    c->connect_timeout = 10;
    c->prepared_max = 100;       /* psycopg's prepared_max */
    c->statement_timeout = -1;
    c->lock_timeout = -1;
    c->idle_in_transaction_session_timeout = -1;
    c->role = DBP_ROLE_ANY;
    c->retry_attempts = 3;
    c->retry_base = 0.05;
    c->retry_max = 2;
    c->breaker_failures = 5;
    c->breaker_cooldown = 5;
}

void dbp_config_free(dbp_config *c)
{
    free(c->name);
    free(c->dsn);
    free(c->application_name);
    for (int i = 0; i < c->n_replicas; i++)
        free(c->replicas[i]);
    free(c->replicas);
    memset(c, 0, sizeof *c);
}

static int dup_string(char **dst, const char *src)
{
    *dst = NULL;
    if (src == NULL)
        return 0;
    *dst = strdup(src);
    return *dst == NULL ? -1 : 0;
}

dbp_status dbp_config_copy(dbp_config *dst, const dbp_config *src)
{
    *dst = *src;
    dst->name = dst->dsn = dst->application_name = NULL;
    dst->replicas = NULL;
    dst->n_replicas = 0;
    if (dup_string(&dst->name, src->name) || dup_string(&dst->dsn, src->dsn) ||
        dup_string(&dst->application_name, src->application_name))
        goto nomem;
    if (src->n_replicas > 0) {
        dst->replicas = calloc((size_t)src->n_replicas, sizeof *dst->replicas);
        if (dst->replicas == NULL)
            goto nomem;
        for (int i = 0; i < src->n_replicas; i++) {
            dst->n_replicas = i + 1;
            if (dup_string(&dst->replicas[i], src->replicas[i]))
                goto nomem;
        }
    }
    return DBP_OK;
nomem:
    dbp_config_free(dst);
    return DBP_NOMEM;
}

const dbp_option *dbp_option_find(const char *name)
{
    for (const dbp_option *o = dbp_options; o->name != NULL; o++)
        if (strcmp(o->name, name) == 0)
            return o;
    return NULL;
}

/* Optimal string alignment distance (Levenshtein plus adjacent swaps, so
 * "pool_sise" and "pool_szie" are both one edit from "pool_size"). */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t d[64][64];

    if (la >= 64 || lb >= 64)
        return (size_t)-1;
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < best)
                best = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

const char *dbp_option_suggest(const char *name, const char *prefix)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    size_t plen = prefix ? strlen(prefix) : 0;
    char full[128];

    snprintf(full, sizeof full, "%s%s", prefix ? prefix : "", name);
    for (const dbp_option *o = dbp_options; o->name != NULL; o++) {
        bool sub = strchr(o->name, '.') != NULL;
        if (plen > 0 ? strncmp(o->name, prefix, plen) != 0 : sub)
            continue;
        size_t d = edit_distance(full, o->name);
        if (d < best_d) {
            best_d = d;
            best = o->name;
        }
    }
    /* Only close names are worth suggesting: a third of the name, at least 2. */
    size_t limit = strlen(name) / 3 > 2 ? strlen(name) / 3 : 2;
    if (best == NULL || best_d > limit)
        return NULL;
    return best + plen;
}

static dbp_status invalid(dbp_error *err, const dbp_option *o, const char *got)
{
    return dbp_error_set(err, DBP_INVALID, "option '%s' must be %s, got %s", o->name,
                         o->must_be, got);
}

dbp_status dbp_config_set_number(dbp_config *c, const dbp_option *o, double v,
                                 dbp_error *err)
{
    char got[64];

    /* The shortest text that reads back as v: "-0.1", not "-0.10000000000000001";
     * "nan" as Lua prints 0/0, whatever sign the C library would show. */
    if (isnan(v))
        snprintf(got, sizeof got, "nan");
    else if (snprintf(got, sizeof got, "%.15g", v), strtod(got, NULL) != v)
        snprintf(got, sizeof got, "%.17g", v);
    if (o->type != DBP_OPT_INT && o->type != DBP_OPT_NUMBER)
        return invalid(err, o, got);
    if (isnan(v) || isinf(v))
        return invalid(err, o, got);
    if (o->type == DBP_OPT_INT && v != floor(v))
        return invalid(err, o, got);
    if (!(o->minus_one_ok && v == -1) && (v < o->min || v > o->max))
        return invalid(err, o, got);
    if (dbp_option_takes_auto(o))
        c->pool_size_auto = false;          /* the last value given wins */
    if (o->type == DBP_OPT_INT)
        *FIELD(c, o, int) = (int)v;
    else
        *FIELD(c, o, double) = v;
    if (o->offset == OFF(connect_timeout))
        c->connect_timeout_set = true;
    return DBP_OK;
}

dbp_status dbp_config_set_bool(dbp_config *c, const dbp_option *o, bool v,
                               dbp_error *err)
{
    if (o->type == DBP_OPT_BOOL) {
        *FIELD(c, o, bool) = v;
        return DBP_OK;
    }
    if (o->type == DBP_OPT_RESET && !v) {
        *FIELD(c, o, int) = DBP_RESET_NONE;
        return DBP_OK;
    }
    if (o->type == DBP_OPT_SESSION && !v) {
        *FIELD(c, o, int) = DBP_SESSION_KEEP;
        return DBP_OK;
    }
    return invalid(err, o, v ? "true" : "false");
}

/* ---- names ------------------------------------------------------------- */

static bool name_char(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '-' || ch == '.' || ch == ':';
}

/* v for a message, quoted: printable ASCII as it is (quote and backslash
 * escaped), any other byte as \xHH, so that the message stays valid UTF-8
 * whatever v holds; cut after 40 bytes of v. */
static void quote_shown(const char *v, char *out, size_t size)
{
    size_t used = 0, i;

    out[used++] = '"';
    for (i = 0; v[i] != '\0' && i < 40 && used + 6 < size; i++) {
        unsigned char ch = (unsigned char)v[i];
        if (ch == '"' || ch == '\\')
            used += (size_t)snprintf(out + used, size - used, "\\%c", ch);
        else if (ch >= 0x20 && ch < 0x7f)
            out[used++] = (char)ch;
        else
            used += (size_t)snprintf(out + used, size - used, "\\x%02x", ch);
    }
    snprintf(out + used, size - used, "%s\"", v[i] != '\0' ? "..." : "");
}

/* The engine name: a registry key, a metrics label and a word in logs.  '/'
 * is kept out because the registry names replicas "<name>/replica<i>"
 * (dbp_config_name_replica): "KG/replica1" made by hand would be taken for
 * KG's replica.  ASCII only, so every label and log line is valid UTF-8. */
static dbp_status check_name(const dbp_option *o, const char *v, dbp_error *err)
{
    char shown[200], got[sizeof shown + 100];
    size_t len = strlen(v), i;

    for (i = 0; i < len && name_char((unsigned char)v[i]); i++)
        ;
    if (len <= DBP_NAME_MAX && i == len)
        return DBP_OK;
    quote_shown(v, shown, sizeof shown);
    if (i < len && v[i] == '/')
        snprintf(got, sizeof got, "%s ('/' at byte %zu: dbpool names replicas "
                 "\"<name>/replica<i>\")", shown, i + 1);
    else if (i < len && (unsigned char)v[i] >= 0x20 && (unsigned char)v[i] < 0x7f)
        snprintf(got, sizeof got, "%s ('%c' at byte %zu)", shown, v[i], i + 1);
    else if (i < len)
        snprintf(got, sizeof got, "%s (0x%02x at byte %zu)", shown, (unsigned char)v[i], i + 1);
    else
        snprintf(got, sizeof got, "%s (%zu bytes)", shown, len);
    return invalid(err, o, got);
}

dbp_status dbp_config_name_replica(dbp_config *c, int i, dbp_error *err)
{
    size_t size = strlen(c->name) + 32;
    char *name = malloc(size);

    if (name == NULL)
        return dbp_error_set(err, DBP_NOMEM, "out of memory");
    snprintf(name, size, "%s/replica%d", c->name, i);
    free(c->name);
    c->name = name;
    return DBP_OK;
}

/* The values an enum-like option takes, and what each sets. */
typedef struct enum_choice {
    const char *text;
    int value;
} enum_choice;

static const enum_choice *choices_of(dbp_opt_type type)
{
    static const enum_choice reset[] = {{"rollback", DBP_RESET_ROLLBACK},
                                        {"commit", DBP_RESET_COMMIT}, {NULL, 0}};
    static const enum_choice session[] = {{"auto", DBP_SESSION_AUTO},
                                          {"always", DBP_SESSION_ALWAYS}, {NULL, 0}};
    static const enum_choice numeric[] = {{"number", DBP_NUMERIC_NUMBER},
                                          {"string", DBP_NUMERIC_STRING}, {NULL, 0}};
    static const enum_choice role[] = {{"any", DBP_ROLE_ANY}, {"primary", DBP_ROLE_PRIMARY},
                                       {NULL, 0}};

    switch (type) {
    case DBP_OPT_RESET: return reset;
    case DBP_OPT_SESSION: return session;
    case DBP_OPT_NUMERIC: return numeric;
    case DBP_OPT_ROLE: return role;
    default: return NULL;
    }
}

/* What a refused string is shown as: itself, quoted, when it is short and
 * plain enough to be a mistyped word ("rolback"); never a DSN or a
 * password pasted into the wrong option. */
static void shown_string(const char *v, char *out, size_t size)
{
    size_t len = strlen(v);
    bool plain = len <= 32;

    for (size_t i = 0; plain && i < len; i++)
        plain = isalnum((unsigned char)v[i]) || strchr("_-. ", v[i]) != NULL;
    if (plain)
        snprintf(out, size, "\"%s\"", v);
    else
        snprintf(out, size, "a string of %zu bytes that is none of them", len);
}

/* name, dsn, application_name: copied; name checked, application_name
 * bounded (the server keeps NAMEDATALEN - 1 bytes of it and says so in a
 * NOTICE on every connect; a much longer one overflows the startup packet
 * and fails every connect). */
static dbp_status set_text(dbp_config *c, const dbp_option *o, const char *v, dbp_error *err)
{
    char *copy;

    /* name and dsn must say something; application_name may be empty. */
    if (v[0] == '\0' && o->offset != OFF(application_name))
        return invalid(err, o, "an empty string");
    if (o->offset == OFF(name) && check_name(o, v, err) != DBP_OK)
        return DBP_INVALID;
    if (o->offset == OFF(application_name) && strlen(v) > DBP_NAME_MAX)
        return dbp_error_set(err, DBP_INVALID,
                             "option 'application_name' must be at most %d bytes (what the "
                             "server keeps: NAMEDATALEN - 1), got %zu bytes",
                             DBP_NAME_MAX, strlen(v));
    if ((copy = strdup(v)) == NULL)
        return dbp_error_set(err, DBP_NOMEM, "out of memory");
    free(*FIELD(c, o, char *));
    *FIELD(c, o, char *) = copy;
    return DBP_OK;
}

dbp_status dbp_config_set_string(dbp_config *c, const dbp_option *o, const char *v,
                                 dbp_error *err)
{
    const enum_choice *choice = choices_of(o->type);
    char got[96];

    shown_string(v, got, sizeof got);
    if (dbp_option_takes_auto(o)) {
        if (strcmp(v, "auto") != 0)
            return invalid(err, o, got);
        c->pool_size_auto = true;
        return DBP_OK;
    }
    if (o->type == DBP_OPT_STRING)
        return set_text(c, o, v, err);
    if (choice == NULL)
        return invalid(err, o, "a string");
    for (; choice->text != NULL; choice++)
        if (strcmp(v, choice->text) == 0) {
            *FIELD(c, o, int) = choice->value;
            return DBP_OK;
        }
    return invalid(err, o, got);
}

dbp_status dbp_config_add_replica(dbp_config *c, const char *dsn, dbp_error *err)
{
    char **grown;

    if (dsn[0] == '\0')
        return invalid(err, dbp_option_find("replicas"), "an empty string in the list");
    grown = realloc(c->replicas, (size_t)(c->n_replicas + 1) * sizeof *grown);
    if (grown == NULL)
        return dbp_error_set(err, DBP_NOMEM, "out of memory");
    c->replicas = grown;
    c->replicas[c->n_replicas] = strdup(dsn);
    if (c->replicas[c->n_replicas] == NULL)
        return dbp_error_set(err, DBP_NOMEM, "out of memory");
    c->n_replicas++;
    return DBP_OK;
}

bool dbp_option_takes_auto(const dbp_option *o)
{
    return o->offset == OFF(pool_size) && o->type == DBP_OPT_INT;
}

/* pool_size = "auto" and its table: defaults filled, bounds in order,
 * pool_size resolved to auto.max; the table refused without "auto". */
static dbp_status finish_auto(dbp_config *c, dbp_error *err)
{
    if (!c->pool_size_auto) {
        if (c->auto_min != 0 || c->auto_max != 0 || c->auto_interval != 0)
            return dbp_error_set(err, DBP_INVALID,
                                 "option 'auto' applies only with pool_size = \"auto\", "
                                 "got pool_size %d", c->pool_size);
        return DBP_OK;
    }
    if (c->auto_max == 0)
        return dbp_error_set(err, DBP_INVALID,
                             "option 'auto.max' is required with pool_size = \"auto\" (the "
                             "most connections the pool keeps), got none");
    if (c->auto_min == 0)
        c->auto_min = 1;
    if (c->auto_interval == 0)
        c->auto_interval = 30;
    if (c->auto_min > c->auto_max)
        return dbp_error_set(err, DBP_INVALID,
                             "option 'auto.min' must be at most auto.max (%d), got %d",
                             c->auto_max, c->auto_min);
    c->pool_size = c->auto_max;
    return DBP_OK;
}

dbp_status dbp_config_finish(dbp_config *c, dbp_error *err)
{
    dbp_status st;

    if (c->name == NULL)
        return dbp_error_set(err, DBP_INVALID,
                             "option 'name' is required (the market or database name)");
    if (c->dsn == NULL)
        return dbp_error_set(err, DBP_INVALID,
                             "option 'dsn' is required (a libpq URI or key=value string)");
    if ((st = finish_auto(c, err)) != DBP_OK)
        return st;
    if (c->pool_size > 0 && c->min_idle > c->pool_size)
        return dbp_error_set(err, DBP_INVALID,
                             "option 'min_idle' must be at most %s (%d), got %d",
                             c->pool_size_auto ? "auto.max" : "pool_size", c->pool_size,
                             c->min_idle);
    if (c->retry_max < c->retry_base)
        return dbp_error_set(err, DBP_INVALID,
                             "option 'retry.max' must be >= retry.base (%g), got %g",
                             c->retry_base, c->retry_max);
    /* PgBouncer rejects the startup parameter "options" (08P01), and in
     * transaction pooling a session SET would leak to other clients: there
     * is no honest place to send these from here. */
    if (c->pgbouncer) {
        const char *set = c->statement_timeout >= 0   ? "statement_timeout"
                          : c->lock_timeout >= 0      ? "lock_timeout"
                          : c->idle_in_transaction_session_timeout >= 0
                              ? "idle_in_transaction_session_timeout"
                              : NULL;
        if (set != NULL)
            return dbp_error_set(err, DBP_INVALID,
                                 "option '%s' cannot be used with pgbouncer = true: PgBouncer "
                                 "rejects it as a startup parameter and, in transaction "
                                 "pooling, a SET would reach other clients; set it on the "
                                 "server instead (ALTER ROLE ... SET %s = ...)",
                                 set, set);
    }
    /* PgBouncer 1.18 in transaction pooling runs each statement on whichever
     * server connection is free: a statement prepared on one is missing on
     * the next. */
    if (c->pgbouncer && c->prepare_threshold > 0)
        return dbp_error_set(err, DBP_INVALID,
                             "option 'prepare_threshold' cannot be used with pgbouncer = true: "
                             "in transaction pooling a prepared statement lives on one server "
                             "connection and the next statement may run on another");
    return DBP_OK;
}

/* ---- options as numbers (policies, the capacity) ---------------------- */

double dbp_option_value(const dbp_config *c, const dbp_option *o)
{
    switch (o->type) {
    case DBP_OPT_INT:
    case DBP_OPT_RESET:
    case DBP_OPT_SESSION:
    case DBP_OPT_ROLE:
    case DBP_OPT_NUMERIC:
        return *CFIELD(c, o, int);
    case DBP_OPT_NUMBER:
        return *CFIELD(c, o, double);
    case DBP_OPT_BOOL:
        return *CFIELD(c, o, bool) ? 1 : 0;
    default:
        return NAN;
    }
}

double dbp_config_capacity(const dbp_config *c)
{
    if (c->pool_size == 0 || c->max_overflow < 0)
        return HUGE_VAL;
    return (double)c->pool_size + c->max_overflow;
}

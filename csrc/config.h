/* config.h: an engine's options as a plain C struct, their defaults, one
 * descriptor per option (name, type, bounds), validation, copy, comparison,
 * and the capacity they allow.  Policies over options are policy.h, DSN
 * redaction redact.h.  Pure C: no Lua, no libpq, testable from spec/c. */
#ifndef DBP_CONFIG_H
#define DBP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include "common.h"
#include "error.h"

typedef enum dbp_reset {
    DBP_RESET_NONE = 0,   /* reset_on_return = false */
    DBP_RESET_ROLLBACK,
    DBP_RESET_COMMIT
} dbp_reset;

/* reset_session: DISCARD ALL on return. */
typedef enum dbp_session_reset {
    DBP_SESSION_KEEP = 0,  /* false: never */
    DBP_SESSION_AUTO,      /* after a statement whose command tag may have changed the session */
    DBP_SESSION_ALWAYS     /* after any statement */
} dbp_session_reset;

/* numeric: how values of type numeric come back. */
typedef enum dbp_numeric {
    DBP_NUMERIC_NUMBER = 0,  /* "number": a Lua number (a double: about 15 digits) */
    DBP_NUMERIC_STRING       /* "string": the server's text, every digit */
} dbp_numeric;

typedef enum dbp_role {
    DBP_ROLE_ANY = 0,
    DBP_ROLE_PRIMARY      /* a read-only server counts as dead */
} dbp_role;

typedef struct dbp_config {
    char *name;
    char *dsn;
    int pool_size;            /* 0 = no limit; with pool_size_auto, auto_max once
                                 dbp_config_finish resolved it (the bound policies,
                                 the capacity and the idle set read) */
    bool pool_size_auto;      /* pool_size = "auto": the kept size follows demand
                                 within auto_min..auto_max (autosize.h) */
    int auto_min;             /* connections; 0 = unset (finish: 1) */
    int auto_max;             /* connections; 0 = unset (required with "auto") */
    double auto_interval;     /* seconds between sizing decisions; 0 = unset (finish: 30) */
    int max_overflow;         /* -1 = unbounded */
    double pool_timeout;      /* seconds */
    double pool_recycle;      /* seconds; -1 = never */
    double recycle_jitter;    /* fraction of pool_recycle taken off at birth */
    bool pool_pre_ping;
    double pre_ping_bypass;   /* seconds */
    double yield_after;       /* OpenResty: seconds a statement may block the worker */
    int max_total_connections; /* across processes forked after creation; 0 = off */
    int reset_on_return;      /* dbp_reset */
    int reset_session;        /* dbp_session_reset */
    int numeric;              /* dbp_numeric */
    double ping_timeout;      /* seconds a pre-ping or health ping may take */
    double reset_timeout;     /* seconds the reset on return may take */
    double query_timeout;     /* seconds a statement may take, client side; 0 = none */
    int max_message_size;     /* bytes; a connection that moved a bigger message is
                                 closed on return; 0 = no bound */
    bool use_lifo;
    int min_idle;
    int max_queries;          /* 0 = never rotate */
    int prepare_threshold;    /* executions of a text before it is prepared; 0 = never */
    int prepared_max;         /* texts counted (and prepared) per connection */
    double connect_timeout;   /* seconds; 0 = wait forever */
    bool connect_timeout_set; /* given to dbpool.engine: it wins over the DSN's and
                                 PGCONNECT_TIMEOUT (conninfo.h) */
    char *application_name;   /* NULL = unset */
    int statement_timeout;    /* ms; -1 = unset */
    int lock_timeout;
    int idle_in_transaction_session_timeout;
    int role;                 /* dbp_role */
    bool pgbouncer;
    char **replicas;
    int n_replicas;
    int retry_attempts;
    double retry_base;
    double retry_max;
    int breaker_failures;     /* 0 = breaker off */
    double breaker_cooldown;
    double leak_threshold;    /* seconds; 0 = off */
    bool echo;
    bool echo_pool;
    bool echo_params;         /* echo shows parameter values too */
} dbp_config;

typedef enum dbp_opt_type {
    DBP_OPT_STRING,
    DBP_OPT_INT,
    DBP_OPT_NUMBER,
    DBP_OPT_BOOL,
    DBP_OPT_RESET,     /* "rollback" | "commit" | false */
    DBP_OPT_SESSION,   /* "auto" | "always" | false */
    DBP_OPT_ROLE,      /* "any" | "primary" */
    DBP_OPT_NUMERIC,   /* "number" | "string" */
    DBP_OPT_LIST,      /* array of strings (replicas) */
    DBP_OPT_TABLE,     /* sub-options "<name>.<key>" (retry, breaker) */
    DBP_OPT_DECODERS,  /* { [typname or OID] = function }: checked by the binding, kept by
                          each Lua state (functions cannot be shared), never compared */
    DBP_OPT_LUA        /* understood by the Lua layer only (policy) */
} dbp_opt_type;

typedef struct dbp_option {
    const char *name;
    dbp_opt_type type;
    size_t offset;          /* into dbp_config; unused for TABLE and LUA */
    double min, max;        /* numeric bounds, inclusive */
    bool minus_one_ok;      /* -1 is allowed below min ("never"/"unbounded") */
    const char *must_be;    /* phrase for errors: "an integer >= 0" */
} dbp_option;

/* The longest engine name and application_name, in bytes: PostgreSQL's
 * NAMEDATALEN - 1, what the server keeps of a name. */
#define DBP_NAME_MAX 63

/* Every option, in DESIGN.md's order; terminated by a NULL name. */
extern const dbp_option dbp_options[];

/* Fills defaults (DESIGN.md's table).  name and dsn stay NULL. */
void dbp_config_init(dbp_config *c);
void dbp_config_free(dbp_config *c);
/* Deep copy into an uninitialised dst. */
DBP_MUSTCHECK dbp_status dbp_config_copy(dbp_config *dst, const dbp_config *src);

/* NULL when unknown.  Sub-options are named "retry.attempts". */
const dbp_option *dbp_option_find(const char *name);
/* The known option nearest to an unknown name (edit distance), or NULL when
 * nothing is close.  prefix limits the search ("retry." for sub-options). */
const char *dbp_option_suggest(const char *name, const char *prefix);

/* Setters check the value against the descriptor and write the field; on
 * DBP_INVALID err names the option, what it must be and what it got.
 * name is 1 to DBP_NAME_MAX ASCII letters, digits, '_', '-', '.' or ':' (no
 * '/', which the registry's replica names use; nothing that is not valid
 * UTF-8); application_name at most DBP_NAME_MAX bytes. */
DBP_MUSTCHECK dbp_status dbp_config_set_number(dbp_config *c, const dbp_option *o,
                                               double v, dbp_error *err);
DBP_MUSTCHECK dbp_status dbp_config_set_bool(dbp_config *c, const dbp_option *o,
                                             bool v, dbp_error *err);
DBP_MUSTCHECK dbp_status dbp_config_set_string(dbp_config *c, const dbp_option *o,
                                               const char *v, dbp_error *err);
DBP_MUSTCHECK dbp_status dbp_config_add_replica(dbp_config *c, const char *dsn,
                                                dbp_error *err);
/* Renames c's pool to "<name>/replica<i>", the registry's name for the i-th
 * replica of engine <name>: a name dbp_config_set_string refuses, so no
 * engine can pass for another's replica.  DBP_NOMEM, c unchanged, when out
 * of memory. */
DBP_MUSTCHECK dbp_status dbp_config_name_replica(dbp_config *c, int i, dbp_error *err);
/* Cross-option checks once every option is set (required keys, min_idle
 * within pool_size, retry.max >= retry.base, auto only with pool_size =
 * "auto" and auto.min <= auto.max), and resolves pool_size = "auto": fills
 * auto.min (1) and auto.interval (30 s) when unset, and sets pool_size to
 * auto.max, the bound that policies, the capacity and the idle set use.
 * Idempotent. */
DBP_MUSTCHECK dbp_status dbp_config_finish(dbp_config *c, dbp_error *err);

/* True for the one option that also takes the string "auto" (pool_size). */
bool dbp_option_takes_auto(const dbp_option *o);

/* Writes the names of the options that differ, comma separated, into out.
 * Returns how many differ. */
int dbp_config_diff(const dbp_config *a, const dbp_config *b, char *out, size_t size);

/* A 64-bit hash of the options dbp_config_diff compares (FNV-1a): two
 * configs it finds equal hash alike in every process running the same
 * build, so that workers declaring the same engine find the same instance
 * table (arena.h).  A DSN's secrets go in hashed, never in clear.  Cannot
 * fail. */
uint64_t dbp_config_fingerprint(const dbp_config *c);

/* An option's value as a number (booleans 0/1, enums by index); NAN for
 * options that have none (strings, lists, tables). */
double dbp_option_value(const dbp_config *c, const dbp_option *o);

/* The most connections c's pool may hold at once: pool_size + max_overflow,
 * or HUGE_VAL when that is unbounded (pool_size = 0 or max_overflow = -1).
 * The one place the sum and its unbounded rules are written: the pool's
 * limit (pool.c), policies (policy.c), stats().capacity and the Lua code
 * after it all read this.  A double, so that the sum of two large ints
 * cannot overflow and "unbounded" compares above any count.  Cannot fail. */
double dbp_config_capacity(const dbp_config *c);

#endif

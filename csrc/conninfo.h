/* conninfo.h: an engine's connection parameters, parsed by libpq once,
 * when the engine is created (README "Connection parameters").
 *
 * The DSN is read by PQconninfoParse, as libpq reads it; connections open
 * with the resulting keyword/value arrays (PQconnectStartParams with
 * expand_dbname = 0: nothing is ever spliced into a connection string).
 * Precedence, per parameter: an option given to dbpool.engine, else the
 * DSN's value, else the environment (PGCONNECT_TIMEOUT, PGOPTIONS, ... as
 * libpq reads it), else dbpool's default.  dbpool's "-c" settings
 * (statement_timeout, lock_timeout, idle_in_transaction_session_timeout)
 * are appended to the DSN's or the environment's options, never replacing
 * them.
 *
 * It also keeps what must not be shown: the values of every keyword libpq
 * marks secret (dispchar "*": password, sslpassword, any later one), the
 * DSN as it may be shown, and the scrubbing of libpq's messages.
 *
 * Part of the libpq seam (conninfo.c includes libpq-fe.h); this header does
 * not, so the pool and the binding use it freely.  Immutable once made:
 * any thread may read it. */
#ifndef DBP_CONNINFO_H
#define DBP_CONNINFO_H

#include <stddef.h>
#include "common.h"
#include "config.h"
#include "error.h"

typedef struct dbp_conninfo dbp_conninfo;

/* Parses dsn for an engine configured by cfg (NULL: the DSN alone, no
 * engine settings merged, for showing it).  what names the option in
 * errors ("dsn", "replicas[2]").  Returns DBP_OK with *out; DBP_INVALID,
 * a programming mistake, when libpq refuses the DSN (err: "engine 'KG':
 * option 'dsn' is not a valid libpq connection string: " and libpq's
 * reason with every token that might hold a secret hidden,
 * dbp_redact_dsn_error) or when a connect_timeout (the DSN's or
 * PGCONNECT_TIMEOUT) is not a whole number; DBP_NOMEM.  Reads the
 * environment (PQconndefaults) now, once.  cfg's strings (application_name)
 * are not copied: cfg must outlive *out. */
DBP_MUSTCHECK dbp_status dbp_conninfo_new(const dbp_config *cfg, const char *dsn,
                                          const char *what, dbp_conninfo **out, dbp_error *err);
/* NULL is a no-op. */
void dbp_conninfo_free(dbp_conninfo *ci);

/* The DSN as it may be shown (tostring, pool:dsn(), engine.options): the
 * user's text with every secret replaced by "***" when DSN redaction hides
 * every secret libpq parsed; else, rendered from libpq's keywords,
 * "host=h user=u password=***".  Lives as long as ci. */
const char *dbp_conninfo_shown(const dbp_conninfo *ci);

/* The seconds one connection attempt may take (0: no limit of its own):
 * the engine's connect_timeout if given, else the DSN's, else
 * PGCONNECT_TIMEOUT, else the engine's default (10).  dbpool's own clock
 * (dbp_conn_open_by) runs on it. */
double dbp_conninfo_connect_timeout(const dbp_conninfo *ci);

/* msg (libpq's or the server's) into out (size bytes, terminated) with
 * every double-quoted token equal to one of the DSN's secrets hidden. */
void dbp_conninfo_scrub(const dbp_conninfo *ci, const char *msg, char *out, size_t size);

/* For conn.c: the keyword and value arrays to open a connection with,
 * NULL-terminated, for PQconnectStartParams(keys, values, 0). */
const char *const *dbp_conninfo_keywords(const dbp_conninfo *ci);
const char *const *dbp_conninfo_values(const dbp_conninfo *ci);
/* The value the arrays give keyword ("host", "port"), or NULL. */
const char *dbp_conninfo_value(const dbp_conninfo *ci, const char *keyword);

#endif

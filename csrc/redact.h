/* redact.h: keeping secrets out of text that leaves dbpool (DESIGN "Keeps
 * secrets"): DSNs (tostring, pool:dsn()), libpq's and the server's
 * messages (connect errors, a DSN libpq could not parse) and echoed SQL
 * (echo).
 *
 * Secrets are found by where they stand, never by searching a text for a
 * password's characters (a short password would garble every message that
 * happens to contain its letters, and show where it is by what is
 * missing): in a DSN, by the keyword or the URI part that holds them; in a
 * message, as a whole double-quoted token; in SQL, every constant goes.
 * Scanning only moves forward over the input and never reads its own
 * output, so no text, not even a password made of '*', can make it loop.
 *
 * conninfo.c checks what DBP_TEXT_DSN hides against the keywords libpq
 * parses, and falls back on a form rendered from those keywords when the
 * two disagree.
 *
 * Pure C: no Lua, no libpq, testable from spec/c (test_redact.c). */
#ifndef DBP_REDACT_H
#define DBP_REDACT_H

#include <stdbool.h>
#include <stddef.h>

/* What stands where a secret was. */
#define DBP_REDACTED "***"
#define DBP_SECRETS_MAX 16

typedef enum dbp_text {
    DBP_TEXT_DSN,      /* libpq URI (userinfo password, ?password=, ?sslpassword=) or
                        * key=value (password=, sslpassword=; a word with no '=' and
                        * everything after it: it may be the tail of a password) */
    DBP_TEXT_SQL,      /* a statement: every constant ('...', E'...', $tag$...$tag$,
                        * B'...', X'...', U&'...', numbers) replaced by a placeholder
                        * $n numbered after the statement's own parameters, as
                        * pg_stat_statements shows statements (redact_sql.c) */
    DBP_TEXT_MESSAGE   /* libpq's or the server's message: each double-quoted token
                        * equal to one of the secrets becomes "***"; trailing line
                        * ends are dropped */
} dbp_text;

/* Values a message must not quote.  Not copied: each must outlive the calls
 * that use it.  Empty values are ignored; past DBP_SECRETS_MAX, overflow is
 * set and dbp_redact hides the whole text. */
typedef struct dbp_secrets {
    const char *val[DBP_SECRETS_MAX];
    size_t len[DBP_SECRETS_MAX];
    int n;
    bool overflow;
} dbp_secrets;

void dbp_secrets_init(dbp_secrets *s);
void dbp_secrets_add(dbp_secrets *s, const char *val, size_t len);

/* Receives the redacted text piece by piece, in order. */
typedef void (*dbp_redact_sink)(void *ud, const char *s, size_t n);

/* The routine: text, read as kind, to sink with every secret replaced;
 * secrets (DBP_TEXT_MESSAGE only) may be NULL.  NULL text gives nothing.
 * Does not allocate and cannot fail (the sink may, e.g. luaL_addlstring
 * raising: nothing here is left to clean up). */
void dbp_redact(dbp_text kind, const char *text, const dbp_secrets *secrets,
                dbp_redact_sink sink, void *ud);

/* dbp_redact into out: at most size - 1 bytes, always terminated when size
 * > 0 (a cut falls in shown text or in DBP_REDACTED, never in a secret). */
void dbp_redact_buf(dbp_text kind, const char *text, const dbp_secrets *secrets, char *out,
                    size_t size);
/* dbp_redact_buf of a DSN. */
void dbp_redact_dsn(const char *dsn, char *out, size_t size);

/* True when DBP_TEXT_DSN hides, somewhere in dsn, a value that libpq would
 * read as value (len bytes): percent-decoded in a URI, unquoted and
 * unescaped in key=value.  conninfo.c asks it for every secret libpq
 * parsed before it shows the redacted text. */
bool dbp_dsn_hides(const char *dsn, const char *value, size_t len);

/* True when dsn is a URI that says "user:password@" but whose password
 * holds a '/' or '@' that is not percent-encoded: libpq would split it
 * elsewhere (the password's start as a port or host, the rest as the
 * database), so it would connect somewhere else or fail with a message
 * quoting a piece of the password. */
bool dbp_uri_password_unencoded(const char *dsn);

/* libpq's reason for refusing dsn (PQconninfoParse's message), with every
 * double-quoted token hidden unless it is one of libpq's own ("=", "]",
 * ":", "/") or spelled as a keyword and a keyword of dsn that does not
 * follow a secret's value (libpq quotes keywords it does not know, words
 * without '=', whole URIs and raw percent-encoded values, any of which may
 * hold a password, and quotes as well).  The first token not libpq's own
 * runs to the message's last quote, so a '"' inside it ends nothing.  Into
 * out as dbp_redact_buf. */
void dbp_redact_dsn_error(const char *dsn, const char *msg, char *out, size_t size);

/* redact_sql.c: DBP_TEXT_SQL. */
void dbp_redact_sql(const char *sql, dbp_redact_sink sink, void *ud);

#endif

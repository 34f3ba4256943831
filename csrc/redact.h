/* redact.h: the one routine that keeps passwords out of text leaving
 * dbpool (DESIGN "Keeps secrets"): DSNs (tostring, pool:dsn(), option
 * errors), libpq's messages (connect errors) and echoed SQL (echo).
 *
 * Each kind of text has its own syntax for where a password sits; every
 * kind also hides each occurrence of the secrets a caller knows (conn.c
 * passes what libpq parsed out of the DSN, so the day DSN redaction works
 * from libpq's keywords too, it feeds the same list).  Scanning only moves
 * forward over the input and never reads its own output, so no text, not
 * even a password made of '*', can make it loop.
 *
 * Pure C: no Lua, no libpq, testable from spec/c (test_redact.c). */
#ifndef DBP_REDACT_H
#define DBP_REDACT_H

#include <stdbool.h>
#include <stddef.h>

/* What stands where a password was ("'***'" in SQL, quotes kept). */
#define DBP_REDACTED "***"
#define DBP_SECRETS_MAX 16

typedef enum dbp_text {
    DBP_TEXT_DSN,      /* libpq URI (userinfo password, ?password=, ?sslpassword=) or
                        * key=value (password=, sslpassword=; a word with no '=' and
                        * everything after it: it may be the tail of a password) */
    DBP_TEXT_SQL,      /* a statement: the string constant after the word PASSWORD
                        * ('...', E'...', $tag$...$tag$), as CREATE/ALTER ROLE have it */
    DBP_TEXT_MESSAGE   /* free text (libpq's messages): only the secrets; trailing
                        * line ends are dropped */
} dbp_text;

/* Values to hide wherever they appear.  Not copied: each must outlive the
 * calls that use it.  Empty values are ignored; past DBP_SECRETS_MAX,
 * overflow is set and dbp_redact hides the whole text. */
typedef struct dbp_secrets {
    const char *val[DBP_SECRETS_MAX];
    size_t len[DBP_SECRETS_MAX];
    int n;
    bool overflow;
} dbp_secrets;

void dbp_secrets_init(dbp_secrets *s);
void dbp_secrets_add(dbp_secrets *s, const char *val, size_t len);
/* Initialises s with the parts of dsn that DBP_TEXT_DSN hides (pointers
 * into dsn), so that a message echoing them, even from a DSN libpq could
 * not parse, is hidden too. */
void dbp_secrets_from_dsn(dbp_secrets *s, const char *dsn);

/* Receives the redacted text piece by piece, in order. */
typedef void (*dbp_redact_sink)(void *ud, const char *s, size_t n);

/* The routine: text, read as kind, to sink with every password replaced
 * by DBP_REDACTED; secrets may be NULL.  NULL text gives nothing.  Does not
 * allocate and cannot fail (the sink may, e.g. luaL_addlstring raising:
 * nothing here is left to clean up). */
void dbp_redact(dbp_text kind, const char *text, const dbp_secrets *secrets,
                dbp_redact_sink sink, void *ud);

/* dbp_redact into out: at most size - 1 bytes, always terminated when size
 * > 0 (a cut falls in shown text or in DBP_REDACTED, never in a password). */
void dbp_redact_buf(dbp_text kind, const char *text, const dbp_secrets *secrets, char *out,
                    size_t size);
/* dbp_redact_buf of a DSN, with no secrets given. */
void dbp_redact_dsn(const char *dsn, char *out, size_t size);

#endif

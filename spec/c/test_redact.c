/* test_redact.c: csrc/redact.c from C, no server needed.
 *
 * DSNs in every form, passwords made of the characters that trip parsers
 * ('*', '?', '@', '%', quotes, blanks), libpq's messages given secrets
 * (including secrets that look like the mask, which must not loop), echoed
 * SQL, short buffers; last, connect errors from conn.c for DSNs that libpq
 * itself refuses to parse, which it then quotes back. */
#include <stdio.h>
#include <string.h>

#include "conn.h"
#include "redact.h"
#include "testlib.h"

/* kind of text, the text, the secrets (may be NULL); what must come out, and
 * what must not. */
static void redacts(dbp_text kind, const char *text, const dbp_secrets *secrets,
                    const char *want, const char *secret)
{
    char out[512];

    memset(out, 'X', sizeof out);
    dbp_redact_buf(kind, text, secrets, out, sizeof out);
    is_str(out, want, "redact: %s", text);
    if (secret != NULL)
        unlike(out, secret, "redact: '%s' is gone", secret);
}

static void dsn(const char *text, const char *want, const char *secret)
{
    redacts(DBP_TEXT_DSN, text, NULL, want, secret);
}

/* ---- DSNs ---------------------------------------------------------------- */

static void test_dsn_forms(void)
{
    dsn("postgresql://app:s3cret@h:5432/db?sslmode=require",
        "postgresql://app:***@h:5432/db?sslmode=require", "s3cret");
    dsn("postgres://app:s3cret@h/db", "postgres://app:***@h/db", "s3cret");
    dsn("postgresql://app@h/db?password=s3cret&application_name=x",
        "postgresql://app@h/db?password=***&application_name=x", "s3cret");
    dsn("host=h password=s3cret user=app", "host=h password=*** user=app", "s3cret");
    dsn("host=h password='se cr\\'et' user=app", "host=h password=*** user=app", "se cr");
    dsn("host=h password = s3cret dbname=x", "host=h password = *** dbname=x", "s3cret");
    dsn("postgresql://app@h/db", "postgresql://app@h/db", "***");
    dsn("host=h user=app", "host=h user=app", "***");
    dsn("", "", NULL);
    /* libpq's other secret keyword, and keywords libpq would refuse. */
    dsn("host=h sslpassword=k3y", "host=h sslpassword=***", "k3y");
    dsn("postgresql://h/db?sslpassword=k3y", "postgresql://h/db?sslpassword=***", "k3y");
    dsn("host=h PASSWORD=s3cret", "host=h PASSWORD=***", "s3cret");
    dsn("postgresql://h/db?pass%77ord=s3cret", "postgresql://h/db?pass%77ord=***", "s3cret");
}

/* Malformed text, which libpq rejects but which may still be shown: nothing
 * after a word without '=' is trusted, nor the word itself right after a
 * password (it may be the password's tail). */
static void test_dsn_malformed(void)
{
    dsn("host=h password s3cret", "host=h password ***", "3cret");
    dsn("host=h password='s3cret", "host=h password=***", "s3cret");
    dsn("host=h password=two words", "host=h password=*** ***", "words");
    dsn("host=h password=two words port=5432", "host=h password=*** ***", "words");
    dsn("postgresql://h/db?password=a&b&sslmode=require",
        "postgresql://h/db?password=***&***&sslmode=require", "&b&");
    dsn("POSTGRESQL://app:s3cret@h/db", "POSTGRESQL://app:***@h/db", "s3cret");
    dsn("yes", "yes", NULL);      /* a word in the wrong option (lua_config.c) */
    dsn("host=h ", "host=h ", NULL);
}

/* Characters that end a token somewhere: as a URI wants them encoded, as a
 * user may paste them unencoded, quoted and unquoted in key=value. */
static void test_dsn_odd_passwords(void)
{
    dsn("postgresql://app:p%40s%3Fs%25w*rd@h/db", "postgresql://app:***@h/db", "p%40");
    dsn("postgresql://app:p@ss?*%w@h/db", "postgresql://app:***@h/db", "ss?");
    dsn("postgresql://app:p@ss?*%w@h", "postgresql://app:***@h", "ss?");
    dsn("postgresql://app:*@h/db", "postgresql://app:***@h/db", NULL);
    /* A '@' in the query is not the end of a userinfo that has no password. */
    dsn("postgresql://h?password=x@y", "postgresql://h?password=***", "x@y");
    dsn("postgresql://app@h?application_name=a@b", "postgresql://app@h?application_name=a@b",
        NULL);
    dsn("postgresql://app@h/db?password=*%2A@'\"x&sslmode=require",
        "postgresql://app@h/db?password=***&sslmode=require", "%2A@");
    dsn("host=h password='it\\'s \"*?@%' user=app", "host=h password=*** user=app", "it\\'s");
    dsn("host=h password=*?@%\"x' user=app", "host=h password=*** user=app", "?@%");
    dsn("host=h password=a\\ b user=app", "host=h password=*** user=app", "a\\");
    dsn("host=h password=***", "host=h password=***", NULL);
    dsn("host=h password=", "host=h password=***", NULL);
}

static void test_short_buffer(void)
{
    char tiny[12];

    memset(tiny, 'X', sizeof tiny);
    dbp_redact_dsn("postgresql://app:s3cret@h/db", tiny, sizeof tiny);
    ok(memchr(tiny, '\0', sizeof tiny) != NULL, "redact: a short buffer stays terminated");
    unlike(tiny, "s3c", "redact: a short buffer shows no part of the password");
    dbp_redact_dsn(NULL, tiny, sizeof tiny);
    is_str(tiny, "", "redact: NULL gives an empty string");
    tiny[0] = 'X';
    dbp_redact_dsn("host=h", tiny, 0);
    ok(tiny[0] == 'X', "redact: a zero-sized buffer is not written");
}

/* ---- messages ------------------------------------------------------------ */

static void test_messages(void)
{
    dbp_secrets k;

    dbp_secrets_init(&k);
    dbp_secrets_add(&k, "s3cret", 6);
    redacts(DBP_TEXT_MESSAGE, "FATAL: s3cret and s3cret again\n", &k,
            "FATAL: *** and *** again", "s3cret");
    redacts(DBP_TEXT_MESSAGE, "nothing to hide", NULL, "nothing to hide", NULL);

    /* Secrets that look like the mask, or sit inside it: one pass, no loop. */
    dbp_secrets_init(&k);
    dbp_secrets_add(&k, "***", 3);
    redacts(DBP_TEXT_MESSAGE, "a *** b ****", &k, "a *** b ****", NULL);
    dbp_secrets_init(&k);
    dbp_secrets_add(&k, "*", 1);
    redacts(DBP_TEXT_MESSAGE, "x*y**", &k, "x***y******", NULL);

    /* The longest secret wins where two start; empty ones are ignored. */
    dbp_secrets_init(&k);
    dbp_secrets_add(&k, "abc", 3);
    dbp_secrets_add(&k, "abcdef", 6);
    dbp_secrets_add(&k, "", 0);
    is_int(k.n, 2, "secrets: an empty one is not kept");
    redacts(DBP_TEXT_MESSAGE, "xxabcdefyy abcz", &k, "xx***yy ***z", "def");

    /* More than it can hold: the whole text is withheld. */
    dbp_secrets_init(&k);
    for (int i = 0; i <= DBP_SECRETS_MAX; i++)
        dbp_secrets_add(&k, "pw", 2);
    ok(k.overflow, "secrets: overflow is noted");
    redacts(DBP_TEXT_MESSAGE, "could not connect: pw", &k, "***", "pw");
}

/* What a DSN's redaction hides is what a message must not show either. */
static void test_secrets_from_dsn(void)
{
    dbp_secrets k;

    dbp_secrets_from_dsn(&k, "host=h password=two words");
    redacts(DBP_TEXT_MESSAGE, "missing \"=\" after \"words\" in connection info string", &k,
            "missing \"=\" after \"***\" in connection info string", "words");
    dbp_secrets_from_dsn(&k, "postgresql://u:p%zz@h/db");
    redacts(DBP_TEXT_MESSAGE, "invalid percent-encoded token: \"p%zz\"", &k,
            "invalid percent-encoded token: \"***\"", "p%zz");
    dbp_secrets_from_dsn(&k, "host=h password='a b*' user=app");
    redacts(DBP_TEXT_MESSAGE, "it said a b* there", &k, "it said *** there", "a b*");
    dbp_secrets_from_dsn(&k, "host=h user=app");
    is_int(k.n, 0, "secrets: a DSN without a password has none");
    dbp_secrets_from_dsn(&k, NULL);
    is_int(k.n, 0, "secrets: NULL has none");
}

/* ---- echoed SQL ---------------------------------------------------------- */

static void sql(const char *text, const char *want, const char *secret)
{
    redacts(DBP_TEXT_SQL, text, NULL, want, secret);
}

static void test_sql(void)
{
    sql("ALTER ROLE r PASSWORD 'hunter2'", "ALTER ROLE r PASSWORD '***'", "hunter2");
    sql("ALTER ROLE r password  'it''s' VALID UNTIL 'infinity'",
        "ALTER ROLE r password  '***' VALID UNTIL 'infinity'", "it''s");
    sql("SELECT 1 AS password", "SELECT 1 AS password", NULL);
    sql("SELECT passwords 'x'", "SELECT passwords 'x'", NULL);
    sql("CREATE ROLE r PASSWORD E'a\\'b*?' LOGIN", "CREATE ROLE r PASSWORD '***' LOGIN", "b*");
    sql("CREATE ROLE r PASSWORD $pw$x'y@%$pw$ LOGIN", "CREATE ROLE r PASSWORD '***' LOGIN",
        "y@%");
    sql("CREATE ROLE r PASSWORD $$x$$", "CREATE ROLE r PASSWORD '***'", "x");
    sql("ALTER ROLE r PASSWORD 'abc", "ALTER ROLE r PASSWORD '***'", "abc");
    sql("ALTER ROLE r PASSWORD '***'", "ALTER ROLE r PASSWORD '***'", NULL);
    sql("ALTER ROLE r PASSWORD '*?@%\"'; ALTER ROLE s PASSWORD 'two'",
        "ALTER ROLE r PASSWORD '***'; ALTER ROLE s PASSWORD '***'", "two");
    sql("SELECT $1 AS password", "SELECT $1 AS password", NULL);
    sql("ALTER ROLE r PASSWORD", "ALTER ROLE r PASSWORD", NULL);
}

/* ---- through conn.c: libpq quoting a DSN it cannot parse ------------------ */

static void connect_fails_clean(const char *text, const char *secret)
{
    dbp_config cfg;
    dbp_conn *c = NULL;
    dbp_error err;

    dbp_config_init(&cfg);
    cfg.connect_timeout = 2;
    is_int(dbp_conn_open(&cfg, text, &c, &err), DBP_CONNECT, "conn: %s is refused", text);
    like(err.message, "could not connect", "conn: the message says what failed");
    like(err.message, DBP_REDACTED, "conn: libpq quoted the DSN back, hidden: %s", err.message);
    unlike(err.message, secret, "conn: '%s' is not in '%s'", secret, err.message);
    dbp_conn_close(c);
    dbp_config_free(&cfg);
}

static void test_conn_messages(void)
{
    connect_fails_clean("host=127.0.0.1 port=1 password=two words", "words");
    connect_fails_clean("postgresql://u:p%zz@127.0.0.1:1/db", "p%zz");
    connect_fails_clean("postgresql://u:s3cret@[::1/db", "s3cret");
}

int main(void)
{
    test_dsn_forms();
    test_dsn_malformed();
    test_dsn_odd_passwords();
    test_short_buffer();
    test_messages();
    test_secrets_from_dsn();
    test_sql();
    test_conn_messages();
    return done_testing();
}

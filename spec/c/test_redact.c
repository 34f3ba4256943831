/* test_redact.c: csrc/redact.c and redact_sql.c from C, no server needed.
 *
 * DSNs in every form, passwords made of the characters that trip parsers
 * ('*', '?', '@', '%', quotes, blanks), libpq's messages given secrets
 * (including secrets that look like the mask, which must not loop), libpq's
 * reasons for refusing a DSN, echoed SQL, short buffers.  The DSN parsed by
 * libpq, and connect errors, are test_conninfo.c's. */
#include <stdio.h>
#include <string.h>

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

static void msg(const char *text, const dbp_secrets *k, const char *want, const char *secret)
{
    redacts(DBP_TEXT_MESSAGE, text, k, want, secret);
}

static void test_messages(void)
{
    dbp_secrets k;

    dbp_secrets_init(&k);
    dbp_secrets_add(&k, "s3cret", 6);
    msg("FATAL: \"s3cret\" and \"s3cret\" again\n", &k, "FATAL: \"***\" and \"***\" again",
        "s3cret");
    msg("nothing to hide", NULL, "nothing to hide", NULL);
    /* By position, not by letters: a short secret does not garble text. */
    dbp_secrets_init(&k);
    dbp_secrets_add(&k, "on", 2);
    msg("could not connect: connection to server at \"h\" failed", &k,
        "could not connect: connection to server at \"h\" failed", NULL);
    msg("role \"on\" is unknown", &k, "role \"***\" is unknown", "\"on\"");
    msg("unterminated \"on", &k, "unterminated \"***", "\"on");

    /* Secrets that look like the mask, or sit inside it: one pass, no loop. */
    dbp_secrets_init(&k);
    dbp_secrets_add(&k, "***", 3);
    msg("a \"***\" b ****", &k, "a \"***\" b ****", NULL);
    dbp_secrets_init(&k);
    dbp_secrets_add(&k, "*", 1);
    msg("x\"*\"y**", &k, "x\"***\"y**", NULL);
    dbp_secrets_init(&k);
    dbp_secrets_add(&k, "\"", 1);
    msg("a \"\"\" b", &k, "a \"\"\" b", NULL);

    /* Empty ones are ignored. */
    dbp_secrets_init(&k);
    dbp_secrets_add(&k, "abc", 3);
    dbp_secrets_add(&k, "", 0);
    is_int(k.n, 1, "secrets: an empty one is not kept");
    msg("\"\" and \"abc\"", &k, "\"\" and \"***\"", "abc");

    /* More than it can hold: the whole text is withheld. */
    dbp_secrets_init(&k);
    for (int i = 0; i <= DBP_SECRETS_MAX; i++)
        dbp_secrets_add(&k, "pw", 2);
    ok(k.overflow, "secrets: overflow is noted");
    msg("could not connect: pw", &k, "***", "pw");
}

/* What libpq says of a DSN it refuses, as dbp_redact_dsn_error shows it:
 * quoted keywords stay, anything else quoted goes. */
static void dsn_error(const char *text, const char *why, const char *want, const char *secret)
{
    char out[512];

    dbp_redact_dsn_error(text, why, out, sizeof out);
    is_str(out, want, "dsn error: %s", text);
    if (secret != NULL)
        unlike(out, secret, "dsn error: '%s' is gone", secret);
}

static void test_dsn_errors(void)
{
    dsn_error("POSTGRESQL://u:S3CRET@h/db",
              "missing \"=\" after \"POSTGRESQL://u:S3CRET@h/db\" in connection info string\n",
              "missing \"=\" after \"***\" in connection info string", "S3CRET");
    dsn_error("postgresql://u:S3%zzCRET@h", "invalid percent-encoded token: \"S3%zzCRET\"\n",
              "invalid percent-encoded token: \"***\"", "S3%zz");
    dsn_error("host=h password=two words",
              "missing \"=\" after \"words\" in connection info string\n",
              "missing \"=\" after \"***\" in connection info string", "words");
    dsn_error("host=h password=a b=c", "invalid connection option \"b\"\n",
              "invalid connection option \"***\"", "\"b\"");
    dsn_error("host=h hots=x", "invalid connection option \"hots\"\n",
              "invalid connection option \"hots\"", NULL);
    dsn_error("postgresql://h?password=a&b=c", "invalid URI query parameter: \"b\"\n",
              "invalid URI query parameter: \"***\"", "\"b\"");
    dsn_error("postgresql://h?passwrd=x", "invalid URI query parameter: \"passwrd\"\n",
              "invalid URI query parameter: \"passwrd\"", NULL);
    dsn_error("postgresql://h?pass%77rd=x", "invalid URI query parameter: \"passwrd\"\n",
              "invalid URI query parameter: \"passwrd\"", NULL);
    dsn_error("postgresql://u:pw@[::1/db",
              "end of string reached when looking for matching \"]\" in IPv6 host address in "
              "URI: \"postgresql://u:pw@[::1/db\"\n",
              "end of string reached when looking for matching \"]\" in IPv6 host address in "
              "URI: \"***\"", "pw@");
    dsn_error("host=h password='abc", "unterminated quoted string in connection info string\n",
              "unterminated quoted string in connection info string", NULL);
    /* A password spelled like a keyword, or made of quotes and stars. */
    dsn_error("postgressql://u:ab=cd@h", "invalid connection option \"postgressql://u:ab\"",
              "invalid connection option \"***\"", "ab");
    dsn_error("POSTGRESQL://u:h@\":Qmark'g@h/db",
              "missing \"=\" after \"POSTGRESQL://u:h@\":Qmark'g@h/db\" in connection info string",
              "missing \"=\" after \"***\" in connection info string", "mark");
    dsn_error("postgressql://u:x\"mark=y@h", "invalid connection option \"postgressql://u:x\"mark\"",
              "invalid connection option \"***\"", "mark");
    dsn_error("postgresql://u:pw@h\"mark/db",
              "unexpected character \"\"\" at position 19 in URI (expected \":\" or \"/\"): "
              "\"postgresql://u:pw@h\"mark/db\"", "unexpected character \"***\"", "mark");
    dsn_error("host=h hots=x password=hots", "invalid connection option \"hots\"",
              "invalid connection option \"***\"", "hots");
    dsn_error("host=h password=\"*\" x", "missing \"=\" after \"x\" in connection info string",
              "missing \"=\" after \"***\" in connection info string", NULL);
}

/* What DBP_TEXT_DSN hides is compared with what libpq parsed (conninfo.c). */
static void hides(const char *text, const char *value, bool want)
{
    ok(dbp_dsn_hides(text, value, strlen(value)) == want, "dsn %s '%s': %s", want ? "hides"
       : "does not hide", value, text);
}

static void test_dsn_hides(void)
{
    hides("postgresql://u:p%40ss@h/db", "p@ss", true);
    hides("postgresql://u:S3?CRET@h", "S3?CRET", true);
    hides("postgresql://h/db?pass%77ord=S3CRET", "S3CRET", true);
    hides("host=h password='a b\\'c' user=u", "a b'c", true);
    hides("host=h password='a\\\\' user=u", "a\\", true);
    hides("host=h password=a\\ b user=u", "a b", true);
    hides("host=h sslpassword=k3y", "k3y", true);
    hides("host=h user=pw", "pw", false);
    hides("host=h password=pw", "p", false);
    hides(NULL, "x", false);
}

/* ---- echoed SQL ---------------------------------------------------------- */

static void sql(const char *text, const char *want, const char *secret)
{
    redacts(DBP_TEXT_SQL, text, NULL, want, secret);
}

static void test_sql(void)
{
    sql("ALTER ROLE r PASSWORD 'hunter2'", "ALTER ROLE r PASSWORD $1", "hunter2");
    /* With standard_conforming_strings off, \' escapes the quote: echo
     * cannot know the session's setting, so the rest is one constant. */
    sql("ALTER ROLE r PASSWORD 'ab\\'S3CRETpw'", "ALTER ROLE r PASSWORD $1", "S3CRETpw");
    sql("SELECT 'x\\' , 1 AS S3CRETpw -- '::text", "SELECT $1", "S3CRETpw");
    sql("SELECT E'a\\'b', 'S3CRETpw'", "SELECT $1, $2", "S3CRETpw");
    sql("ALTER ROLE r password  'it''s' VALID UNTIL 'infinity'",
        "ALTER ROLE r password  $1 VALID UNTIL $2", "it''s");
    sql("CREATE ROLE r PASSWORD E'a\\'b*?' LOGIN", "CREATE ROLE r PASSWORD $1 LOGIN", "b*");
    sql("CREATE ROLE r PASSWORD e'a\\\\' LOGIN", "CREATE ROLE r PASSWORD $1 LOGIN", "a\\");
    sql("CREATE ROLE r PASSWORD $pw$x'y@%$pw$ LOGIN", "CREATE ROLE r PASSWORD $1 LOGIN", "y@%");
    sql("CREATE ROLE r PASSWORD $$x$$", "CREATE ROLE r PASSWORD $1", "x$");
    sql("ALTER ROLE r PASSWORD 'abc", "ALTER ROLE r PASSWORD $1", "abc");
    sql("SELECT dblink_connect('host=x password=y')", "SELECT dblink_connect($1)", "password=y");
    sql("SELECT pgp_sym_encrypt($1, 'k3y'), $2", "SELECT pgp_sym_encrypt($1, $3), $2", "k3y");
    sql("SELECT 42, -1.5e3, .5, 0x1F, 1_000 FROM t1 WHERE c2 = 7",
        "SELECT $1, -$2, $3, $4, $5 FROM t1 WHERE c2 = $6", "42");
    sql("SELECT 'a' 'b', U&'d\\0061t', B'101', X'1F', N'x'",
        "SELECT $1 $2, $3, $4, $5, $6", "101");
    sql("SELECT \"it's\" AS \"a\"\"b\", $1 AS password", "SELECT \"it's\" AS \"a\"\"b\", $1 AS password",
        NULL);
    sql("SELECT 1 -- it's 2\n, 3 /* '4' /* 5 */ 6 */", "SELECT $1 -- it's 2\n, $2 /* '4' /* 5 */ 6 */",
        NULL);
    sql("SELECT a$1, $10", "SELECT a$1, $10", NULL);
    sql("SELECT '***', '*'", "SELECT $1, $2", "'*'");
    sql("", "", NULL);
    sql("SELECT 1::int, '1 day'::interval", "SELECT $1::int, $2::interval", "day");
}

int main(void)
{
    test_dsn_forms();
    test_dsn_malformed();
    test_dsn_odd_passwords();
    test_short_buffer();
    test_messages();
    test_dsn_errors();
    test_dsn_hides();
    test_sql();
    return done_testing();
}

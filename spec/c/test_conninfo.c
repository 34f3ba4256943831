/* test_conninfo.c: csrc/conninfo.c from C: the DSN as libpq parses it, the
 * keyword arrays connections open with (precedence: engine option, DSN,
 * environment, dbpool's default), what of it may be shown, and connect
 * errors through conn.c.  No server needed: a closed port and a listener
 * that never answers stand in for one. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "conninfo.h"
#include "testlib.h"

static void config(dbp_config *cfg)
{
    dbp_error err;

    dbp_config_init(cfg);
    if (dbp_config_set_string(cfg, dbp_option_find("name"), "KG", &err) != DBP_OK)
        bail_out("config: %s", err.message);
}

/* ci for dsn with cfg (NULL: the DSN alone), or bail out. */
static dbp_conninfo *parse(const dbp_config *cfg, const char *dsn)
{
    dbp_conninfo *ci = NULL;
    dbp_error err;

    if (dbp_conninfo_new(cfg, dsn, "dsn", &ci, &err) != DBP_OK)
        bail_out("parse %s: %s", dsn, err.message);
    return ci;
}

/* The value ci opens connections with for keyword, or NULL. */
static const char *param(const dbp_conninfo *ci, const char *keyword)
{
    const char *const *k = dbp_conninfo_keywords(ci), *const *v = dbp_conninfo_values(ci);

    for (int i = 0; k[i] != NULL; i++)
        if (strcmp(k[i], keyword) == 0)
            return v[i];
    return NULL;
}

/* ---- what may be shown ---------------------------------------------------- */

static void shown(const char *dsn, const char *want, const char *secret)
{
    dbp_conninfo *ci = parse(NULL, dsn);

    is_str(dbp_conninfo_shown(ci), want, "shown: %s", want);
    unlike(dbp_conninfo_shown(ci), secret, "shown: no '%s'", secret);
    dbp_conninfo_free(ci);
}

static void test_shown(void)
{
    shown("postgresql://app:S3CRET@h:5432/db?sslmode=require",
          "postgresql://app:***@h:5432/db?sslmode=require", "S3CRET");
    shown("postgresql://u:S3?CRET@h", "postgresql://u:***@h", "CRET");
    shown("postgresql://h/db?pass%77ord=S3CRET", "postgresql://h/db?pass%77ord=***", "S3CRET");
    shown("postgresql://h/db?sslpassword=K3Y&sslmode=require",
          "postgresql://h/db?sslpassword=***&sslmode=require", "K3Y");
    shown("host=h sslpassword=K3Y password='a b' user=u",
          "host=h sslpassword=*** password=*** user=u", "K3Y");
    shown("host=h user=u", "host=h user=u", "***");
}

/* ---- refused DSNs ---------------------------------------------------------- */

static void refused(const char *dsn, const char *reason, const char *secret)
{
    dbp_config cfg;
    dbp_conninfo *ci = NULL;
    dbp_error err;

    config(&cfg);
    is_int(dbp_conninfo_new(&cfg, dsn, "dsn", &ci, &err), DBP_INVALID, "refused: %s", reason);
    like(err.message, "engine 'KG': option 'dsn' is not a valid libpq connection string: ",
         "... naming the engine and the option");
    like(err.message, reason, "... and libpq's reason: %s", err.message);
    unlike(err.message, secret, "... without '%s'", secret);
    ok(ci == NULL, "... and nothing made");
    dbp_config_free(&cfg);
}

static void test_refused(void)
{
    refused("POSTGRESQL://u:S3CRET@h/db", "missing \"=\" after \"***\"", "S3CRET");
    refused("postgressql://u:S3CRET@h", "missing \"=\" after \"***\"", "S3CRET");
    refused("postgresql://u:S3%zzCRET@h", "invalid percent-encoded token: \"***\"", "zzCRET");
    refused("postgresql://u:k9/S3CRETpw==@h:5432/db", "percent-encoded", "S3CRETpw");
    refused("postgresql://u:pa@S3CRETpw@h/db", "percent-encoded", "S3CRETpw");
    refused("postgresql://u:/W5S3CRETpw@127.0.0.1:1/db", "percent-encoded", "S3CRETpw");
    refused("postgresql://u:=\"o%HqS3CRETpw@127.0.0.1:1/db", "invalid percent-encoded token",
            "S3CRETpw");
    refused("postgresql://u:Ob@owS3CRETpw/z@127.0.0.1:1/db", "percent-encoded", "S3CRETpw");
    refused("host=h password=two words", "missing \"=\" after \"***\"", "words");
    refused("host=h hots=x", "invalid connection option \"hots\"", "password");
    refused("host=h password=*** x", "missing \"=\" after \"***\"", "\"x\"");
}

/* ---- precedence ------------------------------------------------------------ */

static void test_connect_timeout(void)
{
    dbp_config cfg;
    dbp_conninfo *ci;
    dbp_error err;

    config(&cfg);
    unsetenv("PGCONNECT_TIMEOUT");
    ci = parse(&cfg, "host=h");
    ok(dbp_conninfo_connect_timeout(ci) == 10, "connect_timeout: dbpool's default, 10");
    is_str(param(ci, "connect_timeout"), "10", "... and libpq gets it");
    dbp_conninfo_free(ci);

    setenv("PGCONNECT_TIMEOUT", "3", 1);
    ci = parse(&cfg, "host=h");
    ok(dbp_conninfo_connect_timeout(ci) == 3, "connect_timeout: PGCONNECT_TIMEOUT over the default");
    dbp_conninfo_free(ci);

    ci = parse(&cfg, "host=h connect_timeout=2");
    ok(dbp_conninfo_connect_timeout(ci) == 2, "connect_timeout: the DSN's over the environment");
    is_str(param(ci, "connect_timeout"), "2", "... and libpq gets it");
    dbp_conninfo_free(ci);

    if (dbp_config_set_number(&cfg, dbp_option_find("connect_timeout"), 0.5, &err) != DBP_OK)
        bail_out("connect_timeout: %s", err.message);
    ci = parse(&cfg, "postgresql://h/db?connect_timeout=2");
    ok(dbp_conninfo_connect_timeout(ci) == 0.5, "connect_timeout: the engine's over the DSN's");
    is_str(param(ci, "connect_timeout"), "1", "... libpq gets whole seconds, rounded up");
    dbp_conninfo_free(ci);
    unsetenv("PGCONNECT_TIMEOUT");
    dbp_config_free(&cfg);

    config(&cfg);
    ci = NULL;
    is_int(dbp_conninfo_new(&cfg, "host=h connect_timeout=soon", "dsn", &ci, &err), DBP_INVALID,
           "connect_timeout: a DSN's that is no number is refused");
    like(err.message, "the DSN's connect_timeout must be a whole number", "... saying so: %s",
         err.message);
    dbp_config_free(&cfg);
}

static void test_options(void)
{
    dbp_config cfg;
    dbp_conninfo *ci;
    dbp_error err;

    config(&cfg);
    unsetenv("PGOPTIONS");
    ci = parse(&cfg, "host=h options='-c search_path=app'");
    is_str(param(ci, "options"), "-c search_path=app", "options: the DSN's alone, untouched");
    dbp_conninfo_free(ci);

    if (dbp_config_set_number(&cfg, dbp_option_find("statement_timeout"), 1000, &err) != DBP_OK)
        bail_out("statement_timeout: %s", err.message);
    ci = parse(&cfg, "host=h options='-c search_path=app -c default_transaction_read_only=on'");
    is_str(param(ci, "options"),
           "-c search_path=app -c default_transaction_read_only=on -c statement_timeout=1000",
           "options: dbpool's -c settings appended to the DSN's");
    dbp_conninfo_free(ci);

    setenv("PGOPTIONS", "-c work_mem=8MB", 1);
    ci = parse(&cfg, "host=h");
    is_str(param(ci, "options"), "-c work_mem=8MB -c statement_timeout=1000",
           "options: ... or to PGOPTIONS when the DSN has none");
    dbp_conninfo_free(ci);
    ci = parse(&cfg, "host=h options=-cwork_mem=1MB");
    is_str(param(ci, "options"), "-cwork_mem=1MB -c statement_timeout=1000",
           "options: the DSN's, not PGOPTIONS, when it has some (libpq's precedence)");
    dbp_conninfo_free(ci);
    unsetenv("PGOPTIONS");
    dbp_config_free(&cfg);
}

static void test_other_params(void)
{
    dbp_config cfg;
    dbp_conninfo *ci;
    dbp_error err;

    config(&cfg);
    ci = parse(&cfg, "host=h keepalives_idle=5 application_name=dsn_app");
    is_str(param(ci, "keepalives_idle"), "5", "keepalives_idle: the DSN's over dbpool's default");
    is_str(param(ci, "keepalives_count"), "3", "keepalives_count: dbpool's default");
    is_str(param(ci, "application_name"), "dsn_app", "application_name: the DSN's");
    ok(param(ci, "target_session_attrs") == NULL, "role any: no target_session_attrs");
    dbp_conninfo_free(ci);

    if (dbp_config_set_string(&cfg, dbp_option_find("application_name"), "engine_app", &err) ||
        dbp_config_set_string(&cfg, dbp_option_find("role"), "primary", &err))
        bail_out("config: %s", err.message);
    ci = parse(&cfg, "host=h application_name=dsn_app");
    is_str(param(ci, "application_name"), "engine_app", "application_name: the engine's wins");
    is_str(param(ci, "target_session_attrs"), "read-write", "role primary: read-write");
    dbp_conninfo_free(ci);
    ci = parse(&cfg, "host=h target_session_attrs=primary");
    is_str(param(ci, "target_session_attrs"), "primary", "... unless the DSN says otherwise");
    dbp_conninfo_free(ci);

    /* A dbname is a name: nothing in it is read as more parameters. */
    ci = parse(&cfg, "dbname='host=elsewhere password=x'");
    is_str(param(ci, "dbname"), "host=elsewhere password=x", "dbname: taken literally");
    ok(param(ci, "host") == NULL, "... no host smuggled in");
    dbp_conninfo_free(ci);
    dbp_config_free(&cfg);
}

/* ---- connecting ----------------------------------------------------------- */

/* A connect to dsn fails cleanly (DBP_CONNECT, no secret) within [lo, hi) s. */
static void connect_fails(const char *dsn, const char *secret, double lo, double hi)
{
    dbp_config cfg;
    dbp_conninfo *ci;
    dbp_conn *c = NULL;
    dbp_error err;
    double t0 = tl_now();

    config(&cfg);
    ci = parse(&cfg, dsn);
    is_int(dbp_conn_open(&cfg, ci, &c, &err), DBP_CONNECT, "connect: %s is refused", dbp_conninfo_shown(ci));
    between(tl_now() - t0, lo, hi, "... within %.1f..%.1f s", lo, hi);
    like(err.message, "could not connect", "... saying so: %s", err.message);
    unlike(err.message, secret, "... without '%s'", secret);
    dbp_conninfo_free(ci);
    dbp_config_free(&cfg);
}

/* A listener that completes the TCP handshake (the kernel does) and never
 * says a word: its port. */
static int silent_listener(int *fd)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;

    *fd = socket(AF_INET, SOCK_STREAM, 0);
    if (*fd < 0 || bind(*fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(*fd, 8) != 0 ||
        getsockname(*fd, (struct sockaddr *)&a, &len) != 0)
        bail_out("silent listener");
    return ntohs(a.sin_port);
}

static void test_connect(void)
{
    char dsn[160];
    int fd, port = silent_listener(&fd);

    connect_fails("postgresql://u:TopSecret99@127.0.0.1:1/x", "TopSecret99", 0, 5);
    /* libpq quotes the host: a password spelled the same is hidden there. */
    connect_fails("host=127.0.0.1 port=1 user=u password=127.0.0.1", "\"127.0.0.1\"", 0, 5);
    snprintf(dsn, sizeof dsn, "host=127.0.0.1 port=%d password=TopSecret99 connect_timeout=2",
             port);
    connect_fails(dsn, "TopSecret99", 1.5, 4.5);   /* the DSN's 2 s, not the default 10 */
    close(fd);
}

int main(void)
{
    test_shown();
    test_refused();
    test_connect_timeout();
    test_options();
    test_other_params();
    test_connect();
    return done_testing();
}

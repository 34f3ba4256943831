/* testpool.h: what spec/c's pool tests share: a pool made from option
 * text, and what they read from a pool, one line each. */
#ifndef DBP_TESTPOOL_H
#define DBP_TESTPOOL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pool.h"
#include "testlib.h"

/* SQLAlchemy's counts of p, now. */
static inline dbp_pool_counts counts(dbp_pool *p)
{
    dbp_pool_counts c;

    dbp_pool_counts_get(p, &c);
    return c;
}

/* One of p's counters. */
static inline uint64_t metric(dbp_pool *p, dbp_counter k)
{
    return dbp_metrics_get(dbp_pool_metrics(p), k);
}

/* A pool "dbpt_<pid>_<tag>" on dsn; settings is "name=value,..." of
 * numeric options (pool_pre_ping: 0 or 1) set after the defaults. */
static inline dbp_pool *pool_with(const char *tag, const char *dsn, const char *settings)
{
    char app[64], buf[256], *save = NULL;
    dbp_config c;
    dbp_error err;
    dbp_pool *p = NULL;

    snprintf(app, sizeof app, "dbpt_%d_%s", (int)getpid(), tag);
    dbp_config_init(&c);
    if (dbp_config_set_string(&c, dbp_option_find("name"), app, &err) != DBP_OK ||
        dbp_config_set_string(&c, dbp_option_find("dsn"), dsn, &err) != DBP_OK ||
        dbp_config_set_string(&c, dbp_option_find("application_name"), app, &err) != DBP_OK)
        bail_out("config for %s: %s", tag, err.message);
    snprintf(buf, sizeof buf, "%s", settings);
    for (char *kv = strtok_r(buf, ",", &save); kv != NULL; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        const dbp_option *o;
        *eq = '\0';
        if ((o = dbp_option_find(kv)) == NULL ||
            (strcmp(kv, "pool_pre_ping") == 0
                 ? dbp_config_set_bool(&c, o, atoi(eq + 1) != 0, &err)
                 : dbp_config_set_number(&c, o, atof(eq + 1), &err)) != DBP_OK)
            bail_out("option %s for %s: %s", kv, tag, o ? err.message : "unknown");
    }
    if (dbp_config_finish(&c, &err) != DBP_OK || dbp_pool_new(&c, &p, &err) != DBP_OK)
        bail_out("pool %s: %s", tag, err.message);
    dbp_config_free(&c);
    return p;
}

#endif

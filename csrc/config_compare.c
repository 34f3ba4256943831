/* config_compare.c: comparing two configurations option by option, as the
 * registry does when an engine is declared again (dbp_config_diff), and a
 * hash of the same options for the instance arena's keys
 * (dbp_config_fingerprint). */
#include "config_internal.h"

#include <stdio.h>
#include <string.h>

static bool same_string(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

static bool option_equal(const dbp_config *a, const dbp_config *b, const dbp_option *o)
{
    switch (o->type) {
    case DBP_OPT_STRING:
        return same_string(*CFIELD(a, o, char *), *CFIELD(b, o, char *));
    case DBP_OPT_INT:
        if (dbp_option_takes_auto(o) && a->pool_size_auto != b->pool_size_auto)
            return false;
        return *CFIELD(a, o, int) == *CFIELD(b, o, int);
    case DBP_OPT_RESET:
    case DBP_OPT_SESSION:
    case DBP_OPT_ROLE:
    case DBP_OPT_NUMERIC:
        return *CFIELD(a, o, int) == *CFIELD(b, o, int);
    case DBP_OPT_NUMBER:
        /* connect_timeout given or not differ: not given, the DSN's may apply. */
        return *CFIELD(a, o, double) == *CFIELD(b, o, double) &&
               (o->offset != OFF(connect_timeout) ||
                a->connect_timeout_set == b->connect_timeout_set);
    case DBP_OPT_BOOL:
        return *CFIELD(a, o, bool) == *CFIELD(b, o, bool);
    case DBP_OPT_LIST:
        if (a->n_replicas != b->n_replicas)
            return false;
        for (int i = 0; i < a->n_replicas; i++)
            if (!same_string(a->replicas[i], b->replicas[i]))
                return false;
        return true;
    case DBP_OPT_TABLE:
    case DBP_OPT_DECODERS:
    case DBP_OPT_LUA:
        return true;   /* sub-options and Lua-only keys are compared elsewhere */
    }
    return true;
}

int dbp_config_diff(const dbp_config *a, const dbp_config *b, char *out, size_t size)
{
    int n = 0;
    size_t used = 0;

    if (size > 0)
        out[0] = '\0';
    for (const dbp_option *o = dbp_options; o->name != NULL; o++) {
        if (option_equal(a, b, o))
            continue;
        if (used < size) {
            int w = snprintf(out + used, size - used, "%s%s", n > 0 ? ", " : "", o->name);
            if (w > 0)
                used += (size_t)w;
        }
        n++;
    }
    return n;
}

/* FNV-1a, fed field by field (fingerprint below). */
static uint64_t fnv(uint64_t h, const void *data, size_t n)
{
    const unsigned char *b = data;

    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

/* A string with its end (and NULL apart from ""), so that "ab","c" and
 * "a","bc" differ. */
static uint64_t fnv_string(uint64_t h, const char *s)
{
    unsigned char tag = s == NULL ? 0 : 1;

    h = fnv(h, &tag, 1);
    return s == NULL ? h : fnv(h, s, strlen(s) + 1);
}

uint64_t dbp_config_fingerprint(const dbp_config *c)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    /* What option_equal compares, in the same walk: equal configs hash alike. */
    for (const dbp_option *o = dbp_options; o->name != NULL; o++) {
        h = fnv_string(h, o->name);
        switch (o->type) {
        case DBP_OPT_STRING:
            h = fnv_string(h, *CFIELD(c, o, char *));
            break;
        case DBP_OPT_INT:
        case DBP_OPT_RESET:
        case DBP_OPT_SESSION:
        case DBP_OPT_ROLE:
        case DBP_OPT_NUMERIC:
            h = fnv(h, CFIELD(c, o, int), sizeof(int));
            if (dbp_option_takes_auto(o))
                h = fnv(h, &c->pool_size_auto, sizeof c->pool_size_auto);
            break;
        case DBP_OPT_NUMBER: {
            double v = *CFIELD(c, o, double);
            if (v == 0)
                v = 0;                      /* -0 == 0, as option_equal has it */
            h = fnv(h, &v, sizeof v);
            if (o->offset == OFF(connect_timeout))
                h = fnv(h, &c->connect_timeout_set, sizeof c->connect_timeout_set);
            break;
        }
        case DBP_OPT_BOOL:
            h = fnv(h, CFIELD(c, o, bool), sizeof(bool));
            break;
        case DBP_OPT_LIST:
            h = fnv(h, &c->n_replicas, sizeof c->n_replicas);
            for (int i = 0; i < c->n_replicas; i++)
                h = fnv_string(h, c->replicas[i]);
            break;
        case DBP_OPT_TABLE:
        case DBP_OPT_DECODERS:
        case DBP_OPT_LUA:
            break;                          /* as option_equal: not compared */
        }
    }
    return h;
}

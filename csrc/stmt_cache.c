/* stmt_cache.c: see stmt_cache.h.  A chained hash table over the SQL texts
 * plus a doubly linked recency list, so a use is one hash of the text, one
 * bucket walk and a relink, and eviction takes the list's tail. */
#include "stmt_cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dbp_stmt_cache {
    unsigned threshold, max, count, next_id;
    unsigned nbuckets;        /* a power of two, at least 2 x max */
    dbp_stmt **buckets;
    dbp_stmt *newest, *oldest;
};

/* FNV-1a, 64 bit: short SQL texts, no adversary (the app writes its SQL). */
static uint64_t hash_text(const char *s)
{
    uint64_t h = 14695981039346656037ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

dbp_stmt_cache *dbp_stmt_cache_new(unsigned threshold, unsigned max)
{
    dbp_stmt_cache *c = calloc(1, sizeof *c);
    unsigned n = 16;

    if (c == NULL)
        return NULL;
    while (n < 2 * max)
        n *= 2;
    if ((c->buckets = calloc(n, sizeof *c->buckets)) == NULL) {
        free(c);
        return NULL;
    }
    c->threshold = threshold;
    c->max = max;
    c->nbuckets = n;
    return c;
}

void dbp_stmt_cache_free(dbp_stmt_cache *c)
{
    if (c == NULL)
        return;
    for (dbp_stmt *s = c->newest, *next; s != NULL; s = next) {
        next = s->older;
        free(s->sql);
        free(s);
    }
    free(c->buckets);
    free(c);
}

static void name_it(dbp_stmt_cache *c, dbp_stmt *s)
{
    snprintf(s->name, sizeof s->name, "dbpool_%u", ++c->next_id);
}

static void unlink_recency(dbp_stmt_cache *c, dbp_stmt *s)
{
    if (s->newer) s->newer->older = s->older; else c->newest = s->older;
    if (s->older) s->older->newer = s->newer; else c->oldest = s->newer;
}

static void push_newest(dbp_stmt_cache *c, dbp_stmt *s)
{
    s->newer = NULL;
    s->older = c->newest;
    if (c->newest) c->newest->newer = s; else c->oldest = s;
    c->newest = s;
}

static void evict_oldest(dbp_stmt_cache *c, char evicted[24])
{
    dbp_stmt *s = c->oldest, **link = &c->buckets[s->hash & (c->nbuckets - 1)];

    while (*link != s)
        link = &(*link)->chain;
    *link = s->chain;
    unlink_recency(c, s);
    if (s->prepared)
        memcpy(evicted, s->name, sizeof s->name);
    free(s->sql);
    free(s);
    c->count--;
}

dbp_stmt *dbp_stmt_use(dbp_stmt_cache *c, const char *sql, char evicted[24])
{
    uint64_t h = hash_text(sql);
    dbp_stmt **bucket = &c->buckets[h & (c->nbuckets - 1)], *s;

    evicted[0] = '\0';
    for (s = *bucket; s != NULL; s = s->chain) {
        if (s->hash == h && strcmp(s->sql, sql) == 0) {
            if (c->newest != s) {
                unlink_recency(c, s);
                push_newest(c, s);
            }
            if (s->uses < c->threshold)   /* enough to be due; never wraps */
                s->uses++;
            return s;
        }
    }
    if ((s = calloc(1, sizeof *s)) == NULL || (s->sql = strdup(sql)) == NULL) {
        free(s);
        return NULL;
    }
    if (c->count == c->max)
        evict_oldest(c, evicted);
    s->hash = h;
    s->uses = 1;
    name_it(c, s);
    s->chain = *bucket;
    *bucket = s;
    push_newest(c, s);
    c->count++;
    return s;
}

bool dbp_stmt_due(const dbp_stmt_cache *c, const dbp_stmt *s)
{
    return !s->prepared && s->uses >= c->threshold;
}

void dbp_stmt_forget(dbp_stmt_cache *c, dbp_stmt *s)
{
    s->prepared = false;
    s->uses = 0;
    name_it(c, s);
}

void dbp_stmt_forget_all(dbp_stmt_cache *c)
{
    for (dbp_stmt *s = c->newest; s != NULL; s = s->older)
        if (s->prepared)
            dbp_stmt_forget(c, s);
}

dbp_stmt *dbp_stmt_by_name(dbp_stmt_cache *c, const char *name)
{
    for (dbp_stmt *s = c->newest; s != NULL; s = s->older)
        if (strcmp(s->name, name) == 0)
            return s;
    return NULL;
}

unsigned dbp_stmt_count(const dbp_stmt_cache *c, unsigned *prepared)
{
    unsigned n = 0;

    for (const dbp_stmt *s = c->newest; s != NULL; s = s->older)
        n += s->prepared;
    if (prepared != NULL)
        *prepared = n;
    return c->count;
}

/* registry.c: one global list guarded by one mutex; lookups are rare
 * (engine creation), so a list is enough. */
#include "registry.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "fork.h"
#include "shstats.h"

typedef struct entry {
    dbp_pool *pool;
    struct entry *next;
} entry;

/* registry_mu guards registry_head, removed_head and every entry. */
static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static entry *registry_head;
static entry *removed_head;    /* dbp_registry_remove'd: kept, never freed */

/* Held across fork() like every pool's mutex, and taken first (it is held
 * while new pools register).  At load time, before any thread can use it. */
__attribute__((constructor)) static void guard_registry_across_fork(void)
{
    dbp_fork_register_outer(&registry_mu);
}

static entry *find_locked(const char *name)
{
    for (entry *e = registry_head; e != NULL; e = e->next)
        if (strcmp(dbp_pool_config(e->pool)->name, name) == 0)
            return e;
    return NULL;
}

dbp_pool *dbp_registry_find(const char *name)
{
    entry *e;

    pthread_mutex_lock(&registry_mu);
    e = find_locked(name);
    pthread_mutex_unlock(&registry_mu);
    return e ? e->pool : NULL;
}

dbp_status dbp_registry_open(const dbp_config *cfg, dbp_pool **out, int *created,
                             dbp_error *err)
{
    entry *e;
    dbp_status st = DBP_OK;
    char keys[256];

    *created = 0;
    pthread_mutex_lock(&registry_mu);
    e = find_locked(cfg->name);
    if (e != NULL) {
        if (dbp_config_diff(dbp_pool_config(e->pool), cfg, keys, sizeof keys) > 0)
            st = dbp_error_set(err, DBP_INVALID,
                               "engine '%s' already exists with different options: %s",
                               cfg->name, keys);
        else
            *out = e->pool;
        pthread_mutex_unlock(&registry_mu);
        return st;
    }
    e = calloc(1, sizeof *e);
    if (e == NULL) {
        pthread_mutex_unlock(&registry_mu);
        return dbp_error_set(err, DBP_NOMEM, "out of memory registering engine");
    }
    /* No I/O here: a new pool opens no connection. */
    st = dbp_pool_new(cfg, &e->pool, err);
    if (st != DBP_OK) {
        free(e);
    } else {
        e->next = registry_head;
        registry_head = e;
        *out = e->pool;
        *created = 1;
    }
    pthread_mutex_unlock(&registry_mu);
    return st;
}

bool dbp_registry_remove(const char *name)
{
    entry **link, *e = NULL;

    pthread_mutex_lock(&registry_mu);
    for (link = &registry_head; *link != NULL; link = &(*link)->next) {
        if (strcmp(dbp_pool_config((*link)->pool)->name, name) == 0) {
            e = *link;
            *link = e->next;
            e->next = removed_head;
            removed_head = e;
            break;
        }
    }
    pthread_mutex_unlock(&registry_mu);
    if (e != NULL) {
        dbp_pool_retire(e->pool);     /* network I/O: outside the lock */
        dbp_shstats_leave(e->pool);   /* its numbers stay counted, under no pool */
    }
    return e != NULL;
}

int dbp_registry_list(dbp_pool **out, int max)
{
    int n = 0;

    pthread_mutex_lock(&registry_mu);
    for (entry *e = registry_head; e != NULL; e = e->next)
        n++;
    /* The list is newest first; hand it out oldest first. */
    int i = n;
    for (entry *e = registry_head; e != NULL; e = e->next)
        if (--i < max)
            out[i] = e->pool;
    pthread_mutex_unlock(&registry_mu);
    return n;
}

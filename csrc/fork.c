/* fork.c: fork generation and the locks held across fork() (see fork.h). */
#include "fork.h"

#include <stdlib.h>

_Atomic unsigned dbp_fork_gen;

typedef struct held {
    dbp_lock *mu;
    struct held *next;
} held;

/* Lock order, here and everywhere: outer (the registry's), list_mu, then
 * the registered mutexes.  dbp_registry_open holds outer while a new pool
 * registers (list_mu); nothing takes outer or list_mu with a pool's held. */
static pthread_mutex_t *_Atomic outer;
static pthread_mutex_t list_mu = PTHREAD_MUTEX_INITIALIZER;
static held *list;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void prepare(void)
{
    pthread_mutex_t *o = outer;

    if (o != NULL)
        pthread_mutex_lock(o);
    pthread_mutex_lock(&list_mu);
    for (held *h = list; h != NULL; h = h->next)
        dbp_lock_acquire(h->mu);
}

static void unlock_all(void)
{
    pthread_mutex_t *o = outer;

    for (held *h = list; h != NULL; h = h->next)
        dbp_lock_release(h->mu);
    pthread_mutex_unlock(&list_mu);
    if (o != NULL)
        pthread_mutex_unlock(o);
}

static void in_child(void)
{
    atomic_fetch_add_explicit(&dbp_fork_gen, 1, memory_order_relaxed);
    unlock_all();
}

static void install(void)
{
    pthread_atfork(prepare, unlock_all, in_child);
}

void dbp_fork_register_outer(pthread_mutex_t *mu)
{
    pthread_once(&once, install);
    outer = mu;
}

void dbp_fork_register(dbp_lock *mu)
{
    held *h = malloc(sizeof *h);

    pthread_once(&once, install);
    pthread_mutex_lock(&list_mu);
    if (h != NULL) {              /* out of memory: only the fork guard is lost */
        h->mu = mu;
        h->next = list;
        list = h;
    }
    pthread_mutex_unlock(&list_mu);
}

void dbp_fork_unregister(dbp_lock *mu)
{
    pthread_mutex_lock(&list_mu);
    for (held **pp = &list; *pp != NULL; pp = &(*pp)->next) {
        if ((*pp)->mu == mu) {
            held *h = *pp;
            *pp = h->next;
            free(h);
            break;
        }
    }
    pthread_mutex_unlock(&list_mu);
}

/* refill.c: the refill thread (refill.h).
 *
 * Lock rules: mu guards the queue, busy, running and gen; it is a leaf
 * (nothing else is taken while it is held), and the thread refills with it
 * dropped.  It is held across fork() so that no child inherits it locked. */
#include "refill.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "fork.h"

/* Pause before each connect: a random time below this. */
#define REFILL_JITTER_NS (100 * 1000 * 1000LL)

typedef struct queued {
    dbp_pool *pool;
    struct queued *next;
} queued;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;   /* a request, or busy changed */
static queued *head, *tail;        /* pools to refill, oldest request first */
static dbp_pool *busy;             /* the pool being refilled, or NULL */
static bool running;               /* this process has the thread */
static _Atomic bool hosted;        /* an nginx worker's timers refill instead */
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* ---- fork: the child has no thread and an empty queue ----------------- */

static void prepare(void) { pthread_mutex_lock(&mu); }
static void parent(void) { pthread_mutex_unlock(&mu); }

static void child(void)
{
    while (head != NULL) {
        queued *q = head;
        head = q->next;
        free(q);
    }
    tail = NULL;
    busy = NULL;
    running = false;
    pthread_cond_init(&cond, NULL);   /* the parent's thread may have waited on it */
    pthread_mutex_unlock(&mu);
}

static void install(void)
{
    pthread_atfork(prepare, parent, child);
}

/* ---- the thread ---------------------------------------------------------- */

static bool queued_locked(const dbp_pool *p)
{
    for (queued *q = head; q != NULL; q = q->next)
        if (q->pool == p)
            return true;
    return false;
}

static void push_locked(dbp_pool *p)
{
    queued *q = malloc(sizeof *q);

    if (q == NULL)                 /* out of memory: the next request asks again */
        return;
    q->pool = p;
    q->next = NULL;
    if (tail) tail->next = q; else head = q;
    tail = q;
}

static void pause_jitter(unsigned *rng)
{
    int64_t ns = (int64_t)((double)rand_r(rng) / ((double)RAND_MAX + 1.0) *
                           (double)REFILL_JITTER_NS);
    struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)ns};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Takes the oldest request, marks its pool busy; waits while there is none. */
static dbp_pool *next_locked(void)
{
    queued *q;
    dbp_pool *p;

    while (head == NULL)
        pthread_cond_wait(&cond, &mu);
    q = head;
    head = q->next;
    if (head == NULL)
        tail = NULL;
    p = q->pool;
    free(q);
    busy = p;
    return p;
}

/* One connect for one pool at a time; a pool that wants more goes to the
 * back of the queue, so that pools take turns.  A failure ends that pool's
 * round (already counted by the pool: connect_failures, the breaker). */
static void *refill_main(void *arg)
{
    unsigned rng = (unsigned)dbp_now_ns() ^ (unsigned)(uintptr_t)&rng;
    (void)arg;

    for (;;) {
        dbp_pool *p;
        dbp_error err;
        bool more = false;

        pthread_mutex_lock(&mu);
        while (head == NULL)
            pthread_cond_wait(&cond, &mu);
        pthread_mutex_unlock(&mu);
        pause_jitter(&rng);               /* a fleet does not reconnect in step */
        pthread_mutex_lock(&mu);
        p = next_locked();
        pthread_mutex_unlock(&mu);
        if (dbp_pool_refill_step(p, &more, &err) != DBP_OK)
            more = false;
        pthread_mutex_lock(&mu);
        busy = NULL;
        if (more && !queued_locked(p))
            push_locked(p);
        pthread_cond_broadcast(&cond);    /* dbp_refill_forget may wait for busy */
        pthread_mutex_unlock(&mu);
    }
    return NULL;
}

/* Starts the thread; false when the system has none to spare. */
static bool start_locked(void)
{
    pthread_attr_t attr;
    pthread_t thread;

    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    running = pthread_create(&thread, &attr, refill_main, NULL) == 0;
    pthread_attr_destroy(&attr);
    return running;
}

/* ---- requests ------------------------------------------------------------ */

void dbp_refill_request(dbp_pool *p)
{
    if (atomic_load_explicit(&hosted, memory_order_relaxed))
        return;
    pthread_once(&once, install);
    pthread_mutex_lock(&mu);
    if ((running || start_locked()) && !queued_locked(p)) {
        push_locked(p);
        pthread_cond_broadcast(&cond);
    }
    pthread_mutex_unlock(&mu);
}

void dbp_refill_forget(dbp_pool *p)
{
    pthread_mutex_lock(&mu);
    for (queued **qp = &head; *qp != NULL;) {
        queued *q = *qp;
        if (q->pool != p) {
            qp = &q->next;
            continue;
        }
        *qp = q->next;
        free(q);
    }
    tail = head;                           /* the last entry may have gone */
    while (tail != NULL && tail->next != NULL)
        tail = tail->next;
    while (busy == p)
        pthread_cond_wait(&cond, &mu);
    pthread_mutex_unlock(&mu);
}

void dbp_refill_by_host(void)
{
    atomic_store_explicit(&hosted, true, memory_order_relaxed);
}

bool dbp_refill_hosted(void)
{
    return atomic_load_explicit(&hosted, memory_order_relaxed);
}

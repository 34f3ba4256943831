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

#include "autosize.h"
#include "fork.h"

/* Pause before each connect: a random time below this. */
#define REFILL_JITTER_NS (100 * 1000 * 1000LL)

typedef struct queued {
    dbp_pool *pool;
    struct queued *next;
} queued;

/* A pool of pool_size = "auto", sized every every_ns. */
typedef struct watched {
    dbp_pool *pool;
    int64_t every_ns, next_ns;     /* dbp_now_ns() time of its next step */
    struct watched *next;
} watched;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond;        /* a request, or busy changed; CLOCK_MONOTONIC (install) */
static queued *head, *tail;        /* pools to refill, oldest request first */
static watched *watching;          /* pools sized by the thread */
static dbp_pool *busy;             /* the pool being refilled, or NULL */
static bool running;               /* this process has the thread */
static _Atomic bool hosted;        /* an nginx worker's timers refill instead */
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* ---- fork: the child has no thread and an empty queue ----------------- */

static void prepare(void) { pthread_mutex_lock(&mu); }
static void parent(void) { pthread_mutex_unlock(&mu); }

static void init_cond(void)
{
    pthread_condattr_t attr;

    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);   /* dbp_now_ns()'s clock */
    pthread_cond_init(&cond, &attr);
    pthread_condattr_destroy(&attr);
}

static bool start_locked(void);

/* The child keeps its watched pools (it has their copies) and gets a
 * thread of its own at once when it has any, their first steps due now
 * (its pools start empty: the step finds out and warms auto.min); a child
 * with none starts one at its first refill request. */
static void child(void)
{
    int64_t now = dbp_now_ns();

    while (head != NULL) {
        queued *q = head;
        head = q->next;
        free(q);
    }
    tail = NULL;
    busy = NULL;
    running = false;
    init_cond();                      /* the parent's thread may have waited on it */
    for (watched *w = watching; w != NULL; w = w->next)
        w->next_ns = now;
    if (watching != NULL)
        (void)start_locked();         /* waits for mu, dropped below */
    pthread_mutex_unlock(&mu);
}

static void install(void)
{
    init_cond();
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

/* Takes the oldest request.  Caller checked that there is one. */
static dbp_pool *take_request_locked(void)
{
    queued *q = head;
    dbp_pool *p = q->pool;

    head = q->next;
    if (head == NULL)
        tail = NULL;
    free(q);
    return p;
}

/* Sleeps on cond until woken or the monotonic time until (INT64_MAX: no
 * time limit). */
static void wait_until_locked(int64_t until)
{
    struct timespec ts;

    if (until == INT64_MAX) {
        pthread_cond_wait(&cond, &mu);
        return;
    }
    ts.tv_sec = (time_t)(until / DBP_NS_PER_SEC);
    ts.tv_nsec = (long)(until % DBP_NS_PER_SEC);
    pthread_cond_timedwait(&cond, &mu, &ts);
}

/* The next job, its pool marked busy: a sizing step that is due (*sizing),
 * else the oldest refill request; waits while there is neither. */
static dbp_pool *next_job_locked(bool *sizing)
{
    for (;;) {
        int64_t now = dbp_now_ns(), wake = INT64_MAX;
        for (watched *w = watching; w != NULL; w = w->next) {
            if (w->next_ns <= now) {
                w->next_ns = now + w->every_ns;
                *sizing = true;
                return busy = w->pool;
            }
            if (w->next_ns < wake)
                wake = w->next_ns;
        }
        if (head != NULL) {
            *sizing = false;
            return busy = take_request_locked();
        }
        wait_until_locked(wake);
    }
}

/* One refill connect for p; true when p wants another. */
static bool refill_once(dbp_pool *p, unsigned *rng)
{
    dbp_error err;
    bool more = false;

    pause_jitter(rng);                    /* a fleet does not reconnect in step */
    if (dbp_pool_refill_step(p, &more, &err) != DBP_OK)
        more = false;
    return more;
}

/* One connect for one pool at a time; a pool that wants more goes to the
 * back of the queue, so that pools take turns.  A failure ends that pool's
 * round (already counted by the pool: connect_failures, the breaker).  A
 * sizing step that wants the pool grown queues it for refills the same way. */
static void *refill_main(void *arg)
{
    unsigned rng = (unsigned)dbp_now_ns() ^ (unsigned)(uintptr_t)&rng;
    (void)arg;

    for (;;) {
        dbp_pool *p;
        bool sizing = false, more;

        pthread_mutex_lock(&mu);
        p = next_job_locked(&sizing);
        pthread_mutex_unlock(&mu);
        more = sizing ? dbp_pool_autosize_step(p, NULL) : refill_once(p, &rng);
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

void dbp_refill_watch(dbp_pool *p, double interval)
{
    watched *w;

    if (atomic_load_explicit(&hosted, memory_order_relaxed))
        return;
    pthread_once(&once, install);
    if ((w = malloc(sizeof *w)) == NULL)   /* out of memory: the pool stays at auto.min */
        return;
    w->pool = p;
    w->every_ns = dbp_sec_to_ns(interval);
    w->next_ns = dbp_now_ns();             /* the first step at once: grow to auto.min */
    pthread_mutex_lock(&mu);
    w->next = watching;
    watching = w;
    if (running || start_locked())
        pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&mu);
}

static void unwatch_locked(dbp_pool *p)
{
    for (watched **wp = &watching; *wp != NULL;) {
        watched *w = *wp;
        if (w->pool != p) {
            wp = &w->next;
            continue;
        }
        *wp = w->next;
        free(w);
    }
}

void dbp_refill_forget(dbp_pool *p)
{
    pthread_mutex_lock(&mu);
    unwatch_locked(p);
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

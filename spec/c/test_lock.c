/* test_lock.c: the pool's futex lock and wake (lock.h), on their own.
 * Mutual exclusion under real contention (more threads than cores, so
 * holders are preempted and waiters sleep), a wake that is not lost, and a
 * sleep that ends at its deadline.  Also run under TSan and ASan. */
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "common.h"
#include "lock.h"
#include "testlib.h"

#define THREADS 8
#define ROUNDS 100000

static dbp_lock counter_lock = DBP_LOCK_INIT;
static long counter;                 /* plain: only the lock protects it */
static _Atomic int inside;           /* threads inside the critical section */
static _Atomic int overlaps;

static void *bump(void *arg)
{
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        dbp_lock_acquire(&counter_lock);
        if (atomic_fetch_add(&inside, 1) != 0)
            atomic_fetch_add(&overlaps, 1);
        counter++;
        if (i % 1000 == 0)
            sched_yield();           /* preempted while holding: others must sleep */
        atomic_fetch_sub(&inside, 1);
        dbp_lock_release(&counter_lock);
    }
    return NULL;
}

static void test_mutual_exclusion(void)
{
    pthread_t t[THREADS];

    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, bump, NULL);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    is_int((int)counter, THREADS * ROUNDS, "%d threads x %d increments under the lock, none lost",
           THREADS, ROUNDS);
    is_int(atomic_load(&overlaps), 0, "never two threads inside at once");
    is_int(atomic_load(&counter_lock.word), 0, "the lock is free afterwards");
}

typedef struct sleeper {
    dbp_lock lock;
    dbp_wake wake;
    bool served;                     /* under lock */
    double woke_after;
} sleeper;

static void *serve_later(void *arg)
{
    sleeper *s = arg;

    tl_sleep(0.05);
    dbp_lock_acquire(&s->lock);
    s->served = true;
    dbp_wake_set(&s->wake);
    dbp_lock_release(&s->lock);
    return NULL;
}

static void test_wake_ends_the_sleep(void)
{
    sleeper s = {DBP_LOCK_INIT, {0}, false, 0};
    pthread_t t;
    double t0 = tl_now();

    dbp_wake_init(&s.wake);
    pthread_create(&t, NULL, serve_later, &s);
    dbp_lock_acquire(&s.lock);
    while (!s.served)
        dbp_wake_wait(&s.wake, &s.lock, dbp_now_ns() + 5 * DBP_NS_PER_SEC);
    s.woke_after = tl_now() - t0;
    dbp_lock_release(&s.lock);
    pthread_join(t, NULL);
    ok(s.served, "the sleeper sees what its waker set under the lock");
    between(s.woke_after, 0.04, 2.0, "woken by the set (%.3f s), not by its 5 s deadline",
            s.woke_after);
}

static void test_set_before_sleep_is_kept(void)
{
    dbp_lock l = DBP_LOCK_INIT;
    dbp_wake w;
    double t0;

    dbp_wake_init(&w);
    dbp_wake_set(&w);                /* as if served between queueing and sleeping */
    t0 = tl_now();
    dbp_lock_acquire(&l);
    dbp_wake_wait(&w, &l, dbp_now_ns() + 2 * DBP_NS_PER_SEC);
    dbp_lock_release(&l);
    between(tl_now() - t0, 0, 0.5, "a wake set before the sleep returns at once");
}

static void test_deadline(void)
{
    dbp_lock l = DBP_LOCK_INIT;
    dbp_wake w;
    int64_t deadline = dbp_now_ns() + 100 * 1000 * 1000;
    double t0 = tl_now();

    dbp_wake_init(&w);
    dbp_lock_acquire(&l);
    while (dbp_now_ns() < deadline)
        dbp_wake_wait(&w, &l, deadline);
    ok(atomic_load(&l.word) != 0, "the lock is held again after the sleep");
    dbp_lock_release(&l);
    between(tl_now() - t0, 0.095, 1.0, "an unserved sleep ends at its deadline (%.3f s)",
            tl_now() - t0);
}

int main(void)
{
    test_mutual_exclusion();
    test_wake_ends_the_sleep();
    test_set_before_sleep_is_kept();
    test_deadline();
    return done_testing();
}

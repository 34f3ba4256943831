/* lock.h: the pool's lock, and the one-shot wake a queued checkout sleeps on.
 *
 * A futex word instead of pthread_mutex_t: taking and dropping a free lock
 * is one atomic instruction each, inlined, where pthread_mutex_lock and
 * unlock are two calls through the PLT, a large share of a C checkout +
 * checkin (docs/decisions.md, bench/results/).  The algorithm is Drepper's
 * "Futexes Are Tricky" mutex 2 (0 free, 1 held, 2 held with sleepers), as
 * in musl; it is not recursive and has no owner, which the pool never
 * needed.  ThreadSanitizer sees the acquire and release of the word, so the
 * C tests' TSan run checks the pool's locking as before.
 *
 * Linux only: the pool sleeps with FUTEX_WAIT_BITSET on CLOCK_MONOTONIC,
 * the clock of every dbpool deadline. */
#ifndef DBP_LOCK_H
#define DBP_LOCK_H

#include <stdatomic.h>
#include <stdint.h>

typedef struct dbp_lock {
    _Atomic int word;       /* 0 free, 1 held, 2 held and someone may sleep */
} dbp_lock;

#define DBP_LOCK_INIT {0}

void dbp_lock_wait(dbp_lock *l);
void dbp_lock_wake(dbp_lock *l);

static inline void dbp_lock_init(dbp_lock *l)
{
    atomic_init(&l->word, 0);
}

static inline void dbp_lock_acquire(dbp_lock *l)
{
    int free_word = 0;
    if (!atomic_compare_exchange_strong_explicit(&l->word, &free_word, 1, memory_order_acquire,
                                                 memory_order_relaxed))
        dbp_lock_wait(l);
}

static inline void dbp_lock_release(dbp_lock *l)
{
    if (atomic_exchange_explicit(&l->word, 0, memory_order_release) == 2)
        dbp_lock_wake(l);
}

/* A one-shot wake: a queued checkout sleeps on it with the pool's lock
 * dropped; whoever serves the waiter sets it, holding the lock. */
typedef struct dbp_wake {
    _Atomic int word;       /* 0 asleep, 1 woken */
} dbp_wake;

static inline void dbp_wake_init(dbp_wake *w)
{
    atomic_init(&w->word, 0);
}

/* Drops l, sleeps until w is set or deadline_ns (dbp_now_ns's clock)
 * passes, takes l again.  May return early (a signal): the caller looks at
 * what it waits for and at the clock, holding l. */
void dbp_wake_wait(dbp_wake *w, dbp_lock *l, int64_t deadline_ns);

/* Sets w and wakes its sleeper.  The caller holds the lock the sleeper
 * gave up, so the sleeper (and w, on its stack) is still there. */
void dbp_wake_set(dbp_wake *w);

#endif

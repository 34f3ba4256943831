/* lock.c: the slow paths of lock.h, where a thread sleeps in the kernel. */
#include "lock.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

/* How often a thread that found the lock held looks again before it
 * sleeps: the pool's critical sections are a few hundred instructions, so
 * a holder on another core is usually done within this; a futex sleep and
 * wake cost two system calls and a context switch each. */
#define SPINS 100

static long futex(_Atomic int *word, int op, int val, const struct timespec *ts)
{
    return syscall(SYS_futex, (int *)word, op | FUTEX_PRIVATE_FLAG, val, ts, NULL,
                   FUTEX_BITSET_MATCH_ANY);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

void dbp_lock_wait(dbp_lock *l)
{
    int c;

    for (int i = 0; i < SPINS; i++) {
        int free_word = 0;
        cpu_relax();
        if (atomic_load_explicit(&l->word, memory_order_relaxed) == 0 &&
            atomic_compare_exchange_weak_explicit(&l->word, &free_word, 1, memory_order_acquire,
                                                  memory_order_relaxed))
            return;
    }
    /* Mark it contended (2) whenever we take it from here on: we cannot
     * know whether other sleepers remain, so the release must wake. */
    while ((c = atomic_exchange_explicit(&l->word, 2, memory_order_acquire)) != 0)
        futex(&l->word, FUTEX_WAIT, 2, NULL);
}

void dbp_lock_wake(dbp_lock *l)
{
    futex(&l->word, FUTEX_WAKE, 1, NULL);
}

void dbp_wake_wait(dbp_wake *w, dbp_lock *l, int64_t deadline_ns)
{
    struct timespec ts = {(time_t)(deadline_ns / DBP_NS_PER_SEC),
                          (long)(deadline_ns % DBP_NS_PER_SEC)};

    dbp_lock_release(l);
    /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline.  It
     * returns at once when w is already set: a wake between the release
     * above and this call is not lost. */
    if (atomic_load_explicit(&w->word, memory_order_acquire) == 0)
        futex(&w->word, FUTEX_WAIT_BITSET, 0, &ts);
    dbp_lock_acquire(l);
}

void dbp_wake_set(dbp_wake *w)
{
    atomic_store_explicit(&w->word, 1, memory_order_release);
    futex(&w->word, FUTEX_WAKE, INT_MAX, NULL);
}

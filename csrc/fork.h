/* fork.h: noticing that this process is a fork()ed child.
 *
 * A child inherits every pool with its connections, whose sockets the parent
 * keeps using.  A pthread_atfork child handler bumps a generation number; a
 * pool compares it with the generation it last saw (one relaxed load) and,
 * when it differs, forgets what it inherited.  Registered locks are held
 * across fork() so that the child never inherits one locked by a thread that
 * does not exist there. */
#ifndef DBP_FORK_H
#define DBP_FORK_H

#include <pthread.h>
#include <stdatomic.h>

#include "lock.h"

extern _Atomic unsigned dbp_fork_gen;

static inline unsigned dbp_fork_generation(void)
{
    return atomic_load_explicit(&dbp_fork_gen, memory_order_relaxed);
}

/* Takes a pool's lock in the fork prepare handler and drops it in both
 * processes afterwards.  Unregister before freeing it. */
void dbp_fork_register(dbp_lock *mu);
void dbp_fork_unregister(dbp_lock *mu);

/* The one mutex taken before every registered one (the registry's, held
 * while it creates pools, which register themselves).  Set once, before
 * that mutex is first used to create a pool. */
void dbp_fork_register_outer(pthread_mutex_t *mu);

#endif

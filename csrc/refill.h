/* refill.h: min_idle refill off the caller's path, and pool_size = "auto"'s
 * sizing steps.
 *
 * A return that lost a connection asks for a refill (dbp_refill_request);
 * one background thread per process opens the missing connections, one
 * connect at a time, each after a random pause, so that neither the caller
 * of close() nor every pool of a fleet at the same moment pays for them.
 * The thread starts at the first request, or when a pool is watched
 * (pool_size = "auto"); a fork()ed child, which inherits no thread, starts
 * its own at once when it has watched pools (their steps due at once),
 * else at its first request.  Inside nginx no thread
 * is started (dbp_refill_by_host): a timer of the host's drives the refill
 * with the event loop's connect (dbp_pool_refill_start). */
#ifndef DBP_REFILL_H
#define DBP_REFILL_H

#include <stdbool.h>

#include "pool.h"

/* Queues p for the refill thread (starting it when this process has none)
 * unless the host refills by itself.  Never blocks on I/O; a thread that
 * cannot be started leaves the refill to the next request. */
void dbp_refill_request(dbp_pool *p);

/* From now on the refill thread runs p's sizing steps (pool_size = "auto",
 * autosize.h) every interval seconds, the first at once, and refills what
 * a step wants grown.  Does nothing when the host refills by itself (its
 * timer runs the steps).  Out of memory leaves p at its size. */
void dbp_refill_watch(dbp_pool *p, double interval);

/* Takes p off the queue and the watch list, and waits until the thread is not refilling it
 * (at most one connect attempt, bounded by connect_timeout): call before
 * freeing p. */
void dbp_refill_forget(dbp_pool *p);

/* From now on this process refills through its host (an nginx worker's
 * timers): dbp_refill_request does nothing.  Inherited by fork()ed
 * children. */
void dbp_refill_by_host(void);

/* True when dbp_refill_by_host was called. */
bool dbp_refill_hosted(void);

#endif

/* autosize.h: pool_size = "auto", a pool whose kept size follows its own
 * traffic (DESIGN.md's option table; docs/decisions.md, "pool_size =
 * auto").
 *
 * Every auto.interval seconds a sizing step measures the window since the
 * previous one: the checkout rate and the mean hold time give the
 * connections busy on average (Little's law, as dbpool.advise), and the
 * connections in use that each checkout of the window saw give the p99
 * burst.  The size wanted is the busy mean plus the headroom up to that
 * burst, within auto.min..auto.max and under dbpool.budget's allowance when
 * one was given (dbp_pool_autosize_limit).  The pool's size (what size(),
 * status() and overflow() report) becomes that at once; growing is then
 * done ahead of demand by the min_idle refill path (refill.c's thread, an
 * nginx worker's timer), shrinking by closing idle connections above the
 * size that no checkout of the last DBP_AUTO_SPARE_WINDOWS windows needed
 * (each window's idle low-water mark),
 * oldest first, at most a quarter of the pool per step.  Capacity
 * stays auto.max + max_overflow throughout.
 *
 * Who runs the step: the refill thread (refill.c) for every auto pool of a
 * process; inside nginx, where there is no thread, each worker's timer
 * (lua/dbpool/ngx.lua) through dbp_pool_autosize_step_instance: one worker
 * at a time holds the instance's lease (shstats.h) and decides the
 * instance's target from the instance-wide numbers, and every worker sizes
 * its own copy of the pool to its share of that target. */
#ifndef DBP_AUTOSIZE_H
#define DBP_AUTOSIZE_H

#include <stdbool.h>
#include <stdint.h>

#include "pool.h"

/* In-use counts told apart for the p99 burst; more counts as this minus 1. */
#define DBP_AUTO_BUCKETS 1024
/* Windows in a row (the step's and those before it) that must all have
 * left a connection spare before a step closes it: a steady load whose
 * peaks move from window to window keeps what its recent peaks used. */
#define DBP_AUTO_SPARE_WINDOWS 3
/* Resizes kept for dbpool.log until a Lua state reports them (echo_pool). */
#define DBP_AUTO_LOG 16

/* One sizing step: what it saw and what it did. */
typedef struct dbp_resize {
    int from, to;          /* the pool's size before and after */
    double rate;           /* checkouts per second in the window (the instance's under nginx) */
    double hold;           /* mean hold time of the window's returns, seconds */
    double busy;           /* connections busy on average: rate x hold (under nginx the
                              instance's, from its decision) */
    int p99;               /* connections in use at the 99th percentile of the window's
                              checkouts (under nginx the workers' bursts summed) */
    int processes;         /* live workers the instance's decision counted; 1 outside
                              nginx */
    int limit;             /* dbpool.budget's allowance in force; 0 = none */
    int closed;            /* idle connections above the size closed by this step */
    double window;         /* seconds measured */
    uint64_t decision;     /* under nginx: the instance's decision number; 0 elsewhere */
    int target;            /* under nginx: the instance's target size; 0 elsewhere */
    int shares[64];        /* under nginx, the decision's: each worker id's share of
                              target (shstats.h's DBP_SH_WORKERS ids; 0: not live) */
    bool share_step;       /* under nginx: this worker sizing itself to its share of
                              decision (kept for the log only when it closed some) */
} dbp_resize;

/* The size wanted for busy connections on average and a p99 burst of p99
 * in use: ceil(max(busy, p99)), within min..max, then at most limit when
 * limit > 0 (the server's budget wins over auto.min).  Pure; cannot fail. */
int dbp_autosize_want(double busy, int p99, int min, int max, int limit);

/* The least size of an auto pool of cfg: auto.min, or min_idle when that
 * is more (the connections min_idle opens ahead of demand are kept, not
 * trimmed by the next step).  Pure; cannot fail. */
int dbp_autosize_floor(const dbp_config *cfg);

/* One sizing step of p (pool_size = "auto"; does nothing and returns false
 * for other pools): measures the window since the previous step, sets the
 * size, closes idle connections above it that no checkout of the last
 * DBP_AUTO_SPARE_WINDOWS windows needed (oldest first, at most a quarter of the pool; each counted in
 * resize_closes), counts a resize when the size changed and, with echo_pool,
 * keeps the record for dbp_pool_take_resizes.  *out (may be NULL) gets the
 * record.  Returns true when the pool holds fewer connections than its
 * size: the caller then has the refill path grow it (dbp_refill_request,
 * or under nginx the timer's dbp_pool_refill_start).  Closes connections:
 * call it off the request path.  Never fails (out of memory for the
 * instance's numbers falls back to this process's). */
bool dbp_pool_autosize_step(dbp_pool *p, dbp_resize *out);

/* One sizing step of p inside an nginx instance, by the worker labelled
 * worker (nginx's worker id): takes this worker's burst (p99 in use of its
 * window, or in use and queued now when more) and publishes its numbers;
 * when this process holds or can take the instance's lease (shstats.h;
 * renewed for three intervals and a second), decides the instance's target
 * from every worker's numbers: busy = the instance's checkout rate x mean
 * hold over the window since the previous decision (whoever took it), the
 * burst = the workers' bursts summed, each at least its floor, within
 * auto.min..auto.max times the live workers and under dbpool.budget's
 * allowance times them, split into one share per live worker; writes it
 * with the shares and its inputs, counts a resize (this process's counter, so once in the
 * instance's sum) and, with echo_pool, keeps the record for
 * dbp_pool_take_resizes, when the target changed.  Then, holder or not,
 * applies this worker's share of the last decision (the decision splits
 * the target across the live worker ids by their bursts, each at least its
 * floor; a worker it did not count takes an even part), within
 * auto.min..auto.max (and this process's allowance); trims as
 * dbp_pool_autosize_step does.  Without an instance table (a pool not made
 * in nginx's master) it is dbp_pool_autosize_step.  *out (may be NULL)
 * gets this worker's record (from/to its own size; the decision's inputs).
 * Returns true when the pool holds fewer connections than its new size.
 * Never fails; closes connections: call it off the request path. */
bool dbp_pool_autosize_step_instance(dbp_pool *p, int worker, dbp_resize *out);

/* This worker stops sizing p (nginx is stopping it): gives up the
 * instance's lease if it holds it, so that another worker decides at its
 * next step.  Does nothing without an instance table.  Never fails. */
void dbp_pool_autosize_leave(dbp_pool *p);

/* This process's part of the instance's decision, for shstats' gauges:
 * its share of the target, its burst, and its shares of the busy
 * connections and checkout rate in thousandths.  All 0 for a pool without
 * "auto" or before its first step under nginx. */
void dbp_pool_autosize_gauges(dbp_pool *p, int64_t *target, int64_t *burst,
                              int64_t *busy_milli, int64_t *rate_milli);

/* Seconds between steps (auto.interval); 0 for a pool without "auto". */
double dbp_pool_autosize_interval(const dbp_pool *p);

/* dbpool.budget's allowance for this pool's size in this process: the
 * size never goes above limit (0: none known).  Applied at the next step;
 * under nginx (an instance table) to every worker's copy, whichever
 * worker sets it. */
void dbp_pool_autosize_limit(dbp_pool *p, int limit);

/* The allowance dbp_pool_autosize_limit set (under nginx: any worker's,
 * once this one's next step read it); 0: none, or a pool without "auto". */
int dbp_pool_autosize_limit_get(dbp_pool *p);

/* The last step's record; false before the first step or without "auto". */
bool dbp_pool_autosize_last(dbp_pool *p, dbp_resize *out);

/* Takes up to max resizes not reported yet, oldest first; *lost gets how
 * many were dropped because nobody reported them in time (the record keeps
 * DBP_AUTO_LOG).  Kept only with echo_pool. */
int dbp_pool_take_resizes(dbp_pool *p, dbp_resize *out, int max, unsigned *lost);

#endif

/* shstats.h: one pool's numbers for every process of an nginx instance.
 *
 * Each nginx worker has its own copy of a pool (inherited from the master
 * at fork), and so its own counters: a scrape reached one worker and saw a
 * part.  A shstats table, mapped MAP_SHARED | MAP_ANONYMOUS in the master
 * before it forks (as cap.c's table), holds one entry per process: each
 * worker publishes its pool's numbers there (dbp_shstats_publish: counters
 * and histograms since the worker began, gauges now), and any of them reads
 * every worker's (dbp_shstats_read), labelled by nginx's worker id.  An
 * engine declared in a worker (after fork) gets its table from the
 * instance arena that the master mapped (arena.h), keyed by the engine's
 * name and options: every worker declaring the same engine shares it.
 *
 * Counters never go backwards for a worker id: when a process is gone (a
 * reload replaced it, or it crashed), the next read folds its last published
 * numbers into that worker id's retired sums and frees its entry; the new
 * process of that id starts from zero on top.  What it did after its last
 * publish is lost (a second at most, with the publishing timer of
 * lua/dbpool/ngx.lua).
 *
 * Lock rules: none between processes.  An entry's numbers are written by
 * its process alone, as relaxed atomics; folding a dead entry is guarded by
 * a try-lock flag and a sequence number that readers retry on, so that no
 * read sees a folded entry twice or not at all. */
#ifndef DBP_SHSTATS_H
#define DBP_SHSTATS_H

#include <stdint.h>

#include "arena.h"
#include "common.h"
#include "metrics.h"
#include "pool.h"

/* Worker ids told apart; a higher id is counted as this one minus one. */
#define DBP_SH_WORKERS 64

typedef enum dbp_sh_gauge {
    DBP_G_IDLE, DBP_G_IN_USE, DBP_G_OVERFLOW, DBP_G_TOTAL, DBP_G_WAITERS,
    DBP_G_PEAK_IN_USE,       /* summed: the peaks of each process together */
    DBP_G_BREAKER_OPEN,      /* processes whose breaker is not closed */
    DBP_G_SIZE,              /* summed: each process's size() (pool_size = "auto" moves it) */
    /* pool_size = "auto" (autosize.h), each process's part of the instance's decision: */
    DBP_G_AUTO_TARGET,       /* its share of the instance's target size */
    DBP_G_AUTO_BURST,        /* its own p99 in use of its last window (or in use now, if more) */
    DBP_G_AUTO_BUSY_MILLI,   /* its share of the decision's busy connections, x 1000 */
    DBP_G_AUTO_RATE_MILLI,   /* its share of the decision's checkouts per second, x 1000 */
    DBP_G_COUNT
} dbp_sh_gauge;

/* What one worker id did (retired processes and live ones together), and
 * has now (live ones only). */
typedef struct dbp_shstats_row {
    int worker;
    int processes;                          /* live processes of that id */
    uint64_t counters[DBP_M_COUNT];
    dbp_hist_snapshot hists[DBP_H_COUNT];
    int64_t gauges[DBP_G_COUNT];
} dbp_shstats_row;

typedef struct dbp_shstats dbp_shstats;

/* p's table, made now if it has none yet: in nginx's master (or any
 * process before it forks) mapped here, the instance's; in a worker of a
 * master that mapped an instance arena, claimed from it by p's name and
 * dbp_config_fingerprint, so that every worker declaring the same engine
 * shares it; else mapped here, this process's alone.  *why (may be NULL)
 * is DBP_ARENA_OK for a table of the instance, else why it is not (no
 * arena, arena full, slot busy).  NULL when no mapping could be made. */
dbp_shstats *dbp_shstats_share(dbp_pool *p, dbp_arena_why *why);

/* p's table; with create, dbp_shstats_share's.  NULL when it has none. */
dbp_shstats *dbp_shstats_of(dbp_pool *p, bool create);

/* p was removed from the registry (registry.c): its last numbers go into
 * the calling process's entry, which the next read folds into its worker
 * id's retired sums, and p forgets its table (dbp_shstats_of gives NULL);
 * the lease is given up if this process held it.  An engine declared again
 * with the same options then claims a fresh entry of the same table: the
 * old pool's numbers are never taken as the new one's base, so no counter
 * goes backwards.  Never fails. */
void dbp_shstats_leave(dbp_pool *p);

/* Writes p's numbers into the calling process's entry, claimed on first
 * use with worker as its label (the numbers p had then, inherited from a
 * parent, are not this process's and are left out).  False when every
 * entry is taken. */
bool dbp_shstats_publish(dbp_shstats *sh, dbp_pool *p, int worker);

/* Fills rows (room for DBP_SH_WORKERS) with every worker id that has
 * numbers, in id order; returns how many. */
int dbp_shstats_read(dbp_shstats *sh, dbp_shstats_row *rows);

/* Adds row's numbers and processes into sum (sum->worker stays). */
void dbp_shstats_add(dbp_shstats_row *sum, const dbp_shstats_row *row);

/* ---- pool_size = "auto": one sizing decision per instance ----------------
 *
 * One process at a time holds the instance's sizing lease and takes the
 * decision (autosize.c); it writes the decision here, with its inputs and
 * the instance's totals the next window starts from, and every worker
 * applies its share of the target at its next step.  The lease is a single
 * atomic word (holder's pid and expiry): a holder that died is replaced at
 * once, one that hangs when its lease expires; nothing between processes
 * is ever locked, so a process killed at any instruction blocks nobody. */

/* The instance's last decision. */
typedef struct dbp_sh_decision {
    uint64_t number;        /* decisions taken so far; 0: none yet */
    int pid;                /* the process that took it (set by dbp_shstats_decide) */
    int from, target;       /* the instance's size before and after (sum over workers) */
    int workers;            /* live worker ids the instance's bounds counted */
    int p99;                /* the workers' bursts (DBP_G_AUTO_BURST) summed */
    int limit;              /* dbpool.budget's allowance for the instance; 0 = none */
    double rate, hold, busy, window;   /* checkouts/s, mean hold s, rate x hold, seconds */
    int64_t mark_ns;        /* dbp_now_ns() of the decision: the next window's start */
    uint64_t mark_checkouts, mark_hold_count, mark_hold_sum_ns;   /* the instance's totals then */
    int shares[DBP_SH_WORKERS];   /* each worker id's share of target (autosize.c's split);
                                     0: the id was not live then */
} dbp_sh_decision;

/* The share decision d gave worker (nginx's worker id; ids above the table
 * count as its last); 0 when that worker was not live at the decision. */
int dbp_sh_decision_share(const dbp_sh_decision *d, int worker);

/* Takes, or renews, the instance's sizing lease for the calling process
 * until now_ns + for_ns (dbp_now_ns() times: CLOCK_MONOTONIC is one clock
 * for every process of the machine).  True when the caller holds it: no
 * other process held it, its holder is gone, or its time had passed.
 * Cannot fail otherwise; never blocks. */
bool dbp_shstats_lease(dbp_shstats *sh, int64_t now_ns, int64_t for_ns);

/* Gives the lease up if the calling process holds it (a worker that stops:
 * nginx -s reload), so that another takes it at its next step instead of
 * after the expiry.  Never fails. */
void dbp_shstats_lease_release(dbp_shstats *sh);

/* Copies the last decision into *out (out->number 0: none yet); false
 * when a writer kept it busy through many retries (unlikely: the caller
 * keeps its size until its next step).  Never blocks. */
bool dbp_shstats_decision(dbp_shstats *sh, dbp_sh_decision *out);

/* dbpool.budget's allowance for each process's size (0: none), set from
 * any worker for all of them; read at each worker's step.  Never fails. */
void dbp_shstats_set_limit(dbp_shstats *sh, int limit);
int dbp_shstats_limit(dbp_shstats *sh);

/* Writes d as the instance's decision (the lease holder's job); false when
 * another process is writing one at this instant (d is then dropped: the
 * next step decides again). */
bool dbp_shstats_decide(dbp_shstats *sh, const dbp_sh_decision *d);

#endif

/* shstats.c: the instance-wide table of a pool's numbers (shstats.h). */
#include "shstats.h"

#include "arena.h"
#include "autosize.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Processes that can publish at once (old and new workers during a reload). */
#define SH_PROCS 128

/* The monotonic numbers, flat: counters, then each histogram's buckets,
 * then each histogram's sum. */
#define V_BUCKET(k, b) (DBP_M_COUNT + (k) * DBP_HIST_BUCKETS + (b))
#define V_SUM(k) (DBP_M_COUNT + DBP_H_COUNT * DBP_HIST_BUCKETS + (k))
#define NVALS (DBP_M_COUNT + DBP_H_COUNT * (DBP_HIST_BUCKETS + 1))

#define PID_FOLDING (-1)

typedef struct sh_entry {
    _Atomic int pid;                        /* 0 free, PID_FOLDING, or its owner */
    _Atomic int left;                       /* 1: its pool was removed, fold it (pid stays) */
    _Atomic int worker;
    _Atomic uint64_t vals[NVALS];           /* since the owner claimed it */
    uint64_t base[NVALS];                   /* the owner's at its claim; its alone */
    _Atomic int64_t gauges[DBP_G_COUNT];
} sh_entry;

/* The decision's fields, flat (doubles by their bits): a seqlock's data. */
enum { D_NUMBER, D_PID, D_FROM, D_TARGET, D_WORKERS, D_P99, D_LIMIT, D_RATE, D_HOLD, D_BUSY,
       D_WINDOW, D_MARK_NS, D_MARK_CHECKOUTS, D_MARK_HOLD_COUNT, D_MARK_HOLD_SUM, D_SHARES,
       D_COUNT = D_SHARES + DBP_SH_WORKERS };

/* The lease word: the holder's pid in the low bits, its expiry (ms of the
 * monotonic clock) above them; 0: nobody.  Linux pids are below 2^22. */
#define LEASE_PID_BITS 22
#define LEASE_PID_MASK ((1ULL << LEASE_PID_BITS) - 1)

struct dbp_shstats {
    _Atomic uint64_t lease;                 /* pool_size = "auto": who decides (see above) */
    _Atomic unsigned dseq;                  /* odd while the decision is written */
    _Atomic uint64_t decision[D_COUNT];
    _Atomic int size_limit;                 /* dbpool.budget's, per process; 0 = none */
    _Atomic unsigned seq;                   /* odd while a dead entry is folded */
    _Atomic int folding;                    /* the fold's try-lock */
    _Atomic uint64_t retired[DBP_SH_WORKERS][NVALS];
    sh_entry procs[SH_PROCS];
};

/* The instance arena holds 32 tables at least (arena.h's reserve). */
_Static_assert(32 * (sizeof(struct dbp_shstats) + 64) <= DBP_ARENA_BYTES * 15 / 16,
               "DBP_ARENA_BYTES holds 32 shstats tables and their caps");

/* ---- which pool has which table (this process's list) ------------------- */

typedef struct pool_table {
    dbp_pool *pool;
    dbp_shstats *sh;
    dbp_arena_why why;                    /* DBP_ARENA_OK: the instance's table */
    struct pool_table *next;
} pool_table;

static pthread_mutex_t tables_mu = PTHREAD_MUTEX_INITIALIZER;
static pool_table *tables;                         /* guarded by tables_mu */

/* A new table for p: from the instance arena when this process is a
 * worker of a master that mapped one, else mapped here (before fork in the
 * master: the instance's; after, this process's alone).  NULL when the
 * mapping fails.  *why: DBP_ARENA_OK for an instance table. */
static dbp_shstats *table_new(dbp_pool *p, dbp_arena_why *why)
{
    dbp_arena *arena = dbp_arena_instance(why);
    void *m;

    if (arena == NULL && dbp_arena_mapped_here())
        *why = DBP_ARENA_OK;              /* the master: mapped before fork */
    if (arena != NULL) {
        const dbp_config *cfg = dbp_pool_config(p);
        m = dbp_arena_claim(arena, DBP_ARENA_STATS, cfg->name, dbp_config_fingerprint(cfg),
                            sizeof(dbp_shstats), NULL, NULL, why);
        if (m != NULL)
            return m;                     /* zero-filled, or the other workers' */
    }
    m = mmap(NULL, sizeof(dbp_shstats), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return m == MAP_FAILED ? NULL : m;    /* zero-filled: every entry free */
}

dbp_shstats *dbp_shstats_share(dbp_pool *p, dbp_arena_why *why)
{
    dbp_arena_why dummy;
    dbp_shstats *sh = NULL;
    pool_table *l;

    if (why == NULL)
        why = &dummy;
    *why = DBP_ARENA_OK;
    pthread_mutex_lock(&tables_mu);
    for (l = tables; l != NULL && l->pool != p; l = l->next)
        ;
    if (l != NULL) {
        sh = l->sh;
        *why = l->why;
    } else if ((l = calloc(1, sizeof *l)) != NULL) {
        /* Under the list's lock: one table per pool, also when two threads
         * of this process share it at once (a claim waits a bounded time). */
        if ((sh = table_new(p, why)) == NULL) {
            free(l);
        } else {
            l->pool = p;
            l->sh = sh;
            l->why = *why;
            l->next = tables;
            tables = l;
        }
    }
    pthread_mutex_unlock(&tables_mu);
    return sh;
}

dbp_shstats *dbp_shstats_of(dbp_pool *p, bool create)
{
    dbp_shstats *sh = NULL;
    pool_table *l;

    if (create)
        return dbp_shstats_share(p, NULL);
    pthread_mutex_lock(&tables_mu);
    for (l = tables; l != NULL && l->pool != p; l = l->next)
        ;
    if (l != NULL)
        sh = l->sh;
    pthread_mutex_unlock(&tables_mu);
    return sh;
}

/* ---- publishing ---------------------------------------------------------- */

/* p's monotonic numbers now, flat. */
static void read_vals(dbp_pool *p, uint64_t *v)
{
    dbp_metrics *m = dbp_pool_metrics(p);

    for (int c = 0; c < DBP_M_COUNT; c++)
        v[c] = dbp_metrics_get(m, (dbp_counter)c);
    for (int k = 0; k < DBP_H_COUNT; k++) {
        dbp_hist_snapshot h;
        dbp_hist_read(m, (dbp_hist_kind)k, &h);
        for (int b = 0; b < DBP_HIST_BUCKETS; b++)
            v[V_BUCKET(k, b)] = h.buckets[b];
        v[V_SUM(k)] = h.sum_ns;
    }
}

/* pid's entry, not counting one that a removed pool left. */
static sh_entry *entry_of(dbp_shstats *sh, int pid)
{
    for (int i = 0; i < SH_PROCS; i++)
        if (atomic_load(&sh->procs[i].pid) == pid && !atomic_load(&sh->procs[i].left))
            return &sh->procs[i];
    return NULL;
}

static sh_entry *entry_claim(dbp_shstats *sh, dbp_pool *p, int pid, int worker)
{
    for (int i = 0; i < SH_PROCS; i++) {
        int free_pid = 0;
        sh_entry *e = &sh->procs[i];
        if (!atomic_compare_exchange_strong(&e->pid, &free_pid, pid))
            continue;
        read_vals(p, e->base);
        for (int v = 0; v < NVALS; v++)
            atomic_store_explicit(&e->vals[v], 0, memory_order_relaxed);
        atomic_store(&e->worker, worker);
        return e;
    }
    return NULL;
}

bool dbp_shstats_publish(dbp_shstats *sh, dbp_pool *p, int worker)
{
    int pid = (int)getpid();
    sh_entry *e = entry_of(sh, pid);
    uint64_t now[NVALS];
    dbp_pool_counts c;

    if (e == NULL && (e = entry_claim(sh, p, pid, worker)) == NULL)
        return false;
    read_vals(p, now);
    for (int v = 0; v < NVALS; v++)
        atomic_store_explicit(&e->vals[v], now[v] - e->base[v], memory_order_relaxed);
    dbp_pool_counts_get(p, &c);
    int64_t g[DBP_G_COUNT] = {
        [DBP_G_IDLE] = c.checkedin, [DBP_G_IN_USE] = c.checkedout,
        [DBP_G_OVERFLOW] = c.overflow, [DBP_G_TOTAL] = c.total,
        [DBP_G_WAITERS] = c.waiting, [DBP_G_PEAK_IN_USE] = dbp_pool_peak_in_use(p),
        [DBP_G_BREAKER_OPEN] = strcmp(dbp_pool_breaker_state(p), "closed") != 0,
        [DBP_G_SIZE] = c.size,
    };
    dbp_pool_autosize_gauges(p, &g[DBP_G_AUTO_TARGET], &g[DBP_G_AUTO_BURST],
                             &g[DBP_G_AUTO_BUSY_MILLI], &g[DBP_G_AUTO_RATE_MILLI]);
    for (int i = 0; i < DBP_G_COUNT; i++)
        atomic_store_explicit(&e->gauges[i], g[i], memory_order_relaxed);
    return true;
}

void dbp_shstats_leave(dbp_pool *p)
{
    pool_table **link, *l = NULL;
    sh_entry *e;

    pthread_mutex_lock(&tables_mu);
    for (link = &tables; *link != NULL; link = &(*link)->next) {
        if ((*link)->pool == p) {
            l = *link;
            *link = l->next;
            break;
        }
    }
    pthread_mutex_unlock(&tables_mu);
    if (l == NULL)
        return;
    /* The table stays mapped: a thread may still be reading it. */
    if ((e = entry_of(l->sh, (int)getpid())) != NULL) {
        uint64_t now[NVALS];
        read_vals(p, now);                            /* its last numbers */
        for (int v = 0; v < NVALS; v++)
            atomic_store_explicit(&e->vals[v], now[v] - e->base[v], memory_order_relaxed);
        for (int g = 0; g < DBP_G_COUNT; g++)
            atomic_store_explicit(&e->gauges[g], 0, memory_order_relaxed);
        atomic_store(&e->left, 1);                    /* the next read folds it */
    }
    dbp_shstats_lease_release(l->sh);
    free(l);
}

/* ---- reading -------------------------------------------------------------- */

static bool process_alive(int pid)
{
    return kill(pid, 0) == 0 || errno == EPERM;
}

static int worker_index(int worker)
{
    return worker < 0 ? 0 : worker >= DBP_SH_WORKERS ? DBP_SH_WORKERS - 1 : worker;
}

/* Moves the numbers of processes that are gone into their worker id's
 * retired sums, each entry once; skipped while another reader folds. */
static void fold_dead(dbp_shstats *sh)
{
    int idle = 0;

    if (!atomic_compare_exchange_strong(&sh->folding, &idle, 1))
        return;
    for (int i = 0; i < SH_PROCS; i++) {
        sh_entry *e = &sh->procs[i];
        int pid = atomic_load(&e->pid);
        if (pid <= 0 || (!atomic_load(&e->left) && process_alive(pid)))
            continue;
        _Atomic uint64_t *r = sh->retired[worker_index(atomic_load(&e->worker))];
        atomic_fetch_add(&sh->seq, 1);                /* odd: readers wait */
        atomic_store(&e->pid, PID_FOLDING);
        for (int v = 0; v < NVALS; v++)
            atomic_fetch_add_explicit(&r[v], atomic_load_explicit(&e->vals[v], memory_order_relaxed),
                                      memory_order_relaxed);
        atomic_store(&e->left, 0);                    /* a free entry has none */
        atomic_store(&e->pid, 0);
        atomic_fetch_add(&sh->seq, 1);
    }
    atomic_store(&sh->folding, 0);
}

static void row_add_vals(dbp_shstats_row *row, _Atomic uint64_t *vals)
{
    for (int c = 0; c < DBP_M_COUNT; c++)
        row->counters[c] += atomic_load_explicit(&vals[c], memory_order_relaxed);
    for (int k = 0; k < DBP_H_COUNT; k++) {
        for (int b = 0; b < DBP_HIST_BUCKETS; b++) {
            uint64_t n = atomic_load_explicit(&vals[V_BUCKET(k, b)], memory_order_relaxed);
            row->hists[k].buckets[b] += n;
            row->hists[k].count += n;
        }
        row->hists[k].sum_ns += atomic_load_explicit(&vals[V_SUM(k)], memory_order_relaxed);
    }
}

/* True when some counter or histogram of row is not zero. */
static bool row_has_numbers(const dbp_shstats_row *row)
{
    for (int c = 0; c < DBP_M_COUNT; c++)
        if (row->counters[c] > 0)
            return true;
    for (int k = 0; k < DBP_H_COUNT; k++)
        if (row->hists[k].count > 0)
            return true;
    return false;
}

/* One consistent pass: false when a fold ran meanwhile (read again). */
static bool read_once(dbp_shstats *sh, dbp_shstats_row *by_worker, bool *seen)
{
    unsigned seq = atomic_load(&sh->seq);

    if (seq & 1)
        return false;
    memset(by_worker, 0, DBP_SH_WORKERS * sizeof *by_worker);
    memset(seen, 0, DBP_SH_WORKERS * sizeof *seen);
    for (int w = 0; w < DBP_SH_WORKERS; w++) {
        row_add_vals(&by_worker[w], sh->retired[w]);
        seen[w] = row_has_numbers(&by_worker[w]);
    }
    for (int i = 0; i < SH_PROCS; i++) {
        sh_entry *e = &sh->procs[i];
        if (atomic_load(&e->pid) <= 0)
            continue;
        int w = worker_index(atomic_load(&e->worker));
        row_add_vals(&by_worker[w], e->vals);
        for (int g = 0; g < DBP_G_COUNT; g++)
            by_worker[w].gauges[g] += atomic_load_explicit(&e->gauges[g], memory_order_relaxed);
        if (!atomic_load(&e->left))                   /* its numbers, not a process */
            by_worker[w].processes++;
        seen[w] = true;
    }
    return atomic_load(&sh->seq) == seq;
}

int dbp_shstats_read(dbp_shstats *sh, dbp_shstats_row *rows)
{
    dbp_shstats_row by_worker[DBP_SH_WORKERS];
    bool seen[DBP_SH_WORKERS];
    int n = 0;

    fold_dead(sh);
    while (!read_once(sh, by_worker, seen))
        sched_yield();
    for (int w = 0; w < DBP_SH_WORKERS; w++) {
        if (!seen[w])
            continue;
        rows[n] = by_worker[w];
        rows[n++].worker = w;
    }
    return n;
}

/* ---- pool_size = "auto": the lease and the decision ---------------------- */

bool dbp_shstats_lease(dbp_shstats *sh, int64_t now_ns, int64_t for_ns)
{
    uint64_t me = (uint64_t)getpid() & LEASE_PID_MASK;
    uint64_t until_ms = (uint64_t)((now_ns + for_ns) / 1000000) + 1;
    uint64_t want = (until_ms << LEASE_PID_BITS) | me;
    uint64_t old = atomic_load(&sh->lease);

    for (;;) {
        uint64_t pid = old & LEASE_PID_MASK;
        bool mine = pid == me;
        if (!mine && old != 0 && (int64_t)(old >> LEASE_PID_BITS) * 1000000 > now_ns &&
            process_alive((int)pid))
            return false;                     /* held, alive, not expired */
        if (atomic_compare_exchange_weak(&sh->lease, &old, want))
            break;
    }
    /* Taken from a holder that died (or hung) while writing: its half
     * write is no decision, and the sequence must be even again. */
    unsigned d = atomic_load(&sh->dseq);
    if ((d & 1) && (old & LEASE_PID_MASK) != me)
        atomic_compare_exchange_strong(&sh->dseq, &d, d + 1);
    return true;
}

void dbp_shstats_set_limit(dbp_shstats *sh, int limit)
{
    atomic_store(&sh->size_limit, limit > 0 ? limit : 0);
}

int dbp_shstats_limit(dbp_shstats *sh)
{
    return atomic_load(&sh->size_limit);
}

void dbp_shstats_lease_release(dbp_shstats *sh)
{
    uint64_t me = (uint64_t)getpid() & LEASE_PID_MASK;
    uint64_t old = atomic_load(&sh->lease);

    while ((old & LEASE_PID_MASK) == me && old != 0 &&
           !atomic_compare_exchange_weak(&sh->lease, &old, 0))
        ;
}

static uint64_t dbits(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

static double dval(uint64_t u)
{
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

bool dbp_shstats_decision(dbp_shstats *sh, dbp_sh_decision *out)
{
    uint64_t v[D_COUNT];

    for (int tries = 0;; tries++) {
        unsigned seq = atomic_load(&sh->dseq);
        if (tries == 1000)
            return false;                     /* a writer is slow: not now */
        if (seq & 1) {
            sched_yield();
            continue;
        }
        for (int i = 0; i < D_COUNT; i++)
            v[i] = atomic_load_explicit(&sh->decision[i], memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load(&sh->dseq) == seq)
            break;
    }
    out->number = v[D_NUMBER];
    out->pid = (int)v[D_PID];
    out->from = (int)v[D_FROM];
    out->target = (int)v[D_TARGET];
    out->workers = (int)v[D_WORKERS];
    out->p99 = (int)v[D_P99];
    out->limit = (int)v[D_LIMIT];
    out->rate = dval(v[D_RATE]);
    out->hold = dval(v[D_HOLD]);
    out->busy = dval(v[D_BUSY]);
    out->window = dval(v[D_WINDOW]);
    out->mark_ns = (int64_t)v[D_MARK_NS];
    out->mark_checkouts = v[D_MARK_CHECKOUTS];
    out->mark_hold_count = v[D_MARK_HOLD_COUNT];
    out->mark_hold_sum_ns = v[D_MARK_HOLD_SUM];
    for (int w = 0; w < DBP_SH_WORKERS; w++)
        out->shares[w] = (int)v[D_SHARES + w];
    return true;
}

int dbp_sh_decision_share(const dbp_sh_decision *d, int worker)
{
    return d->shares[worker_index(worker)];
}

bool dbp_shstats_decide(dbp_shstats *sh, const dbp_sh_decision *d)
{
    uint64_t v[D_COUNT] = {
        [D_NUMBER] = d->number, [D_PID] = (uint64_t)getpid(), [D_FROM] = (uint64_t)d->from, [D_TARGET] = (uint64_t)d->target,
        [D_WORKERS] = (uint64_t)d->workers, [D_P99] = (uint64_t)d->p99,
        [D_LIMIT] = (uint64_t)d->limit, [D_RATE] = dbits(d->rate), [D_HOLD] = dbits(d->hold),
        [D_BUSY] = dbits(d->busy), [D_WINDOW] = dbits(d->window),
        [D_MARK_NS] = (uint64_t)d->mark_ns, [D_MARK_CHECKOUTS] = d->mark_checkouts,
        [D_MARK_HOLD_COUNT] = d->mark_hold_count, [D_MARK_HOLD_SUM] = d->mark_hold_sum_ns,
    };
    unsigned seq = atomic_load(&sh->dseq);

    for (int w = 0; w < DBP_SH_WORKERS; w++)
        v[D_SHARES + w] = (uint64_t)d->shares[w];
    if ((seq & 1) || !atomic_compare_exchange_strong(&sh->dseq, &seq, seq + 1))
        return false;
    atomic_thread_fence(memory_order_release);   /* odd before any field */
    for (int i = 0; i < D_COUNT; i++)
        atomic_store_explicit(&sh->decision[i], v[i], memory_order_relaxed);
    atomic_store(&sh->dseq, seq + 2);
    return true;
}

void dbp_shstats_add(dbp_shstats_row *sum, const dbp_shstats_row *row)
{
    sum->processes += row->processes;
    for (int c = 0; c < DBP_M_COUNT; c++)
        sum->counters[c] += row->counters[c];
    for (int k = 0; k < DBP_H_COUNT; k++) {
        for (int b = 0; b < DBP_HIST_BUCKETS; b++)
            sum->hists[k].buckets[b] += row->hists[k].buckets[b];
        sum->hists[k].count += row->hists[k].count;
        sum->hists[k].sum_ns += row->hists[k].sum_ns;
    }
    for (int g = 0; g < DBP_G_COUNT; g++)
        sum->gauges[g] += row->gauges[g];
}

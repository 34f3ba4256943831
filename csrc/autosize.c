/* autosize.c: the sizing step of pool_size = "auto" (autosize.h).
 *
 * Lock rules (pool_internal.h): the window's marks, the in-use counts, the
 * size and the record live under p->mu; under nginx the instance's table
 * (shstats: numbers, lease, decision) is read and written without it, and
 * the idle connections a step trims are closed after dropping it. */
#include "pool_internal.h"
#include "shstats.h"

#include <limits.h>
#include <math.h>
#include <string.h>

_Static_assert(sizeof(((dbp_resize *)0)->shares) == sizeof(((dbp_sh_decision *)0)->shares),
               "a resize record carries every worker id's share of the decision");

/* Cumulative numbers a window is the difference of. */
typedef struct totals {
    uint64_t checkouts, hold_count, hold_sum_ns;
} totals;

int dbp_autosize_want(double busy, int p99, int min, int max, int limit)
{
    double want = busy > p99 ? busy : (double)p99;   /* busy, plus headroom to the burst */
    int n = want >= (double)max ? max : (int)ceil(want - 1e-9);

    if (n < min)
        n = min;
    if (n > max)
        n = max;
    if (limit > 0 && n > limit)
        n = limit;
    return n;
}

int dbp_autosize_floor(const dbp_config *cfg)
{
    return cfg->min_idle > cfg->auto_min ? cfg->min_idle : cfg->auto_min;
}

/* ---- what the window saw ------------------------------------------------ */

static void own_totals(dbp_pool *p, totals *t)
{
    dbp_hist_snapshot wait, hold;

    dbp_hist_read(&p->metrics, DBP_H_WAIT, &wait);
    dbp_hist_read(&p->metrics, DBP_H_HOLD, &hold);
    t->checkouts = wait.count;
    t->hold_count = hold.count;
    t->hold_sum_ns = hold.sum_ns;
}

/* The 99th percentile of the in-use counts, which are then cleared. */
static int take_p99_locked(auto_state *a)
{
    uint64_t total = 0, seen = 0;
    int p99 = 0;

    for (int i = 0; i < DBP_AUTO_BUCKETS; i++)
        total += a->in_use[i];
    for (int i = 0; i < DBP_AUTO_BUCKETS && total > 0; i++) {
        seen += a->in_use[i];
        if ((double)seen >= 0.99 * (double)total) {
            p99 = i;
            break;
        }
    }
    memset(a->in_use, 0, sizeof a->in_use);
    return p99;
}

/* Fills r's inputs from the window between the marks and t (this
 * process's numbers), and moves the marks to t. */
static void measure_locked(dbp_pool *p, const totals *t, int64_t now, dbp_resize *r)
{
    auto_state *a = p->autosize;
    double secs = (double)(now - a->mark_ns) / (double)DBP_NS_PER_SEC;
    uint64_t n = t->checkouts - a->mark_checkouts, held = t->hold_count - a->mark_hold_count;

    if (t->checkouts < a->mark_checkouts || t->hold_count < a->mark_hold_count)
        n = held = 0;                     /* no common base: an empty window */
    r->window = secs;
    r->rate = secs > 0 ? (double)n / secs : 0;
    r->hold = held > 0 ? (double)(t->hold_sum_ns - a->mark_hold_sum_ns) / (double)held / 1e9 : 0;
    r->processes = 1;
    r->busy = r->rate * r->hold;
    r->p99 = take_p99_locked(a);
    a->mark_ns = now;
    a->mark_checkouts = t->checkouts;
    a->mark_hold_count = t->hold_count;
    a->mark_hold_sum_ns = t->hold_sum_ns;
}

/* ---- shrinking: idle connections above the size, oldest first ----------- */

static dbp_slot *oldest_idle_locked(const dbp_pool *p)
{
    dbp_slot *best = p->idle_head;

    for (dbp_slot *s = p->idle_head; s != NULL; s = s->next)
        if (s->born_ns < best->born_ns)
            best = s;
    return best;
}

/* How many connections were spare in each of the last
 * DBP_AUTO_SPARE_WINDOWS windows (no checkout of any of them left fewer
 * idle); starts the next window's count. */
static int take_spare_locked(auto_state *a)
{
    int spare = a->idle_low;

    for (int i = 0; i < DBP_AUTO_SPARE_WINDOWS - 1; i++)
        if (a->idle_low_before[i] < spare)
            spare = a->idle_low_before[i];
    for (int i = DBP_AUTO_SPARE_WINDOWS - 2; i > 0; i--)
        a->idle_low_before[i] = a->idle_low_before[i - 1];
    a->idle_low_before[0] = a->idle_low;
    a->idle_low = INT_MAX;
    return spare;
}

/* Takes off the idle list what is above the size and was spare in each of
 * the last windows, at most a quarter of the connections (at least one)
 * per step, and returns it linked by next for closing; the capacity is
 * given back.  Connections a recent checkout needed are kept even above
 * the size, as a fixed pool of pool_size = auto.max would keep them:
 * closing them would only make the next peak reconnect. */
static dbp_slot *trim_locked(dbp_pool *p, int *closed)
{
    int quarter = p->total / 4 > 1 ? p->total / 4 : 1;
    int n = p->total - p->size, spare = take_spare_locked(p->autosize);
    dbp_slot *list = NULL;

    if (n > quarter)
        n = quarter;
    if (n > spare)
        n = spare;
    if (n > p->n_idle)
        n = p->n_idle;
    for (*closed = 0; *closed < n; (*closed)++) {
        dbp_slot *s = oldest_idle_locked(p);
        slot_set_state_locked(p, s, SLOT_IN_USE);   /* off the idle list, ours */
        give_back_locked(p, 1, s->epoch);
        dbp_metrics_inc_locked(&p->metrics, DBP_M_RESIZE_CLOSES);
        s->next = list;
        list = s;
    }
    if (*closed > 0)
        wake_for_capacity_locked(p);      /* a process waiting for the host-wide cap */
    return list;
}

/* ---- the record ---------------------------------------------------------- */

static void keep_record_locked(auto_state *a, const dbp_resize *r)
{
    if (a->log_n == DBP_AUTO_LOG) {       /* nobody reported them: drop the oldest */
        a->log_start = (a->log_start + 1) % DBP_AUTO_LOG;
        a->log_n--;
        a->log_lost++;
    }
    a->log[(a->log_start + a->log_n) % DBP_AUTO_LOG] = *r;
    a->log_n++;
}

int dbp_pool_take_resizes(dbp_pool *p, dbp_resize *out, int max, unsigned *lost)
{
    auto_state *a = p->autosize;
    int n = 0;

    *lost = 0;
    if (a == NULL)
        return 0;
    dbp_lock_acquire(&p->mu);
    for (; n < max && a->log_n > 0; n++) {
        out[n] = a->log[a->log_start];
        a->log_start = (a->log_start + 1) % DBP_AUTO_LOG;
        a->log_n--;
    }
    *lost = a->log_lost;
    a->log_lost = 0;
    dbp_lock_release(&p->mu);
    return n;
}

/* ---- the step ------------------------------------------------------------ */

bool dbp_pool_autosize_step(dbp_pool *p, dbp_resize *out)
{
    auto_state *a = p->autosize;
    dbp_slot *trimmed, *orphans;
    dbp_resize r;
    totals t;
    bool grow;

    if (a == NULL)
        return false;
    memset(&r, 0, sizeof r);              /* decision, target: nginx's alone */
    own_totals(p, &t);                    /* under nginx: dbp_pool_autosize_step_instance */
    lock_pool(p, &orphans);
    if (p->retired) {
        unlock_pool(p, orphans);
        return false;
    }
    measure_locked(p, &t, dbp_now_ns(), &r);
    /* Connections held through a whole window complete no checkout: what
     * is in use (and queued) now is demand too, or a saturated pool would
     * read as idle and shrink under its load. */
    if (r.p99 < p->total - p->n_idle + p->n_waiting)
        r.p99 = p->total - p->n_idle + p->n_waiting;
    r.limit = a->limit;
    r.from = p->size;
    r.to = p->size = dbp_autosize_want(r.busy, r.p99, dbp_autosize_floor(&p->cfg),
                                       p->cfg.auto_max, a->limit);
    trimmed = trim_locked(p, &r.closed);
    a->last = r;
    a->decided = true;
    if (p->cfg.echo_pool && (r.from != r.to || r.closed > 0))
        keep_record_locked(a, &r);
    grow = p->total < p->size && p->wait_head == NULL;
    unlock_pool(p, orphans);
    close_list(trimmed);
    if (r.from != r.to)
        dbp_metrics_inc(&p->metrics, DBP_M_RESIZES);
    if (out != NULL)
        *out = r;
    return grow;
}

/* ---- under nginx: one decision per instance (shstats.h) ------------------ */

/* What every worker published, as one worker sees it. */
typedef struct instance_view {
    totals t;              /* the instance's counters (dead processes' included) */
    int workers;           /* live worker ids */
    int rank;              /* this worker's place among them, lowest id first */
    int burst;             /* the live workers' bursts summed */
    int size;              /* the live workers' sizes summed */
    int ids[DBP_SH_WORKERS], bursts[DBP_SH_WORKERS];   /* each live worker's, id order */
} instance_view;

static void read_instance(dbp_pool *p, dbp_shstats *sh, int worker, instance_view *v)
{
    dbp_shstats_row *rows = malloc(DBP_SH_WORKERS * sizeof *rows);
    int n;

    memset(v, 0, sizeof *v);
    own_totals(p, &v->t);
    if (rows == NULL) {                   /* out of memory: this worker alone */
        v->workers = 1;
        return;
    }
    memset(&v->t, 0, sizeof v->t);
    n = dbp_shstats_read(sh, rows);
    for (int i = 0; i < n; i++) {
        v->t.checkouts += rows[i].hists[DBP_H_WAIT].count;
        v->t.hold_count += rows[i].hists[DBP_H_HOLD].count;
        v->t.hold_sum_ns += rows[i].hists[DBP_H_HOLD].sum_ns;
        if (rows[i].processes <= 0)
            continue;
        if (rows[i].worker < worker)
            v->rank++;
        v->ids[v->workers] = rows[i].worker;
        v->bursts[v->workers] = (int)rows[i].gauges[DBP_G_AUTO_BURST];
        v->workers++;
        v->burst += (int)rows[i].gauges[DBP_G_AUTO_BURST];
        v->size += (int)rows[i].gauges[DBP_G_SIZE];
    }
    free(rows);
    if (v->workers == 0) {                /* not published (every entry taken) */
        v->workers = 1;
        v->ids[0] = worker;
        v->bursts[0] = 0;
    }
    if (v->rank >= v->workers)
        v->rank = 0;
}

/* Splits target across the n live workers into share (in the order of
 * burst): each gets floor, and the rest goes in proportion to how far each
 * worker's own burst is above floor (evenly when none is), largest
 * remainders first, ties to the earlier; a share is at most most, and what
 * it cannot hold is given to nobody (a worker without traffic would only
 * keep it idle; the loaded one has max_overflow).  Below the floors (a
 * budget's limit under auto.min) target is split evenly.  The caller takes
 * the shares' sum as the target.  Why by burst: a worker that nginx sends
 * no traffic keeps its floor instead of a part of the instance's
 * connections idle. */
static void split_target(int target, int n, const int *burst, int floor, int most, int *share)
{
    int64_t rest = target - (int64_t)floor * n, weight = 0, given = 0;
    int64_t w[DBP_SH_WORKERS], rem[DBP_SH_WORKERS];

    if (rest < 0) {
        for (int i = 0; i < n; i++)
            share[i] = target / n + (i < target % n ? 1 : 0);
        return;
    }
    for (int i = 0; i < n; i++)
        weight += w[i] = burst[i] > floor ? burst[i] - floor : 0;
    for (int i = 0; i < n; i++) {
        int64_t part = weight > 0 ? rest * w[i] / weight : rest / n;
        rem[i] = weight > 0 ? rest * w[i] % weight : 0;
        share[i] = floor + (int)part;
        given += part;
    }
    while (given < rest) {                /* the units rounding left: largest remainder */
        int best = 0;
        for (int i = 1; i < n; i++)
            if (rem[i] > rem[best])
                best = i;
        share[best]++;
        rem[best] = -1;                   /* one unit each, then the next largest */
        given++;
    }
    for (int i = 0; i < n; i++)           /* what a share cannot hold is nobody's */
        if (share[i] > most)
            share[i] = most;
}

/* The lease holder's decision: the window since the previous decision
 * (whoever took it), from the instance's numbers; counted and kept for
 * dbpool.log once, here, when the target changed. */
static void decide(dbp_pool *p, dbp_shstats *sh, const instance_view *v, int64_t now)
{
    auto_state *a = p->autosize;
    dbp_sh_decision d, nd;
    int w = v->workers, limit;

    if (!dbp_shstats_decision(sh, &d))
        return;                           /* being written: decide at the next step */
    dbp_lock_acquire(&p->mu);
    limit = a->limit;
    dbp_lock_release(&p->mu);
    memset(&nd, 0, sizeof nd);
    if (d.number > 0 && v->t.checkouts >= d.mark_checkouts &&
        v->t.hold_count >= d.mark_hold_count) {
        uint64_t n = v->t.checkouts - d.mark_checkouts, held = v->t.hold_count - d.mark_hold_count;
        nd.window = (double)(now - d.mark_ns) / (double)DBP_NS_PER_SEC;
        nd.rate = nd.window > 0 ? (double)n / nd.window : 0;
        nd.hold = held > 0 ? (double)(v->t.hold_sum_ns - d.mark_hold_sum_ns) / (double)held / 1e9
                           : 0;
    }                                     /* else the first: an empty window */
    nd.busy = nd.rate * nd.hold;
    nd.p99 = v->burst;
    nd.workers = w;
    nd.limit = limit > 0 ? limit * w : 0;
    nd.from = d.number > 0 ? d.target : v->size;
    {
        /* What the workers need, each at least its floor: a worker without
         * traffic keeps its floor beside the others' bursts. */
        int needed = 0, floor = dbp_autosize_floor(&p->cfg);
        for (int i = 0; i < w; i++)
            needed += v->bursts[i] > floor ? v->bursts[i] : floor;
        nd.target = dbp_autosize_want(nd.busy, needed, floor * w, p->cfg.auto_max * w, nd.limit);
    }
    {
        int shares[DBP_SH_WORKERS], most = p->cfg.auto_max;
        if (limit > 0 && limit < most)
            most = limit;
        split_target(nd.target, w, v->bursts, dbp_autosize_floor(&p->cfg), most, shares);
        nd.target = 0;                    /* what the shares hold */
        for (int i = 0; i < w; i++) {
            nd.shares[v->ids[i] < DBP_SH_WORKERS ? v->ids[i] : DBP_SH_WORKERS - 1] = shares[i];
            nd.target += shares[i];
        }
    }
    nd.number = d.number + 1;
    nd.mark_ns = now;
    nd.mark_checkouts = v->t.checkouts;
    nd.mark_hold_count = v->t.hold_count;
    nd.mark_hold_sum_ns = v->t.hold_sum_ns;
    if (!dbp_shstats_decide(sh, &nd) || nd.from == nd.target)
        return;
    dbp_metrics_inc(&p->metrics, DBP_M_RESIZES);
    if (p->cfg.echo_pool) {
        dbp_resize r = {
            .from = nd.from, .to = nd.target, .rate = nd.rate, .hold = nd.hold,
            .busy = nd.busy, .p99 = nd.p99, .processes = w, .limit = nd.limit,
            .window = nd.window, .decision = nd.number, .target = nd.target,
        };
        memcpy(r.shares, nd.shares, sizeof r.shares);
        dbp_lock_acquire(&p->mu);
        keep_record_locked(a, &r);
        dbp_lock_release(&p->mu);
    }
}

/* An even part of target, the remainder to the lowest ids: the share of a
 * worker the decision did not count (it started after it). */
static int share_of(int target, int workers, int rank)
{
    return target / workers + (rank < target % workers ? 1 : 0);
}

/* Sizes p to this worker's share of decision d and trims above it. */
static bool apply_locked(dbp_pool *p, const dbp_sh_decision *d, const instance_view *v,
                         int worker, dbp_resize *r, dbp_slot **trimmed)
{
    auto_state *a = p->autosize;
    int share = dbp_sh_decision_share(d, worker);

    if (share <= 0)                       /* not live at the decision: an even part */
        share = share_of(d->target, v->workers, v->rank);

    if (share < dbp_autosize_floor(&p->cfg))
        share = dbp_autosize_floor(&p->cfg);
    if (share > p->cfg.auto_max)
        share = p->cfg.auto_max;
    if (a->limit > 0 && share > a->limit)
        share = a->limit;
    *r = (dbp_resize){
        .from = p->size, .to = share, .rate = d->rate, .hold = d->hold, .busy = d->busy,
        .p99 = d->p99, .processes = d->workers, .limit = a->limit, .window = d->window,
        .decision = d->number, .target = d->target,
    };
    p->size = share;
    *trimmed = trim_locked(p, &r->closed);
    if (p->cfg.echo_pool && r->closed > 0) {   /* the decision was logged by its taker */
        dbp_resize closes = *r;
        closes.share_step = true;
        keep_record_locked(a, &closes);
    }
    a->last = *r;
    a->decided = true;
    a->share = share;
    /* The decision's busy and rate in proportion to the share, so that
     * their sums over the workers are the instance's. */
    a->busy_share = d->target > 0 ? d->busy * share / d->target : d->busy / v->workers;
    a->rate_share = d->target > 0 ? d->rate * share / d->target : d->rate / v->workers;
    return p->total < p->size && p->wait_head == NULL;
}

bool dbp_pool_autosize_step_instance(dbp_pool *p, int worker, dbp_resize *out)
{
    auto_state *a = p->autosize;
    dbp_shstats *sh = a != NULL ? dbp_shstats_of(p, false) : NULL;
    dbp_slot *orphans, *trimmed = NULL;
    dbp_sh_decision d;
    instance_view v;
    dbp_resize r;
    bool grow = false, applied = false;
    int64_t now;

    if (a == NULL)
        return false;
    if (sh == NULL)
        return dbp_pool_autosize_step(p, out);
    lock_pool(p, &orphans);               /* this worker's burst, for every decision */
    if (p->retired) {
        unlock_pool(p, orphans);
        return false;
    }
    a->limit = dbp_shstats_limit(sh);     /* set in any worker, for all */
    a->burst = take_p99_locked(a);
    if (a->burst < p->total - p->n_idle + p->n_waiting)   /* held through the window */
        a->burst = p->total - p->n_idle + p->n_waiting;
    unlock_pool(p, orphans);
    (void)dbp_shstats_publish(sh, p, worker);
    read_instance(p, sh, worker, &v);
    now = dbp_now_ns();
    if (dbp_shstats_lease(sh, now, 3 * dbp_sec_to_ns(p->cfg.auto_interval) + DBP_NS_PER_SEC))
        decide(p, sh, &v, now);
    if (dbp_shstats_decision(sh, &d) && d.number > 0) {
        lock_pool(p, &orphans);
        if (!p->retired) {
            grow = apply_locked(p, &d, &v, worker, &r, &trimmed);
            applied = true;
        }
        unlock_pool(p, orphans);
        close_list(trimmed);
        (void)dbp_shstats_publish(sh, p, worker);   /* the new size, at once */
    }
    if (out != NULL && applied)
        *out = r;
    else if (out != NULL)
        memset(out, 0, sizeof *out);
    return grow;
}

void dbp_pool_autosize_leave(dbp_pool *p)
{
    dbp_shstats *sh = p->autosize != NULL ? dbp_shstats_of(p, false) : NULL;

    if (sh != NULL)
        dbp_shstats_lease_release(sh);
}

void dbp_pool_autosize_gauges(dbp_pool *p, int64_t *target, int64_t *burst,
                              int64_t *busy_milli, int64_t *rate_milli)
{
    auto_state *a = p->autosize;

    *target = *burst = *busy_milli = *rate_milli = 0;
    if (a == NULL)
        return;
    dbp_lock_acquire(&p->mu);
    *target = a->share;
    *burst = a->burst;
    *busy_milli = (int64_t)llround(a->busy_share * 1000);
    *rate_milli = (int64_t)llround(a->rate_share * 1000);
    dbp_lock_release(&p->mu);
}

/* ---- settings and inspection -------------------------------------------- */

double dbp_pool_autosize_interval(const dbp_pool *p)
{
    return p->autosize != NULL ? p->cfg.auto_interval : 0;
}

void dbp_pool_autosize_limit(dbp_pool *p, int limit)
{
    dbp_shstats *sh;

    if (p->autosize == NULL)
        return;
    if ((sh = dbp_shstats_of(p, false)) != NULL)
        dbp_shstats_set_limit(sh, limit);  /* every worker's, under nginx */
    dbp_lock_acquire(&p->mu);
    p->autosize->limit = limit > 0 ? limit : 0;
    dbp_lock_release(&p->mu);
}

int dbp_pool_autosize_limit_get(dbp_pool *p)
{
    int limit;

    if (p->autosize == NULL)
        return 0;
    dbp_lock_acquire(&p->mu);
    limit = p->autosize->limit;
    dbp_lock_release(&p->mu);
    return limit;
}

bool dbp_pool_autosize_last(dbp_pool *p, dbp_resize *out)
{
    bool decided;

    if (p->autosize == NULL)
        return false;
    dbp_lock_acquire(&p->mu);
    decided = p->autosize->decided;
    *out = p->autosize->last;
    dbp_lock_release(&p->mu);
    return decided;
}

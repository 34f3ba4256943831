/* pool_slots.c: the slot floor.  How many connections the pool may have
 * (capacity, given back and handed to waiters), the queue of waiting
 * checkouts, the idle list's bulk moves, and the slots a fork()ed child
 * inherited.
 *
 * The floor's hot half (the one door for state changes,
 * slot_set_state_locked; idle pop; the hand-off on return; lock_pool and
 * unlock_pool) is static inline in pool_internal.h so that checkout and
 * return inline it.  Lock rules: pool_internal.h; every *_locked function
 * here needs p->mu held, give_back_and_wake takes it. */
#include "pool_internal.h"

#include <string.h>

/* ---- capacity ----------------------------------------------------------- */

int has_capacity_locked(const dbp_pool *p)
{
    if (p->total >= dbp_config_capacity(&p->cfg))
        return 0;
    /* pool_size = "auto" under dbpool.budget's allowance: no more open than
     * it allows, plus max_overflow, whatever auto.max says. */
    return p->autosize == NULL || p->autosize->limit <= 0 || p->cfg.max_overflow < 0 ||
           p->total < p->autosize->limit + p->cfg.max_overflow;
}

double dbp_pool_capacity(dbp_pool *p)
{
    double cap = dbp_config_capacity(&p->cfg);
    int limit;

    if (p->autosize == NULL || p->cfg.max_overflow < 0)
        return cap;
    dbp_lock_acquire(&p->mu);
    limit = p->autosize->limit;
    dbp_lock_release(&p->mu);
    if (limit > 0 && (double)limit + p->cfg.max_overflow < cap)
        cap = (double)limit + p->cfg.max_overflow;
    return cap;
}

bool reserve_locked(dbp_pool *p)
{
    if (!has_capacity_locked(p) || (p->cap != NULL && !dbp_cap_take(p->cap)))
        return false;
    p->total++;
    return true;
}

void give_back_locked(dbp_pool *p, int n, unsigned epoch)
{
    if (epoch == p->epoch)
        p->total -= n;
    if (p->cap != NULL)
        dbp_cap_give_back(p->cap, n);
}

void wake_for_capacity_locked(dbp_pool *p)
{
    while (p->wait_head != NULL && reserve_locked(p)) {
        waiter *w = p->wait_head;
        waiter_remove_locked(p, w);
        w->may_create = 1;
        w->epoch = p->epoch;
        dbp_wake_set(&w->wake);
    }
}

void give_back_and_wake_locked(dbp_pool *p, int n, unsigned epoch)
{
    give_back_locked(p, n, epoch);
    wake_for_capacity_locked(p);
}

void give_back_and_wake(dbp_pool *p, int n, unsigned epoch)
{
    dbp_lock_acquire(&p->mu);
    give_back_and_wake_locked(p, n, epoch);
    dbp_lock_release(&p->mu);
}

/* ---- waiters ------------------------------------------------------------ */

dbp_status timeout_error_locked(dbp_pool *p, dbp_error *err)
{
    dbp_pool_counts c;

    counts_locked(p, &c);
    dbp_error_set(err, DBP_TIMEOUT,
                  "QueuePool limit of size %d overflow %d reached, connection timed out, "
                  "timeout %.2f",
                  c.size, c.overflow, p->cfg.pool_timeout);
    snprintf(err->detail, sizeof err->detail, "total=%d, in_use=%d, idle=%d, waiting=%d",
             c.total, c.checkedout, c.checkedin, c.waiting);
    return DBP_TIMEOUT;
}

dbp_status wait_for_slot_locked(dbp_pool *p, int64_t deadline, dbp_slot **slot, int *create,
                                unsigned *epoch, dbp_error *err)
{
    waiter w;

    memset(&w, 0, sizeof w);
    dbp_wake_init(&w.wake);
    w.prev = p->wait_tail;
    if (p->wait_tail) p->wait_tail->next = &w; else p->wait_head = &w;
    p->wait_tail = &w;
    p->n_waiting++;
    dbp_metrics_inc_locked(&p->metrics, DBP_M_WAITS);

    while (w.slot == NULL && !w.may_create && dbp_now_ns() < deadline)
        dbp_wake_wait(&w.wake, &p->mu, deadline);
    if (w.slot == NULL && !w.may_create) {
        waiter_remove_locked(p, &w);   /* still queued: nobody served us */
        dbp_metrics_inc_locked(&p->metrics, DBP_M_TIMEOUTS);
        return timeout_error_locked(p, err);
    }
    *slot = w.slot;
    *create = w.may_create;
    *epoch = w.epoch;
    return DBP_OK;
}

void counts_locked(const dbp_pool *p, dbp_pool_counts *c)
{
    c->size = p->size;
    c->checkedin = p->n_idle;
    c->total = p->total;
    c->checkedout = p->total - p->n_idle;
    /* SQLAlchemy 2.x's QueuePool.overflow(): 0 when the pool has no size
     * limit (pool_size = 0), else total - pool_size, negative below it. */
    c->overflow = p->size > 0 ? p->total - p->size : 0;
    c->waiting = p->n_waiting;
}

/* ---- invalidation ------------------------------------------------------- */

/* SQLAlchemy's _invalidate_time; the lost capacity is refilled (min_idle). */
void note_lost_locked(dbp_pool *p, int64_t now)
{
    if (now > p->invalidate_ns)
        p->invalidate_ns = now;
    p->refill_pending = true;
}

/* ---- slots leaving the pool --------------------------------------------- */

dbp_slot *idle_take_all_locked(dbp_pool *p)
{
    dbp_slot *list = p->idle_head;

    p->idle_head = p->idle_tail = NULL;
    p->n_idle = 0;
    return list;
}

/* Every connection open now belongs to the parent: the idle ones are
 * returned for the caller to forget (no byte sent on them), checked-out ones
 * are forgotten when released (their gen differs).  Threads other than the
 * forking one do not exist here, so their waiters and reservations go. */
dbp_slot *after_fork_locked(dbp_pool *p)
{
    dbp_slot *orphans = idle_take_all_locked(p);

    p->total = 0;
    p->wait_head = p->wait_tail = NULL;
    p->n_waiting = 0;
    p->tracked = NULL;       /* their traces are freed with the slots on release */
    p->breaker.probing = false;
    p->refill_pending = true;
    p->gen = dbp_fork_generation();
    return orphans;
}

/* Frees a list of slots and what they own; their connections are closed,
 * or forgotten when inherited. */
static void free_slots(dbp_slot *list, bool inherited)
{
    while (list != NULL) {
        dbp_slot *next = list->next;
        if (inherited)
            dbp_conn_forget(list->conn);
        else
            dbp_conn_close(list->conn);
        free(list->trace);
        free(list);
        list = next;
    }
}

void close_list(dbp_slot *list)
{
    free_slots(list, false);
}

void forget_list(dbp_slot *list)
{
    free_slots(list, true);
}

void close_slot(dbp_slot *s)
{
    s->next = NULL;
    free_slots(s, false);
}

void forget_slot(dbp_slot *s)
{
    s->next = NULL;
    free_slots(s, true);
}

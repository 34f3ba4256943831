/* pool_leak.c: leak tracking (leak_threshold > 0).  The binding hands over
 * a checkout's traceback (dbp_pool_track); checkouts held past the
 * threshold are reported once each, by a scan (dbp_pool_overdue) or at
 * their return (dbp_slot_take_overdue).
 *
 * Tracked slots are on p->tracked through links of their own (leak_prev,
 * leak_next), so tracking never touches the idle list.  A slot has a
 * traceback exactly while it is on p->tracked.  Lock rules: every field
 * here is guarded by p->mu (pool_internal.h); the return path unlinks a
 * tracked slot through untrack_locked. */
#include "pool_internal.h"

#include <string.h>

void leak_unlink_locked(dbp_pool *p, dbp_slot *s)
{
    if (s->leak_prev) s->leak_prev->leak_next = s->leak_next; else p->tracked = s->leak_next;
    if (s->leak_next) s->leak_next->leak_prev = s->leak_prev;
    s->leak_prev = s->leak_next = NULL;
    free(s->trace);
    s->trace = NULL;
}

void dbp_pool_track(dbp_pool *p, dbp_slot *s, char *trace)
{
    dbp_lock_acquire(&p->mu);
    untrack_locked(p, s);
    s->trace = trace;
    s->leak_reported = false;
    if (trace != NULL) {
        int64_t due = s->checkout_ns + dbp_sec_to_ns(p->cfg.leak_threshold);
        s->leak_prev = NULL;
        s->leak_next = p->tracked;
        if (p->tracked) p->tracked->leak_prev = s;
        p->tracked = s;
        if (due < p->next_leak_scan_ns)
            p->next_leak_scan_ns = due;
    }
    dbp_lock_release(&p->mu);
}

int dbp_pool_overdue(dbp_pool *p, dbp_leak *out, int max)
{
    int64_t now = dbp_now_ns(), threshold = dbp_sec_to_ns(p->cfg.leak_threshold);
    int64_t next = INT64_MAX;
    int n = 0;

    dbp_lock_acquire(&p->mu);
    if (now < p->next_leak_scan_ns) {
        dbp_lock_release(&p->mu);
        return 0;
    }
    for (dbp_slot *s = p->tracked; s != NULL; s = s->leak_next) {
        if (s->leak_reported)
            continue;
        if (now - s->checkout_ns < threshold || n == max) {
            if (s->checkout_ns + threshold < next)
                next = s->checkout_ns + threshold;
            continue;
        }
        s->leak_reported = true;
        out[n].held = (double)(now - s->checkout_ns) / (double)DBP_NS_PER_SEC;
        out[n].trace = strdup(s->trace);
        n += out[n].trace != NULL;
    }
    p->next_leak_scan_ns = next;
    dbp_lock_release(&p->mu);
    return n;
}

char *dbp_slot_take_overdue(dbp_pool *p, dbp_slot *s, double *held)
{
    int64_t now = dbp_now_ns();
    char *trace = NULL;

    dbp_lock_acquire(&p->mu);
    if (s->trace != NULL && !s->leak_reported &&
        now - s->checkout_ns >= dbp_sec_to_ns(p->cfg.leak_threshold)) {
        s->leak_reported = true;
        *held = (double)(now - s->checkout_ns) / (double)DBP_NS_PER_SEC;
        trace = strdup(s->trace);
    }
    dbp_lock_release(&p->mu);
    return trace;
}

/* cap.c: the host-wide max_total_connections table (cap.h).  Only atomics,
 * no lock: see cap.h for the rules. */
#include "cap.h"

#include "arena.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/mman.h>
#include <unistd.h>

/* Processes that can use one cap at once (nginx workers, a master, helpers). */
#define CAP_PROCS 128

typedef struct cap_entry {
    _Atomic int pid;        /* 0 = free */
    _Atomic int open;       /* that process's units */
} cap_entry;

struct dbp_cap {
    int limit;              /* immutable after dbp_cap_new */
    bool in_arena;          /* immutable: claimed from the instance arena, never unmapped */
    _Atomic int open;       /* all processes: what the cap bounds, exactly */
    /* The last time a process had a take refused, and which one. */
    _Atomic int64_t wanted_ns;
    _Atomic int wanted_by;
    cap_entry procs[CAP_PROCS];
};

dbp_status dbp_cap_new(int limit, dbp_cap **out)
{
    void *m = mmap(NULL, sizeof(dbp_cap), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                   -1, 0);

    if (m == MAP_FAILED)
        return DBP_NOMEM;
    *out = m;                  /* zero-filled: every entry free */
    (*out)->limit = limit;
    return DBP_OK;
}

/* The arena's init of a new cap table (zero-filled). */
static void cap_init(void *block, void *arg)
{
    dbp_cap *cap = block;

    cap->limit = *(const int *)arg;
    cap->in_arena = true;
}

dbp_status dbp_cap_share(const char *name, int limit, dbp_cap **out)
{
    dbp_arena *arena = dbp_arena_instance(NULL);
    dbp_cap *cap = NULL;

    if (arena != NULL)
        cap = dbp_arena_claim(arena, DBP_ARENA_CAP, name, (uint64_t)limit, sizeof(dbp_cap),
                              cap_init, &limit, NULL);
    if (cap == NULL)
        return dbp_cap_new(limit, out);
    *out = cap;
    return DBP_OK;
}

void dbp_cap_free(dbp_cap *cap)
{
    if (cap != NULL && !cap->in_arena)
        munmap(cap, sizeof(dbp_cap));
}

/* The calling process's entry, or NULL when it has none. */
static cap_entry *entry_here(const dbp_cap *cap)
{
    int me = (int)getpid();

    for (int i = 0; i < CAP_PROCS; i++)
        if (atomic_load(&cap->procs[i].pid) == me)
            return (cap_entry *)&cap->procs[i];
    return NULL;
}

/* The calling process's entry, claimed on first use; NULL when the table
 * is full. */
static cap_entry *entry_claim(dbp_cap *cap)
{
    cap_entry *mine = entry_here(cap);
    int me = (int)getpid();

    for (int i = 0; mine == NULL && i < CAP_PROCS; i++) {
        int free_pid = 0;
        if (atomic_compare_exchange_strong(&cap->procs[i].pid, &free_pid, me)) {
            atomic_store(&cap->procs[i].open, 0);
            mine = &cap->procs[i];
        }
    }
    return mine;
}

/* Takes back what dead processes held.  Returns how many units. */
static int reclaim(dbp_cap *cap)
{
    int reclaimed = 0;

    for (int i = 0; i < CAP_PROCS; i++) {
        int pid = atomic_load(&cap->procs[i].pid);
        if (pid == 0 || kill(pid, 0) == 0 || errno != ESRCH)
            continue;
        if (atomic_compare_exchange_strong(&cap->procs[i].pid, &pid, 0)) {
            int n = atomic_exchange(&cap->procs[i].open, 0);
            atomic_fetch_sub(&cap->open, n);
            reclaimed += n;
        }
    }
    return reclaimed;
}

bool dbp_cap_take(dbp_cap *cap)
{
    cap_entry *mine = entry_claim(cap);

    if (mine == NULL)
        return false;
    for (int round = 0; round < 2; round++) {
        int cur = atomic_load(&cap->open);
        while (cur < cap->limit) {
            if (atomic_compare_exchange_weak(&cap->open, &cur, cur + 1)) {
                atomic_fetch_add(&mine->open, 1);
                return true;
            }
        }
        if (round == 0 && reclaim(cap) == 0)
            break;
    }
    atomic_store(&cap->wanted_by, (int)getpid());
    atomic_store(&cap->wanted_ns, dbp_now_ns());
    return false;
}

void dbp_cap_give_back(dbp_cap *cap, int n)
{
    cap_entry *mine = entry_claim(cap);

    if (mine == NULL)
        return;
    atomic_fetch_sub(&mine->open, n);
    atomic_fetch_sub(&cap->open, n);
}

bool dbp_cap_wanted_elsewhere(const dbp_cap *cap, int64_t now)
{
    return now - atomic_load(&cap->wanted_ns) < DBP_CAP_WANT_NS &&
           atomic_load(&cap->wanted_by) != (int)getpid();
}

int dbp_cap_open(const dbp_cap *cap)
{
    return atomic_load(&cap->open);
}

int dbp_cap_open_here(const dbp_cap *cap)
{
    const cap_entry *mine = entry_here(cap);

    return mine != NULL ? atomic_load(&mine->open) : 0;
}

/* arena.c: the instance arena (arena.h).  Only atomics between processes;
 * see arena.h for the rules. */
#include "arena.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* A slot's state word: 0 free, READY, or WRITING with the writer's pid. */
#define SLOT_FREE 0u
#define SLOT_READY 1u
#define SLOT_WRITING(pid) (((uint64_t)(unsigned)(pid) << 8) | 2u)
#define SLOT_IS_WRITING(s) (((s) & 0xffu) == 2u)
#define SLOT_WRITER(s) ((int)((s) >> 8))

#define BLOCK_ALIGN 64                      /* a cache line: blocks share none */

typedef struct arena_slot {
    _Atomic uint64_t state;
    /* The key and the block: written by the slot's writer before it stores
     * READY (release), read by others after they load READY (acquire). */
    int kind;
    uint64_t fingerprint;
    char name[DBP_ARENA_NAME + 1];
    size_t offset, size;                    /* the block, from the arena's start */
} arena_slot;

struct dbp_arena {
    /* Written by dbp_arena_new before any fork; read-only after. */
    size_t bytes;
    int creator;                            /* the pid that mapped it */
    int nslots;
    size_t data;                            /* where the bump area starts */
    _Atomic size_t used;                    /* bytes of it handed out */
    arena_slot slots[];
};

static size_t round_up(size_t n, size_t to)
{
    return (n + to - 1) / to * to;
}

dbp_arena *dbp_arena_new(size_t bytes, int slots)
{
    size_t head = round_up(sizeof(dbp_arena) + (size_t)slots * sizeof(arena_slot), BLOCK_ALIGN);
    dbp_arena *a;

    if (slots < 1 || head >= bytes)
        return NULL;
    /* MAP_NORESERVE: the reserve is address space; pages are committed
     * when a table is first written. */
    a = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE,
             -1, 0);
    if (a == MAP_FAILED)
        return NULL;
    a->bytes = bytes;                   /* zero-filled: every slot free, nothing used */
    a->creator = (int)getpid();
    a->nslots = slots;
    a->data = head;
    return a;
}

void dbp_arena_free(dbp_arena *a)
{
    if (a != NULL)
        munmap(a, a->bytes);
}

size_t dbp_arena_used(const dbp_arena *a)
{
    return atomic_load(&((dbp_arena *)a)->used);
}

/* ---- claiming ------------------------------------------------------------- */

static bool process_alive(int pid)
{
    return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

/* FNV-1a over the key. */
static uint64_t key_hash(int kind, const char *name, uint64_t fingerprint)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    const unsigned char *s = (const unsigned char *)name;

    h = (h ^ (uint64_t)kind) * 0x100000001b3ULL;
    for (int i = 0; i < 8; i++)
        h = (h ^ ((fingerprint >> (8 * i)) & 0xff)) * 0x100000001b3ULL;
    for (; *s; s++)
        h = (h ^ *s) * 0x100000001b3ULL;
    return h;
}

/* A block of size bytes from the bump area, or (size_t)-1 when it does
 * not fit.  Lock-free: compare-and-swap on the offset. */
static size_t bump(dbp_arena *a, size_t size)
{
    size_t need = round_up(size, BLOCK_ALIGN);
    size_t cur = atomic_load(&a->used);

    do {
        if (need > a->bytes - a->data - cur)
            return (size_t)-1;
    } while (!atomic_compare_exchange_weak(&a->used, &cur, cur + need));
    return a->data + cur;
}

/* The caller holds slot s as its writer: takes space, writes the key, runs
 * init, publishes.  NULL (slot freed again) when the space is not there. */
static void *fill(dbp_arena *a, arena_slot *s, int kind, const char *name, uint64_t fingerprint,
                  size_t size, void (*init)(void *, void *), void *arg)
{
    size_t off = bump(a, size);

    if (off == (size_t)-1) {
        atomic_store(&s->state, SLOT_FREE);
        return NULL;
    }
    s->kind = kind;
    s->fingerprint = fingerprint;
    memset(s->name, 0, sizeof s->name);
    strcpy(s->name, name);
    s->offset = off;
    s->size = size;
    if (init != NULL)
        init((char *)a + off, arg);
    atomic_store_explicit(&s->state, SLOT_READY, memory_order_release);
    return (char *)a + off;
}

static bool key_is(const arena_slot *s, int kind, const char *name, uint64_t fingerprint)
{
    return s->kind == kind && s->fingerprint == fingerprint && strcmp(s->name, name) == 0;
}

void *dbp_arena_claim(dbp_arena *a, dbp_arena_kind kind, const char *name, uint64_t fingerprint,
                      size_t size, void (*init)(void *block, void *arg), void *arg,
                      dbp_arena_why *why)
{
    dbp_arena_why dummy;
    uint64_t me = SLOT_WRITING(getpid());
    uint64_t h;

    if (why == NULL)
        why = &dummy;
    *why = DBP_ARENA_FULL;
    if (a == NULL) {
        *why = DBP_ARENA_ABSENT;
        return NULL;
    }
    if (strlen(name) > DBP_ARENA_NAME)
        return NULL;
    h = key_hash(kind, name, fingerprint);
    /* Open addressing, linear probing.  A slot never goes from READY back
     * to free, so a key's probe sequence never loses a slot before it. */
    for (int i = 0; i < a->nslots; i++) {
        arena_slot *s = &a->slots[(h + (uint64_t)i) % (uint64_t)a->nslots];
        int64_t deadline = dbp_now_ns() + DBP_ARENA_WAIT_NS;
        for (;;) {
            uint64_t st = atomic_load_explicit(&s->state, memory_order_acquire);
            if (st == SLOT_READY) {
                if (key_is(s, kind, name, fingerprint)) {
                    *why = DBP_ARENA_OK;
                    return (char *)a + s->offset;
                }
                break;                          /* another key's: probe on */
            }
            if (st == SLOT_FREE || (SLOT_IS_WRITING(st) && !process_alive(SLOT_WRITER(st)))) {
                /* Free, or its writer died mid-write: take it (a dead
                 * writer's space, if it took any, stays unused). */
                if (!atomic_compare_exchange_strong(&s->state, &st, me))
                    continue;                   /* someone else did: look again */
                void *block = fill(a, s, kind, name, fingerprint, size, init, arg);
                if (block != NULL)
                    *why = DBP_ARENA_OK;
                return block;                   /* NULL: full */
            }
            if (dbp_now_ns() > deadline) {     /* a live writer, slow: not now */
                *why = DBP_ARENA_BUSY;
                return NULL;
            }
            sched_yield();
        }
    }
    return NULL;                                /* every slot taken by other keys */
}

/* ---- the process's instance arena ---------------------------------------- */

/* Set by nginx's master before fork, from one thread; read by its
 * children (and threads there) afterwards. */
static _Atomic(dbp_arena *) instance;

dbp_status dbp_arena_open_instance(void)
{
    dbp_arena *old = atomic_load(&instance);
    dbp_arena *a = dbp_arena_new(DBP_ARENA_BYTES, DBP_ARENA_SLOTS);

    atomic_store(&instance, a);
    /* The master never claims from its own arena, so it holds no pointer
     * into the old one; the workers forked with it keep their mapping. */
    if (old != NULL && old->creator == (int)getpid())
        dbp_arena_free(old);
    return a != NULL ? DBP_OK : DBP_NOMEM;
}

dbp_arena *dbp_arena_instance(dbp_arena_why *why)
{
    dbp_arena *a = atomic_load(&instance);

    if (a != NULL && a->creator == (int)getpid())
        a = NULL;
    if (why != NULL)
        *why = a != NULL ? DBP_ARENA_OK : DBP_ARENA_ABSENT;
    return a;
}

bool dbp_arena_mapped_here(void)
{
    dbp_arena *a = atomic_load(&instance);

    return a != NULL && a->creator == (int)getpid();
}

const char *dbp_arena_why_text(dbp_arena_why why)
{
    switch (why) {
    case DBP_ARENA_OK:
        return "in the instance arena";
    case DBP_ARENA_ABSENT:
        return "no instance arena: dbpool was not loaded in nginx's master "
               "(require \"dbpool\" in init_by_lua*)";
    case DBP_ARENA_FULL:
        return "the instance arena is full";
    case DBP_ARENA_BUSY:
        return "the instance arena's slot for it was being written by another process for too long";
    }
    return "?";
}

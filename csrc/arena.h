/* arena.h: the instance arena, shared memory for the tables of engines
 * declared in nginx's workers.
 *
 * A table that every worker of an nginx instance shares (shstats.h, cap.h)
 * must be mapped before nginx's master forks them.  An engine declared in
 * init_by_lua gets its own mapping then; one declared in a worker
 * (init_worker_by_lua, or on a first request) comes too late for that.  So
 * when dbpool is loaded in the master, it maps one region before fork
 * (dbp_arena_open_instance): a directory of keyed slots and a bump area.
 * A worker claims a block by key (dbp_arena_claim): every worker that asks
 * with the same key gets the same block, a new key a new block.
 *
 * Anonymous shared pages cost memory only once touched: the reserve is
 * virtual, and each table costs what its workers write into it.
 *
 * Lock rules: none between processes.  A slot is taken by compare-and-swap
 * of its state word (free -> being written by pid -> ready); the winner
 * takes space with a compare-and-swap on the bump offset, writes the key,
 * runs the caller's init and publishes "ready" with a release store;
 * readers load the state with acquire.  A claimant that finds a slot being
 * written waits a bounded time (DBP_ARENA_WAIT_NS), and takes the slot over
 * when its writer is dead; nothing a killed process leaves behind blocks
 * another.  Blocks are never freed: an arena lives as long as the workers
 * of its generation. */
#ifndef DBP_ARENA_H
#define DBP_ARENA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"

typedef struct dbp_arena dbp_arena;

/* What a block holds; part of its key. */
typedef enum dbp_arena_kind {
    DBP_ARENA_STATS = 1,      /* a pool's shstats table */
    DBP_ARENA_CAP = 2         /* a pool's max_total_connections table */
} dbp_arena_kind;

/* Why a claim gave no block. */
typedef enum dbp_arena_why {
    DBP_ARENA_OK = 0,
    DBP_ARENA_ABSENT,         /* no arena in this process (not mapped by a parent) */
    DBP_ARENA_FULL,           /* no slot or no space left for the block */
    DBP_ARENA_BUSY            /* the key's slot stayed "being written" past the wait */
} dbp_arena_why;

/* The instance's reserve: room for 32 shstats tables (about 256 KiB each,
 * shstats.c checks it) and their caps, in DBP_ARENA_SLOTS slots. */
#define DBP_ARENA_BYTES (9u * 1024 * 1024)
#define DBP_ARENA_SLOTS 96

/* Longest key name (an engine name, "<name>/replica<i>" for replicas). */
#define DBP_ARENA_NAME 95

/* How long a claimant waits for a slot that another process is writing. */
#define DBP_ARENA_WAIT_NS (200 * 1000 * 1000)

/* Maps an arena of bytes (directory included) with slots directory slots,
 * all free, owned by the calling process (its creator: claims are for its
 * children, see dbp_arena_instance).  NULL when the mapping fails or bytes
 * cannot hold the directory. */
dbp_arena *dbp_arena_new(size_t bytes, int slots);

/* Unmaps this process's view; processes forked meanwhile keep theirs.
 * NULL is a no-op. */
void dbp_arena_free(dbp_arena *a);

/* The block of size bytes keyed by (kind, name, fingerprint), claimed now
 * if no process of the arena claimed it yet: then init(block, arg) runs on
 * the zero-filled block before any other process can see it (init may be
 * NULL).  Every process asking with the same key gets the same block at
 * its own address; size must be the same for a key.  Returns NULL and sets
 * *why (may be NULL) when the arena is full, the name longer than
 * DBP_ARENA_NAME, or the key's slot was being written by a live process
 * for DBP_ARENA_WAIT_NS.  Waits at most that long; never fails otherwise. */
void *dbp_arena_claim(dbp_arena *a, dbp_arena_kind kind, const char *name, uint64_t fingerprint,
                      size_t size, void (*init)(void *block, void *arg), void *arg,
                      dbp_arena_why *why);

/* Bytes of the bump area handed out so far (rounded blocks). */
size_t dbp_arena_used(const dbp_arena *a);

/* ---- the process's instance arena ---------------------------------------- */

/* Maps a fresh instance arena for the processes this one forks from now on
 * (nginx's master in init_by_lua, at start and at each reload: a new
 * generation of workers gets a new arena, the old workers keep theirs).
 * The previous one, if this process made it, is unmapped here only.
 * DBP_NOMEM when the mapping fails (the previous one is then dropped too:
 * workers fall back to tables of their own).  Not thread-safe against
 * dbp_arena_instance in this process: call it before fork, from one thread. */
DBP_MUSTCHECK dbp_status dbp_arena_open_instance(void);

/* The arena that a parent mapped before forking this process, or NULL:
 * none was mapped, or this process mapped it (the master, whose own tables
 * are mapped before fork anyway).  *why (may be NULL) says DBP_ARENA_ABSENT
 * when NULL. */
dbp_arena *dbp_arena_instance(dbp_arena_why *why);

/* True when the calling process mapped the current instance arena (the
 * master: what it maps itself before fork is the instance's anyway). */
bool dbp_arena_mapped_here(void);

/* A short sentence for a why, for logs: "the instance arena is full". */
const char *dbp_arena_why_text(dbp_arena_why why);

#endif

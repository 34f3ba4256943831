/* cap.h: max_total_connections, one cap on connections shared by every
 * process forked after the pool was made (nginx workers forked from the
 * master that ran init_by_lua).
 *
 * The counters live in memory mapped MAP_SHARED | MAP_ANONYMOUS by
 * dbp_cap_new, so a fork()ed child counts against the same number as its
 * parent; an engine declared in an nginx worker takes its table from the
 * instance arena instead (dbp_cap_share).  One entry per process (claimed on its first take) records what
 * that process holds, so that the units of a process that died without
 * giving them back (a crashed worker: the server closed its connections)
 * can be taken back.
 *
 * Lock rules: none.  Every field is an atomic; a take is a compare-and-swap
 * on the shared total, so the cap is exact across processes without a lock
 * between them.  Callable with or without the pool's lock held (no I/O;
 * a take that finds the cap full checks other processes with kill(pid, 0)). */
#ifndef DBP_CAP_H
#define DBP_CAP_H

#include <stdbool.h>
#include <stdint.h>

#include "common.h"

typedef struct dbp_cap dbp_cap;

/* Maps a table for at most limit units, all free.  Fails (DBP_NOMEM) only
 * when the mapping cannot be made. */
DBP_MUSTCHECK dbp_status dbp_cap_new(int limit, dbp_cap **out);

/* The cap table of engine name for limit units: in a worker of an nginx
 * master that mapped an instance arena (arena.h), the one every worker
 * claims by (name, limit), so that the cap holds across the instance's
 * workers for an engine declared in them; else dbp_cap_new's (in the
 * master, before fork: the instance's too).  Falls back to dbp_cap_new
 * when the arena is full.  Fails (DBP_NOMEM) only when no mapping can be
 * made. */
DBP_MUSTCHECK dbp_status dbp_cap_share(const char *name, int limit, dbp_cap **out);

/* Unmaps this process's view (not a table of the instance arena, which
 * lives as long as its workers); other processes keep theirs. */
void dbp_cap_free(dbp_cap *cap);

/* Takes one unit for the calling process, if the cap allows.  A full cap
 * is first relieved of what dead processes held.  On refusal records that
 * this process wanted a unit (dbp_cap_wanted_elsewhere) and returns false;
 * also false when more processes than the table holds use the cap. */
bool dbp_cap_take(dbp_cap *cap);

/* Gives back n units the calling process took (connections closed, or
 * never opened). */
void dbp_cap_give_back(dbp_cap *cap, int n);

/* True when another process found the cap full within the last moment
 * (DBP_CAP_WANT_NS before now): then a pool keeps no idle spare, so that a
 * process that once held the whole cap does not keep it idle while the
 * others' checkouts time out. */
bool dbp_cap_wanted_elsewhere(const dbp_cap *cap, int64_t now);

/* How long a process's refused take counts as a want for the others. */
#define DBP_CAP_WANT_NS (200 * 1000 * 1000)

/* Units held by all processes together, and by the calling one. */
int dbp_cap_open(const dbp_cap *cap);
int dbp_cap_open_here(const dbp_cap *cap);

#endif

/* registry.h: the process-wide table of named engines (name -> pool).
 * Every Lua state and thread of the process that opens an engine by name
 * gets the same pool.  Pools live until the process ends: a Lua state that
 * goes away must not take a pool other states still use with it. */
#ifndef DBP_REGISTRY_H
#define DBP_REGISTRY_H

#include "common.h"
#include "config.h"
#include "error.h"
#include "pool.h"

/* Returns the pool registered under cfg->name, creating it when new.  The
 * same name with different options fails with DBP_INVALID naming the keys
 * that differ (values are not shown: a DSN may hold a password).
 * *created says whether this call made it. */
DBP_MUSTCHECK dbp_status dbp_registry_open(const dbp_config *cfg, dbp_pool **out,
                                           int *created, dbp_error *err);

/* The pool registered under name, or NULL. */
dbp_pool *dbp_registry_find(const char *name);

/* Takes name out of the registry and disposes its pool (pool.h): its idle
 * connections close, checked-out ones close on return.  The pool itself
 * stays allocated for the process's life, since Lua handles may still
 * point at it; it is no longer found, listed or reused; its numbers stay
 * in the instance's table under nginx (dbp_shstats_leave).  Returns false
 * when no pool has that name. */
bool dbp_registry_remove(const char *name);

/* Fills out with up to max registered pools, oldest first; returns how many
 * there are in all (may exceed max). */
int dbp_registry_list(dbp_pool **out, int max);

#endif

/* lua_ngx_wait.h: nginx's event loop watching libpq's socket
 * (lua_ngx_wait.c). */
#ifndef DBP_LUA_NGX_WAIT_H
#define DBP_LUA_NGX_WAIT_H

#include "compat.h"
#include "conn.h"

/* The id of the ngx.semaphore that conn's socket posts when it becomes
 * ready, making the watch if there is none yet (new_id, the next id, and
 * new_sem, its semaphore's address, are used only when no freed id can be
 * reused).  0 with *why when there is none to be had (not in a worker's
 * event loop, shutting down, no free nginx connection): then poll.  -1
 * with *why when new_id is not the next id or memory ran out.  Only on the
 * worker's event loop thread.  No lua_State: also the FFI path's. */
int dbp_ngx_watch(dbp_conn *conn, int new_id, void *new_sem, const char **why);

/* Is nginx closing this process's Lua VM at its exit (a worker's or the
 * master's)?  Then finalizers must not call back into Lua: ngx.log reads the
 * request that init_worker_by_lua* left on the main thread, long freed.
 * False outside nginx.  Either build. */
bool dbp_ngx_cycle_closed(void);

/* Adds core.ngx_wait_ready and core.ngx_wait_counts to the core table on top
 * of the stack, and the internal method conn:_ngx_watch to the Conn methods
 * (the Conn metatable must be filled first). */
void dbp_lua_open_ngx_wait(lua_State *L);

#endif

/* lua_ngx_wait.h: nginx's event loop watching libpq's socket
 * (lua_ngx_wait.c). */
#ifndef DBP_LUA_NGX_WAIT_H
#define DBP_LUA_NGX_WAIT_H

#include "compat.h"

/* Adds core.ngx_wait_ready and core.ngx_wait_counts to the core table on top
 * of the stack, and the internal method conn:_ngx_watch to the Conn methods
 * (the Conn metatable must be filled first). */
void dbp_lua_open_ngx_wait(lua_State *L);

#endif

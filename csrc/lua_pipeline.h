/* lua_pipeline.h: the steps of conn:pipeline and conn:stream
 * (lua_pipeline.c). */
#ifndef DBP_LUA_PIPELINE_H
#define DBP_LUA_PIPELINE_H

#include "compat.h"

/* Adds the internal _pipeline_*, _stream_* and _drain methods to the Conn
 * methods (after dbp_lua_open_conn). */
void dbp_lua_open_pipeline(lua_State *L);

#endif

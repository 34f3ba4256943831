/* lua_ffi.h: what the LuaJIT FFI path needs of the classic binding
 * (lua_ffi.c). */
#ifndef DBP_LUA_FFI_H
#define DBP_LUA_FFI_H

#include "compat.h"

/* Adds core._ffi_api, core._ffi_pool, core._ffi_log_notices,
 * core._ffi_push_result and core._ffi_adopt to the core table on top of
 * the stack. */
void dbp_lua_open_ffi(lua_State *L);

#endif

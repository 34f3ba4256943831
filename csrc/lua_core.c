/* lua_core.c: luaopen_dbpool_core, the only exported symbol.  It only opens
 * the binding's modules, each of which adds its functions to the core table
 * or fills its metatable. */
#include "lua_config.h"
#include "lua_conn.h"
#include "lua_decode.h"
#include "lua_copy.h"
#include "lua_error.h"
#include "lua_ffi.h"
#include "lua_listen.h"
#include "lua_ngx_wait.h"
#include "lua_params.h"
#include "lua_pipeline.h"
#include "lua_policy.h"
#include "lua_pool.h"
#include "lua_registry.h"
#include "lua_util.h"

#define DBP_EXPORT __attribute__((visibility("default")))

DBP_EXPORT int luaopen_dbpool_core(lua_State *L)
{
    dbp_lua_open_metatables(L);
    lua_newtable(L);                              /* core */
    dbp_lua_open_error(L);
    dbp_lua_open_conn(L);
    dbp_lua_open_pipeline(L);
    dbp_lua_open_copy(L);
    dbp_lua_open_pool(L);
    dbp_lua_open_params(L);
    dbp_lua_open_decode(L);
    dbp_lua_open_registry(L);
    dbp_lua_open_config(L);
    dbp_lua_open_policy(L);
    dbp_lua_open_listen(L);
    dbp_lua_open_ngx_wait(L);              /* after the Conn and Listener methods */
    dbp_lua_open_ffi(L);
    return 1;
}

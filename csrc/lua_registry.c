/* lua_registry.c: core.open, core.find and core.pools: the process-wide
 * registry of pools (registry.h), shared by every Lua state and thread. */
#include "lua_config.h"
#include "lua_error.h"
#include "lua_params.h"
#include "lua_pool.h"
#include "lua_registry.h"
#include "registry.h"

/* core.open(options[, warm[, replica]]) -> pool, created.  Raises on bad
 * options or when the name is taken with other options.  Opens connections
 * only for min_idle, unless warm is false (under nginx: a timer warms the
 * pool); a failure there is not fatal (the pool connects on demand), and is
 * returned as a third value (its message) for the caller to log.  replica
 * (an integer >= 1): the pool is the replica of that number of the engine
 * options.name, registered as "<name>/replica<i>" (config.h), a name no
 * engine may take. */
static int core_open(lua_State *L)
{
    dbp_config cfg;
    dbp_error err;
    dbp_pool *p = NULL;
    int created = 0;
    dbp_status st;
    bool warm = lua_isnoneornil(L, 2) || lua_toboolean(L, 2);
    lua_Integer replica = luaL_optinteger(L, 3, 0);

    luaL_argcheck(L, replica >= 0 && replica <= 1000000, 3, "a replica number from 1 expected");
    dbp_lua_read_config(L, 1, &cfg);                /* may raise; owns nothing then */
    st = replica > 0 ? dbp_config_name_replica(&cfg, (int)replica, &err) : DBP_OK;
    if (st == DBP_OK)
        st = dbp_registry_open(&cfg, &p, &created, &err);
    dbp_config_free(&cfg);
    if (st != DBP_OK)
        return luaL_error(L, "dbpool: %s", err.message);
    dbp_lua_push_pool(L, p);
    lua_pushboolean(L, created);
    if (created && warm && dbp_pool_refill(p, &err) != DBP_OK) {
        lua_pushstring(L, err.message);             /* pool, created, why */
        return 3;
    }
    return 2;
}

/* core.find(name) -> the registry pool of that name, opened by any Lua
 * state or thread of this process, or nil. */
static int core_find(lua_State *L)
{
    dbp_pool *p = dbp_registry_find(dbp_lua_check_cstring(L, 1, "find", NULL));

    if (p == NULL)
        return 0;
    dbp_lua_push_pool(L, p);
    return 1;
}

/* core.pools() -> every registry pool of the process, oldest first: what
 * dbpool.metrics() renders, whichever Lua state created them. */
static int core_pools(lua_State *L)
{
    dbp_pool *stack[64], **list = stack;
    int n = dbp_registry_list(stack, 64);

    if (n > 64) {            /* GC-owned scratch: nothing leaks if we raise */
        list = lua_newuserdata(L, (size_t)n * sizeof *list);
        n = dbp_registry_list(list, n);
    }
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        dbp_lua_push_pool(L, list[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* core.remove(name) -> true | false: the pool of that name disposed and
 * out of the registry (registry.h), or no such name. */
static int core_remove(lua_State *L)
{
    lua_pushboolean(L, dbp_registry_remove(luaL_checkstring(L, 1)));
    return 1;
}

static const luaL_Reg registry_functions[] = {
    {"remove", core_remove},
    {"open", core_open},
    {"find", core_find},
    {"pools", core_pools},
    {NULL, NULL},
};

void dbp_lua_open_registry(lua_State *L)
{
    luaL_setfuncs(L, registry_functions, 0);
}

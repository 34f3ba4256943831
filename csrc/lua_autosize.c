/* lua_autosize.c: pool_size = "auto" from Lua (autosize.h): the sizing
 * step an nginx worker's timer runs, dbpool.budget's allowance, and the
 * autosize table of stats().  Outside nginx the refill thread runs the
 * steps; the resizes it made are logged by lua_log.c at the engine's next
 * echo_pool event. */
#include "autosize.h"
#include "lua_log.h"
#include "lua_pool.h"

#define SET_NUM(name, v) (lua_pushnumber(L, (v)), lua_setfield(L, -2, name))
#define SET_INT(name, v) (lua_pushinteger(L, (lua_Integer)(v)), lua_setfield(L, -2, name))

/* stats().autosize: {min=, max=, interval=, limit=} and, once there was a
 * step, target= (the size it set) and its inputs {rate=, hold=, busy=, p99=,
 * processes=, window=} (under nginx the instance's decision's, with
 * decision= its number and instance_target= the instance's size); nil for
 * a pool without "auto". */
void dbp_lua_push_autosize(lua_State *L, dbp_pool *p)
{
    const dbp_config *cfg = dbp_pool_config(p);
    dbp_resize r;
    bool decided;

    if (!cfg->pool_size_auto) {
        lua_pushnil(L);
        return;
    }
    decided = dbp_pool_autosize_last(p, &r);
    lua_createtable(L, 0, 10);
    SET_INT("min", cfg->auto_min);
    SET_INT("max", cfg->auto_max);
    SET_NUM("interval", cfg->auto_interval);
    SET_INT("limit", dbp_pool_autosize_limit_get(p));
    if (!decided)
        return;
    SET_INT("target", r.to);
    SET_NUM("rate", r.rate);
    SET_NUM("hold", r.hold);
    SET_NUM("busy", r.busy);
    SET_INT("p99", r.p99);
    SET_INT("processes", r.processes);
    SET_NUM("window", r.window);
    if (r.decision > 0) {
        SET_INT("decision", r.decision);
        SET_INT("instance_target", r.target);
    }
}

/* pool:autosize_step([worker]) -> grow: one sizing step now (an nginx
 * worker's timer, worker = ngx.worker.id(): this worker's share of the
 * instance's decision, dbp_pool_autosize_step_instance; elsewhere the
 * refill thread's job), its resize logged with echo_pool.  grow is true
 * when the pool holds fewer connections than its new size: the caller then
 * refills (pool:refill_start).  Raises when worker is not an integer. */
static int pool_autosize_step(lua_State *L)
{
    dbp_pool *p = dbp_lua_check_pool(L, 1);
    bool grow = lua_isnoneornil(L, 2)
                    ? dbp_pool_autosize_step(p, NULL)
                    : dbp_pool_autosize_step_instance(p, (int)luaL_checkinteger(L, 2), NULL);

    if (dbp_pool_config(p)->echo_pool)
        dbp_lua_log_resizes(L, p);
    lua_pushboolean(L, grow);
    return 1;
}

/* pool:autosize_leave(): this nginx worker stops sizing the pool (it is
 * exiting): the instance's lease, if it holds it, goes to the next worker
 * that steps.  Returns nothing; never raises but on a bad pool. */
static int pool_autosize_leave(lua_State *L)
{
    dbp_pool_autosize_leave(dbp_lua_check_pool(L, 1));
    return 0;
}

/* pool:size_limit(n): dbpool.budget's allowance, the most this process's
 * size may be (0: none); applied at the next step.  Raises on a bad n. */
static int pool_size_limit(lua_State *L)
{
    dbp_pool *p = dbp_lua_check_pool(L, 1);
    lua_Integer n = luaL_checkinteger(L, 2);

    luaL_argcheck(L, n >= 0 && n <= 1000000, 2, "a limit must be an integer from 0 to 1000000");
    dbp_pool_autosize_limit(p, (int)n);
    return 0;
}

/* pool:autosize_interval() -> seconds between steps; 0 without "auto". */
static int pool_autosize_interval(lua_State *L)
{
    lua_pushnumber(L, dbp_pool_autosize_interval(dbp_lua_check_pool(L, 1)));
    return 1;
}

const luaL_Reg dbp_lua_autosize_methods[] = {
    {"autosize_step", pool_autosize_step},
    {"size_limit", pool_size_limit},
    {"autosize_leave", pool_autosize_leave},
    {"autosize_interval", pool_autosize_interval},
    {NULL, NULL},
};

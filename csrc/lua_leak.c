/* lua_leak.c: where checkouts came from, and telling the app about leaks
 * through dbpool.log.
 *
 * Every checkout records its site ("app.lua:42"), so that a connection the
 * garbage collector returns can say where it was checked out.  With
 * leak_threshold set, a checkout also records its full Lua traceback and the
 * pool reports, once, each one held longer than that: when another checkout
 * of the engine happens after the deadline, or at its return. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua_dbpool.h"

#define MAX_REPORTS 8

void dbp_lua_log(lua_State *L, const char *level, const char *message)
{
    int top = lua_gettop(L);

    /* package.loaded.dbpool.log: the settable function of DESIGN.md. */
    lua_getfield(L, LUA_REGISTRYINDEX, "_LOADED");
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "dbpool");
        if (lua_istable(L, -1)) {
            lua_getfield(L, -1, "log");
            if (lua_isfunction(L, -1)) {
                lua_pushstring(L, message);
                lua_pushstring(L, level);
                if (lua_pcall(L, 2, 0, 0) == LUA_OK) {
                    lua_settop(L, top);
                    return;
                }
            }
        }
    }
    lua_settop(L, top);
    fprintf(stderr, "dbpool [%s] %s\n", level, message);
}

static int ends_with(const char *s, size_t n, const char *suffix, size_t len)
{
    return n >= len && memcmp(s + n - len, suffix, len) == 0;
}

/* Is this the source of one of dbpool's own Lua files that check out for
 * the app (the Engine wrappers, and under nginx the yielding checkout),
 * which are never the interesting caller? */
static int is_own_source(const char *src)
{
    static const char init[] = "dbpool/init.lua", ngx[] = "dbpool/ngx.lua";
    size_t n = strlen(src);
    return ends_with(src, n, init, sizeof init - 1) || ends_with(src, n, ngx, sizeof ngx - 1);
}

void dbp_lua_checkout_site(lua_State *L, dbp_site *site)
{
    lua_Debug ar;

    /* No formatting here: this runs at every checkout; the text is built
     * only if a leak is ever reported. */
    for (int level = 1; lua_getstack(L, level, &ar); level++) {
        /* One call for both: the caller's frame is nearly always the one
         * kept, so a second lua_getinfo for the line costs more than the
         * line of a skipped frame of ours. */
        if (!lua_getinfo(L, "Sl", &ar) || ar.what[0] == 'C' || is_own_source(ar.source) ||
            ar.currentline < 0)
            continue;
        memcpy(site->src, ar.short_src, sizeof site->src);
        site->src[sizeof site->src - 1] = '\0';
        site->line = ar.currentline;
        return;
    }
    site->src[0] = '?';
    site->src[1] = '\0';
    site->line = 0;
}

static void report(lua_State *L, const dbp_pool *p, const char *when, double held,
                   const char *trace)
{
    const dbp_config *cfg = dbp_pool_config((dbp_pool *)p);

    lua_pushfstring(L, "engine %s: connection %s %f s, longer than leak_threshold (%f s); %s",
                    cfg->name, when, held, cfg->leak_threshold, trace);
    dbp_lua_log(L, "warn", lua_tostring(L, -1));
    lua_pop(L, 1);
}

void dbp_lua_track_checkout(lua_State *L, dbp_pool *p, dbp_slot *s)
{
    dbp_leak leaks[MAX_REPORTS];
    const char *tb;
    char *trace;
    int n;

    luaL_traceback(L, L, "checked out at:", 1);
    tb = lua_tostring(L, -1);
    trace = tb ? strdup(tb) : NULL;
    lua_pop(L, 1);
    dbp_pool_track(p, s, trace);
    n = dbp_pool_overdue(p, leaks, MAX_REPORTS);
    for (int i = 0; i < n; i++) {
        report(L, p, "held for", leaks[i].held, leaks[i].trace);
        free(leaks[i].trace);
    }
}

void dbp_lua_report_return(lua_State *L, dbp_pool *p, dbp_slot *s)
{
    double held = 0;
    char *trace = dbp_slot_take_overdue(p, s, &held);

    if (trace == NULL)
        return;
    report(L, p, "returned after", held, trace);
    free(trace);
}

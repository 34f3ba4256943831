/* lua_log.c: everything dbpool tells the app, through dbpool.log (the
 * settable function of DESIGN.md; stderr when dbpool is not loaded).  The
 * binding's one logging seam.
 *
 * echo logs each statement before it is sent, and its parameters only with
 * echo_params (they are data: personal, secret).  The statement's constants
 * are shown as placeholders, $n after its own parameters, as
 * pg_stat_statements shows them (redact_sql.c): a secret may sit in any
 * literal (PASSWORD '...', a conninfo string, a key).
 * echo_pool logs pool events: checkout (with connect, recycle, invalidate,
 * wait), checkin, invalidate, timeout and connect failures, breaker
 * open/close.  Nothing here runs unless the option is on.
 *
 * Leaks: every checkout records its site ("app.lua:42"), so that a
 * connection the garbage collector returns can say where it was checked
 * out.  With leak_threshold set, a checkout also records its full Lua
 * traceback and the pool reports, once, each one held longer than that:
 * when another checkout of the engine happens after the deadline, or at its
 * return.
 *
 * Server notices (RAISE NOTICE, WARNING, INFO; startup notices too) are
 * queued on their connection by the core (notice.h) and logged here, after
 * each binding call that may have read them: "warn" for a WARNING, "debug"
 * for the rest (NOTICE, INFO, LOG, DEBUG: what the default dbpool.log
 * prints only under nginx, at ngx.DEBUG). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "autosize.h"
#include "lua_log.h"
#include "lua_ngx_wait.h"
#include "redact.h"

#define MAX_REPORTS 8

void dbp_lua_log(lua_State *L, const char *level, const char *message)
{
    int top = lua_gettop(L);

    /* A worker that exits closes its VM, and a connection still checked
     * out says so from its finalizer: not through Lua then (see
     * dbp_ngx_cycle_closed), but to stderr, which nginx sends to its
     * error log. */
    if (dbp_ngx_cycle_closed())
        goto to_stderr;
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
to_stderr:
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

/* ===== echo and echo_pool ============================================== */

/* A dbp_redact sink: appends to the luaL_Buffer ud. */
static void add_to_buffer(void *ud, const char *s, size_t n)
{
    luaL_addlstring(ud, s, n);
}

void dbp_lua_echo_statement(lua_State *L, dbp_pool *p, const dbp_statement *stmt)
{
    const dbp_config *cfg = dbp_pool_config(p);
    const char *const *values = stmt->values;
    const int *formats = stmt->formats;
    int nparams = stmt->nparams;
    luaL_Buffer b;

    luaL_buffinit(L, &b);
    lua_pushfstring(L, "engine %s: ", cfg->name);
    luaL_addvalue(&b);
    dbp_redact(DBP_TEXT_SQL, stmt->sql, NULL, add_to_buffer, &b);   /* constants: $n */
    if (nparams > 0 && cfg->echo_params) {
        luaL_addstring(&b, "  -- params:");
        for (int i = 0; i < nparams; i++) {
            lua_pushfstring(L, " $%d=", i + 1);
            luaL_addvalue(&b);
            if (values[i] == NULL)
                luaL_addstring(&b, "NULL");
            else if (formats != NULL && formats[i] == 1)
                luaL_addstring(&b, "(binary)");
            else {
                luaL_addchar(&b, '\'');
                luaL_addstring(&b, values[i]);
                luaL_addchar(&b, '\'');
            }
        }
    } else if (nparams > 0) {
        lua_pushfstring(L, "  -- %d params (not shown; set echo_params to show them)", nparams);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    dbp_lua_log(L, "info", lua_tostring(L, -1));
    lua_pop(L, 1);
}

static void add_events(luaL_Buffer *b, unsigned events)
{
    static const struct { unsigned bit; const char *text; } names[] = {
        {DBP_EV_WAIT, "waited"},
        {DBP_EV_RECYCLE, "recycled an old connection"},
        {DBP_EV_INVALIDATE, "replaced a dead or invalidated connection"},
        {DBP_EV_CONNECT, "connected"},
        {DBP_EV_BREAKER_CLOSE, "circuit breaker closed"},
        {DBP_EV_BREAKER_OPEN, "circuit breaker opened"},
    };
    int first = 1;

    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!(events & names[i].bit))
            continue;
        luaL_addstring(b, first ? " (" : ", ");
        luaL_addstring(b, names[i].text);
        first = 0;
    }
    if (!first)
        luaL_addchar(b, ')');
}

static void log_event(lua_State *L, dbp_pool *p, const char *level, const char *what,
                      unsigned events, const char *message)
{
    luaL_Buffer b;

    luaL_buffinit(L, &b);
    lua_pushfstring(L, "engine %s: %s", dbp_pool_config(p)->name, what);
    luaL_addvalue(&b);
    add_events(&b, events);
    if (message != NULL) {
        luaL_addstring(&b, ": ");
        luaL_addstring(&b, message);      /* already free of passwords */
    }
    luaL_pushresult(&b);
    dbp_lua_log(L, level, lua_tostring(L, -1));
    lua_pop(L, 1);
}

/* One resize: "engine KG: pool_size auto 2 -> 9 (12.3 checkouts/s x 0.0150 s
 * mean hold = 0.18 busy; p99 in use 9; closed 0 idle)"; under nginx one
 * line per instance decision: "engine KG: pool_size auto 2 -> 9 for the
 * instance of 2 workers (decision 7: ...; shares by worker id 0:5 1:4)", and a
 * worker's step to its share that closed connections: "engine KG: this
 * worker's share of pool_size auto 5 -> 2, of the instance's 4 (decision
 * 8): closed 1 idle, oldest first". */
static void log_resize(lua_State *L, dbp_pool *p, const dbp_resize *r)
{
    char text[512];

    if (r->share_step) {
        snprintf(text, sizeof text,
                 "engine %s: this worker's share of pool_size auto %d -> %d, of the instance's "
                 "%d (decision %llu): closed %d idle, oldest first",
                 dbp_pool_config(p)->name, r->from, r->to, r->target,
                 (unsigned long long)r->decision, r->closed);
        dbp_lua_log(L, "info", text);
        return;
    }
    if (r->decision > 0) {
        int w = r->processes > 0 ? r->processes : 1;
        char shares[192] = "";
        size_t len = 0;
        for (int id = 0; id < 64 && len < sizeof shares - 16; id++)
            if (r->shares[id] > 0)
                len += (size_t)snprintf(shares + len, sizeof shares - len, "%s%d:%d",
                                        len > 0 ? " " : "", id, r->shares[id]);
        snprintf(text, sizeof text,
                 "engine %s: pool_size auto %d -> %d for the instance of %d workers (decision "
                 "%llu: %.2f checkouts/s x %.4f s mean hold = %.2f busy; p99 in use %d, the "
                 "workers' summed; over %.2f s; shares by worker id %s%s)",
                 dbp_pool_config(p)->name, r->from, r->to, w, (unsigned long long)r->decision,
                 r->rate, r->hold, r->busy, r->p99, r->window, shares,
                 r->limit > 0 ? "; dbpool.budget's limit applies" : "");
        dbp_lua_log(L, "info", text);
        return;
    }
    snprintf(text, sizeof text,
             "engine %s: pool_size auto %d -> %d (%.2f checkouts/s x %.4f s mean hold%s = "
             "%.2f busy%s; p99 in use %d; closed %d idle, oldest first%s)",
             dbp_pool_config(p)->name, r->from, r->to, r->rate, r->hold,
             r->processes > 1 ? " over the instance" : "", r->busy,
             r->processes > 1 ? " per worker" : "", r->p99, r->closed,
             r->limit > 0 ? "; dbpool.budget's limit applies" : "");
    dbp_lua_log(L, "info", text);
}

void dbp_lua_log_resizes(lua_State *L, dbp_pool *p)
{
    dbp_resize r[DBP_AUTO_LOG];
    unsigned lost;
    int n = dbp_pool_take_resizes(p, r, DBP_AUTO_LOG, &lost);

    if (lost > 0) {
        lua_pushfstring(L, "engine %s: %d earlier pool_size auto resizes not logged (none "
                        "logged them in time)", dbp_pool_config(p)->name, (int)lost);
        dbp_lua_log(L, "info", lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    for (int i = 0; i < n; i++)
        log_resize(L, p, &r[i]);
}

void dbp_lua_echo_checkout(lua_State *L, dbp_pool *p, dbp_status st, unsigned events,
                           const dbp_error *err)
{
    dbp_lua_log_resizes(L, p);            /* the refill thread's, since the last event */
    switch (st) {
    case DBP_OK:
        log_event(L, p, "info", "checkout", events, NULL);
        break;
    case DBP_AGAIN:
        break;                              /* not an event: the caller waits its own way */
    case DBP_TIMEOUT:
        log_event(L, p, "warn", "checkout timed out", events, err->message);
        break;
    case DBP_CIRCUIT_OPEN:
        log_event(L, p, "warn", "checkout refused", events, err->message);
        break;
    default:
        log_event(L, p, "warn", "checkout failed", events, err->message);
        break;
    }
}

void dbp_lua_echo_checkin(lua_State *L, dbp_pool *p, unsigned events, bool invalidated)
{
    const char *what = invalidated ? "invalidate (closed)"
                       : (events & DBP_EV_INVALIDATE) ? "checkin (broken: closed)"
                       : (events & DBP_EV_CLOSE) ? "checkin (closed)"
                                                 : "checkin";
    log_event(L, p, "info", what, 0, NULL);
    dbp_lua_log_resizes(L, p);
}

void dbp_lua_log_gc_leak(lua_State *L, dbp_pool *p, const dbp_site *site)
{
    lua_pushfstring(L,
                    "engine %s: connection checked out at %s:%d was never closed; "
                    "returned by the garbage collector",
                    dbp_pool_config(p)->name, site->src, site->line);
    dbp_lua_log(L, "warn", lua_tostring(L, -1));
    lua_pop(L, 1);
}

/* ===== server notices ================================================== */

void dbp_lua_log_notices_slow(lua_State *L, dbp_pool *p, dbp_notices *q)
{
    const char *name = dbp_pool_config(p)->name;
    char text[DBP_NOTICE_TEXT];
    bool warning;
    unsigned dropped;

    /* One at a time into a buffer of ours: nothing malloc'd is held while
     * Lua runs (dbpool.log, or a memory error in lua_pushfstring). */
    while (dbp_notices_pop(q, &warning, text, sizeof text)) {
        lua_pushfstring(L, "engine %s: %s", name, text);
        dbp_lua_log(L, warning ? "warn" : "debug", lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    if ((dropped = dbp_notices_take_dropped(q)) > 0) {
        lua_pushfstring(L, "engine %s: %d more server notices dropped (dbpool keeps %d "
                           "between two calls)", name, (int)dropped, DBP_NOTICES_MAX);
        dbp_lua_log(L, "warn", lua_tostring(L, -1));
        lua_pop(L, 1);
    }
}

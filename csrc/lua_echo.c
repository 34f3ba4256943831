/* lua_echo.c: echo and echo_pool, logged through dbpool.log.
 *
 * echo logs each statement before it is sent, and its parameters only with
 * echo_params (they are data: personal, secret).  The string constant after
 * the word PASSWORD (CREATE/ALTER ROLE ... PASSWORD '...') is shown as '***'
 * (redact.c's DBP_TEXT_SQL).
 * echo_pool logs pool events: checkout (with connect, recycle, invalidate,
 * wait), checkin, invalidate, timeout and connect failures, breaker
 * open/close.  Nothing here runs unless the option is on. */
#include "lua_dbpool.h"
#include "redact.h"

/* A dbp_redact sink: appends to the luaL_Buffer ud. */
static void add_to_buffer(void *ud, const char *s, size_t n)
{
    luaL_addlstring(ud, s, n);
}

void dbp_lua_echo_statement(lua_State *L, dbp_pool *p, const char *sql, int nparams,
                            const char *const *values, const int *formats)
{
    const dbp_config *cfg = dbp_pool_config(p);
    luaL_Buffer b;

    luaL_buffinit(L, &b);
    lua_pushfstring(L, "engine %s: ", cfg->name);
    luaL_addvalue(&b);
    dbp_redact(DBP_TEXT_SQL, sql, NULL, add_to_buffer, &b);   /* PASSWORD '***' */
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

void dbp_lua_echo_checkout(lua_State *L, dbp_pool *p, dbp_status st, unsigned events,
                           const dbp_error *err)
{
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
}

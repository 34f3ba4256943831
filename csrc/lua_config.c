/* lua_config.c: an option table from Lua into a dbp_config, through the
 * descriptors of config.c.  Types are checked here (Lua knows them), bounds
 * in config.c.  Numeric strings are not numbers: "5" for pool_size is an
 * error, as a typo in a config file should be. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "lua_config.h"
#include "conninfo.h"
#include "lua_params.h"

/* A string short and plain enough to be a mistyped word ("rolback", "5"),
 * not a DSN or a password pasted into the wrong option. */
static bool plain_word(const char *s, size_t len)
{
    if (len > 32)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && strchr("_-. ", s[i]) == NULL)
            return false;
    return true;
}

/* "string \"5\"", "boolean true", "a table": what the user gave.  String
 * values are shown only for enum-like and numeric options, and only when
 * they are plain words: never a DSN or a password. */
static void describe(lua_State *L, int idx, const dbp_option *o, char *out, size_t size)
{
    size_t len;
    const char *s;

    switch (lua_type(L, idx)) {
    case LUA_TSTRING:
        s = lua_tolstring(L, idx, &len);
        if ((o->type == DBP_OPT_RESET || o->type == DBP_OPT_SESSION || o->type == DBP_OPT_ROLE ||
             o->type == DBP_OPT_NUMERIC ||
             o->type == DBP_OPT_INT || o->type == DBP_OPT_NUMBER || o->type == DBP_OPT_BOOL) &&
            plain_word(s, len))
            snprintf(out, size, "string \"%s\"", s);
        else
            snprintf(out, size, "a string");
        break;
    case LUA_TNUMBER:
        snprintf(out, size, "number %.14g", (double)lua_tonumber(L, idx));
        break;
    case LUA_TBOOLEAN:
        snprintf(out, size, "boolean %s", lua_toboolean(L, idx) ? "true" : "false");
        break;
    default:
        snprintf(out, size, "%s", luaL_typename(L, idx));
        break;
    }
}

static dbp_status type_error(lua_State *L, int idx, const dbp_option *o, dbp_error *err)
{
    char got[96];

    describe(L, idx, o, got, sizeof got);
    return dbp_error_set(err, DBP_INVALID, "option '%s' must be %s, got %s", o->name,
                         o->must_be, got);
}

/* A string at idx that C would cut at a zero byte. */
static bool cut_by_zero(lua_State *L, int idx)
{
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    return strlen(s) != len;
}

static dbp_status read_string(lua_State *L, int idx, const dbp_option *o, dbp_config *c,
                              dbp_error *err)
{
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);

    if (strlen(s) != len)
        return dbp_error_set(err, DBP_INVALID, "option '%s' must not contain a zero byte",
                             o->name);
    return dbp_config_set_string(c, o, s, err);
}

static dbp_status read_list(lua_State *L, int idx, const dbp_option *o, dbp_config *c,
                            dbp_error *err)
{
    size_t n = lua_rawlen(L, idx);
    dbp_status st = DBP_OK;

    for (size_t i = 1; i <= n && st == DBP_OK; i++) {
        lua_rawgeti(L, idx, (int)i);                      /* list[i] */
        if (lua_type(L, -1) != LUA_TSTRING)
            st = dbp_error_set(err, DBP_INVALID, "option '%s' must be %s, got %s at [%d]",
                               o->name, o->must_be, luaL_typename(L, -1), (int)i);
        else if (cut_by_zero(L, -1))
            st = dbp_error_set(err, DBP_INVALID, "option '%s' must not contain a zero byte "
                               "(at [%d])", o->name, (int)i);
        else
            st = dbp_config_add_replica(c, lua_tostring(L, -1), err);
        lua_pop(L, 1);
    }
    return st;
}

static dbp_status read_option(lua_State *L, int idx, const dbp_option *o, dbp_config *c,
                              dbp_error *err);

/* decoders = { int4 = fn, [16385] = fn }: only checked here; each Lua state
 * keeps its own functions (dbpool.core's set_decoders), as functions cannot
 * cross Lua states.  A key is a type name or an OID (1 to 2^32 - 1). */
static dbp_status check_decoders(lua_State *L, int idx, const dbp_option *o, dbp_error *err)
{
    dbp_status st = DBP_OK;

    lua_pushnil(L);
    while (st == DBP_OK && lua_next(L, idx) != 0) {       /* key, value */
        int kt = lua_type(L, -2);
        double oid = kt == LUA_TNUMBER ? (double)lua_tonumber(L, -2) : 0;
        if (kt == LUA_TSTRING && (lua_rawlen(L, -2) == 0 || cut_by_zero(L, -2)))
            st = dbp_error_set(err, DBP_INVALID, "option '%s' must be %s, got an empty name or "
                               "one with a zero byte", o->name, o->must_be);
        else if (kt == LUA_TNUMBER && !(oid >= 1 && oid <= 4294967295.0 && oid == (double)(long long)oid))
            st = dbp_error_set(err, DBP_INVALID, "option '%s' must be %s, got the key %.14g "
                               "(an OID is a whole number from 1 to 4294967295)", o->name,
                               o->must_be, oid);
        else if (kt != LUA_TSTRING && kt != LUA_TNUMBER)
            st = dbp_error_set(err, DBP_INVALID, "option '%s' must be %s, got a %s key",
                               o->name, o->must_be, luaL_typename(L, -2));
        else if (lua_type(L, -1) != LUA_TFUNCTION) {
            lua_pushvalue(L, -2);                         /* key, value, key copy */
            st = dbp_error_set(err, DBP_INVALID, "option '%s' must be %s, got %s at [%s]",
                               o->name, o->must_be, luaL_typename(L, -2), lua_tostring(L, -1));
            lua_pop(L, 1);
        }
        lua_pop(L, 1);                                   /* value */
    }
    if (st != DBP_OK)
        lua_pop(L, 1);                                   /* the key lua_next left */
    return st;
}

/* retry = {attempts=, base=, max=}: each key is the option "retry.<key>". */
static dbp_status read_table(lua_State *L, int idx, const dbp_option *o, dbp_config *c,
                             dbp_error *err)
{
    char full[96], prefix[48];
    dbp_status st = DBP_OK;

    snprintf(prefix, sizeof prefix, "%s.", o->name);
    lua_pushnil(L);
    while (st == DBP_OK && lua_next(L, idx) != 0) {       /* key, value */
        const dbp_option *sub = NULL;
        if (lua_type(L, -2) == LUA_TSTRING && cut_by_zero(L, -2)) {
            st = dbp_error_set(err, DBP_INVALID, "option names must not contain a zero byte "
                               "(in '%s')", o->name);
            lua_pop(L, 1);
            break;
        }
        if (lua_type(L, -2) == LUA_TSTRING) {
            snprintf(full, sizeof full, "%s%s", prefix, lua_tostring(L, -2));
            sub = dbp_option_find(full);
        }
        if (sub == NULL && lua_type(L, -2) != LUA_TSTRING) {
            /* {2, 5} for {min = 2, max = 5}: say which key, not "auto.?". */
            char key[48];
            if (lua_type(L, -2) == LUA_TNUMBER)
                snprintf(key, sizeof key, "the key [%g]", (double)lua_tonumber(L, -2));
            else
                snprintf(key, sizeof key, "a %s key", luaL_typename(L, -2));
            st = dbp_error_set(err, DBP_INVALID, "option '%s' takes named keys, as in %s = "
                               "{ key = value }, got %s", o->name, o->name, key);
        } else if (sub == NULL) {
            const char *near = lua_type(L, -2) == LUA_TSTRING
                                   ? dbp_option_suggest(lua_tostring(L, -2), prefix)
                                   : NULL;
            st = dbp_error_set(err, DBP_INVALID, "unknown option '%s%s'%s%s%s", prefix,
                               lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?",
                               near ? " (did you mean '" : "", near ? near : "",
                               near ? "'?)" : "");
        } else {
            st = read_option(L, lua_gettop(L), sub, c, err);
        }
        lua_pop(L, 1);                                   /* value */
    }
    if (st != DBP_OK)
        lua_pop(L, 1);                                   /* the key lua_next left */
    return st;
}

static dbp_status read_option(lua_State *L, int idx, const dbp_option *o, dbp_config *c,
                              dbp_error *err)
{
    int t = lua_type(L, idx);

    switch (o->type) {
    case DBP_OPT_INT:
    case DBP_OPT_NUMBER:
        if (t == LUA_TSTRING && dbp_option_takes_auto(o) &&
            strcmp(lua_tostring(L, idx), "auto") == 0)
            return read_string(L, idx, o, c, err);        /* pool_size = "auto" */
        if (t != LUA_TNUMBER)
            return type_error(L, idx, o, err);
        return dbp_config_set_number(c, o, (double)lua_tonumber(L, idx), err);
    case DBP_OPT_BOOL:
        if (t != LUA_TBOOLEAN)
            return type_error(L, idx, o, err);
        return dbp_config_set_bool(c, o, lua_toboolean(L, idx), err);
    case DBP_OPT_STRING:
    case DBP_OPT_ROLE:
    case DBP_OPT_NUMERIC:
        if (t != LUA_TSTRING)
            return type_error(L, idx, o, err);
        return read_string(L, idx, o, c, err);
    case DBP_OPT_RESET:
    case DBP_OPT_SESSION:
        if (t == LUA_TBOOLEAN)
            return dbp_config_set_bool(c, o, lua_toboolean(L, idx), err);
        if (t != LUA_TSTRING)
            return type_error(L, idx, o, err);
        return read_string(L, idx, o, c, err);
    case DBP_OPT_LIST:
        if (t != LUA_TTABLE)
            return type_error(L, idx, o, err);
        return read_list(L, idx, o, c, err);
    case DBP_OPT_TABLE:
        if (t != LUA_TTABLE)
            return type_error(L, idx, o, err);
        return read_table(L, idx, o, c, err);
    case DBP_OPT_DECODERS:
        if (t != LUA_TTABLE)
            return type_error(L, idx, o, err);
        return check_decoders(L, idx, o, err);
    case DBP_OPT_LUA:
        return DBP_OK;                                   /* the Lua layer's business */
    }
    return DBP_OK;
}

/* Walks every key so that an unknown one is reported even if it sorts
 * after a valid one.  Errors leave the stack as it was. */
static dbp_status read_all(lua_State *L, int idx, dbp_config *c, dbp_error *err)
{
    dbp_status st = DBP_OK;

    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {                      /* key, value */
        const dbp_option *o = NULL;
        if (lua_type(L, -2) != LUA_TSTRING) {
            st = dbp_error_set(err, DBP_INVALID, "option names must be strings, got %s",
                               luaL_typename(L, -2));
        } else if (cut_by_zero(L, -2)) {
            st = dbp_error_set(err, DBP_INVALID, "option names must not contain a zero byte");
        } else {
            const char *key = lua_tostring(L, -2);
            o = dbp_option_find(key);
            if (o == NULL || strchr(key, '.') != NULL) {
                const char *near = dbp_option_suggest(key, NULL);
                st = dbp_error_set(err, DBP_INVALID, "unknown option '%s'%s%s%s", key,
                                   near ? " (did you mean '" : "", near ? near : "",
                                   near ? "'?)" : "");
            } else {
                st = read_option(L, lua_gettop(L), o, c, err);
            }
        }
        lua_pop(L, 1);                                   /* value */
        if (st != DBP_OK) {
            lua_pop(L, 1);                               /* key */
            return st;
        }
    }
    return dbp_config_finish(c, err);
}

void dbp_lua_read_config(lua_State *L, int idx, dbp_config *c)
{
    dbp_error err;

    idx = lua_absindex(L, idx);
    luaL_checktype(L, idx, LUA_TTABLE);
    dbp_config_init(c);
    if (read_all(L, idx, c, &err) != DBP_OK) {
        dbp_config_free(c);              /* nothing malloc'd survives the raise */
        luaL_error(L, "dbpool: %s", err.message);
    }
}

/* core.redact(dsn) -> the DSN as an engine would show it (every secret
 * replaced by "***", conninfo.h) | nil, why (libpq refuses it; why hides
 * whatever might be a secret). */
static int core_redact(lua_State *L)
{
    dbp_conninfo *ci = NULL;
    dbp_error err;

    if (dbp_conninfo_new(NULL, dbp_lua_check_cstring(L, 1, "redact", NULL), "dsn", &ci, &err) !=
        DBP_OK) {
        lua_pushnil(L);
        lua_pushstring(L, err.message);
        return 2;
    }
    lua_pushstring(L, dbp_conninfo_shown(ci));
    dbp_conninfo_free(ci);
    return 1;
}

/* core.options() -> the known option names, in DESIGN.md's order. */
static int core_options(lua_State *L)
{
    int n = 0;

    lua_newtable(L);
    for (const dbp_option *o = dbp_options; o->name != NULL; o++) {
        lua_pushstring(L, o->name);
        lua_rawseti(L, -2, ++n);
    }
    return 1;
}

/* core.suggest(name[, prefix]) -> the nearest known option name, or nil. */
static int core_suggest(lua_State *L)
{
    const char *near = dbp_option_suggest(luaL_checkstring(L, 1), luaL_optstring(L, 2, NULL));

    if (near == NULL)
        return 0;
    lua_pushstring(L, near);
    return 1;
}

static const luaL_Reg config_functions[] = {
    {"redact", core_redact},
    {"options", core_options},
    {"suggest", core_suggest},
    {NULL, NULL},
};

void dbp_lua_open_config(lua_State *L)
{
    luaL_setfuncs(L, config_functions, 0);
}

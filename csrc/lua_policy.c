/* lua_policy.c: core.check(subjects, rules) -> { sentence, ... }.
 * subjects: a list of option tables or dbpool.Pool handles; rules: a list of
 * rule tables (lua/dbpool/policy.lua documents their shape).  Evaluation is
 * policy.c's dbp_policy_check; this file only translates.  Also
 * core.capacity(subject): config.c's dbp_config_capacity, for Lua code
 * that plans with options before any engine exists (dbpool.budget). */
#include <math.h>
#include <string.h>

#include "lua_config.h"
#include "lua_policy.h"
#include "lua_pool.h"
#include "lua_util.h"
#include "policy.h"

#define CONFIGS_MT "dbpool.ConfigList"

/* Configs read from option tables, freed by __gc: a raise while reading the
 * next one loses nothing. */
typedef struct config_list {
    int n;
    dbp_config cfgs[];
} config_list;

static int config_list_gc(lua_State *L)
{
    config_list *cl = luaL_checkudata(L, 1, CONFIGS_MT);
    for (int i = 0; i < cl->n; i++)
        dbp_config_free(&cl->cfgs[i]);
    cl->n = 0;
    return 0;
}

static const dbp_option *rule_option(lua_State *L, int rule, const char *field, int i)
{
    const dbp_option *o;

    size_t len;

    lua_getfield(L, rule, field);
    if (lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "dbpool: policy rule %d: '%s' must be an option name, got %s", i, field,
                   luaL_typename(L, -1));
    if (strlen(lua_tolstring(L, -1, &len)) != len)
        luaL_error(L, "dbpool: policy rule %d: '%s' must not contain a zero byte", i, field);
    o = dbp_option_find(lua_tostring(L, -1));
    if (o == NULL || o->type == DBP_OPT_LIST || o->type == DBP_OPT_TABLE ||
        o->type == DBP_OPT_LUA || o->type == DBP_OPT_STRING || o->type == DBP_OPT_DECODERS)
        luaL_error(L, "dbpool: policy rule %d: '%s' is not an option a rule can bound", i,
                   lua_tostring(L, -1));
    lua_pop(L, 1);
    return o;
}

static double opt_number(lua_State *L, int t, const char *field, double dflt, int i)
{
    double v;

    lua_getfield(L, t, field);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return dflt;
    }
    if (lua_type(L, -1) != LUA_TNUMBER)
        luaL_error(L, "dbpool: policy rule %d: '%s' must be a number, got %s", i, field,
                   luaL_typename(L, -1));
    v = lua_tonumber(L, -1);
    if (isnan(v))
        luaL_error(L, "dbpool: policy rule %d: '%s' must be a number, got nan", i, field);
    lua_pop(L, 1);
    return v;
}

/* {option=, equals=} takes a boolean, a number, or an enum's string. */
static double equals_value(lua_State *L, const dbp_option *o, int i)
{
    dbp_config scratch;
    dbp_error err;
    double v = NAN;

    if (lua_type(L, -1) == LUA_TBOOLEAN)
        return lua_toboolean(L, -1) ? 1 : 0;
    if (lua_type(L, -1) == LUA_TNUMBER)
        return lua_tonumber(L, -1);
    if (lua_type(L, -1) == LUA_TSTRING && strlen(lua_tostring(L, -1)) == lua_rawlen(L, -1)) {
        dbp_config_init(&scratch);
        if (dbp_config_set_string(&scratch, o, lua_tostring(L, -1), &err) == DBP_OK)
            v = dbp_option_value(&scratch, o);
        dbp_config_free(&scratch);
        if (!isnan(v))
            return v;
    }
    return luaL_error(L, "dbpool: policy rule %d: 'equals' is not a value of '%s'", i, o->name);
}

/* Raises unless every key of the table at t is one of allowed (a
 * NULL-terminated list): a typo ({ capacity = { mni = 30 } }) would
 * otherwise check nothing and say nothing.  what names the table. */
static void check_keys(lua_State *L, int t, const char *const *allowed, const char *what, int i)
{
    t = lua_absindex(L, t);
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        bool ok = false;
        lua_pop(L, 1);                                   /* the value */
        if (lua_type(L, -1) == LUA_TSTRING)
            for (const char *const *a = allowed; *a != NULL && !ok; a++)
                ok = strcmp(*a, lua_tostring(L, -1)) == 0;
        if (!ok) {
            luaL_Buffer b;
            luaL_buffinit(L, &b);
            for (const char *const *a = allowed; *a != NULL; a++) {
                luaL_addstring(&b, a == allowed ? "" : ", ");
                luaL_addstring(&b, *a);
            }
            luaL_pushresult(&b);
            luaL_error(L, "dbpool: policy rule %d: unknown key %s%s%s in %s (known: %s)", i,
                       lua_type(L, -2) == LUA_TSTRING ? "'" : "",
                       lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : luaL_typename(L, -2),
                       lua_type(L, -2) == LUA_TSTRING ? "'" : "", what, lua_tostring(L, -1));
        }
    }
}

static const char *const bounds_keys[] = {"min", "max", NULL};
static const char *const capacity_keys[] = {"capacity", NULL};
static const char *const total_capacity_keys[] = {"total_capacity", NULL};
static const char *const equals_keys[] = {"option", "equals", NULL};
static const char *const ratio_keys[] = {"option", "at_least", "times", NULL};
static const char *const range_keys[] = {"option", "min", "max", NULL};

static void read_rule(lua_State *L, int rule, dbp_policy_rule *r, int i)
{
    luaL_checkstack(L, 6, NULL);
    if (!lua_istable(L, rule))
        luaL_error(L, "dbpool: policy rule %d must be a table, got %s", i, luaL_typename(L, rule));
    memset(r, 0, sizeof *r);
    r->a = -HUGE_VAL;
    r->b = HUGE_VAL;
    lua_getfield(L, rule, "capacity");
    lua_getfield(L, rule, "total_capacity");
    if (!lua_isnil(L, -2) || !lua_isnil(L, -1)) {       /* capacity, total_capacity */
        int t = lua_istable(L, -2) ? -2 : -1;
        if (!lua_istable(L, t))
            luaL_error(L, "dbpool: policy rule %d: capacity bounds must be a table {min=, max=}", i);
        r->kind = t == -2 ? DBP_RULE_CAPACITY : DBP_RULE_TOTAL_CAPACITY;
        check_keys(L, rule, t == -2 ? capacity_keys : total_capacity_keys, "the rule", i);
        t = lua_absindex(L, t);
        check_keys(L, t, bounds_keys, r->kind == DBP_RULE_CAPACITY ? "capacity" : "total_capacity", i);
        r->a = opt_number(L, t, "min", -HUGE_VAL, i);
        r->b = opt_number(L, t, "max", HUGE_VAL, i);
        if (isinf(r->a) && isinf(r->b))
            luaL_error(L, "dbpool: policy rule %d: capacity bounds need min or max", i);
        lua_pop(L, 2);
        return;
    }
    lua_pop(L, 2);
    r->option = rule_option(L, rule, "option", i);
    lua_getfield(L, rule, "equals");
    if (!lua_isnil(L, -1)) {
        r->kind = DBP_RULE_EQUALS;
        check_keys(L, rule, equals_keys, "the rule", i);
        r->a = equals_value(L, r->option, i);
        lua_pop(L, 1);
        return;
    }
    lua_pop(L, 1);
    lua_getfield(L, rule, "times");
    if (!lua_isnil(L, -1)) {
        lua_pop(L, 1);
        r->kind = DBP_RULE_RATIO;
        check_keys(L, rule, ratio_keys, "the rule", i);
        r->other = rule_option(L, rule, "times", i);
        r->factor = opt_number(L, rule, "at_least", NAN, i);
        if (isnan(r->factor))
            luaL_error(L, "dbpool: policy rule %d: a ratio needs 'at_least' (a factor)", i);
        return;
    }
    lua_pop(L, 1);
    check_keys(L, rule, range_keys, "the rule", i);
    r->a = opt_number(L, rule, "min", -HUGE_VAL, i);
    r->b = opt_number(L, rule, "max", HUGE_VAL, i);
    if (isinf(r->a) && isinf(r->b))
        luaL_error(L, "dbpool: policy rule %d: give min, max, equals, or at_least with times", i);
    r->kind = DBP_RULE_RANGE;
}

static void collect(void *ud, const char *sentence)
{
    lua_State *L = ud;
    lua_pushstring(L, sentence);
    lua_rawseti(L, -2, (int)lua_rawlen(L, -2) + 1);    /* violations[#+1] = sentence */
}

static int core_check(lua_State *L)
{
    int nsub, nrules;
    dbp_policy_rule *rules;
    const dbp_config **ptrs;
    config_list *owned;

    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    nsub = (int)lua_rawlen(L, 1);
    nrules = (int)lua_rawlen(L, 2);
    rules = lua_newuserdata(L, (size_t)(nrules + 1) * sizeof *rules);          /* 3 */
    ptrs = lua_newuserdata(L, (size_t)(nsub + 1) * sizeof *ptrs);              /* 4 */
    owned = lua_newuserdata(L, sizeof *owned + (size_t)(nsub + 1) * sizeof(dbp_config)); /* 5 */
    owned->n = 0;
    luaL_setmetatable(L, CONFIGS_MT);
    for (int i = 0; i < nrules; i++) {
        lua_rawgeti(L, 2, i + 1);
        read_rule(L, lua_gettop(L), &rules[i], i + 1);
        lua_pop(L, 1);
    }
    for (int i = 0; i < nsub; i++) {
        lua_rawgeti(L, 1, i + 1);
        dbp_pool *pool = dbp_lua_test_pool(L, -1);
        if (pool != NULL) {
            ptrs[i] = dbp_pool_config(pool);
        } else {
            dbp_lua_read_config(L, -1, &owned->cfgs[owned->n]);   /* raises on bad options */
            ptrs[i] = &owned->cfgs[owned->n++];
        }
        lua_pop(L, 1);
    }
    lua_newtable(L);                                                         /* violations */
    dbp_policy_check(ptrs, nsub, rules, nrules, collect, L);
    return 1;
}

/* core.capacity(subject) -> pool_size + max_overflow, or math.huge when
 * unbounded; subject is a dbpool.Pool or an option table (name and dsn
 * required, as for core.check).  Raises on bad options. */
static int core_capacity(lua_State *L)
{
    dbp_pool *pool = dbp_lua_test_pool(L, 1);
    dbp_config cfg;
    double capacity;

    if (pool != NULL) {
        capacity = dbp_config_capacity(dbp_pool_config(pool));
    } else {
        dbp_lua_read_config(L, 1, &cfg);                 /* raises on bad options */
        capacity = dbp_config_capacity(&cfg);
        dbp_config_free(&cfg);
    }
    dbp_lua_push_capacity(L, capacity);
    return 1;
}

void dbp_lua_open_policy(lua_State *L)
{
    luaL_newmetatable(L, CONFIGS_MT);
    lua_pushcfunction(L, config_list_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    lua_pushcfunction(L, core_check);
    lua_setfield(L, -2, "check");                /* into the core table on top */
    lua_pushcfunction(L, core_capacity);
    lua_setfield(L, -2, "capacity");
}

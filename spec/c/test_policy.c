/* test_policy.c: policy rules evaluated by policy.c, without Lua. */
#include <math.h>

#include "policy.h"
#include "testlib.h"

static char seen[8][256];
static int nseen;

static void collect(void *ud, const char *sentence)
{
    (void)ud;
    if (nseen < 8)
        snprintf(seen[nseen], sizeof seen[nseen], "%s", sentence);
    nseen++;
}

static int run(const dbp_config *const *cfgs, int n, const dbp_policy_rule *rules, int nrules)
{
    nseen = 0;
    return dbp_policy_check(cfgs, n, rules, nrules, collect, NULL);
}

int main(void)
{
    dbp_config a, b;
    const dbp_option *size = dbp_option_find("pool_size");
    const dbp_option *overflow = dbp_option_find("max_overflow");
    const dbp_option *timeout = dbp_option_find("pool_timeout");
    const dbp_option *ping = dbp_option_find("pool_pre_ping");

    dbp_config_init(&a);
    dbp_config_init(&b);
    a.name = "KG";
    b.name = "US";
    const dbp_config *both[] = {&a, &b};

    dbp_policy_rule production[] = {
        {DBP_RULE_RANGE, size, NULL, 10, HUGE_VAL, 0},
        {DBP_RULE_RATIO, overflow, size, 0, 0, 2},
        {DBP_RULE_CAPACITY, NULL, NULL, 30, HUGE_VAL, 0},
        {DBP_RULE_EQUALS, ping, NULL, 1, 0, 0},
        {DBP_RULE_RANGE, timeout, NULL, 10, 60, 0},
    };
    /* Defaults: pool_size 5, max_overflow 10, pool_timeout 30, no pre-ping. */
    is_int(run(both, 2, production, 5), 6, "defaults break three rules in each of two engines");
    is_str(seen[0], "KG: pool_size is 5, must be at least 10", "min sentence");
    is_str(seen[1], "US: pool_size is 5, must be at least 10", "every engine is checked");
    is_str(seen[2], "KG: capacity (pool_size + max_overflow) is 15, must be at least 30",
           "capacity sentence");
    is_str(seen[4], "KG: pool_pre_ping is false, must be true", "equals sentence");

    a.pool_size = 10;
    a.max_overflow = 15;
    is_int(run(both, 1, production, 2), 1, "ratio: 15 < 2 x 10");
    is_str(seen[0], "KG: max_overflow is 15, must be at least 2 x pool_size (20)", "ratio sentence");
    a.max_overflow = -1;
    is_int(run(both, 1, production, 3), 0, "unbounded overflow meets ratio and capacity minimums");

    dbp_policy_rule test[] = {
        {DBP_RULE_TOTAL_CAPACITY, NULL, NULL, -HUGE_VAL, 20, 0},
        {DBP_RULE_RANGE, timeout, NULL, -HUGE_VAL, 5, 0},
    };
    a.max_overflow = 5;   /* 15 + 15 = 30 */
    a.pool_timeout = 5;
    b.pool_timeout = 5;
    is_int(run(both, 2, test, 2), 1, "total capacity is summed across engines");
    is_str(seen[0], "total capacity across 2 engines is 30, must be at most 20", "total sentence");
    b.pool_size = 0;
    is_int(run(both, 2, test, 1), 1, "pool_size 0 is unbounded capacity");
    is_str(seen[0], "total capacity across 2 engines is unbounded, must be at most 20",
           "unbounded sentence");
    ok(isinf(dbp_config_capacity(&b)), "capacity helper: pool_size 0 is unbounded");
    return done_testing();
}

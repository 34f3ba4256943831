/* policy.h: policies, lists of rules checked against one or more engines'
 * options (pool_size >= 10, max_overflow >= 2 x pool_size, capacity and
 * total capacity bounds).  Every violation becomes one sentence naming the
 * option, its value and the bound; evaluation never stops at the first, so
 * an app is told everything at once.  The sentences are the same from C,
 * Lua (lua_policy.c) and the busted assertions.  Pure C: no Lua, no libpq. */
#ifndef DBP_POLICY_H
#define DBP_POLICY_H

#include "config.h"

typedef enum dbp_policy_rule_kind {
    DBP_RULE_MIN,              /* option >= a */
    DBP_RULE_MAX,              /* option <= b */
    DBP_RULE_RANGE,            /* a <= option <= b */
    DBP_RULE_EQUALS,           /* option == a (booleans as 0/1) */
    DBP_RULE_RATIO,            /* option >= factor x other */
    DBP_RULE_CAPACITY,         /* a <= dbp_config_capacity <= b, per engine */
    DBP_RULE_TOTAL_CAPACITY    /* a <= sum of capacities <= b, across engines */
} dbp_policy_rule_kind;

typedef struct dbp_policy_rule {
    dbp_policy_rule_kind kind;
    const dbp_option *option;  /* MIN, MAX, RANGE, EQUALS, RATIO */
    const dbp_option *other;   /* RATIO */
    double a, b;               /* bounds; -HUGE_VAL / HUGE_VAL when open */
    double factor;             /* RATIO */
} dbp_policy_rule;

/* Called once per violation with the sentence (engine name first when the
 * rule is per engine).  Returns nothing; collects as the caller likes. */
typedef void (*dbp_policy_report_fn)(void *ud, const char *sentence);

/* Checks n configs against nrules rules, calling report for each violation
 * in rule order (engines in the given order within a rule); returns the
 * number of violations.  Unbounded capacity (see dbp_config_capacity) meets
 * any minimum, including a ratio against pool_size, and breaks any maximum;
 * the sentence says "unbounded".  Cannot fail. */
int dbp_policy_check(const dbp_config *const *cfgs, int n, const dbp_policy_rule *rules,
                     int nrules, dbp_policy_report_fn report, void *ud);

#endif

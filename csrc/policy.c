/* policy.c: policy evaluation (policy.h).  Options are read as numbers
 * through config.c (dbp_option_value, dbp_config_capacity), so a rule
 * bounds any numeric, boolean or enum option without knowing it. */
#include "policy.h"

#include <math.h>
#include <stdio.h>

/* "5", "0.5", "true", "unbounded": a value as a sentence shows it. */
static void show(char *out, size_t size, const dbp_option *o, double v)
{
    if (o != NULL && o->type == DBP_OPT_BOOL)
        snprintf(out, size, "%s", v != 0 ? "true" : "false");
    else if (o != NULL && o->type == DBP_OPT_RESET)
        snprintf(out, size, "%s", v == DBP_RESET_ROLLBACK ? "\"rollback\""
                                  : v == DBP_RESET_COMMIT ? "\"commit\"" : "false");
    else if (o != NULL && o->type == DBP_OPT_SESSION)
        snprintf(out, size, "%s", v == DBP_SESSION_AUTO ? "\"auto\""
                                  : v == DBP_SESSION_ALWAYS ? "\"always\"" : "false");
    else if (o != NULL && o->type == DBP_OPT_NUMERIC)
        snprintf(out, size, "%s", v == DBP_NUMERIC_STRING ? "\"string\"" : "\"number\"");
    else if (o != NULL && o->type == DBP_OPT_ROLE)
        snprintf(out, size, "%s", v == DBP_ROLE_PRIMARY ? "\"primary\"" : "\"any\"");
    else if (isinf(v))
        snprintf(out, size, "unbounded");
    else
        snprintf(out, size, "%g", v);
}

static void bounds_text(char *out, size_t size, double a, double b)
{
    char lo[32], hi[32];

    show(lo, sizeof lo, NULL, a);
    show(hi, sizeof hi, NULL, b);
    if (isinf(a))
        snprintf(out, size, "at most %s", hi);
    else if (isinf(b))
        snprintf(out, size, "at least %s", lo);
    else
        snprintf(out, size, "within %s..%s", lo, hi);
}

static int in_bounds(double v, double a, double b)
{
    return v >= a && v <= b;
}

/* An option's name as a sentence shows it: under pool_size = "auto" the
 * value policies see for pool_size is auto.max, and the sentence says so. */
static const char *label(const dbp_config *c, const dbp_option *o)
{
    return c->pool_size_auto && dbp_option_takes_auto(o) ? "pool_size (auto.max)" : o->name;
}

/* One rule against one engine: 1 and a sentence when violated. */
static int check_one(const dbp_config *c, const dbp_policy_rule *r, char *out, size_t size)
{
    char val[32], want[96], other[32];
    double v;

    switch (r->kind) {
    case DBP_RULE_MIN:
    case DBP_RULE_MAX:
    case DBP_RULE_RANGE:
        v = dbp_option_value(c, r->option);
        if (in_bounds(v, r->a, r->b))
            return 0;
        show(val, sizeof val, r->option, v);
        bounds_text(want, sizeof want, r->a, r->b);
        snprintf(out, size, "%s: %s is %s, must be %s", c->name, label(c, r->option), val, want);
        return 1;
    case DBP_RULE_EQUALS:
        v = dbp_option_value(c, r->option);
        if (v == r->a)
            return 0;
        show(val, sizeof val, r->option, v);
        show(want, sizeof want, r->option, r->a);
        snprintf(out, size, "%s: %s is %s, must be %s", c->name, label(c, r->option), val, want);
        return 1;
    case DBP_RULE_RATIO: {
        double base = dbp_option_value(c, r->other);
        v = dbp_option_value(c, r->option);
        /* -1 (unbounded overflow) satisfies any lower bound. */
        if ((r->option->minus_one_ok && v == -1) || v >= r->factor * base)
            return 0;
        show(val, sizeof val, r->option, v);
        show(other, sizeof other, NULL, r->factor * base);
        snprintf(out, size, "%s: %s is %s, must be at least %g x %s (%s)", c->name,
                 label(c, r->option), val, r->factor, label(c, r->other), other);
        return 1;
    }
    case DBP_RULE_CAPACITY:
        v = dbp_config_capacity(c);
        if (in_bounds(v, r->a, r->b))
            return 0;
        show(val, sizeof val, NULL, v);
        bounds_text(want, sizeof want, r->a, r->b);
        snprintf(out, size, "%s: capacity (%s + max_overflow) is %s, must be %s", c->name,
                 c->pool_size_auto ? "auto.max" : "pool_size", val, want);
        return 1;
    case DBP_RULE_TOTAL_CAPACITY:
        return 0;   /* across engines: see dbp_policy_check */
    }
    return 0;
}

int dbp_policy_check(const dbp_config *const *cfgs, int n, const dbp_policy_rule *rules,
                     int nrules, dbp_policy_report_fn report, void *ud)
{
    char sentence[512], val[32], want[96];
    int violations = 0;

    for (int i = 0; i < nrules; i++) {
        const dbp_policy_rule *r = &rules[i];
        if (r->kind == DBP_RULE_TOTAL_CAPACITY) {
            double total = 0;
            for (int j = 0; j < n; j++)
                total += dbp_config_capacity(cfgs[j]);
            if (in_bounds(total, r->a, r->b))
                continue;
            show(val, sizeof val, NULL, total);
            bounds_text(want, sizeof want, r->a, r->b);
            snprintf(sentence, sizeof sentence,
                     "total capacity across %d engine%s is %s, must be %s", n,
                     n == 1 ? "" : "s", val, want);
            report(ud, sentence);
            violations++;
            continue;
        }
        for (int j = 0; j < n; j++) {
            if (check_one(cfgs[j], r, sentence, sizeof sentence)) {
                report(ud, sentence);
                violations++;
            }
        }
    }
    return violations;
}

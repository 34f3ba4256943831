/* test_stmt_cache.c: counting, the threshold, recency eviction and renaming
 * of the per-connection statement cache, as pure bookkeeping. */
#include <stdio.h>

#include "stmt_cache.h"
#include "testlib.h"

static void test_threshold(void)
{
    dbp_stmt_cache *c = dbp_stmt_cache_new(3, 10);
    char evicted[24];
    dbp_stmt *s;

    s = dbp_stmt_use(c, "SELECT 1", evicted);
    ok(s != NULL && !dbp_stmt_due(c, s), "first use: not due");
    s = dbp_stmt_use(c, "SELECT 1", evicted);
    ok(!dbp_stmt_due(c, s), "second use: not due");
    s = dbp_stmt_use(c, "SELECT 1", evicted);
    ok(dbp_stmt_due(c, s), "third use with threshold 3: due");
    s->prepared = true;
    s = dbp_stmt_use(c, "SELECT 1", evicted);
    ok(!dbp_stmt_due(c, s) && s->prepared, "once prepared: no longer due");
    is_int(dbp_stmt_use(c, "SELECT 2", evicted)->uses, 1, "another text counts on its own");
    is_str(evicted, "", "nothing evicted below max");
    dbp_stmt_cache_free(c);
}

static void test_eviction_names_prepared_victim(void)
{
    dbp_stmt_cache *c = dbp_stmt_cache_new(1, 2);
    char evicted[24], name_a[24];
    dbp_stmt *a = dbp_stmt_use(c, "A", evicted), *b;
    unsigned prepared;

    a->prepared = true;
    snprintf(name_a, sizeof name_a, "%s", a->name);
    b = dbp_stmt_use(c, "B", evicted);
    b->prepared = true;
    (void)dbp_stmt_use(c, "A", evicted);           /* A is now the most recent */
    (void)dbp_stmt_use(c, "C", evicted);           /* evicts B, the oldest */
    ok(evicted[0] != '\0' && strcmp(evicted, name_a) != 0, "evicts the least recently used (B: %s)", evicted);
    is_int(dbp_stmt_count(c, &prepared), 2, "max 2 texts kept");
    is_int(prepared, 1, "A still prepared");
    (void)dbp_stmt_use(c, "D", evicted);           /* evicts A */
    is_str(evicted, name_a, "the prepared victim's name is handed back for DEALLOCATE");
    (void)dbp_stmt_use(c, "E", evicted);           /* evicts C, never prepared */
    is_str(evicted, "", "an unprepared victim needs no DEALLOCATE");
    dbp_stmt_cache_free(c);
}

static void test_forget_renames(void)
{
    dbp_stmt_cache *c = dbp_stmt_cache_new(2, 4);
    char evicted[24], before[24];
    dbp_stmt *s = dbp_stmt_use(c, "SELECT x", evicted);

    s = dbp_stmt_use(c, "SELECT x", evicted);
    s->prepared = true;
    snprintf(before, sizeof before, "%s", s->name);
    dbp_stmt_forget(c, s);
    ok(!s->prepared && s->uses == 0, "forgotten: unprepared, count reset");
    ok(strcmp(before, s->name) != 0, "and renamed (%s -> %s)", before, s->name);
    s = dbp_stmt_use(c, "SELECT x", evicted);
    ok(!dbp_stmt_due(c, s), "counts to the threshold again");
    ok(dbp_stmt_due(c, dbp_stmt_use(c, "SELECT x", evicted)), "then due again");
    dbp_stmt_cache_free(c);
}

static void test_many_texts(void)
{
    dbp_stmt_cache *c = dbp_stmt_cache_new(1, 100);
    char evicted[24], sql[32];
    int found = 0, evictions = 0;

    for (int i = 0; i < 1000; i++) {               /* many more texts than buckets */
        snprintf(sql, sizeof sql, "SELECT %d", i);
        dbp_stmt *s = dbp_stmt_use(c, sql, evicted);
        s->prepared = true;
        evictions += evicted[0] != '\0';
    }
    is_int(evictions, 900, "every text past max evicted one prepared statement");
    for (int i = 900; i < 1000; i++) {
        snprintf(sql, sizeof sql, "SELECT %d", i);
        found += dbp_stmt_use(c, sql, evicted)->prepared;
    }
    is_int(found, 100, "the 100 most recent are all found again, still prepared");
    is_int(dbp_stmt_count(c, NULL), 100, "and only they are kept");
    dbp_stmt_cache_free(c);
}

int main(void)
{
    test_threshold();
    test_eviction_names_prepared_victim();
    test_forget_renames();
    test_many_texts();
    return done_testing();
}

/* test_notice.c: a connection's queue of server notices (notice.h):
 * order, the bound, the dropped count, cuts on UTF-8 boundaries, and no
 * leak (run under ASan). */
#include "testlib.h"

#include "notice.h"

static void test_order_and_bound(void)
{
    dbp_notices q = {0};
    char buf[DBP_NOTICE_TEXT], text[32];
    bool warning = false;

    ok(dbp_notices_empty(&q), "a new queue is empty");
    ok(!dbp_notices_pop(&q, &warning, buf, sizeof buf), "... and pops nothing");
    for (int i = 1; i <= DBP_NOTICES_MAX + 5; i++) {
        snprintf(text, sizeof text, "n%d", i);
        dbp_notices_push(&q, i % 2 == 0, text);
    }
    ok(!dbp_notices_empty(&q), "a queue with notices is not empty");
    for (int i = 1; i <= DBP_NOTICES_MAX; i++) {
        snprintf(text, sizeof text, "n%d", i);
        if (!dbp_notices_pop(&q, &warning, buf, sizeof buf) || strcmp(buf, text) != 0 ||
            warning != (i % 2 == 0)) {
            ok(0, "notice %d comes out in order with its level (got \"%s\")", i, buf);
            break;
        }
    }
    ok(!dbp_notices_pop(&q, &warning, buf, sizeof buf), "only DBP_NOTICES_MAX are kept");
    ok(!dbp_notices_empty(&q), "... the dropped count still says something happened");
    is_int((int)dbp_notices_take_dropped(&q), 5, "the other 5 are counted as dropped");
    is_int((int)dbp_notices_take_dropped(&q), 0, "... and the count resets");
    ok(dbp_notices_empty(&q), "then the queue is empty");

    dbp_notices_push(&q, false, "wraps around");
    ok(dbp_notices_pop(&q, &warning, buf, sizeof buf), "the ring is reused after a drain");
    is_str(buf, "wraps around", "... with the text");
}

static void test_cuts(void)
{
    dbp_notices q = {0};
    char big[DBP_NOTICE_TEXT + 10], buf[DBP_NOTICE_TEXT], small[6];
    bool warning;

    /* "é" (2 bytes) straddling the cut: the whole character goes. */
    memset(big, 'a', sizeof big);
    big[DBP_NOTICE_TEXT - 2] = (char)0xC3;
    big[DBP_NOTICE_TEXT - 1] = (char)0xA9;
    big[sizeof big - 1] = '\0';
    dbp_notices_push(&q, false, big);
    ok(dbp_notices_pop(&q, &warning, buf, sizeof buf), "a long notice is kept");
    is_int((int)strlen(buf), DBP_NOTICE_TEXT - 2, "... cut before a character it would split");

    dbp_notices_push(&q, false, "ab\xc3\xa9xyz");
    ok(dbp_notices_pop(&q, &warning, small, sizeof small), "popped into a small buffer");
    is_str(small, "ab\xc3\xa9x", "... cut on a character boundary");
    dbp_notices_push(&q, false, "abcd\xc3\xa9");
    ok(dbp_notices_pop(&q, &warning, small, sizeof small), "popped into a small buffer again");
    is_str(small, "abcd", "... never half a character");

    dbp_notices_push(&q, true, "left behind");
    dbp_notices_push(&q, true, "and another");
    dbp_notices_clear(&q);
    ok(dbp_notices_empty(&q), "clear frees every text (ASan: no leak)");
}

int main(void)
{
    test_order_and_bound();
    test_cuts();
    return done_testing();
}

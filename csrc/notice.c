/* notice.c: a connection's queue of server notices (notice.h). */
#include "notice.h"

#include <stdlib.h>
#include <string.h>

/* The longest prefix of s, at most max bytes, that ends on a character
 * boundary: a cut inside a UTF-8 sequence would put invalid UTF-8 in a log. */
static size_t cut_utf8(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;                       /* s[max] continues a character: back off */
    return max;
}

void dbp_notices_push(dbp_notices *q, bool warning, const char *text)
{
    size_t n = cut_utf8(text, strlen(text), DBP_NOTICE_TEXT - 1);
    char *copy;
    int at;

    if (q->count == DBP_NOTICES_MAX || (copy = malloc(n + 1)) == NULL) {
        q->dropped++;
        return;
    }
    memcpy(copy, text, n);
    copy[n] = '\0';
    at = (q->head + q->count) % DBP_NOTICES_MAX;
    q->text[at] = copy;
    q->warning[at] = warning;
    q->count++;
}

bool dbp_notices_pop(dbp_notices *q, bool *warning, char *buf, size_t size)
{
    char *text;
    size_t n;

    if (q->count == 0 || size == 0)
        return false;
    text = q->text[q->head];
    *warning = q->warning[q->head];
    q->text[q->head] = NULL;
    q->head = (q->head + 1) % DBP_NOTICES_MAX;
    q->count--;
    n = cut_utf8(text, strlen(text), size - 1);
    memcpy(buf, text, n);
    buf[n] = '\0';
    free(text);
    return true;
}

unsigned dbp_notices_take_dropped(dbp_notices *q)
{
    unsigned n = q->dropped;

    q->dropped = 0;
    return n;
}

void dbp_notices_clear(dbp_notices *q)
{
    while (q->count > 0) {
        free(q->text[q->head]);
        q->text[q->head] = NULL;
        q->head = (q->head + 1) % DBP_NOTICES_MAX;
        q->count--;
    }
    q->head = 0;
    q->dropped = 0;
}

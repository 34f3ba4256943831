/* notice.h: the server's notices (NOTICE, WARNING, INFO) received on one
 * connection, kept until the Lua binding hands them to dbpool.log.  libpq
 * calls its notice receiver inside whatever call reads the server's
 * messages (a connect step, a statement, a liveness check), where the core
 * has no lua_State; the binding drains the queue after each of its calls.
 *
 * Bounded: DBP_NOTICES_MAX texts of at most DBP_NOTICE_TEXT - 1 bytes each
 * (cut at a UTF-8 character boundary); beyond that, notices are counted and
 * dropped (a RAISE NOTICE in a loop must not grow memory without bound).
 * Not locked: a queue belongs to its connection, used by one thread at a
 * time (the one that holds the slot; the pool's lock hands it over).  Pure
 * C: no libpq, no Lua. */
#ifndef DBP_NOTICE_H
#define DBP_NOTICE_H

#include <stdbool.h>
#include <stddef.h>

#define DBP_NOTICES_MAX 32
#define DBP_NOTICE_TEXT 1024

typedef struct dbp_notices {
    char *text[DBP_NOTICES_MAX];  /* a ring, oldest at head; malloc'd */
    bool warning[DBP_NOTICES_MAX];/* severity WARNING (or worse): "warn", else "info" */
    int head, count;
    unsigned dropped;             /* notices not kept since the last drain */
} dbp_notices;

/* Queues a copy of text (cut to DBP_NOTICE_TEXT - 1 bytes), or counts it as
 * dropped when the queue is full or memory is short.  Cannot fail. */
void dbp_notices_push(dbp_notices *q, bool warning, const char *text);

/* True when nothing is queued and nothing was dropped: the binding's check
 * after every call, one load. */
static inline bool dbp_notices_empty(const dbp_notices *q)
{
    return q->count == 0 && q->dropped == 0;
}

/* Takes the oldest notice into buf (size bytes, NUL-terminated, cut at a
 * UTF-8 boundary when longer) and *warning; false when none is left. */
bool dbp_notices_pop(dbp_notices *q, bool *warning, char *buf, size_t size);

/* How many were dropped since the last call; resets the count. */
unsigned dbp_notices_take_dropped(dbp_notices *q);

/* Frees every queued text; the queue is empty afterwards. */
void dbp_notices_clear(dbp_notices *q);

#endif

/* stmt_cache.h: which statements of one connection are worth preparing.
 *
 * Counts the uses of each SQL text on a connection (at most `max` texts,
 * least recently used evicted first) and says when a text reached the
 * threshold and should be prepared, under a name unique on the connection.
 * Pure bookkeeping: conn.c does the PQprepare, PQexecPrepared and
 * DEALLOCATE.  Not thread-safe: a connection is used by one thread at a
 * time. */
#ifndef DBP_STMT_CACHE_H
#define DBP_STMT_CACHE_H
#include <stdbool.h>
#include <stdint.h>

typedef struct dbp_stmt {
    char name[24];            /* "dbpool_<n>": the server-side statement name */
    bool prepared;            /* conn.c set it after a successful PQprepare */
    unsigned uses;            /* executions counted, this one included */
    /* private: */
    uint64_t hash;
    char *sql;
    struct dbp_stmt *chain, *newer, *older;
} dbp_stmt;

typedef struct dbp_stmt_cache dbp_stmt_cache;

/* NULL when out of memory.  threshold >= 1, max >= 1. */
dbp_stmt_cache *dbp_stmt_cache_new(unsigned threshold, unsigned max);
void dbp_stmt_cache_free(dbp_stmt_cache *c);

/* Counts one execution of sql and returns its entry, now the most recently
 * used; NULL when out of memory (run it unprepared).  When a new text
 * evicts the least recently used one and that one was prepared, its name is
 * copied to evicted (else evicted[0] is '\0'): the caller deallocates it. */
dbp_stmt *dbp_stmt_use(dbp_stmt_cache *c, const char *sql, char evicted[24]);

/* True when the entry should be prepared before this execution. */
bool dbp_stmt_due(const dbp_stmt_cache *c, const dbp_stmt *s);

/* The entry's statement is gone or unusable on the server (deallocated by
 * the app, or its plan went stale): forget that it was prepared, start
 * counting anew, and take a fresh name, so that preparing it again cannot
 * collide with a statement the server may still hold. */
void dbp_stmt_forget(dbp_stmt_cache *c, dbp_stmt *s);

/* The server dropped every statement of the session (DEALLOCATE ALL,
 * DISCARD ALL): forget that any is prepared, as dbp_stmt_forget each. */
void dbp_stmt_forget_all(dbp_stmt_cache *c);

/* The entry whose server-side statement is name, or NULL. */
dbp_stmt *dbp_stmt_by_name(dbp_stmt_cache *c, const char *name);

/* Texts tracked, and how many of them are prepared (for tests). */
unsigned dbp_stmt_count(const dbp_stmt_cache *c, unsigned *prepared);
#endif

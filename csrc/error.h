/* error.h: the error record the core fills for its caller.  Fixed buffers so
 * that filling one never allocates and can be done under a lock. */
#ifndef DBP_ERROR_H
#define DBP_ERROR_H

#include <stddef.h>
#include "common.h"

typedef struct dbp_error {
    dbp_status status;
    char sqlstate[6];     /* "" when not a server error */
    char severity[16];
    char message[512];
    char detail[512];
    char hint[256];
} dbp_error;

void dbp_error_clear(dbp_error *err);

/* Sets status and message (printf-style); clears the other fields.
 * Returns status so callers can write `return dbp_error_set(...)`. */
dbp_status dbp_error_set(dbp_error *err, dbp_status status, const char *fmt, ...)
    DBP_PRINTF(3, 4);

/* The `kind` string of DESIGN.md's error table for a status. */
const char *dbp_status_kind(dbp_status status);

/* Copies at most size-1 bytes, always terminates, trims trailing newlines
 * (libpq messages end with one). */
void dbp_copy_text(char *dst, size_t size, const char *src);

#endif

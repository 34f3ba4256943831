/* error.c: filling dbp_error records. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void dbp_error_clear(dbp_error *err)
{
    memset(err, 0, sizeof *err);
}

dbp_status dbp_error_set(dbp_error *err, dbp_status status, const char *fmt, ...)
{
    va_list ap;

    dbp_error_clear(err);
    err->status = status;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return status;
}

const char *dbp_status_kind(dbp_status status)
{
    switch (status) {
    case DBP_OK:           return "ok";
    case DBP_TIMEOUT:      return "timeout";
    case DBP_AGAIN:        return "again";
    case DBP_CLOSED:       return "closed";
    case DBP_CONNECT:      return "connect";
    case DBP_QUERY:        return "query";
    case DBP_CIRCUIT_OPEN: return "circuit_open";
    case DBP_PENDING:      return "pending";
    case DBP_NOMEM:        return "nomem";
    case DBP_INVALID:      return "invalid";
    case DBP_QUERY_TIMEOUT: return "query_timeout";
    }
    return "unknown";
}

void dbp_copy_text(char *dst, size_t size, const char *src)
{
    size_t n;

    if (size == 0)
        return;
    if (src == NULL)
        src = "";
    n = strlen(src);
    if (n >= size)
        n = size - 1;
    memcpy(dst, src, n);
    while (n > 0 && (dst[n - 1] == '\n' || dst[n - 1] == '\r'))
        n--;
    dst[n] = '\0';
}

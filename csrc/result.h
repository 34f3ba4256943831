/* result.h: reading a statement's result.  With conn.c the only code that
 * includes libpq-fe.h: the binding reads rows through these functions and
 * never sees a libpq type.  A dbp_result is libpq's PGresult, opaque here. */
#ifndef DBP_RESULT_H
#define DBP_RESULT_H

#include <stddef.h>
#include <stdint.h>

typedef struct pg_result dbp_result;

int dbp_result_rows(const dbp_result *r);
int dbp_result_columns(const dbp_result *r);
const char *dbp_result_column_name(const dbp_result *r, int col);
/* The column's type OID (pg_type.oid); pgtype.h says how to read it. */
unsigned dbp_result_column_type(const dbp_result *r, int col);

/* The text of field (row, col) and its length in bytes, or NULL for SQL
 * NULL.  Valid until dbp_result_free. */
const char *dbp_result_field(const dbp_result *r, int row, int col, size_t *len);

/* The number of rows the command affected (its tag's count), or -1 when
 * the command reports none (a SELECT's count is its rows; CREATE: none). */
int64_t dbp_result_affected(const dbp_result *r);

/* bytea text (hex or escape format) as raw bytes: a malloc'd block the
 * caller frees with dbp_result_free_bytes, or NULL for lack of memory or a
 * malformed value. */
unsigned char *dbp_result_bytea(const char *text, size_t *len);
void dbp_result_free_bytes(unsigned char *bytes);

/* The server's text of an integer (int2/4/8, oid, a command's count):
 * digits only, so a loop instead of strtoll's locale and base handling. */
static inline int64_t dbp_parse_int(const char *v)
{
    int negative = *v == '-';
    uint64_t n = 0;

    for (v += negative; *v >= '0' && *v <= '9'; v++)
        n = n * 10 + (uint64_t)(*v - '0');
    /* Unsigned, so that -9223372036854775808 wraps to itself. */
    return negative ? (int64_t)(0 - n) : (int64_t)n;
}

void dbp_result_free(dbp_result *r);

#endif

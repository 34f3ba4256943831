/* result.c: reading a PGresult for the binding (result.h).  Part of the
 * libpq seam: the binding never includes libpq-fe.h. */
#include "result.h"

#include <libpq-fe.h>

int dbp_result_rows(const dbp_result *r)
{
    return PQntuples(r);
}

int dbp_result_columns(const dbp_result *r)
{
    return PQnfields(r);
}

const char *dbp_result_column_name(const dbp_result *r, int col)
{
    return PQfname(r, col);
}

unsigned dbp_result_column_type(const dbp_result *r, int col)
{
    return PQftype(r, col);
}

const char *dbp_result_field(const dbp_result *r, int row, int col, size_t *len)
{
    if (PQgetisnull(r, row, col))
        return NULL;
    *len = (size_t)PQgetlength(r, row, col);
    return PQgetvalue(r, row, col);
}

int64_t dbp_result_affected(const dbp_result *r)
{
    const char *tuples = PQcmdTuples((dbp_result *)r);
    return tuples[0] == '\0' ? -1 : dbp_parse_int(tuples);
}

unsigned char *dbp_result_bytea(const char *text, size_t *len)
{
    return PQunescapeBytea((const unsigned char *)text, len);
}

void dbp_result_free_bytes(unsigned char *bytes)
{
    PQfreemem(bytes);
}

void dbp_result_free(dbp_result *r)
{
    PQclear(r);
}

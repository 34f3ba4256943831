/* result.c: reading a PGresult for the binding (result.h).  Part of the
 * libpq seam: the binding never includes libpq-fe.h. */
#include "result.h"

#include <libpq-fe.h>

/* Type OIDs from PostgreSQL's catalog (pg_type.dat); stable across versions. */
enum { OID_BOOL = 16, OID_BYTEA = 17, OID_INT8 = 20, OID_INT2 = 21, OID_INT4 = 23,
       OID_OID = 26, OID_FLOAT4 = 700, OID_FLOAT8 = 701, OID_NUMERIC = 1700 };

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

dbp_col_kind dbp_result_column_kind(const dbp_result *r, int col)
{
    switch (PQftype(r, col)) {
    case OID_BOOL: return DBP_COL_BOOL;
    case OID_INT2: case OID_INT4: case OID_INT8: case OID_OID: return DBP_COL_INT;
    case OID_FLOAT4: case OID_FLOAT8: case OID_NUMERIC: return DBP_COL_NUMBER;
    case OID_BYTEA: return DBP_COL_BYTEA;
    default: return DBP_COL_TEXT;
    }
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

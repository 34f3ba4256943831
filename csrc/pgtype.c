/* pgtype.c: built-in type OIDs (pgtype.h), from pg_type.dat; spec/decode_spec.lua
 * checks every entry against a live server's pg_type. */
#include "pgtype.h"

#include <string.h>

/* X(typname, oid, array_oid, kind): every built-in base, range and
 * multirange type with an array type (PostgreSQL 15's catalog). */
#define DBP_BUILTIN_TYPES(X)                                                            \
    X(bool, 16, 1000, BOOL) X(bytea, 17, 1001, BYTEA) X(char, 18, 1002, TEXT)            \
    X(name, 19, 1003, TEXT) X(int8, 20, 1016, INT) X(int2, 21, 1005, INT)                \
    X(int2vector, 22, 1006, TEXT) X(int4, 23, 1007, INT) X(regproc, 24, 1008, TEXT)      \
    X(text, 25, 1009, TEXT) X(oid, 26, 1028, INT) X(tid, 27, 1010, TEXT)                 \
    X(xid, 28, 1011, TEXT) X(cid, 29, 1012, TEXT) X(oidvector, 30, 1013, TEXT)           \
    X(json, 114, 199, JSON) X(xml, 142, 143, TEXT) X(point, 600, 1017, TEXT)             \
    X(lseg, 601, 1018, TEXT) X(path, 602, 1019, TEXT) X(box, 603, 1020, TEXT)            \
    X(polygon, 604, 1027, TEXT) X(line, 628, 629, TEXT) X(cidr, 650, 651, TEXT)          \
    X(float4, 700, 1021, FLOAT) X(float8, 701, 1022, FLOAT) X(circle, 718, 719, TEXT)    \
    X(macaddr8, 774, 775, TEXT) X(money, 790, 791, TEXT) X(macaddr, 829, 1040, TEXT)     \
    X(inet, 869, 1041, TEXT) X(aclitem, 1033, 1034, TEXT) X(bpchar, 1042, 1014, TEXT)    \
    X(varchar, 1043, 1015, TEXT) X(date, 1082, 1182, TEXT) X(time, 1083, 1183, TEXT)     \
    X(timestamp, 1114, 1115, TEXT) X(timestamptz, 1184, 1185, TEXT)                      \
    X(interval, 1186, 1187, TEXT) X(timetz, 1266, 1270, TEXT) X(bit, 1560, 1561, TEXT)   \
    X(varbit, 1562, 1563, TEXT) X(numeric, 1700, 1231, NUMERIC)                          \
    X(refcursor, 1790, 2201, TEXT) X(regprocedure, 2202, 2207, TEXT)                     \
    X(regoper, 2203, 2208, TEXT) X(regoperator, 2204, 2209, TEXT)                        \
    X(regclass, 2205, 2210, TEXT) X(regtype, 2206, 2211, TEXT) X(uuid, 2950, 2951, TEXT) \
    X(txid_snapshot, 2970, 2949, TEXT) X(tsvector, 3614, 3643, TEXT)                     \
    X(tsquery, 3615, 3645, TEXT) X(gtsvector, 3642, 3644, TEXT)                          \
    X(regconfig, 3734, 3735, TEXT) X(regdictionary, 3769, 3770, TEXT)                    \
    X(jsonb, 3802, 3807, JSON) X(int4range, 3904, 3905, TEXT)                            \
    X(numrange, 3906, 3907, TEXT) X(tsrange, 3908, 3909, TEXT)                           \
    X(tstzrange, 3910, 3911, TEXT) X(daterange, 3912, 3913, TEXT)                        \
    X(int8range, 3926, 3927, TEXT) X(jsonpath, 4072, 4073, TEXT)                         \
    X(regnamespace, 4089, 4090, TEXT) X(regrole, 4096, 4097, TEXT)                       \
    X(regcollation, 4191, 4192, TEXT) X(int4multirange, 4451, 6150, TEXT)                \
    X(nummultirange, 4532, 6151, TEXT) X(tsmultirange, 4533, 6152, TEXT)                 \
    X(tstzmultirange, 4534, 6153, TEXT) X(datemultirange, 4535, 6155, TEXT)              \
    X(int8multirange, 4536, 6157, TEXT) X(xid8, 5069, 271, TEXT)                        \
    X(pg_lsn, 3220, 3221, TEXT) X(pg_snapshot, 5038, 5039, TEXT)

/* A switch, not a table walk: this runs for each column of each result. */
dbp_type_kind dbp_type_kind_of(unsigned oid)
{
#define KIND_CASES(name, o, arr, kind) case o: return DBP_TYPE_##kind; case arr: return DBP_TYPE_ARRAY;
    switch (oid) {
    DBP_BUILTIN_TYPES(KIND_CASES)
    default: return DBP_TYPE_TEXT;
    }
#undef KIND_CASES
}

char dbp_type_array_delim(unsigned oid)
{
    return oid == 1020 ? ';' : ',';     /* box[]: a box's text holds commas */
}

unsigned dbp_type_array_elem(unsigned oid)
{
#define ARRAY_CASE(name, o, arr, kind) case arr: return o;
    switch (oid) {
    DBP_BUILTIN_TYPES(ARRAY_CASE)
    default: return 0;
    }
#undef ARRAY_CASE
}

unsigned dbp_type_array_of(unsigned oid)
{
#define ELEM_CASE(name, o, arr, kind) case o: return arr;
    switch (oid) {
    DBP_BUILTIN_TYPES(ELEM_CASE)
    default: return 0;
    }
#undef ELEM_CASE
}

bool dbp_type_by_name(const char *typname, unsigned *oid, unsigned *array_oid)
{
#define NAME_ROW(name, o, arr, kind) {#name, o, arr},
    static const struct { const char *name; unsigned oid, array_oid; } types[] = {
        DBP_BUILTIN_TYPES(NAME_ROW)
    };
#undef NAME_ROW
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        if (strcmp(types[i].name, typname) == 0) {
            *oid = types[i].oid;
            *array_oid = types[i].array_oid;
            return true;
        }
    }
    return false;
}

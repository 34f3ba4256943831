/* pgtype.h: PostgreSQL's built-in types by OID and by name, and how a
 * value of each comes back to Lua (DESIGN.md "Results").  Pure C: no Lua,
 * no libpq; the OIDs are the catalog's (pg_type.dat), fixed across server
 * versions, so no query is needed to know them.  Other types (extensions,
 * enums, domains, composites) have OIDs of each database's own: the Lua
 * layer looks those up in pg_type when a decoder names them. */
#ifndef DBP_PGTYPE_H
#define DBP_PGTYPE_H

#include <stdbool.h>

/* How a value of a type becomes a Lua value. */
typedef enum dbp_type_kind {
    DBP_TYPE_TEXT = 0,  /* anything else: its text form */
    DBP_TYPE_BOOL,      /* bool: 't' or 'f' */
    DBP_TYPE_INT,       /* int2, int4, int8, oid */
    DBP_TYPE_FLOAT,     /* float4, float8 */
    DBP_TYPE_NUMERIC,   /* numeric: a number, or with numeric = "string" its text */
    DBP_TYPE_BYTEA,     /* bytea: hex or escape format, unescaped */
    DBP_TYPE_JSON,      /* json, jsonb: decoded by lua-cjson */
    DBP_TYPE_ARRAY      /* an array of a built-in type (dbp_type_array_elem) */
} dbp_type_kind;

/* The kind of a value of type oid; DBP_TYPE_TEXT for any OID not built in. */
dbp_type_kind dbp_type_kind_of(unsigned oid);

/* The character between the elements of a value of array type oid: ';'
 * for box[], ',' for every other (pg_type.typdelim). */
char dbp_type_array_delim(unsigned oid);

/* For the array type of a built-in type (int4[] is 1007): the element's
 * OID (23); else 0. */
unsigned dbp_type_array_elem(unsigned oid);

/* A built-in type by pg_type.typname ("int4", "timestamptz", not SQL's
 * "integer"): true with its OID and its array type's OID, else false. */
bool dbp_type_by_name(const char *typname, unsigned *oid, unsigned *array_oid);

/* The array type of built-in type oid (1007 for int4's 23), or 0 when oid is
 * not a built-in type that has one. */
unsigned dbp_type_array_of(unsigned oid);

#endif

/* types.h: Fivetran's column types, the typed values a row carries from the converter to a
 * sink, and how a column's type widens when documents disagree. No BSON here. */
#ifndef DC_TYPES_H
#define DC_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Fivetran's data types (names as fivetran_sdk.v2.DataType); DC_TYPE_NULL means "only nulls
 * seen so far" and never reaches a destination schema as such. */
typedef enum {
    DC_TYPE_NULL = 0,
    DC_TYPE_BOOLEAN,
    DC_TYPE_SHORT,
    DC_TYPE_INT,
    DC_TYPE_LONG,
    DC_TYPE_DECIMAL,
    DC_TYPE_FLOAT,
    DC_TYPE_DOUBLE,
    DC_TYPE_NAIVE_DATE,
    DC_TYPE_NAIVE_DATETIME,
    DC_TYPE_UTC_DATETIME,
    DC_TYPE_BINARY,
    DC_TYPE_XML,
    DC_TYPE_STRING,
    DC_TYPE_JSON,
} dc_type_t;

/* "STRING", "UTC_DATETIME", ...; "NULL" for DC_TYPE_NULL. */
const char *dc_type_name(dc_type_t t);
/* The type named s (case-insensitive); false when unknown. */
bool dc_type_from_name(const char *s, dc_type_t *t);

/* The narrowest type that holds values of both a and b exactly:
 * equal -> a; NULL with x -> x; INT+LONG -> LONG; INT+DOUBLE -> DOUBLE; LONG+DOUBLE and any
 * number with DECIMAL -> DECIMAL; anything else -> JSON. */
dc_type_t dc_type_join(dc_type_t a, dc_type_t b);

/* One value of a row. Text-like types (STRING, JSON, DECIMAL as exact text, UTC_DATETIME as
 * ISO-8601 "YYYY-MM-DDTHH:MM:SS.mmmZ") and BINARY point at bytes owned by the converter's
 * row buffer, valid until the next conversion. */
typedef struct {
    dc_type_t type; /* DC_TYPE_NULL for a null or absent value */
    int64_t ms;     /* UTC_DATETIME: the same instant in milliseconds since the epoch */
    union {
        bool b;
        int64_t i; /* INT, LONG */
        double d;  /* DOUBLE */
        struct {
            const char *ptr;
            size_t len;
        } s; /* STRING, JSON, DECIMAL, UTC_DATETIME, BINARY */
    } v;
} dc_value_t;

#endif

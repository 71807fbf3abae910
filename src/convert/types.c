/* types.c: Fivetran type names and the widening of a column's type when documents disagree
 * (dc_type_join). Pure functions on dc_type_t: no BSON, no destination knowledge. */
#include "convert/types.h"

#include <strings.h>

static const char *const type_names[] = {
    [DC_TYPE_NULL] = "NULL",
    [DC_TYPE_BOOLEAN] = "BOOLEAN",
    [DC_TYPE_SHORT] = "SHORT",
    [DC_TYPE_INT] = "INT",
    [DC_TYPE_LONG] = "LONG",
    [DC_TYPE_DECIMAL] = "DECIMAL",
    [DC_TYPE_FLOAT] = "FLOAT",
    [DC_TYPE_DOUBLE] = "DOUBLE",
    [DC_TYPE_NAIVE_DATE] = "NAIVE_DATE",
    [DC_TYPE_NAIVE_DATETIME] = "NAIVE_DATETIME",
    [DC_TYPE_UTC_DATETIME] = "UTC_DATETIME",
    [DC_TYPE_BINARY] = "BINARY",
    [DC_TYPE_XML] = "XML",
    [DC_TYPE_STRING] = "STRING",
    [DC_TYPE_JSON] = "JSON",
};

#define NTYPES (sizeof type_names / sizeof type_names[0])

const char *
dc_type_name(dc_type_t t)
{
    if ((unsigned)t >= NTYPES)
        return "UNKNOWN";
    return type_names[t];
}

bool
dc_type_from_name(const char *s, dc_type_t *t)
{
    if (!s)
        return false;
    for (size_t i = 0; i < NTYPES; i++) {
        if (strcasecmp(s, type_names[i]) == 0) {
            if (t)
                *t = (dc_type_t)i;
            return true;
        }
    }
    return false;
}

/* Numeric types by what they hold exactly: SHORT (16 bits) and INT (32) fit in FLOAT and DOUBLE
 * respectively, LONG only in DECIMAL. SHORT and FLOAT never come from BSON; they are joined by
 * the same principle (the narrowest exact type) so that a declared column still widens. */
static bool
is_number(dc_type_t t)
{
    return t == DC_TYPE_SHORT || t == DC_TYPE_INT || t == DC_TYPE_LONG || t == DC_TYPE_FLOAT ||
           t == DC_TYPE_DOUBLE || t == DC_TYPE_DECIMAL;
}

static bool
is_integer(dc_type_t t)
{
    return t == DC_TYPE_SHORT || t == DC_TYPE_INT || t == DC_TYPE_LONG;
}

static bool
is_float(dc_type_t t)
{
    return t == DC_TYPE_FLOAT || t == DC_TYPE_DOUBLE;
}

dc_type_t
dc_type_join(dc_type_t a, dc_type_t b)
{
    if (a == b)
        return a;
    if (a == DC_TYPE_NULL)
        return b;
    if (b == DC_TYPE_NULL)
        return a;
    if (!is_number(a) || !is_number(b))
        return DC_TYPE_JSON;
    if (a == DC_TYPE_DECIMAL || b == DC_TYPE_DECIMAL)
        return DC_TYPE_DECIMAL;
    /* Order the pair so that a is the narrower one in the enum (SHORT < INT < LONG < FLOAT <
     * DOUBLE). */
    if (a > b) {
        dc_type_t t = a;
        a = b;
        b = t;
    }
    if (is_integer(a) && is_integer(b))
        return b; /* SHORT+INT -> INT, INT+LONG -> LONG, ... */
    if (is_float(a) && is_float(b))
        return DC_TYPE_DOUBLE; /* FLOAT+DOUBLE */
    /* One integer, one floating type. */
    if (a == DC_TYPE_LONG)
        return DC_TYPE_DECIMAL; /* no binary floating type holds every int64 */
    if (a == DC_TYPE_SHORT)
        return b;          /* int16 is exact in FLOAT and DOUBLE */
    return DC_TYPE_DOUBLE; /* INT+FLOAT, INT+DOUBLE */
}

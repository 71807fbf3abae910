/* test_update.c: table-driven tests of docdb-emu's update module (update.c): replacement, $set,
 * $unset and $inc on dotted paths, conflicts, _id immutability and upsert base documents. The
 * expected documents and codes are what mongod 5.0+ answers, compared byte for byte. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "update.h"

#include "cmocka_main.h"

/* One update of one document: the expected result, or (expected == NULL) an error code. */
typedef struct {
    const char *doc;
    const char *update;
    const char *expected;
    int code;
} apply_case_t;

/* One upsert: the document inserted when nothing matched `filter`, or an error code. */
typedef struct {
    const char *filter;
    const char *update;
    const char *expected;
    int code;
} upsert_case_t;

/* One update document checked before any document is touched (code 0: valid). */
typedef struct {
    const char *update;
    int code;
} validate_case_t;

/* One failing update and mongod's exact message. */
typedef struct {
    const char *doc;
    const char *update;
    int code;
    const char *msg;
} message_case_t;

static const apply_case_t apply_cases[] = {
    /* Replacement documents. */
    {"{\"_id\": 1, \"a\": 1, \"b\": 2}", "{\"c\": 3}", "{\"_id\": 1, \"c\": 3}", 0},
    {"{\"_id\": 1, \"a\": 1}", "{\"_id\": 1, \"a\": 2}", "{\"_id\": 1, \"a\": 2}", 0},
    {"{\"_id\": 1, \"a\": 1}", "{\"a\": 2, \"_id\": 1}", "{\"_id\": 1, \"a\": 2}", 0},
    {"{\"_id\": 1, \"a\": 1}", "{\"_id\": 2, \"a\": 1}", NULL, 66},
    {"{\"_id\": {\"x\": 1}}", "{\"_id\": {\"x\": 2}}", NULL, 66},
    {"{\"_id\": 1, \"a\": 1}", "{}", "{\"_id\": 1}", 0},
    {"{\"_id\": 1, \"a\": 1}", "{\"_id\": 1, \"a\": 1}", "{\"_id\": 1, \"a\": 1}", 0},
    /* An equal _id of another numeric type is accepted, and the replacement's value is kept. */
    {"{\"_id\": 1, \"a\": 1}", "{\"_id\": 1.0}", "{\"_id\": 1.0}", 0},
    {"{\"_id\": 1}", "{\"a\": 1, \"$set\": {\"b\": 1}}", NULL, 52},

    /* $set on top-level fields: existing fields keep their place, new ones come last in
     * lexicographic order, whatever the order of the update. */
    {"{\"_id\": 1, \"a\": 1}", "{\"$set\": {\"a\": 2}}", "{\"_id\": 1, \"a\": 2}", 0},
    {"{\"_id\": 1, \"a\": 1}", "{\"$set\": {\"b\": 2}}", "{\"_id\": 1, \"a\": 1, \"b\": 2}", 0},
    {"{\"_id\": 1}", "{\"$set\": {\"b\": 1, \"a\": 1}}", "{\"_id\": 1, \"a\": 1, \"b\": 1}", 0},
    {"{\"_id\": 1, \"b\": 1, \"a\": 1}", "{\"$set\": {\"a\": 2}}",
     "{\"_id\": 1, \"b\": 1, \"a\": 2}", 0},
    {"{\"_id\": 1}", "{\"$set\": {\"b\": 1}, \"$inc\": {\"a\": 1}}",
     "{\"_id\": 1, \"a\": 1, \"b\": 1}", 0},
    {"{\"_id\": 1, \"a\": 1}", "{\"$set\": {\"a\": 1}}", "{\"_id\": 1, \"a\": 1}", 0},
    {"{\"_id\": 1, \"a\": 1}", "{\"$set\": {\"a\": 1.0}}", "{\"_id\": 1, \"a\": 1.0}", 0},
    {"{\"_id\": 1, \"a\": {\"$numberLong\": \"5\"}}", "{\"$set\": {\"a\": 5}}",
     "{\"_id\": 1, \"a\": 5}", 0},
    {"{\"_id\": 1}", "{\"$set\": {\"a\": {\"x\": [1, 2]}}}", "{\"_id\": 1, \"a\": {\"x\": [1, 2]}}",
     0},
    {"{\"_id\": 1, \"a\": 1}", "{\"$set\": {}}", "{\"_id\": 1, \"a\": 1}", 0},
    {"{\"a\": 1, \"_id\": 1}", "{\"$set\": {\"b\": 1}}", "{\"_id\": 1, \"a\": 1, \"b\": 1}", 0},

    /* $set on dotted paths. */
    {"{\"_id\": 1, \"a\": {\"b\": 1}}", "{\"$set\": {\"a.b\": 2}}",
     "{\"_id\": 1, \"a\": {\"b\": 2}}", 0},
    {"{\"_id\": 1}", "{\"$set\": {\"a.b.c\": 1}}", "{\"_id\": 1, \"a\": {\"b\": {\"c\": 1}}}", 0},
    {"{\"_id\": 1, \"a\": {\"x\": 1}}", "{\"$set\": {\"a.b.c\": 1}}",
     "{\"_id\": 1, \"a\": {\"x\": 1, \"b\": {\"c\": 1}}}", 0},
    {"{\"_id\": 1, \"a\": {\"b\": 1}}", "{\"$set\": {\"a.c\": 2, \"a.b\": 3}}",
     "{\"_id\": 1, \"a\": {\"b\": 3, \"c\": 2}}", 0},
    {"{\"_id\": 1}", "{\"$set\": {\"b.y\": 1, \"a\": 1, \"b.x\": 2}}",
     "{\"_id\": 1, \"a\": 1, \"b\": {\"x\": 2, \"y\": 1}}", 0},
    {"{\"_id\": 1}", "{\"$set\": {\"a.10\": 1, \"a.9\": 2}}",
     "{\"_id\": 1, \"a\": {\"9\": 2, \"10\": 1}}", 0},
    {"{\"_id\": 1, \"a\": {}}", "{\"$set\": {\"a.0\": 1}}", "{\"_id\": 1, \"a\": {\"0\": 1}}", 0},
    {"{\"_id\": 1, \"a\": \"x\"}", "{\"$set\": {\"a.b\": 1}}", NULL, 28},
    {"{\"_id\": 1, \"a\": {\"b\": 5}}", "{\"$set\": {\"a.b.c\": 1}}", NULL, 28},
    {"{\"_id\": 1, \"a\": null}", "{\"$set\": {\"a.b\": 1}}", NULL, 28},

    /* $set into arrays by index: existing elements are replaced, missing ones padded. */
    {"{\"_id\": 1, \"a\": [1, 2, 3]}", "{\"$set\": {\"a.1\": 9}}", "{\"_id\": 1, \"a\": [1, 9, 3]}",
     0},
    {"{\"_id\": 1, \"a\": [1]}", "{\"$set\": {\"a.3\": 9}}",
     "{\"_id\": 1, \"a\": [1, null, null, 9]}", 0},
    {"{\"_id\": 1, \"a\": []}", "{\"$set\": {\"a.0.b\": 1}}", "{\"_id\": 1, \"a\": [{\"b\": 1}]}",
     0},
    {"{\"_id\": 1, \"a\": [{\"b\": 1}, {\"b\": 2}]}", "{\"$set\": {\"a.1.b\": 3}}",
     "{\"_id\": 1, \"a\": [{\"b\": 1}, {\"b\": 3}]}", 0},
    {"{\"_id\": 1, \"a\": []}", "{\"$set\": {\"a.10\": 1, \"a.9\": 2}}",
     "{\"_id\": 1, \"a\": [null, null, null, null, null, null, null, null, null, 2, 1]}", 0},
    {"{\"_id\": 1, \"a\": [{\"b\": 1}]}", "{\"$set\": {\"a.b\": 3}}", NULL, 28},
    {"{\"_id\": 1, \"a\": [1, 2]}", "{\"$set\": {\"a.1.b\": 1}}", NULL, 28},
    {"{\"_id\": 1, \"a\": [1]}", "{\"$set\": {\"a.3.b\": 1}}",
     "{\"_id\": 1, \"a\": [1, null, null, {\"b\": 1}]}", 0},
    {"{\"_id\": 1, \"a\": [1, 2]}", "{\"$inc\": {\"a.5\": 1, \"a.3.x\": 2}}",
     "{\"_id\": 1, \"a\": [1, 2, null, {\"x\": 2}, null, 1]}", 0},
    /* Only the first of two fields with the same name is updated. */
    {"{\"_id\": 1, \"a\": 1, \"a\": 2}", "{\"$set\": {\"a\": 5}}",
     "{\"_id\": 1, \"a\": 5, \"a\": 2}", 0},
    {"{\"_id\": 1, \"a\": []}", "{\"$set\": {\"a.1500001\": 1}}", NULL, 34},

    /* $unset. */
    {"{\"_id\": 1, \"a\": 1, \"b\": 2}", "{\"$unset\": {\"a\": \"\"}}", "{\"_id\": 1, \"b\": 2}",
     0},
    {"{\"_id\": 1, \"a\": 1}", "{\"$unset\": {\"b\": \"\"}}", "{\"_id\": 1, \"a\": 1}", 0},
    {"{\"_id\": 1, \"a\": {\"b\": 1, \"c\": 2}}", "{\"$unset\": {\"a.b\": 1}}",
     "{\"_id\": 1, \"a\": {\"c\": 2}}", 0},
    {"{\"_id\": 1, \"a\": {\"b\": 1}}", "{\"$unset\": {\"a.b\": 1}}", "{\"_id\": 1, \"a\": {}}", 0},
    {"{\"_id\": 1, \"a\": [1, 2, 3]}", "{\"$unset\": {\"a.1\": 1}}",
     "{\"_id\": 1, \"a\": [1, null, 3]}", 0},
    {"{\"_id\": 1, \"a\": [1]}", "{\"$unset\": {\"a.5\": 1}}", "{\"_id\": 1, \"a\": [1]}", 0},
    {"{\"_id\": 1, \"a\": \"x\"}", "{\"$unset\": {\"a.b\": 1}}", "{\"_id\": 1, \"a\": \"x\"}", 0},
    {"{\"_id\": 1, \"a\": [{\"b\": 1}]}", "{\"$unset\": {\"a.b\": 1}}",
     "{\"_id\": 1, \"a\": [{\"b\": 1}]}", 0},
    {"{\"_id\": 1}", "{\"$unset\": {\"a.b.c\": 1}}", "{\"_id\": 1}", 0},
    {"{\"_id\": 1, \"a\": 1}", "{\"$unset\": {\"a\": 1}, \"$set\": {\"b\": 1}}",
     "{\"_id\": 1, \"b\": 1}", 0},

    /* $inc and mongod's numeric promotion. */
    {"{\"_id\": 1, \"a\": 1}", "{\"$inc\": {\"a\": 2}}", "{\"_id\": 1, \"a\": 3}", 0},
    {"{\"_id\": 1, \"a\": 1}", "{\"$inc\": {\"a\": -1}}", "{\"_id\": 1, \"a\": 0}", 0},
    {"{\"_id\": 1, \"a\": 2147483647}", "{\"$inc\": {\"a\": 1}}",
     "{\"_id\": 1, \"a\": {\"$numberLong\": \"2147483648\"}}", 0},
    {"{\"_id\": 1, \"a\": -2147483648}", "{\"$inc\": {\"a\": -1}}",
     "{\"_id\": 1, \"a\": {\"$numberLong\": \"-2147483649\"}}", 0},
    {"{\"_id\": 1, \"a\": 1}", "{\"$inc\": {\"a\": {\"$numberLong\": \"1\"}}}",
     "{\"_id\": 1, \"a\": {\"$numberLong\": \"2\"}}", 0},
    {"{\"_id\": 1, \"a\": {\"$numberLong\": \"1\"}}", "{\"$inc\": {\"a\": 1}}",
     "{\"_id\": 1, \"a\": {\"$numberLong\": \"2\"}}", 0},
    {"{\"_id\": 1, \"a\": {\"$numberLong\": \"9223372036854775807\"}}", "{\"$inc\": {\"a\": 1}}",
     NULL, 2},
    {"{\"_id\": 1, \"a\": 1}", "{\"$inc\": {\"a\": {\"$numberLong\": \"9223372036854775807\"}}}",
     NULL, 2},
    {"{\"_id\": 1, \"a\": 1}", "{\"$inc\": {\"a\": 0.5}}", "{\"_id\": 1, \"a\": 1.5}", 0},
    {"{\"_id\": 1, \"a\": 1.5}", "{\"$inc\": {\"a\": 1}}", "{\"_id\": 1, \"a\": 2.5}", 0},
    {"{\"_id\": 1, \"a\": 1.0}", "{\"$inc\": {\"a\": {\"$numberLong\": \"2\"}}}",
     "{\"_id\": 1, \"a\": 3.0}", 0},
    {"{\"_id\": 1, \"a\": 1}", "{\"$inc\": {\"a\": 0}}", "{\"_id\": 1, \"a\": 1}", 0},
    {"{\"_id\": 1}", "{\"$inc\": {\"a\": 5}}", "{\"_id\": 1, \"a\": 5}", 0},
    {"{\"_id\": 1}", "{\"$inc\": {\"a.b\": {\"$numberLong\": \"5\"}}}",
     "{\"_id\": 1, \"a\": {\"b\": {\"$numberLong\": \"5\"}}}", 0},
    {"{\"_id\": 1, \"a\": [1, 2]}", "{\"$inc\": {\"a.0\": 5}}", "{\"_id\": 1, \"a\": [6, 2]}", 0},
    {"{\"_id\": 1, \"a\": \"x\"}", "{\"$inc\": {\"a\": 1}}", NULL, 14},
    {"{\"_id\": 1, \"a\": null}", "{\"$inc\": {\"a\": 1}}", NULL, 14},
    {"{\"_id\": 1, \"a\": \"x\"}", "{\"$inc\": {\"a.b\": 1}}", NULL, 28},

    /* $inc with decimals: exact decimal sums; a double operand counts with 15 digits. */
    {"{\"_id\": 1, \"a\": {\"$numberDecimal\": \"1.5\"}}", "{\"$inc\": {\"a\": 1}}",
     "{\"_id\": 1, \"a\": {\"$numberDecimal\": \"2.5\"}}", 0},
    {"{\"_id\": 1, \"a\": 1}", "{\"$inc\": {\"a\": {\"$numberDecimal\": \"0.1\"}}}",
     "{\"_id\": 1, \"a\": {\"$numberDecimal\": \"1.1\"}}", 0},
    {"{\"_id\": 1, \"a\": {\"$numberDecimal\": \"1\"}}", "{\"$inc\": {\"a\": 1.0}}",
     "{\"_id\": 1, \"a\": {\"$numberDecimal\": \"2.00000000000000\"}}", 0},
    {"{\"_id\": 1, \"a\": 0.1}", "{\"$inc\": {\"a\": {\"$numberDecimal\": \"0\"}}}",
     "{\"_id\": 1, \"a\": {\"$numberDecimal\": \"0.100000000000000\"}}", 0},
    {"{\"_id\": 1, \"a\": {\"$numberDecimal\": \"0.1\"}}",
     "{\"$inc\": {\"a\": {\"$numberDecimal\": \"-0.1\"}}}",
     "{\"_id\": 1, \"a\": {\"$numberDecimal\": \"0.0\"}}", 0},
    {"{\"_id\": 1, \"a\": {\"$numberDecimal\": \"9999999999999999999999999999999999\"}}",
     "{\"$inc\": {\"a\": 1}}",
     "{\"_id\": 1, \"a\": {\"$numberDecimal\": \"1.000000000000000000000000000000000E+34\"}}", 0},
    /* Rounding to 34 digits is half-even. */
    {"{\"_id\": 1, \"a\": 1}", "{\"$inc\": {\"a\": {\"$numberDecimal\": \"1.5E-33\"}}}",
     "{\"_id\": 1, \"a\": {\"$numberDecimal\": \"1.000000000000000000000000000000002\"}}", 0},
    {"{\"_id\": 1, \"a\": 2}", "{\"$inc\": {\"a\": {\"$numberDecimal\": \"-5E-34\"}}}",
     "{\"_id\": 1, \"a\": {\"$numberDecimal\": \"2.000000000000000000000000000000000\"}}", 0},
    /* -0.0 + 0.0 == -0.0, so mongod leaves the field as it was. */
    {"{\"_id\": 1, \"a\": -0.0}", "{\"$inc\": {\"a\": 0.0}}", "{\"_id\": 1, \"a\": -0.0}", 0},
    /* A sum numerically equal to the old decimal leaves the field as it was. */
    {"{\"_id\": 1, \"a\": {\"$numberDecimal\": \"1\"}}",
     "{\"$inc\": {\"a\": {\"$numberDecimal\": \"0.00\"}}}",
     "{\"_id\": 1, \"a\": {\"$numberDecimal\": \"1\"}}", 0},

    /* Operators touching the same path, or a path and its prefix. */
    {"{\"_id\": 1}", "{\"$set\": {\"a\": 1}, \"$inc\": {\"a\": 1}}", NULL, 40},
    {"{\"_id\": 1}", "{\"$set\": {\"a\": 1, \"a.b\": 1}}", NULL, 40},
    {"{\"_id\": 1}", "{\"$set\": {\"a.b\": 1}, \"$unset\": {\"a\": 1}}", NULL, 40},
    {"{\"_id\": 1}", "{\"$set\": {\"a\": 1, \"a\": 2}}", NULL, 40},
    {"{\"_id\": 1}", "{\"$set\": {\"a.b\": 1, \"a.c\": 1}}",
     "{\"_id\": 1, \"a\": {\"b\": 1, \"c\": 1}}", 0},
    {"{\"_id\": 1}", "{\"$set\": {\"ab\": 1, \"a\": 1}}", "{\"_id\": 1, \"a\": 1, \"ab\": 1}", 0},

    /* _id is immutable; writing its current value is a no-op. */
    {"{\"_id\": 1, \"z\": 1}", "{\"$set\": {\"_id\": 1}}", "{\"_id\": 1, \"z\": 1}", 0},
    {"{\"_id\": 1}", "{\"$set\": {\"_id\": 2}}", NULL, 66},
    {"{\"_id\": 1}", "{\"$set\": {\"_id\": 1.0}}", NULL, 66},
    {"{\"_id\": {\"a\": 1}}", "{\"$set\": {\"_id.a\": 2}}", NULL, 66},
    {"{\"_id\": {\"a\": 1}}", "{\"$set\": {\"_id.b\": 2}}", NULL, 66},
    {"{\"_id\": 1}", "{\"$unset\": {\"_id\": 1}}", NULL, 66},
    {"{\"_id\": 1}", "{\"$inc\": {\"_id\": 1}}", NULL, 66},
    {"{\"_id\": 1}", "{\"$inc\": {\"_id\": 0}}", "{\"_id\": 1}", 0},

    /* Updates refused before any document is touched. ($push exists in mongod; docdb-emu
     * refuses it as mongod refuses an unknown modifier.) */
    {"{\"_id\": 1}", "{\"$push\": {\"a\": 1}}", NULL, 9},
    {"{\"_id\": 1, \"a\": 1}", "{\"$inc\": {\"a\": \"x\"}}", NULL, 14},
    {"{\"_id\": 1}", "{\"$set\": {\"a..b\": 1}}", NULL, 56},
};

static const upsert_case_t upsert_cases[] = {
    {"{\"a\": 1}", "{\"$set\": {\"b\": 2}}", "{\"a\": 1, \"b\": 2}", 0},
    {"{\"_id\": 1, \"a\": 1}", "{\"$set\": {\"b\": 2}}", "{\"_id\": 1, \"a\": 1, \"b\": 2}", 0},
    {"{\"a\": {\"$eq\": 1}}", "{\"$set\": {\"b\": 2}}", "{\"a\": 1, \"b\": 2}", 0},
    {"{\"a\": {\"$gt\": 1}, \"b\": 1}", "{\"$set\": {\"c\": 1}}", "{\"b\": 1, \"c\": 1}", 0},
    {"{\"$and\": [{\"a\": 1}, {\"b\": {\"$eq\": 2}}]}", "{\"$set\": {\"c\": 3}}",
     "{\"a\": 1, \"b\": 2, \"c\": 3}", 0},
    {"{\"a.b\": 1, \"a.c\": 2}", "{\"$set\": {\"d\": 1}}",
     "{\"a\": {\"b\": 1, \"c\": 2}, \"d\": 1}", 0},
    {"{\"_id\": 1, \"y\": 3, \"x\": 2}", "{\"$set\": {\"b\": 2, \"a\": 1}}",
     "{\"_id\": 1, \"x\": 2, \"y\": 3, \"a\": 1, \"b\": 2}", 0},
    {"{\"x\": {\"a\": 1}}", "{\"$set\": {\"x.b\": 2}}", "{\"x\": {\"a\": 1, \"b\": 2}}", 0},
    {"{\"a\": 1}", "{\"$inc\": {\"a\": 1}}", "{\"a\": 2}", 0},
    {"{\"a\": 1}", "{\"$set\": {\"_id\": 5}}", "{\"_id\": 5, \"a\": 1}", 0},
    {"{\"_id\": 1}", "{\"$set\": {\"_id\": 1}}", "{\"_id\": 1}", 0},
    {"{\"_id\": 1}", "{\"$set\": {\"_id\": 2}}", NULL, 66},
    {"{\"_id.x\": 1, \"_id.y\": 2}", "{\"$set\": {\"a\": 1}}",
     "{\"_id\": {\"x\": 1, \"y\": 2}, \"a\": 1}", 0},
    {"{\"x\": {\"$in\": [1]}}", "{\"$set\": {\"a\": 1}}", "{\"x\": 1, \"a\": 1}", 0},
    {"{\"x\": {\"$in\": [1, 2]}}", "{\"$set\": {\"a\": 1}}", "{\"a\": 1}", 0},
    {"{\"$or\": [{\"x\": 1}]}", "{\"$set\": {\"a\": 1}}", "{\"x\": 1, \"a\": 1}", 0},
    {"{\"$or\": [{\"x\": 1}, {\"y\": 2}]}", "{\"$set\": {\"a\": 1}}", "{\"a\": 1}", 0},
    {"{\"x\": {\"$regularExpression\": {\"pattern\": \"abc\", \"options\": \"\"}}}",
     "{\"$set\": {\"a\": 1}}", "{\"a\": 1}", 0},
    {"{}", "{\"$set\": {\"a\": 1}}", "{\"a\": 1}", 0},
    {"{\"x\": {\"$eq\": {\"$regularExpression\": {\"pattern\": \"abc\", \"options\": \"\"}}}}",
     "{\"$set\": {\"a\": 1}}",
     "{\"x\": {\"$regularExpression\": {\"pattern\": \"abc\", \"options\": \"\"}}, \"a\": 1}", 0},
    {"{\"x\": {\"$undefined\": true}}", "{\"$set\": {\"a\": 1}}", NULL, 2},
    {"{\"a\": 1, \"a.b\": 1}", "{\"$set\": {\"c\": 1}}", NULL, 54},
    {"{\"$and\": [{\"a\": 1}, {\"a\": 2}]}", "{\"$set\": {\"c\": 1}}", NULL, 54},
    {"{\"x\": {\"$all\": [1, 2]}}", "{\"$set\": {\"a\": 1}}", NULL, 54},
    {"{\"_id\": [1, 2]}", "{\"$set\": {\"a\": 1}}", NULL, 53},
    /* Replacement upserts take only _id from the filter. */
    {"{\"_id\": 1, \"a\": 1}", "{\"b\": 2}", "{\"_id\": 1, \"b\": 2}", 0},
    {"{\"a\": 1}", "{\"b\": 2}", "{\"b\": 2}", 0},
    {"{}", "{}", "{}", 0},
    {"{\"b\": 2, \"_id\": 1}", "{\"b\": 2, \"_id\": 1}", "{\"_id\": 1, \"b\": 2}", 0},
    {"{\"_id\": 1, \"x\": [1, {\"x\": 1}], \"x.x\": 1}", "{}", "{\"_id\": 1}", 0},
    {"{\"_id\": 1}", "{\"_id\": 2}", NULL, 66},
    {"{\"_id.x\": 1}", "{}", NULL, 111},
    {"{\"a\": 1}", "{\"$push\": {\"a\": 1}}", NULL, 9},
};

static const validate_case_t validate_cases[] = {
    {"{}", 0},
    {"{\"a\": 1}", 0},
    {"{\"$set\": {}}", 0},
    {"{\"$unset\": {\"a\": null}}", 0},
    {"{\"$set\": {\"a.b\": 1}, \"$unset\": {\"c\": 1}, \"$inc\": {\"d\": 1.5}}", 0},
    {"{\"$push\": {\"a\": 1}}", 9}, /* not implemented by docdb-emu */
    {"{\"$foo\": {\"a\": 1}}", 9},
    {"{\"$set\": 1}", 9},
    {"{\"$set\": {\"a\": 1}, \"$unset\": \"x\"}", 9},
    {"{\"$set\": {\"a\": 1}, \"b\": 1}", 9},
    {"{\"$inc\": {\"a\": \"x\"}}", 14},
    {"{\"$inc\": {\"a\": null}}", 14},
    {"{\"$set\": {\"\": 1}}", 56},
    {"{\"$set\": {\"a.\": 1}}", 56},
    /* Positional paths: "$" first is mongod's BadValue; docdb-emu refuses the others (mongod
     * also answers 2 when the query holds no array match for "a.$"). */
    {"{\"$set\": {\"$.a\": 1}}", 2},
    {"{\"$set\": {\"a.$\": 1}}", 2},
    {"{\"$set\": {\"a.$[]\": 1}}", 2},
    {"{\"$set\": {\"$x\": 1}}", 52},
    {"{\"a\": 1, \"$b\": 1}", 52},
    {"{\"$set\": {\"a.b\": 1}, \"$inc\": {\"a\": 1}}", 40},
    {"{\"$set\": {\"a.b\": 1}, \"$inc\": {\"a.bc\": 1}}", 0},
};

static const message_case_t message_cases[] = {
    {"{\"_id\": 1}", "{\"$push\": {\"a\": 1}}", 9,
     "Unknown modifier: $push. Expected a valid update modifier or pipeline-style update "
     "specified as an array"},
    {"{\"_id\": 1}", "{\"$inc\": {\"a\": \"x\"}}", 14,
     "Cannot increment with non-numeric argument: {a: \"x\"}"},
    {"{\"_id\": 1, \"a\": \"x\"}", "{\"$inc\": {\"a\": 1}}", 14,
     "Cannot apply $inc to a value of non-numeric type. {_id: 1} has the field 'a' of non-numeric "
     "type string"},
    {"{\"_id\": 1, \"a\": \"x\"}", "{\"$set\": {\"a.b\": 1}}", 28,
     "Cannot create field 'b' in element {a: \"x\"}"},
    {"{\"_id\": 1, \"a\": [1, 2]}", "{\"$set\": {\"a.b\": 1}}", 28,
     "Cannot create field 'b' in element {a: [ 1, 2 ]}"},
    {"{\"_id\": 1}", "{\"$set\": {\"a\": 1}, \"$inc\": {\"a.b\": 1}}", 40,
     "Updating the path 'a.b' would create a conflict at 'a'"},
    {"{\"_id\": 1}", "{\"$set\": {\"a.b\": 1}, \"$inc\": {\"a\": 1}}", 40,
     "Updating the path 'a' would create a conflict at 'a'"},
    {"{\"_id\": 1}", "{\"$set\": {\"_id\": 2}}", 66,
     "Performing an update on the path '_id' would modify the immutable field '_id'"},
    {"{\"_id\": 1}", "{\"_id\": 2}", 66,
     "After applying the update, the (immutable) field '_id' was found to have been altered to "
     "_id: 2"},
    {"{\"_id\": \"k\", \"a\": {\"$numberLong\": \"9223372036854775807\"}}",
     "{\"$inc\": {\"a\": 1}}", 2,
     "Failed to apply $inc operations to current value ((NumberLong)9223372036854775807) for "
     "document {_id: \"k\"}"},
};

static bson_t *
json(const char *text)
{
    bson_error_t error;
    bson_t *b = bson_new_from_json((const uint8_t *)text, -1, &error);

    if (!b)
        fail_msg("bad test JSON %s: %s", text, error.message);
    return b;
}

static void
print_doc(const char *label, const bson_t *b)
{
    char *s = bson_as_canonical_extended_json(b, NULL);

    print_message("  %s %s\n", label, s ? s : "(invalid)");
    bson_free(s);
}

/* Checks one outcome: the expected document (byte for byte) or the expected error code, with an
 * empty `out` after an error. */
static bool
check_outcome(size_t row, bool ok, const bson_t *out, const emu_error_t *err,
              const char *expected_json, int code)
{
    if (!expected_json) {
        if (ok) {
            print_message("row %zu: expected error %d, got success\n", row, code);
            print_doc("got", out);
            return false;
        }
        if (err->code != code) {
            print_message("row %zu: expected error %d, got %d (%s)\n", row, code, err->code,
                          err->msg);
            return false;
        }
        if (out->len != 5) {
            print_message("row %zu: out is not empty after an error\n", row);
            return false;
        }
        return true;
    }
    if (!ok) {
        print_message("row %zu: unexpected error %d: %s\n", row, err->code, err->msg);
        return false;
    }
    {
        bson_t *want = json(expected_json);
        bool same = bson_equal(out, want);
        if (!same) {
            print_message("row %zu: result differs\n", row);
            print_doc("want", want);
            print_doc("got ", out);
        }
        bson_destroy(want);
        return same;
    }
}

static void
test_apply_table(void **state)
{
    size_t failures = 0;

    (void)state;
    for (size_t i = 0; i < sizeof apply_cases / sizeof apply_cases[0]; i++) {
        const apply_case_t *c = &apply_cases[i];
        bson_t *doc = json(c->doc), *update = json(c->update);
        bson_t out = BSON_INITIALIZER;
        emu_error_t err = {0, ""};
        bool modified = true;
        bool ok = emu_update_apply(doc, update, &out, &modified, &err);

        if (!check_outcome(i, ok, &out, &err, c->expected, c->code)) {
            print_message("  (doc %s, update %s)\n", c->doc, c->update);
            failures++;
        } else if (ok && modified != !bson_equal(doc, &out)) {
            print_message("row %zu: modified is %d for update %s\n", i, (int)modified, c->update);
            failures++;
        } else if (!ok && modified) {
            print_message("row %zu: modified set on error\n", i);
            failures++;
        }
        bson_destroy(&out);
        bson_destroy(doc);
        bson_destroy(update);
    }
    assert_int_equal(failures, 0);
}

static void
test_upsert_table(void **state)
{
    size_t failures = 0;

    (void)state;
    for (size_t i = 0; i < sizeof upsert_cases / sizeof upsert_cases[0]; i++) {
        const upsert_case_t *c = &upsert_cases[i];
        bson_t *filter = json(c->filter), *update = json(c->update);
        bson_t out = BSON_INITIALIZER;
        emu_error_t err = {0, ""};
        bool ok = emu_update_upsert_doc(filter, update, &out, &err);

        if (!check_outcome(i, ok, &out, &err, c->expected, c->code)) {
            print_message("  (filter %s, update %s)\n", c->filter, c->update);
            failures++;
        }
        bson_destroy(&out);
        bson_destroy(filter);
        bson_destroy(update);
    }
    assert_int_equal(failures, 0);
}

static void
test_validate_table(void **state)
{
    size_t failures = 0;

    (void)state;
    for (size_t i = 0; i < sizeof validate_cases / sizeof validate_cases[0]; i++) {
        const validate_case_t *c = &validate_cases[i];
        bson_t *update = json(c->update);
        emu_error_t err = {0, ""};
        bool ok = emu_update_validate(update, &err);

        if (c->code == 0 ? !ok : (ok || err.code != c->code)) {
            print_message("row %zu: %s: expected %d, got %s %d (%s)\n", i, c->update, c->code,
                          ok ? "success" : "error", err.code, err.msg);
            failures++;
        }
        bson_destroy(update);
    }
    assert_int_equal(failures, 0);
}

static void
test_is_operator(void **state)
{
    static const struct {
        const char *update;
        bool is_operator;
    } cases[] = {
        {"{}", false},
        {"{\"a\": 1}", false},
        {"{\"a\": 1, \"$set\": {\"b\": 1}}", false},
        {"{\"$set\": {\"a\": 1}}", true},
        {"{\"$foo\": 1}", true},
    };

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bson_t *update = json(cases[i].update);
        assert_int_equal(emu_update_is_operator(update), cases[i].is_operator);
        bson_destroy(update);
    }
}

static void
test_messages(void **state)
{
    size_t failures = 0;

    (void)state;
    for (size_t i = 0; i < sizeof message_cases / sizeof message_cases[0]; i++) {
        const message_case_t *c = &message_cases[i];
        bson_t *doc = json(c->doc), *update = json(c->update);
        bson_t out = BSON_INITIALIZER;
        emu_error_t err = {0, ""};
        bool modified;
        bool ok = emu_update_apply(doc, update, &out, &modified, &err);

        if (ok || err.code != c->code || strcmp(err.msg, c->msg) != 0) {
            print_message("row %zu: expected %d \"%s\"\n  got %d \"%s\"\n", i, c->code, c->msg,
                          ok ? 0 : err.code, ok ? "" : err.msg);
            failures++;
        }
        bson_destroy(&out);
        bson_destroy(doc);
        bson_destroy(update);
    }
    assert_int_equal(failures, 0);
}

/* Builds {$set: {"a.a....a": 1}} with `parts` components. */
static bson_t *
deep_set(int parts)
{
    char path[512];
    bson_t *update = bson_new();
    bson_t set;
    size_t len = 0;

    for (int i = 0; i < parts; i++) {
        path[len++] = 'a';
        if (i + 1 < parts)
            path[len++] = '.';
    }
    path[len] = '\0';
    BSON_APPEND_DOCUMENT_BEGIN(update, "$set", &set);
    BSON_APPEND_INT32(&set, path, 1);
    bson_append_document_end(update, &set);
    return update;
}

static void
test_path_depth(void **state)
{
    bson_t *doc = json("{\"_id\": 1}");
    bson_t *ok_update = deep_set(100), *deep_update = deep_set(101);
    bson_t out = BSON_INITIALIZER;
    emu_error_t err = {0, ""};
    bool modified = false;
    bson_iter_t it;
    int depth = 0;

    (void)state;
    assert_true(emu_update_apply(doc, ok_update, &out, &modified, &err));
    assert_true(modified);
    /* The 100 components became 100 nested documents around the value. */
    assert_true(bson_iter_init_find(&it, &out, "a"));
    while (BSON_ITER_HOLDS_DOCUMENT(&it)) {
        bson_iter_t child;
        assert_true(bson_iter_recurse(&it, &child));
        assert_true(bson_iter_next(&child));
        it = child;
        depth++;
    }
    assert_int_equal(depth, 99);
    assert_int_equal(bson_iter_int32(&it), 1);
    bson_reinit(&out);
    assert_false(emu_update_apply(doc, deep_update, &out, &modified, &err));
    assert_int_equal(err.code, EMU_BAD_VALUE);
    bson_destroy(&out);
    bson_destroy(doc);
    bson_destroy(ok_update);
    bson_destroy(deep_update);
}

static void
test_document_too_large(void **state)
{
    const size_t big = 9u * 1024u * 1024u;
    char *text = malloc(big + 1);
    bson_t *doc = bson_new(), *update = bson_new(), *small = bson_new();
    bson_t set, out = BSON_INITIALIZER;
    emu_error_t err = {0, ""};
    bool modified = false;

    (void)state;
    assert_non_null(text);
    memset(text, 'x', big);
    text[big] = '\0';
    BSON_APPEND_INT32(doc, "_id", 1);
    BSON_APPEND_UTF8(doc, "a", text);
    BSON_APPEND_DOCUMENT_BEGIN(update, "$set", &set);
    BSON_APPEND_UTF8(&set, "b", text);
    bson_append_document_end(update, &set);
    assert_false(emu_update_apply(doc, update, &out, &modified, &err));
    assert_int_equal(err.code, 17419);
    assert_string_equal(err.msg, "Resulting document after update is larger than 16777216");
    assert_int_equal(out.len, 5);

    /* The same size reached by an upsert is mongod's 17420. */
    BSON_APPEND_UTF8(small, "a", text);
    bson_reinit(&out);
    assert_false(emu_update_upsert_doc(small, update, &out, &err));
    assert_int_equal(err.code, 17420);

    bson_destroy(&out);
    bson_destroy(doc);
    bson_destroy(update);
    bson_destroy(small);
    free(text);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_apply_table),        cmocka_unit_test(test_upsert_table),
    cmocka_unit_test(test_validate_table),     cmocka_unit_test(test_is_operator),
    cmocka_unit_test(test_messages),           cmocka_unit_test(test_path_depth),
    cmocka_unit_test(test_document_too_large),
};

DC_CMOCKA_MAIN(tests)

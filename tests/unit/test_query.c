/* test_query.c: table-driven unit tests of docdb-emu's query semantics (query.h): value order,
 * filter matching and errors, sort order and projection. Expected values are MongoDB's
 * (shared/research/docdb-wire.md §3 and mongod's matcher), not whatever the code returns. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bson/bson.h>

#include "query.h"

#include "cmocka_main.h"
#include "test_json.h"

/* ------------------------------------------------------------------------------------------ */
/* Value order                                                                                */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
    const char *a; /* extended JSON values */
    const char *b;
    int expected; /* sign of compare(a, b) */
} cmp_case_t;

#define NAN_D        "{\"$numberDouble\": \"NaN\"}"
#define INF_D        "{\"$numberDouble\": \"Infinity\"}"
#define NINF_D       "{\"$numberDouble\": \"-Infinity\"}"
#define LONG(x)      "{\"$numberLong\": \"" x "\"}"
#define DBL(x)       "{\"$numberDouble\": \"" x "\"}"
#define DEC(x)       "{\"$numberDecimal\": \"" x "\"}"
#define DATE(x)      "{\"$date\": {\"$numberLong\": \"" x "\"}}"
#define OID(x)       "{\"$oid\": \"" x "\"}"
#define TS(t, i)     "{\"$timestamp\": {\"t\": " t ", \"i\": " i "}}"
#define BIN(b64, st) "{\"$binary\": {\"base64\": \"" b64 "\", \"subType\": \"" st "\"}}"
#define REGEX(p, o)  "{\"$regularExpression\": {\"pattern\": \"" p "\", \"options\": \"" o "\"}}"
#define MINKEY       "{\"$minKey\": 1}"
#define MAXKEY       "{\"$maxKey\": 1}"
#define UNDEF        "{\"$undefined\": true}"

static const cmp_case_t cmp_cases[] = {
    /* numbers across types, by exact value */
    {"1", LONG("1"), 0},
    {"1", "1.0", 0},
    {"1", DEC("1.0"), 0},
    {DEC("1.00"), DEC("1"), 0},
    {DEC("1E+2"), "100", 0},
    {DEC("1.5"), "1", 1},
    {DEC("1.5"), LONG("2"), -1},
    {"2", LONG("3"), -1},
    {"1.5", LONG("1"), 1},
    {"-1", "-0.5", -1},
    {DBL("-0.0"), "0", 0},
    {DEC("-0"), "0", 0},
    {DEC("-0.000"), DBL("0.0"), 0},
    {LONG("9007199254740993"), DBL("9007199254740992"), 1},
    {LONG("9007199254740993"), DBL("9007199254740994"), -1},
    {LONG("9007199254740992"), DBL("9007199254740992"), 0},
    {LONG("-9007199254740993"), DBL("-9007199254740992"), -1},
    {LONG("9223372036854775807"), DBL("9223372036854775807"), -1}, /* the double is 2^63 */
    {LONG("-9223372036854775808"), DBL("-9223372036854775808"), 0},
    {LONG("9223372036854775807"), DEC("9223372036854775807"), 0},
    {LONG("9223372036854775807"), DEC("9223372036854775808"), -1},
    {LONG("1"), DBL("1.0000000000000002"), -1},
    {DEC("0.1"), "0.1", -1}, /* the double is 0.1000000000000000055511151231257827... */
    {DEC("0.1000000000000000055511151231257827"), "0.1", 0},
    {DEC("0.1000000000000000055511151231257828"), "0.1", 1},
    {DEC("0.5"), "0.5", 0},
    {DEC("12345678901234567890123456789012.34"), DEC("12345678901234567890123456789012.35"), -1},
    {DEC("-5"), DEC("-4.99"), -1},
    {DEC("1E-6176"), "0", 1},
    {DEC("9.999999999999999999999999999999999E+6144"), INF_D, -1},
    /* NaN equals NaN and sorts below every other number */
    {NAN_D, NAN_D, 0},
    {NAN_D, NINF_D, -1},
    {NAN_D, DEC("-Infinity"), -1},
    {DEC("NaN"), NAN_D, 0},
    {DEC("NaN"), LONG("-9223372036854775808"), -1},
    {"0", NAN_D, 1},
    {NINF_D, LONG("-9223372036854775808"), -1},
    {INF_D, DEC("Infinity"), 0},
    {INF_D, LONG("9223372036854775807"), 1},
    {DEC("Infinity"), DBL("1.7976931348623157e308"), 1},
    /* strings: bytes, then length */
    {"\"a\"", "\"b\"", -1},
    {"\"ab\"", "\"a\"", 1},
    {"\"B\"", "\"a\"", -1},
    {"\"\"", "\"a\"", -1},
    {"\"abc\"", "\"abc\"", 0},
    {"\"\\u00e9\"", "\"z\"", 1},
    {"{\"$symbol\": \"a\"}", "\"a\"", 0},
    {"{\"$symbol\": \"b\"}", "\"a\"", 1},
    /* the canonical order of types */
    {MINKEY, UNDEF, -1},
    {UNDEF, "null", -1},
    {"null", NINF_D, -1},
    {"null", NAN_D, -1},
    {"1", "\"1\"", -1},
    {"\"z\"", "{}", -1},
    {"{\"z\": 1}", "[]", -1},
    {"[]", BIN("", "00"), -1},
    {BIN("AQID", "80"), OID("000000000000000000000000"), -1},
    {OID("ffffffffffffffffffffffff"), "false", -1},
    {"true", DATE("-1"), -1},
    {DATE("9223372036854775807"), TS("0", "0"), -1},
    {TS("4294967295", "4294967295"), REGEX("", ""), -1},
    {REGEX("z", "s"), "{\"$code\": \"\"}", -1},
    {"{\"$code\": \"z\"}", MAXKEY, -1},
    {MAXKEY, MAXKEY, 0},
    {MINKEY, MINKEY, 0},
    {"null", "null", 0},
    /* documents: canonical type, then field name, then value; a prefix is smaller */
    {"{\"a\": 1}", "{\"a\": 2}", -1},
    {"{\"a\": 1}", "{\"a\": 1.0}", 0},
    {"{\"a\": 1}", "{\"b\": 0}", -1},
    {"{\"a\": 1}", "{\"a\": 1, \"b\": 1}", -1},
    {"{\"b\": 1}", "{\"a\": \"x\"}", -1}, /* number before string, whatever the names */
    {"{\"a\": null}", "{\"a\": 0}", -1},
    {"{\"a\": {\"b\": 2}}", "{\"a\": {\"b\": 10}}", -1},
    {"{}", "{\"a\": 1}", -1},
    /* arrays */
    {"[1, 2]", "[1, 3]", -1},
    {"[1]", "[1, 0]", -1},
    {"[2]", "[1, 5]", 1},
    {"[1, 2]", "[1.0, 2.0]", 0},
    {"[[1]]", "[1]", 1},
    /* BinData: length, then subtype, then bytes */
    {BIN("AQ==", "05"), BIN("AAA=", "00"), -1},
    {BIN("/w==", "00"), BIN("AA==", "05"), -1},
    {BIN("AQ==", "00"), BIN("Ag==", "00"), -1},
    {BIN("AQ==", "00"), BIN("AQ==", "00"), 0},
    /* ObjectId, bool, date, timestamp, regex */
    {OID("000000000000000000000001"), OID("000000000000000000000002"), -1},
    {OID("100000000000000000000000"), OID("0fffffffffffffffffffffff"), 1},
    {"false", "true", -1},
    {DATE("-1"), DATE("0"), -1},
    {DATE("-9223372036854775808"), DATE("9223372036854775807"), -1},
    {TS("4294967295", "1"), TS("1", "1"), 1},
    {TS("1", "2"), TS("1", "3"), -1},
    {TS("1", "4294967295"), TS("2", "0"), -1},
    {REGEX("a", "i"), REGEX("b", ""), -1},
    {REGEX("a", "i"), REGEX("a", "m"), -1},
    {REGEX("a", ""), REGEX("a", "i"), -1},
};

static int
sign(int x)
{
    return (x > 0) - (x < 0);
}

static void
test_value_compare(void **state)
{
    int failures = 0;
    (void)state;
    for (size_t i = 0; i < sizeof cmp_cases / sizeof cmp_cases[0]; i++) {
        char ja[512], jb[512];
        bson_t *da, *db;
        bson_iter_t ia, ib;
        int ab, ba;
        snprintf(ja, sizeof ja, "{\"v\": %s}", cmp_cases[i].a);
        snprintf(jb, sizeof jb, "{\"v\": %s}", cmp_cases[i].b);
        da = parse_json(ja);
        db = parse_json(jb);
        assert_true(bson_iter_init_find(&ia, da, "v"));
        assert_true(bson_iter_init_find(&ib, db, "v"));
        ab = sign(emu_value_compare(bson_iter_value(&ia), bson_iter_value(&ib)));
        ba = sign(emu_value_compare(bson_iter_value(&ib), bson_iter_value(&ia)));
        if (ab != cmp_cases[i].expected || ba != -cmp_cases[i].expected) {
            print_error("compare case %zu: %s vs %s: got %d / %d, expected %d\n", i, cmp_cases[i].a,
                        cmp_cases[i].b, ab, ba, cmp_cases[i].expected);
            failures++;
        }
        bson_destroy(da);
        bson_destroy(db);
    }
    assert_int_equal(failures, 0);
}

static void
test_type_rank(void **state)
{
    (void)state;
    assert_int_equal(emu_type_rank(BSON_TYPE_MINKEY), -1);
    assert_int_equal(emu_type_rank(BSON_TYPE_EOD), 0);
    assert_int_equal(emu_type_rank(BSON_TYPE_UNDEFINED), 0);
    assert_int_equal(emu_type_rank(BSON_TYPE_NULL), 5);
    assert_int_equal(emu_type_rank(BSON_TYPE_INT32), 10);
    assert_int_equal(emu_type_rank(BSON_TYPE_INT64), 10);
    assert_int_equal(emu_type_rank(BSON_TYPE_DOUBLE), 10);
    assert_int_equal(emu_type_rank(BSON_TYPE_DECIMAL128), 10);
    assert_int_equal(emu_type_rank(BSON_TYPE_UTF8), 15);
    assert_int_equal(emu_type_rank(BSON_TYPE_SYMBOL), 15);
    assert_int_equal(emu_type_rank(BSON_TYPE_DOCUMENT), 20);
    assert_int_equal(emu_type_rank(BSON_TYPE_ARRAY), 25);
    assert_int_equal(emu_type_rank(BSON_TYPE_BINARY), 30);
    assert_int_equal(emu_type_rank(BSON_TYPE_OID), 35);
    assert_int_equal(emu_type_rank(BSON_TYPE_BOOL), 40);
    assert_int_equal(emu_type_rank(BSON_TYPE_DATE_TIME), 45);
    assert_int_equal(emu_type_rank(BSON_TYPE_TIMESTAMP), 47);
    assert_int_equal(emu_type_rank(BSON_TYPE_REGEX), 50);
    assert_int_equal(emu_type_rank(BSON_TYPE_DBPOINTER), 55);
    assert_int_equal(emu_type_rank(BSON_TYPE_CODE), 60);
    assert_int_equal(emu_type_rank(BSON_TYPE_CODEWSCOPE), 65);
    assert_int_equal(emu_type_rank(BSON_TYPE_MAXKEY), 127);
}

static void
test_missing_compare(void **state)
{
    bson_value_t missing, null, undef;
    (void)state;
    memset(&missing, 0, sizeof missing);
    missing.value_type = BSON_TYPE_EOD;
    null = missing;
    null.value_type = BSON_TYPE_NULL;
    undef = missing;
    undef.value_type = BSON_TYPE_UNDEFINED;
    assert_true(emu_value_compare(&missing, &null) < 0);
    assert_int_equal(emu_value_compare(&missing, &undef), 0);
    assert_true(emu_value_compare(&null, &missing) > 0);
}

/* ------------------------------------------------------------------------------------------ */
/* Filters                                                                                    */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
    const char *filter;
    const char *doc;
    bool match;
} match_case_t;

static int
run_match_cases(const char *group, const match_case_t *cases, size_t n)
{
    int failures = 0;
    for (size_t i = 0; i < n; i++) {
        bson_t *f = parse_json(cases[i].filter);
        bson_t *d = parse_json(cases[i].doc);
        emu_error_t err = {0};
        emu_filter_t *flt = emu_filter_new(f, &err);
        if (!flt) {
            print_error("%s case %zu: filter %s refused: %d %s\n", group, i, cases[i].filter,
                        err.code, err.msg);
            failures++;
        } else {
            bool got = emu_filter_matches(flt, d);
            if (got != cases[i].match) {
                print_error("%s case %zu: filter %s doc %s: got %d, expected %d\n", group, i,
                            cases[i].filter, cases[i].doc, got, cases[i].match);
                failures++;
            }
            emu_filter_destroy(flt);
        }
        bson_destroy(f);
        bson_destroy(d);
    }
    return failures;
}

#define RUN_CASES(t) assert_int_equal(run_match_cases(#t, t, sizeof t / sizeof t[0]), 0)

static const match_case_t number_cases[] = {
    {"{\"a\": 1}", "{\"a\": 1.0}", true},
    {"{\"a\": 1}", "{\"a\": " LONG("1") "}", true},
    {"{\"a\": 1}", "{\"a\": " DEC("1.00") "}", true},
    {"{\"a\": " DEC("1E+3") "}", "{\"a\": 1000}", true},
    {"{\"a\": 1}", "{\"a\": 1.5}", false},
    {"{\"a\": " DEC("0.1") "}", "{\"a\": 0.1}", false},
    {"{\"a\": {\"$gt\": " DEC("0.1") "}}", "{\"a\": 0.1}", true},
    {"{\"a\": {\"$gt\": " DBL("9007199254740992") "}}", "{\"a\": " LONG("9007199254740993") "}",
     true},
    {"{\"a\": " DBL("9007199254740992") "}", "{\"a\": " LONG("9007199254740993") "}", false},
    {"{\"a\": " LONG("9007199254740993") "}", "{\"a\": " DBL("9007199254740992") "}", false},
    {"{\"a\": {\"$lt\": " LONG("9007199254740993") "}}", "{\"a\": " DBL("9007199254740992") "}",
     true},
    {"{\"a\": {\"$lte\": " LONG("9007199254740992") "}}", "{\"a\": " DBL("9007199254740992") "}",
     true},
    {"{\"a\": {\"$gt\": " LONG("9223372036854775807") "}}",
     "{\"a\": " DBL("9223372036854775807") "}", true},
    {"{\"a\": " LONG("9223372036854775807") "}", "{\"a\": " DBL("9223372036854775807") "}", false},
    {"{\"a\": {\"$gt\": 5}}", "{\"a\": 5.5}", true},
    {"{\"a\": {\"$gt\": 5}}", "{\"a\": 5}", false},
    {"{\"a\": {\"$gte\": 5}}", "{\"a\": " LONG("5") "}", true},
    {"{\"a\": {\"$lt\": 5}}", "{\"a\": " DEC("4.999999999999999999999999999999999") "}", true},
    {"{\"a\": {\"$lte\": 5}}", "{\"a\": " DEC("5.000000000000000000000000000000001") "}", false},
    {"{\"a\": {\"$gte\": " DBL("-0.0") "}}", "{\"a\": 0}", true},
    {"{\"a\": 0}", "{\"a\": " DEC("-0.000") "}", true},
    {"{\"a\": {\"$lt\": -1}}", "{\"a\": " LONG("-2") "}", true},
    /* NaN: equal to NaN, never $lt/$gt anything */
    {"{\"a\": " NAN_D "}", "{\"a\": " NAN_D "}", true},
    {"{\"a\": " NAN_D "}", "{\"a\": " DEC("NaN") "}", true},
    {"{\"a\": " NAN_D "}", "{\"a\": 0}", false},
    {"{\"a\": {\"$lt\": 0}}", "{\"a\": " NAN_D "}", false},
    {"{\"a\": {\"$lte\": 0}}", "{\"a\": " NAN_D "}", false},
    {"{\"a\": {\"$lt\": " NINF_D "}}", "{\"a\": " NAN_D "}", false},
    {"{\"a\": {\"$gt\": " NAN_D "}}", "{\"a\": 5}", false},
    {"{\"a\": {\"$gt\": " NAN_D "}}", "{\"a\": " NAN_D "}", false},
    {"{\"a\": {\"$gte\": " NAN_D "}}", "{\"a\": " NAN_D "}", true},
    {"{\"a\": {\"$lte\": " NAN_D "}}", "{\"a\": " DEC("NaN") "}", true},
    {"{\"a\": {\"$gte\": " NAN_D "}}", "{\"a\": " NINF_D "}", false},
    {"{\"a\": {\"$ne\": " NAN_D "}}", "{\"a\": " NAN_D "}", false},
    {"{\"a\": {\"$ne\": " NAN_D "}}", "{\"a\": 1}", true},
    {"{\"a\": {\"$in\": [" NAN_D "]}}", "{\"a\": " NAN_D "}", true},
    /* infinities */
    {"{\"a\": {\"$gt\": 1e308}}", "{\"a\": " INF_D "}", true},
    {"{\"a\": " INF_D "}", "{\"a\": " DEC("Infinity") "}", true},
    {"{\"a\": {\"$lt\": " DEC("-Infinity") "}}", "{\"a\": -1e308}", false},
    {"{\"a\": {\"$gt\": " NINF_D "}}", "{\"a\": " LONG("-9223372036854775808") "}", true},
    {"{\"a\": {\"$lt\": " INF_D "}}",
     "{\"a\": " DEC("9.999999999999999999999999999999999E+6144") "}", true},
};

static void
test_filter_numbers(void **state)
{
    (void)state;
    RUN_CASES(number_cases);
}

static const match_case_t bracket_cases[] = {
    {"{\"a\": {\"$gt\": 0}}", "{\"a\": \"x\"}", false},
    {"{\"a\": {\"$gt\": 0}}", "{\"a\": true}", false},
    {"{\"a\": {\"$gte\": 0}}", "{\"a\": false}", false},
    {"{\"a\": {\"$gt\": 0}}", "{\"a\": " DATE("5") "}", false},
    {"{\"a\": {\"$gt\": 0}}", "{\"a\": {\"b\": 1}}", false},
    {"{\"a\": {\"$lt\": \"b\"}}", "{\"a\": \"a\"}", true},
    {"{\"a\": {\"$lt\": \"b\"}}", "{\"a\": 1}", false},
    {"{\"a\": {\"$lt\": \"b\"}}", "{\"a\": null}", false},
    {"{\"a\": {\"$gt\": \"a\"}}", "{\"a\": {\"$symbol\": \"b\"}}", true},
    {"{\"a\": {\"$gt\": \"\"}}", "{\"a\": {}}", false},
    {"{\"a\": {\"$lt\": " DATE("1000") "}}", "{\"a\": " DATE("0") "}", true},
    {"{\"a\": {\"$lt\": " DATE("1000") "}}", "{\"a\": 0}", false},
    {"{\"a\": {\"$lt\": " DATE("1000") "}}", "{\"a\": " TS("0", "0") "}", false},
    {"{\"a\": {\"$gte\": " DATE("0") "}}", "{\"a\": " DATE("-1") "}", false},
    {"{\"a\": {\"$gte\": " DATE("0") "}}", "{\"a\": " DATE("5") "}", true},
    {"{\"a\": {\"$gt\": " TS("1", "0") "}}", "{\"a\": " TS("1", "1") "}", true},
    {"{\"a\": {\"$gt\": " TS("1", "0") "}}", "{\"a\": " DATE("99999") "}", false},
    {"{\"a\": {\"$gt\": " OID("000000000000000000000001") "}}",
     "{\"a\": " OID("000000000000000000000002") "}", true},
    {"{\"a\": {\"$gt\": " OID("000000000000000000000001") "}}", "{\"a\": \"zzz\"}", false},
    {"{\"a\": {\"$gt\": false}}", "{\"a\": true}", true},
    {"{\"a\": {\"$gt\": false}}", "{\"a\": 1}", false},
    {"{\"a\": {\"$gte\": {}}}", "{\"a\": {\"b\": 1}}", true},
    {"{\"a\": {\"$gte\": {}}}", "{\"a\": [1]}", false},
    {"{\"a\": {\"$gt\": []}}", "{\"a\": [1]}", true},
    {"{\"a\": {\"$gt\": " BIN("AQ==", "00") "}}", "{\"a\": " BIN("AQI=", "00") "}", true},
    {"{\"a\": {\"$gt\": " BIN("AQ==", "00") "}}", "{\"a\": \"AQI=\"}", false},
    /* MinKey and MaxKey bounds match across types (missing included) */
    {"{\"a\": {\"$gt\": " MINKEY "}}", "{\"a\": 5}", true},
    {"{\"a\": {\"$gt\": " MINKEY "}}", "{\"a\": null}", true},
    {"{\"a\": {\"$gt\": " MINKEY "}}", "{}", true},
    {"{\"a\": {\"$lt\": " MAXKEY "}}", "{\"a\": \"x\"}", true},
    {"{\"a\": {\"$lt\": " MAXKEY "}}", "{\"a\": " MAXKEY "}", false},
    {"{\"a\": {\"$lte\": " MAXKEY "}}", "{\"a\": " MAXKEY "}", true},
    {"{\"a\": " MAXKEY "}", "{\"a\": 1}", false},
    {"{\"a\": {\"$lt\": " MINKEY "}}", "{\"a\": 1}", false},
    /* strings by bytes */
    {"{\"a\": \"abc\"}", "{\"a\": \"abc\"}", true},
    {"{\"a\": \"abc\"}", "{\"a\": \"abcd\"}", false},
    {"{\"a\": \"abc\"}", "{\"a\": \"ABC\"}", false},
    {"{\"a\": {\"$gt\": \"abc\"}}", "{\"a\": \"abd\"}", true},
    {"{\"a\": {\"$gt\": \"abc\"}}", "{\"a\": \"ab\"}", false},
    {"{\"a\": {\"$lt\": \"a\"}}", "{\"a\": \"B\"}", true},
    {"{\"a\": \"\\u00e9\"}", "{\"a\": \"\\u00e9\"}", true},
    {"{\"a\": \"x\"}", "{\"a\": {\"$symbol\": \"x\"}}", true},
    {"{\"_id\": " OID("5f0000000000000000000001") "}",
     "{\"_id\": " OID("5f0000000000000000000001") "}", true},
    {"{\"_id\": " OID("5f0000000000000000000001") "}",
     "{\"_id\": " OID("5f0000000000000000000002") "}", false},
};

static void
test_filter_bracketing(void **state)
{
    (void)state;
    RUN_CASES(bracket_cases);
}

static const match_case_t null_cases[] = {
    {"{\"a\": null}", "{}", true},
    {"{\"a\": null}", "{\"a\": null}", true},
    {"{\"a\": null}", "{\"a\": 0}", false},
    {"{\"a\": null}", "{\"a\": false}", false},
    {"{\"a\": null}", "{\"a\": []}", false},
    {"{\"a\": null}", "{\"a\": [null]}", true},
    {"{\"a\": null}", "{\"a\": [1, null]}", true},
    {"{\"a\": {\"$eq\": null}}", "{}", true},
    {"{\"a\": {\"$ne\": null}}", "{}", false},
    {"{\"a\": {\"$ne\": null}}", "{\"a\": null}", false},
    {"{\"a\": {\"$ne\": null}}", "{\"a\": 1}", true},
    {"{\"a\": {\"$ne\": null}}", "{\"a\": [1, 2]}", true},
    {"{\"a\": {\"$gte\": null}}", "{}", true},
    {"{\"a\": {\"$gte\": null}}", "{\"a\": null}", true},
    {"{\"a\": {\"$lte\": null}}", "{}", true},
    {"{\"a\": {\"$lte\": null}}", "{\"a\": null}", true},
    {"{\"a\": {\"$gte\": null}}", "{\"a\": 1}", false},
    {"{\"a\": {\"$gt\": null}}", "{\"a\": null}", false},
    {"{\"a\": {\"$gt\": null}}", "{}", false},
    {"{\"a\": {\"$lt\": null}}", "{}", false},
    {"{\"a\": {\"$gt\": null}}", "{\"a\": 1}", false},
    {"{\"a\": {\"$lt\": null}}", "{\"a\": " MINKEY "}", false},
    {"{\"a\": {\"$in\": [null]}}", "{}", true},
    {"{\"a\": {\"$in\": [1, null]}}", "{\"a\": null}", true},
    {"{\"a\": {\"$in\": [1]}}", "{}", false},
    {"{\"a\": {\"$in\": [null]}}", "{\"a\": []}", false},
    {"{\"a\": {\"$nin\": [null]}}", "{}", false},
    {"{\"a\": {\"$nin\": [1]}}", "{}", true},
    {"{\"a\": {\"$nin\": [1, 2]}}", "{\"a\": 3}", true},
    {"{\"a\": {\"$ne\": 1}}", "{}", true},
    {"{\"a\": {\"$exists\": true}}", "{\"a\": null}", true},
    {"{\"a\": {\"$exists\": true}}", "{}", false},
    {"{\"a\": {\"$exists\": false}}", "{\"a\": null}", false},
    {"{\"a\": {\"$exists\": false}}", "{}", true},
    {"{\"a\": {\"$exists\": 0}}", "{}", true},
    {"{\"a\": {\"$exists\": 1}}", "{\"b\": 1}", false},
    {"{\"a\": {\"$exists\": true}}", "{\"a\": " UNDEF "}", true},
    {"{\"a\": {\"$$type\": \"null\"}}", "{\"a\": null}", true},
    {"{\"a\": {\"$$type\": \"null\"}}", "{}", false},
    {"{\"a\": {\"$$type\": {\"$numberInt\": \"10\"}}}", "{\"a\": null}", true},
    {"{\"a.b\": null}", "{\"a\": {\"c\": 1}}", true},
    {"{\"a.b\": null}", "{\"a\": 1}", true},
    {"{\"a.b\": null}", "{\"a\": {\"b\": null}}", true},
    {"{\"a.b\": null}", "{\"a\": {\"b\": 0}}", false},
    {"{\"a.b\": null}", "{\"a\": [{\"b\": 1}, {\"c\": 1}]}", true},
    {"{\"a.b\": null}", "{\"a\": [{\"b\": 1}]}", false},
    {"{\"a.b\": {\"$ne\": null}}", "{\"a\": [{\"b\": 1}, {\"c\": 1}]}", false},
    {"{\"a.b\": {\"$exists\": true}}", "{\"a\": [{\"c\": 1}, {\"b\": 2}]}", true},
    {"{\"a.b\": {\"$exists\": false}}", "{\"a\": [{\"c\": 1}, {\"b\": 2}]}", false},
    {"{\"a.b\": {\"$exists\": false}}", "{\"a\": [{\"c\": 1}]}", true},
};

static void
test_filter_null_missing(void **state)
{
    (void)state;
    RUN_CASES(null_cases);
}

static const match_case_t array_cases[] = {
    {"{\"a\": 2}", "{\"a\": [1, 2, 3]}", true},
    {"{\"a\": 4}", "{\"a\": [1, 2, 3]}", false},
    {"{\"a\": 2.0}", "{\"a\": [1, " LONG("2") "]}", true},
    {"{\"a\": [1, 2]}", "{\"a\": [1, 2]}", true},
    {"{\"a\": [1, 2]}", "{\"a\": [2, 1]}", false},
    {"{\"a\": [1, 2]}", "{\"a\": [1, 2, 3]}", false},
    {"{\"a\": [1, 2]}", "{\"a\": [[1, 2], 3]}", true},
    {"{\"a\": [1]}", "{\"a\": 1}", false},
    {"{\"a\": 1}", "{\"a\": [[1]]}", false},
    {"{\"a\": []}", "{\"a\": []}", true},
    {"{\"a\": []}", "{\"a\": [[]]}", true},
    {"{\"a\": []}", "{\"a\": [1]}", false},
    {"{\"a\": {\"$eq\": [1, 2]}}", "{\"a\": [1, 2]}", true},
    {"{\"a\": {\"$gt\": 3}}", "{\"a\": [1, 2, 3, 4]}", true},
    {"{\"a\": {\"$gt\": 3}}", "{\"a\": [\"red\", 4]}", true},
    {"{\"a\": {\"$gt\": 3}}", "{\"a\": [\"red\", \"blue\"]}", false},
    {"{\"a\": {\"$gt\": 3}}", "{\"a\": []}", false},
    {"{\"a\": {\"$gt\": 1, \"$lt\": 3}}", "{\"a\": [0, 5]}", true},
    {"{\"a\": {\"$gt\": 1, \"$lt\": 3}}", "{\"a\": 5}", false},
    {"{\"a\": {\"$gt\": 1, \"$lt\": 3}}", "{\"a\": 2}", true},
    {"{\"a\": {\"$in\": [5, 7]}}", "{\"a\": [1, 7]}", true},
    {"{\"a\": {\"$in\": [5, 7]}}", "{\"a\": [1, 8]}", false},
    {"{\"a\": {\"$in\": [[1, 7]]}}", "{\"a\": [1, 7]}", true},
    {"{\"a\": {\"$in\": [\"x\", 2, " DEC("3") ", null]}}", "{\"a\": 3.0}", true},
    {"{\"a\": {\"$in\": []}}", "{\"a\": 1}", false},
    {"{\"a\": {\"$nin\": []}}", "{\"a\": 1}", true},
    {"{\"a\": {\"$nin\": [7]}}", "{\"a\": [1, 7]}", false},
    {"{\"a\": {\"$ne\": 7}}", "{\"a\": [1, 7]}", false},
    {"{\"a\": {\"$ne\": 7}}", "{\"a\": [1, 8]}", true},
    {"{\"a\": {\"$ne\": [1, 8]}}", "{\"a\": [1, 8]}", false},
    {"{\"a\": {\"$exists\": true}}", "{\"a\": []}", true},
    {"{\"a\": {\"$$type\": \"array\"}}", "{\"a\": []}", true},
    {"{\"a\": {\"$$type\": \"array\"}}", "{\"a\": [1]}", true},
    {"{\"a\": {\"$$type\": \"array\"}}", "{\"a\": 1}", false},
    {"{\"a\": {\"$$type\": \"int\"}}", "{\"a\": [\"x\", 1]}", true},
    {"{\"a\": {\"$$type\": \"string\"}}", "{\"a\": [1]}", false},
    {"{\"a\": {\"b\": 1}}", "{\"a\": [{\"b\": 1}]}", true},
    {"{\"a\": [{\"b\": 1}]}", "{\"a\": [{\"b\": 1}]}", true},
};

static void
test_filter_arrays(void **state)
{
    (void)state;
    RUN_CASES(array_cases);
}

static const match_case_t path_cases[] = {
    {"{\"a.b\": 1}", "{\"a\": {\"b\": 1}}", true},
    {"{\"a.b\": 1}", "{\"a\": {\"b\": 2}}", false},
    {"{\"a.b\": 1}", "{\"a\": [{\"b\": 1}, {\"b\": 2}]}", true},
    {"{\"a.b\": 2}", "{\"a\": [{\"b\": 1}, {\"b\": 2}]}", true},
    {"{\"a.b\": 3}", "{\"a\": [{\"b\": 1}, {\"b\": 2}]}", false},
    {"{\"a.b\": {\"$gt\": 1}}", "{\"a\": [{\"b\": 1}, {\"b\": 2}]}", true},
    {"{\"a.b\": {\"$lt\": 1}}", "{\"a\": [{\"b\": 1}, {\"b\": 2}]}", false},
    {"{\"a.b\": {\"$ne\": 1}}", "{\"a\": [{\"b\": 1}, {\"b\": 2}]}", false},
    {"{\"a.b\": {\"$ne\": 1}}", "{\"a\": [{\"b\": 2}]}", true},
    {"{\"a.b.c\": 1}", "{\"a\": {\"b\": [{\"c\": 1}]}}", true},
    {"{\"a.b.c\": 1}", "{\"a\": [{\"b\": [{\"c\": 2}, {\"c\": 1}]}]}", true},
    {"{\"a.b.c\": 3}", "{\"a\": [{\"b\": [{\"c\": 2}, {\"c\": 1}]}]}", false},
    {"{\"a.b\": 1}", "{\"a\": 1}", false},
    {"{\"a.b\": 1}", "{}", false},
    {"{\"a.b\": 1}", "{\"a\": [[{\"b\": 1}]]}", false},
    {"{\"a.b\": [1, 2]}", "{\"a\": {\"b\": [1, 2]}}", true},
    {"{\"a.b\": 1}", "{\"a\": {\"b\": [1, 2]}}", true},
    {"{\"a.b\": {\"$in\": [2]}}", "{\"a\": [{\"b\": [1, 2]}]}", true},
    {"{\"a.b\": {\"b\": 1}}", "{\"a\": {\"b\": {\"b\": 1}}}", true},
    {"{\"a.0\": 10}", "{\"a\": [10, 20]}", true},
    {"{\"a.1\": 10}", "{\"a\": [10, 20]}", false},
    {"{\"a.1\": 20}", "{\"a\": [10, 20]}", true},
    {"{\"a.2\": 20}", "{\"a\": [10, 20]}", false},
    {"{\"a.0\": 10}", "{\"a\": {\"0\": 10}}", true},
    {"{\"a.0.b\": 1}", "{\"a\": [{\"b\": 1}]}", true},
    {"{\"a.1.b\": 1}", "{\"a\": [{\"b\": 1}, {\"b\": 2}]}", false},
    {"{\"a.1.b\": 2}", "{\"a\": [{\"b\": 1}, {\"b\": 2}]}", true},
    {"{\"a.0.b\": 1}", "{\"a\": [[{\"b\": 1}]]}", true},
    {"{\"a.0\": {\"$gt\": 15}}", "{\"a\": [10, 20]}", false},
    {"{\"a.b.0\": 5}", "{\"a\": [{\"b\": [5, 6]}]}", true},
    {"{\"a.b\": {\"$$type\": \"int\"}}", "{\"a\": [{\"b\": \"x\"}, {\"b\": 3}]}", true},
};

static void
test_filter_paths(void **state)
{
    (void)state;
    RUN_CASES(path_cases);
}

static const match_case_t type_cases[] = {
    {"{\"a\": {\"$$type\": \"double\"}}", "{\"a\": 1.5}", true},
    {"{\"a\": {\"$$type\": \"double\"}}", "{\"a\": 1}", false},
    {"{\"a\": {\"$$type\": {\"$numberInt\": \"1\"}}}", "{\"a\": 1.5}", true},
    {"{\"a\": {\"$$type\": \"string\"}}", "{\"a\": \"x\"}", true},
    {"{\"a\": {\"$$type\": {\"$numberInt\": \"2\"}}}", "{\"a\": \"x\"}", true},
    {"{\"a\": {\"$$type\": \"object\"}}", "{\"a\": {}}", true},
    {"{\"a\": {\"$$type\": \"object\"}}", "{\"a\": []}", false},
    {"{\"a\": {\"$$type\": {\"$numberInt\": \"4\"}}}", "{\"a\": []}", true},
    {"{\"a\": {\"$$type\": \"binData\"}}", "{\"a\": " BIN("AQ==", "00") "}", true},
    {"{\"a\": {\"$$type\": \"undefined\"}}", "{\"a\": " UNDEF "}", true},
    {"{\"a\": {\"$$type\": \"objectId\"}}", "{\"a\": " OID("000000000000000000000001") "}", true},
    {"{\"a\": {\"$$type\": {\"$numberInt\": \"7\"}}}", "{\"a\": \"000000000000000000000001\"}",
     false},
    {"{\"a\": {\"$$type\": \"bool\"}}", "{\"a\": false}", true},
    {"{\"a\": {\"$$type\": \"bool\"}}", "{\"a\": 0}", false},
    {"{\"a\": {\"$$type\": \"date\"}}", "{\"a\": " DATE("0") "}", true},
    {"{\"a\": {\"$$type\": \"date\"}}", "{\"a\": " TS("0", "0") "}", false},
    {"{\"a\": {\"$$type\": \"regex\"}}", "{\"a\": " REGEX("a", "") "}", true},
    {"{\"a\": {\"$$type\": \"javascript\"}}", "{\"a\": {\"$code\": \"x\"}}", true},
    {"{\"a\": {\"$$type\": \"symbol\"}}", "{\"a\": {\"$symbol\": \"x\"}}", true},
    {"{\"a\": {\"$$type\": \"string\"}}", "{\"a\": {\"$symbol\": \"x\"}}", false},
    {"{\"a\": {\"$$type\": \"int\"}}", "{\"a\": 1}", true},
    {"{\"a\": {\"$$type\": {\"$numberInt\": \"16\"}}}", "{\"a\": 1}", true},
    {"{\"a\": {\"$$type\": \"int\"}}", "{\"a\": " LONG("1") "}", false},
    {"{\"a\": {\"$$type\": \"timestamp\"}}", "{\"a\": " TS("1", "1") "}", true},
    {"{\"a\": {\"$$type\": \"long\"}}", "{\"a\": " LONG("1") "}", true},
    {"{\"a\": {\"$$type\": " LONG("18") "}}", "{\"a\": " LONG("1") "}", true},
    {"{\"a\": {\"$$type\": \"decimal\"}}", "{\"a\": " DEC("1") "}", true},
    {"{\"a\": {\"$$type\": {\"$numberInt\": \"19\"}}}", "{\"a\": " DEC("1") "}", true},
    {"{\"a\": {\"$$type\": \"minKey\"}}", "{\"a\": " MINKEY "}", true},
    {"{\"a\": {\"$$type\": {\"$numberInt\": \"-1\"}}}", "{\"a\": " MINKEY "}", true},
    {"{\"a\": {\"$$type\": \"maxKey\"}}", "{\"a\": " MAXKEY "}", true},
    {"{\"a\": {\"$$type\": {\"$numberInt\": \"127\"}}}", "{\"a\": " MAXKEY "}", true},
    {"{\"a\": {\"$$type\": \"number\"}}", "{\"a\": 1}", true},
    {"{\"a\": {\"$$type\": \"number\"}}", "{\"a\": " LONG("1") "}", true},
    {"{\"a\": {\"$$type\": \"number\"}}", "{\"a\": 1.5}", true},
    {"{\"a\": {\"$$type\": \"number\"}}", "{\"a\": " DEC("1") "}", true},
    {"{\"a\": {\"$$type\": \"number\"}}", "{\"a\": \"1\"}", false},
    {"{\"a\": {\"$$type\": \"number\"}}", "{\"a\": true}", false},
    {"{\"a\": {\"$$type\": [\"string\", \"int\"]}}", "{\"a\": 1}", true},
    {"{\"a\": {\"$$type\": [\"string\", \"int\"]}}", "{\"a\": 1.5}", false},
    {"{\"a\": {\"$$type\": [{\"$numberInt\": \"2\"}, \"bool\"]}}", "{\"a\": true}", true},
    {"{\"a\": {\"$$type\": " DBL("2.0") "}}", "{\"a\": \"s\"}", true},
    {"{\"a\": {\"$$type\": \"int\"}}", "{}", false},
};

static void
test_filter_type(void **state)
{
    (void)state;
    RUN_CASES(type_cases);
}

static const match_case_t logic_cases[] = {
    {"{\"a\": {\"$not\": {\"$gt\": 5}}}", "{\"a\": 3}", true},
    {"{\"a\": {\"$not\": {\"$gt\": 5}}}", "{\"a\": 6}", false},
    {"{\"a\": {\"$not\": {\"$gt\": 5}}}", "{}", true},
    {"{\"a\": {\"$not\": {\"$gt\": 5}}}", "{\"a\": \"x\"}", true},
    {"{\"a\": {\"$not\": {\"$gt\": 5}}}", "{\"a\": [1, 6]}", false},
    {"{\"a\": {\"$not\": {\"$gt\": 1, \"$lt\": 5}}}", "{\"a\": 3}", false},
    {"{\"a\": {\"$not\": {\"$gt\": 1, \"$lt\": 5}}}", "{\"a\": 7}", true},
    {"{\"a\": {\"$not\": {\"$eq\": null}}}", "{}", false},
    {"{\"a\": {\"$not\": {\"$in\": [1, 2]}}}", "{\"a\": 3}", true},
    {"{\"a\": {\"$not\": {\"$not\": {\"$gt\": 5}}}}", "{\"a\": 6}", true},
    {"{\"a\": {\"$not\": {\"$$type\": \"string\"}}}", "{\"a\": 1}", true},
    {"{\"a\": {\"$not\": {\"$exists\": true}}}", "{}", true},
    {"{\"a.b\": {\"$not\": {\"$eq\": 1}}}", "{\"a\": [{\"b\": 2}, {\"b\": 1}]}", false},
    {"{\"$and\": [{\"a\": 1}, {\"b\": 2}]}", "{\"a\": 1, \"b\": 2}", true},
    {"{\"$and\": [{\"a\": 1}, {\"b\": 2}]}", "{\"a\": 1}", false},
    {"{\"$or\": [{\"a\": 1}, {\"b\": 2}]}", "{\"b\": 2}", true},
    {"{\"$or\": [{\"a\": 1}, {\"b\": 2}]}", "{\"c\": 1}", false},
    {"{\"$nor\": [{\"a\": 1}, {\"b\": 2}]}", "{\"c\": 1}", true},
    {"{\"$nor\": [{\"a\": 1}, {\"b\": 2}]}", "{\"a\": 1}", false},
    {"{\"$nor\": [{\"a\": {\"$gt\": 5}}]}", "{\"a\": \"x\"}", true},
    {"{\"a\": 1, \"b\": 2}", "{\"a\": 1, \"b\": 3}", false},
    {"{\"a\": 1, \"b\": 2}", "{\"b\": 2, \"a\": 1}", true},
    {"{\"$or\": [{\"a\": null}, {\"a\": 5}]}", "{}", true},
    {"{\"$and\": [{\"$or\": [{\"a\": 1}, {\"a\": 2}]}, {\"$nor\": [{\"b\": 1}]}]}",
     "{\"a\": 2, \"b\": 3}", true},
    {"{\"$and\": [{\"$or\": [{\"a\": 1}, {\"a\": 2}]}, {\"$nor\": [{\"b\": 1}]}]}",
     "{\"a\": 2, \"b\": 1}", false},
    {"{\"$and\": [{\"a\": {\"$gt\": 1}}, {\"a\": {\"$lt\": 3}}]}", "{\"a\": [0, 5]}", true},
    {"{\"$or\": [{\"a\": 1}], \"b\": 2}", "{\"a\": 1, \"b\": 2}", true},
    {"{\"$or\": [{\"a\": 1}], \"b\": 2}", "{\"a\": 1}", false},
    {"{\"$and\": [{}]}", "{\"x\": 1}", true},
    {"{\"$or\": [{}, {\"a\": 1}]}", "{}", true},
    {"{}", "{\"x\": 1}", true},
    {"{\"$comment\": \"hi\", \"a\": 1}", "{\"a\": 1}", true},
    {"{\"$alwaysFalse\": 1}", "{}", false},
    {"{\"$alwaysTrue\": 1}", "{}", true},
};

static void
test_filter_logic(void **state)
{
    (void)state;
    RUN_CASES(logic_cases);
}

static const match_case_t doc_cases[] = {
    {"{\"a\": {\"b\": 1, \"c\": 2}}", "{\"a\": {\"b\": 1, \"c\": 2}}", true},
    {"{\"a\": {\"b\": 1, \"c\": 2}}", "{\"a\": {\"c\": 2, \"b\": 1}}", false},
    {"{\"a\": {\"b\": 1}}", "{\"a\": {\"b\": 1.0}}", true},
    {"{\"a\": {\"b\": 1}}", "{\"a\": {\"b\": 1, \"c\": 1}}", false},
    {"{\"a\": {}}", "{\"a\": {}}", true},
    {"{\"a\": {}}", "{}", false},
    {"{\"a\": {\"$eq\": {\"$gt\": 1}}}", "{\"a\": {\"$gt\": 1}}", true},
    {"{\"a\": {\"$eq\": {\"$gt\": 1}}}", "{\"a\": 2}", false},
    {"{\"a\": {\"$ref\": \"c\", \"$id\": 1}}", "{\"a\": {\"$ref\": \"c\", \"$id\": 1}}", true},
    {"{\"a\": {\"$gt\": {\"b\": 1}}}", "{\"a\": {\"b\": 2}}", true},
    {"{\"a\": {\"$gt\": {\"b\": 1}}}", "{\"a\": {\"a\": 5}}", false},
    {"{\"a\": {\"$in\": [{\"b\": 1}]}}", "{\"a\": [{\"b\": 1.0}]}", true},
    {"{\"a\": " DATE("0") "}", "{\"a\": " DATE("0") "}", true},
    {"{\"a\": " DATE("0") "}", "{\"a\": 0}", false},
    {"{\"a\": " TS("1", "2") "}", "{\"a\": " TS("1", "2") "}", true},
};

/* {a: /re/} is a regex match (refused here), so regex operands go through $eq. */
static const match_case_t regex_eq_cases[] = {
    {"{\"a\": {\"$eq\": " REGEX("x", "i") "}}", "{\"a\": " REGEX("x", "i") "}", true},
    {"{\"a\": {\"$eq\": " REGEX("x", "i") "}}", "{\"a\": " REGEX("x", "") "}", false},
    {"{\"a\": {\"$eq\": " REGEX("x", "i") "}}", "{\"a\": \"x\"}", false},
};

static void
test_filter_documents(void **state)
{
    (void)state;
    RUN_CASES(doc_cases);
    RUN_CASES(regex_eq_cases);
}

typedef struct {
    const char *filter;
    int code;
    const char *msg; /* substring of the message */
} error_case_t;

static const error_case_t error_cases[] = {
    {"{\"a\": {\"$foo\": 1}}", 2, "unknown operator: $foo"},
    {"{\"$foo\": 1}", 2, "unknown top level operator: $foo"},
    {"{\"a\": {\"$in\": 5}}", 2, "$in needs an array"},
    {"{\"a\": {\"$nin\": {}}}", 2, "$nin needs an array"},
    {"{\"$and\": []}", 2, "$and/$or/$nor must be a nonempty array"},
    {"{\"$or\": []}", 2, "$and/$or/$nor must be a nonempty array"},
    {"{\"$nor\": {}}", 2, "$nor must be an array"},
    {"{\"$or\": [1]}", 2, "$or/$and/$nor entries need to be full objects"},
    {"{\"a\": {\"$not\": 5}}", 2, "$not needs a regex or a document"},
    {"{\"a\": {\"$not\": {}}}", 2, "$not cannot be empty"},
    {"{\"a\": {\"$not\": {\"b\": 1}}}", 2, "unknown operator: b"},
    {"{\"a\": {\"$gt\": 1, \"b\": 2}}", 2, "unknown operator: b"},
    {"{\"a\": {\"$and\": [{\"b\": 1}]}}", 2, "unknown operator: $and"},
    {"{\"$and\": [{\"a\": {\"$foo\": 1}}]}", 2, "unknown operator: $foo"},
    {"{\"$or\": [{\"$bar\": 1}]}", 2, "unknown top level operator: $bar"},
    {"{\"a\": {\"$$type\": \"foo\"}}", 2, "Unknown type name alias: foo"},
    {"{\"a\": {\"$$type\": \"String\"}}", 2, "Unknown type name alias: String"},
    {"{\"a\": {\"$$type\": {\"$numberInt\": \"99\"}}}", 2, "Invalid numerical type code: 99"},
    {"{\"a\": {\"$$type\": " DBL("1.5") "}}", 2, "Invalid numerical type code"},
    {"{\"a\": {\"$$type\": []}}", 9, "must match at least one type"},
    {"{\"a\": {\"$$type\": {}}}", 2, "type must be represented as a number or a string"},
    {"{\"a\": {\"$$type\": [\"int\", true]}}", 2,
     "type must be represented as a number or a string"},
    {"{\"a\": {\"$in\": [{\"$gt\": 1}]}}", 2, "cannot nest $ under $in"},
    {"{\"a\": " UNDEF "}", 2, "cannot compare to undefined"},
    {"{\"a\": {\"$eq\": " UNDEF "}}", 2, "cannot compare to undefined"},
    {"{\"a\": {\"$lt\": " UNDEF "}}", 2, "cannot compare to undefined"},
    {"{\"a\": {\"$in\": [" UNDEF "]}}", 2, "undefined"},
    {"{\"a\": {\"$gt\": " REGEX("x", "") "}}", 2, "Can't have RegEx as arg to predicate"},
    {"{\"a\": {\"$ne\": " REGEX("x", "") "}}", 2, "Can't have regex as arg to $ne."},
    {"{\"a\": {\"$size\": 1}}", 2, "$size"},
    {"{\"a\": {\"$elemMatch\": {\"b\": 1}}}", 2, "$elemMatch"},
    {"{\"a\": {\"$regex\": \"x\"}}", 2, "regular expression"},
    {"{\"a\": " REGEX("x", "") "}", 2, "regular expression"},
    {"{\"$where\": \"true\"}", 2, "$where"},
    {"{\"$expr\": {\"$eq\": [1, 1]}}", 2, "$expr"},
    {"{\"$alwaysTrue\": 2}", 9, "$alwaysTrue must be an integer value of 1"},
};

static void
test_filter_errors(void **state)
{
    int failures = 0;
    (void)state;
    for (size_t i = 0; i < sizeof error_cases / sizeof error_cases[0]; i++) {
        bson_t *f = parse_json(error_cases[i].filter);
        emu_error_t err = {0};
        emu_filter_t *flt = emu_filter_new(f, &err);
        if (flt) {
            print_error("error case %zu: filter %s accepted\n", i, error_cases[i].filter);
            emu_filter_destroy(flt);
            failures++;
        } else if (err.code != error_cases[i].code || !strstr(err.msg, error_cases[i].msg)) {
            print_error("error case %zu: filter %s: got %d \"%s\", expected %d \"%s\"\n", i,
                        error_cases[i].filter, err.code, err.msg, error_cases[i].code,
                        error_cases[i].msg);
            failures++;
        }
        bson_destroy(f);
    }
    assert_int_equal(failures, 0);
}

/* Appends `levels` nested {$and: [...]} around {a: 1} to parent (libbson's JSON reader limits
 * nesting, so deep filters are built directly). */
static void
append_nested_and(bson_t *parent, int levels)
{
    bson_t arr, doc;
    if (levels == 0) {
        BSON_APPEND_INT32(parent, "a", 1);
        return;
    }
    bson_append_array_begin(parent, "$and", -1, &arr);
    bson_append_document_begin(&arr, "0", -1, &doc);
    append_nested_and(&doc, levels - 1);
    bson_append_document_end(&arr, &doc);
    bson_append_array_end(parent, &arr);
}

/* Appends `levels` nested {$not: ...} around {$gt: 1}. */
static void
append_nested_not(bson_t *parent, int levels)
{
    bson_t doc;
    if (levels == 0) {
        BSON_APPEND_INT32(parent, "$gt", 1);
        return;
    }
    bson_append_document_begin(parent, "$not", -1, &doc);
    append_nested_not(&doc, levels - 1);
    bson_append_document_end(parent, &doc);
}

static bson_t *
nested_filter(int levels, bool use_not)
{
    bson_t *b = bson_new();
    if (use_not) {
        bson_t a;
        bson_append_document_begin(b, "a", -1, &a);
        append_nested_not(&a, levels);
        bson_append_document_end(b, &a);
    } else {
        append_nested_and(b, levels);
    }
    return b;
}

static void
test_filter_depth(void **state)
{
    emu_error_t err = {0};
    bson_t *doc = parse_json("{\"a\": 1}");
    bson_t *ok = nested_filter(100, false);
    bson_t *deep = nested_filter(101, false);
    bson_t *ok_not = nested_filter(100, true);
    bson_t *deep_not = nested_filter(150, true);
    emu_filter_t *f;
    (void)state;

    f = emu_filter_new(ok, &err);
    assert_non_null(f);
    assert_true(emu_filter_matches(f, doc));
    emu_filter_destroy(f);

    assert_null(emu_filter_new(deep, &err));
    assert_int_equal(err.code, 2);
    assert_non_null(strstr(err.msg, "depth"));

    f = emu_filter_new(ok_not, &err);
    assert_non_null(f);
    assert_false(emu_filter_matches(f, doc)); /* an even number of $not: a > 1 */
    emu_filter_destroy(f);

    assert_null(emu_filter_new(deep_not, &err));
    assert_int_equal(err.code, 2);

    bson_destroy(doc);
    bson_destroy(ok);
    bson_destroy(deep);
    bson_destroy(ok_not);
    bson_destroy(deep_not);
}

/* The filter keeps its own copy: the caller's bson may go away. */
static void
test_filter_owns_copy(void **state)
{
    emu_error_t err = {0};
    bson_t *f = parse_json("{\"a\": {\"$in\": [\"x\", \"y\"]}, \"b\": \"z\"}");
    bson_t *d = parse_json("{\"a\": \"y\", \"b\": \"z\"}");
    emu_filter_t *flt = emu_filter_new(f, &err);
    (void)state;
    assert_non_null(flt);
    bson_destroy(f);
    assert_true(emu_filter_matches(flt, d));
    emu_filter_destroy(flt);
    bson_destroy(d);
    emu_filter_destroy(NULL);
}

/* ------------------------------------------------------------------------------------------ */
/* Sort                                                                                       */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
    const char *doc;
    int group; /* expected position; equal groups tie (their order is unspecified) */
} sort_item_t;

/* Sorts the documents by spec and checks the groups come out non-decreasing. */
static int
check_sort(const char *name, const char *spec_json, const sort_item_t *items, size_t n)
{
    emu_error_t err = {0};
    bson_t *spec = parse_json(spec_json);
    emu_sort_t *s = emu_sort_new(spec, &err);
    bson_t **docs = calloc(n, sizeof *docs);
    bson_value_t *keys;
    size_t *order = calloc(n, sizeof *order);
    int nk, failures = 0;
    assert_non_null(s);
    assert_non_null(docs);
    assert_non_null(order);
    nk = emu_sort_nkeys(s);
    keys = calloc(n * (size_t)(nk > 0 ? nk : 1), sizeof *keys);
    assert_non_null(keys);
    /* Deliberately start from the reverse of the expected order. */
    for (size_t i = 0; i < n; i++) {
        docs[i] = parse_json(items[n - 1 - i].doc);
        emu_sort_keys(s, docs[i], &keys[i * (size_t)nk]);
        order[i] = i;
    }
    for (size_t i = 1; i < n; i++) {
        size_t cur = order[i], j = i;
        while (j > 0 &&
               emu_sort_compare(s, &keys[order[j - 1] * (size_t)nk], &keys[cur * (size_t)nk]) > 0) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = cur;
    }
    for (size_t i = 1; i < n; i++) {
        int prev = items[n - 1 - order[i - 1]].group, cur = items[n - 1 - order[i]].group;
        if (prev > cur) {
            print_error("%s: %s sorted before %s\n", name, items[n - 1 - order[i - 1]].doc,
                        items[n - 1 - order[i]].doc);
            failures++;
        }
    }
    for (size_t i = 0; i < n; i++)
        bson_destroy(docs[i]);
    free(docs);
    free(keys);
    free(order);
    emu_sort_destroy(s);
    bson_destroy(spec);
    return failures;
}

#define CHECK_SORT(spec, items)                                                                    \
    assert_int_equal(check_sort(#items, spec, items, sizeof items / sizeof items[0]), 0)

static const sort_item_t mixed_asc[] = {
    {"{\"v\": " MINKEY "}", 0},
    {"{\"v\": []}", 1},
    {"{\"v\": null}", 2},
    {"{}", 2},
    {"{\"v\": [null, 5]}", 2},
    {"{\"v\": " NAN_D "}", 3},
    {"{\"v\": " DEC("NaN") "}", 3},
    {"{\"v\": " NINF_D "}", 4},
    {"{\"v\": " LONG("-9223372036854775808") "}", 5},
    {"{\"v\": -1.5}", 6},
    {"{\"v\": 1}", 7},
    {"{\"v\": 1.0}", 7},
    {"{\"v\": " DEC("1.000") "}", 7},
    {"{\"v\": " LONG("2") "}", 8},
    {"{\"v\": [2.5, \"x\"]}", 9},
    {"{\"v\": " DEC("3") "}", 10},
    {"{\"v\": " LONG("9007199254740992") "}", 11},
    {"{\"v\": " LONG("9007199254740993") "}", 12},
    {"{\"v\": " DBL("9007199254740994") "}", 13},
    {"{\"v\": " INF_D "}", 14},
    {"{\"v\": \"\"}", 15},
    {"{\"v\": \"B\"}", 16},
    {"{\"v\": \"a\"}", 17},
    {"{\"v\": \"ab\"}", 18},
    {"{\"v\": {}}", 19},
    {"{\"v\": {\"a\": 1}}", 20},
    {"{\"v\": [{\"b\": 0}, {\"c\": 0}]}", 21},
    {"{\"v\": [[1]]}", 22},
    {"{\"v\": " BIN("AQ==", "05") "}", 23},
    {"{\"v\": " BIN("AAA=", "00") "}", 24},
    {"{\"v\": " OID("000000000000000000000001") "}", 25},
    {"{\"v\": " OID("ff0000000000000000000000") "}", 26},
    {"{\"v\": false}", 27},
    {"{\"v\": true}", 28},
    {"{\"v\": " DATE("-1") "}", 29},
    {"{\"v\": " DATE("0") "}", 30},
    {"{\"v\": " TS("1", "1") "}", 31},
    {"{\"v\": " TS("4294967295", "0") "}", 32},
    {"{\"v\": " REGEX("a", "") "}", 33},
    {"{\"v\": " MAXKEY "}", 34},
};

static void
test_sort_mixed(void **state)
{
    (void)state;
    CHECK_SORT("{\"v\": 1}", mixed_asc);
}

/* Descending: arrays sort by their largest element; [] still sorts below null. */
static const sort_item_t mixed_desc[] = {
    {"{\"v\": " MAXKEY "}", 0},
    {"{\"v\": true}", 1},
    {"{\"v\": [1, \"z\"]}", 2},
    {"{\"v\": \"a\"}", 3},
    {"{\"v\": [1, 10]}", 4},
    {"{\"v\": [4, 6]}", 5},
    {"{\"v\": 5}", 6},
    {"{\"v\": " LONG("5") "}", 6},
    {"{\"v\": " NAN_D "}", 7},
    {"{\"v\": null}", 8},
    {"{}", 8},
    {"{\"v\": []}", 9},
    {"{\"v\": " MINKEY "}", 10},
};

static void
test_sort_desc(void **state)
{
    (void)state;
    CHECK_SORT("{\"v\": -1}", mixed_desc);
}

/* Ascending: arrays sort by their smallest element. */
static const sort_item_t array_asc[] = {
    {"{\"v\": [1, 10]}", 0},
    {"{\"v\": [4, 6]}", 1},
    {"{\"v\": 5}", 2},
    {"{\"v\": [\"x\", 7]}", 3},
};

static void
test_sort_arrays(void **state)
{
    (void)state;
    CHECK_SORT("{\"v\": 1}", array_asc);
}

static const sort_item_t dotted_asc[] = {
    {"{\"a\": 1}", 0},
    {"{\"x\": 1}", 0},
    {"{\"a\": [{\"b\": 5}, {\"c\": 1}]}", 0}, /* the element without b gives null */
    {"{\"a\": [{\"b\": 3}, {\"b\": 0}]}", 1},
    {"{\"a\": {\"b\": 2}}", 2},
    {"{\"a\": {\"b\": [7, 4]}}", 3},
    {"{\"a\": {\"b\": \"s\"}}", 4},
};

static const sort_item_t positional_asc[] = {
    {"{\"a\": [0, 9]}", 0},
    {"{\"a\": {\"1\": 3}}", 1},
    {"{\"a\": [5, 1]}", 2},
};

static void
test_sort_dotted(void **state)
{
    (void)state;
    CHECK_SORT("{\"a.b\": 1}", dotted_asc);
    CHECK_SORT("{\"a.1\": -1}", positional_asc);
}

static const sort_item_t compound[] = {
    {"{\"a\": 1, \"b\": 9}", 0},
    {"{\"a\": 1, \"b\": 2}", 1},
    {"{\"a\": 1}", 2},
    {"{\"a\": 2, \"b\": " LONG("100") "}", 3},
    {"{\"a\": 2.0, \"b\": 99.5}", 4},
    {"{\"a\": \"x\", \"b\": 0}", 5},
};

static void
test_sort_compound(void **state)
{
    (void)state;
    CHECK_SORT("{\"a\": 1, \"b\": -1}", compound);
    CHECK_SORT("{\"a\": 1.0, \"b\": " LONG("-1") "}", compound);
}

static void
test_sort_keys(void **state)
{
    emu_error_t err = {0};
    bson_t *spec = parse_json("{\"m\": 1, \"e\": 1, \"s\": -1, \"n.x\": 1}");
    bson_t *doc = parse_json("{\"e\": [], \"s\": [\"abc\", \"abd\"], \"n\": {\"x\": 3}}");
    emu_sort_t *s = emu_sort_new(spec, &err);
    bson_value_t keys[4];
    const uint8_t *data = bson_get_data(doc);
    (void)state;
    assert_non_null(s);
    assert_int_equal(emu_sort_nkeys(s), 4);
    emu_sort_keys(s, doc, keys);
    assert_int_equal(keys[0].value_type, BSON_TYPE_NULL);      /* missing sorts as null */
    assert_int_equal(keys[1].value_type, BSON_TYPE_UNDEFINED); /* [] sorts below null */
    assert_int_equal(keys[2].value_type, BSON_TYPE_UTF8);
    assert_int_equal(keys[2].value.v_utf8.len, 3);
    assert_memory_equal(keys[2].value.v_utf8.str, "abd", 3); /* descending: the largest */
    /* keys borrow from the document */
    assert_true((const uint8_t *)keys[2].value.v_utf8.str > data &&
                (const uint8_t *)keys[2].value.v_utf8.str < data + doc->len);
    assert_int_equal(keys[3].value_type, BSON_TYPE_INT32);
    assert_int_equal(keys[3].value.v_int32, 3);
    emu_sort_destroy(s);
    bson_destroy(spec);
    bson_destroy(doc);

    spec = parse_json("{}");
    s = emu_sort_new(spec, &err);
    assert_non_null(s);
    assert_int_equal(emu_sort_nkeys(s), 0);
    emu_sort_destroy(s);
    bson_destroy(spec);
}

static void
test_sort_errors(void **state)
{
    static const char *const bad[] = {
        "{\"a\": 2}",
        "{\"a\": 0}",
        "{\"a\": \"asc\"}",
        "{\"a\": true}",
        "{\"a\": 1, \"b\": 0.5}",
        "{\"a\": null}",
        "{\"a\": {\"$meta\": \"textScore\"}}",
        "{\"\": 1}",
    };
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        emu_error_t err = {0};
        bson_t *spec = parse_json(bad[i]);
        emu_sort_t *s = emu_sort_new(spec, &err);
        if (s)
            fail_msg("sort spec %s accepted", bad[i]);
        assert_int_equal(err.code, 2);
        assert_non_null(strstr(err.msg, "bad sort specification"));
        bson_destroy(spec);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Projection                                                                                 */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
    const char *spec;
    const char *doc;
    const char *expected;
} proj_case_t;

static const proj_case_t proj_cases[] = {
    {"{\"a\": 1}", "{\"_id\": 1, \"a\": 1, \"b\": 2}", "{\"_id\": 1, \"a\": 1}"},
    {"{\"a\": 1, \"_id\": 0}", "{\"_id\": 1, \"a\": 1, \"b\": 2}", "{\"a\": 1}"},
    {"{\"a\": true}", "{\"_id\": 1, \"a\": 1, \"b\": 2}", "{\"_id\": 1, \"a\": 1}"},
    {"{\"a\": 1.5}", "{\"_id\": 1, \"a\": 1, \"b\": 2}", "{\"_id\": 1, \"a\": 1}"},
    {"{\"a\": " LONG("-1") "}", "{\"_id\": 1, \"a\": 1, \"b\": 2}", "{\"_id\": 1, \"a\": 1}"},
    {"{\"b\": 0}", "{\"_id\": 1, \"a\": 1, \"b\": 2}", "{\"_id\": 1, \"a\": 1}"},
    {"{\"b\": false}", "{\"_id\": 1, \"a\": 1, \"b\": 2}", "{\"_id\": 1, \"a\": 1}"},
    {"{\"b\": " LONG("0") "}", "{\"_id\": 1, \"a\": 1, \"b\": 2}", "{\"_id\": 1, \"a\": 1}"},
    {"{\"b\": 0, \"_id\": 0}", "{\"_id\": 1, \"a\": 1, \"b\": 2}", "{\"a\": 1}"},
    {"{\"b\": 0, \"_id\": 1}", "{\"_id\": 1, \"a\": 1, \"b\": 2}", "{\"_id\": 1, \"a\": 1}"},
    {"{\"_id\": 0}", "{\"_id\": 1, \"a\": 1, \"b\": 2}", "{\"a\": 1, \"b\": 2}"},
    {"{\"_id\": 1}", "{\"_id\": 1, \"a\": 1, \"b\": 2}", "{\"_id\": 1}"},
    {"{}", "{\"_id\": 1, \"a\": 1, \"b\": 2}", "{\"_id\": 1, \"a\": 1, \"b\": 2}"},
    {"{\"c\": 1, \"a\": 1}", "{\"_id\": 1, \"a\": 1, \"b\": 2, \"c\": 3}",
     "{\"_id\": 1, \"a\": 1, \"c\": 3}"},
    {"{\"a\": 1}", "{\"a\": 1, \"_id\": 5}", "{\"a\": 1, \"_id\": 5}"},
    {"{\"x\": 1}", "{\"_id\": 1, \"a\": 1}", "{\"_id\": 1}"},
    {"{\"x\": 0}", "{\"_id\": 1, \"a\": 1}", "{\"_id\": 1, \"a\": 1}"},
    {"{\"a\": 1}", "{\"b\": 1}", "{}"},
    {"{\"a\": 1}", "{\"_id\": 1, \"a\": {\"b\": 1}}", "{\"_id\": 1, \"a\": {\"b\": 1}}"},
    {"{\"a.b\": 1}", "{\"_id\": 1, \"a\": {\"b\": 1, \"c\": 2}, \"d\": 3}",
     "{\"_id\": 1, \"a\": {\"b\": 1}}"},
    {"{\"a.b\": 1}", "{\"_id\": 1, \"a\": {\"c\": 2}}", "{\"_id\": 1, \"a\": {}}"},
    {"{\"a.b\": 1}", "{\"_id\": 1, \"a\": 7}", "{\"_id\": 1}"},
    {"{\"a.b\": 1}", "{\"_id\": 1, \"a\": [{\"b\": 1, \"c\": 2}, {\"c\": 3}, 5]}",
     "{\"_id\": 1, \"a\": [{\"b\": 1}, {}]}"},
    {"{\"a.b\": 0}", "{\"_id\": 1, \"a\": [{\"b\": 1, \"c\": 2}, {\"c\": 3}, 5]}",
     "{\"_id\": 1, \"a\": [{\"c\": 2}, {\"c\": 3}, 5]}"},
    {"{\"a.b\": 0}", "{\"_id\": 1, \"a\": {\"b\": 1, \"c\": 2}, \"d\": 3}",
     "{\"_id\": 1, \"a\": {\"c\": 2}, \"d\": 3}"},
    {"{\"a.b\": 0}", "{\"_id\": 1, \"a\": 7}", "{\"_id\": 1, \"a\": 7}"},
    {"{\"a.b.c\": 1, \"a.d\": 1}",
     "{\"_id\": 1, \"a\": {\"d\": 4, \"x\": 0, \"b\": {\"y\": 1, \"c\": 3}}}",
     "{\"_id\": 1, \"a\": {\"d\": 4, \"b\": {\"c\": 3}}}"},
    /* find does not descend into arrays nested in arrays */
    {"{\"a.b\": 1, \"_id\": 0}", "{\"_id\": 1, \"a\": [[{\"b\": 1, \"c\": 1}], 2]}", "{\"a\": []}"},
    {"{\"a.b\": 0}", "{\"a\": [[{\"b\": 1}], {\"b\": 2, \"c\": 3}]}",
     "{\"a\": [[{\"b\": 1}], {\"c\": 3}]}"},
    {"{\"_id.x\": 1}", "{\"_id\": {\"x\": 1, \"y\": 2}, \"a\": 1}", "{\"_id\": {\"x\": 1}}"},
    {"{\"_id.x\": 0}", "{\"_id\": {\"x\": 1, \"y\": 2}, \"a\": 1}",
     "{\"_id\": {\"y\": 2}, \"a\": 1}"},
};

static void
test_projection(void **state)
{
    int failures = 0;
    (void)state;
    for (size_t i = 0; i < sizeof proj_cases / sizeof proj_cases[0]; i++) {
        emu_error_t err = {0};
        bson_t *spec = parse_json(proj_cases[i].spec);
        bson_t *doc = parse_json(proj_cases[i].doc);
        bson_t *expected = parse_json(proj_cases[i].expected);
        emu_projection_t *p = emu_projection_new(spec, &err);
        if (!p) {
            print_error("projection case %zu: %s refused: %s\n", i, proj_cases[i].spec, err.msg);
            failures++;
        } else {
            bson_t out;
            bson_init(&out);
            emu_projection_apply(p, doc, &out);
            if (!bson_equal(&out, expected)) {
                char *got = bson_as_relaxed_extended_json(&out, NULL);
                print_error("projection case %zu: %s over %s: got %s, expected %s\n", i,
                            proj_cases[i].spec, proj_cases[i].doc, got, proj_cases[i].expected);
                bson_free(got);
                failures++;
            }
            bson_destroy(&out);
            emu_projection_destroy(p);
        }
        bson_destroy(spec);
        bson_destroy(doc);
        bson_destroy(expected);
    }
    assert_int_equal(failures, 0);
}

static const error_case_t proj_errors[] = {
    {"{\"a\": 1, \"b\": 0}", 2, "Cannot do exclusion on field b in inclusion projection"},
    {"{\"a\": 0, \"b\": 1}", 2, "Cannot do inclusion on field b in exclusion projection"},
    {"{\"a\": 0, \"b.c\": true}", 2, "Cannot do inclusion on field b.c in exclusion projection"},
    {"{\"a\": 1, \"a.b\": 1}", 31249, "Path collision at a.b"},
    {"{\"a.b\": 1, \"a\": 1}", 31249, "Path collision at a"},
    {"{\"a\": \"x\"}", 2, "not supported"},
    {"{\"a\": {\"$slice\": 1}}", 2, "not supported"},
};

static void
test_projection_errors(void **state)
{
    int failures = 0;
    (void)state;
    for (size_t i = 0; i < sizeof proj_errors / sizeof proj_errors[0]; i++) {
        emu_error_t err = {0};
        bson_t *spec = parse_json(proj_errors[i].filter);
        emu_projection_t *p = emu_projection_new(spec, &err);
        if (p) {
            print_error("projection error case %zu: %s accepted\n", i, proj_errors[i].filter);
            emu_projection_destroy(p);
            failures++;
        } else if (err.code != proj_errors[i].code || !strstr(err.msg, proj_errors[i].msg)) {
            print_error("projection error case %zu: %s: got %d \"%s\"\n", i, proj_errors[i].filter,
                        err.code, err.msg);
            failures++;
        }
        bson_destroy(spec);
    }
    assert_int_equal(failures, 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_type_rank),         cmocka_unit_test(test_value_compare),
    cmocka_unit_test(test_missing_compare),   cmocka_unit_test(test_filter_numbers),
    cmocka_unit_test(test_filter_bracketing), cmocka_unit_test(test_filter_null_missing),
    cmocka_unit_test(test_filter_arrays),     cmocka_unit_test(test_filter_paths),
    cmocka_unit_test(test_filter_type),       cmocka_unit_test(test_filter_logic),
    cmocka_unit_test(test_filter_documents),  cmocka_unit_test(test_filter_errors),
    cmocka_unit_test(test_filter_depth),      cmocka_unit_test(test_filter_owns_copy),
    cmocka_unit_test(test_sort_mixed),        cmocka_unit_test(test_sort_desc),
    cmocka_unit_test(test_sort_arrays),       cmocka_unit_test(test_sort_dotted),
    cmocka_unit_test(test_sort_compound),     cmocka_unit_test(test_sort_keys),
    cmocka_unit_test(test_sort_errors),       cmocka_unit_test(test_projection),
    cmocka_unit_test(test_projection_errors),
};

DC_CMOCKA_MAIN(tests)

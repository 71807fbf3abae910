/* test_convert.c: table-driven tests of the BSON converter (convert.c) and the type rules
 * (types.c). Expected texts are what docs/types.md prescribes, written out by hand (dates checked
 * against an independent proleptic Gregorian calculation), never copied from the code's output. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bson/bson.h>

#include "convert/convert.h"
#include "convert/types.h"

#include "cmocka_main.h"

#define OID_HEX "5f0c0e0a9b1e8a3c4d5e6f70"
#define OID     "{\"$oid\": \"" OID_HEX "\"}"

/* ---- helpers --------------------------------------------------------------------------- */

/* {"v": <value>} from canonical extended JSON. */
static bson_t *
doc_of(const char *value)
{
    dc_buf_t text;
    bson_error_t e;
    dc_buf_init(&text);
    dc_buf_printf(&text, "{\"v\": %s}", value);
    bson_t *b = bson_new_from_json((const uint8_t *)text.data, (ssize_t)text.len, &e);
    if (!b)
        fail_msg("bad extended JSON %s: %s", text.data, e.message);
    dc_buf_cleanup(&text);
    return b;
}

static void
find_v(const bson_t *b, bson_iter_t *it)
{
    assert_true(bson_iter_init_find(it, b, "v"));
}

/* The JSON rendering of the value v of b. */
static void
render(const bson_t *b, dc_buf_t *buf, dc_convert_stats_t *st)
{
    bson_iter_t it;
    find_v(b, &it);
    dc_buf_reset(buf);
    dc_convert_json(&it, buf, st);
}

static void
check_json(const char *value, const char *expected)
{
    bson_t *b = doc_of(value);
    dc_buf_t buf;
    dc_convert_stats_t st = {0};
    dc_buf_init(&buf);
    render(b, &buf, &st);
    if (strcmp(buf.data, expected) != 0)
        fail_msg("JSON of %s: got %s, expected %s", value, buf.data, expected);
    assert_int_equal(st.invalid_utf8, 0);
    dc_buf_cleanup(&buf);
    bson_destroy(b);
}

/* The value v of b converted to target, with its row finished. */
static dc_value_t
convert_one(const bson_t *b, dc_type_t target, dc_buf_t *buf, dc_convert_stats_t *st)
{
    bson_iter_t it;
    dc_value_t v;
    find_v(b, &it);
    dc_buf_reset(buf);
    dc_convert_value(&it, target, buf, &v, st);
    dc_convert_finish_row(&v, 1, buf);
    return v;
}

/* ---- JSON rendering ---------------------------------------------------------------------- */

typedef struct {
    const char *value; /* canonical extended JSON */
    const char *json;  /* the expected compact JSON text */
} json_case_t;

static const json_case_t json_cases[] = {
    /* Every BSON type at the top level. */
    {"{\"$numberDouble\": \"1.5\"}", "1.5"},
    {"\"text\"", "\"text\""},
    {"\"quote\\\" backslash\\\\ nl\\n tab\\t\"", "\"quote\\\" backslash\\\\ nl\\n tab\\t\""},
    {"\"\\u0001\"", "\"\\u0001\""},
    {"\"caf\\u00e9 \\u65e5\\u672c\"", "\"caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac\""},
    {"{\"a\": 1, \"b\": [1, 2]}", "{\"a\":1,\"b\":[1,2]}"},
    {"{\"z\": 1, \"a\": 2, \"m\": 3}", "{\"z\":1,\"a\":2,\"m\":3}"}, /* document order */
    {"{}", "{}"},
    {"[]", "[]"},
    {"[1, \"x\", {\"y\": true}, [null]]", "[1,\"x\",{\"y\":true},[null]]"},
    {"{\"$binary\": {\"base64\": \"AQID\", \"subType\": \"00\"}}", "\"AQID\""},
    {"{\"$binary\": {\"base64\": \"AQIDBA==\", \"subType\": \"04\"}}", "\"AQIDBA==\""},
    {"{\"$binary\": {\"base64\": \"AQIDBAU=\", \"subType\": \"80\"}}", "\"AQIDBAU=\""},
    {"{\"$binary\": {\"base64\": \"\", \"subType\": \"00\"}}", "\"\""},
    {"{\"$undefined\": true}", "null"},
    {OID, "\"" OID_HEX "\""},
    {"{\"$oid\": \"5F0C0E0A9B1E8A3C4D5E6F70\"}", "\"" OID_HEX "\""}, /* lowercase hex */
    {"true", "true"},
    {"false", "false"},
    {"{\"$date\": {\"$numberLong\": \"1714557600123\"}}", "\"2024-05-01T10:00:00.123Z\""},
    {"{\"$date\": {\"$numberLong\": \"-1\"}}", "\"1969-12-31T23:59:59.999Z\""},
    {"null", "null"},
    {"{\"$regularExpression\": {\"pattern\": \"^a\\\"b\", \"options\": \"ix\"}}",
     "{\"pattern\":\"^a\\\"b\",\"options\":\"ix\"}"},
    {"{\"$regularExpression\": {\"pattern\": \"x\", \"options\": \"\"}}",
     "{\"pattern\":\"x\",\"options\":\"\"}"},
    {"{\"$dbPointer\": {\"$ref\": \"db.coll\", \"$id\": " OID "}}",
     "{\"$ref\":\"db.coll\",\"$id\":\"" OID_HEX "\"}"},
    {"{\"$code\": \"function() { return 1; }\"}", "\"function() { return 1; }\""},
    {"{\"$symbol\": \"sym\"}", "\"sym\""},
    {"{\"$code\": \"f(x)\", \"$scope\": {\"x\": 1, \"d\": {\"$date\": {\"$numberLong\": \"0\"}}}}",
     "{\"code\":\"f(x)\",\"scope\":{\"x\":1,\"d\":\"1970-01-01T00:00:00.000Z\"}}"},
    {"{\"$code\": \"g()\", \"$scope\": {}}", "{\"code\":\"g()\",\"scope\":{}}"},
    {"42", "42"},
    {"-2147483648", "-2147483648"},
    {"{\"$numberLong\": \"5\"}", "5"},
    {"{\"$numberLong\": \"9223372036854775807\"}", "9223372036854775807"},
    {"{\"$numberLong\": \"-9223372036854775808\"}", "-9223372036854775808"},
    {"{\"$timestamp\": {\"t\": 1, \"i\": 2}}", "{\"t\":1,\"i\":2}"},
    {"{\"$timestamp\": {\"t\": 4294967295, \"i\": 4294967295}}",
     "{\"t\":4294967295,\"i\":4294967295}"},
    {"{\"$numberDecimal\": \"1.50\"}", "\"1.50\""},
    {"{\"$numberDecimal\": \"1.50E+3\"}", "\"1500\""},
    {"{\"$numberDecimal\": \"NaN\"}", "\"NaN\""},
    {"{\"$numberDecimal\": \"-Infinity\"}", "\"-Infinity\""},
    {"{\"$minKey\": 1}", "{\"$minKey\":1}"},
    {"{\"$maxKey\": 1}", "{\"$maxKey\":1}"},

    /* Doubles: 64-bit, shortest round-trip text, integral ones keep ".0". */
    {"{\"$numberDouble\": \"0.1\"}", "0.1"},
    {"{\"$numberDouble\": \"99.99\"}", "99.99"}, /* not 99.98999786 (32-bit) */
    {"{\"$numberDouble\": \"0.30000000000000004\"}", "0.30000000000000004"},
    {"{\"$numberDouble\": \"1.0000000000000002\"}", "1.0000000000000002"},
    {"{\"$numberDouble\": \"1e308\"}", "1e+308"},
    {"{\"$numberDouble\": \"1.7976931348623157e308\"}", "1.7976931348623157e+308"},
    {"{\"$numberDouble\": \"2.2250738585072014e-308\"}", "2.2250738585072014e-308"},
    {"{\"$numberDouble\": \"5e-324\"}", "5e-324"},
    {"{\"$numberDouble\": \"1e-310\"}", "1e-310"},
    {"{\"$numberDouble\": \"-0.0\"}", "-0.0"},
    {"{\"$numberDouble\": \"0.0\"}", "0.0"},
    {"{\"$numberDouble\": \"2.0\"}", "2.0"},
    {"{\"$numberDouble\": \"-3.0\"}", "-3.0"},
    {"{\"$numberDouble\": \"123456789.0\"}", "123456789.0"},
    {"{\"$numberDouble\": \"100000000000000.0\"}", "100000000000000.0"},
    {"{\"$numberDouble\": \"1e15\"}", "1e+15"},
    {"{\"$numberDouble\": \"9007199254740992\"}", "9007199254740992.0"},
    {"{\"$numberDouble\": \"1e21\"}", "1e+21"},
    {"{\"$numberDouble\": \"0.0001\"}", "0.0001"},
    {"{\"$numberDouble\": \"1e-7\"}", "1e-07"},
    {"{\"$numberDouble\": \"-1.5\"}", "-1.5"},
    {"{\"$numberDouble\": \"NaN\"}", "\"NaN\""},
    {"{\"$numberDouble\": \"Infinity\"}", "\"Infinity\""},
    {"{\"$numberDouble\": \"-Infinity\"}", "\"-Infinity\""},

    /* Dates before 1970 and far away. */
    {"{\"$date\": {\"$numberLong\": \"253402300799999\"}}", "\"9999-12-31T23:59:59.999Z\""},
    {"{\"$date\": {\"$numberLong\": \"253402300800000\"}}", "\"+10000-01-01T00:00:00.000Z\""},
    {"{\"$date\": {\"$numberLong\": \"-62167219200000\"}}", "\"0000-01-01T00:00:00.000Z\""},
    {"{\"$date\": {\"$numberLong\": \"-62167219200001\"}}", "\"-00001-12-31T23:59:59.999Z\""},

    /* Keys are escaped. */
    {"{\"a\\\"b\": 1, \"c\\\\d\": 2, \"e\\nf\": 3}", "{\"a\\\"b\":1,\"c\\\\d\":2,\"e\\nf\":3}"},
    {"{\"\": 1}", "{\"\":1}"},
};

static void
test_json_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof json_cases / sizeof json_cases[0]; i++)
        check_json(json_cases[i].value, json_cases[i].json);
}

/* Every type nested in a document and in an array, where the seed connector crashed. */
static void
test_json_nested_all_types(void **state)
{
    (void)state;
    check_json("{\"d\": {\"$numberDouble\": \"2.0\"}, \"s\": \"x\", \"o\": {\"k\": [1]},"
               " \"a\": [{}, []],"
               " \"bin\": {\"$binary\": {\"base64\": \"/w==\", \"subType\": \"05\"}},"
               " \"u\": {\"$undefined\": true}, \"id\": " OID ", \"b\": false,"
               " \"dt\": {\"$date\": {\"$numberLong\": \"-1\"}}, \"n\": null,"
               " \"re\": {\"$regularExpression\": {\"pattern\": \"p\", \"options\": \"m\"}},"
               " \"ptr\": {\"$dbPointer\": {\"$ref\": \"c\", \"$id\": " OID "}},"
               " \"code\": {\"$code\": \"c()\"}, \"sym\": {\"$symbol\": \"y\"},"
               " \"cws\": {\"$code\": \"w()\", \"$scope\": {\"id\": " OID "}},"
               " \"i\": 7, \"ts\": {\"$timestamp\": {\"t\": 3, \"i\": 4}},"
               " \"l\": {\"$numberLong\": \"-8\"}, \"dec\": {\"$numberDecimal\": \"1E-7\"},"
               " \"min\": {\"$minKey\": 1}, \"max\": {\"$maxKey\": 1}}",
               "{\"d\":2.0,\"s\":\"x\",\"o\":{\"k\":[1]},\"a\":[{},[]],\"bin\":\"/w==\","
               "\"u\":null,\"id\":\"" OID_HEX "\",\"b\":false,"
               "\"dt\":\"1969-12-31T23:59:59.999Z\",\"n\":null,"
               "\"re\":{\"pattern\":\"p\",\"options\":\"m\"},"
               "\"ptr\":{\"$ref\":\"c\",\"$id\":\"" OID_HEX "\"},"
               "\"code\":\"c()\",\"sym\":\"y\","
               "\"cws\":{\"code\":\"w()\",\"scope\":{\"id\":\"" OID_HEX "\"}},"
               "\"i\":7,\"ts\":{\"t\":3,\"i\":4},\"l\":-8,\"dec\":\"0.0000001\","
               "\"min\":{\"$minKey\":1},\"max\":{\"$maxKey\":1}}");
    check_json("[{\"$numberDouble\": \"NaN\"}, {\"$date\": {\"$numberLong\": \"0\"}}, " OID
               ", {\"$numberDecimal\": \"1.50E+3\"}, {\"$timestamp\": {\"t\": 1, \"i\": 2}},"
               " {\"$binary\": {\"base64\": \"AA==\", \"subType\": \"00\"}}, {\"$minKey\": 1},"
               " {\"$undefined\": true}, {\"$symbol\": \"s\"}, [[[{\"x\": []}]]]]",
               "[\"NaN\",\"1970-01-01T00:00:00.000Z\",\"" OID_HEX "\",\"1500\",{\"t\":1,\"i\":2},"
               "\"AA==\",{\"$minKey\":1},null,\"s\",[[[{\"x\":[]}]]]]");
}

/* Nesting deeper than 200 levels is rendered as null at level 201. */
static void
test_json_depth_cap(void **state)
{
    (void)state;
    enum { LEVELS = 250, CAP = 200 };
    bson_t docs[LEVELS + 1];
    bson_init(&docs[0]);
    for (int i = 0; i < LEVELS; i++)
        bson_append_document_begin(&docs[i], i == 0 ? "v" : "a", 1, &docs[i + 1]);
    bson_append_int32(&docs[LEVELS], "x", 1, 1);
    for (int i = LEVELS; i > 0; i--)
        bson_append_document_end(&docs[i - 1], &docs[i]);

    dc_buf_t buf, expected;
    dc_buf_init(&buf);
    dc_buf_init(&expected);
    for (int i = 0; i < CAP; i++)
        dc_buf_append_str(&expected, i + 1 < CAP ? "{\"a\":" : "{\"a\":null");
    for (int i = 0; i < CAP; i++)
        dc_buf_append_char(&expected, '}');
    render(&docs[0], &buf, NULL);
    assert_string_equal(buf.data, expected.data);

    /* Exactly 200 levels are rendered in full. */
    bson_t flat[CAP + 1];
    bson_init(&flat[0]);
    for (int i = 0; i < CAP; i++)
        bson_append_document_begin(&flat[i], i == 0 ? "v" : "a", 1, &flat[i + 1]);
    for (int i = CAP; i > 0; i--)
        bson_append_document_end(&flat[i - 1], &flat[i]);
    dc_buf_reset(&expected);
    for (int i = 0; i < CAP; i++)
        dc_buf_append_str(&expected, i + 1 < CAP ? "{\"a\":" : "{");
    for (int i = 0; i < CAP; i++)
        dc_buf_append_char(&expected, '}');
    render(&flat[0], &buf, NULL);
    assert_string_equal(buf.data, expected.data);

    bson_destroy(&docs[0]);
    bson_destroy(&flat[0]);
    dc_buf_cleanup(&buf);
    dc_buf_cleanup(&expected);
}

/* ---- Invalid UTF-8 ----------------------------------------------------------------------- */

static void
test_invalid_utf8(void **state)
{
    (void)state;
    bson_t b, sub;
    bson_init(&b);
    /* 'a', a stray 0xFF, 'b', a truncated 2-byte sequence. */
    bson_append_utf8(&b, "v", 1,
                     "a\xff"
                     "b\xc3",
                     4);
    bson_append_document_begin(&b, "w", 1, &sub);
    /* An invalid key; an overlong NUL (2 bad bytes), a surrogate (3), then valid é and U+1F642. */
    bson_append_utf8(&sub, "k\xfe", 2, "\xc0\x80|\xed\xa0\x80|\xc3\xa9\xf0\x9f\x99\x82", 13);
    bson_append_document_end(&b, &sub);
    bson_append_utf8(&b, "nul", 3, "a\0b", 3);

    dc_buf_t buf;
    dc_convert_stats_t st = {0};
    bson_iter_t it;
    dc_buf_init(&buf);

    assert_true(bson_iter_init_find(&it, &b, "v"));
    dc_convert_json(&it, &buf, &st);
    assert_string_equal(buf.data, "\"a\xef\xbf\xbd"
                                  "b\xef\xbf\xbd\"");
    assert_int_equal(st.invalid_utf8, 2);

    /* As a STRING value: repaired the same way, without quotes. */
    dc_value_t v;
    dc_buf_reset(&buf);
    dc_convert_value(&it, DC_TYPE_STRING, &buf, &v, &st);
    dc_convert_finish_row(&v, 1, &buf);
    assert_int_equal(v.type, DC_TYPE_STRING);
    assert_int_equal(v.v.s.len, 8);
    assert_memory_equal(v.v.s.ptr,
                        "a\xef\xbf\xbd"
                        "b\xef\xbf\xbd",
                        8);
    assert_int_equal(st.invalid_utf8, 4);

    /* And as a primary key. */
    dc_buf_reset(&buf);
    dc_convert_id(&it, &buf, &st);
    assert_string_equal(buf.data, "a\xef\xbf\xbd"
                                  "b\xef\xbf\xbd");
    assert_int_equal(st.invalid_utf8, 6);

    st.invalid_utf8 = 0;
    assert_true(bson_iter_init_find(&it, &b, "w"));
    dc_buf_reset(&buf);
    dc_convert_json(&it, &buf, &st);
    assert_string_equal(buf.data,
                        "{\"k\xef\xbf\xbd\":\"\xef\xbf\xbd\xef\xbf\xbd|"
                        "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd|\xc3\xa9\xf0\x9f\x99\x82\"}");
    assert_int_equal(st.invalid_utf8, 6);

    /* An embedded NUL is valid UTF-8: escaped in JSON, kept in a STRING value. */
    assert_true(bson_iter_init_find(&it, &b, "nul"));
    dc_buf_reset(&buf);
    dc_convert_json(&it, &buf, &st);
    assert_string_equal(buf.data, "\"a\\u0000b\"");
    dc_buf_reset(&buf);
    dc_convert_value(&it, DC_TYPE_STRING, &buf, &v, &st);
    dc_convert_finish_row(&v, 1, &buf);
    assert_int_equal(v.v.s.len, 3);
    assert_memory_equal(v.v.s.ptr, "a\0b", 3);
    assert_int_equal(st.invalid_utf8, 6);

    /* A NULL stats pointer is allowed. */
    assert_true(bson_iter_init_find(&it, &b, "v"));
    dc_buf_reset(&buf);
    dc_convert_json(&it, &buf, NULL);
    assert_string_equal(buf.data, "\"a\xef\xbf\xbd"
                                  "b\xef\xbf\xbd\"");

    dc_buf_cleanup(&buf);
    bson_destroy(&b);
}

/* ---- Decimals ---------------------------------------------------------------------------- */

typedef struct {
    const char *decimal; /* $numberDecimal text */
    const char *plain;   /* expected DECIMAL text */
} decimal_case_t;

static const decimal_case_t decimal_cases[] = {
    {"1.50E+3", "1500"},
    {"1.50", "1.50"},
    {"1E-7", "0.0000001"},
    {"1.0E-7", "0.00000010"},
    {"-1E-7", "-0.0000001"},
    {"0.000001", "0.000001"},
    {"1E-6", "0.000001"},
    {"0", "0"},
    {"-0", "-0"},
    {"0.00", "0.00"},
    {"0E+3", "0"},
    {"0E-10", "0.0000000000"},
    {"123.456E+1", "1234.56"},
    {"-1.5E+2", "-150"},
    {"1E+2", "100"},
    {"100", "100"},
    {"1.23456789E+20", "123456789000000000000"},
    {"1234567890123456789012345678901234", "1234567890123456789012345678901234"},
    {"1.234567890123456789012345678901234E-3", "0.001234567890123456789012345678901234"},
    {"1E+101", "1E+101"},
    {"1E-101", "1E-101"},
    {"-2.5E+200", "-2.5E+200"},
    {"9.999999999999999999999999999999999E+6144", "9.999999999999999999999999999999999E+6144"},
    {"1E-6176", "1E-6176"},
    {"NaN", "NaN"},
    {"-NaN", "NaN"},
    {"Infinity", "Infinity"},
    {"-Infinity", "-Infinity"},
};

static void
check_decimal(const char *decimal, const char *plain)
{
    dc_buf_t text, buf;
    dc_buf_init(&text);
    dc_buf_init(&buf);
    dc_buf_printf(&text, "{\"$numberDecimal\": \"%s\"}", decimal);
    bson_t *b = doc_of(text.data);
    dc_value_t v = convert_one(b, DC_TYPE_DECIMAL, &buf, NULL);
    assert_int_equal(v.type, DC_TYPE_DECIMAL);
    if (v.v.s.len != strlen(plain) || memcmp(v.v.s.ptr, plain, v.v.s.len) != 0)
        fail_msg("DECIMAL of %s: got %.*s, expected %s", decimal, (int)v.v.s.len, v.v.s.ptr, plain);
    /* In JSON the same text is a string. */
    dc_buf_t expected;
    dc_buf_init(&expected);
    dc_buf_printf(&expected, "\"%s\"", plain);
    check_json(text.data, expected.data);
    dc_buf_cleanup(&expected);
    bson_destroy(b);
    dc_buf_cleanup(&text);
    dc_buf_cleanup(&buf);
}

static void
test_decimal_plain(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof decimal_cases / sizeof decimal_cases[0]; i++)
        check_decimal(decimal_cases[i].decimal, decimal_cases[i].plain);

    /* An exponent of exactly 100 is still written out in full. */
    char big[128] = "1", small[128] = "0.";
    memset(big + 1, '0', 100);
    big[101] = '\0';
    memset(small + 2, '0', 99);
    strcpy(small + 101, "1");
    check_decimal("1E+100", big);
    check_decimal("1E-100", small);
}

/* ---- Typed values ------------------------------------------------------------------------ */

typedef struct {
    const char *value; /* canonical extended JSON */
    dc_type_t target;
    dc_type_t type;   /* expected type */
    const char *text; /* STRING, JSON, DECIMAL, UTC_DATETIME, BINARY */
    size_t len;       /* for BINARY (may hold NULs); 0: strlen(text) */
    int64_t i;        /* INT, LONG; BOOLEAN as 0/1 */
    double d;         /* DOUBLE */
} typed_case_t;

#define T(value, target, type, text, len, i, d)                                                    \
    {                                                                                              \
        value, target, type, text, len, i, d                                                       \
    }

static const typed_case_t typed_cases[] = {
    /* Natural types. */
    T("42", DC_TYPE_INT, DC_TYPE_INT, NULL, 0, 42, 0),
    T("-2147483648", DC_TYPE_INT, DC_TYPE_INT, NULL, 0, INT32_MIN, 0),
    T("{\"$numberLong\": \"-9223372036854775808\"}", DC_TYPE_LONG, DC_TYPE_LONG, NULL, 0, INT64_MIN,
      0),
    T("{\"$numberDouble\": \"0.1\"}", DC_TYPE_DOUBLE, DC_TYPE_DOUBLE, NULL, 0, 0, 0.1),
    T("{\"$numberDouble\": \"99.99\"}", DC_TYPE_DOUBLE, DC_TYPE_DOUBLE, NULL, 0, 0, 99.99),
    T("{\"$numberDouble\": \"1e308\"}", DC_TYPE_DOUBLE, DC_TYPE_DOUBLE, NULL, 0, 0, 1e308),
    T("{\"$numberDouble\": \"5e-324\"}", DC_TYPE_DOUBLE, DC_TYPE_DOUBLE, NULL, 0, 0, 5e-324),
    T("{\"$numberDouble\": \"-0.0\"}", DC_TYPE_DOUBLE, DC_TYPE_DOUBLE, NULL, 0, 0, -0.0),
    T("{\"$numberDouble\": \"Infinity\"}", DC_TYPE_DOUBLE, DC_TYPE_DOUBLE, NULL, 0, 0, HUGE_VAL),
    T("{\"$numberDouble\": \"NaN\"}", DC_TYPE_DOUBLE, DC_TYPE_DOUBLE, NULL, 0, 0, NAN),
    T("{\"$numberDecimal\": \"1.50E+3\"}", DC_TYPE_DECIMAL, DC_TYPE_DECIMAL, "1500", 0, 0, 0),
    T("true", DC_TYPE_BOOLEAN, DC_TYPE_BOOLEAN, NULL, 0, 1, 0),
    T("false", DC_TYPE_BOOLEAN, DC_TYPE_BOOLEAN, NULL, 0, 0, 0),
    T("{\"$date\": {\"$numberLong\": \"1714557600123\"}}", DC_TYPE_UTC_DATETIME,
      DC_TYPE_UTC_DATETIME, "2024-05-01T10:00:00.123Z", 0, 0, 0),
    T("{\"$date\": {\"$numberLong\": \"-1\"}}", DC_TYPE_UTC_DATETIME, DC_TYPE_UTC_DATETIME,
      "1969-12-31T23:59:59.999Z", 0, 0, 0),
    T(OID, DC_TYPE_STRING, DC_TYPE_STRING, OID_HEX, 0, 0, 0),
    T("\"caf\\u00e9\"", DC_TYPE_STRING, DC_TYPE_STRING, "caf\xc3\xa9", 0, 0, 0),
    T("\"\"", DC_TYPE_STRING, DC_TYPE_STRING, "", 0, 0, 0),
    T("\"a\\\"b\"", DC_TYPE_STRING, DC_TYPE_STRING, "a\"b", 0, 0, 0), /* not escaped */
    T("{\"$symbol\": \"sym\"}", DC_TYPE_STRING, DC_TYPE_STRING, "sym", 0, 0, 0),
    T("{\"$code\": \"f()\"}", DC_TYPE_STRING, DC_TYPE_STRING, "f()", 0, 0, 0),
    T("{\"$binary\": {\"base64\": \"AQAC\", \"subType\": \"00\"}}", DC_TYPE_BINARY, DC_TYPE_BINARY,
      "\x01\x00\x02", 3, 0, 0),
    T("{\"$binary\": {\"base64\": \"\", \"subType\": \"80\"}}", DC_TYPE_BINARY, DC_TYPE_BINARY, "",
      0, 0, 0),
    T("{\"a\": [1, {\"$numberDouble\": \"2.0\"}]}", DC_TYPE_JSON, DC_TYPE_JSON, "{\"a\":[1,2.0]}",
      0, 0, 0),
    T("[]", DC_TYPE_JSON, DC_TYPE_JSON, "[]", 0, 0, 0),
    T("{\"$timestamp\": {\"t\": 1, \"i\": 2}}", DC_TYPE_JSON, DC_TYPE_JSON, "{\"t\":1,\"i\":2}", 0,
      0, 0),
    T("{\"$regularExpression\": {\"pattern\": \"a\", \"options\": \"i\"}}", DC_TYPE_JSON,
      DC_TYPE_JSON, "{\"pattern\":\"a\",\"options\":\"i\"}", 0, 0, 0),
    T("{\"$minKey\": 1}", DC_TYPE_JSON, DC_TYPE_JSON, "{\"$minKey\":1}", 0, 0, 0),
    T("{\"$maxKey\": 1}", DC_TYPE_JSON, DC_TYPE_JSON, "{\"$maxKey\":1}", 0, 0, 0),

    /* Null and undefined are NULL whatever the column. */
    T("null", DC_TYPE_STRING, DC_TYPE_NULL, NULL, 0, 0, 0),
    T("null", DC_TYPE_JSON, DC_TYPE_NULL, NULL, 0, 0, 0),
    T("null", DC_TYPE_INT, DC_TYPE_NULL, NULL, 0, 0, 0),
    T("{\"$undefined\": true}", DC_TYPE_DECIMAL, DC_TYPE_NULL, NULL, 0, 0, 0),

    /* Widened columns: INT -> LONG, INT -> DOUBLE. */
    T("7", DC_TYPE_LONG, DC_TYPE_LONG, NULL, 0, 7, 0),
    T("-7", DC_TYPE_DOUBLE, DC_TYPE_DOUBLE, NULL, 0, 0, -7.0),
    T("2147483647", DC_TYPE_DOUBLE, DC_TYPE_DOUBLE, NULL, 0, 0, 2147483647.0),

    /* -> DECIMAL text. */
    T("-2147483648", DC_TYPE_DECIMAL, DC_TYPE_DECIMAL, "-2147483648", 0, 0, 0),
    T("{\"$numberLong\": \"9223372036854775807\"}", DC_TYPE_DECIMAL, DC_TYPE_DECIMAL,
      "9223372036854775807", 0, 0, 0),
    T("{\"$numberLong\": \"-9223372036854775808\"}", DC_TYPE_DECIMAL, DC_TYPE_DECIMAL,
      "-9223372036854775808", 0, 0, 0),
    T("{\"$numberDouble\": \"0.1\"}", DC_TYPE_DECIMAL, DC_TYPE_DECIMAL, "0.1", 0, 0, 0),
    T("{\"$numberDouble\": \"2.0\"}", DC_TYPE_DECIMAL, DC_TYPE_DECIMAL, "2", 0, 0, 0),
    T("{\"$numberDouble\": \"-0.0\"}", DC_TYPE_DECIMAL, DC_TYPE_DECIMAL, "-0", 0, 0, 0),
    T("{\"$numberDouble\": \"123.456\"}", DC_TYPE_DECIMAL, DC_TYPE_DECIMAL, "123.456", 0, 0, 0),
    T("{\"$numberDouble\": \"0.30000000000000004\"}", DC_TYPE_DECIMAL, DC_TYPE_DECIMAL,
      "0.30000000000000004", 0, 0, 0),
    T("{\"$numberDouble\": \"1e-7\"}", DC_TYPE_DECIMAL, DC_TYPE_DECIMAL, "0.0000001", 0, 0, 0),
    T("{\"$numberDouble\": \"1e20\"}", DC_TYPE_DECIMAL, DC_TYPE_DECIMAL, "100000000000000000000", 0,
      0, 0),
    T("{\"$numberDouble\": \"9007199254740992\"}", DC_TYPE_DECIMAL, DC_TYPE_DECIMAL,
      "9007199254740992", 0, 0, 0),
    T("{\"$numberDouble\": \"1.5e17\"}", DC_TYPE_DECIMAL, DC_TYPE_DECIMAL, "150000000000000000", 0,
      0, 0),
    T("{\"$numberDouble\": \"1.2345678901234568e17\"}", DC_TYPE_DECIMAL, DC_TYPE_DECIMAL,
      "123456789012345680", 0, 0, 0),
    T("{\"$numberDouble\": \"1e308\"}", DC_TYPE_DECIMAL, DC_TYPE_DECIMAL, "1E+308", 0, 0, 0),
    T("{\"$numberDouble\": \"-1.5e-200\"}", DC_TYPE_DECIMAL, DC_TYPE_DECIMAL, "-1.5E-200", 0, 0, 0),
    T("{\"$numberDouble\": \"5e-324\"}", DC_TYPE_DECIMAL, DC_TYPE_DECIMAL, "5E-324", 0, 0, 0),
    T("{\"$numberDouble\": \"NaN\"}", DC_TYPE_DECIMAL, DC_TYPE_DECIMAL, "NaN", 0, 0, 0),
    T("{\"$numberDouble\": \"-Infinity\"}", DC_TYPE_DECIMAL, DC_TYPE_DECIMAL, "-Infinity", 0, 0, 0),

    /* -> JSON: the JSON text of the value; a string becomes a JSON string literal. */
    T("\"say \\\"hi\\\"\"", DC_TYPE_JSON, DC_TYPE_JSON, "\"say \\\"hi\\\"\"", 0, 0, 0),
    T("5", DC_TYPE_JSON, DC_TYPE_JSON, "5", 0, 0, 0),
    T("{\"$numberLong\": \"5\"}", DC_TYPE_JSON, DC_TYPE_JSON, "5", 0, 0, 0),
    T("{\"$numberDouble\": \"2.0\"}", DC_TYPE_JSON, DC_TYPE_JSON, "2.0", 0, 0, 0),
    T("{\"$numberDouble\": \"-Infinity\"}", DC_TYPE_JSON, DC_TYPE_JSON, "\"-Infinity\"", 0, 0, 0),
    T("{\"$numberDecimal\": \"1.50\"}", DC_TYPE_JSON, DC_TYPE_JSON, "\"1.50\"", 0, 0, 0),
    T("true", DC_TYPE_JSON, DC_TYPE_JSON, "true", 0, 0, 0),
    T(OID, DC_TYPE_JSON, DC_TYPE_JSON, "\"" OID_HEX "\"", 0, 0, 0),
    T("{\"$date\": {\"$numberLong\": \"0\"}}", DC_TYPE_JSON, DC_TYPE_JSON,
      "\"1970-01-01T00:00:00.000Z\"", 0, 0, 0),
    T("{\"$binary\": {\"base64\": \"AQID\", \"subType\": \"00\"}}", DC_TYPE_JSON, DC_TYPE_JSON,
      "\"AQID\"", 0, 0, 0),
    T("{\"$symbol\": \"s\"}", DC_TYPE_JSON, DC_TYPE_JSON, "\"s\"", 0, 0, 0),

    /* STRING for an _id: ObjectId hex, strings as is, anything else as its JSON text. */
    T("5", DC_TYPE_STRING, DC_TYPE_STRING, "5", 0, 0, 0),
    T("\"5\"", DC_TYPE_STRING, DC_TYPE_STRING, "5", 0, 0, 0),
    T("{\"$numberLong\": \"-5\"}", DC_TYPE_STRING, DC_TYPE_STRING, "-5", 0, 0, 0),
    T("{\"$numberDouble\": \"5.0\"}", DC_TYPE_STRING, DC_TYPE_STRING, "5.0", 0, 0, 0),
    T("{\"k\": 1, \"o\": " OID "}", DC_TYPE_STRING, DC_TYPE_STRING,
      "{\"k\":1,\"o\":\"" OID_HEX "\"}", 0, 0, 0),

    /* A target the value cannot be held in (a caller's bug) gives NULL. */
    T("\"x\"", DC_TYPE_INT, DC_TYPE_NULL, NULL, 0, 0, 0),
    T("{\"$numberLong\": \"5\"}", DC_TYPE_INT, DC_TYPE_NULL, NULL, 0, 0, 0),
    T("{\"$numberDouble\": \"1.5\"}", DC_TYPE_LONG, DC_TYPE_NULL, NULL, 0, 0, 0),
    T("\"2024-01-01\"", DC_TYPE_UTC_DATETIME, DC_TYPE_NULL, NULL, 0, 0, 0),
    T("1", DC_TYPE_BOOLEAN, DC_TYPE_NULL, NULL, 0, 0, 0),
    T("\"AQID\"", DC_TYPE_BINARY, DC_TYPE_NULL, NULL, 0, 0, 0),
    T("true", DC_TYPE_DECIMAL, DC_TYPE_NULL, NULL, 0, 0, 0),
    T("1", DC_TYPE_NULL, DC_TYPE_NULL, NULL, 0, 0, 0),
};

static bool
same_double(double a, double b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    return a == b && signbit(a) == signbit(b);
}

static void
test_typed_values(void **state)
{
    (void)state;
    dc_buf_t buf;
    dc_buf_init(&buf);
    for (size_t k = 0; k < sizeof typed_cases / sizeof typed_cases[0]; k++) {
        const typed_case_t *c = &typed_cases[k];
        bson_t *b = doc_of(c->value);
        dc_value_t v = convert_one(b, c->target, &buf, NULL);
        if (v.type != c->type)
            fail_msg("%s as %s: type %s, expected %s", c->value, dc_type_name(c->target),
                     dc_type_name(v.type), dc_type_name(c->type));
        switch (c->type) {
        case DC_TYPE_INT:
        case DC_TYPE_LONG:
            if (v.v.i != c->i)
                fail_msg("%s: %lld, expected %lld", c->value, (long long)v.v.i, (long long)c->i);
            break;
        case DC_TYPE_BOOLEAN:
            assert_int_equal(v.v.b, c->i != 0);
            break;
        case DC_TYPE_DOUBLE:
            if (!same_double(v.v.d, c->d))
                fail_msg("%s: %.17g, expected %.17g", c->value, v.v.d, c->d);
            break;
        case DC_TYPE_NULL:
            break;
        default: {
            size_t len = c->len ? c->len : strlen(c->text);
            if (v.v.s.len != len || memcmp(v.v.s.ptr, c->text, len) != 0)
                fail_msg("%s as %s: got \"%.*s\", expected \"%s\"", c->value,
                         dc_type_name(c->target), (int)v.v.s.len, v.v.s.ptr, c->text);
            assert_int_equal(v.v.s.ptr[len], '\0'); /* each text is followed by a NUL */
            break;
        }
        }
        bson_destroy(b);
    }
    dc_buf_cleanup(&buf);
}

/* Values are stored as offsets while the row grows (the buffer moves) and become pointers in
 * dc_convert_finish_row. */
static void
test_row_offsets(void **state)
{
    (void)state;
    enum { BIG = 100000 };
    char *big = malloc(BIG + 1);
    assert_non_null(big);
    memset(big, 'x', BIG);
    big[BIG] = '\0';

    bson_t b;
    bson_init(&b);
    bson_append_utf8(&b, "e", 1, "", 0);
    bson_append_int32(&b, "i", 1, 3);
    bson_append_date_time(&b, "d", 1, 0);
    bson_append_utf8(&b, "big", 3, big, BIG);
    bson_append_binary(&b, "bin", 3, BSON_SUBTYPE_BINARY, (const uint8_t *)"\0\1\2", 3);
    bson_append_null(&b, "n", 1);
    bson_append_double(&b, "dbl", 3, 0.5);
    bson_append_utf8(&b, "s", 1, "tail", 4);

    static const dc_type_t targets[] = {DC_TYPE_STRING, DC_TYPE_DECIMAL, DC_TYPE_UTC_DATETIME,
                                        DC_TYPE_STRING, DC_TYPE_BINARY,  DC_TYPE_JSON,
                                        DC_TYPE_DOUBLE, DC_TYPE_JSON};
    enum { N = sizeof targets / sizeof targets[0] };
    dc_value_t row[N];
    dc_buf_t buf;
    bson_iter_t it;
    dc_buf_init(&buf); /* empty: the first value is appended to no memory at all */
    assert_true(bson_iter_init(&it, &b));
    for (size_t k = 0; k < N; k++) {
        assert_true(bson_iter_next(&it));
        dc_convert_value(&it, targets[k], &buf, &row[k], NULL);
    }
    assert_false(bson_iter_next(&it));
    dc_convert_finish_row(row, N, &buf);

    assert_int_equal(row[0].type, DC_TYPE_STRING);
    assert_int_equal(row[0].v.s.len, 0);
    assert_string_equal(row[0].v.s.ptr, "");
    assert_int_equal(row[1].type, DC_TYPE_DECIMAL);
    assert_string_equal(row[1].v.s.ptr, "3");
    assert_int_equal(row[2].type, DC_TYPE_UTC_DATETIME);
    assert_string_equal(row[2].v.s.ptr, "1970-01-01T00:00:00.000Z");
    assert_int_equal(row[3].v.s.len, BIG);
    assert_string_equal(row[3].v.s.ptr, big);
    assert_int_equal(row[4].type, DC_TYPE_BINARY);
    assert_int_equal(row[4].v.s.len, 3);
    assert_memory_equal(row[4].v.s.ptr, "\0\1\2", 3);
    assert_int_equal(row[5].type, DC_TYPE_NULL);
    assert_int_equal(row[6].type, DC_TYPE_DOUBLE);
    assert_true(row[6].v.d == 0.5);
    assert_string_equal(row[7].v.s.ptr, "\"tail\"");
    for (size_t k = 0; k < N; k++)
        if (row[k].type == DC_TYPE_STRING || row[k].type == DC_TYPE_JSON)
            assert_true(row[k].v.s.ptr >= buf.data && row[k].v.s.ptr < buf.data + buf.len);

    free(big);
    dc_buf_cleanup(&buf);
    bson_destroy(&b);
}

/* ---- _id ----------------------------------------------------------------------------------- */

typedef struct {
    const char *value;
    const char *id;
} id_case_t;

static const id_case_t id_cases[] = {
    {OID, OID_HEX},
    {"\"abc\"", "abc"},
    {"\"a\\\"b\"", "a\"b"},
    {"5", "5"},
    {"\"5\"", "5"}, /* collides with 5 (docs/types.md) */
    {"{\"$numberLong\": \"5\"}", "5"},
    {"{\"$numberDouble\": \"5.0\"}", "5.0"},
    {"{\"$numberDecimal\": \"1.5\"}", "\"1.5\""},
    {"{\"$date\": {\"$numberLong\": \"0\"}}", "\"1970-01-01T00:00:00.000Z\""},
    {"{\"a\": 1, \"b\": " OID "}", "{\"a\":1,\"b\":\"" OID_HEX "\"}"},
    {"[1, 2]", "[1,2]"},
    {"true", "true"},
    {"null", "null"},
    {"{\"$symbol\": \"sym\"}", "sym"},
    {"{\"$binary\": {\"base64\": \"AQID\", \"subType\": \"04\"}}", "\"AQID\""},
    {"{\"$minKey\": 1}", "{\"$minKey\":1}"},
};

static void
test_id(void **state)
{
    (void)state;
    dc_buf_t buf;
    dc_buf_init(&buf);
    for (size_t k = 0; k < sizeof id_cases / sizeof id_cases[0]; k++) {
        bson_t *b = doc_of(id_cases[k].value);
        bson_iter_t it;
        find_v(b, &it);
        dc_buf_reset(&buf);
        dc_convert_id(&it, &buf, NULL);
        if (strcmp(buf.data, id_cases[k].id) != 0)
            fail_msg("_id %s: got %s, expected %s", id_cases[k].value, buf.data, id_cases[k].id);
        bson_destroy(b);
    }
    dc_buf_cleanup(&buf);
}

/* ---- Dates --------------------------------------------------------------------------------- */

typedef struct {
    int64_t ms;
    const char *text;
} date_case_t;

static const date_case_t date_cases[] = {
    {0, "1970-01-01T00:00:00.000Z"},
    {-1, "1969-12-31T23:59:59.999Z"},
    {1, "1970-01-01T00:00:00.001Z"},
    {-86400000, "1969-12-31T00:00:00.000Z"},
    {1714557600123, "2024-05-01T10:00:00.123Z"},
    {1709209845678, "2024-02-29T12:30:45.678Z"},
    {951782400000, "2000-02-29T00:00:00.000Z"},
    {951868800000, "2000-03-01T00:00:00.000Z"},
    {-2203977600000, "1900-02-28T00:00:00.000Z"},
    {-2203891200000, "1900-03-01T00:00:00.000Z"}, /* 1900 is not a leap year */
    {4107456000000, "2100-02-28T00:00:00.000Z"},
    {4107542400000, "2100-03-01T00:00:00.000Z"},
    {-11670998400000, "1600-02-29T00:00:00.000Z"},
    {-12219292800000, "1582-10-15T00:00:00.000Z"},
    {-62135596800000, "0001-01-01T00:00:00.000Z"},
    {-62167219200000, "0000-01-01T00:00:00.000Z"},
    {-62162121600000, "0000-02-29T00:00:00.000Z"}, /* year 0 is a leap year */
    {-62167219200001, "-00001-12-31T23:59:59.999Z"},
    {-62167305600000, "-00001-12-31T00:00:00.000Z"},
    {253402300799999, "9999-12-31T23:59:59.999Z"},
    {253402300800000, "+10000-01-01T00:00:00.000Z"},
    {INT64_MAX, "+292278994-08-17T07:12:55.807Z"},
    {INT64_MIN, "-292275055-05-16T16:47:04.192Z"},
};

static void
test_format_datetime(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof date_cases / sizeof date_cases[0]; k++) {
        char out[32];
        memset(out, '#', sizeof out);
        dc_format_datetime(date_cases[k].ms, out);
        if (strcmp(out, date_cases[k].text) != 0)
            fail_msg("%lld: got %s, expected %s", (long long)date_cases[k].ms, out,
                     date_cases[k].text);
        /* And back. */
        int64_t ms = 0;
        if (!dc_parse_datetime(date_cases[k].text, &ms) || ms != date_cases[k].ms)
            fail_msg("parse %s: %lld", date_cases[k].text, (long long)ms);
    }
}

/* Every day from 1600 to 2400 formats to a valid date and parses back to itself. */
static void
test_datetime_round_trip(void **state)
{
    (void)state;
    const int64_t day = 86400000;
    char out[32];
    for (int64_t ms = -11676096000000; ms < 13569465600000; ms += day + 1234) {
        int64_t back = 0;
        dc_format_datetime(ms, out);
        assert_true(dc_parse_datetime(out, &back));
        assert_true(back == ms);
    }
}

typedef struct {
    const char *text;
    bool ok;
    int64_t ms;
} parse_case_t;

static const parse_case_t parse_cases[] = {
    {"1970-01-01", true, 0},
    {"2024-05-01", true, 1714521600000},
    {"2024-05-01T10:00:00Z", true, 1714557600000},
    {"2024-05-01T10:00:00", true, 1714557600000}, /* no offset: UTC */
    {"2024-05-01T10:00:00.123Z", true, 1714557600123},
    {"2024-05-01T10:00:00.1Z", true, 1714557600100},
    {"2024-05-01T10:00:00.12Z", true, 1714557600120},
    {"2024-05-01T10:00:00.123999999Z", true, 1714557600123}, /* truncated, not rounded */
    {"2024-05-01T10:00:00.123000+00:00", true, 1714557600123},
    {"2024-05-01T12:00:00+02:00", true, 1714557600000},
    {"2024-05-01T05:30:00-04:30", true, 1714557600000},
    {"2024-05-01T12:00:00+0200", true, 1714557600000},
    {"2024-05-01 10:00:00Z", true, 1714557600000},
    {"2024-05-01t10:00:00z", true, 1714557600000},
    {"1969-12-31T23:59:59.999Z", true, -1},
    {"1990-01-01T00:00:00Z", true, 631152000000},
    {"2000-02-29T00:00:00Z", true, 951782400000},
    {"1970-01-01T00:00:00+23:59", true, -86340000},
    {"+10000-01-01T00:00:00.000Z", true, 253402300800000},
    {"-00001-12-31T23:59:59.999Z", true, -62167219200001},
    {"", false, 0},
    {"yesterday", false, 0},
    {"2024-13-01", false, 0},
    {"2024-00-10", false, 0},
    {"2024-01-32", false, 0},
    {"2023-02-29", false, 0},
    {"1900-02-29", false, 0},
    {"2024-04-31", false, 0},
    {"2024-1-01", false, 0},
    {"24-01-01", false, 0},
    {"2024/01/01", false, 0},
    {"2024-01-01T", false, 0},
    {"2024-01-01T10:00", false, 0},
    {"2024-01-01T24:00:00Z", false, 0},
    {"2024-01-01T10:60:00Z", false, 0},
    {"2024-01-01T10:00:60Z", false, 0},
    {"2024-01-01T10:00:00.Z", false, 0},
    {"2024-01-01T10:00:00ZZ", false, 0},
    {"2024-01-01T10:00:00+24:00", false, 0},
    {"2024-01-01T10:00:00+02:60", false, 0},
    {"2024-01-01T10:00:00+2", false, 0},
    {"2024-01-01x", false, 0},
    {"2024-01-01Z", false, 0},
    {" 2024-01-01", false, 0},
    {"+292278994-08-17T07:12:55.807Z", true, INT64_MAX},
    {"+292278994-08-17T09:12:55.807+02:00", true, INT64_MAX},
    {"-292275055-05-16T16:47:04.192Z", true, INT64_MIN},
    {"-292275055-05-16T14:47:04.192-02:00", true, INT64_MIN},
    {"+292278994-08-17T07:12:55.808Z", false, 0}, /* beyond an int64 of milliseconds */
    {"-292275055-05-16T16:47:04.191Z", false, 0},
    {"-292275055-05-16T16:47:04.192+00:01", false, 0},
    {"+999999999-01-01", false, 0},
    {"+1234567890-01-01", false, 0},
};

static void
test_parse_datetime(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof parse_cases / sizeof parse_cases[0]; k++) {
        const parse_case_t *c = &parse_cases[k];
        int64_t ms = 42;
        bool ok = dc_parse_datetime(c->text, &ms);
        if (ok != c->ok)
            fail_msg("parse \"%s\": %s, expected %s", c->text, ok ? "ok" : "refused",
                     c->ok ? "ok" : "refused");
        if (ok && ms != c->ms)
            fail_msg("parse \"%s\": %lld, expected %lld", c->text, (long long)ms, (long long)c->ms);
    }
    assert_false(dc_parse_datetime(NULL, NULL));
}

/* ---- Types --------------------------------------------------------------------------------- */

static void
test_type_names(void **state)
{
    (void)state;
    static const struct {
        dc_type_t t;
        const char *name;
    } names[] = {
        {DC_TYPE_NULL, "NULL"},
        {DC_TYPE_BOOLEAN, "BOOLEAN"},
        {DC_TYPE_SHORT, "SHORT"},
        {DC_TYPE_INT, "INT"},
        {DC_TYPE_LONG, "LONG"},
        {DC_TYPE_DECIMAL, "DECIMAL"},
        {DC_TYPE_FLOAT, "FLOAT"},
        {DC_TYPE_DOUBLE, "DOUBLE"},
        {DC_TYPE_NAIVE_DATE, "NAIVE_DATE"},
        {DC_TYPE_NAIVE_DATETIME, "NAIVE_DATETIME"},
        {DC_TYPE_UTC_DATETIME, "UTC_DATETIME"},
        {DC_TYPE_BINARY, "BINARY"},
        {DC_TYPE_XML, "XML"},
        {DC_TYPE_STRING, "STRING"},
        {DC_TYPE_JSON, "JSON"},
    };
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        dc_type_t t = DC_TYPE_JSON;
        assert_string_equal(dc_type_name(names[k].t), names[k].name);
        assert_true(dc_type_from_name(names[k].name, &t));
        assert_int_equal(t, names[k].t);
    }
    dc_type_t t = DC_TYPE_NULL;
    assert_true(dc_type_from_name("utc_datetime", &t));
    assert_int_equal(t, DC_TYPE_UTC_DATETIME);
    assert_true(dc_type_from_name("Json", &t));
    assert_int_equal(t, DC_TYPE_JSON);
    t = DC_TYPE_INT;
    assert_false(dc_type_from_name("TEXT", &t));
    assert_false(dc_type_from_name("", &t));
    assert_false(dc_type_from_name("STRING ", &t));
    assert_false(dc_type_from_name(NULL, &t));
    assert_int_equal(t, DC_TYPE_INT); /* untouched */
}

typedef struct {
    dc_type_t a, b, joined;
} join_case_t;

#define N_ DC_TYPE_NULL
#define BO DC_TYPE_BOOLEAN
#define SH DC_TYPE_SHORT
#define IN DC_TYPE_INT
#define LO DC_TYPE_LONG
#define DE DC_TYPE_DECIMAL
#define FL DC_TYPE_FLOAT
#define DO DC_TYPE_DOUBLE
#define UT DC_TYPE_UTC_DATETIME
#define BI DC_TYPE_BINARY
#define ST DC_TYPE_STRING
#define JS DC_TYPE_JSON

/* Every unordered pair of the types BSON values map to, plus SHORT and FLOAT (declared columns
 * only). Checked both ways round. */
static const join_case_t join_cases[] = {
    {N_, N_, N_},
    {N_, BO, BO},
    {N_, IN, IN},
    {N_, LO, LO},
    {N_, DE, DE},
    {N_, DO, DO},
    {N_, UT, UT},
    {N_, BI, BI},
    {N_, ST, ST},
    {N_, JS, JS},

    {BO, BO, BO},
    {BO, IN, JS},
    {BO, LO, JS},
    {BO, DE, JS},
    {BO, DO, JS},
    {BO, UT, JS},
    {BO, BI, JS},
    {BO, ST, JS},
    {BO, JS, JS},

    {IN, IN, IN},
    {IN, LO, LO},
    {IN, DE, DE},
    {IN, DO, DO},
    {IN, UT, JS},
    {IN, BI, JS},
    {IN, ST, JS},
    {IN, JS, JS},

    {LO, LO, LO},
    {LO, DE, DE},
    {LO, DO, DE},
    {LO, UT, JS},
    {LO, BI, JS},
    {LO, ST, JS},
    {LO, JS, JS},

    {DE, DE, DE},
    {DE, DO, DE},
    {DE, UT, JS},
    {DE, BI, JS},
    {DE, ST, JS},
    {DE, JS, JS},

    {DO, DO, DO},
    {DO, UT, JS},
    {DO, BI, JS},
    {DO, ST, JS},
    {DO, JS, JS},

    {UT, UT, UT},
    {UT, BI, JS},
    {UT, ST, JS},
    {UT, JS, JS},

    {BI, BI, BI},
    {BI, ST, JS},
    {BI, JS, JS},

    {ST, ST, ST},
    {ST, JS, JS},

    {JS, JS, JS},

    /* SHORT and FLOAT: the narrowest exact type. */
    {SH, SH, SH},
    {SH, IN, IN},
    {SH, LO, LO},
    {SH, FL, FL},
    {SH, DO, DO},
    {SH, DE, DE},
    {SH, N_, SH},
    {SH, ST, JS},
    {FL, FL, FL},
    {FL, IN, DO},
    {FL, LO, DE},
    {FL, DO, DO},
    {FL, DE, DE},
    {FL, BO, JS},

    /* The other Fivetran types only join with themselves and NULL. */
    {DC_TYPE_NAIVE_DATE, DC_TYPE_NAIVE_DATE, DC_TYPE_NAIVE_DATE},
    {DC_TYPE_NAIVE_DATE, UT, JS},
    {DC_TYPE_NAIVE_DATETIME, UT, JS},
    {DC_TYPE_XML, ST, JS},
    {DC_TYPE_XML, N_, DC_TYPE_XML},
};

static void
test_type_join(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof join_cases / sizeof join_cases[0]; k++) {
        const join_case_t *c = &join_cases[k];
        dc_type_t ab = dc_type_join(c->a, c->b), ba = dc_type_join(c->b, c->a);
        if (ab != c->joined || ba != c->joined)
            fail_msg("join(%s, %s) = %s / %s, expected %s", dc_type_name(c->a), dc_type_name(c->b),
                     dc_type_name(ab), dc_type_name(ba), dc_type_name(c->joined));
    }
}

static void
test_natural_types(void **state)
{
    (void)state;
    static const struct {
        bson_type_t b;
        dc_type_t t;
    } cases[] = {
        {BSON_TYPE_EOD, N_},        {BSON_TYPE_DOUBLE, DO},     {BSON_TYPE_UTF8, ST},
        {BSON_TYPE_DOCUMENT, JS},   {BSON_TYPE_ARRAY, JS},      {BSON_TYPE_BINARY, BI},
        {BSON_TYPE_UNDEFINED, N_},  {BSON_TYPE_OID, ST},        {BSON_TYPE_BOOL, BO},
        {BSON_TYPE_DATE_TIME, UT},  {BSON_TYPE_NULL, N_},       {BSON_TYPE_REGEX, JS},
        {BSON_TYPE_DBPOINTER, JS},  {BSON_TYPE_CODE, ST},       {BSON_TYPE_SYMBOL, ST},
        {BSON_TYPE_CODEWSCOPE, JS}, {BSON_TYPE_INT32, IN},      {BSON_TYPE_TIMESTAMP, JS},
        {BSON_TYPE_INT64, LO},      {BSON_TYPE_DECIMAL128, DE}, {BSON_TYPE_MAXKEY, JS},
        {BSON_TYPE_MINKEY, JS},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
        assert_int_equal(dc_convert_natural_type(cases[k].b), cases[k].t);
}

/* The natural type of a value, converted, is what the JSON rendering says for JSON columns and
 * what dc_convert_value returns for every top-level type: one document of every type. */
static void
test_every_type_natural_conversion(void **state)
{
    (void)state;
    bson_t *b = doc_of("{\"d\": 1.5, \"s\": \"x\", \"o\": {}, \"a\": [],"
                       " \"bin\": {\"$binary\": {\"base64\": \"AA==\", \"subType\": \"00\"}},"
                       " \"u\": {\"$undefined\": true}, \"id\": " OID ", \"b\": true,"
                       " \"dt\": {\"$date\": {\"$numberLong\": \"0\"}}, \"n\": null,"
                       " \"re\": {\"$regularExpression\": {\"pattern\": \"p\", \"options\": \"\"}},"
                       " \"ptr\": {\"$dbPointer\": {\"$ref\": \"c\", \"$id\": " OID "}},"
                       " \"code\": {\"$code\": \"c()\"}, \"sym\": {\"$symbol\": \"y\"},"
                       " \"cws\": {\"$code\": \"w()\", \"$scope\": {}}, \"i\": 7,"
                       " \"ts\": {\"$timestamp\": {\"t\": 3, \"i\": 4}},"
                       " \"l\": {\"$numberLong\": \"8\"}, \"dec\": {\"$numberDecimal\": \"1\"},"
                       " \"min\": {\"$minKey\": 1}, \"max\": {\"$maxKey\": 1}}");
    static const struct {
        const char *key;
        dc_type_t type;
        const char *text;
    } want[] = {
        {"d", DO, NULL},
        {"s", ST, "x"},
        {"o", JS, "{}"},
        {"a", JS, "[]"},
        {"bin", BI, NULL},
        {"u", N_, NULL},
        {"id", ST, OID_HEX},
        {"b", BO, NULL},
        {"dt", UT, "1970-01-01T00:00:00.000Z"},
        {"n", N_, NULL},
        {"re", JS, "{\"pattern\":\"p\",\"options\":\"\"}"},
        {"ptr", JS, "{\"$ref\":\"c\",\"$id\":\"" OID_HEX "\"}"},
        {"code", ST, "c()"},
        {"sym", ST, "y"},
        {"cws", JS, "{\"code\":\"w()\",\"scope\":{}}"},
        {"i", IN, NULL},
        {"ts", JS, "{\"t\":3,\"i\":4}"},
        {"l", LO, NULL},
        {"dec", DE, "1"},
        {"min", JS, "{\"$minKey\":1}"},
        {"max", JS, "{\"$maxKey\":1}"},
    };
    enum { N = sizeof want / sizeof want[0] };
    dc_value_t row[N];
    dc_buf_t buf;
    bson_iter_t it, v;
    dc_buf_init(&buf);
    find_v(b, &it);
    for (size_t k = 0; k < N; k++) {
        assert_true(bson_iter_recurse(&it, &v));
        assert_true(bson_iter_find(&v, want[k].key));
        dc_convert_value(&v, dc_convert_natural_type(bson_iter_type(&v)), &buf, &row[k], NULL);
    }
    dc_convert_finish_row(row, N, &buf);
    for (size_t k = 0; k < N; k++) {
        if (row[k].type != want[k].type)
            fail_msg("%s: type %s", want[k].key, dc_type_name(row[k].type));
        if (want[k].text)
            assert_string_equal(row[k].v.s.ptr, want[k].text);
    }
    assert_true(row[0].v.d == 1.5);
    assert_int_equal(row[4].v.s.len, 1);
    assert_int_equal(row[4].v.s.ptr[0], 0);
    assert_true(row[7].v.b);
    assert_int_equal(row[15].v.i, 7);
    assert_int_equal(row[17].v.i, 8);
    dc_buf_cleanup(&buf);
    bson_destroy(b);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_json_cases),
    cmocka_unit_test(test_json_nested_all_types),
    cmocka_unit_test(test_json_depth_cap),
    cmocka_unit_test(test_invalid_utf8),
    cmocka_unit_test(test_decimal_plain),
    cmocka_unit_test(test_typed_values),
    cmocka_unit_test(test_row_offsets),
    cmocka_unit_test(test_id),
    cmocka_unit_test(test_format_datetime),
    cmocka_unit_test(test_datetime_round_trip),
    cmocka_unit_test(test_parse_datetime),
    cmocka_unit_test(test_type_names),
    cmocka_unit_test(test_type_join),
    cmocka_unit_test(test_natural_types),
    cmocka_unit_test(test_every_type_natural_conversion),
};

DC_CMOCKA_MAIN(tests)

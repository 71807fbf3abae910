/* test_index.c: unit tests of docdb-emu's secondary indexes: the bounds a filter puts on a field
 * (query.h), the order and range scans of an index (index.h), the planner against a plain scan
 * through inserts, replacements, deletes and compaction (plan.h, store.h), and unique indexes.
 * The reference is always the matcher: an index may only narrow, never change, a result. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bson/bson.h>

#include "index.h"
#include "plan.h"
#include "query.h"
#include "store.h"

#include "cmocka_main.h"
#include "test_json.h"

#define NAN_D   "{\"$numberDouble\": \"NaN\"}"
#define INF_D   "{\"$numberDouble\": \"Infinity\"}"
#define NINF_D  "{\"$numberDouble\": \"-Infinity\"}"
#define LONG(x) "{\"$numberLong\": \"" x "\"}"
#define DEC(x)  "{\"$numberDecimal\": \"" x "\"}"
#define DATE(x) "{\"$date\": {\"$numberLong\": \"" x "\"}}"
#define OID(x)  "{\"$oid\": \"" x "\"}"
#define MINKEY  "{\"$minKey\": 1}"
#define MAXKEY  "{\"$maxKey\": 1}"
#define UNDEF   "{\"$undefined\": true}"
#define D0      "1704067200000"
#define D1      "1704067200001"
#define D2      "1704153600000"
#define MISSING NULL

/* Values of field a, one of each kind the order distinguishes (no arrays: an index holding an
 * array is not used). MISSING leaves the field out. */
static const char *const values[] = {
    MINKEY,
    MAXKEY,
    "null",
    UNDEF,
    MISSING,
    NAN_D,
    DEC("NaN"),
    NINF_D,
    "-5",
    "0",
    "1",
    "1.5",
    LONG("5"),
    DEC("5"),
    "10",
    INF_D,
    "\"\"",
    "\"a\"",
    "\"b\"",
    "{\"$symbol\": \"b\"}",
    "{}",
    "{\"x\": 1}",
    "{\"$binary\": {\"base64\": \"AQI=\", \"subType\": \"00\"}}",
    OID("650000000000000000000001"),
    OID("650000000000000000000002"),
    "false",
    "true",
    DATE("0"),
    DATE(D0),
    DATE(D1),
    DATE(D2),
    "{\"$timestamp\": {\"t\": 5, \"i\": 1}}",
    "{\"$regularExpression\": {\"pattern\": \"x\", \"options\": \"\"}}",
    "{\"$code\": \"f()\"}",
};
#define NVALUES (sizeof values / sizeof values[0])

/* Filters over a (and b, which is not indexed) with every operator the bounds know. */
static const char *const filters[] = {
    "{}",
    "{\"a\": 5}",
    "{\"a\": null}",
    "{\"a\": \"b\"}",
    "{\"a\": {\"x\": 1}}",
    "{\"a\": " MINKEY "}",
    "{\"a\": " NAN_D "}",
    "{\"a\": [1, 2]}",
    "{\"a\": {\"$eq\": " DATE(D1) "}}",
    "{\"a\": {\"$gt\": 1}}",
    "{\"a\": {\"$gte\": 1}}",
    "{\"a\": {\"$lt\": 5}}",
    "{\"a\": {\"$lte\": 5}}",
    "{\"a\": {\"$gt\": 1, \"$lt\": 10}}",
    "{\"a\": {\"$gt\": 10, \"$lt\": 1}}",
    "{\"a\": {\"$gt\": " NAN_D "}}",
    "{\"a\": {\"$gte\": " NAN_D "}}",
    "{\"a\": {\"$lt\": " INF_D "}}",
    "{\"a\": {\"$gt\": \"a\"}}",
    "{\"a\": {\"$lte\": \"a\"}}",
    "{\"a\": {\"$gt\": " DATE(D0) "}}",
    "{\"a\": {\"$gte\": " DATE(D0) ", \"$lt\": " DATE(D2) "}}",
    "{\"a\": {\"$gt\": null}}",
    "{\"a\": {\"$gte\": null}}",
    "{\"a\": {\"$lte\": null}}",
    "{\"a\": {\"$gt\": " MINKEY "}}",
    "{\"a\": {\"$gte\": " MINKEY "}}",
    "{\"a\": {\"$lte\": " MINKEY "}}",
    "{\"a\": {\"$lt\": " MAXKEY "}}",
    "{\"a\": {\"$gte\": " MAXKEY "}}",
    "{\"a\": {\"$gt\": " MAXKEY "}}",
    "{\"a\": {\"$gt\": {}}}",
    "{\"a\": {\"$gt\": false}}",
    "{\"a\": {\"$in\": [3, 1, \"a\", null, " DATE(D0) "]}}",
    "{\"a\": {\"$in\": []}}",
    "{\"a\": {\"$nin\": [1, null]}}",
    "{\"a\": {\"$ne\": null}}",
    "{\"a\": {\"$ne\": 5}}",
    "{\"a\": {\"$exists\": true}}",
    "{\"a\": {\"$exists\": false}}",
    "{\"a\": {\"$$type\": \"date\"}}",
    "{\"a\": {\"$$type\": \"number\"}}",
    "{\"a\": {\"$$type\": \"int\"}}",
    "{\"a\": {\"$$type\": [\"int\", \"long\", \"double\", \"decimal\"]}}",
    "{\"a\": {\"$$type\": \"string\"}}",
    "{\"a\": {\"$$type\": [\"string\", \"symbol\"]}}",
    "{\"a\": {\"$$type\": \"null\"}}",
    "{\"a\": {\"$$type\": \"undefined\"}}",
    "{\"a\": {\"$$type\": [\"minKey\", \"maxKey\", 9]}}",
    "{\"a\": {\"$not\": {\"$$type\": \"date\"}}}",
    "{\"a\": {\"$not\": {\"$$type\": \"string\"}}}",
    "{\"a\": {\"$not\": {\"$$type\": \"null\"}}}",
    "{\"a\": {\"$not\": {\"$gt\": 5}}}",
    "{\"a\": {\"$not\": {\"$lt\": 5}}}",
    "{\"a\": {\"$not\": {\"$gte\": " DATE(D0) ", \"$lt\": " DATE(D2) "}}}",
    "{\"a\": {\"$not\": {\"$in\": [1, \"a\"]}}}",
    "{\"a\": {\"$not\": {\"$exists\": true}}}",
    "{\"$or\": [{\"a\": 1}, {\"a\": {\"$gt\": \"a\"}}]}",
    "{\"$or\": [{\"a\": 1}, {\"b\": 2}]}",
    "{\"$and\": [{\"a\": {\"$gte\": 1}}, {\"a\": {\"$lte\": 1}}]}",
    "{\"$nor\": [{\"a\": {\"$$type\": \"date\"}}, {\"a\": null}]}",
    "{\"$nor\": [{\"a\": 1}, {\"b\": 2}]}",
    "{\"a\": 1, \"b\": 2}",
    "{\"b\": 2}",
    "{\"$or\": [{\"a\": {\"$gt\": " DATE(D0) "}}, {\"$and\": [{\"a\": " DATE(
        D0) "}, {\"$or\": "
            "[{\"_id\": {\"$gt\": 5}}, {\"_id\": {\"$$type\": \"string\"}}]}]}]}",
    "{\"$alwaysFalse\": 1}",
    "{\"$alwaysTrue\": 1}",
};
#define NFILTERS (sizeof filters / sizeof filters[0])

/* A document {_id: id, a: values[v] (left out when MISSING), b: id % 3}. */
static bson_t *
make_doc(int id, size_t v)
{
    bson_t *d = bson_new();
    BSON_APPEND_INT32(d, "_id", id);
    if (values[v]) {
        char json[512];
        snprintf(json, sizeof json, "{\"a\": %s}", values[v]);
        bson_t *a = parse_json(json);
        bson_concat(d, a);
        bson_destroy(a);
    }
    BSON_APPEND_INT32(d, "b", id % 3);
    return d;
}

/* The index key of doc at a: its value, null when missing. */
static bson_value_t
key_of(const bson_t *doc)
{
    bson_iter_t it;
    bson_value_t k = {.value_type = BSON_TYPE_NULL};
    if (bson_iter_init_find(&it, doc, "a"))
        k = *bson_iter_value(&it);
    return k;
}

/* ------------------------------------------------------------------------------------------ */
/* Bounds                                                                                     */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
    const char *filter;
    bool bounded;
    bool exact;
    const char *intervals; /* explain's strings, joined by " U " */
} bounds_case_t;

static const bounds_case_t bounds_cases[] = {
    {"{\"a\": 5}", true, true, "[5, 5]"},
    {"{\"a\": {\"$gt\": 5}}", true, true, "(5, <max number>]"},
    {"{\"a\": {\"$lt\": 5}}", true, true, "(nan, 5)"},
    {"{\"a\": {\"$lte\": \"b\"}}", true, true, "[<min string>, \"b\"]"},
    {"{\"a\": {\"$gt\": " DATE(D0) "}}", true, true, "(new Date(" D0 "), <max date>]"},
    {"{\"a\": null}", true, true, "[<min undefined>, <max null>]"},
    {"{\"a\": {\"$gt\": null}}", true, true, ""},
    {"{\"a\": {\"$gt\": 10, \"$lt\": 1}}", true, true, ""},
    {"{\"a\": {\"$gt\": 1, \"$lt\": 10}}", true, true, "(1, 10)"},
    {"{\"a\": {\"$gte\": " MINKEY "}}", false, true, "[MinKey, MaxKey]"},
    {"{\"a\": {\"$gt\": " MINKEY "}}", true, true, "(MinKey, MaxKey]"},
    {"{\"a\": {\"$$type\": \"date\"}}", true, true, "[<min date>, <max date>]"},
    {"{\"a\": {\"$$type\": \"string\"}}", true, false, "[<min string>, <max string>]"},
    {"{\"a\": {\"$$type\": \"null\"}}", true, false, "[<min null>, <max null>]"},
    {"{\"a\": {\"$not\": {\"$$type\": \"date\"}}}", true, true,
     "[MinKey, <min date>) U (<max date>, MaxKey]"},
    {"{\"a\": {\"$not\": {\"$$type\": \"string\"}}}", false, false, "[MinKey, MaxKey]"},
    {"{\"a\": {\"$not\": {\"$gt\": 5}}}", true, true, "[MinKey, 5] U (<max number>, MaxKey]"},
    {"{\"a\": {\"$ne\": null}}", true, true, "[MinKey, <min undefined>) U (<max null>, MaxKey]"},
    {"{\"a\": {\"$in\": [3, 1, \"x\", null]}}", true, true,
     "[<min undefined>, <max null>] U [1, 1] U [3, 3] U [\"x\", \"x\"]"},
    {"{\"a\": {\"$exists\": true}}", false, false, "[MinKey, MaxKey]"},
    {"{\"b\": 1}", false, false, "[MinKey, MaxKey]"},
    {"{\"a\": 1, \"b\": 2}", true, false, "[1, 1]"},
    {"{\"$or\": [{\"a\": 1}, {\"b\": 2}]}", false, false, "[MinKey, MaxKey]"},
    {"{\"$or\": [{\"a\": 1}, {\"a\": {\"$gte\": 1, \"$lt\": 3}}]}", true, true, "[1, 3)"},
    {"{\"$or\": [{\"a\": {\"$gt\": " DATE(D0) "}}, {\"$and\": [{\"a\": " DATE(
         D0) "}, {\"$or\": "
             "[{\"_id\": {\"$gt\": 5}}, {\"_id\": {\"$$type\": \"string\"}}]}]}]}",
     true, false, "[new Date(" D0 "), <max date>]"},
    {"{\"$nor\": [{\"a\": {\"$$type\": \"date\"}}]}", true, true,
     "[MinKey, <min date>) U (<max date>, MaxKey]"},
    {"{\"$alwaysFalse\": 1}", true, true, ""},
};

static void
bounds_string(const emu_bounds_t *b, char *out, size_t n)
{
    bson_t arr = BSON_INITIALIZER;
    bson_iter_t it;
    out[0] = '\0';
    emu_bounds_append_strings(b, &arr);
    bson_iter_init(&it, &arr);
    while (bson_iter_next(&it)) {
        size_t used = strlen(out);
        snprintf(out + used, n - used, "%s%s", used ? " U " : "", bson_iter_utf8(&it, NULL));
    }
    bson_destroy(&arr);
}

static void
test_bounds_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bounds_cases / sizeof bounds_cases[0]; i++) {
        const bounds_case_t *bc = &bounds_cases[i];
        emu_error_t err = {0};
        emu_bounds_t b;
        char got[1024];
        bson_t *q = parse_json(bc->filter);
        emu_filter_t *f = emu_filter_new(q, &err);
        if (!f)
            fail_msg("%s: %s", bc->filter, err.msg);
        bool bounded = emu_filter_bounds(f, "a", &b);
        bounds_string(&b, got, sizeof got);
        if (bounded != bc->bounded || b.exact != bc->exact || strcmp(got, bc->intervals) != 0)
            fail_msg("%s: got bounded %d exact %d '%s', want %d %d '%s'", bc->filter, bounded,
                     b.exact, got, bc->bounded, bc->exact, bc->intervals);
        emu_bounds_cleanup(&b);
        emu_filter_destroy(f);
        bson_destroy(q);
    }
}

/* For every filter and every kind of value: a matching document's key lies in the bounds, and
 * with exact bounds, only matching documents' keys do. */
static void
test_bounds_cover_matches(void **state)
{
    (void)state;
    for (size_t i = 0; i < NFILTERS; i++) {
        emu_error_t err = {0};
        emu_bounds_t b;
        bson_t *q = parse_json(filters[i]);
        emu_filter_t *f = emu_filter_new(q, &err);
        if (!f)
            fail_msg("%s: %s", filters[i], err.msg);
        emu_filter_bounds(f, "a", &b);
        for (size_t v = 0; v < NVALUES; v++) {
            for (int id = 0; id < 3; id++) {
                bson_t *doc = make_doc(id, v);
                bson_value_t k = key_of(doc);
                bool m = emu_filter_matches(f, doc), in = emu_bounds_contains(&b, &k);
                if (m && !in)
                    fail_msg("%s matches a = %s (b = %d) outside its bounds", filters[i],
                             values[v] ? values[v] : "(missing)", id % 3);
                if (b.exact && m != in)
                    fail_msg("%s: exact bounds hold a = %s but the filter does not match it",
                             filters[i], values[v] ? values[v] : "(missing)");
                bson_destroy(doc);
            }
        }
        emu_bounds_cleanup(&b);
        emu_filter_destroy(f);
        bson_destroy(q);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Index order and scans                                                                      */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
    emu_doc_t **v;
    size_t n;
} seen_t;

static bool
remember(emu_doc_t *d, void *ctx)
{
    seen_t *s = ctx;
    s->v[s->n++] = d;
    return true;
}

static emu_index_t *
make_index(const char *spec_json)
{
    emu_error_t err = {0};
    bson_t *spec = parse_json(spec_json);
    emu_index_t *ix = emu_index_new(spec, &err);
    if (!ix)
        fail_msg("%s: %s", spec_json, err.msg);
    bson_destroy(spec);
    return ix;
}

/* Checks that an index on {a: dir_a, b: dir_b} orders documents as the sort of the same
 * specification does, ties by insertion, and that bounded scans, forward and backward, return
 * the matching slice of that order. */
static void
check_order(int dir_a, int dir_b)
{
    char spec_json[128], sort_json[64];
    snprintf(spec_json, sizeof spec_json, "{\"key\": {\"a\": %d, \"b\": %d}, \"name\": \"a_b\"}",
             dir_a, dir_b);
    snprintf(sort_json, sizeof sort_json, "{\"a\": %d, \"b\": %d}", dir_a, dir_b);
    emu_index_t *ix = make_index(spec_json);
    emu_error_t err = {0};
    bson_t *sort_spec = parse_json(sort_json);
    emu_sort_t *sort = emu_sort_new(sort_spec, &err);
    size_t ndocs = NVALUES * 4;
    emu_doc_t **docs = calloc(ndocs, sizeof *docs);
    emu_doc_t **all = calloc(ndocs, sizeof *all), **got = calloc(ndocs, sizeof *got);
    assert_non_null(sort);
    /* Insertion order mixes the values so that the tree really has to order them. */
    for (size_t i = 0; i < ndocs; i++) {
        size_t v = (i * 7) % NVALUES;
        bson_t *d = make_doc((int)i, v);
        docs[i] = emu_doc_new(bson_get_data(d), d->len);
        docs[i]->seq = i;
        emu_index_add(ix, docs[i]);
        bson_destroy(d);
    }
    assert_int_equal(emu_index_entries(ix), ndocs);
    assert_true(emu_index_usable(ix));

    emu_bounds_t full;
    emu_bounds_full(&full);
    seen_t s = {all, 0};
    assert_int_equal(emu_index_scan(ix, &full, false, remember, &s), ndocs);
    for (size_t i = 1; i < ndocs; i++) {
        bson_t va, vb;
        bson_value_t ka[2], kb[2];
        emu_doc_view(all[i - 1], &va);
        emu_doc_view(all[i], &vb);
        emu_sort_keys(sort, &va, ka);
        emu_sort_keys(sort, &vb, kb);
        int c = emu_sort_compare(sort, ka, kb);
        if (c > 0 || (c == 0 && all[i - 1]->seq > all[i]->seq))
            fail_msg("index {a: %d, b: %d} out of order at %zu", dir_a, dir_b, i);
    }
    s.v = got;
    s.n = 0;
    emu_index_scan(ix, &full, true, remember, &s);
    for (size_t i = 0; i < ndocs; i++)
        assert_ptr_equal(got[i], all[ndocs - 1 - i]);

    for (size_t fi = 0; fi < NFILTERS; fi++) {
        bson_t *q = parse_json(filters[fi]);
        emu_filter_t *f = emu_filter_new(q, &err);
        emu_bounds_t b;
        assert_non_null(f);
        emu_filter_bounds(f, "a", &b);
        for (int reverse = 0; reverse < 2; reverse++) {
            size_t want = 0;
            s.n = 0;
            emu_index_scan(ix, &b, reverse, remember, &s);
            for (size_t k = 0; k < ndocs; k++) {
                emu_doc_t *d = all[reverse ? ndocs - 1 - k : k];
                bson_t view;
                emu_doc_view(d, &view);
                bson_value_t key = key_of(&view);
                if (!emu_bounds_contains(&b, &key))
                    continue;
                if (want >= s.n || got[want] != d)
                    fail_msg("%s: scan (reverse %d) differs at %zu", filters[fi], reverse, want);
                want++;
            }
            assert_int_equal(s.n, want);
        }
        emu_bounds_cleanup(&b);
        emu_filter_destroy(f);
        bson_destroy(q);
    }
    emu_bounds_cleanup(&full);

    /* Removal leaves the rest in order; an array makes the index unusable until it goes. */
    for (size_t i = 0; i < ndocs; i += 2)
        emu_index_remove(ix, docs[i]);
    assert_int_equal(emu_index_entries(ix), ndocs / 2);
    bson_t *arr = parse_json("{\"_id\": -1, \"a\": [1, 2]}");
    emu_doc_t *ad = emu_doc_new(bson_get_data(arr), arr->len);
    ad->seq = ndocs;
    emu_index_add(ix, ad);
    assert_false(emu_index_usable(ix));
    assert_true(emu_index_multikey(ix));
    emu_index_remove(ix, ad);
    assert_true(emu_index_usable(ix));
    emu_doc_unref(ad);
    bson_destroy(arr);

    emu_index_destroy(ix);
    for (size_t i = 0; i < ndocs; i++)
        emu_doc_unref(docs[i]);
    free(docs);
    free(all);
    free(got);
    emu_sort_destroy(sort);
    bson_destroy(sort_spec);
}

static void
test_index_order_ascending(void **state)
{
    (void)state;
    check_order(1, 1);
}

static void
test_index_order_descending(void **state)
{
    (void)state;
    check_order(-1, 1);
    check_order(1, -1);
}

static void
test_index_key_paths(void **state)
{
    (void)state;
    emu_index_t *ix = make_index("{\"key\": {\"x.y\": 1}, \"name\": \"xy\"}");
    static const char *const docs[] = {"{\"_id\": 1, \"x\": {\"y\": 3}}",
                                       "{\"_id\": 2, \"x\": 5}", /* a scalar along the path */
                                       "{\"_id\": 3}",
                                       "{\"_id\": 4, \"x\": {\"y\": null}}",
                                       "{\"_id\": 5, \"x\": {\"y\": 1}}",
                                       "{\"_id\": 6, \"x\": {}}"};
    static const int order[] = {2, 3, 4, 6, 5, 1}; /* nulls by insertion, then 1, 3 */
    emu_doc_t *d[6];
    emu_doc_t *got[6];
    seen_t s = {got, 0};
    emu_bounds_t full;
    for (size_t i = 0; i < 6; i++) {
        bson_t *b = parse_json(docs[i]);
        d[i] = emu_doc_new(bson_get_data(b), b->len);
        d[i]->seq = i;
        emu_index_add(ix, d[i]);
        bson_destroy(b);
    }
    assert_true(emu_index_usable(ix));
    emu_bounds_full(&full);
    emu_index_scan(ix, &full, false, remember, &s);
    for (size_t i = 0; i < 6; i++) {
        bson_t view;
        bson_iter_t it;
        emu_doc_view(got[i], &view);
        assert_true(bson_iter_init_find(&it, &view, "_id"));
        assert_int_equal(bson_iter_int32(&it), order[i]);
    }
    /* An array of documents along the path is an array all the same. */
    bson_t *b = parse_json("{\"_id\": 7, \"x\": [{\"y\": 1}]}");
    emu_doc_t *arr = emu_doc_new(bson_get_data(b), b->len);
    arr->seq = 7;
    emu_index_add(ix, arr);
    assert_false(emu_index_usable(ix));
    emu_bounds_cleanup(&full);
    emu_index_destroy(ix);
    for (size_t i = 0; i < 6; i++)
        emu_doc_unref(d[i]);
    emu_doc_unref(arr);
    bson_destroy(b);
}

static void
test_index_spec_errors(void **state)
{
    (void)state;
    static const struct {
        const char *spec;
        int code;
    } cases[] = {
        {"{\"key\": {\"a\": 0}, \"name\": \"x\"}", 67},
        {"{\"key\": {\"a\": true}, \"name\": \"x\"}", 67},
        {"{\"key\": {}, \"name\": \"x\"}", 67},
        {"{\"key\": {\"a..b\": 1}, \"name\": \"x\"}", 67},
        {"{\"key\": {\"a\": 1}}", 9},
        {"{\"key\": {\"a\": 1}, \"name\": \"x\", \"partialFilterExpression\": {\"$foo\": 1}}", 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        emu_error_t err = {0};
        bson_t *spec = parse_json(cases[i].spec);
        emu_index_t *ix = emu_index_new(spec, &err);
        if (ix)
            fail_msg("%s was accepted", cases[i].spec);
        assert_int_equal(err.code, cases[i].code);
        bson_destroy(spec);
    }
    /* Special index types are kept as metadata and never used. */
    emu_index_t *ix = make_index("{\"key\": {\"a\": \"hashed\"}, \"name\": \"h\"}");
    assert_false(emu_index_usable(ix));
    emu_index_destroy(ix);
}

/* ------------------------------------------------------------------------------------------ */
/* The planner against a scan, through the store                                              */
/* ------------------------------------------------------------------------------------------ */

static uint64_t rng = 88172645463325252ull;

static uint64_t
next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static emu_doc_t *
doc_from(bson_t *b)
{
    emu_doc_t *d = emu_doc_new(bson_get_data(b), b->len);
    bson_destroy(b);
    return d;
}

typedef struct {
    emu_doc_t **v;
    size_t n, cap;
} list_t;

static bool
collect_doc(emu_doc_t *d, void *ctx)
{
    list_t *l = ctx;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n++] = d;
    return true;
}

static int
by_seq(const void *a, const void *b)
{
    const emu_doc_t *x = *(emu_doc_t *const *)a, *y = *(emu_doc_t *const *)b;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Runs every filter with the planner and with a plain scan; the documents must be the same,
 * and bounded filters must use the index while it is usable. Returns the IXSCAN plans seen. */
static int
compare_with_scan(const emu_coll_t *coll, bool expect_usable)
{
    int ixscans = 0;
    for (size_t i = 0; i < NFILTERS; i++) {
        emu_error_t err = {0};
        bson_t *q = parse_json(filters[i]);
        emu_filter_t *f = emu_filter_new(q, &err);
        emu_plan_t plan, scan;
        list_t a = {0}, b = {0};
        emu_bounds_t bounds;
        assert_non_null(f);
        emu_plan_choose(&plan, coll, q, f, NULL);
        bool bounded = emu_filter_bounds(f, "a", &bounds);
        emu_bounds_cleanup(&bounds);
        if (expect_usable && bounded && plan.kind != EMU_PLAN_IXSCAN)
            fail_msg("%s: bounded but not planned as an index scan", filters[i]);
        if (!expect_usable && plan.kind == EMU_PLAN_IXSCAN)
            fail_msg("%s: an index scan over a multikey index", filters[i]);
        ixscans += plan.kind == EMU_PLAN_IXSCAN;
        emu_plan_run(&plan, coll, f, collect_doc, &a);
        memset(&scan, 0, sizeof scan);
        scan.kind = EMU_PLAN_COLLSCAN;
        emu_plan_run(&scan, coll, f, collect_doc, &b);
        if (plan.kind == EMU_PLAN_IXSCAN && plan.bounds.n > 0 && bounded)
            assert_true(plan.docs_examined <= scan.docs_examined);
        if (a.n != b.n)
            fail_msg("%s: %zu documents through the plan, %zu by a scan", filters[i], a.n, b.n);
        if (a.n > 1)
            qsort(a.v, a.n, sizeof *a.v, by_seq);
        for (size_t k = 0; k < a.n; k++)
            assert_ptr_equal(a.v[k], b.v[k]);
        free(a.v);
        free(b.v);
        emu_plan_cleanup(&plan);
        emu_filter_destroy(f);
        bson_destroy(q);
    }
    return ixscans;
}

static void
test_planner_matches_scan(void **state)
{
    (void)state;
    emu_error_t err = {0};
    emu_store_init();
    emu_coll_t *coll = emu_store_coll("t", "c", true);
    const int n = 3000;
    for (int i = 0; i < n; i++)
        assert_true(emu_coll_insert(coll, doc_from(make_doc(i, next_rand() % NVALUES)), &err));
    bson_t *spec = parse_json("{\"key\": {\"a\": 1, \"_id\": 1}, \"name\": \"a_1__id_1\"}");
    assert_true(emu_coll_add_index(coll, spec, &err));
    bson_destroy(spec);
    assert_true(compare_with_scan(coll, true) > 0);

    /* Replacements that change the key, then deletes of most documents and a compaction. */
    for (int i = 0; i < n; i += 3) {
        bson_value_t id = {.value_type = BSON_TYPE_INT32, .value.v_int32 = i};
        size_t slot = emu_coll_find_id(coll, &id);
        assert_true(slot != SIZE_MAX);
        assert_true(
            emu_coll_replace(coll, slot, doc_from(make_doc(i, next_rand() % NVALUES)), &err));
    }
    compare_with_scan(coll, true);
    for (size_t s = 0; s < emu_coll_slots(coll); s++) {
        if (emu_coll_at(coll, s) && next_rand() % 10 < 8)
            emu_coll_remove(coll, s);
    }
    size_t slots_before = emu_coll_slots(coll);
    emu_coll_compact(coll);
    assert_true(emu_coll_slots(coll) < slots_before);
    assert_int_equal(emu_index_entries(emu_coll_index(coll, 0)), emu_coll_count(coll));
    compare_with_scan(coll, true);

    /* One array along the key: the index is no longer used, results stay the same. */
    bson_t *arr = parse_json("{\"_id\": -1, \"a\": [1, \"a\"]}");
    assert_true(emu_coll_insert(coll, doc_from(arr), &err));
    compare_with_scan(coll, false);
    emu_store_cleanup();
}

/* A sort the index gives is planned on the index, forward or backward, even without bounds; a
 * bounded scan that must be sorted anyway and would visit much of the collection is not. */
static void
test_planner_sort(void **state)
{
    (void)state;
    emu_error_t err = {0};
    emu_store_init();
    emu_coll_t *coll = emu_store_coll("t", "s", true);
    for (int i = 0; i < 50 * (int)NVALUES; i++)
        assert_true(emu_coll_insert(coll, doc_from(make_doc(i, (size_t)i % NVALUES)), &err));
    bson_t *spec = parse_json("{\"key\": {\"a\": 1, \"_id\": -1}, \"name\": \"a_1__id_-1\"}");
    assert_true(emu_coll_add_index(coll, spec, &err));
    static const struct {
        const char *filter, *sort;
        emu_plan_kind_t kind;
        bool reverse, sorted;
    } cases[] = {
        {NULL, "{\"a\": 1}", EMU_PLAN_IXSCAN, false, true},
        {NULL, "{\"a\": -1, \"_id\": 1}", EMU_PLAN_IXSCAN, true, true},
        {NULL, "{\"a\": 1, \"_id\": 1}", EMU_PLAN_COLLSCAN, false, false},
        /* ids were inserted in ascending order: natural order is _id order */
        {NULL, "{\"_id\": 1}", EMU_PLAN_COLLSCAN, false, true},
        {NULL, "{\"_id\": -1}", EMU_PLAN_COLLSCAN, false, false},
        {"{\"a\": {\"$gt\": 1}}", "{\"a\": -1}", EMU_PLAN_IXSCAN, true, true},
        {"{\"a\": \"b\"}", "{\"_id\": 1}", EMU_PLAN_IXSCAN, false, false},
        {"{\"a\": {\"$ne\": \"b\"}}", "{\"_id\": 1}", EMU_PLAN_COLLSCAN, false, true},
        {"{\"a\": {\"$ne\": \"b\"}}", NULL, EMU_PLAN_IXSCAN, false, true},
        {"{\"_id\": 7}", "{\"a\": 1}", EMU_PLAN_IDHACK, false, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bson_t *sort = cases[i].sort ? parse_json(cases[i].sort) : NULL;
        bson_t *q = cases[i].filter ? parse_json(cases[i].filter) : NULL;
        emu_filter_t *f = q ? emu_filter_new(q, &err) : NULL;
        emu_plan_t p;
        emu_plan_choose(&p, coll, q, f, sort);
        if (p.kind != cases[i].kind || p.reverse != cases[i].reverse || p.sorted != cases[i].sorted)
            fail_msg("filter %s sort %s: kind %d reverse %d sorted %d", cases[i].filter,
                     cases[i].sort, p.kind, p.reverse, p.sorted);
        emu_plan_cleanup(&p);
        emu_filter_destroy(f);
        if (q)
            bson_destroy(q);
        if (sort)
            bson_destroy(sort);
    }
    /* One insert out of _id order, and a sort on _id needs sorting again. */
    assert_true(emu_coll_insert(coll, doc_from(make_doc(-1, 0)), &err));
    bson_t *idsort = parse_json("{\"_id\": 1}");
    emu_plan_t p;
    emu_plan_choose(&p, coll, NULL, NULL, idsort);
    assert_int_equal(p.kind, EMU_PLAN_COLLSCAN);
    assert_false(p.sorted);
    emu_plan_cleanup(&p);
    bson_destroy(idsort);
    bson_destroy(spec);
    emu_store_cleanup();
}

/* ------------------------------------------------------------------------------------------ */
/* Unique indexes                                                                             */
/* ------------------------------------------------------------------------------------------ */

static bool
insert_json(emu_coll_t *coll, const char *json, emu_error_t *err)
{
    memset(err, 0, sizeof *err);
    return emu_coll_insert(coll, doc_from(parse_json(json)), err);
}

static void
test_unique(void **state)
{
    (void)state;
    emu_error_t err = {0};
    emu_store_init();
    emu_coll_t *coll = emu_store_coll("t", "u", true);
    assert_true(insert_json(coll, "{\"_id\": 1, \"e\": \"x\"}", &err));
    assert_true(insert_json(coll, "{\"_id\": 2, \"e\": \"x\"}", &err));
    bson_t *spec = parse_json("{\"key\": {\"e\": 1}, \"name\": \"e_1\", \"unique\": true}");
    /* Existing duplicates: the index is not created. */
    assert_false(emu_coll_add_index(coll, spec, &err));
    assert_int_equal(err.code, 11000);
    assert_int_equal(emu_coll_nindexes(coll), 0);
    emu_coll_remove(coll, emu_coll_find_id(coll, &(bson_value_t){.value_type = BSON_TYPE_INT32,
                                                                 .value.v_int32 = 2}));
    assert_true(emu_coll_add_index(coll, spec, &err));

    assert_false(insert_json(coll, "{\"_id\": 3, \"e\": \"x\"}", &err));
    assert_int_equal(err.code, 11000);
    assert_non_null(strstr(err.msg, "E11000 duplicate key error collection: t.u index: e_1"));
    assert_non_null(strstr(err.msg, "\"x\""));
    assert_int_equal(emu_coll_count(coll), 1);
    /* Numbers equal across types are one key, as in mongod. */
    assert_true(insert_json(coll, "{\"_id\": 4, \"e\": 1}", &err));
    assert_false(insert_json(coll, "{\"_id\": 5, \"e\": 1.0}", &err));
    /* Missing is null: once. */
    assert_true(insert_json(coll, "{\"_id\": 6}", &err));
    assert_false(insert_json(coll, "{\"_id\": 7, \"e\": null}", &err));
    /* A replacement may keep its own key, not take another's. */
    size_t slot =
        emu_coll_find_id(coll, &(bson_value_t){.value_type = BSON_TYPE_INT32, .value.v_int32 = 4});
    assert_true(emu_coll_replace(coll, slot,
                                 doc_from(parse_json("{\"_id\": 4, \"e\": 1, \"z\": 1}")), &err));
    assert_false(
        emu_coll_replace(coll, slot, doc_from(parse_json("{\"_id\": 4, \"e\": \"x\"}")), &err));
    assert_int_equal(err.code, 11000);
    assert_true(
        emu_coll_replace(coll, slot, doc_from(parse_json("{\"_id\": 4, \"e\": \"y\"}")), &err));
    assert_true(insert_json(coll, "{\"_id\": 8, \"e\": 1}", &err));
    bson_destroy(spec);

    /* Sparse: documents without the field are left out; partial: only matching ones count. */
    spec =
        parse_json("{\"key\": {\"s\": 1}, \"name\": \"s_1\", \"unique\": true, \"sparse\": true}");
    assert_true(emu_coll_add_index(coll, spec, &err));
    bson_destroy(spec);
    spec = parse_json("{\"key\": {\"p\": 1}, \"name\": \"p_1\", \"unique\": true, "
                      "\"partialFilterExpression\": {\"live\": true}}");
    assert_true(emu_coll_add_index(coll, spec, &err));
    bson_destroy(spec);
    assert_true(insert_json(coll, "{\"_id\": 10, \"e\": 10, \"p\": 1, \"live\": true}", &err));
    assert_true(insert_json(coll, "{\"_id\": 11, \"e\": 11, \"p\": 1}", &err));
    assert_false(insert_json(coll, "{\"_id\": 12, \"e\": 12, \"p\": 1, \"live\": true}", &err));
    assert_true(insert_json(coll, "{\"_id\": 13, \"e\": 13, \"s\": 5}", &err));
    assert_false(insert_json(coll, "{\"_id\": 14, \"e\": 14, \"s\": 5}", &err));
    assert_non_null(strstr(err.msg, "index: s_1"));
    emu_store_cleanup();
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_bounds_table),
    cmocka_unit_test(test_bounds_cover_matches),
    cmocka_unit_test(test_index_order_ascending),
    cmocka_unit_test(test_index_order_descending),
    cmocka_unit_test(test_index_key_paths),
    cmocka_unit_test(test_index_spec_errors),
    cmocka_unit_test(test_planner_matches_scan),
    cmocka_unit_test(test_planner_sort),
    cmocka_unit_test(test_unique),
};

DC_CMOCKA_MAIN(tests)

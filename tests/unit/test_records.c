/* test_records.c: the Records bytes `serve` writes itself (fivetran/records.c) are exactly the
 * bytes protobuf-c packs for the same UpdateResponse, for every value type and edge value, and
 * protobuf-c decodes them back to the same values. */
#include "cmocka_main.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.pb-c.h"
#include "connector_sdk.pb-c.h"
#include "fivetran/records.h"

#define NCOLS 15

static dc_value_t
text(dc_type_t t, const char *s, size_t n)
{
    dc_value_t v = {.type = t};
    v.v.s.ptr = s;
    v.v.s.len = n;
    return v;
}

/* One row of every type, edge values in the given variant. */
static void
row(int variant, dc_value_t *v)
{
    static const char bin[] = {0, 1, 2, (char)0xff, 0};
    memset(v, 0, NCOLS * sizeof *v);
    v[0] = text(DC_TYPE_STRING, variant ? "65f1a1b2c3d4e5f601234567" : "", variant ? 24 : 0);
    v[1].type = DC_TYPE_NULL;
    v[2].type = DC_TYPE_BOOLEAN;
    v[2].v.b = variant == 1;
    v[3].type = DC_TYPE_INT;
    v[3].v.i = variant == 0 ? 0 : variant == 1 ? -1 : INT32_MIN;
    v[4].type = DC_TYPE_SHORT;
    v[4].v.i = variant == 2 ? -32768 : 127;
    v[5].type = DC_TYPE_LONG;
    v[5].v.i = variant == 0 ? 0 : variant == 1 ? INT64_MIN : INT64_MAX;
    v[6].type = DC_TYPE_DOUBLE;
    v[6].v.d = variant == 0 ? 0.0 : variant == 1 ? -0.1 : 1e308;
    v[7].type = DC_TYPE_UTC_DATETIME; /* epoch, before it (negative, with millis), far after */
    v[7].ms = variant == 0 ? 0 : variant == 1 ? -1 : 253402300799999;
    v[8] = text(DC_TYPE_DECIMAL, "-1234567890.0987654321", 22);
    v[9] = text(DC_TYPE_BINARY, bin, variant ? sizeof bin : 0);
    v[10] = text(DC_TYPE_JSON, "{\"a\": [1, \"\\u00e9\"]}", 20);
    v[11] = text(DC_TYPE_XML, "<a/>", 4);
    v[12].type = DC_TYPE_NAIVE_DATE;
    v[12].ms = 86400000;
    v[13].type = DC_TYPE_NAIVE_DATETIME;
    v[13].ms = -86400001;
    static const char long_text[] =
        "h\xc3\xa9llo, a text longer than one hundred and twenty-seven bytes, so that its length "
        "prefix takes two bytes: protobuf's varints carry seven bits per byte";
    v[14] = text(DC_TYPE_STRING, long_text, sizeof long_text - 1);
}

static Google__Protobuf__Timestamp *
ts(int64_t ms, Google__Protobuf__Timestamp *t)
{
    Google__Protobuf__Timestamp init = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    *t = init;
    int64_t s = ms / 1000, rem = ms % 1000;
    if (rem < 0) {
        s--;
        rem += 1000;
    }
    t->seconds = s;
    t->nanos = (int32_t)(rem * 1000000);
    return t;
}

/* The same value as protobuf-c structs, written independently of records.c. */
static void
pb_value(const dc_value_t *in, FivetranSdk__V2__ValueType *v, Google__Protobuf__Timestamp *t)
{
    FivetranSdk__V2__ValueType init = FIVETRAN_SDK__V2__VALUE_TYPE__INIT;
    *v = init;
    char *s = (char *)in->v.s.ptr;
    switch (in->type) {
    case DC_TYPE_NULL:
        v->inner_case = FIVETRAN_SDK__V2__VALUE_TYPE__INNER_NULL;
        v->null = true;
        break;
    case DC_TYPE_BOOLEAN:
        v->inner_case = FIVETRAN_SDK__V2__VALUE_TYPE__INNER_BOOL;
        v->bool_ = in->v.b;
        break;
    case DC_TYPE_SHORT:
    case DC_TYPE_INT:
        v->inner_case = FIVETRAN_SDK__V2__VALUE_TYPE__INNER_INT;
        v->int_ = (int32_t)in->v.i;
        break;
    case DC_TYPE_LONG:
        v->inner_case = FIVETRAN_SDK__V2__VALUE_TYPE__INNER_LONG;
        v->long_ = in->v.i;
        break;
    case DC_TYPE_FLOAT:
    case DC_TYPE_DOUBLE:
        v->inner_case = FIVETRAN_SDK__V2__VALUE_TYPE__INNER_DOUBLE;
        v->double_ = in->v.d;
        break;
    case DC_TYPE_UTC_DATETIME:
        v->inner_case = FIVETRAN_SDK__V2__VALUE_TYPE__INNER_UTC_DATETIME;
        v->utc_datetime = ts(in->ms, t);
        break;
    case DC_TYPE_NAIVE_DATE:
        v->inner_case = FIVETRAN_SDK__V2__VALUE_TYPE__INNER_NAIVE_DATE;
        v->naive_date = ts(in->ms, t);
        break;
    case DC_TYPE_NAIVE_DATETIME:
        v->inner_case = FIVETRAN_SDK__V2__VALUE_TYPE__INNER_NAIVE_DATETIME;
        v->naive_datetime = ts(in->ms, t);
        break;
    case DC_TYPE_BINARY:
        v->inner_case = FIVETRAN_SDK__V2__VALUE_TYPE__INNER_BINARY;
        v->binary.data = (uint8_t *)s;
        v->binary.len = in->v.s.len;
        break;
    case DC_TYPE_DECIMAL:
        v->inner_case = FIVETRAN_SDK__V2__VALUE_TYPE__INNER_DECIMAL;
        v->decimal = s;
        break;
    case DC_TYPE_JSON:
        v->inner_case = FIVETRAN_SDK__V2__VALUE_TYPE__INNER_JSON;
        v->json = s;
        break;
    case DC_TYPE_XML:
        v->inner_case = FIVETRAN_SDK__V2__VALUE_TYPE__INNER_XML;
        v->xml = s;
        break;
    default:
        v->inner_case = FIVETRAN_SDK__V2__VALUE_TYPE__INNER_STRING;
        v->string = s;
    }
}

static void
table(dc_table_t *t)
{
    static const char *names[NCOLS] = {"_id",  "gone",  "flag", "n",      "small",
                                       "big",  "price", "at",   "amount", "blob",
                                       "meta", "doc",   "day",  "local",  "a_name_"};
    dc_table_init(t, "app.things", "things");
    for (int i = 0; i < NCOLS; i++)
        dc_table_add_column(t, names[i], names[i], DC_TYPE_STRING);
}

/* The value of the entry keyed name, or NULL. */
static const FivetranSdk__V2__ValueType *
entry(const FivetranSdk__V2__Record *r, const char *name)
{
    for (size_t i = 0; i < r->n_data; i++)
        if (strcmp(r->data[i]->key, name) == 0)
            return r->data[i]->value;
    return NULL;
}

static void
same_bytes_as_protobuf_c(void **state)
{
    (void)state;
    dc_table_t t;
    table(&t);
    /* Columns 1 and 11 deselected in the second pass. */
    for (int pass = 0; pass < 2; pass++) {
        bool selected[NCOLS];
        size_t klen[NCOLS];
        for (int i = 0; i < NCOLS; i++) {
            selected[i] = !(pass == 1 && (i == 1 || i == 11));
            klen[i] = strlen(t.cols[i].name);
        }
        dc_records_t r;
        dc_records_init(&r);
        dc_value_t rows[3][NCOLS];
        FivetranSdk__V2__Record recs[3], *recp[3];
        FivetranSdk__V2__Record__DataEntry entries[3][NCOLS], *entp[3][NCOLS];
        FivetranSdk__V2__ValueType vals[3][NCOLS];
        Google__Protobuf__Timestamp tss[3][NCOLS];
        for (int k = 0; k < 3; k++) {
            row(k, rows[k]);
            dc_records_add_upsert(&r, "app.things", &t, pass ? selected : NULL, pass ? klen : NULL,
                                  rows[k]);
            FivetranSdk__V2__Record rinit = FIVETRAN_SDK__V2__RECORD__INIT;
            recs[k] = rinit;
            recs[k].table_name = "app.things";
            recs[k].type = FIVETRAN_SDK__V2__RECORD_TYPE__UPSERT;
            size_t n = 0;
            for (int i = 0; i < NCOLS; i++) {
                if (!selected[i])
                    continue;
                FivetranSdk__V2__Record__DataEntry einit =
                    FIVETRAN_SDK__V2__RECORD__DATA_ENTRY__INIT;
                entries[k][n] = einit;
                entries[k][n].key = t.cols[i].name;
                pb_value(&rows[k][i], &vals[k][n], &tss[k][n]);
                entries[k][n].value = &vals[k][n];
                entp[k][n] = &entries[k][n];
                n++;
            }
            recs[k].n_data = n;
            recs[k].data = entp[k];
            recp[k] = &recs[k];
        }
        assert_int_equal(r.n, 3);
        FivetranSdk__V2__Records records = FIVETRAN_SDK__V2__RECORDS__INIT;
        records.n_records = 3;
        records.records = recp;
        FivetranSdk__V2__UpdateResponse resp = FIVETRAN_SDK__V2__UPDATE_RESPONSE__INIT;
        resp.operation_case = FIVETRAN_SDK__V2__UPDATE_RESPONSE__OPERATION_RECORDS;
        resp.records = &records;
        size_t want_len = protobuf_c_message_get_packed_size(&resp.base);
        uint8_t *want = malloc(want_len), hdr[11];
        protobuf_c_message_pack(&resp.base, want);

        size_t hlen = dc_records_header(&r, hdr);
        assert_int_equal(hlen + r.body.len, want_len);
        assert_memory_equal(hdr, want, hlen);
        assert_memory_equal(r.body.data, want + hlen, r.body.len);

        /* And decoded by protobuf-c: the same values. */
        FivetranSdk__V2__UpdateResponse *back = fivetran_sdk__v2__update_response__unpack(
            NULL, hlen, hdr); /* the header alone is truncated: an error */
        assert_null(back);
        back = fivetran_sdk__v2__update_response__unpack(NULL, want_len, want);
        assert_non_null(back);
        assert_int_equal(back->records->n_records, 3);
        const FivetranSdk__V2__Record *b2 = back->records->records[2];
        assert_int_equal(b2->n_data, pass ? NCOLS - 2 : NCOLS);
        assert_int_equal(entry(b2, "n")->int_, INT32_MIN);
        assert_int_equal(entry(b2, "big")->long_, INT64_MAX);
        if (pass)
            assert_null(entry(b2, "doc")); /* deselected */
        else
            assert_non_null(entry(b2, "doc"));
        const FivetranSdk__V2__Record *b1 = back->records->records[1];
        assert_int_equal(entry(b1, "at")->utc_datetime->seconds, -1);
        assert_int_equal(entry(b1, "at")->utc_datetime->nanos, 999000000);
        fivetran_sdk__v2__update_response__free_unpacked(back, NULL);
        free(want);

        dc_records_reset(&r);
        assert_int_equal(r.n, 0);
        assert_int_equal(r.body.len, 0);
        dc_records_cleanup(&r);
    }
    dc_table_cleanup(&t);
}

/* A body larger than a one-byte length, and many columns (the scratch array grows). */
static void
large_records(void **state)
{
    (void)state;
    dc_table_t t;
    dc_table_init(&t, "c", "c");
    char name[32];
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "field_%d", i);
        dc_table_add_column(&t, name, name, DC_TYPE_LONG);
    }
    dc_value_t v[300];
    for (int i = 0; i < 300; i++) {
        v[i].type = DC_TYPE_LONG;
        v[i].v.i = (int64_t)i << 40;
    }
    dc_records_t r;
    dc_records_init(&r);
    for (int k = 0; k < 100; k++)
        dc_records_add_upsert(&r, "c", &t, NULL, NULL, v);
    uint8_t hdr[11];
    size_t hlen = dc_records_header(&r, hdr);
    size_t len = hlen + r.body.len;
    uint8_t *all = malloc(len);
    memcpy(all, hdr, hlen);
    memcpy(all + hlen, r.body.data, r.body.len);
    FivetranSdk__V2__UpdateResponse *back =
        fivetran_sdk__v2__update_response__unpack(NULL, len, all);
    assert_non_null(back);
    assert_int_equal(back->records->n_records, 100);
    assert_int_equal(back->records->records[99]->n_data, 300);
    assert_int_equal(back->records->records[99]->data[299]->value->long_, (int64_t)299 << 40);
    fivetran_sdk__v2__update_response__free_unpacked(back, NULL);
    free(all);
    dc_records_cleanup(&r);
    dc_table_cleanup(&t);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(same_bytes_as_protobuf_c),
    cmocka_unit_test(large_records),
};

DC_CMOCKA_MAIN(tests)

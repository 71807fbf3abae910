/* records.c: Records batches encoded straight into protobuf's wire format (records.h says why).
 * Each record is sized first (so that every length prefix is known before its bytes), then
 * written into space reserved at once. */
#include "fivetran/records.h"
#include "core/mem.h"

#include <stdlib.h>
#include <string.h>

/* Field numbers (proto/connector_sdk.proto, proto/common.proto). */
enum {
    F_RESPONSE_RECORDS = 6, /* UpdateResponse.records */
    F_RECORDS_RECORD = 1,   /* Records.records */
    F_RECORD_TABLE = 2,     /* Record.table_name; type 3 is UPSERT = 0, proto3's default: omitted */
    F_RECORD_DATA = 4,      /* Record.data, map<string, ValueType> */
    F_ENTRY_KEY = 1,
    F_ENTRY_VALUE = 2,
    F_VALUE_NULL = 1,
    F_VALUE_BOOL = 2,
    F_VALUE_INT = 4,
    F_VALUE_LONG = 5,
    F_VALUE_DOUBLE = 7,
    F_VALUE_NAIVE_DATE = 8,
    F_VALUE_NAIVE_DATETIME = 9,
    F_VALUE_UTC_DATETIME = 10,
    F_VALUE_DECIMAL = 11,
    F_VALUE_BINARY = 12,
    F_VALUE_STRING = 13,
    F_VALUE_JSON = 14,
    F_VALUE_XML = 15,
    F_TS_SECONDS = 1,
    F_TS_NANOS = 2,
};

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2 };

#define TAG(field, wt) ((uint8_t)((field) << 3 | (wt))) /* every field here is below 16 */

static size_t
varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *
put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* A length-delimited field: its tag, length and the length itself. */
static size_t
len_field(size_t n)
{
    return 1 + varint_len(n) + n;
}

static uint8_t *
put_len_field(uint8_t *p, int field, const void *data, size_t n)
{
    *p++ = TAG(field, WT_LEN);
    p = put_varint(p, n);
    if (n)
        memcpy(p, data, n);
    return p + n;
}

/* google.protobuf.Timestamp of a millisecond instant: seconds and non-negative nanos. */
static void
split_ms(int64_t ms, int64_t *sec, int32_t *nanos)
{
    int64_t s = ms / 1000, rem = ms % 1000;
    if (rem < 0) {
        s -= 1;
        rem += 1000;
    }
    *sec = s;
    *nanos = (int32_t)(rem * 1000000);
}

static size_t
timestamp_len(int64_t ms)
{
    int64_t sec;
    int32_t nanos;
    split_ms(ms, &sec, &nanos);
    /* proto3: zero scalars are not written. */
    return (sec ? 1 + varint_len((uint64_t)sec) : 0) +
           (nanos ? 1 + varint_len((uint64_t)nanos) : 0);
}

static int
time_field(dc_type_t t)
{
    return t == DC_TYPE_NAIVE_DATE       ? F_VALUE_NAIVE_DATE
           : t == DC_TYPE_NAIVE_DATETIME ? F_VALUE_NAIVE_DATETIME
                                         : F_VALUE_UTC_DATETIME;
}

static int
text_field(dc_type_t t)
{
    switch (t) {
    case DC_TYPE_DECIMAL:
        return F_VALUE_DECIMAL;
    case DC_TYPE_JSON:
        return F_VALUE_JSON;
    case DC_TYPE_XML:
        return F_VALUE_XML;
    case DC_TYPE_BINARY:
        return F_VALUE_BINARY;
    default:
        return F_VALUE_STRING;
    }
}

/* The length of the ValueType message of v (a oneof member is written even when zero). */
static size_t
value_len(const dc_value_t *v)
{
    switch (v->type) {
    case DC_TYPE_NULL:
    case DC_TYPE_BOOLEAN:
        return 2;
    case DC_TYPE_SHORT:
    case DC_TYPE_INT:
        /* int32: a negative value is sign-extended to ten bytes */
        return 1 + varint_len((uint64_t)(int64_t)(int32_t)v->v.i);
    case DC_TYPE_LONG:
        return 1 + varint_len((uint64_t)v->v.i);
    case DC_TYPE_FLOAT:
    case DC_TYPE_DOUBLE:
        return 9;
    case DC_TYPE_NAIVE_DATE:
    case DC_TYPE_NAIVE_DATETIME:
    case DC_TYPE_UTC_DATETIME:
        return len_field(timestamp_len(v->ms));
    default:
        return len_field(v->v.s.len);
    }
}

static uint8_t *
put_value(uint8_t *p, const dc_value_t *v)
{
    switch (v->type) {
    case DC_TYPE_NULL:
        *p++ = TAG(F_VALUE_NULL, WT_VARINT);
        *p++ = 1;
        return p;
    case DC_TYPE_BOOLEAN:
        *p++ = TAG(F_VALUE_BOOL, WT_VARINT);
        *p++ = v->v.b ? 1 : 0;
        return p;
    case DC_TYPE_SHORT:
    case DC_TYPE_INT:
        *p++ = TAG(F_VALUE_INT, WT_VARINT);
        return put_varint(p, (uint64_t)(int64_t)(int32_t)v->v.i);
    case DC_TYPE_LONG:
        *p++ = TAG(F_VALUE_LONG, WT_VARINT);
        return put_varint(p, (uint64_t)v->v.i);
    case DC_TYPE_FLOAT:
    case DC_TYPE_DOUBLE: {
        uint64_t bits;
        memcpy(&bits, &v->v.d, 8);
        *p++ = TAG(F_VALUE_DOUBLE, WT_I64);
        for (int i = 0; i < 8; i++)
            *p++ = (uint8_t)(bits >> (8 * i)); /* little-endian whatever the host */
        return p;
    }
    case DC_TYPE_NAIVE_DATE:
    case DC_TYPE_NAIVE_DATETIME:
    case DC_TYPE_UTC_DATETIME: {
        int64_t sec;
        int32_t nanos;
        split_ms(v->ms, &sec, &nanos);
        *p++ = TAG(time_field(v->type), WT_LEN);
        p = put_varint(p, timestamp_len(v->ms));
        if (sec) {
            *p++ = TAG(F_TS_SECONDS, WT_VARINT);
            p = put_varint(p, (uint64_t)sec);
        }
        if (nanos) {
            *p++ = TAG(F_TS_NANOS, WT_VARINT);
            p = put_varint(p, (uint64_t)nanos);
        }
        return p;
    }
    default:
        return put_len_field(p, text_field(v->type), v->v.s.ptr, v->v.s.len);
    }
}

void
dc_records_init(dc_records_t *r)
{
    memset(r, 0, sizeof *r);
    dc_buf_init(&r->body);
}

void
dc_records_cleanup(dc_records_t *r)
{
    dc_buf_cleanup(&r->body);
    free(r->lens);
    memset(r, 0, sizeof *r);
}

void
dc_records_reset(dc_records_t *r)
{
    dc_buf_reset(&r->body);
    r->n = 0;
}

void
dc_records_add_upsert(dc_records_t *r, const char *table, const dc_table_t *t, const bool *selected,
                      const size_t *key_len, const dc_value_t *values)
{
    if (r->lens_cap < t->ncols) {
        r->lens_cap = t->ncols * 2;
        r->lens = dc_xrealloc(r->lens, r->lens_cap * sizeof *r->lens);
    }
    size_t tlen = strlen(table);
    size_t rec = len_field(tlen);
    for (size_t i = 0; i < t->ncols; i++) {
        if (selected && !selected[i])
            continue;
        size_t vlen = value_len(&values[i]);
        size_t entry = len_field(key_len ? key_len[i] : strlen(t->cols[i].name)) + len_field(vlen);
        r->lens[i] = vlen;
        rec += len_field(entry);
    }
    size_t total = len_field(rec);
    dc_buf_reserve(&r->body, total);
    uint8_t *start = (uint8_t *)r->body.data + r->body.len, *p = start;
    *p++ = TAG(F_RECORDS_RECORD, WT_LEN);
    p = put_varint(p, rec);
    p = put_len_field(p, F_RECORD_TABLE, table, tlen);
    for (size_t i = 0; i < t->ncols; i++) {
        if (selected && !selected[i])
            continue;
        const char *key = t->cols[i].name;
        size_t klen = key_len ? key_len[i] : strlen(key), vlen = r->lens[i];
        *p++ = TAG(F_RECORD_DATA, WT_LEN);
        p = put_varint(p, len_field(klen) + len_field(vlen));
        p = put_len_field(p, F_ENTRY_KEY, key, klen);
        *p++ = TAG(F_ENTRY_VALUE, WT_LEN);
        p = put_varint(p, vlen);
        p = put_value(p, &values[i]);
    }
    r->body.len += (size_t)(p - start);
    r->body.data[r->body.len] = '\0';
    r->n++;
}

size_t
dc_records_header(const dc_records_t *r, uint8_t hdr[11])
{
    uint8_t *p = hdr;
    *p++ = TAG(F_RESPONSE_RECORDS, WT_LEN);
    p = put_varint(p, r->body.len);
    return (size_t)(p - hdr);
}

/* records.h: the wire bytes of an UpdateResponse holding a Records batch, written directly.
 *
 * Every upsert `serve` streams is a Record whose data is a map of ValueType messages. Building
 * protobuf-c structs for them and letting protobuf-c size and pack them took about a fifth of
 * the server's time (docs/performance.md); the layout is fixed, so the bytes are written here
 * in one pass per record instead (the field numbers are those of proto/connector_sdk.proto and
 * proto/common.proto; the encoding is protobuf's:
 * https://protobuf.dev/programming-guides/encoding/). tests/unit/test_records.c checks the bytes
 * against protobuf-c's own for every type. */
#ifndef DC_FIVETRAN_RECORDS_H
#define DC_FIVETRAN_RECORDS_H

#include "core/buf.h"
#include "sink/sink.h"

/* A batch being encoded: the concatenated Records.records entries. */
typedef struct {
    dc_buf_t body;
    size_t n;     /* records in the batch */
    size_t *lens; /* scratch: the encoded length of each value of a record */
    size_t lens_cap;
} dc_records_t;

void dc_records_init(dc_records_t *r);
void dc_records_cleanup(dc_records_t *r);
/* Empties the batch (keeps the memory). */
void dc_records_reset(dc_records_t *r);

/* Appends an UPSERT Record of table `table` whose data holds the columns of t that selected
 * marks (all when selected is NULL), keyed by column name (of length key_len[i], or strlen
 * when key_len is NULL), with values[i] for column i. */
void dc_records_add_upsert(dc_records_t *r, const char *table, const dc_table_t *t,
                           const bool *selected, const size_t *key_len, const dc_value_t *values);

/* The bytes that come before the body to make an UpdateResponse{records: Records{...}}:
 * writes them into hdr (at most 11 bytes) and returns their length. */
size_t dc_records_header(const dc_records_t *r, uint8_t hdr[11]);

#endif

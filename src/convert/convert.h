/* convert.h: BSON values to typed row values and to plain JSON text, exactly: 64-bit doubles,
 * exact decimals, dates as ISO-8601 UTC with milliseconds, ObjectIds as 24 hex digits, binary as
 * base64, keys in document order, valid UTF-8. No I/O, no destination knowledge. */
#ifndef DC_CONVERT_H
#define DC_CONVERT_H

#include <bson/bson.h>

#include "convert/types.h"
#include "core/buf.h"

/* Counters of what conversion had to alter, for warnings. */
typedef struct {
    uint64_t invalid_utf8; /* bytes replaced by U+FFFD in strings and keys */
} dc_convert_stats_t;

/* The natural Fivetran type of a top-level BSON value (docs/types.md):
 * string, symbol, code -> STRING; int32 -> INT; int64 -> LONG; double -> DOUBLE;
 * decimal128 -> DECIMAL; bool -> BOOLEAN; date -> UTC_DATETIME; ObjectId -> STRING;
 * binary -> BINARY; document, array, timestamp, regex, dbpointer, code with scope, MinKey,
 * MaxKey -> JSON; null and undefined -> NULL. */
dc_type_t dc_convert_natural_type(bson_type_t t);

/* Converts the value at `it` to a value of type `target` (which must be the natural type of
 * the value or a type it widens to by dc_type_join, or STRING for _id), appending any text to
 * `buf` (the value points into buf->data, so buf must not be reset before the row is used;
 * the pointers are stored as offsets and fixed up by dc_convert_finish_row). */
void dc_convert_value(const bson_iter_t *it, dc_type_t target, dc_buf_t *buf, dc_value_t *out,
                      dc_convert_stats_t *st);
/* The same; with no_date_text, a UTC_DATETIME carries only its instant (out->ms) and empty
 * text, for a destination that takes dates as timestamps (serve's Records). */
void dc_convert_value_ex(const bson_iter_t *it, dc_type_t target, dc_buf_t *buf, dc_value_t *out,
                         dc_convert_stats_t *st, bool no_date_text);

/* Text values hold offsets into buf until the row is complete; this turns them into pointers
 * (buf may have moved while the row grew). */
void dc_convert_finish_row(dc_value_t *values, size_t n, const dc_buf_t *buf);

/* Appends the value at `it` as plain JSON (docs/types.md): objects and arrays recursively,
 * ObjectId "hex", date "2024-05-01T10:00:00.123Z", decimal128 "1.50" (a string), int64 and
 * int32 as numbers, double as the shortest text that reads back to the same double (NaN and
 * infinities as strings "NaN", "Infinity", "-Infinity"), binary "base64", timestamp
 * {"t": .., "i": ..}, regex {"pattern": .., "options": ..}, MinKey/MaxKey {"$minKey": 1}. */
void dc_convert_json(const bson_iter_t *it, dc_buf_t *buf, dc_convert_stats_t *st);

/* The primary key text of an _id: ObjectId as hex, strings as themselves, anything else as its
 * plain JSON text (so 5 and "5" both give "5": docs/types.md). */
void dc_convert_id(const bson_iter_t *it, dc_buf_t *buf, dc_convert_stats_t *st);

/* A double as JSON: the shortest text that reads back to it, integral values with ".0", NaN and
 * infinities as the strings "NaN", "Infinity", "-Infinity". */
void dc_convert_double_json(dc_buf_t *buf, double d);
/* A double as DECIMAL text: its shortest round-trip digits in plain notation. */
void dc_convert_double_decimal(dc_buf_t *buf, double d);

/* Formats milliseconds since the epoch as "YYYY-MM-DDTHH:MM:SS.mmmZ" (years 0..9999; outside
 * that range, an extended year with sign as ISO 8601 allows). out needs 32 bytes. */
void dc_format_datetime(int64_t ms, char *out);
/* Parses "YYYY-MM-DD", "YYYY-MM-DDTHH:MM:SS[.fff...]" with "Z" or "+HH:MM"/"-HH:MM" (or none:
 * UTC) into milliseconds since the epoch; false when it is not such a date. */
bool dc_parse_datetime(const char *s, int64_t *ms);

#endif

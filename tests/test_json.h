/* test_json.h: test tables written as JSON, for the unit tests of docdb-emu's queries and
 * indexes. Include after cmocka_main.h. */
#ifndef DC_TEST_JSON_H
#define DC_TEST_JSON_H

#include <bson/bson.h>
#include <stdbool.h>
#include <string.h>

/* libbson's JSON reader takes {"$type": ...} for legacy binary syntax, so tables spell the
 * operator "$$type" and parse_json renames it. */
static inline void
copy_renaming(const bson_t *src, bson_t *dst, bool is_array)
{
    bson_iter_t it;
    bson_iter_init(&it, src);
    while (bson_iter_next(&it)) {
        const char *key = bson_iter_key(&it);
        if (strcmp(key, "$$type") == 0 && !is_array)
            key = "$type";
        if (BSON_ITER_HOLDS_DOCUMENT(&it) || BSON_ITER_HOLDS_ARRAY(&it)) {
            const uint8_t *data;
            uint32_t len;
            bson_t sub, child;
            bool arr = BSON_ITER_HOLDS_ARRAY(&it);
            if (arr)
                bson_iter_array(&it, &len, &data);
            else
                bson_iter_document(&it, &len, &data);
            assert_true(bson_init_static(&sub, data, len));
            if (arr)
                bson_append_array_begin(dst, key, -1, &child);
            else
                bson_append_document_begin(dst, key, -1, &child);
            copy_renaming(&sub, &child, arr);
            if (arr)
                bson_append_array_end(dst, &child);
            else
                bson_append_document_end(dst, &child);
        } else {
            bson_append_value(dst, key, -1, bson_iter_value(&it));
        }
    }
}

static inline bson_t *
parse_json(const char *json)
{
    bson_error_t e;
    bson_t *raw = bson_new_from_json((const uint8_t *)json, -1, &e);
    bson_t *out;
    if (!raw)
        fail_msg("bad test JSON %s: %s", json, e.message);
    out = bson_new();
    copy_renaming(raw, out, false);
    bson_destroy(raw);
    return out;
}

#endif

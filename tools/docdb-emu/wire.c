/* wire.c: parsing and framing of wire-protocol messages. Every length is checked against the
 * bytes actually present before it is used; malformed input is refused, never trusted. */
#include "wire.h"

#include <string.h>

/* OP_MSG flag bits (specs source/message/OP_MSG.md). */
#define FLAG_CHECKSUM      (1u << 0)
#define FLAG_MORE_TO_COME  (1u << 1)
#define FLAG_EXHAUST       (1u << 16)
#define REQUIRED_FLAG_MASK 0xffffu

/* Deeper documents are refused like mongod refuses them (its limit for stored documents is
 * 180 levels; commands wrap documents in a few more). */
#define MAX_DEPTH 200

static int32_t
le32(const uint8_t *p)
{
    uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    return (int32_t)v;
}

static void
put32(uint8_t *p, int32_t v)
{
    uint32_t u = (uint32_t)v;
    p[0] = (uint8_t)u;
    p[1] = (uint8_t)(u >> 8);
    p[2] = (uint8_t)(u >> 16);
    p[3] = (uint8_t)(u >> 24);
}

void
emu_wire_header(const uint8_t *buf, emu_header_t *h)
{
    h->length = le32(buf);
    h->request_id = le32(buf + 4);
    h->response_to = le32(buf + 8);
    h->opcode = le32(buf + 12);
}

static int
depth_of(bson_iter_t *it, int level, int limit)
{
    int max = level;
    while (bson_iter_next(it)) {
        if (BSON_ITER_HOLDS_DOCUMENT(it) || BSON_ITER_HOLDS_ARRAY(it)) {
            bson_iter_t child;
            if (level + 1 > limit)
                return level + 1;
            if (bson_iter_recurse(it, &child)) {
                int d = depth_of(&child, level + 1, limit);
                if (d > max)
                    max = d;
                if (max > limit)
                    return max;
            }
        }
    }
    return max;
}

int
emu_bson_depth(const bson_t *doc, int limit)
{
    bson_iter_t it;
    if (!bson_iter_init(&it, doc))
        return 0;
    return depth_of(&it, 1, limit);
}

/* Reads one BSON document at p (avail bytes) into a static view after full validation. */
static bool
read_doc(const uint8_t *p, size_t avail, bson_t *doc, size_t *used, const char **why)
{
    size_t off;
    if (avail < 5) {
        *why = "truncated BSON document";
        return false;
    }
    int32_t dlen = le32(p);
    if (dlen < 5 || (size_t)dlen > avail) {
        *why = "BSON document length out of bounds";
        return false;
    }
    if (!bson_init_static(doc, p, (size_t)dlen)) {
        *why = "invalid BSON document framing";
        return false;
    }
    /* Depth first: bson_validate recurses without a limit, so a deeply nested document would
     * overflow the stack. The depth walk itself stops at the limit. */
    if (emu_bson_depth(doc, MAX_DEPTH) > MAX_DEPTH) {
        *why = "BSON document nested too deeply";
        return false;
    }
    if (!bson_validate(doc, BSON_VALIDATE_NONE, &off)) {
        *why = "invalid BSON document";
        return false;
    }
    *used = (size_t)dlen;
    return true;
}

/* A kind-1 section: appends `identifier: [docs...]` to out. */
static bool
read_sequence(const uint8_t *p, size_t avail, bson_t *out, size_t *used, const char **why)
{
    if (avail < 4) {
        *why = "truncated document sequence";
        return false;
    }
    int32_t size = le32(p);
    if (size < 5 || (size_t)size > avail) {
        *why = "document sequence size out of bounds";
        return false;
    }
    const uint8_t *end = p + size;
    const uint8_t *q = p + 4;
    const uint8_t *nul = memchr(q, '\0', (size_t)(end - q));
    if (!nul || nul == q) {
        *why = "invalid document sequence identifier";
        return false;
    }
    const char *ident = (const char *)q;
    bson_iter_t exists;
    if (bson_iter_init_find(&exists, out, ident)) {
        *why = "duplicate document sequence identifier";
        return false;
    }
    q = nul + 1;
    bson_t arr;
    bson_append_array_begin(out, ident, (int)(nul - (const uint8_t *)ident), &arr);
    uint32_t i = 0;
    while (q < end) {
        bson_t doc;
        size_t dused;
        char keybuf[16];
        const char *key;
        if (!read_doc(q, (size_t)(end - q), &doc, &dused, why)) {
            bson_append_array_end(out, &arr);
            return false;
        }
        size_t klen = bson_uint32_to_string(i++, &key, keybuf, sizeof keybuf);
        bson_append_document(&arr, key, (int)klen, &doc);
        q += dused;
    }
    bson_append_array_end(out, &arr);
    *used = (size_t)size;
    return true;
}

static bool
parse_msg(const uint8_t *body, size_t len, emu_msg_t *msg, const char **why)
{
    if (len < 5) {
        *why = "truncated OP_MSG";
        return false;
    }
    uint32_t flags = (uint32_t)le32(body);
    if (flags & REQUIRED_FLAG_MASK & ~(FLAG_CHECKSUM | FLAG_MORE_TO_COME)) {
        *why = "unknown required OP_MSG flag bit";
        return false;
    }
    msg->more_to_come = (flags & FLAG_MORE_TO_COME) != 0;
    size_t end = len;
    if (flags & FLAG_CHECKSUM) {
        /* The CRC-32C is accepted without being verified: TCP and TLS already protect the
         * bytes on loopback, and mongod itself only checks it when present. */
        if (end < 4 + 4 + 1) {
            *why = "truncated OP_MSG checksum";
            return false;
        }
        end -= 4;
    }
    bool have_body = false;
    bson_t body_doc;
    bson_t seqs = BSON_INITIALIZER;
    size_t off = 4;
    while (off < end) {
        uint8_t kind = body[off++];
        size_t used = 0;
        if (kind == 0) {
            if (have_body) {
                *why = "OP_MSG has more than one kind-0 section";
                goto fail;
            }
            if (!read_doc(body + off, end - off, &body_doc, &used, why))
                goto fail;
            have_body = true;
        } else if (kind == 1) {
            if (!read_sequence(body + off, end - off, &seqs, &used, why))
                goto fail;
        } else {
            *why = "unknown OP_MSG section kind";
            goto fail;
        }
        off += used;
    }
    if (!have_body) {
        *why = "OP_MSG has no kind-0 section";
        goto fail;
    }
    bson_init(&msg->cmd);
    bson_concat(&msg->cmd, &body_doc);
    bson_iter_t it;
    if (bson_iter_init(&it, &seqs)) {
        while (bson_iter_next(&it)) {
            bson_iter_t dup;
            if (bson_iter_init_find(&dup, &body_doc, bson_iter_key(&it))) {
                *why = "document sequence duplicates a field of the command";
                bson_destroy(&msg->cmd);
                goto fail;
            }
        }
    }
    bson_concat(&msg->cmd, &seqs);
    bson_destroy(&seqs);
    return true;
fail:
    bson_destroy(&seqs);
    return false;
}

static bool
parse_query(const uint8_t *body, size_t len, emu_msg_t *msg, const char **why)
{
    if (len < 4 + 2 + 8 + 5) {
        *why = "truncated OP_QUERY";
        return false;
    }
    size_t off = 4; /* flags */
    const uint8_t *nul = memchr(body + off, '\0', len - off);
    if (!nul) {
        *why = "OP_QUERY namespace is not terminated";
        return false;
    }
    const char *ns = (const char *)body + off;
    size_t nslen = (size_t)(nul - (body + off));
    off += nslen + 1 + 8; /* numberToSkip, numberToReturn */
    if (off > len) {
        *why = "truncated OP_QUERY";
        return false;
    }
    bson_t query;
    size_t used;
    if (!read_doc(body + off, len - off, &query, &used, why))
        return false;
    off += used;
    if (off < len) {
        bson_t fields;
        if (!read_doc(body + off, len - off, &fields, &used, why))
            return false;
        off += used;
    }
    if (off != len) {
        *why = "trailing bytes after OP_QUERY";
        return false;
    }
    const char *dot = memchr(ns, '.', nslen);
    if (!dot || (size_t)(dot - ns) >= sizeof msg->db) {
        *why = "invalid OP_QUERY namespace";
        return false;
    }
    memcpy(msg->db, ns, (size_t)(dot - ns));
    msg->db[dot - ns] = '\0';
    msg->legacy = true;
    msg->not_a_command = strcmp(dot + 1, "$cmd") != 0;
    /* Commands sent with a read preference are wrapped: {$query: cmd, $readPreference: ...}. */
    bson_iter_t it;
    bson_init(&msg->cmd);
    if (bson_iter_init_find(&it, &query, "$query") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
        const uint8_t *data;
        uint32_t dlen;
        bson_t inner;
        bson_iter_document(&it, &dlen, &data);
        if (bson_init_static(&inner, data, dlen))
            bson_concat(&msg->cmd, &inner);
    } else {
        bson_concat(&msg->cmd, &query);
    }
    return true;
}

bool
emu_wire_parse(const emu_header_t *h, const uint8_t *body, size_t len, emu_msg_t *msg,
               const char **why)
{
    memset(msg, 0, sizeof *msg);
    if (h->opcode == EMU_OP_MSG)
        return parse_msg(body, len, msg, why);
    if (h->opcode == EMU_OP_QUERY)
        return parse_query(body, len, msg, why);
    *why = h->opcode == 2012 ? "compressed messages were not negotiated" : "unsupported opcode";
    return false;
}

size_t
emu_wire_reply_prefix(uint8_t *prefix, bool legacy, int32_t request_id, int32_t response_to,
                      uint32_t doc_len, bool query_failure)
{
    size_t n = legacy ? 36 : 21;
    put32(prefix, (int32_t)(n + doc_len));
    put32(prefix + 4, request_id);
    put32(prefix + 8, response_to);
    put32(prefix + 12, legacy ? EMU_OP_REPLY : EMU_OP_MSG);
    if (legacy) {
        put32(prefix + 16, query_failure ? 2 : 0); /* responseFlags: bit 1 QueryFailure */
        memset(prefix + 20, 0, 8);                 /* cursorID */
        put32(prefix + 28, 0);                     /* startingFrom */
        put32(prefix + 32, 1);                     /* numberReturned */
    } else {
        put32(prefix + 16, 0); /* flagBits */
        prefix[20] = 0;        /* section kind 0 */
    }
    return n;
}

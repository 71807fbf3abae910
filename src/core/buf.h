/* buf.h: a growable byte buffer and the JSON text primitives built on it (string escaping that
 * always yields valid UTF-8). No parsing here. */
#ifndef DC_BUF_H
#define DC_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    char *data; /* NUL-terminated when len > 0 or after any append */
    size_t len, cap;
} dc_buf_t;

void dc_buf_init(dc_buf_t *b);
void dc_buf_cleanup(dc_buf_t *b);
void dc_buf_reset(dc_buf_t *b); /* len = 0, keeps the memory */
/* Makes room for extra more bytes (and the NUL) after len, for a caller writing in place. */
void dc_buf_reserve(dc_buf_t *b, size_t extra);
void dc_buf_append_str(dc_buf_t *b, const char *s);

/* Inline: the converters append a few bytes at a time, millions of times per sync. */
static inline void
dc_buf_append(dc_buf_t *b, const void *data, size_t n)
{
    if (b->len + n + 1 > b->cap)
        dc_buf_reserve(b, n);
    if (n)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static inline void
dc_buf_append_char(dc_buf_t *b, char c)
{
    if (b->len + 2 > b->cap)
        dc_buf_reserve(b, 1);
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
}
void dc_buf_printf(dc_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Length of the valid UTF-8 sequence at s (n > 0 bytes available; RFC 3629: no overlongs, no
 * surrogates, at most U+10FFFF), or 0 when the bytes there are not one. */
size_t dc_utf8_seq(const unsigned char *s, size_t n);

/* Appends s (n bytes) as a quoted JSON string: escapes quotes, backslashes and control
 * characters, keeps valid UTF-8 as is and replaces each invalid byte with U+FFFD. Returns the
 * number of invalid bytes replaced. */
size_t dc_buf_append_json_string(dc_buf_t *b, const char *s, size_t n);

/* Appends base64 (RFC 4648, with padding) of n bytes. */
void dc_buf_append_base64(dc_buf_t *b, const uint8_t *data, size_t n);

/* Decodes base64 (RFC 4648, padding optional, whitespace ignored) of n chars, appending the
 * bytes to b; false on any other character. */
bool dc_base64_decode(dc_buf_t *b, const char *s, size_t n);

#endif

/* cursor.c: the cursor table, batch building and idle expiry. The table is small (one entry
 * per open cursor) and guarded by its own mutex; a cursor in use by a getMore is out of it. */
#include "cursor.h"
#include "server.h"

#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* mongod's cap on the documents of one batch (kMaxBytesToReturnToClientAtOnce); a reply keeps
 * some room under the 16 MiB document limit for its envelope. */
#define BATCH_BYTES         (EMU_MAX_BSON_SIZE - 16 * 1024)
#define DEFAULT_FIRST_BATCH 101

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static emu_cursor_t **table;
static size_t ntable, table_cap;

emu_cursor_t *
emu_cursor_new(const char *ns, emu_doc_t **docs, size_t n, emu_projection_t *proj)
{
    emu_cursor_t *c = calloc(1, sizeof *c);
    if (!c || !(c->ns = strdup(ns)))
        abort();
    c->docs = docs;
    c->n = n;
    c->proj = proj;
    return c;
}

void
emu_cursor_destroy(emu_cursor_t *c)
{
    if (!c)
        return;
    for (size_t i = c->pos; i < c->n; i++)
        emu_doc_unref(c->docs[i]);
    free(c->docs);
    free(c->ns);
    emu_projection_destroy(c->proj);
    free(c);
}

static void
table_add(emu_cursor_t *c)
{
    pthread_mutex_lock(&mu);
    if (!c->id) {
        /* Random positive ids, as mongod's, so that a stale id from an earlier run never
         * names a new cursor. */
        do {
            uint64_t r = 0;
            RAND_bytes((unsigned char *)&r, sizeof r);
            c->id = (int64_t)(r >> 2);
            for (size_t i = 0; i < ntable && c->id; i++)
                if (table[i]->id == c->id)
                    c->id = 0;
        } while (!c->id);
    }
    if (ntable == table_cap) {
        table_cap = table_cap ? table_cap * 2 : 16;
        table = realloc(table, table_cap * sizeof *table);
        if (!table)
            abort();
    }
    c->last_used_ms = emu_now_ms();
    table[ntable++] = c;
    pthread_mutex_unlock(&mu);
}

/* Removes and returns the cursor with id (mu held). */
static emu_cursor_t *
table_take(int64_t id)
{
    for (size_t i = 0; i < ntable; i++)
        if (table[i]->id == id) {
            emu_cursor_t *c = table[i];
            table[i] = table[--ntable];
            return c;
        }
    return NULL;
}

void
emu_cursor_reply(emu_cursor_t *c, bson_t *reply, bool first, int64_t batch_size, bool keep_open)
{
    bson_t cur, arr;
    size_t bytes = 0, count = 0;
    char keybuf[16];
    const char *key;

    if (first && batch_size < 0)
        batch_size = DEFAULT_FIRST_BATCH;
    bson_append_document_begin(reply, "cursor", 6, &cur);
    bson_append_array_begin(&cur, first ? "firstBatch" : "nextBatch", -1, &arr);
    while (c->pos < c->n && (batch_size <= 0 || (int64_t)count < batch_size)) {
        emu_doc_t *d = c->docs[c->pos];
        if (count > 0 && bytes + d->len > BATCH_BYTES)
            break;
        size_t klen = bson_uint32_to_string((uint32_t)count, &key, keybuf, sizeof keybuf);
        bson_t view;
        emu_doc_view(d, &view);
        if (c->proj) {
            bson_t out = BSON_INITIALIZER;
            emu_projection_apply(c->proj, &view, &out);
            bson_append_document(&arr, key, (int)klen, &out);
            bytes += out.len;
            bson_destroy(&out);
        } else {
            bson_append_document(&arr, key, (int)klen, &view);
            bytes += d->len;
        }
        emu_doc_unref(d);
        c->pos++;
        count++;
    }
    bson_append_array_end(&cur, &arr);
    bool open = keep_open && c->pos < c->n;
    if (open)
        table_add(c); /* registered, or back into the table after a getMore */
    bson_append_int64(&cur, "id", 2, open ? c->id : 0);
    bson_append_utf8(&cur, "ns", 2, c->ns, -1);
    bson_append_document_end(reply, &cur);
    if (!open)
        emu_cursor_destroy(c);
}

emu_cursor_t *
emu_cursor_checkout(int64_t id, const char *ns, emu_error_t *err)
{
    pthread_mutex_lock(&mu);
    emu_cursor_t *c = table_take(id);
    if (c && strcmp(c->ns, ns) != 0) {
        /* mongod: "Requested getMore on namespace X, but cursor belongs to a different
         * namespace Y" (code 13 Unauthorized). */
        char other[256];
        snprintf(other, sizeof other, "%s", c->ns);
        table[ntable++] = c;
        pthread_mutex_unlock(&mu);
        emu_error_set(err, EMU_UNAUTHORIZED,
                      "Requested getMore on namespace '%s', but cursor belongs to a different "
                      "namespace %s",
                      ns, other);
        return NULL;
    }
    pthread_mutex_unlock(&mu);
    if (!c)
        emu_error_set(err, EMU_CURSOR_NOT_FOUND, "cursor id %lld not found", (long long)id);
    return c;
}

bool
emu_cursor_kill(int64_t id)
{
    pthread_mutex_lock(&mu);
    emu_cursor_t *c = table_take(id);
    pthread_mutex_unlock(&mu);
    emu_cursor_destroy(c);
    return c != NULL;
}

void
emu_cursor_reap(int64_t now_ms, int64_t timeout_ms)
{
    emu_cursor_t *expired[64];
    size_t n;
    do {
        n = 0;
        pthread_mutex_lock(&mu);
        for (size_t i = 0; i < ntable && n < 64;) {
            if (now_ms - table[i]->last_used_ms > timeout_ms) {
                expired[n++] = table[i];
                table[i] = table[--ntable];
            } else {
                i++;
            }
        }
        pthread_mutex_unlock(&mu);
        for (size_t i = 0; i < n; i++)
            emu_cursor_destroy(expired[i]);
    } while (n == 64);
}

void
emu_cursor_cleanup(void)
{
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < ntable; i++)
        emu_cursor_destroy(table[i]);
    free(table);
    table = NULL;
    ntable = table_cap = 0;
    pthread_mutex_unlock(&mu);
}

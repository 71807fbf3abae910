/* source.c: libmongoc client, discovery and cursors. The client is single-threaded and owned by
 * the thread that opened it. libmongoc's own log lines are routed to our log at DEBUG level
 * (they can name hosts and are noisy), never to stdout. */
#include "source/source.h"
#include "core/mem.h"
#include "core/log.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct dc_source {
    mongoc_client_t *client;
    mongoc_database_t *db;
    char *database;
    char describe[1024];
};

/* Read-ahead: a thread drains the cursor into batches of raw documents (copied out of
 * libmongoc's reply buffer) and hands them over through a queue of at most QUEUE_DEPTH
 * batches, so that the network and the server's work overlap with conversion and writing,
 * while memory stays bounded. */
#define QUEUE_DEPTH 4
#define BATCH_DOCS  1000
#define FIRST_BATCH 1000
#define BATCH_BYTES (1024 * 1024)

typedef struct {
    uint8_t *data; /* documents back to back */
    size_t len, cap;
    size_t ndocs;
    bool last;   /* the cursor ended (or failed) after these documents */
    bool failed; /* ... with this error */
    dc_error_t err;
} batch_t;

struct dc_reader {
    mongoc_collection_t *coll;
    mongoc_cursor_t *cursor;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* Each side wakes the other only when it waits, the producer only once the queue has half
     * emptied (as in the engine's conversion queue: fewer wake-ups, steadier scheduling). */
    bool consumer_waits, producer_waits;
    batch_t *queue[QUEUE_DEPTH];
    size_t head, count;
    /* Consumed chunks, kept for the producer to fill again: a chunk's pages are touched once,
     * not faulted in and cleared for every chunk (under mu). */
    batch_t *spare[2];
    size_t nspare;
    bool stop;         /* the consumer closed the reader */
    int batch_size;    /* the server's batch size: chunks end at its batch boundaries */
    int first_batch;   /* the first batch's size (small, so that work starts early) */
    uint64_t produced; /* documents read so far */
    batch_t *current;
    size_t offset;
    bson_t doc; /* a view of the current document */
};

static void
mongoc_log_to_ours(mongoc_log_level_t level, const char *domain, const char *message, void *ud)
{
    (void)ud;
    (void)level;
    dc_log(DC_LOG_DEBUG, "libmongoc %s: %s", domain, message);
}

static void
init_once(void)
{
    mongoc_log_set_handler(mongoc_log_to_ours, NULL);
    mongoc_init();
}

/* Server error codes after which a read can be retried and resumed (MongoDB's retryable read
 * and resumable change stream codes: docdb-wire.md §1.9 and §2.8). */
static bool
retryable_code(uint32_t code)
{
    static const uint32_t codes[] = {6,   7,   43,   50,    63,    89,    91,    133,   150,  189,
                                     234, 262, 9001, 10107, 11600, 11602, 13388, 13435, 13436};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (codes[i] == code)
            return true;
    return false;
}

void
dc_source_error(const bson_error_t *e, const char *what, dc_error_t *err)
{
    const char *m = e->message;
    if (e->domain == MONGOC_ERROR_CLIENT && e->code == MONGOC_ERROR_CLIENT_AUTHENTICATE) {
        dc_error_set(err, DC_ERR_AUTH, "%s: authentication failed: %s", what, m);
    } else if (strstr(m, "TLS handshake failed") || strstr(m, "certificate")) {
        dc_error_set(err, DC_ERR_TLS, "%s: TLS failed: %s", what, m);
    } else if (strstr(m, "Authentication failed")) {
        dc_error_set(err, DC_ERR_AUTH, "%s: %s", what, m);
    } else if (e->domain == MONGOC_ERROR_SERVER || e->domain == MONGOC_ERROR_QUERY ||
               e->domain == MONGOC_ERROR_WRITE_CONCERN) {
        dc_error_set(err, DC_ERR_SOURCE, "%s: server error %u: %s", what, e->code, m);
        err->code = (int)e->code;
        err->retryable = retryable_code(e->code);
    } else if (e->domain == MONGOC_ERROR_STREAM || e->domain == MONGOC_ERROR_SERVER_SELECTION ||
               e->domain == MONGOC_ERROR_PROTOCOL) {
        dc_error_set(err, DC_ERR_SOURCE, "%s: %s", what, m);
        err->retryable = true;
    } else {
        dc_error_set(err, DC_ERR_SOURCE, "%s: %s", what, m);
    }
}

dc_source_t *
dc_source_open(const dc_config_t *cfg, dc_error_t *err)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, init_once);
    dc_source_t *s = dc_xcalloc(1, sizeof *s);
    dc_config_describe(cfg, s->describe, sizeof s->describe);
    mongoc_uri_t *uri = dc_config_uri(cfg, err);
    if (!uri) {
        free(s);
        return NULL;
    }
    const char *db = cfg->database ? cfg->database : mongoc_uri_get_database(uri);
    s->database = dc_xstrdup(db ? db : "");
    s->client = mongoc_client_new_from_uri(uri);
    mongoc_uri_destroy(uri);
    if (!s->client) {
        dc_error_set(err, DC_ERR_CONFIG, "cannot create a client for %s", s->describe);
        dc_source_close(s);
        return NULL;
    }
    mongoc_client_set_error_api(s->client, MONGOC_ERROR_API_VERSION_2);
    s->db = mongoc_client_get_database(s->client, s->database);
    bson_t *ping = BCON_NEW("ping", BCON_INT32(1));
    bson_error_t e;
    bool ok = mongoc_database_command_simple(s->db, ping, NULL, NULL, &e);
    bson_destroy(ping);
    if (!ok) {
        dc_source_error(&e, "cannot connect to the database", err);
        dc_error_prefix(err, "%s", s->describe);
        dc_source_close(s);
        return NULL;
    }
    return s;
}

void
dc_source_close(dc_source_t *s)
{
    if (!s)
        return;
    if (s->db)
        mongoc_database_destroy(s->db);
    if (s->client)
        mongoc_client_destroy(s->client);
    free(s->database);
    free(s);
}

const char *
dc_source_describe(const dc_source_t *s)
{
    return s->describe;
}

const char *
dc_source_database(const dc_source_t *s)
{
    return s->database;
}

static int
cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

bool
dc_source_list_collections(dc_source_t *s, char ***names, size_t *n, dc_error_t *err)
{
    bson_t *opts = BCON_NEW("nameOnly", BCON_BOOL(true));
    mongoc_cursor_t *cur = mongoc_database_find_collections_with_opts(s->db, opts);
    const bson_t *doc;
    size_t cap = 0;
    *names = NULL;
    *n = 0;
    while (mongoc_cursor_next(cur, &doc)) {
        bson_iter_t it;
        if (bson_iter_init_find(&it, doc, "type") && BSON_ITER_HOLDS_UTF8(&it) &&
            strcmp(bson_iter_utf8(&it, NULL), "collection") != 0)
            continue; /* views and time series are not collections we can page by _id */
        if (!bson_iter_init_find(&it, doc, "name") || !BSON_ITER_HOLDS_UTF8(&it))
            continue;
        const char *name = bson_iter_utf8(&it, NULL);
        if (strncmp(name, "system.", 7) == 0)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            *names = dc_xrealloc(*names, cap * sizeof **names);
        }
        (*names)[(*n)++] = dc_xstrdup(name);
    }
    bson_error_t e;
    bool ok = !mongoc_cursor_error(cur, &e);
    if (!ok)
        dc_source_error(&e, "cannot list collections", err);
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    if (ok && *n > 1)
        qsort(*names, *n, sizeof **names, cmp_names);
    return ok;
}

bool
dc_source_has_index_on(dc_source_t *s, const char *coll_name, const char *field, bool *has,
                       dc_error_t *err)
{
    mongoc_collection_t *coll = mongoc_database_get_collection(s->db, coll_name);
    mongoc_cursor_t *cur = mongoc_collection_find_indexes_with_opts(coll, NULL);
    const bson_t *doc;
    *has = false;
    while (mongoc_cursor_next(cur, &doc)) {
        bson_iter_t it, key;
        if (bson_iter_init_find(&it, doc, "key") && BSON_ITER_HOLDS_DOCUMENT(&it) &&
            bson_iter_recurse(&it, &key) && bson_iter_next(&key) &&
            strcmp(bson_iter_key(&key), field) == 0)
            *has = true;
    }
    bson_error_t e;
    bool ok = !mongoc_cursor_error(cur, &e);
    if (!ok)
        dc_source_error(&e, "cannot list indexes", err);
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(coll);
    return ok;
}

bool
dc_source_max_date(dc_source_t *s, const char *coll, const char *field, bool *found, int64_t *ms,
                   dc_error_t *err)
{
    bson_t filter = BSON_INITIALIZER, cond, sort = BSON_INITIALIZER;
    bson_append_document_begin(&filter, field, -1, &cond);
    BSON_APPEND_UTF8(&cond, "$type", "date");
    bson_append_document_end(&filter, &cond);
    bson_append_int32(&sort, field, -1, -1);
    dc_reader_t *r = dc_reader_open(s, coll, &filter, &sort, 1, 1);
    const bson_t *doc = dc_reader_next(r, err);
    bool ok = doc || err->domain == DC_ERR_NONE;
    *found = false;
    if (doc) {
        bson_iter_t it;
        if (bson_iter_init_find(&it, doc, field) && BSON_ITER_HOLDS_DATE_TIME(&it)) {
            *found = true;
            *ms = bson_iter_date_time(&it);
        }
    }
    dc_reader_close(r);
    bson_destroy(&filter);
    bson_destroy(&sort);
    return ok;
}

bool
dc_source_count(dc_source_t *s, const char *coll_name, const bson_t *filter, int64_t *n,
                dc_error_t *err)
{
    /* The count command, not countDocuments: it needs no $group, which some servers lack. */
    bson_t cmd = BSON_INITIALIZER, reply;
    bson_error_t e;
    BSON_APPEND_UTF8(&cmd, "count", coll_name);
    BSON_APPEND_DOCUMENT(&cmd, "query", filter);
    bool ok = mongoc_database_command_simple(s->db, &cmd, NULL, &reply, &e);
    if (ok) {
        bson_iter_t it;
        *n = bson_iter_init_find(&it, &reply, "n") ? bson_iter_as_int64(&it) : 0;
    } else {
        dc_source_error(&e, "cannot count documents", err);
    }
    bson_destroy(&reply);
    bson_destroy(&cmd);
    return ok;
}

static void
batch_free(batch_t *b)
{
    if (b) {
        free(b->data);
        free(b);
    }
}

/* A chunk to fill: a consumed one when there is one. */
static batch_t *
batch_take(dc_reader_t *r)
{
    batch_t *b = NULL;
    pthread_mutex_lock(&r->mu);
    if (r->nspare > 0)
        b = r->spare[--r->nspare];
    pthread_mutex_unlock(&r->mu);
    if (b) {
        uint8_t *data = b->data;
        size_t cap = b->cap;
        memset(b, 0, sizeof *b);
        b->data = data;
        b->cap = cap;
        return b;
    }
    b = dc_xcalloc(1, sizeof *b);
    return b;
}

/* Blocks until the queue has room (or the consumer stopped); false when stopped. */
static bool
enqueue(dc_reader_t *r, batch_t *b)
{
    pthread_mutex_lock(&r->mu);
    while (r->count == QUEUE_DEPTH && !r->stop) {
        r->producer_waits = true;
        pthread_cond_wait(&r->cv, &r->mu);
    }
    bool ok = !r->stop;
    if (ok) {
        r->queue[(r->head + r->count) % QUEUE_DEPTH] = b;
        r->count++;
        if (r->consumer_waits) {
            r->consumer_waits = false;
            pthread_cond_broadcast(&r->cv);
        }
    }
    pthread_mutex_unlock(&r->mu);
    if (!ok)
        batch_free(b);
    return ok;
}

static void *
produce(void *arg)
{
    dc_reader_t *r = arg;
    batch_t *b = NULL;
    const bson_t *doc;
    for (;;) {
        if (!b)
            b = batch_take(r);
        bool more = mongoc_cursor_next(r->cursor, &doc);
        if (more) {
            if (b->len + doc->len > b->cap) {
                /* Full size at once: growing by doubling copied each chunk several times. */
                b->cap = b->cap ? b->cap * 2 : BATCH_BYTES + 64 * 1024;
                while (b->cap < b->len + doc->len)
                    b->cap *= 2;
                b->data = dc_xrealloc(b->data, b->cap);
            }
            memcpy(b->data + b->len, bson_get_data(doc), doc->len);
            b->len += doc->len;
            b->ndocs++;
            r->produced++;
            /* Hand over at the end of each server batch too: the next document may be a
             * network round trip away, and the consumer should not wait for it. */
            bool boundary = false;
            if (r->batch_size > 0 && r->produced == (uint64_t)r->first_batch) {
                boundary = true;
                /* The first batch is in: the getMores fetch full batches. */
                if (r->first_batch != r->batch_size)
                    mongoc_cursor_set_batch_size(r->cursor, (uint32_t)r->batch_size);
            } else if (r->batch_size > 0 && r->produced > (uint64_t)r->first_batch) {
                boundary = (r->produced - (uint64_t)r->first_batch) % (uint64_t)r->batch_size == 0;
            }
            if (b->ndocs < BATCH_DOCS && b->len < BATCH_BYTES && !boundary)
                continue;
        } else {
            bson_error_t e;
            b->last = true;
            if (mongoc_cursor_error(r->cursor, &e)) {
                b->failed = true;
                dc_source_error(&e, "reading failed", &b->err);
            }
        }
        bool last = b->last;
        if (!enqueue(r, b) || last)
            break;
        b = NULL;
    }
    return NULL;
}

dc_reader_t *
dc_reader_open(dc_source_t *s, const char *coll, const bson_t *filter, const bson_t *sort,
               int batch_size, int64_t limit)
{
    /* bson_t (inside) wants 128-byte alignment, more than malloc promises. */
    size_t size = (sizeof(dc_reader_t) + 127) / 128 * 128;
    dc_reader_t *r = aligned_alloc(128, size);
    if (!r)
        dc_out_of_memory();
    memset(r, 0, size);
    bson_t opts = BSON_INITIALIZER;
    if (sort && !bson_empty(sort))
        BSON_APPEND_DOCUMENT(&opts, "sort", sort);
    /* The first batch is small: the server answers it sooner, and conversion and writing
     * start while the next, full-size batch is on its way. */
    int first = batch_size > FIRST_BATCH ? FIRST_BATCH : batch_size;
    if (batch_size > 0)
        BSON_APPEND_INT32(&opts, "batchSize", first);
    if (limit > 0)
        BSON_APPEND_INT64(&opts, "limit", limit);
    r->coll = mongoc_database_get_collection(s->db, coll);
    r->cursor = mongoc_collection_find_with_opts(r->coll, filter, &opts, NULL);
    r->batch_size = batch_size;
    r->first_batch = first;
    bson_destroy(&opts);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    /* The client is not thread-safe: while the reader lives, only its thread uses it. */
    if (pthread_create(&r->thread, NULL, produce, r) != 0)
        abort();
    return r;
}

const bson_t *
dc_reader_next(dc_reader_t *r, dc_error_t *err)
{
    err->domain = DC_ERR_NONE;
    for (;;) {
        batch_t *b = r->current;
        if (b && r->offset < b->len) {
            uint32_t len;
            memcpy(&len, b->data + r->offset, 4);
            len = BSON_UINT32_FROM_LE(len);
            bson_init_static(&r->doc, b->data + r->offset, len);
            r->offset += len;
            return &r->doc;
        }
        if (b && b->last) {
            if (b->failed)
                *err = b->err;
            return NULL;
        }
        r->current = NULL;
        r->offset = 0;
        pthread_mutex_lock(&r->mu);
        if (b && r->nspare < sizeof r->spare / sizeof r->spare[0])
            r->spare[r->nspare++] = b;
        else
            batch_free(b);
        while (r->count == 0) {
            r->consumer_waits = true;
            pthread_cond_wait(&r->cv, &r->mu);
        }
        r->current = r->queue[r->head];
        r->head = (r->head + 1) % QUEUE_DEPTH;
        r->count--;
        if (r->producer_waits && r->count <= QUEUE_DEPTH / 2) {
            r->producer_waits = false;
            pthread_cond_broadcast(&r->cv);
        }
        pthread_mutex_unlock(&r->mu);
    }
}

bool
dc_reader_ready(dc_reader_t *r)
{
    if (r->current && (r->offset < r->current->len || r->current->last))
        return true;
    pthread_mutex_lock(&r->mu);
    bool ready = r->count > 0;
    pthread_mutex_unlock(&r->mu);
    return ready;
}

void
dc_reader_close(dc_reader_t *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    while (r->count > 0) {
        batch_free(r->queue[r->head]);
        r->head = (r->head + 1) % QUEUE_DEPTH;
        r->count--;
    }
    batch_free(r->current);
    while (r->nspare > 0)
        batch_free(r->spare[--r->nspare]);
    mongoc_cursor_destroy(r->cursor);
    mongoc_collection_destroy(r->coll);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* sync.c: the sync engine. Reads with libmongoc through source.h, converts with convert.h,
 * writes through sink.h and checkpoints; it never formats output for people (the command
 * layer does) and never holds more than one batch of documents. */
#include "engine/sync.h"
#include "core/mem.h"
#include "convert/convert.h"
#include "core/log.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_RETRIES 8

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- schema ---- */

/* The seed connector's declared columns (fivetran-sdk.md §4.9). */
static const struct {
    const char *table, *field;
    dc_type_t type;
} declared[] = {
    {"users", "created_at", DC_TYPE_UTC_DATETIME},
    {"users", "updated_at", DC_TYPE_UTC_DATETIME},
    {"users", "metadata", DC_TYPE_JSON},
    {"orders", "created_at", DC_TYPE_UTC_DATETIME},
    {"orders", "updated_at", DC_TYPE_UTC_DATETIME},
    {"orders", "items", DC_TYPE_JSON},
};

/* A column name not yet used in t: the name itself, else name_2, name_3, ... */
static char *
unique_column_name(const dc_table_t *t, char *name)
{
    if (dc_table_find_name(t, name) < 0)
        return name;
    size_t len = strlen(name) + 24;
    char *alt = dc_xmalloc(len);
    for (int i = 2;; i++) {
        snprintf(alt, len, "%s_%d", name, i);
        if (dc_table_find_name(t, alt) < 0)
            break;
    }
    free(name);
    return alt;
}

static size_t
add_column(dc_table_t *t, const char *field, dc_type_t type, dc_naming_t naming)
{
    char *name = unique_column_name(t, dc_name(field, false, naming));
    size_t i = dc_table_add_column(t, field, name, type);
    free(name);
    return i;
}

void
dc_sync_initial_table(dc_table_t *t, const char *source, const char *name)
{
    dc_table_init(t, source, name);
    dc_table_add_column(t, "_id", "_id", DC_TYPE_STRING);
    for (size_t i = 0; i < sizeof declared / sizeof declared[0]; i++)
        if (strcmp(declared[i].table, source) == 0)
            add_column(t, declared[i].field, declared[i].type, DC_NAMING_SOURCE);
}

/* The column of top-level field key, adding it or widening its type as the value requires
 * (*changed set when the table changed). hint: the column this field had in the previous
 * document (documents of a collection mostly share a field order), or -1. Returns -1 for a
 * null in a field that never had a value (no column yet). */
static long
observe_field(dc_table_t *t, const char *key, bson_type_t type, dc_naming_t naming, long hint,
              bool *changed)
{
    long col = hint >= 0 && (size_t)hint < t->ncols && strcmp(t->cols[hint].field, key) == 0
                   ? hint
                   : dc_table_find_field(t, key);
    dc_type_t nat = dc_convert_natural_type(type);
    if (col < 0) {
        if (nat == DC_TYPE_NULL)
            return -1; /* a column is created by its first non-null value */
        *changed = true;
        return (long)add_column(t, key, nat, naming);
    }
    dc_type_t joined = dc_type_join(t->cols[col].type, nat);
    if (joined != t->cols[col].type) {
        t->cols[col].type = joined;
        *changed = true;
    }
    return col;
}

bool
dc_sync_observe(dc_table_t *t, const bson_t *doc, dc_naming_t naming)
{
    bson_iter_t it;
    bool changed = false;
    if (!bson_iter_init(&it, doc))
        return false;
    while (bson_iter_next(&it))
        if (strcmp(bson_iter_key(&it), "_id") != 0)
            observe_field(t, bson_iter_key(&it), bson_iter_type(&it), naming, -1, &changed);
    return changed;
}

bool
dc_sync_infer_table(dc_source_t *src, const char *source, const char *name, dc_naming_t naming,
                    dc_table_t *t, dc_error_t *err)
{
    bson_t filter = BSON_INITIALIZER, sort = BSON_INITIALIZER;
    BSON_APPEND_INT32(&sort, "_id", 1);
    dc_sync_initial_table(t, source, name);
    dc_reader_t *r =
        dc_reader_open(src, source, &filter, &sort, DC_SCHEMA_SAMPLE, DC_SCHEMA_SAMPLE);
    const bson_t *doc;
    while ((doc = dc_reader_next(r, err)) != NULL)
        dc_sync_observe(t, doc, naming);
    dc_reader_close(r);
    bson_destroy(&filter);
    bson_destroy(&sort);
    if (err->domain == DC_ERR_NONE)
        return true;
    dc_table_cleanup(t);
    return false;
}

/* ---- filters ---- */

/* BSON types by MongoDB's canonical sort rank, as $type aliases (docdb-wire.md §3). */
static const struct {
    int rank;
    bson_type_t type;
    const char *alias;
} type_ranks[] = {
    {5, BSON_TYPE_NULL, "null"},
    {10, BSON_TYPE_DOUBLE, "double"},
    {10, BSON_TYPE_INT32, "int"},
    {10, BSON_TYPE_INT64, "long"},
    {10, BSON_TYPE_DECIMAL128, "decimal"},
    {15, BSON_TYPE_UTF8, "string"},
    {15, BSON_TYPE_SYMBOL, "symbol"},
    {20, BSON_TYPE_DOCUMENT, "object"},
    {30, BSON_TYPE_BINARY, "binData"},
    {35, BSON_TYPE_OID, "objectId"},
    {40, BSON_TYPE_BOOL, "bool"},
    {45, BSON_TYPE_DATE_TIME, "date"},
    {47, BSON_TYPE_TIMESTAMP, "timestamp"},
    {55, BSON_TYPE_DBPOINTER, "dbPointer"},
    {60, BSON_TYPE_CODE, "javascript"},
    {65, BSON_TYPE_CODEWSCOPE, "javascriptWithScope"},
    {127, BSON_TYPE_MAXKEY, "maxKey"},
};

static int
rank_of(bson_type_t t)
{
    for (size_t i = 0; i < sizeof type_ranks / sizeof type_ranks[0]; i++)
        if (type_ranks[i].type == t)
            return type_ranks[i].rank;
    return t == BSON_TYPE_MINKEY ? -1 : 0;
}

/* Appends to the array `or` the clauses of "path sorts after v": {path: {$gt: v}} (which
 * compares within v's type only: type bracketing) and one {path: {$type: T}} per type that
 * sorts above v's, so that ids of mixed types are never skipped on resume. */
static void
append_after(bson_t * or, uint32_t *k, const char *path, const bson_value_t *v)
{
    char key[16];
    bson_t clause, cond;
    snprintf(key, sizeof key, "%u", (*k)++);
    bson_append_document_begin(or, key, -1, &clause);
    bson_append_document_begin(&clause, path, -1, &cond);
    BSON_APPEND_VALUE(&cond, "$gt", v);
    bson_append_document_end(&clause, &cond);
    bson_append_document_end(or, &clause);
    int r = rank_of(v->value_type);
    for (size_t i = 0; i < sizeof type_ranks / sizeof type_ranks[0]; i++) {
        if (type_ranks[i].rank <= r)
            continue;
        snprintf(key, sizeof key, "%u", (*k)++);
        bson_append_document_begin(or, key, -1, &clause);
        bson_append_document_begin(&clause, path, -1, &cond);
        BSON_APPEND_UTF8(&cond, "$type", type_ranks[i].alias);
        bson_append_document_end(&clause, &cond);
        bson_append_document_end(or, &clause);
    }
}

/* Whether a sorts after b in MongoDB's order, as far as this can tell without a server:
 * different types by their canonical rank; ObjectIds, strings (binary order, the default
 * collation) and 32/64-bit integers by value. Other pairs answer false (the caller then
 * keeps what it has, which is always safe). */
static bool
id_after(const bson_value_t *a, const bson_value_t *b)
{
    int ra = rank_of(a->value_type), rb = rank_of(b->value_type);
    if (ra != rb)
        return ra > rb;
    bool ai = a->value_type == BSON_TYPE_INT32 || a->value_type == BSON_TYPE_INT64;
    bool bi = b->value_type == BSON_TYPE_INT32 || b->value_type == BSON_TYPE_INT64;
    if (ai && bi) {
        int64_t x = a->value_type == BSON_TYPE_INT32 ? a->value.v_int32 : a->value.v_int64;
        int64_t y = b->value_type == BSON_TYPE_INT32 ? b->value.v_int32 : b->value.v_int64;
        return x > y;
    }
    if (a->value_type != b->value_type)
        return false;
    if (a->value_type == BSON_TYPE_OID)
        return memcmp(a->value.v_oid.bytes, b->value.v_oid.bytes, 12) > 0;
    if (a->value_type == BSON_TYPE_UTF8) {
        uint32_t la = a->value.v_utf8.len, lb = b->value.v_utf8.len;
        int c = memcmp(a->value.v_utf8.str, b->value.v_utf8.str, la < lb ? la : lb);
        return c > 0 || (c == 0 && la > lb);
    }
    return false;
}

/* Undated documents after max_id: {$and: [{$or: after(max_id)}, {c: {$not: {$type:
 * "date"}}}]}, or every undated document without max_id. */
static void
undated_filter(const dc_table_state_t *ts, const char *field, bson_t *filter)
{
    bson_t and, part, or, cond, not ;
    uint32_t k = 0;
    bson_init(filter);
    BSON_APPEND_ARRAY_BEGIN(filter, "$and", &and);
    BSON_APPEND_DOCUMENT_BEGIN(&and, "0", &part);
    bson_append_document_begin(&part, field, -1, &cond);
    BSON_APPEND_DOCUMENT_BEGIN(&cond, "$not", &not );
    BSON_APPEND_UTF8(&not, "$type", "date");
    bson_append_document_end(&cond, &not );
    bson_append_document_end(&part, &cond);
    bson_append_document_end(&and, &part);
    if (ts->has_max_id) {
        BSON_APPEND_DOCUMENT_BEGIN(&and, "1", &part);
        BSON_APPEND_ARRAY_BEGIN(&part, "$or", & or);
        append_after(& or, &k, "_id", &ts->max_id);
        bson_append_array_end(&part, & or);
        bson_append_document_end(&and, &part);
    }
    bson_append_array_end(filter, &and);
}

/* The full read: every document after last_id in _id order (and, with start_date, only those
 * whose cursor field is a date from start_date on, or is not a date at all). */
static void
snapshot_filter(const dc_table_state_t *ts, const dc_config_t *cfg, bson_t *filter)
{
    bson_t and, part, or ;
    uint32_t k = 0, n = 0;
    bson_init(filter);
    BSON_APPEND_ARRAY_BEGIN(filter, "$and", &and);
    if (ts->has_last_id) {
        bson_append_document_begin(&and, "0", 1, &part);
        BSON_APPEND_ARRAY_BEGIN(&part, "$or", & or);
        append_after(& or, &k, "_id", &ts->last_id);
        bson_append_array_end(&part, & or);
        bson_append_document_end(&and, &part);
        n++;
    }
    if (cfg->start_date_set) {
        bson_t c1, c2, cond, not ;
        bson_append_document_begin(&and, n ? "1" : "0", 1, &part);
        BSON_APPEND_ARRAY_BEGIN(&part, "$or", & or);
        BSON_APPEND_DOCUMENT_BEGIN(& or, "0", &c1);
        bson_append_document_begin(&c1, cfg->cursor_field, -1, &cond);
        BSON_APPEND_DATE_TIME(&cond, "$gte", cfg->start_date_ms);
        bson_append_document_end(&c1, &cond);
        bson_append_document_end(& or, &c1);
        BSON_APPEND_DOCUMENT_BEGIN(& or, "1", &c2);
        bson_append_document_begin(&c2, cfg->cursor_field, -1, &cond);
        BSON_APPEND_DOCUMENT_BEGIN(&cond, "$not", &not );
        BSON_APPEND_UTF8(&not, "$type", "date");
        bson_append_document_end(&cond, &not );
        bson_append_document_end(&c2, &cond);
        bson_append_document_end(& or, &c2);
        bson_append_array_end(&part, & or);
        bson_append_document_end(&and, &part);
        n++;
    }
    bson_append_array_end(filter, &and);
    if (n == 0)
        bson_reinit(filter);
}

/* Changes: (cursor, _id) after the checkpointed pair, tie-safe:
 * {$or: [{c: {$gt: v}}, {c: v, _id after id}]}; without an id (the seed's state, a lookback):
 * {c: {$gte: v}}. Type bracketing keeps non-dates out. */
static void
incremental_filter(const dc_table_state_t *ts, int64_t v, bool use_id, const char *field,
                   bson_t *filter)
{
    bson_t cond, or, clause, and, eq, idpart, idor;
    bson_init(filter);
    if (!use_id) {
        bson_append_document_begin(filter, field, -1, &cond);
        BSON_APPEND_DATE_TIME(&cond, "$gte", v);
        bson_append_document_end(filter, &cond);
        return;
    }
    BSON_APPEND_ARRAY_BEGIN(filter, "$or", & or);
    BSON_APPEND_DOCUMENT_BEGIN(& or, "0", &clause);
    bson_append_document_begin(&clause, field, -1, &cond);
    BSON_APPEND_DATE_TIME(&cond, "$gt", v);
    bson_append_document_end(&clause, &cond);
    bson_append_document_end(& or, &clause);
    BSON_APPEND_DOCUMENT_BEGIN(& or, "1", &clause);
    BSON_APPEND_ARRAY_BEGIN(&clause, "$and", &and);
    BSON_APPEND_DOCUMENT_BEGIN(&and, "0", &eq);
    bson_append_date_time(&eq, field, -1, v);
    bson_append_document_end(&and, &eq);
    BSON_APPEND_DOCUMENT_BEGIN(&and, "1", &idpart);
    BSON_APPEND_ARRAY_BEGIN(&idpart, "$or", &idor);
    uint32_t k = 0;
    append_after(&idor, &k, "_id", &ts->cursor_id);
    bson_append_array_end(&idpart, &idor);
    bson_append_document_end(&and, &idpart);
    bson_append_array_end(&clause, &and);
    bson_append_document_end(& or, &clause);
    bson_append_array_end(filter, & or);
}

/* Logs a warning and tells the front door (a Warning message for `serve`). */
static void warn(const dc_sync_opts_t *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void
warn(const dc_sync_opts_t *o, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    dc_log(DC_LOG_WARNING, "%s", msg);
    if (o->warn)
        o->warn(o->warn_ctx, msg);
}

/* ---- one table ---- */

typedef struct {
    const dc_sync_opts_t *o;
    dc_state_t *st;
    dc_table_state_t *ts;
    dc_table_t *t;
    dc_table_stats_t *stats;
    dc_sync_stats_t *total;
    dc_convert_stats_t cstats;
    uint64_t since_checkpoint;
    double started, last_progress;
    /* The highest _id the changes read saw (new documents usually arrive there): max_id moves
     * up to it once the undated read after it is done. */
    bool has_max_seen;
    bson_value_t max_seen;
} run_t;

typedef enum { READ_SNAPSHOT, READ_CHANGES, READ_UNDATED } read_mode_t;

static bool
checkpoint(run_t *r, dc_error_t *err)
{
    r->st->checkpoint++;
    char *json = dc_state_to_json(r->st);
    bool ok = dc_sink_commit(r->o->sink, json, err) &&
              (!r->o->save_state || r->o->save_state(r->o->save_ctx, r->st, json, err));
    bson_free(json);
    if (!ok)
        return false;
    r->total->checkpoints++;
    r->since_checkpoint = 0;
    return true;
}

static void
progress(run_t *r, bool final)
{
    if (!r->o->progress)
        return;
    double now = now_s();
    if (!final && now - r->last_progress < 0.5)
        return;
    r->last_progress = now;
    double dt = now - r->started;
    fprintf(stderr, "\r  %s: %llu records (%.0f/s)%s", r->t->name,
            (unsigned long long)r->stats->records, dt > 0 ? (double)r->stats->records / dt : 0.0,
            final ? "\n" : "   ");
}

/* Waits before retry number `attempt` (1-based): 0.25 s doubling, at most 30 s. */
static void
backoff(int attempt)
{
    double s = 0.25 * pow(2.0, attempt - 1);
    if (s > 30)
        s = 30;
    usleep((useconds_t)(s * 1e6));
}

/* ---- conversion on its own thread ----
 *
 * A converter thread takes documents from the read-ahead reader, infers the table's columns
 * (on its own copy of the table) and converts each document into a row; the main thread only
 * writes rows and checkpoints. They meet in a bounded queue of batches, in document order:
 * a schema event (a copy of the converter's table after a change) comes before the first row
 * that needs it, and each row carries its position (_id, cursor value) so that the state only
 * moves past rows that were written. */

#define PIPE_DEPTH 4
#define PIPE_ROWS  500
#define PIPE_BYTES (1024 * 1024)

typedef struct {
    bool schema;          /* a schema event rather than a row */
    dc_table_t *table;    /* schema: the converter's table after the change (owned) */
    size_t vstart, ncols; /* row: its values in the batch's value array */
    size_t id_off;        /* row: a BSON document {"": _id} at this offset of the buffer */
    bson_value_t id;      /* row: that _id, once the batch is sealed */
    bool has_cursor;
    int64_t cursor_ms;
} entry_t;

typedef struct {
    entry_t *e;
    size_t n, cap;
    dc_value_t *v;
    size_t nv, capv;
    dc_buf_t buf;
    bool end;       /* the last batch of the read */
    dc_error_t err; /* end: why, when the read failed */
} cbatch_t;

typedef struct {
    /* set up by the main thread */
    dc_reader_t *reader;
    dc_table_t table; /* the converter's copy */
    dc_naming_t naming;
    const char *cursor_field;
    long cursor_col;   /* the column of cursor_field in table, or -1 */
    bool no_date_text; /* dc_sync_opts_t's */
    /* the converter's own */
    long *cols;
    size_t cols_cap;
    dc_convert_stats_t cstats;
    /* the queue */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* Who waits: each side wakes the other only when it waits, and the converter, once the
     * queue was full, only when it has half emptied. Fewer wake-ups keep the two threads from
     * being scheduled onto one core by turns while the other idles. */
    bool writer_waits, converter_waits;
    cbatch_t *queue[PIPE_DEPTH];
    size_t head, count;
    /* A consumed batch kept for the converter to fill again, with its grown buffers. */
    cbatch_t *spare;
    bool stop;
    /* the consumer's position */
    cbatch_t *current;
    size_t next;
} pipe_t;

static void
table_copy(dc_table_t *dst, const dc_table_t *src)
{
    dc_table_init(dst, src->source, src->name);
    for (size_t i = 0; i < src->ncols; i++)
        dc_table_add_column(dst, src->cols[i].field, src->cols[i].name, src->cols[i].type);
}

static void
cbatch_free(cbatch_t *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++)
        if (b->e[i].schema) {
            dc_table_cleanup(b->e[i].table);
            free(b->e[i].table);
        }
    free(b->e);
    free(b->v);
    dc_buf_cleanup(&b->buf);
    free(b);
}

static entry_t *
cbatch_entry(cbatch_t *b)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 256;
        b->e = dc_xrealloc(b->e, b->cap * sizeof *b->e);
    }
    entry_t *e = &b->e[b->n++];
    memset(e, 0, sizeof *e);
    return e;
}

/* An empty batch to fill: the consumed one when there is one. */
static cbatch_t *
cbatch_take(pipe_t *p)
{
    pthread_mutex_lock(&p->mu);
    cbatch_t *b = p->spare;
    p->spare = NULL;
    pthread_mutex_unlock(&p->mu);
    if (!b) {
        b = dc_xcalloc(1, sizeof *b);
        return b;
    }
    for (size_t i = 0; i < b->n; i++)
        if (b->e[i].schema) {
            dc_table_cleanup(b->e[i].table);
            free(b->e[i].table);
        }
    b->n = b->nv = 0;
    dc_buf_reset(&b->buf);
    b->end = false;
    memset(&b->err, 0, sizeof b->err);
    return b;
}

/* Turns the rows' buffer offsets into pointers, now that the buffer will not move, on the
 * converter's thread rather than the writer's. */
static void
cbatch_seal(cbatch_t *b)
{
    for (size_t i = 0; i < b->n; i++) {
        entry_t *e = &b->e[i];
        if (e->schema)
            continue;
        dc_convert_finish_row(b->v + e->vstart, e->ncols, &b->buf);
        bson_t idoc;
        bson_iter_t it;
        uint32_t len;
        memcpy(&len, b->buf.data + e->id_off, 4);
        if (bson_init_static(&idoc, (const uint8_t *)b->buf.data + e->id_off,
                             BSON_UINT32_FROM_LE(len)) &&
            bson_iter_init(&it, &idoc) && bson_iter_next(&it))
            e->id = *bson_iter_value(&it);
    }
}

static bool
pipe_push(pipe_t *p, cbatch_t *b)
{
    cbatch_seal(b);
    pthread_mutex_lock(&p->mu);
    while (p->count == PIPE_DEPTH && !p->stop) {
        p->converter_waits = true;
        pthread_cond_wait(&p->cv, &p->mu);
    }
    bool ok = !p->stop;
    if (ok) {
        p->queue[(p->head + p->count) % PIPE_DEPTH] = b;
        p->count++;
        if (p->writer_waits) {
            p->writer_waits = false;
            pthread_cond_broadcast(&p->cv);
        }
    }
    pthread_mutex_unlock(&p->mu);
    if (!ok)
        cbatch_free(b);
    return ok;
}

/* The column of the field at it, the pos-th of its document: 0 for _id (sets *has_id),
 * else as observe_field gives it, with the column the pos-th field had last time as the
 * hint. Remembered in p->cols[pos]. */
static long
observe_key(pipe_t *p, const bson_iter_t *it, size_t pos, bool *changed, bool *has_id)
{
    if (pos == p->cols_cap) {
        size_t old = p->cols_cap;
        p->cols_cap = p->cols_cap ? p->cols_cap * 2 : 64;
        p->cols = dc_xrealloc(p->cols, p->cols_cap * sizeof *p->cols);
        for (size_t i = old; i < p->cols_cap; i++)
            p->cols[i] = -1;
    }
    const char *key = bson_iter_key(it);
    long col;
    if (key[0] == '_' && strcmp(key, "_id") == 0) {
        col = 0;
        *has_id = true;
    } else {
        col = observe_field(&p->table, key, bson_iter_type(it), p->naming, p->cols[pos], changed);
    }
    p->cols[pos] = col;
    return col;
}

/* Converts the field at it into column col of the row e (values), in b's buffer. */
static void
convert_field(pipe_t *p, cbatch_t *b, entry_t *e, dc_value_t *values, long col,
              const bson_iter_t *it)
{
    if (col == 0) {
        size_t start = b->buf.len;
        dc_convert_id(it, &b->buf, &p->cstats);
        values[0].type = DC_TYPE_STRING;
        values[0].v.s.ptr = (const char *)(uintptr_t)start;
        values[0].v.s.len = b->buf.len - start;
        /* The raw _id for the state, as a small document. */
        bson_t idoc = BSON_INITIALIZER;
        bson_append_iter(&idoc, "", 0, it);
        e->id_off = b->buf.len;
        dc_buf_append(&b->buf, bson_get_data(&idoc), idoc.len);
        bson_destroy(&idoc);
        return;
    }
    if (col == p->cursor_col && BSON_ITER_HOLDS_DATE_TIME(it)) {
        e->has_cursor = true;
        e->cursor_ms = bson_iter_date_time(it);
    }
    dc_convert_value_ex(it, p->table.cols[col].type, &b->buf, &values[col], &p->cstats,
                        p->no_date_text);
}

/* A new row entry of ncols values in b. */
static entry_t *
row_entry(cbatch_t *b, size_t ncols, dc_value_t **values)
{
    if (b->nv + ncols > b->capv) {
        b->capv = (b->nv + ncols) * 2;
        b->v = dc_xrealloc(b->v, b->capv * sizeof *b->v);
    }
    entry_t *e = cbatch_entry(b);
    e->vstart = b->nv;
    e->ncols = ncols;
    *values = b->v + b->nv;
    b->nv += ncols;
    memset(*values, 0, ncols * sizeof **values);
    return e;
}

/* Converts one document into a row of b, in two passes: the first observes every field (and
 * changes the table), then a schema event goes before the row when the table changed
 * (changed_before: it changed already, in convert_doc's pass). False when the document has
 * no _id. */
static bool
convert_doc_two_passes(pipe_t *p, cbatch_t *b, const bson_t *doc, bool changed_before)
{
    bson_iter_t it;
    bool changed = changed_before, has_id = false;
    size_t pos = 0;
    bson_iter_init(&it, doc);
    while (bson_iter_next(&it)) {
        observe_key(p, &it, pos++, &changed, &has_id);
    }
    if (!has_id)
        return false;
    if (changed && p->cursor_field)
        p->cursor_col = dc_table_find_field(&p->table, p->cursor_field);
    if (changed) {
        entry_t *e = cbatch_entry(b);
        e->schema = true;
        e->table = dc_xmalloc(sizeof *e->table);
        table_copy(e->table, &p->table);
    }
    dc_value_t *values;
    entry_t *e = row_entry(b, p->table.ncols, &values);
    pos = 0;
    bson_iter_init(&it, doc);
    while (bson_iter_next(&it)) {
        long col = p->cols[pos++];
        if (col >= 0) /* else a null in a field that never had a value */
            convert_field(p, b, e, values, col, &it);
    }
    return true;
}

/* Converts one document into a row of b, in one pass when the document fits the table as it
 * is (almost always): each field is observed and converted at once, which spares libbson's
 * iterator a second walk. A field that changes the table undoes the row and sends the
 * document through the two passes, which put the schema event before it. False when the
 * document has no _id. */
static bool
convert_doc(pipe_t *p, cbatch_t *b, const bson_t *doc)
{
    size_t n0 = b->n, nv0 = b->nv, len0 = b->buf.len;
    dc_value_t *values;
    entry_t *e = row_entry(b, p->table.ncols, &values);
    bson_iter_t it;
    bool changed = false, has_id = false;
    size_t pos = 0;
    bson_iter_init(&it, doc);
    while (bson_iter_next(&it)) {
        long col = observe_key(p, &it, pos++, &changed, &has_id);
        if (changed)
            break;
        if (col >= 0)
            convert_field(p, b, e, values, col, &it);
    }
    if (!changed && has_id)
        return true;
    /* Undo the row (entries are plain values: nothing to free). */
    b->n = n0;
    b->nv = nv0;
    b->buf.len = len0;
    if (b->buf.data)
        b->buf.data[len0] = '\0';
    return changed && convert_doc_two_passes(p, b, doc, true);
}

static void *
convert_thread(void *arg)
{
    pipe_t *p = arg;
    cbatch_t *b = NULL;
    for (;;) {
        if (!b)
            b = cbatch_take(p);
        const bson_t *doc = dc_reader_next(p->reader, &b->err);
        if (doc && !convert_doc(p, b, doc)) {
            dc_error_set(&b->err, DC_ERR_SOURCE, "a document of %s has no _id", p->table.source);
            doc = NULL;
        }
        if (!doc)
            b->end = true;
        else if (b->n < PIPE_ROWS && b->buf.len < PIPE_BYTES && dc_reader_ready(p->reader))
            continue; /* more is at hand: keep filling; else hand over what there is */
        bool end = b->end;
        if (!pipe_push(p, b) || end)
            break;
        b = NULL;
    }
    return NULL;
}

static pipe_t *
pipe_open(dc_reader_t *reader, const dc_table_t *t, dc_naming_t naming, const char *cursor_field,
          bool no_date_text)
{
    pipe_t *p = dc_xcalloc(1, sizeof *p);
    p->reader = reader;
    table_copy(&p->table, t);
    p->naming = naming;
    p->cursor_field = cursor_field;
    p->cursor_col = cursor_field ? dc_table_find_field(&p->table, cursor_field) : -1;
    p->no_date_text = no_date_text;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (pthread_create(&p->thread, NULL, convert_thread, p) != 0)
        abort();
    return p;
}

/* The next entry, or NULL at the end (err->domain NONE) or on an error. Row values are
 * pointers into the batch, valid until the next call. */
static const entry_t *
pipe_next(pipe_t *p, dc_value_t **values, bson_value_t *id, dc_error_t *err)
{
    err->domain = DC_ERR_NONE;
    for (;;) {
        cbatch_t *b = p->current;
        if (b && p->next < b->n) {
            entry_t *e = &b->e[p->next++];
            if (!e->schema) {
                *values = b->v + e->vstart;
                *id = e->id;
            }
            return e;
        }
        if (b && b->end) {
            *err = b->err;
            return NULL;
        }
        p->current = NULL;
        p->next = 0;
        pthread_mutex_lock(&p->mu);
        if (b && !p->spare)
            p->spare = b;
        else
            cbatch_free(b);
        while (p->count == 0) {
            p->writer_waits = true;
            pthread_cond_wait(&p->cv, &p->mu);
        }
        p->current = p->queue[p->head];
        p->head = (p->head + 1) % PIPE_DEPTH;
        p->count--;
        if (p->converter_waits && p->count <= PIPE_DEPTH / 2) {
            p->converter_waits = false;
            pthread_cond_broadcast(&p->cv);
        }
        pthread_mutex_unlock(&p->mu);
    }
}

/* Stops the converter (and the reader), adding its counters to st. */
static void
pipe_close(pipe_t *p, dc_convert_stats_t *st)
{
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    /* The converter may wait for the reader; closing the reader from here would race, so the
     * converter finishes its current document and sees stop at its next push. */
    pthread_join(p->thread, NULL);
    while (p->count > 0) {
        cbatch_free(p->queue[p->head]);
        p->head = (p->head + 1) % PIPE_DEPTH;
        p->count--;
    }
    cbatch_free(p->current);
    cbatch_free(p->spare);
    st->invalid_utf8 += p->cstats.invalid_utf8;
    dc_table_cleanup(&p->table);
    free(p->cols);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* Writes one converted row (the converter's schema events have been applied). */
static bool
write_row(run_t *r, dc_value_t *values, size_t ncols, dc_error_t *err)
{
    if (ncols != r->t->ncols)
        return dc_error_set(err, DC_ERR_INTERNAL, "%s: a row has %zu columns, the table %zu",
                            r->t->source, ncols, r->t->ncols);
    if (!dc_sink_upsert(r->o->sink, r->t, values, err))
        return false;
    r->stats->records++;
    r->total->upserts++;
    if (++r->since_checkpoint >= (uint64_t)r->o->cfg->checkpoint_interval && !checkpoint(r, err))
        return false;
    if ((r->stats->records & 1023) == 0)
        progress(r, false);
    return true;
}

/* Reads one phase to its end, retrying transient errors from the last document written. */
static bool
read_phase(run_t *r, dc_source_t *src, read_mode_t mode, dc_error_t *err)
{
    const dc_config_t *cfg = r->o->cfg;
    int attempts = 0;
    for (;;) {
        bson_t filter, sort = BSON_INITIALIZER;
        if (mode == READ_SNAPSHOT) {
            snapshot_filter(r->ts, cfg, &filter);
            BSON_APPEND_INT32(&sort, "_id", 1);
        } else if (mode == READ_CHANGES) {
            incremental_filter(r->ts, r->ts->cursor_ms, r->ts->has_cursor_id, cfg->cursor_field,
                               &filter);
            bson_append_int32(&sort, cfg->cursor_field, -1, 1);
            BSON_APPEND_INT32(&sort, "_id", 1);
        } else {
            undated_filter(r->ts, cfg->cursor_field, &filter);
            BSON_APPEND_INT32(&sort, "_id", 1);
        }
        dc_reader_t *rd = dc_reader_open(src, r->t->source, &filter, &sort, cfg->batch_size, 0);
        pipe_t *pipe = pipe_open(rd, r->t, r->o->naming, cfg->cursor_field, r->o->no_date_text);
        const entry_t *e;
        dc_value_t *values = NULL;
        bson_value_t id;
        bool ok = true;
        while ((e = pipe_next(pipe, &values, &id, err)) != NULL) {
            if (e->schema) {
                /* The sink sees the new table while the old one still exists (rows it holds
                 * may point at the old names), then the old one goes. */
                dc_table_t fresh;
                table_copy(&fresh, e->table);
                if (!dc_sink_apply_table(r->o->sink, &fresh, err)) {
                    dc_table_cleanup(&fresh);
                    ok = false;
                    break;
                }
                dc_table_cleanup(r->t);
                *r->t = fresh;
                r->total->schema_changes++;
                continue;
            }
            if (!write_row(r, values, e->ncols, err)) {
                ok = false;
                break;
            }
            /* The position moves only after the row is written. */
            if (mode == READ_SNAPSHOT) {
                dc_state_set_id(&r->ts->last_id, &r->ts->has_last_id, &id);
                r->ts->undated += !e->has_cursor;
            } else if (mode == READ_UNDATED) {
                dc_state_set_id(&r->ts->max_id, &r->ts->has_max_id, &id);
                r->ts->undated++;
            } else if (e->has_cursor) {
                r->ts->has_cursor = true;
                r->ts->cursor_ms = e->cursor_ms;
                dc_state_set_id(&r->ts->cursor_id, &r->ts->has_cursor_id, &id);
                if (!r->has_max_seen || id_after(&id, &r->max_seen))
                    dc_state_set_id(&r->max_seen, &r->has_max_seen, &id);
            }
            attempts = 0;
        }
        pipe_close(pipe, &r->cstats);
        dc_reader_close(rd);
        bson_destroy(&filter);
        bson_destroy(&sort);
        if (ok && err->domain == DC_ERR_NONE)
            return true;
        if (!ok && !err->retryable)
            return false;
        if (!err->retryable || ++attempts > MAX_RETRIES) {
            if (err->retryable)
                dc_error_prefix(err, "giving up after %d retries", MAX_RETRIES);
            return false;
        }
        r->stats->retries++;
        dc_log(DC_LOG_WARNING, "%s: %s; retrying (%d of %d) from the last document read",
               r->t->source, err->message, attempts, MAX_RETRIES);
        backoff(attempts);
    }
}

static bool
sync_table(const dc_sync_opts_t *o, dc_source_t *src, dc_state_t *st, dc_table_t *t,
           dc_table_stats_t *stats, dc_sync_stats_t *total, dc_error_t *err)
{
    const dc_config_t *cfg = o->cfg;
    run_t r = {.o = o, .st = st, .t = t, .stats = stats, .total = total};
    r.started = now_s();
    r.ts = dc_state_table(st, t->source, true);
    bool ok = false;

    if (r.ts->cursor_field && strcmp(r.ts->cursor_field, cfg->cursor_field) != 0) {
        dc_log(DC_LOG_WARNING,
               "%s: the cursor field changed from '%s' to '%s'; reading the collection again",
               t->source, r.ts->cursor_field, cfg->cursor_field);
        dc_state_reset_table(r.ts);
    }
    free(r.ts->cursor_field);
    r.ts->cursor_field = dc_xstrdup(cfg->cursor_field);

    if (!dc_sink_apply_table(o->sink, t, err))
        goto done;
    if (r.ts->phase == DC_PHASE_SNAPSHOT) {
        if (!r.ts->has_snapshot_cursor) {
            /* Changes made while the full read runs carry a later cursor value than the
             * highest one now: the incremental phase starts there (ties included). */
            bool found = false;
            int64_t ms = 0;
            if (!dc_source_max_date(src, t->source, cfg->cursor_field, &found, &ms, err))
                goto done;
            r.ts->has_snapshot_cursor = true;
            r.ts->snapshot_cursor_ms = found ? ms : cfg->start_date_ms;
        }
        dc_log(DC_LOG_INFO, "%s: full read into table %s%s", t->source, t->name,
               r.ts->has_last_id ? " (resuming)" : "");
        uint64_t before = stats->records;
        if (!read_phase(&r, src, READ_SNAPSHOT, err))
            goto done;
        stats->snapshot_records += stats->records - before;
        /* Undated documents from here on are new ones: their _id comes after the last. */
        if (r.ts->has_last_id)
            dc_state_set_id(&r.ts->max_id, &r.ts->has_max_id, &r.ts->last_id);
        r.ts->phase = DC_PHASE_INCREMENTAL;
        r.ts->has_cursor = true;
        r.ts->cursor_ms = r.ts->snapshot_cursor_ms;
        dc_state_set_id(&r.ts->cursor_id, &r.ts->has_cursor_id, NULL);
        dc_state_set_id(&r.ts->last_id, &r.ts->has_last_id, NULL);
        r.ts->has_snapshot_cursor = false;
        if (!checkpoint(&r, err))
            goto done;
    }
    if (cfg->cursor_lookback_seconds > 0) {
        r.ts->cursor_ms -= (int64_t)cfg->cursor_lookback_seconds * 1000;
        dc_state_set_id(&r.ts->cursor_id, &r.ts->has_cursor_id, NULL);
    }
    if (!read_phase(&r, src, READ_CHANGES, err))
        goto done;
    /* Undated documents inserted since the last sync, which the changes read cannot see. */
    if (!read_phase(&r, src, READ_UNDATED, err))
        goto done;
    if (r.has_max_seen && (!r.ts->has_max_id || id_after(&r.max_seen, &r.ts->max_id)))
        dc_state_set_id(&r.ts->max_id, &r.ts->has_max_id, &r.max_seen);
    stats->no_cursor = (uint64_t)r.ts->undated;
    if (r.ts->undated > 0)
        warn(o,
             "%s: %lld documents have no date in '%s': the full read and later syncs of new "
             "documents took them, but later changes to them are not seen",
             t->source, (long long)r.ts->undated, cfg->cursor_field);
    stats->invalid_utf8 = r.cstats.invalid_utf8;
    if (r.cstats.invalid_utf8)
        warn(o, "%s: %llu bytes of invalid UTF-8 replaced by U+FFFD", t->source,
             (unsigned long long)r.cstats.invalid_utf8);
    /* The table's last checkpoint comes after its warnings: a stream ends on a checkpoint. */
    if (!checkpoint(&r, err))
        goto done;
    ok = true;
done:
    if (r.has_max_seen)
        bson_value_destroy(&r.max_seen);
    stats->seconds = now_s() - r.started;
    progress(&r, true);
    return ok;
}

bool
dc_sync_collections(dc_source_t *src, const dc_config_t *cfg, char ***names, size_t *n,
                    dc_error_t *err)
{
    char **all;
    size_t nall;
    if (!dc_source_list_collections(src, &all, &nall, err))
        return false;
    if (!cfg->collections) {
        *names = all;
        *n = nall;
        return true;
    }
    bool ok = true;
    for (size_t i = 0; i < cfg->ncollections && ok; i++) {
        bool found = false;
        for (size_t j = 0; j < nall && !found; j++)
            found = strcmp(all[j], cfg->collections[i]) == 0;
        if (!found)
            ok = dc_error_set(err, DC_ERR_CONFIG,
                              "collections: '%s' does not exist in database '%s'",
                              cfg->collections[i], dc_source_database(src));
    }
    for (size_t j = 0; j < nall; j++)
        free(all[j]);
    free(all);
    if (!ok)
        return false;
    *names = dc_xcalloc(cfg->ncollections, sizeof **names);
    for (size_t i = 0; i < cfg->ncollections; i++)
        (*names)[i] = dc_xstrdup(cfg->collections[i]);
    *n = cfg->ncollections;
    return true;
}

bool
dc_sync_check_indexes(dc_source_t *src, const dc_config_t *cfg, char **names, size_t n,
                      size_t *unindexed, dc_error_t *err)
{
    *unindexed = 0;
    for (size_t i = 0; i < n; i++) {
        bool has = false;
        if (!dc_source_has_index_on(src, names[i], cfg->cursor_field, &has, err))
            return false;
        if (!has) {
            (*unindexed)++;
            dc_log(DC_LOG_WARNING,
                   "%s has no index on '%s': incremental syncs will scan the whole collection "
                   "(create one with createIndex({%s: 1, _id: 1}))",
                   names[i], cfg->cursor_field, cfg->cursor_field);
        }
    }
    return true;
}

typedef struct {
    char **names;
    size_t n, cap;
} nameset_t;

static void
nameset_add(nameset_t *s, const char *name)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->names = dc_xrealloc(s->names, s->cap * sizeof *s->names);
    }
    s->names[s->n++] = dc_xstrdup(name);
}

static bool
nameset_has(const nameset_t *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->names[i], name) == 0)
            return true;
    return false;
}

static void
collect_name(const char *source, const char *name, void *ctx)
{
    (void)source;
    nameset_add(ctx, name);
}

/* The table for a collection: as recorded by an earlier run, or new with a unique name. */
static bool
table_for(const dc_sync_opts_t *o, const char *source, nameset_t *used, dc_table_t *t,
          dc_error_t *err)
{
    if (dc_sink_load_table(o->sink, source, t, err))
        return true;
    if (err->domain != DC_ERR_NONE)
        return false;
    char *name = dc_name(source, true, o->naming);
    if (nameset_has(used, name)) {
        size_t len = strlen(name) + 24;
        char *alt = dc_xmalloc(len);
        for (int i = 2;; i++) {
            snprintf(alt, len, "%s_%d", name, i);
            if (!nameset_has(used, alt))
                break;
        }
        free(name);
        name = alt;
    }
    nameset_add(used, name);
    dc_sync_initial_table(t, source, name);
    free(name);
    return true;
}

bool
dc_sync_run(const dc_sync_opts_t *o, dc_state_t *st, dc_sync_stats_t *stats, dc_error_t *err)
{
    double t0 = now_s();
    char **names = NULL;
    size_t n = 0;
    nameset_t used = {0};
    bool ok = false;
    memset(stats, 0, sizeof *stats);
    err->domain = DC_ERR_NONE;
    dc_source_t *src = dc_source_open(o->cfg, err);
    if (!src)
        goto done;
    dc_log(DC_LOG_INFO, "connected to %s", dc_source_describe(src));
    if (!dc_sync_collections(src, o->cfg, &names, &n, err) ||
        !dc_sink_each_table(o->sink, collect_name, &used, err))
        goto done;
    dc_log(DC_LOG_INFO, "%zu collection%s in database '%s'", n, n == 1 ? "" : "s",
           dc_source_database(src));
    stats->tables = dc_xcalloc(n ? n : 1, sizeof *stats->tables);
    ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        dc_table_t t;
        if (o->include_table && !o->include_table(o->include_ctx, names[i]))
            continue; /* deselected: not read at all */
        dc_table_stats_t *ts = &stats->tables[stats->ntables++];
        ts->source = dc_xstrdup(names[i]);
        if (!table_for(o, names[i], &used, &t, err)) {
            ok = false;
            break;
        }
        ts->table = dc_xstrdup(t.name);
        ok = sync_table(o, src, st, &t, ts, stats, err);
        if (!ok)
            dc_error_prefix(err, "%s", names[i]);
        dc_table_cleanup(&t);
    }
done:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    for (size_t i = 0; i < used.n; i++)
        free(used.names[i]);
    free(used.names);
    dc_source_close(src);
    stats->seconds = now_s() - t0;
    return ok;
}

void
dc_sync_stats_cleanup(dc_sync_stats_t *stats)
{
    for (size_t i = 0; i < stats->ntables; i++) {
        free(stats->tables[i].source);
        free(stats->tables[i].table);
    }
    free(stats->tables);
    memset(stats, 0, sizeof *stats);
}

/* store.c: databases, collections, documents, the _id index, and keeping the secondary
 * indexes (index.c) in step with every write. Callers hold the store lock; nothing here sends
 * or parses messages. */
#include "store.h"
#include "index.h"
#include "query.h"

#include <math.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The _id index: open addressing over (hash, slot + 1); 0 is empty, TOMB a removed entry. */
#define TOMB UINT32_MAX
typedef struct {
    uint32_t hash;
    uint32_t slot1;
} id_entry_t;

struct emu_coll {
    char *name;
    char *ns; /* "db.name", for error messages */
    uint8_t uuid[16];
    emu_doc_t **docs; /* slots, NULL when deleted */
    size_t nslots, cap, live;
    uint64_t next_seq; /* the next document's emu_doc_t.seq */
    id_entry_t *index;
    size_t index_cap, index_used; /* used counts tombstones too */
    emu_index_t **indexes;        /* secondary indexes */
    size_t nindexes;
    /* Whether every insert so far had a greater _id than the one before (ObjectIds from one
     * client usually do): natural order is then _id order, which a sort on {_id: 1} gets for
     * free, as mongod gets it from its _id index. Deletes and replacements keep it. */
    bool id_ordered;
    emu_doc_t *max_id_doc; /* holds the greatest _id so far (a reference) */
    bson_value_t max_id;   /* that _id, a view into max_id_doc */
};

typedef struct {
    char *name;
    emu_coll_t **colls;
    size_t n, cap;
} emu_db_t;

static pthread_rwlock_t lock = PTHREAD_RWLOCK_INITIALIZER;
static emu_db_t **dbs;
static size_t ndbs, dbs_cap;

static void *
xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q && n) {
        fputs("docdb-emu: out of memory\n", stderr);
        abort();
    }
    return q;
}

emu_doc_t *
emu_doc_new(const uint8_t *data, uint32_t len)
{
    emu_doc_t *d = malloc(sizeof *d + len);
    if (!d)
        return NULL;
    atomic_init(&d->refs, 1);
    d->len = len;
    d->seq = 0;
    memcpy(d->data, data, len);
    return d;
}

void
emu_doc_ref(emu_doc_t *d)
{
    atomic_fetch_add_explicit(&d->refs, 1, memory_order_relaxed);
}

void
emu_doc_unref(emu_doc_t *d)
{
    if (d && atomic_fetch_sub_explicit(&d->refs, 1, memory_order_acq_rel) == 1)
        free(d);
}

void
emu_doc_view(const emu_doc_t *d, bson_t *view)
{
    bson_init_static(view, d->data, d->len);
}

bool
emu_doc_id(const bson_t *doc, bson_value_t *id)
{
    bson_iter_t it;
    if (!bson_iter_init_find(&it, doc, "_id"))
        return false;
    *id = *bson_iter_value(&it);
    return true;
}

/* FNV-1a. */
static uint32_t
fnv(uint32_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 16777619u;
    return h;
}

/* A hash consistent with emu_value_compare's equality for the types _id values take: numbers
 * hash by their nearest double, so 1, 1L, 1.0 and 1.0m collide as they compare equal.
 * Documents and arrays hash by bytes (documented in docs/test-server.md). */
static uint32_t
id_hash(const bson_value_t *v)
{
    uint32_t h = 2166136261u;
    double d;
    switch (v->value_type) {
    case BSON_TYPE_INT32:
        d = v->value.v_int32;
        goto number;
    case BSON_TYPE_INT64:
        d = (double)v->value.v_int64;
        goto number;
    case BSON_TYPE_DOUBLE:
        d = v->value.v_double;
        goto number;
    case BSON_TYPE_DECIMAL128: {
        char s[BSON_DECIMAL128_STRING];
        bson_decimal128_to_string(&v->value.v_decimal128, s);
        d = strtod(s, NULL);
        goto number;
    }
    number:
        if (d == 0)
            d = 0; /* -0 == 0 */
        if (isnan(d))
            d = NAN;
        return fnv(h ^ 10, &d, sizeof d);
    case BSON_TYPE_UTF8:
    case BSON_TYPE_SYMBOL:
        return fnv(h ^ 15, v->value.v_utf8.str, v->value.v_utf8.len);
    case BSON_TYPE_OID:
        return fnv(h ^ 35, v->value.v_oid.bytes, 12);
    case BSON_TYPE_DOCUMENT:
    case BSON_TYPE_ARRAY:
        return fnv(h ^ (uint32_t)emu_type_rank(v->value_type), v->value.v_doc.data,
                   v->value.v_doc.data_len);
    case BSON_TYPE_BINARY:
        return fnv(h ^ 30, v->value.v_binary.data, v->value.v_binary.data_len);
    case BSON_TYPE_DATE_TIME:
        return fnv(h ^ 45, &v->value.v_datetime, 8);
    case BSON_TYPE_BOOL:
        return h ^ (v->value.v_bool ? 41 : 40);
    case BSON_TYPE_TIMESTAMP:
        return fnv(h ^ 47, &v->value.v_timestamp, sizeof v->value.v_timestamp);
    default:
        return h ^ (uint32_t)emu_type_rank(v->value_type);
    }
}

static bool
slot_id(const emu_coll_t *c, size_t slot, bson_value_t *id)
{
    bson_t view;
    emu_doc_view(c->docs[slot], &view);
    return emu_doc_id(&view, id);
}

static void index_rebuild(emu_coll_t *c, size_t cap);

static void
index_put(emu_coll_t *c, uint32_t hash, size_t slot)
{
    if ((c->index_used + 1) * 4 >= c->index_cap * 3)
        index_rebuild(c, c->live * 4 > c->index_cap ? c->index_cap * 2 : c->index_cap);
    size_t mask = c->index_cap - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        if (c->index[i].slot1 == 0 || c->index[i].slot1 == TOMB) {
            if (c->index[i].slot1 == 0)
                c->index_used++;
            c->index[i].hash = hash;
            c->index[i].slot1 = (uint32_t)slot + 1;
            return;
        }
    }
}

static void
index_rebuild(emu_coll_t *c, size_t cap)
{
    if (cap < 64)
        cap = 64;
    free(c->index);
    c->index = calloc(cap, sizeof *c->index);
    if (!c->index)
        abort();
    c->index_cap = cap;
    c->index_used = 0;
    for (size_t s = 0; s < c->nslots; s++) {
        bson_value_t id;
        if (c->docs[s] && slot_id(c, s, &id))
            index_put(c, id_hash(&id), s);
    }
}

/* Returns the index position holding id, or SIZE_MAX. */
static size_t
index_find(const emu_coll_t *c, const bson_value_t *id, uint32_t hash)
{
    if (!c->index_cap)
        return SIZE_MAX;
    size_t mask = c->index_cap - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        uint32_t s1 = c->index[i].slot1;
        if (s1 == 0)
            return SIZE_MAX;
        if (s1 != TOMB && c->index[i].hash == hash) {
            bson_value_t other;
            if (slot_id(c, s1 - 1, &other) && emu_value_compare(id, &other) == 0)
                return i;
        }
    }
}

size_t
emu_coll_find_id(const emu_coll_t *c, const bson_value_t *id)
{
    size_t i = index_find(c, id, id_hash(id));
    return i == SIZE_MAX ? SIZE_MAX : c->index[i].slot1 - 1;
}

bool
emu_coll_insert(emu_coll_t *c, emu_doc_t *doc, emu_error_t *err)
{
    bson_t view;
    bson_value_t id;
    emu_doc_view(doc, &view);
    if (!emu_doc_id(&view, &id)) {
        emu_doc_unref(doc);
        return emu_error_set(err, EMU_BAD_VALUE, "document has no _id");
    }
    uint32_t h = id_hash(&id);
    if (index_find(c, &id, h) != SIZE_MAX) {
        bson_t idonly = BSON_INITIALIZER;
        bson_append_value(&idonly, "_id", 3, &id);
        char *idjson = bson_as_relaxed_extended_json(&idonly, NULL);
        emu_error_set(err, EMU_DUPLICATE_KEY,
                      "E11000 duplicate key error collection: %s index: _id_ dup key: %s", c->ns,
                      idjson ? idjson : "?");
        bson_free(idjson);
        bson_destroy(&idonly);
        emu_doc_unref(doc);
        return false;
    }
    for (size_t i = 0; i < c->nindexes; i++) {
        if (!emu_index_check_unique(c->indexes[i], doc, NULL, c->ns, err)) {
            emu_doc_unref(doc);
            return false;
        }
    }
    if (c->nslots == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 64;
        c->docs = xrealloc(c->docs, c->cap * sizeof *c->docs);
    }
    if (c->nslots >= UINT32_MAX - 1)
        abort();
    if (c->live == 0 && c->nslots == 0)
        c->id_ordered = true;
    if (c->id_ordered && c->max_id_doc && emu_value_compare(&id, &c->max_id) <= 0)
        c->id_ordered = false;
    if (c->id_ordered) {
        emu_doc_ref(doc);
        emu_doc_unref(c->max_id_doc);
        c->max_id_doc = doc;
        c->max_id = id; /* id is a view into doc, which the collection now holds */
    }
    doc->seq = c->next_seq++;
    c->docs[c->nslots] = doc;
    c->live++;
    index_put(c, h, c->nslots);
    c->nslots++;
    for (size_t i = 0; i < c->nindexes; i++)
        emu_index_add(c->indexes[i], doc);
    return true;
}

bool
emu_coll_replace(emu_coll_t *c, size_t slot, emu_doc_t *doc, emu_error_t *err)
{
    emu_doc_t *old = c->docs[slot];
    for (size_t i = 0; i < c->nindexes; i++) {
        if (!emu_index_check_unique(c->indexes[i], doc, old, c->ns, err)) {
            emu_doc_unref(doc);
            return false;
        }
    }
    doc->seq = old->seq;
    for (size_t i = 0; i < c->nindexes; i++) {
        emu_index_remove(c->indexes[i], old);
        emu_index_add(c->indexes[i], doc);
    }
    c->docs[slot] = doc;
    emu_doc_unref(old);
    return true;
}

void
emu_coll_remove(emu_coll_t *c, size_t slot)
{
    bson_value_t id;
    if (!c->docs[slot])
        return;
    if (slot_id(c, slot, &id)) {
        size_t i = index_find(c, &id, id_hash(&id));
        if (i != SIZE_MAX)
            c->index[i].slot1 = TOMB;
    }
    for (size_t i = 0; i < c->nindexes; i++)
        emu_index_remove(c->indexes[i], c->docs[slot]);
    emu_doc_unref(c->docs[slot]);
    c->docs[slot] = NULL;
    c->live--;
}

void
emu_coll_compact(emu_coll_t *c)
{
    size_t dead = c->nslots - c->live;
    if (dead < 1024 || dead < c->live)
        return;
    size_t o = 0;
    for (size_t s = 0; s < c->nslots; s++)
        if (c->docs[s])
            c->docs[o++] = c->docs[s];
    c->nslots = o;
    size_t cap = 64;
    while (cap < c->live * 2)
        cap *= 2;
    index_rebuild(c, cap);
}

const char *
emu_coll_name(const emu_coll_t *c)
{
    return c->name;
}

const char *
emu_coll_ns(const emu_coll_t *c)
{
    return c->ns;
}

const uint8_t *
emu_coll_uuid(const emu_coll_t *c)
{
    return c->uuid;
}

size_t
emu_coll_count(const emu_coll_t *c)
{
    return c->live;
}

size_t
emu_coll_slots(const emu_coll_t *c)
{
    return c->nslots;
}

emu_doc_t *
emu_coll_at(const emu_coll_t *c, size_t slot)
{
    return c->docs[slot];
}

size_t
emu_coll_nindexes(const emu_coll_t *c)
{
    return c->nindexes;
}

const emu_index_t *
emu_coll_index(const emu_coll_t *c, size_t i)
{
    return c->indexes[i];
}

static size_t
find_index(const emu_coll_t *c, const char *name)
{
    for (size_t i = 0; i < c->nindexes; i++) {
        if (strcmp(emu_index_name(c->indexes[i]), name) == 0)
            return i;
    }
    return SIZE_MAX;
}

bool
emu_coll_add_index(emu_coll_t *c, const bson_t *spec, emu_error_t *err)
{
    emu_index_t *ix = emu_index_new(spec, err);
    if (!ix)
        return false;
    size_t i = find_index(c, emu_index_name(ix));
    if (i != SIZE_MAX) {
        bson_t a, b;
        emu_index_key(ix, &a);
        emu_index_key(c->indexes[i], &b);
        bool same = bson_equal(&a, &b);
        if (!same)
            emu_error_set(err, EMU_INDEX_KEY_SPECS_CONFLICT,
                          "An existing index has the same name as the requested index. "
                          "Requested index: %s",
                          emu_index_name(ix));
        emu_index_destroy(ix);
        return same;
    }
    /* Documents go in in insertion order, so a unique index reports the later duplicate. */
    for (size_t s = 0; s < c->nslots; s++) {
        if (!c->docs[s])
            continue;
        if (!emu_index_check_unique(ix, c->docs[s], NULL, c->ns, err)) {
            emu_index_destroy(ix);
            return false;
        }
        emu_index_add(ix, c->docs[s]);
    }
    c->indexes = xrealloc(c->indexes, (c->nindexes + 1) * sizeof *c->indexes);
    c->indexes[c->nindexes++] = ix;
    return true;
}

bool
emu_coll_drop_index(emu_coll_t *c, const char *name)
{
    size_t i = find_index(c, name);
    if (i == SIZE_MAX)
        return false;
    emu_index_destroy(c->indexes[i]);
    memmove(c->indexes + i, c->indexes + i + 1, (c->nindexes - i - 1) * sizeof *c->indexes);
    c->nindexes--;
    return true;
}

bool
emu_coll_id_ordered(const emu_coll_t *c)
{
    return c->id_ordered;
}

void
emu_coll_drop_indexes(emu_coll_t *c)
{
    for (size_t i = 0; i < c->nindexes; i++)
        emu_index_destroy(c->indexes[i]);
    c->nindexes = 0;
}

static void
coll_destroy(emu_coll_t *c)
{
    for (size_t i = 0; i < c->nindexes; i++)
        emu_index_destroy(c->indexes[i]);
    free(c->indexes);
    for (size_t s = 0; s < c->nslots; s++)
        emu_doc_unref(c->docs[s]);
    emu_doc_unref(c->max_id_doc);
    free(c->docs);
    free(c->index);
    free(c->name);
    free(c->ns);
    free(c);
}

static emu_db_t *
find_db(const char *name, size_t *pos)
{
    for (size_t i = 0; i < ndbs; i++)
        if (strcmp(dbs[i]->name, name) == 0) {
            if (pos)
                *pos = i;
            return dbs[i];
        }
    return NULL;
}

static emu_coll_t *
find_coll(emu_db_t *db, const char *name, size_t *pos)
{
    for (size_t i = 0; db && i < db->n; i++)
        if (strcmp(db->colls[i]->name, name) == 0) {
            if (pos)
                *pos = i;
            return db->colls[i];
        }
    return NULL;
}

emu_coll_t *
emu_store_coll(const char *dbname, const char *name, bool create)
{
    emu_db_t *db = find_db(dbname, NULL);
    emu_coll_t *c = find_coll(db, name, NULL);
    if (c || !create)
        return c;
    if (!db) {
        db = calloc(1, sizeof *db);
        if (!db || !(db->name = strdup(dbname)))
            abort();
        if (ndbs == dbs_cap) {
            dbs_cap = dbs_cap ? dbs_cap * 2 : 8;
            dbs = xrealloc(dbs, dbs_cap * sizeof *dbs);
        }
        dbs[ndbs++] = db;
    }
    c = calloc(1, sizeof *c);
    if (!c || !(c->name = strdup(name)))
        abort();
    size_t nslen = strlen(dbname) + 1 + strlen(name) + 1;
    if (!(c->ns = malloc(nslen)))
        abort();
    snprintf(c->ns, nslen, "%s.%s", dbname, name);
    RAND_bytes(c->uuid, 16);
    c->uuid[6] = (uint8_t)((c->uuid[6] & 0x0f) | 0x40); /* UUID version 4 */
    c->uuid[8] = (uint8_t)((c->uuid[8] & 0x3f) | 0x80);
    if (db->n == db->cap) {
        db->cap = db->cap ? db->cap * 2 : 8;
        db->colls = xrealloc(db->colls, db->cap * sizeof *db->colls);
    }
    db->colls[db->n++] = c;
    return c;
}

bool
emu_store_create(const char *db, const char *name, emu_error_t *err)
{
    if (emu_store_coll(db, name, false))
        return emu_error_set(err, EMU_NAMESPACE_EXISTS, "Collection already exists. NS: %s.%s", db,
                             name);
    emu_store_coll(db, name, true);
    return true;
}

bool
emu_store_drop(const char *dbname, const char *name)
{
    size_t pos;
    emu_db_t *db = find_db(dbname, NULL);
    emu_coll_t *c = find_coll(db, name, &pos);
    if (!c)
        return false;
    coll_destroy(c);
    memmove(db->colls + pos, db->colls + pos + 1, (db->n - pos - 1) * sizeof *db->colls);
    db->n--;
    return true;
}

static void
db_destroy(emu_db_t *db)
{
    for (size_t i = 0; i < db->n; i++)
        coll_destroy(db->colls[i]);
    free(db->colls);
    free(db->name);
    free(db);
}

void
emu_store_drop_db(const char *dbname)
{
    size_t pos;
    emu_db_t *db = find_db(dbname, &pos);
    if (!db)
        return;
    db_destroy(db);
    memmove(dbs + pos, dbs + pos + 1, (ndbs - pos - 1) * sizeof *dbs);
    ndbs--;
}

void
emu_store_each_db(void (*fn)(const char *name, uint64_t bytes, void *ctx), void *ctx)
{
    for (size_t i = 0; i < ndbs; i++) {
        uint64_t bytes = 0;
        for (size_t j = 0; j < dbs[i]->n; j++)
            for (size_t s = 0; s < dbs[i]->colls[j]->nslots; s++)
                if (dbs[i]->colls[j]->docs[s])
                    bytes += dbs[i]->colls[j]->docs[s]->len;
        fn(dbs[i]->name, bytes, ctx);
    }
}

void
emu_store_each_coll(const char *dbname, void (*fn)(const emu_coll_t *c, void *ctx), void *ctx)
{
    emu_db_t *db = find_db(dbname, NULL);
    for (size_t i = 0; db && i < db->n; i++)
        fn(db->colls[i], ctx);
}

void
emu_store_init(void)
{
}

void
emu_store_cleanup(void)
{
    for (size_t i = 0; i < ndbs; i++)
        db_destroy(dbs[i]);
    free(dbs);
    dbs = NULL;
    ndbs = dbs_cap = 0;
}

void
emu_store_rdlock(void)
{
    pthread_rwlock_rdlock(&lock);
}

void
emu_store_wrlock(void)
{
    pthread_rwlock_wrlock(&lock);
}

void
emu_store_unlock(void)
{
    pthread_rwlock_unlock(&lock);
}

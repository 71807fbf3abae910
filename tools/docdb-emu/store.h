/* store.h: the in-memory data: databases, collections and their documents, kept as immutable,
 * reference-counted BSON so that cursors can hold results while writers replace documents.
 * One process-wide read/write lock guards the catalogue and every collection. */
#ifndef EMU_STORE_H
#define EMU_STORE_H

#include "emu.h"

#include <stdatomic.h>

/* An immutable document. Cursors and the collection each hold a reference. */
typedef struct emu_doc {
    atomic_int refs;
    uint32_t len;
    uint64_t seq; /* set by the collection before it shares the document: its insertion order,
                   * which a replacement keeps; ties in secondary indexes go by it */
    uint8_t data[];
} emu_doc_t;

/* A new document with one reference, copying len bytes of BSON. NULL on out of memory. */
emu_doc_t *emu_doc_new(const uint8_t *data, uint32_t len);
void emu_doc_ref(emu_doc_t *d);
void emu_doc_unref(emu_doc_t *d); /* frees at zero; NULL is ignored */
/* A read-only bson_t view of the document (valid while a reference is held). */
void emu_doc_view(const emu_doc_t *d, bson_t *view);

typedef struct emu_coll emu_coll_t;
typedef struct emu_index emu_index_t;

void emu_store_init(void);
void emu_store_cleanup(void);
void emu_store_rdlock(void);
void emu_store_wrlock(void);
void emu_store_unlock(void);

/* Everything below runs under the store lock (a read lock for the lookups, a write lock for the
 * rest). */

/* The collection db.name, or NULL; with create, creates it (and its database) when missing. */
emu_coll_t *emu_store_coll(const char *db, const char *name, bool create);
/* Creates db.name; code 48 NamespaceExists when present. */
bool emu_store_create(const char *db, const char *name, emu_error_t *err);
/* Drops db.name; false when it did not exist. */
bool emu_store_drop(const char *db, const char *name);
void emu_store_drop_db(const char *db);

/* Calls fn for every database name (with its total document bytes). */
void emu_store_each_db(void (*fn)(const char *name, uint64_t bytes, void *ctx), void *ctx);
/* Calls fn for every collection of db. */
void emu_store_each_coll(const char *db, void (*fn)(const emu_coll_t *c, void *ctx), void *ctx);

const char *emu_coll_name(const emu_coll_t *c);
const char *emu_coll_ns(const emu_coll_t *c);      /* "db.name" */
const uint8_t *emu_coll_uuid(const emu_coll_t *c); /* 16 bytes */
/* Live documents. */
size_t emu_coll_count(const emu_coll_t *c);
/* Slots in natural (insertion) order; emu_coll_at returns NULL for a deleted slot. */
size_t emu_coll_slots(const emu_coll_t *c);
emu_doc_t *emu_coll_at(const emu_coll_t *c, size_t slot);
/* The slot of the document whose _id equals id (MongoDB equality), or SIZE_MAX. */
size_t emu_coll_find_id(const emu_coll_t *c, const bson_value_t *id);
/* Inserts doc (which must have an _id), taking over the caller's reference, and adds it to every
 * secondary index; code 11000 DuplicateKey when the _id or a unique index's key exists (the
 * reference is then released and nothing changes). */
bool emu_coll_insert(emu_coll_t *c, emu_doc_t *doc, emu_error_t *err);
/* Replaces the document in slot (the _id must be equal), taking over the reference; code 11000
 * when a unique index's key would be duplicated (the reference is then released and the old
 * document stays). */
bool emu_coll_replace(emu_coll_t *c, size_t slot, emu_doc_t *doc, emu_error_t *err);
/* Deletes the document in slot. Slots stay valid until emu_coll_compact. */
void emu_coll_remove(emu_coll_t *c, size_t slot);
/* Whether natural order is ascending _id order (every insert had a greater _id). */
bool emu_coll_id_ordered(const emu_coll_t *c);
/* Reclaims deleted slots when they are many; renumbers slots (indexes point at documents, not
 * slots, so they stay as they are). */
void emu_coll_compact(emu_coll_t *c);

/* Secondary indexes (index.h), in creation order; `_id_` is not among them. */
size_t emu_coll_nindexes(const emu_coll_t *c);
const emu_index_t *emu_coll_index(const emu_coll_t *c, size_t i);
/* Creates the index described by spec ({key, name, unique, ...}, copied) and builds it over
 * the collection's documents. An index of that name with the same key is left as it is; with
 * another key, code 86 IndexKeySpecsConflict. Code 11000 when a unique index meets duplicate
 * keys (then nothing is created), 67 for a bad key pattern. */
bool emu_coll_add_index(emu_coll_t *c, const bson_t *spec, emu_error_t *err);
/* Drops the index named name; false when there is none. */
bool emu_coll_drop_index(emu_coll_t *c, const char *name);
/* Drops every secondary index. */
void emu_coll_drop_indexes(emu_coll_t *c);

/* The _id of a document view, or false when it has none. */
bool emu_doc_id(const bson_t *doc, bson_value_t *id);

#endif

/* index.h: secondary indexes: a createIndexes specification with, for ordered key patterns, the
 * documents in key order (a red-black tree), kept up to date by the store and scanned over
 * bounds by the planner. Callers hold the store lock; nothing here knows collections or
 * commands. */
#ifndef EMU_INDEX_H
#define EMU_INDEX_H

#include "query.h"
#include "store.h"

/* The most fields a key pattern may have, as in mongod. */
#define EMU_INDEX_MAX_FIELDS 32

typedef struct emu_index emu_index_t;

/* An empty index from spec ({key, name, unique, sparse, partialFilterExpression, ...}, copied).
 * Key values must be numbers other than 0 (1 ascending, -1 descending) or strings; a string
 * ("hashed", "text", "2dsphere") makes a metadata-only index that holds no entries and is never
 * used. Code 67 CannotCreateIndex for a bad key pattern, 2 for a bad partial filter. */
emu_index_t *emu_index_new(const bson_t *spec, emu_error_t *err);
void emu_index_destroy(emu_index_t *ix); /* NULL is ignored */

const char *emu_index_name(const emu_index_t *ix);
const bson_t *emu_index_spec(const emu_index_t *ix);
/* A view of the key pattern (borrowed from the spec). */
void emu_index_key(const emu_index_t *ix, bson_t *view);
int emu_index_nfields(const emu_index_t *ix);
/* The dotted path of key field i; *dir is 1 or -1. */
const char *emu_index_field(const emu_index_t *ix, int i, int *dir);
bool emu_index_unique(const emu_index_t *ix);
bool emu_index_sparse(const emu_index_t *ix);
/* True when the index order can answer queries: an ordered key pattern and no document with an
 * array along an indexed path (mongod would call it multikey; docdb-emu scans instead). */
bool emu_index_usable(const emu_index_t *ix);
bool emu_index_multikey(const emu_index_t *ix);
size_t emu_index_entries(const emu_index_t *ix);

/* For a unique index: false with code 11000 DuplicateKey when a document other than `self`
 * (NULL: none) has the same key as doc. ns names the collection in the message. Documents with
 * an array along the key, outside a partial filter, or (sparse) without any key field are not
 * checked. */
bool emu_index_check_unique(const emu_index_t *ix, const emu_doc_t *doc, const emu_doc_t *self,
                            const char *ns, emu_error_t *err);
/* Adds doc (whose seq must be set and unique in the index); the index does not take a
 * reference: the collection keeps doc alive until emu_index_remove. */
void emu_index_add(emu_index_t *ix, emu_doc_t *doc);
void emu_index_remove(emu_index_t *ix, emu_doc_t *doc);

/* Calls fn for each document whose first key field lies in b, in index order (reverse: the
 * opposite order), until fn returns false. Returns the number of entries visited. */
size_t emu_index_scan(const emu_index_t *ix, const emu_bounds_t *b, bool reverse,
                      bool (*fn)(emu_doc_t *doc, void *ctx), void *ctx);

#endif

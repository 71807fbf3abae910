/* source.h: the DocumentDB/MongoDB side: connecting (TLS, SCRAM) with libmongoc, listing
 * collections and indexes, and streaming documents in batches. Errors are classified for the
 * engine: authentication and TLS fail at once, network and server hiccups are retryable. */
#ifndef DC_SOURCE_H
#define DC_SOURCE_H

#include <mongoc/mongoc.h>

#include "config/config.h"
#include "core/error.h"

typedef struct dc_source dc_source_t;

/* Connects and authenticates (a ping), before returning. NULL with err otherwise. */
dc_source_t *dc_source_open(const dc_config_t *cfg, dc_error_t *err);
void dc_source_close(dc_source_t *s);
/* The masked connection description for messages. */
const char *dc_source_describe(const dc_source_t *s);
const char *dc_source_database(const dc_source_t *s);

/* The collections of the database, sorted by name, without system.* and views (a new array
 * of new strings: free each and the array). */
bool dc_source_list_collections(dc_source_t *s, char ***names, size_t *n, dc_error_t *err);
/* Whether an index of coll starts with field. */
bool dc_source_has_index_on(dc_source_t *s, const char *coll, const char *field, bool *has,
                            dc_error_t *err);
/* The greatest date in coll.field, if any document has one. */
bool dc_source_max_date(dc_source_t *s, const char *coll, const char *field, bool *found,
                        int64_t *ms, dc_error_t *err);
/* Documents of coll matching filter. */
bool dc_source_count(dc_source_t *s, const char *coll, const bson_t *filter, int64_t *n,
                     dc_error_t *err);

/* A stream of documents: find(filter).sort(sort) with batchSize. */
typedef struct dc_reader dc_reader_t;
dc_reader_t *dc_reader_open(dc_source_t *s, const char *coll, const bson_t *filter,
                            const bson_t *sort, int batch_size, int64_t limit);
/* The next document (valid until the next call), or NULL at the end (err->domain NONE) or on
 * an error (err filled, err->retryable set for transient ones). */
const bson_t *dc_reader_next(dc_reader_t *r, dc_error_t *err);
void dc_reader_close(dc_reader_t *r);
/* Whether dc_reader_next would return at once (a document or the end is at hand) rather than
 * wait for the server. */
bool dc_reader_ready(dc_reader_t *r);

/* Classifies a libmongoc error into err ("<what>: <reason>"); never includes credentials. */
void dc_source_error(const bson_error_t *e, const char *what, dc_error_t *err);

#endif

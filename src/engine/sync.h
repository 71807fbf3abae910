/* sync.h: the engine both front doors share. For each collection: a first full read in _id
 * order (resumable), then incremental reads ordered by (cursor field, _id) with a tie-safe
 * filter; rows go to a sink, and a checkpoint (sink commit with the state, then save_state) follows
 * every checkpoint_interval records and each collection's end. */
#ifndef DC_SYNC_H
#define DC_SYNC_H

#include "config/config.h"
#include "convert/naming.h"
#include "engine/state.h"
#include "sink/sink.h"
#include "source/source.h"

typedef struct {
    char *source;
    char *table;
    uint64_t records;          /* rows upserted */
    uint64_t snapshot_records; /* of which by the full read */
    uint64_t no_cursor;        /* documents whose cursor field is missing or not a date */
    uint64_t invalid_utf8;     /* bytes repaired */
    uint64_t retries;
    double seconds;
} dc_table_stats_t;

typedef struct {
    dc_table_stats_t *tables;
    size_t ntables;
    uint64_t upserts, checkpoints, schema_changes;
    double seconds;
} dc_sync_stats_t;

typedef struct {
    const dc_config_t *cfg;
    dc_naming_t naming;
    dc_sink_t *sink;
    /* Told of each checkpoint after the sink committed it with the state (json is st's JSON
     * text): `sync` mirrors it into the state file, `serve` sends it. NULL: nothing to do. */
    bool (*save_state)(void *ctx, const dc_state_t *st, const char *json, dc_error_t *err);
    void *save_ctx;
    bool progress; /* a progress line per table on the terminal */
    /* The sink reads UTC_DATETIME values from their instant only (dc_convert_value_ex). */
    bool no_date_text;
    /* Which collections to read (NULL: all). */
    bool (*include_table)(void *ctx, const char *source);
    void *include_ctx;
    /* Told of documents skipped or altered, besides the log (NULL: log only). */
    void (*warn)(void *ctx, const char *message);
    void *warn_ctx;
} dc_sync_opts_t;

/* Connects, discovers the collections and syncs them all into o->sink, updating st. */
bool dc_sync_run(const dc_sync_opts_t *o, dc_state_t *st, dc_sync_stats_t *stats, dc_error_t *err);
void dc_sync_stats_cleanup(dc_sync_stats_t *stats);

/* The collections a sync reads: the configured list (each must exist) or every collection. */
bool dc_sync_collections(dc_source_t *src, const dc_config_t *cfg, char ***names, size_t *n,
                         dc_error_t *err);

/* Logs a WARNING for each of the n collections without an index that starts with the cursor
 * field (incremental reads then scan the collection); *unindexed counts them. */
bool dc_sync_check_indexes(dc_source_t *src, const dc_config_t *cfg, char **names, size_t n,
                           size_t *unindexed, dc_error_t *err);

/* Schema inference shared with `schema`: the table a collection starts as (the seed's
 * declared columns for users and orders), and the columns and types a document adds or widens
 * (true when the table changed). */
void dc_sync_initial_table(dc_table_t *t, const char *source, const char *name);
bool dc_sync_observe(dc_table_t *t, const bson_t *doc, dc_naming_t naming);

/* Documents `schema` and serve's Schema sample per collection. */
#define DC_SCHEMA_SAMPLE 1000

/* The table a sync would create for collection source under `name`: the declared columns plus
 * those of its first DC_SCHEMA_SAMPLE documents in _id order (*t initialised here; cleaned up
 * on failure). */
bool dc_sync_infer_table(dc_source_t *src, const char *source, const char *name, dc_naming_t naming,
                         dc_table_t *t, dc_error_t *err);

#endif

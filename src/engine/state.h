/* state.h: the sync position of every table, kept in a versioned JSON document (files/state.json
 * for `sync`, the Checkpoint's state_json for `serve`). Understands the seed connector's state
 * (users_last_updated_at, ...). Saving is atomic: write, fsync, rename, fsync the folder. */
#ifndef DC_STATE_H
#define DC_STATE_H

#include <bson/bson.h>

#include "core/error.h"

#define DC_STATE_VERSION 1

typedef enum { DC_PHASE_SNAPSHOT = 0, DC_PHASE_INCREMENTAL = 1 } dc_phase_t;

typedef struct {
    char *source;       /* collection name */
    char *cursor_field; /* the field the incremental cursor is on */
    dc_phase_t phase;
    /* Snapshot: documents are read in _id order, resuming after last_id. snapshot_cursor is
     * where the incremental phase starts: the highest cursor value when the snapshot began. */
    bool has_last_id;
    bson_value_t last_id;
    bool has_snapshot_cursor;
    int64_t snapshot_cursor_ms;
    /* Incremental: changes ordered by (cursor, _id), resuming after (cursor_ms, cursor_id);
     * without cursor_id, every document at cursor_ms is read again. */
    bool has_cursor;
    int64_t cursor_ms;
    bool has_cursor_id;
    bson_value_t cursor_id;
    /* Documents whose cursor field is missing or not a date are invisible to incremental
     * reads: the full read takes them, and each sync then reads those with an _id after
     * max_id (new ones), so undated documents inserted later arrive too. undated counts the
     * ones synced. Without max_id (a state from before it, or the seed's) the next sync reads
     * every undated document once. */
    bool has_max_id;
    bson_value_t max_id;
    int64_t undated;
} dc_table_state_t;

typedef struct {
    dc_table_state_t *tables;
    size_t n, cap;
    /* `sync` keeps a copy of the state in the warehouse, committed with the rows of each
     * checkpoint, and writes the state file at most once a second. lineage (32 hex digits, set
     * when a state starts; empty for the seed's state and Fivetran's) tells which state file a
     * copy belongs to and checkpoint counts the commits: on start, a copy of the same lineage
     * that is further along than the file wins (docs/sync.md). */
    char lineage[33];
    int64_t checkpoint;
} dc_state_t;

void dc_state_init(dc_state_t *st);
void dc_state_cleanup(dc_state_t *st);

/* Reads the state file; a missing file is an empty state. A file that is not a state this
 * program understands is DC_ERR_STATE naming the path (never a silent reset). */
bool dc_state_load(const char *path, dc_state_t *st, dc_error_t *err);
/* The same from JSON text (empty text or "{}" is an empty state); origin names it. */
bool dc_state_parse(const char *json, size_t len, const char *origin, dc_state_t *st,
                    dc_error_t *err);
/* The JSON text of the state (free with bson_free). */
char *dc_state_to_json(const dc_state_t *st);
/* Replaces the file at path atomically (folders created): the new content is written to
 * path.tmp and flushed to disk before the rename, so the file is always a whole state. With
 * sync_dir, the folder is flushed too, making the rename itself durable; without it, a power
 * loss may bring back the previous state, which is safe (it is never ahead of the warehouse)
 * and saves one flush per checkpoint. */
bool dc_state_save(const char *path, const dc_state_t *st, bool sync_dir, dc_error_t *err);
/* The same with the state's JSON text. */
bool dc_state_save_json(const char *path, const char *json, bool sync_dir, dc_error_t *err);

/* Sets a new random lineage when st has none. */
void dc_state_ensure_lineage(dc_state_t *st);
/* Whether copy (the warehouse's) continues file (the state file) and is further along. */
bool dc_state_is_newer_copy(const dc_state_t *copy, const dc_state_t *file);

/* The entry for a collection, or NULL; with create, a new snapshot-phase entry. */
dc_table_state_t *dc_state_table(dc_state_t *st, const char *source, bool create);
/* Sets a value field (copying v). */
void dc_state_set_id(bson_value_t *dst, bool *has, const bson_value_t *v);
/* Forgets everything about a table (a new full read). */
void dc_state_reset_table(dc_table_state_t *t);

#endif

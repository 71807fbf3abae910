/* sink.h: the destination interface. A sink stores rows of typed values in tables, keeps the
 * table and column metadata it needs across runs, and makes everything written since the last
 * dc_sink_commit durable at the next one. Backends: sqlite (embedded warehouse). */
#ifndef DC_SINK_H
#define DC_SINK_H

#include "core/error.h"
#include "convert/types.h"

/* A destination column: its source field (the top-level key in the documents), its name in
 * the destination (after naming rules) and its type. */
typedef struct {
    char *field;
    char *name;
    dc_type_t type;
} dc_column_t;

/* A destination table: the collection it comes from, its destination name, and its columns.
 * Column 0 is always the primary key _id. The sink adds _fivetran_synced and
 * _fivetran_deleted itself; they are not listed here. */
typedef struct {
    char *source;
    char *name;
    dc_column_t *cols;
    size_t ncols, cap;
} dc_table_t;

void dc_table_init(dc_table_t *t, const char *source, const char *name);
void dc_table_cleanup(dc_table_t *t);
/* Appends a column (copies the strings); returns its index. */
size_t dc_table_add_column(dc_table_t *t, const char *field, const char *name, dc_type_t type);
/* The index of the column for source field, or -1. */
long dc_table_find_field(const dc_table_t *t, const char *field);
/* The index of the column named name, or -1. */
long dc_table_find_name(const dc_table_t *t, const char *name);

typedef struct dc_sink dc_sink_t;

/* Opens a destination from its spec, e.g. "sqlite:files/warehouse.db" (folders created).
 * NULL with err on failure. */
dc_sink_t *dc_sink_open(const char *spec, dc_error_t *err);
/* Commits what is pending and closes; NULL does nothing. */
void dc_sink_close(dc_sink_t *s);

/* The table (and its columns, with their types) recorded for source collection `source` by
 * an earlier run: returns true and fills *t (initialised here). Returns false with
 * err->domain DC_ERR_NONE when there is none, or with err set on an error; *t is then zeroed
 * (dc_table_cleanup on it is safe). */
bool dc_sink_load_table(dc_sink_t *s, const char *source, dc_table_t *t, dc_error_t *err);
/* The destination names already used by tables of other collections (for collision-free
 * naming): calls fn for each recorded (source, name). */
bool dc_sink_each_table(dc_sink_t *s, void (*fn)(const char *source, const char *name, void *ctx),
                        void *ctx, dc_error_t *err);

/* Makes the destination table match t: creates it, adds missing columns, and migrates columns
 * whose type changed (existing values converted to the new type). Idempotent. */
bool dc_sink_apply_table(dc_sink_t *s, const dc_table_t *t, dc_error_t *err);

/* Replaces the row whose _id is values[0] with values[0..t->ncols) (absent fields are
 * DC_TYPE_NULL values), setting _fivetran_synced to now and _fivetran_deleted to false. The
 * table must have been applied with these columns. */
bool dc_sink_upsert(dc_sink_t *s, const dc_table_t *t, const dc_value_t *values, dc_error_t *err);

/* Makes every write since the last commit durable (fsync'd) before returning. A backend that
 * keeps state (sqlite) stores state, the sync state's JSON text, in the same transaction, so
 * that the rows it holds and the state it holds always agree, even after a crash; NULL keeps the
 * stored state as is. Others ignore state. */
bool dc_sink_commit(dc_sink_t *s, const char *state, dc_error_t *err);
/* The state stored by the last commit that had one: *state (free with free) or NULL when the
 * destination holds none or keeps no state. */
bool dc_sink_load_state(dc_sink_t *s, char **state, dc_error_t *err);

#endif

/* sqlite.c: the embedded SQLite warehouse (Fivetran's local tester layout, docs/destinations.md):
 * one WITHOUT ROWID table per collection, metadata tables for names and types, type migrations
 * that convert stored values exactly. No BSON, no engine state; no per-row allocation or SQL. */
#include "sink/sqlite.h"
#include "core/mem.h"
#include "convert/convert.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sqlite3.h>

#include "core/buf.h"
#include "core/log.h"
#include "sink/walckpt.h"

#define META_TABLES  "\"_docdb_connector_tables\""
#define META_COLUMNS "\"_docdb_connector_columns\""
#define META_STATE   "\"_docdb_connector_state\""
#define COL_SYNCED   "\"_fivetran_synced\""
#define COL_DELETED  "\"_fivetran_deleted\""
#define FN_REAL_TEXT "docdb_connector_real_text"
#define FN_REAL_JSON "docdb_connector_real_json"
#define FN_BASE64    "docdb_connector_base64"
#define SAVEPOINT    "docdb_connector_apply"
#define BUSY_MS      10000

/* The upsert statement of one table, prepared for one column list. */
typedef struct {
    char *name;           /* the destination table */
    sqlite3_stmt *upsert; /* NULL until prepared, and after the table's schema changed */
    size_t ncols;
    char **cols; /* the column names and types the statement was prepared for */
    dc_type_t *types;
    /* The table object last found to match (cleared by every apply): upserts of the same
     * table object skip comparing every column name again. */
    const dc_table_t *checked;
} cached_t;

typedef struct {
    struct dc_sink base;
    char *path;
    sqlite3 *db;
    sqlite3_stmt *begin, *commit, *save_state;
    cached_t *cache;
    size_t ncache, capcache, last;
    time_t synced_sec; /* the second synced[] holds, to format the date once a second */
    char synced[40];
    size_t synced_len;
    dc_walckpt_t *ckpt; /* WAL checkpoints beside the writer, or NULL */
    dc_buf_t sql;       /* SQL text being built (schema changes only) */
    dc_buf_t fnbuf;     /* results of the custom SQL functions */
} sq_t;

/* DC_ERR_SINK "sqlite 'PATH': <what>: <sqlite3_errmsg>"; returns false. */
static bool fail(sq_t *s, dc_error_t *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool
fail(sq_t *s, dc_error_t *err, const char *fmt, ...)
{
    char what[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return dc_error_set(err, DC_ERR_SINK, "sqlite '%s': %s: %s", s->path, what,
                        sqlite3_errmsg(s->db));
}

static bool
exec(sq_t *s, const char *sql, const char *what, dc_error_t *err)
{
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return fail(s, err, "%s", what);
    return true;
}

static bool
prepare(sq_t *s, const char *sql, sqlite3_stmt **st, const char *what, dc_error_t *err)
{
    if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK)
        return fail(s, err, "%s", what);
    return true;
}

/* Runs a statement that returns no rows, and resets it. */
static bool
step_once(sq_t *s, sqlite3_stmt *st, const char *what, dc_error_t *err)
{
    bool ok = sqlite3_step(st) == SQLITE_DONE || fail(s, err, "%s", what);
    sqlite3_reset(st);
    return ok;
}

static const char *
col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *p = sqlite3_column_text(st, i);
    return p ? (const char *)p : "";
}

/* "name" with embedded quotes doubled: any name is a valid identifier this way. */
static void
append_ident(dc_buf_t *b, const char *name)
{
    dc_buf_append_char(b, '"');
    for (const char *p = name; *p; p++) {
        if (*p == '"')
            dc_buf_append_char(b, '"');
        dc_buf_append_char(b, *p);
    }
    dc_buf_append_char(b, '"');
}

/* ---- Types ------------------------------------------------------------------------------- */

static bool
is_int(dc_type_t t)
{
    return t == DC_TYPE_SHORT || t == DC_TYPE_INT || t == DC_TYPE_LONG;
}

static bool
is_real(dc_type_t t)
{
    return t == DC_TYPE_FLOAT || t == DC_TYPE_DOUBLE;
}

/* Stored as TEXT, and not JSON. */
static bool
is_text(dc_type_t t)
{
    return t == DC_TYPE_STRING || t == DC_TYPE_DECIMAL || t == DC_TYPE_UTC_DATETIME ||
           t == DC_TYPE_NAIVE_DATE || t == DC_TYPE_NAIVE_DATETIME || t == DC_TYPE_XML;
}

/* The declared SQLite type of a column of type t ("" for none: only nulls seen). */
static const char *
decl_type(dc_type_t t)
{
    switch (t) {
    case DC_TYPE_NULL:
        return "";
    case DC_TYPE_BOOLEAN:
    case DC_TYPE_SHORT:
    case DC_TYPE_INT:
    case DC_TYPE_LONG:
        return "INTEGER";
    case DC_TYPE_FLOAT:
    case DC_TYPE_DOUBLE:
        return "REAL";
    case DC_TYPE_BINARY:
        return "BLOB";
    case DC_TYPE_DECIMAL:
    case DC_TYPE_NAIVE_DATE:
    case DC_TYPE_NAIVE_DATETIME:
    case DC_TYPE_UTC_DATETIME:
    case DC_TYPE_XML:
    case DC_TYPE_STRING:
    case DC_TYPE_JSON:
        return "TEXT";
    }
    return "TEXT";
}

typedef enum { CONV_NONE, CONV_EXPR, CONV_UNSUPPORTED } conv_t;

/* The SQL expression ('@' stands for the quoted column) that turns a stored value of type
 * `from` into the value a row converted as `to` would have had; NULL stays NULL. NULL when
 * there is no exact conversion (narrowing, or types dc_type_join never joins that way). */
static const char *
conversion_template(dc_type_t from, dc_type_t to)
{
    if (from == to || from == DC_TYPE_NULL)
        return "@";
    if (to == DC_TYPE_JSON) {
        if (is_text(from))
            return "CASE WHEN @ IS NULL THEN NULL ELSE json_quote(@) END";
        if (is_int(from))
            return "CAST(@ AS TEXT)";
        if (from == DC_TYPE_BOOLEAN)
            return "CASE WHEN @ IS NULL THEN NULL WHEN @ THEN 'true' ELSE 'false' END";
        if (is_real(from))
            return FN_REAL_JSON "(@)";
        if (from == DC_TYPE_BINARY)
            return "CASE WHEN @ IS NULL THEN NULL ELSE json_quote(" FN_BASE64 "(@)) END";
        return NULL;
    }
    if (to == DC_TYPE_DECIMAL) {
        if (is_int(from))
            return "CAST(@ AS TEXT)";
        if (is_real(from))
            return FN_REAL_TEXT "(@)";
        return NULL;
    }
    if (to == DC_TYPE_DOUBLE) {
        if (is_int(from))
            return "CAST(@ AS REAL)";
        if (from == DC_TYPE_FLOAT)
            return "@";
        return NULL;
    }
    if (to == DC_TYPE_FLOAT)
        return from == DC_TYPE_SHORT ? "CAST(@ AS REAL)" : NULL;
    if (is_int(to) && is_int(from) && from < to) /* SHORT < INT < LONG */
        return "@";
    return NULL;
}

static conv_t
conversion(dc_type_t from, dc_type_t to)
{
    const char *tmpl = conversion_template(from, to);
    if (!tmpl)
        return CONV_UNSUPPORTED;
    return strcmp(tmpl, "@") == 0 ? CONV_NONE : CONV_EXPR;
}

static void
append_conversion(dc_buf_t *b, const char *column, dc_type_t from, dc_type_t to)
{
    for (const char *p = conversion_template(from, to); *p; p++) {
        if (*p == '@')
            append_ident(b, column);
        else
            dc_buf_append_char(b, *p);
    }
}

/* ---- Custom SQL functions for migrations ------------------------------------------------- */

/* Numbers as exact text, the way the converter writes new rows (so migrated and new rows
 * agree): integers as is, reals as DECIMAL text or JSON (convert.h). */
static void
number_text(sqlite3_context *ctx, sqlite3_value *v, bool json)
{
    sq_t *s = sqlite3_user_data(ctx);
    dc_buf_reset(&s->fnbuf);
    switch (sqlite3_value_type(v)) {
    case SQLITE_NULL:
        sqlite3_result_null(ctx);
        return;
    case SQLITE_INTEGER:
        dc_buf_printf(&s->fnbuf, "%lld", (long long)sqlite3_value_int64(v));
        break;
    case SQLITE_FLOAT:
        if (json)
            dc_convert_double_json(&s->fnbuf, sqlite3_value_double(v));
        else
            dc_convert_double_decimal(&s->fnbuf, sqlite3_value_double(v));
        break;
    default:
        sqlite3_result_value(ctx, v);
        return;
    }
    sqlite3_result_text(ctx, s->fnbuf.data, (int)s->fnbuf.len, SQLITE_TRANSIENT);
}

static void
fn_real_text(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    number_text(ctx, argv[0], false);
}

static void
fn_real_json(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    number_text(ctx, argv[0], true);
}

static void
fn_base64(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    sq_t *s = sqlite3_user_data(ctx);
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
        sqlite3_result_null(ctx);
        return;
    }
    const uint8_t *p = sqlite3_value_blob(argv[0]);
    size_t n = (size_t)sqlite3_value_bytes(argv[0]);
    dc_buf_reset(&s->fnbuf);
    dc_buf_append_base64(&s->fnbuf, p, p ? n : 0);
    sqlite3_result_text64(ctx, s->fnbuf.data ? s->fnbuf.data : "", s->fnbuf.len, SQLITE_TRANSIENT,
                          SQLITE_UTF8);
}

/* ---- Metadata ---------------------------------------------------------------------------- */

/* The table recorded for source: 1 and *rec filled (initialised here), 0 when there is none,
 * -1 on error (rec zeroed in both cases). */
static int
load_recorded(sq_t *s, const char *source, dc_table_t *rec, dc_error_t *err)
{
    sqlite3_stmt *st = NULL;
    int found = -1, rc;
    memset(rec, 0, sizeof *rec);
    if (!prepare(s, "SELECT name FROM " META_TABLES " WHERE source = ?1", &st,
                 "cannot read table metadata", err))
        return -1;
    sqlite3_bind_text(st, 1, source, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        found = 0;
        goto done;
    }
    if (rc != SQLITE_ROW) {
        fail(s, err, "cannot read table metadata of collection '%s'", source);
        goto done;
    }
    dc_table_init(rec, source, col_text(st, 0));
    sqlite3_finalize(st);
    st = NULL;
    if (!prepare(
            s, "SELECT field, name, type FROM " META_COLUMNS " WHERE source = ?1 ORDER BY position",
            &st, "cannot read column metadata", err))
        goto done;
    sqlite3_bind_text(st, 1, source, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        dc_type_t type;
        if (!dc_type_from_name(col_text(st, 2), &type)) {
            dc_error_set(err, DC_ERR_SINK,
                         "sqlite '%s': column '%s' of table '%s' has unknown type '%s'", s->path,
                         col_text(st, 1), rec->name, col_text(st, 2));
            goto done;
        }
        dc_table_add_column(rec, col_text(st, 0), col_text(st, 1), type);
    }
    if (rc != SQLITE_DONE) {
        fail(s, err, "cannot read column metadata of collection '%s'", source);
        goto done;
    }
    found = 1;
done:
    sqlite3_finalize(st);
    if (found < 0)
        dc_table_cleanup(rec);
    return found;
}

/* Records columns [from, t->ncols) of t at their positions. */
static bool
insert_columns(sq_t *s, const dc_table_t *t, size_t from, dc_error_t *err)
{
    sqlite3_stmt *st = NULL;
    bool ok = prepare(s,
                      "INSERT INTO " META_COLUMNS "(source, position, field, name, type)"
                      " VALUES (?1, ?2, ?3, ?4, ?5)",
                      &st, "cannot record columns", err);
    for (size_t i = from; ok && i < t->ncols; i++) {
        sqlite3_bind_text(st, 1, t->source, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)i);
        sqlite3_bind_text(st, 3, t->cols[i].field, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, t->cols[i].name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, dc_type_name(t->cols[i].type), -1, SQLITE_STATIC);
        ok = step_once(s, st, "cannot record a column", err);
    }
    sqlite3_finalize(st);
    return ok;
}

static bool
update_column_type(sq_t *s, const char *source, const dc_column_t *c, dc_error_t *err)
{
    sqlite3_stmt *st = NULL;
    if (!prepare(s, "UPDATE " META_COLUMNS " SET type = ?3 WHERE source = ?1 AND field = ?2", &st,
                 "cannot record a column type", err))
        return false;
    sqlite3_bind_text(st, 1, source, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, c->field, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, dc_type_name(c->type), -1, SQLITE_STATIC);
    bool ok = step_once(s, st, "cannot record a column type", err);
    sqlite3_finalize(st);
    return ok;
}

/* ---- Statement cache --------------------------------------------------------------------- */

static void
uncache(cached_t *c)
{
    sqlite3_finalize(c->upsert);
    c->checked = NULL;
    c->upsert = NULL;
    for (size_t i = 0; i < c->ncols; i++)
        free(c->cols[i]);
    free(c->cols);
    free(c->types);
    c->cols = NULL;
    c->types = NULL;
    c->ncols = 0;
}

static cached_t *
cache_entry(sq_t *s, const char *name)
{
    if (s->last < s->ncache && strcmp(s->cache[s->last].name, name) == 0)
        return &s->cache[s->last];
    for (size_t i = 0; i < s->ncache; i++) {
        if (strcmp(s->cache[i].name, name) == 0) {
            s->last = i;
            return &s->cache[i];
        }
    }
    if (s->ncache == s->capcache) {
        s->capcache = s->capcache ? 2 * s->capcache : 8;
        s->cache = dc_xrealloc(s->cache, s->capcache * sizeof *s->cache);
    }
    cached_t *c = &s->cache[s->ncache];
    memset(c, 0, sizeof *c);
    c->name = dc_xstrdup(name);
    s->last = s->ncache++;
    return c;
}

/* Drops the statement of table `name` (before its schema changes). */
static void
drop_cached(sq_t *s, const char *name)
{
    for (size_t i = 0; i < s->ncache; i++) {
        if (strcmp(s->cache[i].name, name) == 0)
            uncache(&s->cache[i]);
    }
}

static bool
same_columns(const cached_t *c, const dc_table_t *t)
{
    if (!c->upsert || c->ncols != t->ncols)
        return false;
    for (size_t i = 0; i < t->ncols; i++) {
        if (c->types[i] != t->cols[i].type || strcmp(c->cols[i], t->cols[i].name) != 0)
            return false;
    }
    return true;
}

/* Prepares the upsert of t's columns into c, after checking that the table was applied with
 * them (same names and types as recorded). */
static bool
prepare_upsert(sq_t *s, cached_t *c, const dc_table_t *t, dc_error_t *err)
{
    dc_table_t rec;
    bool ok = false;
    uncache(c);
    int found = load_recorded(s, t->source, &rec, err);
    if (found < 0)
        return false;
    if (!found || strcmp(rec.name, t->name) != 0) {
        dc_error_set(err, DC_ERR_INTERNAL,
                     "sqlite '%s': table '%s' of collection '%s' was not applied before upsert",
                     s->path, t->name, t->source);
        goto done;
    }
    for (size_t i = 0; i < t->ncols; i++) {
        const dc_column_t *col = &t->cols[i];
        long j = dc_table_find_field(&rec, col->field);
        if (j < 0 || strcmp(rec.cols[j].name, col->name) != 0 || rec.cols[j].type != col->type) {
            dc_error_set(err, DC_ERR_INTERNAL,
                         "sqlite '%s': column '%s' (%s) of table '%s' was not applied before "
                         "upsert",
                         s->path, col->name, dc_type_name(col->type), t->name);
            goto done;
        }
    }
    dc_buf_reset(&s->sql);
    dc_buf_append_str(&s->sql, "INSERT OR REPLACE INTO ");
    append_ident(&s->sql, t->name);
    dc_buf_append_str(&s->sql, " (");
    for (size_t i = 0; i < t->ncols; i++) {
        append_ident(&s->sql, t->cols[i].name);
        dc_buf_append_str(&s->sql, ", ");
    }
    dc_buf_append_str(&s->sql, COL_SYNCED ", " COL_DELETED ") VALUES (");
    for (size_t i = 0; i < t->ncols; i++)
        dc_buf_append_str(&s->sql, "?, ");
    dc_buf_append_str(&s->sql, "?, 0)");
    if (sqlite3_prepare_v3(s->db, s->sql.data, -1, SQLITE_PREPARE_PERSISTENT, &c->upsert, NULL) !=
        SQLITE_OK) {
        fail(s, err, "cannot prepare the upsert into table '%s'", t->name);
        goto done;
    }
    c->cols = dc_xrealloc(NULL, (t->ncols ? t->ncols : 1) * sizeof *c->cols);
    c->types = dc_xrealloc(NULL, (t->ncols ? t->ncols : 1) * sizeof *c->types);
    for (size_t i = 0; i < t->ncols; i++) {
        c->cols[i] = dc_xstrdup(t->cols[i].name);
        c->types[i] = t->cols[i].type;
    }
    c->ncols = t->ncols;
    ok = true;
done:
    dc_table_cleanup(&rec);
    return ok;
}

/* ---- Schema ------------------------------------------------------------------------------ */

/* Formats now as "YYYY-MM-DDTHH:MM:SS.mmmZ" into s->synced (the date part once a second). */
static void
format_synced(sq_t *s)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != s->synced_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        s->synced_len = strftime(s->synced, sizeof s->synced - 6, "%Y-%m-%dT%H:%M:%S", &tm);
        s->synced_sec = ts.tv_sec;
    }
    int ms = (int)(ts.tv_nsec / 1000000);
    char *p = s->synced + s->synced_len;
    p[0] = '.';
    p[1] = (char)('0' + ms / 100);
    p[2] = (char)('0' + ms / 10 % 10);
    p[3] = (char)('0' + ms % 10);
    p[4] = 'Z';
    p[5] = '\0';
}

static bool
ensure_txn(sq_t *s, dc_error_t *err)
{
    if (!sqlite3_get_autocommit(s->db))
        return true;
    /* The rows of one transaction share their _fivetran_synced: the clock is read once per
     * checkpoint, not once per row. */
    format_synced(s);
    return step_once(s, s->begin, "cannot begin a transaction", err);
}

/* CREATE TABLE "name" (columns of t, then the system columns) WITHOUT ROWID. */
static void
append_create(dc_buf_t *b, const char *name, const dc_table_t *t)
{
    dc_buf_append_str(b, "CREATE TABLE ");
    append_ident(b, name);
    dc_buf_append_str(b, " (");
    for (size_t i = 0; i < t->ncols; i++) {
        append_ident(b, t->cols[i].name);
        if (i == 0) {
            dc_buf_append_str(b, " TEXT PRIMARY KEY NOT NULL");
        } else if (*decl_type(t->cols[i].type)) {
            dc_buf_append_char(b, ' ');
            dc_buf_append_str(b, decl_type(t->cols[i].type));
        }
        dc_buf_append_str(b, ", ");
    }
    dc_buf_append_str(b, COL_SYNCED " TEXT, " COL_DELETED " INTEGER) WITHOUT ROWID");
}

static bool
create_table(sq_t *s, const dc_table_t *t, dc_error_t *err)
{
    sqlite3_stmt *st = NULL;
    bool ok = false;
    int rc;
    if (!prepare(s, "SELECT source FROM " META_TABLES " WHERE name = ?1", &st,
                 "cannot read table metadata", err))
        return false;
    sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        dc_error_set(err, DC_ERR_SINK,
                     "sqlite '%s': table name '%s' of collection '%s' is already used by "
                     "collection '%s'",
                     s->path, t->name, t->source, col_text(st, 0));
        goto done;
    }
    if (rc != SQLITE_DONE) {
        fail(s, err, "cannot read table metadata");
        goto done;
    }
    sqlite3_finalize(st);
    st = NULL;

    drop_cached(s, t->name);
    dc_buf_reset(&s->sql);
    append_create(&s->sql, t->name, t);
    if (sqlite3_exec(s->db, s->sql.data, NULL, NULL, NULL) != SQLITE_OK) {
        fail(s, err, "cannot create table '%s'", t->name);
        goto done;
    }
    if (!prepare(s, "INSERT INTO " META_TABLES "(source, name) VALUES (?1, ?2)", &st,
                 "cannot record a table", err))
        goto done;
    sqlite3_bind_text(st, 1, t->source, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, t->name, -1, SQLITE_STATIC);
    ok = step_once(s, st, "cannot record a table", err) && insert_columns(s, t, 0, err);
done:
    sqlite3_finalize(st);
    return ok;
}

/* Rewrites table `name` (whose columns are rec's) with target's columns and declared types:
 * a new table, the rows copied with each changed column converted, the old one dropped. */
static bool
rebuild_table(sq_t *s, const dc_table_t *rec, const dc_table_t *target, dc_error_t *err)
{
    dc_buf_t tmp;
    bool ok = false;
    dc_buf_init(&tmp);
    dc_buf_printf(&tmp, "%s__new", rec->name);

    dc_buf_reset(&s->sql);
    append_create(&s->sql, tmp.data, target);
    if (sqlite3_exec(s->db, s->sql.data, NULL, NULL, NULL) != SQLITE_OK) {
        fail(s, err, "cannot create table '%s'", tmp.data);
        goto done;
    }

    dc_buf_reset(&s->sql);
    dc_buf_append_str(&s->sql, "INSERT INTO ");
    append_ident(&s->sql, tmp.data);
    dc_buf_append_str(&s->sql, " (");
    for (size_t i = 0; i < rec->ncols; i++) {
        append_ident(&s->sql, rec->cols[i].name);
        dc_buf_append_str(&s->sql, ", ");
    }
    dc_buf_append_str(&s->sql, COL_SYNCED ", " COL_DELETED ") SELECT ");
    for (size_t i = 0; i < rec->ncols; i++) {
        append_conversion(&s->sql, rec->cols[i].name, rec->cols[i].type, target->cols[i].type);
        dc_buf_append_str(&s->sql, ", ");
    }
    dc_buf_append_str(&s->sql, COL_SYNCED ", " COL_DELETED " FROM ");
    append_ident(&s->sql, rec->name);
    if (sqlite3_exec(s->db, s->sql.data, NULL, NULL, NULL) != SQLITE_OK) {
        fail(s, err, "cannot copy table '%s' to convert its columns", rec->name);
        goto done;
    }

    dc_buf_reset(&s->sql);
    dc_buf_append_str(&s->sql, "DROP TABLE ");
    append_ident(&s->sql, rec->name);
    if (sqlite3_exec(s->db, s->sql.data, NULL, NULL, NULL) != SQLITE_OK) {
        fail(s, err, "cannot drop table '%s' after converting it", rec->name);
        goto done;
    }

    dc_buf_reset(&s->sql);
    dc_buf_append_str(&s->sql, "ALTER TABLE ");
    append_ident(&s->sql, tmp.data);
    dc_buf_append_str(&s->sql, " RENAME TO ");
    append_ident(&s->sql, rec->name);
    if (sqlite3_exec(s->db, s->sql.data, NULL, NULL, NULL) != SQLITE_OK) {
        fail(s, err, "cannot rename table '%s' to '%s'", tmp.data, rec->name);
        goto done;
    }
    ok = true;
done:
    dc_buf_cleanup(&tmp);
    return ok;
}

/* Adds columns [rec->ncols, target->ncols) and converts, in place, the changed columns whose
 * declared type stays the same (e.g. STRING -> JSON, both TEXT). */
static bool
alter_in_place(sq_t *s, const dc_table_t *rec, const dc_table_t *target, dc_error_t *err)
{
    for (size_t i = rec->ncols; i < target->ncols; i++) {
        dc_buf_reset(&s->sql);
        dc_buf_append_str(&s->sql, "ALTER TABLE ");
        append_ident(&s->sql, rec->name);
        dc_buf_append_str(&s->sql, " ADD COLUMN ");
        append_ident(&s->sql, target->cols[i].name);
        if (*decl_type(target->cols[i].type)) {
            dc_buf_append_char(&s->sql, ' ');
            dc_buf_append_str(&s->sql, decl_type(target->cols[i].type));
        }
        if (sqlite3_exec(s->db, s->sql.data, NULL, NULL, NULL) != SQLITE_OK)
            return fail(s, err, "cannot add column '%s' to table '%s'", target->cols[i].name,
                        rec->name);
    }

    bool any = false;
    dc_buf_reset(&s->sql);
    dc_buf_append_str(&s->sql, "UPDATE ");
    append_ident(&s->sql, rec->name);
    dc_buf_append_str(&s->sql, " SET ");
    for (size_t i = 0; i < rec->ncols; i++) {
        if (conversion(rec->cols[i].type, target->cols[i].type) != CONV_EXPR)
            continue;
        if (any)
            dc_buf_append_str(&s->sql, ", ");
        append_ident(&s->sql, rec->cols[i].name);
        dc_buf_append_str(&s->sql, " = ");
        append_conversion(&s->sql, rec->cols[i].name, rec->cols[i].type, target->cols[i].type);
        any = true;
    }
    if (any && sqlite3_exec(s->db, s->sql.data, NULL, NULL, NULL) != SQLITE_OK)
        return fail(s, err, "cannot convert columns of table '%s'", rec->name);
    return true;
}

/* Brings the recorded table rec to t: new columns, changed types. */
/* 1 when table `name` has no row, 0 when it has one, -1 on an error. */
static int
table_is_empty(sq_t *s, const char *name, dc_error_t *err)
{
    sqlite3_stmt *st = NULL;
    dc_buf_reset(&s->sql);
    dc_buf_append_str(&s->sql, "SELECT 1 FROM ");
    append_ident(&s->sql, name);
    dc_buf_append_str(&s->sql, " LIMIT 1");
    if (!prepare(s, s->sql.data, &st, "cannot read a table", err))
        return -1;
    int rc = sqlite3_step(st);
    int empty = rc == SQLITE_DONE ? 1 : rc == SQLITE_ROW ? 0 : -1;
    if (empty < 0)
        fail(s, err, "cannot read table '%s'", name);
    sqlite3_finalize(st);
    return empty;
}

static bool
alter_table(sq_t *s, const dc_table_t *t, const dc_table_t *rec, dc_error_t *err)
{
    dc_table_t target;
    bool ok = false, changed = false, rebuild = false;

    if (strcmp(rec->name, t->name) != 0)
        return dc_error_set(err, DC_ERR_SINK,
                            "sqlite '%s': collection '%s' is recorded as table '%s', not '%s' "
                            "(destination names do not change once recorded)",
                            s->path, t->source, rec->name, t->name);

    /* target: the recorded columns with their new types, then the new columns. */
    dc_table_init(&target, rec->source, rec->name);
    for (size_t i = 0; i < rec->ncols; i++)
        dc_table_add_column(&target, rec->cols[i].field, rec->cols[i].name, rec->cols[i].type);
    for (size_t i = 0; i < t->ncols; i++) {
        const dc_column_t *c = &t->cols[i];
        long j = dc_table_find_field(rec, c->field);
        if (j < 0) {
            dc_table_add_column(&target, c->field, c->name, c->type);
            changed = true;
            continue;
        }
        const dc_column_t *old = &rec->cols[j];
        if (strcmp(old->name, c->name) != 0) {
            dc_error_set(err, DC_ERR_SINK,
                         "sqlite '%s': field '%s' of table '%s' is recorded as column '%s', not "
                         "'%s' (destination names do not change once recorded)",
                         s->path, c->field, t->name, old->name, c->name);
            goto done;
        }
        if (old->type == c->type)
            continue;
        if (conversion(old->type, c->type) == CONV_UNSUPPORTED) {
            dc_error_set(err, DC_ERR_INTERNAL,
                         "sqlite '%s': column '%s' of table '%s' cannot change from %s to %s",
                         s->path, c->name, t->name, dc_type_name(old->type), dc_type_name(c->type));
            goto done;
        }
        target.cols[j].type = c->type;
        changed = true;
        if (strcmp(decl_type(old->type), decl_type(c->type)) != 0)
            rebuild = true;
    }
    if (!changed) {
        ok = true;
        goto done;
    }
    /* New columns go after the system columns (SQLite only appends) unless the table is
     * still empty: then it is created again, cheaply, with them in order (a first sync adds
     * the first document's fields to the table made before it). */
    if (!rebuild && target.ncols > rec->ncols) {
        int empty = table_is_empty(s, t->name, err);
        if (empty < 0)
            goto done;
        rebuild = empty;
    }

    drop_cached(s, t->name);
    if (rebuild ? !rebuild_table(s, rec, &target, err) : !alter_in_place(s, rec, &target, err))
        goto done;
    for (size_t i = 0; i < rec->ncols; i++) {
        if (target.cols[i].type != rec->cols[i].type &&
            !update_column_type(s, t->source, &target.cols[i], err))
            goto done;
    }
    ok = insert_columns(s, &target, rec->ncols, err);
done:
    dc_table_cleanup(&target);
    return ok;
}

/* ---- The backend ------------------------------------------------------------------------- */

static bool
sq_apply_table(dc_sink_t *base, const dc_table_t *t, dc_error_t *err)
{
    sq_t *s = (sq_t *)base;
    dc_table_t rec;
    bool ok;

    /* The table may have changed in place since the last upsert: compare again next time. */
    for (size_t i = 0; i < s->ncache; i++)
        s->cache[i].checked = NULL;
    if (t->ncols == 0 || t->cols[0].type != DC_TYPE_STRING)
        return dc_error_set(err, DC_ERR_INTERNAL,
                            "sqlite '%s': table '%s' does not start with a STRING _id column",
                            s->path, t->name);
    if (!ensure_txn(s, err))
        return false;
    /* A savepoint, so that a failed change leaves neither half a schema nor lost rows. */
    if (!exec(s, "SAVEPOINT " SAVEPOINT, "cannot begin a schema change", err))
        return false;
    int found = load_recorded(s, t->source, &rec, err);
    if (found < 0)
        ok = false;
    else if (found == 0)
        ok = create_table(s, t, err);
    else
        ok = alter_table(s, t, &rec, err);
    dc_table_cleanup(&rec);
    if (!ok) {
        /* Errors already set; a failure here (e.g. the transaction was rolled back by SQLite
         * itself) changes nothing for the caller. */
        sqlite3_exec(s->db, "ROLLBACK TO " SAVEPOINT "; RELEASE " SAVEPOINT, NULL, NULL, NULL);
        drop_cached(s, t->name);
        return false;
    }
    return exec(s, "RELEASE " SAVEPOINT, "cannot finish a schema change", err);
}

static bool
sq_upsert(dc_sink_t *base, const dc_table_t *t, const dc_value_t *values, dc_error_t *err)
{
    sq_t *s = (sq_t *)base;
    if (!ensure_txn(s, err))
        return false;
    /* The same table object as the last upsert (every apply clears checked): no lookup. */
    cached_t *c = s->last < s->ncache && s->cache[s->last].checked == t ? &s->cache[s->last]
                                                                        : cache_entry(s, t->name);
    if (c->checked != t || c->ncols != t->ncols || !c->upsert) {
        if (!same_columns(c, t) && !prepare_upsert(s, c, t, err))
            return false;
        c->checked = t;
    }

    sqlite3_stmt *st = c->upsert;
    int rc = SQLITE_OK;
    for (size_t i = 0; i < t->ncols && rc == SQLITE_OK; i++) {
        const dc_value_t *v = &values[i];
        int idx = (int)i + 1;
        if (v->type != c->types[i] && v->type != DC_TYPE_NULL)
            return dc_error_set(err, DC_ERR_INTERNAL,
                                "sqlite '%s': table '%s' column '%s' is %s, the value is %s",
                                s->path, t->name, t->cols[i].name, dc_type_name(c->types[i]),
                                dc_type_name(v->type));
        switch (v->type) {
        case DC_TYPE_NULL:
            rc = sqlite3_bind_null(st, idx);
            break;
        case DC_TYPE_BOOLEAN:
            rc = sqlite3_bind_int(st, idx, v->v.b ? 1 : 0);
            break;
        case DC_TYPE_SHORT:
        case DC_TYPE_INT:
        case DC_TYPE_LONG:
            rc = sqlite3_bind_int64(st, idx, v->v.i);
            break;
        case DC_TYPE_FLOAT:
        case DC_TYPE_DOUBLE:
            rc = sqlite3_bind_double(st, idx, v->v.d);
            break;
        case DC_TYPE_BINARY:
            /* A NULL pointer would bind SQL NULL: an empty binary is an empty blob. */
            rc = sqlite3_bind_blob64(st, idx, v->v.s.ptr ? v->v.s.ptr : "", v->v.s.len,
                                     SQLITE_STATIC);
            break;
        case DC_TYPE_DECIMAL:
        case DC_TYPE_NAIVE_DATE:
        case DC_TYPE_NAIVE_DATETIME:
        case DC_TYPE_UTC_DATETIME:
        case DC_TYPE_XML:
        case DC_TYPE_STRING:
        case DC_TYPE_JSON:
            rc = sqlite3_bind_text64(st, idx, v->v.s.ptr ? v->v.s.ptr : "", v->v.s.len,
                                     SQLITE_STATIC, SQLITE_UTF8);
            break;
        }
    }
    if (rc != SQLITE_OK)
        return fail(s, err, "cannot bind a value for table '%s'", t->name);
    sqlite3_bind_text(st, (int)t->ncols + 1, s->synced, (int)s->synced_len + 5, SQLITE_STATIC);
    bool ok = sqlite3_step(st) == SQLITE_DONE || fail(s, err, "cannot upsert into '%s'", t->name);
    sqlite3_reset(st);
    return ok;
}

static bool
sq_commit(dc_sink_t *base, const char *state, dc_error_t *err)
{
    sq_t *s = (sq_t *)base;
    if (state) {
        /* In the rows' transaction: both are durable at the COMMIT, or neither. */
        if (!ensure_txn(s, err))
            return false;
        sqlite3_bind_text(s->save_state, 1, state, -1, SQLITE_STATIC);
        bool ok = step_once(s, s->save_state, "cannot store the state", err);
        sqlite3_clear_bindings(s->save_state);
        if (!ok)
            return false;
    }
    if (sqlite3_get_autocommit(s->db))
        return true;
    return step_once(s, s->commit, "cannot commit", err);
}

static bool
sq_load_state(dc_sink_t *base, char **state, dc_error_t *err)
{
    sq_t *s = (sq_t *)base;
    sqlite3_stmt *st = NULL;
    if (!prepare(s, "SELECT state FROM " META_STATE " WHERE id = 1", &st, "cannot read the state",
                 err))
        return false;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *state = dc_xstrdup(col_text(st, 0));
    bool ok = rc == SQLITE_ROW || rc == SQLITE_DONE || fail(s, err, "cannot read the state");
    sqlite3_finalize(st);
    return ok;
}

static bool
sq_load_table(dc_sink_t *base, const char *source, dc_table_t *t, dc_error_t *err)
{
    int found = load_recorded((sq_t *)base, source, t, err);
    if (found == 0 && err) {
        err->domain = DC_ERR_NONE;
        err->message[0] = '\0';
    }
    return found > 0;
}

static bool
sq_each_table(dc_sink_t *base, void (*fn)(const char *source, const char *name, void *ctx),
              void *ctx, dc_error_t *err)
{
    sq_t *s = (sq_t *)base;
    sqlite3_stmt *st = NULL;
    int rc;
    if (!prepare(s, "SELECT source, name FROM " META_TABLES " ORDER BY source", &st,
                 "cannot read table metadata", err))
        return false;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        fn(col_text(st, 0), col_text(st, 1), ctx);
    bool ok = rc == SQLITE_DONE || fail(s, err, "cannot read table metadata");
    sqlite3_finalize(st);
    return ok;
}

static void
sq_free(sq_t *s)
{
    for (size_t i = 0; i < s->ncache; i++) {
        uncache(&s->cache[i]);
        free(s->cache[i].name);
    }
    free(s->cache);
    sqlite3_finalize(s->begin);
    sqlite3_finalize(s->commit);
    sqlite3_finalize(s->save_state);
    /* Before the writer closes: as the last connection, its close copies the log back and
     * removes it. */
    dc_walckpt_stop(s->ckpt);
    /* Closing rolls back a transaction still open (only after a failed commit). */
    if (s->db && sqlite3_close(s->db) != SQLITE_OK)
        dc_log(DC_LOG_WARNING, "sqlite '%s': cannot close: %s", s->path, sqlite3_errmsg(s->db));
    dc_buf_cleanup(&s->sql);
    dc_buf_cleanup(&s->fnbuf);
    free(s->path);
    free(s);
}

static void
sq_close(dc_sink_t *base)
{
    dc_error_t err;
    if (!sq_commit(base, NULL, &err))
        dc_log(DC_LOG_SEVERE, "%s (rows since the last commit are lost)", err.message);
    sq_free((sq_t *)base);
}

static const dc_sink_ops_t sq_ops = {
    .close = sq_close,
    .load_table = sq_load_table,
    .each_table = sq_each_table,
    .apply_table = sq_apply_table,
    .upsert = sq_upsert,
    .commit = sq_commit,
    .load_state = sq_load_state,
};

/* mkdir -p of the folders above the database file. */
static bool
make_parents(sq_t *s, dc_error_t *err)
{
    char *p = dc_xstrdup(s->path);
    bool ok = true;
    for (char *q = p + 1; *q && ok; q++) {
        if (*q != '/' || q[-1] == '/')
            continue;
        *q = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST)
            ok = dc_error_set(err, DC_ERR_SINK, "sqlite '%s': cannot create folder '%s': %s",
                              s->path, p, strerror(errno));
        *q = '/';
    }
    free(p);
    return ok;
}

static bool
set_journal_wal(sq_t *s, dc_error_t *err)
{
    sqlite3_stmt *st = NULL;
    if (!prepare(s, "PRAGMA journal_mode=WAL", &st, "cannot set the journal mode", err))
        return false;
    int rc = sqlite3_step(st);
    bool ok = rc == SQLITE_ROW || fail(s, err, "cannot set the journal mode");
    if (ok && strcmp(col_text(st, 0), "wal") != 0)
        dc_log(DC_LOG_WARNING, "sqlite '%s': journal mode is '%s', not WAL", s->path,
               col_text(st, 0));
    sqlite3_finalize(st);
    return ok;
}

dc_sink_t *
dc_sqlite_open(const char *path, dc_error_t *err)
{
    if (!path || !*path) {
        dc_error_set(err, DC_ERR_CONFIG, "destination 'sqlite:' needs a file path (sqlite:PATH)");
        return NULL;
    }
    sq_t *s = dc_xrealloc(NULL, sizeof *s);
    memset(s, 0, sizeof *s);
    s->base.ops = &sq_ops;
    s->path = dc_xstrdup(path);
    s->synced_sec = (time_t)-1;
    dc_buf_init(&s->sql);
    dc_buf_init(&s->fnbuf);
    if (!make_parents(s, err))
        goto fail;
    /* NOMUTEX: a sink is used by one thread at a time. */
    if (sqlite3_open_v2(path, &s->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        fail(s, err, "cannot open");
        goto fail;
    }
    sqlite3_extended_result_codes(s->db, 1);
    /* "x" is always an identifier, never a string literal that SQLite guesses. */
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_DQS_DML, 0, (int *)NULL);
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_DQS_DDL, 0, (int *)NULL);
    sqlite3_busy_timeout(s->db, BUSY_MS);
    /* WAL lets readers (the sqlite3 CLI, tests) query while a sync writes. synchronous=FULL
     * because in WAL mode NORMAL does not sync the log at commit: a commit could vanish on power
     * loss after dc_sink_commit returned and the connector wrote its state file, and that state
     * would then skip those rows forever. FULL makes every commit durable before it returns. */
    if (!set_journal_wal(s, err) ||
        !exec(s, "PRAGMA synchronous=FULL", "cannot set synchronous=FULL", err))
        goto fail;
    /* 8 MiB of page cache instead of 2: enough for the B-tree's upper levels under upserts in
     * _id order, small enough for the connector's 64 MiB memory budget (docs/performance.md). */
    if (!exec(s, "PRAGMA cache_size=-8192", "cannot set the cache size", err))
        goto fail;
    /* WAL checkpoints on a thread of their own; without one, SQLite's own in the commits. */
    s->ckpt = dc_walckpt_start(s->db, path, BUSY_MS);
    if (!exec(s,
              "CREATE TABLE IF NOT EXISTS " META_TABLES
              " (source TEXT PRIMARY KEY, name TEXT UNIQUE NOT NULL);"
              "CREATE TABLE IF NOT EXISTS " META_COLUMNS
              " (source TEXT, position INTEGER, field TEXT, name TEXT, type TEXT,"
              " PRIMARY KEY (source, field));"
              "CREATE TABLE IF NOT EXISTS " META_STATE
              " (id INTEGER PRIMARY KEY CHECK (id = 1), state TEXT NOT NULL)",
              "cannot create the metadata tables", err))
        goto fail;
    const int flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS;
    if (sqlite3_create_function_v2(s->db, FN_REAL_TEXT, 1, flags, s, fn_real_text, NULL, NULL,
                                   NULL) != SQLITE_OK ||
        sqlite3_create_function_v2(s->db, FN_REAL_JSON, 1, flags, s, fn_real_json, NULL, NULL,
                                   NULL) != SQLITE_OK ||
        sqlite3_create_function_v2(s->db, FN_BASE64, 1, flags, s, fn_base64, NULL, NULL, NULL) !=
            SQLITE_OK) {
        fail(s, err, "cannot register functions");
        goto fail;
    }
    if (!prepare(s, "BEGIN IMMEDIATE", &s->begin, "cannot prepare BEGIN", err) ||
        !prepare(s, "COMMIT", &s->commit, "cannot prepare COMMIT", err) ||
        !prepare(s, "INSERT OR REPLACE INTO " META_STATE " (id, state) VALUES (1, ?)",
                 &s->save_state, "cannot prepare the state's statement", err))
        goto fail;
    return &s->base;
fail:
    sq_free(s);
    return NULL;
}

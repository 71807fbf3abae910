/* sqlite_limit.c: the destination limit of the benchmarks. Reads the collections once and
 * converts every document into a row in memory (not timed), then times only writing those rows
 * into SQLite the fastest way we know: one prepared INSERT OR REPLACE per table into a
 * WITHOUT ROWID table, a commit every 1000 rows (the connector's checkpoint cadence), WAL and
 * synchronous=FULL (the connector's durability), WAL checkpoints on a thread of their own
 * (sink/walckpt.h, as the connector). Prints one JSON line per collection.
 *
 * With --since-ms MS, the limit of an incremental sync instead: only the documents whose
 * updated_at is MS or later, read in (updated_at, _id) order as the connector reads changes,
 * upserted into the existing tables of SQLITE_PATH (a full run's database). */
#include <mongoc/mongoc.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "convert/convert.h"
#include "engine/sync.h"
#include "sink/walckpt.h"

typedef struct {
    dc_value_t *values; /* ncols per row */
    char *text;         /* the row's text, values point into it */
} row_t;

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
die(sqlite3 *db, const char *what)
{
    fprintf(stderr, "sqlite-limit: %s: %s\n", what, db ? sqlite3_errmsg(db) : "");
    exit(1);
}

static const char *
decl(dc_type_t t)
{
    switch (t) {
    case DC_TYPE_BOOLEAN:
    case DC_TYPE_INT:
    case DC_TYPE_LONG:
        return "INTEGER";
    case DC_TYPE_DOUBLE:
        return "REAL";
    case DC_TYPE_BINARY:
        return "BLOB";
    case DC_TYPE_NULL:
        return "";
    default:
        return "TEXT";
    }
}

int
main(int argc, char **argv)
{
    int64_t since_ms = -1;
    if (argc > 2 && strcmp(argv[1], "--since-ms") == 0) {
        since_ms = strtoll(argv[2], NULL, 10);
        argc -= 2;
        argv += 2;
    }
    if (argc < 5) {
        fputs("usage: docdb-sqlite-limit [--since-ms MS] URI DATABASE SQLITE_PATH "
              "COLLECTION...\n",
              stderr);
        return 2;
    }
    mongoc_init();
    bson_error_t error;
    mongoc_uri_t *uri = mongoc_uri_new_with_error(argv[1], &error);
    if (!uri) {
        fputs("sqlite-limit: invalid URI\n", stderr);
        return 2;
    }
    mongoc_client_t *client = mongoc_client_new_from_uri(uri);
    sqlite3 *db;
    if (sqlite3_open(argv[3], &db) != SQLITE_OK)
        die(db, "open");
    sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", NULL, NULL, NULL);
    /* WAL checkpoints on their own thread, as the connector does. */
    dc_walckpt_t *ckpt = dc_walckpt_start(db, argv[3], 0);
    for (int ci = 4; ci < argc; ci++) {
        const char *name = argv[ci];
        mongoc_collection_t *coll = mongoc_client_get_collection(client, argv[2], name);
        bson_t filter = BSON_INITIALIZER;
        bson_t *opts =
            since_ms < 0
                ? BCON_NEW("batchSize", BCON_INT32(50000), "sort", "{", "_id", BCON_INT32(1), "}")
                : BCON_NEW("batchSize", BCON_INT32(50000), "sort", "{", "updated_at", BCON_INT32(1),
                           "_id", BCON_INT32(1), "}");
        if (since_ms >= 0) {
            bson_t cond;
            BSON_APPEND_DOCUMENT_BEGIN(&filter, "updated_at", &cond);
            BSON_APPEND_DATE_TIME(&cond, "$gte", since_ms);
            bson_append_document_end(&filter, &cond);
        }
        /* Pass 1: the table's columns and types, as the connector would infer them. */
        dc_table_t t;
        dc_sync_initial_table(&t, name, name);
        mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &filter, opts, NULL);
        const bson_t *doc;
        size_t n = 0;
        while (mongoc_cursor_next(cur, &doc)) {
            dc_sync_observe(&t, doc, DC_NAMING_SOURCE);
            n++;
        }
        mongoc_cursor_destroy(cur);
        /* Pass 2: every row converted, kept in memory. */
        row_t *rows = calloc(n, sizeof *rows);
        dc_buf_t buf;
        dc_convert_stats_t st = {0};
        dc_buf_init(&buf);
        cur = mongoc_collection_find_with_opts(coll, &filter, opts, NULL);
        size_t r = 0;
        while (r < n && mongoc_cursor_next(cur, &doc)) {
            dc_value_t *v = calloc(t.ncols, sizeof *v);
            bson_iter_t it;
            dc_buf_reset(&buf);
            bson_iter_init(&it, doc);
            while (bson_iter_next(&it)) {
                long col = dc_table_find_field(&t, bson_iter_key(&it));
                if (col >= 0)
                    dc_convert_value(&it, col == 0 ? DC_TYPE_STRING : t.cols[col].type, &buf,
                                     &v[col], &st);
            }
            rows[r].text = malloc(buf.len + 1);
            memcpy(rows[r].text, buf.data ? buf.data : "", buf.len);
            dc_buf_t fake = {.data = rows[r].text, .len = buf.len, .cap = buf.len + 1};
            dc_convert_finish_row(v, t.ncols, &fake);
            rows[r].values = v;
            r++;
        }
        mongoc_cursor_destroy(cur);
        n = r;
        /* The table and its statement. */
        dc_buf_t sql;
        dc_buf_init(&sql);
        if (since_ms < 0) {
            dc_buf_printf(&sql, "DROP TABLE IF EXISTS \"%s\"; CREATE TABLE \"%s\" (", name, name);
            for (size_t c = 0; c < t.ncols; c++)
                dc_buf_printf(&sql, "\"%s\" %s%s, ", t.cols[c].name, decl(t.cols[c].type),
                              c == 0 ? " PRIMARY KEY NOT NULL" : "");
            dc_buf_append_str(&sql, "\"_fivetran_synced\" TEXT, \"_fivetran_deleted\" INTEGER) "
                                    "WITHOUT ROWID;");
            if (sqlite3_exec(db, sql.data, NULL, NULL, NULL) != SQLITE_OK)
                die(db, "create");
            dc_buf_reset(&sql);
        }
        /* Columns by name: an incremental run writes into the full run's table. */
        dc_buf_printf(&sql, "INSERT OR REPLACE INTO \"%s\" (", name);
        for (size_t c = 0; c < t.ncols; c++)
            dc_buf_printf(&sql, "\"%s\", ", t.cols[c].name);
        dc_buf_append_str(&sql, "\"_fivetran_synced\", \"_fivetran_deleted\") VALUES (");
        for (size_t c = 0; c < t.ncols + 2; c++)
            dc_buf_append_str(&sql, c ? ", ?" : "?");
        dc_buf_append_str(&sql, ")");
        sqlite3_stmt *ins;
        if (sqlite3_prepare_v3(db, sql.data, -1, SQLITE_PREPARE_PERSISTENT, &ins, NULL) !=
            SQLITE_OK)
            die(db, "prepare");
        double t0 = now_s();
        sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
        for (size_t i = 0; i < n; i++) {
            const dc_value_t *v = rows[i].values;
            for (size_t c = 0; c < t.ncols; c++) {
                int k = (int)c + 1;
                switch (v[c].type) {
                case DC_TYPE_NULL:
                    sqlite3_bind_null(ins, k);
                    break;
                case DC_TYPE_BOOLEAN:
                    sqlite3_bind_int(ins, k, v[c].v.b);
                    break;
                case DC_TYPE_INT:
                case DC_TYPE_LONG:
                    sqlite3_bind_int64(ins, k, v[c].v.i);
                    break;
                case DC_TYPE_DOUBLE:
                    sqlite3_bind_double(ins, k, v[c].v.d);
                    break;
                case DC_TYPE_BINARY:
                    sqlite3_bind_blob(ins, k, v[c].v.s.ptr, (int)v[c].v.s.len, SQLITE_STATIC);
                    break;
                default:
                    sqlite3_bind_text(ins, k, v[c].v.s.ptr, (int)v[c].v.s.len, SQLITE_STATIC);
                }
            }
            sqlite3_bind_text(ins, (int)t.ncols + 1, "2026-01-01T00:00:00.000Z", 24, SQLITE_STATIC);
            sqlite3_bind_int(ins, (int)t.ncols + 2, 0);
            if (sqlite3_step(ins) != SQLITE_DONE)
                die(db, "insert");
            sqlite3_reset(ins);
            if ((i + 1) % 1000 == 0) {
                sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
                sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
            }
        }
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
        double dt = now_s() - t0;
        printf("{\"collection\": \"%s\", \"rows\": %zu, \"seconds\": %.3f, \"rows_per_s\": %.0f}\n",
               name, n, dt, n / dt);
        sqlite3_finalize(ins);
        for (size_t i = 0; i < n; i++) {
            free(rows[i].values);
            free(rows[i].text);
        }
        free(rows);
        dc_buf_cleanup(&sql);
        dc_buf_cleanup(&buf);
        dc_table_cleanup(&t);
        bson_destroy(opts);
        mongoc_collection_destroy(coll);
    }
    dc_walckpt_stop(ckpt);
    sqlite3_close(db);
    mongoc_client_destroy(client);
    mongoc_uri_destroy(uri);
    mongoc_cleanup();
    return 0;
}

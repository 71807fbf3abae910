/* test_sink_sqlite.c: the SQLite warehouse through sink.h only, checked with independent SQL on
 * a second connection: layout, storage classes, upserts, migrations, identifiers, metadata,
 * transactions, errors. Each case works in its own folder under /tmp and removes it. */
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "sink/sink.h"

#include "cmocka_main.h"

/* ---- Helpers ----------------------------------------------------------------------------- */

typedef struct {
    char dir[64];
    char path[256];
    char spec[300];
} tmp_t;

/* A fresh folder; path = folder/rel, spec = "sqlite:" path. */
static void
tmp_make(tmp_t *t, const char *rel)
{
    snprintf(t->dir, sizeof t->dir, "/tmp/dc_sink_test_XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->path, sizeof t->path, "%s/%s", t->dir, rel);
    snprintf(t->spec, sizeof t->spec, "sqlite:%s", t->path);
}

static void
remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            char sub[512];
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            remove_tree(sub);
        }
        closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static void
tmp_remove(tmp_t *t)
{
    remove_tree(t->dir);
}

/* A second, independent connection to the warehouse. */
static sqlite3 *
peek(const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    return db;
}

static void q1(sqlite3 *db, char *out, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The first column of the first row as text ("(no row)", "(null)"). */
static void
q1(sqlite3 *db, char *out, size_t n, const char *fmt, ...)
{
    char sql[4096];
    sqlite3_stmt *st = NULL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *p = sqlite3_column_text(st, 0);
        snprintf(out, n, "%s", p ? (const char *)p : "(null)");
    } else if (rc == SQLITE_DONE) {
        snprintf(out, n, "(no row)");
    } else {
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
}

/* "storage class:quoted value" of column col (an identifier, quoted by the caller) of the row
 * with _id id of table tbl (quoted by the caller). */
#define assert_cell(db, tbl, col, id, expected)                                                    \
    do {                                                                                           \
        char got_[1024];                                                                           \
        q1(db, got_, sizeof got_,                                                                  \
           "SELECT typeof(%s) || ':' || quote(%s) FROM %s WHERE _id = '%s'", col, col, tbl, id);   \
        assert_string_equal(got_, expected);                                                       \
    } while (0)

#define assert_query(db, expected, ...)                                                            \
    do {                                                                                           \
        char got_[4096];                                                                           \
        q1(db, got_, sizeof got_, __VA_ARGS__);                                                    \
        assert_string_equal(got_, expected);                                                       \
    } while (0)

static dc_value_t
vnull(void)
{
    dc_value_t v = {.type = DC_TYPE_NULL};
    return v;
}

static dc_value_t
vint(dc_type_t type, int64_t i)
{
    dc_value_t v = {.type = type, .v.i = i};
    return v;
}

static dc_value_t
vdbl(double d)
{
    dc_value_t v = {.type = DC_TYPE_DOUBLE, .v.d = d};
    return v;
}

static dc_value_t
vbool(bool b)
{
    dc_value_t v = {.type = DC_TYPE_BOOLEAN, .v.b = b};
    return v;
}

static dc_value_t
vtext(dc_type_t type, const char *s)
{
    dc_value_t v = {.type = type, .v.s = {s, strlen(s)}};
    return v;
}

static dc_value_t
vbin(const void *p, size_t n)
{
    dc_value_t v = {.type = DC_TYPE_BINARY, .v.s = {p, n}};
    return v;
}

static dc_sink_t *
open_ok(const char *spec)
{
    dc_error_t err = {0};
    dc_sink_t *s = dc_sink_open(spec, &err);
    if (!s)
        fail_msg("open %s: %s", spec, err.message);
    return s;
}

static void
apply_ok(dc_sink_t *s, const dc_table_t *t)
{
    dc_error_t err = {0};
    if (!dc_sink_apply_table(s, t, &err))
        fail_msg("apply %s: %s", t->name, err.message);
}

static void
upsert_ok(dc_sink_t *s, const dc_table_t *t, const dc_value_t *v)
{
    dc_error_t err = {0};
    if (!dc_sink_upsert(s, t, v, &err))
        fail_msg("upsert %s: %s", t->name, err.message);
}

static void
commit_ok(dc_sink_t *s)
{
    dc_error_t err = {0};
    if (!dc_sink_commit(s, NULL, &err))
        fail_msg("commit: %s", err.message);
}

/* ---- Cases ------------------------------------------------------------------------------- */

static void
table_helpers(void **state)
{
    (void)state;
    dc_table_t t;
    dc_table_init(&t, "db.coll", "coll");
    assert_string_equal(t.source, "db.coll");
    assert_string_equal(t.name, "coll");
    assert_int_equal(t.ncols, 0);
    for (int i = 0; i < 20; i++) {
        char field[16], name[16];
        snprintf(field, sizeof field, "F%d", i);
        snprintf(name, sizeof name, "f_%d", i);
        assert_int_equal(dc_table_add_column(&t, field, name, DC_TYPE_LONG), i);
    }
    assert_int_equal(t.ncols, 20);
    assert_int_equal(dc_table_find_field(&t, "F7"), 7);
    assert_int_equal(dc_table_find_name(&t, "f_19"), 19);
    assert_int_equal(dc_table_find_field(&t, "f_7"), -1);
    assert_int_equal(dc_table_find_name(&t, "F7"), -1);
    assert_int_equal(t.cols[3].type, DC_TYPE_LONG);
    dc_table_cleanup(&t);
    assert_null(t.cols);
    assert_int_equal(t.ncols, 0);
}

static void
open_creates_folders_and_metadata(void **state)
{
    (void)state;
    tmp_t tmp;
    struct stat st;
    tmp_make(&tmp, "a/b//c/warehouse.db");
    dc_sink_t *s = open_ok(tmp.spec);
    assert_int_equal(stat(tmp.path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    dc_sink_close(s);
    s = open_ok(tmp.spec); /* again: the metadata tables exist already */
    dc_sink_close(s);

    sqlite3 *db = peek(tmp.path);
    assert_query(db, "wal", "PRAGMA journal_mode");
    assert_query(db, "_docdb_connector_columns,_docdb_connector_state,_docdb_connector_tables",
                 "SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_schema "
                 "WHERE type = 'table' ORDER BY name)");
    assert_query(db, "source TEXT 1,name TEXT 0",
                 "SELECT group_concat(name || ' ' || type || ' ' || pk, ',') "
                 "FROM pragma_table_info('_docdb_connector_tables')");
    assert_query(db, "source TEXT 1,position INTEGER 0,field TEXT 2,name TEXT 0,type TEXT 0",
                 "SELECT group_concat(name || ' ' || type || ' ' || pk, ',') "
                 "FROM pragma_table_info('_docdb_connector_columns')");
    sqlite3_close(db);
    tmp_remove(&tmp);
}

static void
bad_specs(void **state)
{
    (void)state;
    dc_error_t err = {0};
    tmp_t tmp;

    assert_null(dc_sink_open("sqlite:", &err));
    assert_int_equal(err.domain, DC_ERR_CONFIG);
    assert_non_null(strstr(err.message, "sqlite:"));

    assert_null(dc_sink_open("postgres:x", &err));
    assert_int_equal(err.domain, DC_ERR_CONFIG);
    assert_non_null(strstr(err.message, "'postgres'"));

    assert_null(dc_sink_open("warehouse.db", &err));
    assert_int_equal(err.domain, DC_ERR_CONFIG);
    assert_null(dc_sink_open(NULL, &err));

    assert_null(dc_sink_open("sqlite:/proc/x", &err));
    assert_int_equal(err.domain, DC_ERR_SINK);
    assert_non_null(strstr(err.message, "sqlite '/proc/x': "));

    assert_null(dc_sink_open("sqlite:/proc/x/y/w.db", &err));
    assert_int_equal(err.domain, DC_ERR_SINK);
    assert_non_null(strstr(err.message, "cannot create folder '/proc/x'"));

    /* A folder where the file should be, and a file where a folder should be. */
    tmp_make(&tmp, "dir");
    assert_int_equal(mkdir(tmp.path, 0700), 0);
    assert_null(dc_sink_open(tmp.spec, &err));
    assert_int_equal(err.domain, DC_ERR_SINK);
    char spec[400];
    strcat(tmp.path, "/file");
    FILE *f = fopen(tmp.path, "w");
    assert_non_null(f);
    fclose(f);
    snprintf(spec, sizeof spec, "sqlite:%s/w.db", tmp.path);
    assert_null(dc_sink_open(spec, &err));
    assert_int_equal(err.domain, DC_ERR_SINK);
    tmp_remove(&tmp);
}

/* A table with a column of every type. */
static void
all_types_table(dc_table_t *t)
{
    dc_table_init(t, "db.items", "items");
    dc_table_add_column(t, "_id", "_id", DC_TYPE_STRING);
    dc_table_add_column(t, "s", "s", DC_TYPE_STRING);
    dc_table_add_column(t, "i", "i", DC_TYPE_INT);
    dc_table_add_column(t, "l", "l", DC_TYPE_LONG);
    dc_table_add_column(t, "d", "d", DC_TYPE_DOUBLE);
    dc_table_add_column(t, "b", "b", DC_TYPE_BOOLEAN);
    dc_table_add_column(t, "dec", "dec", DC_TYPE_DECIMAL);
    dc_table_add_column(t, "dt", "dt", DC_TYPE_UTC_DATETIME);
    dc_table_add_column(t, "j", "j", DC_TYPE_JSON);
    dc_table_add_column(t, "bin", "bin", DC_TYPE_BINARY);
    dc_table_add_column(t, "n", "n", DC_TYPE_NULL);
    dc_table_add_column(t, "sh", "sh", DC_TYPE_SHORT);
    dc_table_add_column(t, "fl", "fl", DC_TYPE_FLOAT);
    dc_table_add_column(t, "nd", "nd", DC_TYPE_NAIVE_DATE);
    dc_table_add_column(t, "ndt", "ndt", DC_TYPE_NAIVE_DATETIME);
    dc_table_add_column(t, "x", "x", DC_TYPE_XML);
}

static void
create_and_upsert_every_type(void **state)
{
    (void)state;
    tmp_t tmp;
    dc_table_t t;
    static const uint8_t bin[] = {0, 1, 2, 0xff};
    tmp_make(&tmp, "warehouse.db");
    all_types_table(&t);
    dc_sink_t *s = open_ok(tmp.spec);
    apply_ok(s, &t);
    apply_ok(s, &t); /* idempotent */
    dc_value_t row[16] = {
        vtext(DC_TYPE_STRING, "1"),
        vtext(DC_TYPE_STRING, "héllo 'q'"),
        vint(DC_TYPE_INT, -2147483648LL),
        vint(DC_TYPE_LONG, INT64_MAX),
        vdbl(0.1),
        vbool(true),
        vtext(DC_TYPE_DECIMAL, "1.50"),
        vtext(DC_TYPE_UTC_DATETIME, "2024-05-01T10:00:00.123Z"),
        vtext(DC_TYPE_JSON, "{\"a\":[1,2]}"),
        vbin(bin, sizeof bin),
        vnull(),
        vint(DC_TYPE_SHORT, -7),
        {.type = DC_TYPE_FLOAT, .v.d = 0.5},
        vtext(DC_TYPE_NAIVE_DATE, "2024-05-01"),
        vtext(DC_TYPE_NAIVE_DATETIME, "2024-05-01T10:00:00"),
        vtext(DC_TYPE_XML, "<a/>"),
    };
    upsert_ok(s, &t, row);
    /* Empty text and empty binary are values, not NULL; false is 0. */
    row[0] = vtext(DC_TYPE_STRING, "2");
    row[1] = vtext(DC_TYPE_STRING, "");
    row[5] = vbool(false);
    row[9] = vbin(NULL, 0);
    upsert_ok(s, &t, row);
    commit_ok(s);

    sqlite3 *db = peek(tmp.path);
    assert_query(db,
                 "_id TEXT 1 1,s TEXT 0 0,i INTEGER 0 0,l INTEGER 0 0,d REAL 0 0,b INTEGER 0 0,"
                 "dec TEXT 0 0,dt TEXT 0 0,j TEXT 0 0,bin BLOB 0 0,n  0 0,sh INTEGER 0 0,"
                 "fl REAL 0 0,nd TEXT 0 0,ndt TEXT 0 0,x TEXT 0 0,_fivetran_synced TEXT 0 0,"
                 "_fivetran_deleted INTEGER 0 0",
                 "SELECT group_concat(name || ' ' || type || ' ' || pk || ' ' || \"notnull\", ',')"
                 " FROM pragma_table_info('items')");
    assert_query(db, "1",
                 "SELECT sql LIKE '%%WITHOUT ROWID' FROM sqlite_schema WHERE name = 'items'");
    assert_cell(db, "items", "_id", "1", "text:'1'");
    assert_cell(db, "items", "s", "1", "text:'héllo ''q'''");
    assert_cell(db, "items", "i", "1", "integer:-2147483648");
    assert_cell(db, "items", "l", "1", "integer:9223372036854775807");
    assert_cell(db, "items", "d", "1", "real:0.1");
    assert_cell(db, "items", "b", "1", "integer:1");
    assert_cell(db, "items", "dec", "1", "text:'1.50'");
    assert_cell(db, "items", "dt", "1", "text:'2024-05-01T10:00:00.123Z'");
    assert_cell(db, "items", "j", "1", "text:'{\"a\":[1,2]}'");
    assert_cell(db, "items", "bin", "1", "blob:X'000102FF'");
    assert_cell(db, "items", "n", "1", "null:NULL");
    assert_cell(db, "items", "sh", "1", "integer:-7");
    assert_cell(db, "items", "fl", "1", "real:0.5");
    assert_cell(db, "items", "nd", "1", "text:'2024-05-01'");
    assert_cell(db, "items", "ndt", "1", "text:'2024-05-01T10:00:00'");
    assert_cell(db, "items", "x", "1", "text:'<a/>'");
    assert_cell(db, "items", "_fivetran_deleted", "1", "integer:0");
    assert_cell(db, "items", "s", "2", "text:''");
    assert_cell(db, "items", "b", "2", "integer:0");
    assert_cell(db, "items", "bin", "2", "blob:X''");
    assert_query(db, "1",
                 "SELECT _fivetran_synced GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T"
                 "[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z' AND length(_fivetran_synced)"
                 " = 24 AND abs(julianday(_fivetran_synced) - julianday('now')) * 86400 < 60 "
                 "FROM items WHERE _id = '1'");
    assert_query(db, "db.items|items", "SELECT source || '|' || name FROM _docdb_connector_tables");
    assert_query(db,
                 "0 _id _id STRING,1 s s STRING,2 i i INT,3 l l LONG,4 d d DOUBLE,"
                 "5 b b BOOLEAN,6 dec dec DECIMAL,7 dt dt UTC_DATETIME,8 j j JSON,"
                 "9 bin bin BINARY,10 n n NULL,11 sh sh SHORT,12 fl fl FLOAT,"
                 "13 nd nd NAIVE_DATE,14 ndt ndt NAIVE_DATETIME,15 x x XML",
                 "SELECT group_concat(position || ' ' || field || ' ' || name || ' ' || type, ',')"
                 " FROM (SELECT * FROM _docdb_connector_columns WHERE source = 'db.items'"
                 " ORDER BY position)");
    sqlite3_close(db);
    dc_sink_close(s);
    dc_table_cleanup(&t);
    tmp_remove(&tmp);
}

static void
upsert_replaces_row(void **state)
{
    (void)state;
    tmp_t tmp;
    dc_table_t t;
    tmp_make(&tmp, "w.db");
    dc_table_init(&t, "db.c", "c");
    dc_table_add_column(&t, "_id", "_id", DC_TYPE_STRING);
    dc_table_add_column(&t, "a", "a", DC_TYPE_LONG);
    dc_table_add_column(&t, "b", "b", DC_TYPE_STRING);
    dc_sink_t *s = open_ok(tmp.spec);
    apply_ok(s, &t);
    dc_value_t row[3] = {vtext(DC_TYPE_STRING, "k"), vint(DC_TYPE_LONG, 1),
                         vtext(DC_TYPE_STRING, "x")};
    upsert_ok(s, &t, row);
    row[1] = vint(DC_TYPE_LONG, 2);
    row[2] = vnull(); /* absent now: NULL after the replace */
    upsert_ok(s, &t, row);
    commit_ok(s);
    sqlite3 *db = peek(tmp.path);
    assert_query(db, "1", "SELECT count(*) FROM c");
    assert_cell(db, "c", "a", "k", "integer:2");
    assert_cell(db, "c", "b", "k", "null:NULL");
    sqlite3_close(db);
    dc_sink_close(s);
    dc_table_cleanup(&t);
    tmp_remove(&tmp);
}

static void
add_column(void **state)
{
    (void)state;
    tmp_t tmp;
    dc_table_t t;
    tmp_make(&tmp, "w.db");
    dc_table_init(&t, "db.c", "c");
    dc_table_add_column(&t, "_id", "_id", DC_TYPE_STRING);
    dc_table_add_column(&t, "a", "a", DC_TYPE_LONG);
    dc_sink_t *s = open_ok(tmp.spec);
    apply_ok(s, &t);
    dc_value_t row[3] = {vtext(DC_TYPE_STRING, "1"), vint(DC_TYPE_LONG, 1)};
    upsert_ok(s, &t, row);

    sqlite3 *db = peek(tmp.path);
    char root[32], root2[32];
    commit_ok(s);
    q1(db, root, sizeof root, "SELECT rootpage FROM sqlite_schema WHERE name = 'c'");

    dc_table_add_column(&t, "New", "new", DC_TYPE_DOUBLE);
    apply_ok(s, &t);
    row[0] = vtext(DC_TYPE_STRING, "2");
    row[2] = vdbl(2.5);
    upsert_ok(s, &t, row);
    commit_ok(s);
    /* Added in place (no rebuild), after the system columns. */
    q1(db, root2, sizeof root2, "SELECT rootpage FROM sqlite_schema WHERE name = 'c'");
    assert_string_equal(root, root2);
    assert_query(db, "_id,a,_fivetran_synced,_fivetran_deleted,new:REAL",
                 "SELECT group_concat(name, ',') || ':' || (SELECT type FROM "
                 "pragma_table_info('c') WHERE name = 'new') FROM pragma_table_info('c')");
    assert_cell(db, "c", "new", "1", "null:NULL");
    assert_cell(db, "c", "new", "2", "real:2.5");
    assert_cell(db, "c", "a", "2", "integer:1");
    assert_query(db, "2 New new DOUBLE",
                 "SELECT position || ' ' || field || ' ' || name || ' ' || type FROM "
                 "_docdb_connector_columns WHERE field = 'New'");
    sqlite3_close(db);
    dc_sink_close(s);
    dc_table_cleanup(&t);
    tmp_remove(&tmp);
}

/* A column added while the table is still empty (a first sync's first document) is put in
 * order, before the system columns: the empty table is made again. */
static void
add_column_to_empty_table(void **state)
{
    (void)state;
    tmp_t tmp;
    dc_table_t t;
    tmp_make(&tmp, "w.db");
    dc_table_init(&t, "db.c", "c");
    dc_table_add_column(&t, "_id", "_id", DC_TYPE_STRING);
    dc_sink_t *s = open_ok(tmp.spec);
    apply_ok(s, &t);
    commit_ok(s);
    dc_table_add_column(&t, "a", "a", DC_TYPE_LONG);
    dc_table_add_column(&t, "b", "b", DC_TYPE_STRING);
    apply_ok(s, &t);
    dc_value_t row[3] = {vtext(DC_TYPE_STRING, "1"), vint(DC_TYPE_LONG, 7),
                         vtext(DC_TYPE_STRING, "x")};
    upsert_ok(s, &t, row);
    commit_ok(s);
    sqlite3 *db = peek(tmp.path);
    assert_query(db, "_id,a,b,_fivetran_synced,_fivetran_deleted",
                 "SELECT group_concat(name, ',') FROM pragma_table_info('c')");
    assert_cell(db, "c", "a", "1", "integer:7");
    assert_cell(db, "c", "b", "1", "text:'x'");
    sqlite3_close(db);
    dc_sink_close(s);
    dc_table_cleanup(&t);
    tmp_remove(&tmp);
}

/* Columns of the migration table: name, type before, type after. */
static const struct {
    const char *name;
    dc_type_t from, to;
} migrations[] = {
    {"i2d", DC_TYPE_INT, DC_TYPE_DOUBLE},       {"i2l", DC_TYPE_INT, DC_TYPE_LONG},
    {"l2dec", DC_TYPE_LONG, DC_TYPE_DECIMAL},   {"i2dec", DC_TYPE_INT, DC_TYPE_DECIMAL},
    {"d2dec", DC_TYPE_DOUBLE, DC_TYPE_DECIMAL}, {"s2j", DC_TYPE_STRING, DC_TYPE_JSON},
    {"i2j", DC_TYPE_LONG, DC_TYPE_JSON},        {"b2j", DC_TYPE_BOOLEAN, DC_TYPE_JSON},
    {"d2j", DC_TYPE_DOUBLE, DC_TYPE_JSON},      {"bin2j", DC_TYPE_BINARY, DC_TYPE_JSON},
    {"dec2j", DC_TYPE_DECIMAL, DC_TYPE_JSON},   {"dt2j", DC_TYPE_UTC_DATETIME, DC_TYPE_JSON},
    {"j2j", DC_TYPE_JSON, DC_TYPE_JSON},        {"n2l", DC_TYPE_NULL, DC_TYPE_LONG},
    {"sh2f", DC_TYPE_SHORT, DC_TYPE_FLOAT},     {"f2d", DC_TYPE_FLOAT, DC_TYPE_DOUBLE},
};
#define NMIG (sizeof migrations / sizeof migrations[0])

static void
migration_table(dc_table_t *t, bool after)
{
    dc_table_init(t, "db.m", "m");
    dc_table_add_column(t, "_id", "_id", DC_TYPE_STRING);
    for (size_t i = 0; i < NMIG; i++)
        dc_table_add_column(t, migrations[i].name, migrations[i].name,
                            after ? migrations[i].to : migrations[i].from);
}

static void
every_migration_converts_exactly(void **state)
{
    (void)state;
    tmp_t tmp;
    dc_table_t before, after;
    static const uint8_t bin[] = {0, 1, 2, 0xff};
    static const uint8_t bin2[] = {'h', 'i', '!'};
    tmp_make(&tmp, "w.db");
    migration_table(&before, false);
    migration_table(&after, true);
    dc_sink_t *s = open_ok(tmp.spec);
    apply_ok(s, &before);
    dc_value_t r1[NMIG + 1] = {
        vtext(DC_TYPE_STRING, "1"),
        vint(DC_TYPE_INT, 5),
        vint(DC_TYPE_INT, 7),
        vint(DC_TYPE_LONG, 9007199254740993LL),
        vint(DC_TYPE_INT, -42),
        vdbl(0.1),
        vtext(DC_TYPE_STRING, "abc"),
        vint(DC_TYPE_LONG, -9007199254740993LL),
        vbool(true),
        vdbl(1.5),
        vbin(bin, sizeof bin),
        vtext(DC_TYPE_DECIMAL, "1.50"),
        vtext(DC_TYPE_UTC_DATETIME, "2024-05-01T10:00:00.123Z"),
        vtext(DC_TYPE_JSON, "{\"a\":1}"),
        vnull(),
        vint(DC_TYPE_SHORT, 32767),
        {.type = DC_TYPE_FLOAT, .v.d = 0.25},
    };
    dc_value_t r2[NMIG + 1] = {
        vtext(DC_TYPE_STRING, "2"),
        vint(DC_TYPE_INT, -2147483648LL),
        vint(DC_TYPE_INT, 0),
        vint(DC_TYPE_LONG, INT64_MIN),
        vint(DC_TYPE_INT, 0),
        vdbl(0.30000000000000004),
        vtext(DC_TYPE_STRING, "a\"b\\c\n"),
        vint(DC_TYPE_LONG, 0),
        vbool(false),
        vdbl(INFINITY),
        vbin(bin2, sizeof bin2),
        vtext(DC_TYPE_DECIMAL, "-1E+400"),
        vtext(DC_TYPE_UTC_DATETIME, "1969-12-31T23:59:59.999Z"),
        vtext(DC_TYPE_JSON, "\"s\""),
        vnull(),
        vint(DC_TYPE_SHORT, -32768),
        {.type = DC_TYPE_FLOAT, .v.d = -3.0},
    };
    dc_value_t r3[NMIG + 1] = {vtext(DC_TYPE_STRING, "3")}; /* all NULL */
    for (size_t i = 1; i <= NMIG; i++)
        r3[i] = vnull();
    dc_value_t r4[NMIG + 1] = {vtext(DC_TYPE_STRING, "4"),
                               vnull(),
                               vnull(),
                               vnull(),
                               vnull(),
                               vdbl(1e300),
                               vnull(),
                               vnull(),
                               vnull(),
                               vdbl(-INFINITY)};
    for (size_t i = 10; i <= NMIG; i++)
        r4[i] = vnull();
    dc_value_t r5[NMIG + 1] = {vtext(DC_TYPE_STRING, "5"),
                               vnull(),
                               vnull(),
                               vnull(),
                               vnull(),
                               vdbl(1.0 / 3.0),
                               vnull(),
                               vnull(),
                               vnull(),
                               vdbl(100.0)};
    for (size_t i = 10; i <= NMIG; i++)
        r5[i] = vnull();
    upsert_ok(s, &before, r1);
    upsert_ok(s, &before, r2);
    upsert_ok(s, &before, r3);
    upsert_ok(s, &before, r4);
    upsert_ok(s, &before, r5);
    commit_ok(s);

    sqlite3 *db = peek(tmp.path);
    char synced[256], synced2[256];
    q1(db, synced, sizeof synced, "SELECT group_concat(_fivetran_synced) FROM m");

    apply_ok(s, &after);
    apply_ok(s, &after); /* idempotent */
    commit_ok(s);

    q1(db, synced2, sizeof synced2, "SELECT group_concat(_fivetran_synced) FROM m");
    assert_string_equal(synced, synced2);
    assert_query(db, "5", "SELECT count(*) FROM m");
    assert_query(db, "0", "SELECT count(*) FROM sqlite_schema WHERE name LIKE '%%__new'");
    assert_query(db,
                 "_id TEXT,i2d REAL,i2l INTEGER,l2dec TEXT,i2dec TEXT,d2dec TEXT,s2j TEXT,"
                 "i2j TEXT,b2j TEXT,d2j TEXT,bin2j TEXT,dec2j TEXT,dt2j TEXT,j2j TEXT,n2l INTEGER,"
                 "sh2f REAL,f2d REAL,_fivetran_synced TEXT,_fivetran_deleted INTEGER",
                 "SELECT group_concat(name || ' ' || type, ',') FROM pragma_table_info('m')");
    assert_query(db, "1", "SELECT pk FROM pragma_table_info('m') WHERE name = '_id'");
    assert_query(db,
                 "_id STRING,i2d DOUBLE,i2l LONG,l2dec DECIMAL,i2dec DECIMAL,d2dec DECIMAL,"
                 "s2j JSON,i2j JSON,b2j JSON,d2j JSON,bin2j JSON,dec2j JSON,dt2j JSON,j2j JSON,"
                 "n2l LONG,sh2f FLOAT,f2d DOUBLE",
                 "SELECT group_concat(name || ' ' || type, ',') FROM (SELECT * FROM "
                 "_docdb_connector_columns WHERE source = 'db.m' ORDER BY position)");

    assert_cell(db, "m", "i2d", "1", "real:5.0");
    assert_cell(db, "m", "i2l", "1", "integer:7");
    assert_cell(db, "m", "l2dec", "1", "text:'9007199254740993'");
    assert_cell(db, "m", "i2dec", "1", "text:'-42'");
    assert_cell(db, "m", "d2dec", "1", "text:'0.1'");
    assert_cell(db, "m", "s2j", "1", "text:'\"abc\"'");
    assert_cell(db, "m", "i2j", "1", "text:'-9007199254740993'");
    assert_cell(db, "m", "b2j", "1", "text:'true'");
    assert_cell(db, "m", "d2j", "1", "text:'1.5'");
    assert_cell(db, "m", "bin2j", "1", "text:'\"AAEC/w==\"'");
    assert_cell(db, "m", "dec2j", "1", "text:'\"1.50\"'");
    assert_cell(db, "m", "dt2j", "1", "text:'\"2024-05-01T10:00:00.123Z\"'");
    assert_cell(db, "m", "j2j", "1", "text:'{\"a\":1}'");
    assert_cell(db, "m", "n2l", "1", "null:NULL");
    assert_cell(db, "m", "sh2f", "1", "real:32767.0");
    assert_cell(db, "m", "f2d", "1", "real:0.25");

    assert_cell(db, "m", "i2d", "2", "real:-2147483648.0");
    assert_cell(db, "m", "i2l", "2", "integer:0");
    assert_cell(db, "m", "l2dec", "2", "text:'-9223372036854775808'");
    assert_cell(db, "m", "d2dec", "2", "text:'0.30000000000000004'");
    assert_cell(db, "m", "s2j", "2", "text:'\"a\\\"b\\\\c\\n\"'");
    assert_cell(db, "m", "i2j", "2", "text:'0'");
    assert_cell(db, "m", "b2j", "2", "text:'false'");
    assert_cell(db, "m", "d2j", "2", "text:'\"Infinity\"'");
    assert_cell(db, "m", "bin2j", "2", "text:'\"aGkh\"'");
    assert_cell(db, "m", "dec2j", "2", "text:'\"-1E+400\"'");
    assert_cell(db, "m", "j2j", "2", "text:'\"s\"'");
    assert_cell(db, "m", "sh2f", "2", "real:-32768.0");
    assert_cell(db, "m", "f2d", "2", "real:-3.0");

    for (size_t i = 0; i < NMIG; i++) {
        char col[32];
        snprintf(col, sizeof col, "\"%s\"", migrations[i].name);
        assert_cell(db, "m", col, "3", "null:NULL");
    }
    /* Migrated values are written exactly as the converter writes new rows (convert.h). */
    assert_cell(db, "m", "d2dec", "4", "text:'1E+300'");
    assert_cell(db, "m", "d2j", "4", "text:'\"-Infinity\"'");
    assert_cell(db, "m", "d2dec", "5", "text:'0.3333333333333333'");
    assert_cell(db, "m", "d2j", "5", "text:'100.0'");
    assert_cell(db, "m", "_fivetran_deleted", "5", "integer:0");

    /* The upsert statement follows the new types. */
    dc_value_t r6[NMIG + 1];
    for (size_t i = 0; i <= NMIG; i++)
        r6[i] = vnull();
    r6[0] = vtext(DC_TYPE_STRING, "6");
    r6[1] = vdbl(6.5);
    r6[3] = vtext(DC_TYPE_DECIMAL, "12345678901234567890");
    r6[14] = vint(DC_TYPE_LONG, 14);
    upsert_ok(s, &after, r6);
    commit_ok(s);
    assert_cell(db, "m", "i2d", "6", "real:6.5");
    assert_cell(db, "m", "l2dec", "6", "text:'12345678901234567890'");
    assert_cell(db, "m", "n2l", "6", "integer:14");

    sqlite3_close(db);
    dc_sink_close(s);
    dc_table_cleanup(&before);
    dc_table_cleanup(&after);
    tmp_remove(&tmp);
}

static void
same_storage_migration_in_place(void **state)
{
    (void)state;
    tmp_t tmp;
    dc_table_t t;
    char root[32], root2[32];
    tmp_make(&tmp, "w.db");
    dc_table_init(&t, "db.c", "c");
    dc_table_add_column(&t, "_id", "_id", DC_TYPE_STRING);
    dc_table_add_column(&t, "s", "s", DC_TYPE_STRING);
    dc_sink_t *s = open_ok(tmp.spec);
    apply_ok(s, &t);
    dc_value_t row[3] = {vtext(DC_TYPE_STRING, "1"), vtext(DC_TYPE_STRING, "abc")};
    upsert_ok(s, &t, row);
    row[0] = vtext(DC_TYPE_STRING, "2");
    row[1] = vnull();
    upsert_ok(s, &t, row);
    commit_ok(s);
    sqlite3 *db = peek(tmp.path);
    q1(db, root, sizeof root, "SELECT rootpage FROM sqlite_schema WHERE name = 'c'");

    t.cols[1].type = DC_TYPE_JSON;
    dc_table_add_column(&t, "k", "k", DC_TYPE_INT);
    apply_ok(s, &t);
    commit_ok(s);
    q1(db, root2, sizeof root2, "SELECT rootpage FROM sqlite_schema WHERE name = 'c'");
    assert_string_equal(root, root2);
    assert_cell(db, "c", "s", "1", "text:'\"abc\"'");
    assert_cell(db, "c", "s", "2", "null:NULL");
    assert_cell(db, "c", "k", "1", "null:NULL");
    assert_query(db, "JSON",
                 "SELECT type FROM _docdb_connector_columns WHERE source = 'db.c' AND field = 's'");

    /* INT -> DOUBLE changes the declared type: rebuilt, with the system columns last again. */
    t.cols[2].type = DC_TYPE_LONG;
    apply_ok(s, &t);
    t.cols[2].type = DC_TYPE_DOUBLE;
    apply_ok(s, &t);
    commit_ok(s);
    q1(db, root2, sizeof root2, "SELECT rootpage FROM sqlite_schema WHERE name = 'c'");
    assert_string_not_equal(root, root2);
    assert_query(db, "_id TEXT,s TEXT,k REAL,_fivetran_synced TEXT,_fivetran_deleted INTEGER",
                 "SELECT group_concat(name || ' ' || type, ',') FROM pragma_table_info('c')");
    assert_cell(db, "c", "s", "1", "text:'\"abc\"'");
    sqlite3_close(db);
    dc_sink_close(s);
    dc_table_cleanup(&t);
    tmp_remove(&tmp);
}

static void
unsupported_migration_changes_nothing(void **state)
{
    (void)state;
    tmp_t tmp;
    dc_table_t t;
    dc_error_t err = {0};
    tmp_make(&tmp, "w.db");
    dc_table_init(&t, "db.c", "c");
    dc_table_add_column(&t, "_id", "_id", DC_TYPE_STRING);
    dc_table_add_column(&t, "j", "j", DC_TYPE_JSON);
    dc_table_add_column(&t, "d", "d", DC_TYPE_DOUBLE);
    dc_sink_t *s = open_ok(tmp.spec);
    apply_ok(s, &t);
    dc_value_t row[4] = {vtext(DC_TYPE_STRING, "1"), vtext(DC_TYPE_JSON, "[1]"), vdbl(1.5)};
    upsert_ok(s, &t, row);

    /* A new column and a narrowing: all or nothing. */
    dc_table_add_column(&t, "z", "z", DC_TYPE_STRING);
    t.cols[1].type = DC_TYPE_LONG;
    assert_false(dc_sink_apply_table(s, &t, &err));
    assert_int_equal(err.domain, DC_ERR_INTERNAL);
    assert_non_null(strstr(err.message, "'j'"));
    assert_non_null(strstr(err.message, "JSON to LONG"));
    t.cols[1].type = DC_TYPE_JSON;
    t.cols[2].type = DC_TYPE_LONG;
    assert_false(dc_sink_apply_table(s, &t, &err));
    assert_int_equal(err.domain, DC_ERR_INTERNAL);

    /* A column named like a system column fails in SQLite: rolled back to before the change,
     * the rows written earlier in the transaction kept. */
    t.cols[2].type = DC_TYPE_DOUBLE;
    dc_table_add_column(&t, "synced", "_fivetran_synced", DC_TYPE_STRING);
    assert_false(dc_sink_apply_table(s, &t, &err));
    assert_int_equal(err.domain, DC_ERR_SINK);
    assert_non_null(strstr(err.message, "duplicate column"));
    commit_ok(s);

    sqlite3 *db = peek(tmp.path);
    assert_cell(db, "c", "j", "1", "text:'[1]'");
    assert_cell(db, "c", "d", "1", "real:1.5");
    assert_query(db, "_id,j,d,_fivetran_synced,_fivetran_deleted",
                 "SELECT group_concat(name, ',') FROM pragma_table_info('c')");
    assert_query(db, "3", "SELECT count(*) FROM _docdb_connector_columns");
    sqlite3_close(db);
    dc_sink_close(s);
    dc_table_cleanup(&t);
    tmp_remove(&tmp);
}

static const char *const hostile[] = {
    "order", "ünï côdé 名前", "a b", "a.b", "$x", "\"", " ", "select", "a\"b\"", "x'y", "",
};
#define NHOSTILE (sizeof hostile / sizeof hostile[0])

/* "name" quoted for SQL by the test itself. */
static void
quote_ident(char *out, size_t n, const char *name)
{
    size_t j = 0;
    out[j++] = '"';
    for (const char *p = name; *p && j + 3 < n; p++) {
        if (*p == '"')
            out[j++] = '"';
        out[j++] = *p;
    }
    out[j++] = '"';
    out[j] = '\0';
}

static void
hostile_identifiers(void **state)
{
    (void)state;
    tmp_t tmp;
    dc_table_t t, loaded;
    dc_error_t err = {0};
    const char *tname = "we\"ird.name $order";
    const char *qtable = "\"we\"\"ird.name $order\"";
    tmp_make(&tmp, "dir with space/ü.db");
    dc_table_init(&t, "db.we\"ird", tname);
    dc_table_add_column(&t, "_id", "_id", DC_TYPE_STRING);
    for (size_t i = 0; i < NHOSTILE; i++)
        dc_table_add_column(&t, hostile[i], hostile[i], DC_TYPE_LONG);
    dc_sink_t *s = open_ok(tmp.spec);
    apply_ok(s, &t);
    dc_value_t row[NHOSTILE + 2];
    row[0] = vtext(DC_TYPE_STRING, "id'1");
    for (size_t i = 0; i < NHOSTILE; i++)
        row[i + 1] = vint(DC_TYPE_LONG, (int64_t)i * 10);
    upsert_ok(s, &t, row);
    commit_ok(s);

    sqlite3 *db = peek(tmp.path);
    for (size_t i = 0; i < NHOSTILE; i++) {
        char col[64], expected[32];
        quote_ident(col, sizeof col, hostile[i]);
        snprintf(expected, sizeof expected, "integer:%zu", i * 10);
        assert_cell(db, qtable, col, "id''1", expected);
    }

    /* Migrate (rebuild) and add a column on the hostile table. */
    t.cols[1].type = DC_TYPE_DOUBLE;
    t.cols[2].type = DC_TYPE_JSON;
    dc_table_add_column(&t, "new\"col", "new\"col", DC_TYPE_STRING);
    apply_ok(s, &t);
    row[1] = vdbl(0.5);
    row[2] = vtext(DC_TYPE_JSON, "{}");
    row[NHOSTILE + 1] = vtext(DC_TYPE_STRING, "n");
    row[0] = vtext(DC_TYPE_STRING, "id2");
    upsert_ok(s, &t, row);
    commit_ok(s);
    assert_cell(db, qtable, "\"order\"", "id''1", "real:0.0");
    assert_cell(db, qtable, "\"ünï côdé 名前\"", "id''1", "text:'10'");
    assert_cell(db, qtable, "\"order\"", "id2", "real:0.5");
    assert_cell(db, qtable, "\"new\"\"col\"", "id2", "text:'n'");
    assert_cell(db, qtable, "\"\"", "id2", "integer:100");
    sqlite3_close(db);
    dc_sink_close(s);

    s = open_ok(tmp.spec);
    assert_true(dc_sink_load_table(s, "db.we\"ird", &loaded, &err));
    assert_string_equal(loaded.name, tname);
    assert_int_equal(loaded.ncols, t.ncols);
    for (size_t i = 0; i < t.ncols; i++) {
        assert_string_equal(loaded.cols[i].field, t.cols[i].field);
        assert_string_equal(loaded.cols[i].name, t.cols[i].name);
        assert_int_equal(loaded.cols[i].type, t.cols[i].type);
    }
    dc_table_cleanup(&loaded);
    dc_sink_close(s);
    dc_table_cleanup(&t);
    tmp_remove(&tmp);
}

static void
collect(const char *source, const char *name, void *ctx)
{
    char *out = ctx;
    size_t n = strlen(out);
    snprintf(out + n, 256 - n, "%s=%s;", source, name);
}

static void
metadata_reload(void **state)
{
    (void)state;
    tmp_t tmp;
    dc_table_t a, b, loaded;
    dc_error_t err = {0};
    char seen[256] = "";
    tmp_make(&tmp, "w.db");
    dc_table_init(&a, "db.users", "users");
    dc_table_add_column(&a, "_id", "_id", DC_TYPE_STRING);
    dc_table_add_column(&a, "firstName", "first_name", DC_TYPE_STRING);
    dc_table_add_column(&a, "age", "age", DC_TYPE_INT);
    dc_table_init(&b, "db.orders", "orders");
    dc_table_add_column(&b, "_id", "_id", DC_TYPE_STRING);
    dc_table_add_column(&b, "total", "total", DC_TYPE_DECIMAL);
    dc_sink_t *s = open_ok(tmp.spec);
    apply_ok(s, &a);
    apply_ok(s, &b);
    a.cols[2].type = DC_TYPE_DOUBLE;
    dc_table_add_column(&a, "tags", "tags", DC_TYPE_JSON);
    apply_ok(s, &a);
    dc_sink_close(s);

    s = open_ok(tmp.spec);
    assert_true(dc_sink_each_table(s, collect, seen, &err));
    assert_string_equal(seen, "db.orders=orders;db.users=users;");
    assert_true(dc_sink_load_table(s, "db.users", &loaded, &err));
    assert_string_equal(loaded.source, "db.users");
    assert_string_equal(loaded.name, "users");
    assert_int_equal(loaded.ncols, 4);
    assert_string_equal(loaded.cols[1].field, "firstName");
    assert_string_equal(loaded.cols[1].name, "first_name");
    assert_int_equal(loaded.cols[1].type, DC_TYPE_STRING);
    assert_int_equal(loaded.cols[2].type, DC_TYPE_DOUBLE);
    assert_string_equal(loaded.cols[3].name, "tags");
    assert_int_equal(loaded.cols[3].type, DC_TYPE_JSON);

    /* A loaded table applies as is and takes rows. */
    apply_ok(s, &loaded);
    dc_value_t row[4] = {vtext(DC_TYPE_STRING, "u1"), vtext(DC_TYPE_STRING, "Ann"), vdbl(3.5),
                         vtext(DC_TYPE_JSON, "[]")};
    upsert_ok(s, &loaded, row);
    dc_table_cleanup(&loaded);

    err.domain = DC_ERR_SINK;
    assert_false(dc_sink_load_table(s, "db.none", &loaded, &err));
    assert_int_equal(err.domain, DC_ERR_NONE);
    assert_null(loaded.cols);
    dc_sink_close(s);

    sqlite3 *db = peek(tmp.path);
    assert_cell(db, "users", "age", "u1", "real:3.5");
    sqlite3_close(db);
    dc_table_cleanup(&a);
    dc_table_cleanup(&b);
    tmp_remove(&tmp);
}

static void
names_are_stable(void **state)
{
    (void)state;
    tmp_t tmp;
    dc_table_t t, other;
    dc_error_t err = {0};
    tmp_make(&tmp, "w.db");
    dc_table_init(&t, "db.a", "x");
    dc_table_add_column(&t, "_id", "_id", DC_TYPE_STRING);
    dc_table_add_column(&t, "f", "f", DC_TYPE_STRING);
    dc_sink_t *s = open_ok(tmp.spec);
    apply_ok(s, &t);

    dc_table_init(&other, "db.a", "y");
    dc_table_add_column(&other, "_id", "_id", DC_TYPE_STRING);
    assert_false(dc_sink_apply_table(s, &other, &err));
    assert_int_equal(err.domain, DC_ERR_SINK);
    assert_non_null(strstr(err.message, "recorded as table 'x', not 'y'"));
    dc_table_cleanup(&other);

    dc_table_init(&other, "db.b", "x");
    dc_table_add_column(&other, "_id", "_id", DC_TYPE_STRING);
    assert_false(dc_sink_apply_table(s, &other, &err));
    assert_int_equal(err.domain, DC_ERR_SINK);
    assert_non_null(strstr(err.message, "already used by collection 'db.a'"));
    dc_table_cleanup(&other);

    free(t.cols[1].name);
    t.cols[1].name = strdup("F");
    assert_false(dc_sink_apply_table(s, &t, &err));
    assert_int_equal(err.domain, DC_ERR_SINK);
    assert_non_null(strstr(err.message, "recorded as column 'f', not 'F'"));

    /* An _id that is not STRING is a programming error. */
    dc_table_init(&other, "db.c", "c");
    dc_table_add_column(&other, "_id", "_id", DC_TYPE_LONG);
    assert_false(dc_sink_apply_table(s, &other, &err));
    assert_int_equal(err.domain, DC_ERR_INTERNAL);
    dc_table_cleanup(&other);

    dc_sink_close(s);
    dc_table_cleanup(&t);
    tmp_remove(&tmp);
}

static void
rows_visible_only_after_commit(void **state)
{
    (void)state;
    tmp_t tmp;
    dc_table_t t;
    tmp_make(&tmp, "w.db");
    dc_table_init(&t, "db.c", "c");
    dc_table_add_column(&t, "_id", "_id", DC_TYPE_STRING);
    dc_sink_t *s = open_ok(tmp.spec);
    apply_ok(s, &t);
    commit_ok(s);
    commit_ok(s); /* nothing open: nothing to do */
    sqlite3 *db = peek(tmp.path);
    dc_value_t row[1] = {vtext(DC_TYPE_STRING, "1")};
    upsert_ok(s, &t, row);
    assert_query(db, "0", "SELECT count(*) FROM c");
    commit_ok(s);
    assert_query(db, "1", "SELECT count(*) FROM c");
    row[0] = vtext(DC_TYPE_STRING, "2");
    upsert_ok(s, &t, row);
    assert_query(db, "1", "SELECT count(*) FROM c");
    dc_sink_close(s); /* commits */
    assert_query(db, "2", "SELECT count(*) FROM c");
    sqlite3_close(db);
    dc_table_cleanup(&t);
    tmp_remove(&tmp);
}

/* The state is stored in the rows' transaction: visible with them, kept when a commit has
 * none, and still there after reopening. */
static void
state_commits_with_rows(void **state)
{
    (void)state;
    tmp_t tmp;
    dc_table_t t;
    dc_error_t err = {0};
    char *text = NULL;
    tmp_make(&tmp, "w.db");
    dc_table_init(&t, "db.c", "c");
    dc_table_add_column(&t, "_id", "_id", DC_TYPE_STRING);
    dc_sink_t *s = open_ok(tmp.spec);
    assert_true(dc_sink_load_state(s, &text, &err));
    assert_null(text); /* none yet */
    apply_ok(s, &t);
    sqlite3 *db = peek(tmp.path);
    dc_value_t row[1] = {vtext(DC_TYPE_STRING, "1")};
    upsert_ok(s, &t, row);
    assert_true(dc_sink_commit(s, "{\"n\": 1}", &err));
    assert_query(db, "1|{\"n\": 1}",
                 "SELECT (SELECT count(*) FROM c) || '|' || state FROM _docdb_connector_state");
    row[0] = vtext(DC_TYPE_STRING, "2");
    upsert_ok(s, &t, row);
    commit_ok(s); /* rows without a state: the stored one stays */
    assert_query(db, "2|{\"n\": 1}",
                 "SELECT (SELECT count(*) FROM c) || '|' || state FROM _docdb_connector_state");
    assert_true(dc_sink_commit(s, "{\"n\": 2}", &err)); /* a state alone */
    dc_sink_close(s);
    s = open_ok(tmp.spec);
    assert_true(dc_sink_load_state(s, &text, &err));
    assert_string_equal(text, "{\"n\": 2}");
    free(text);
    assert_query(db, "1", "SELECT count(*) FROM _docdb_connector_state");
    dc_sink_close(s);
    sqlite3_close(db);
    dc_table_cleanup(&t);
    tmp_remove(&tmp);
}

static void
upsert_programming_errors(void **state)
{
    (void)state;
    tmp_t tmp;
    dc_table_t t;
    dc_error_t err = {0};
    tmp_make(&tmp, "w.db");
    dc_table_init(&t, "db.c", "tbl");
    dc_table_add_column(&t, "_id", "_id", DC_TYPE_STRING);
    dc_table_add_column(&t, "n", "num", DC_TYPE_INT);
    dc_sink_t *s = open_ok(tmp.spec);

    dc_value_t row[3] = {vtext(DC_TYPE_STRING, "1"), vint(DC_TYPE_INT, 1)};
    assert_false(dc_sink_upsert(s, &t, row, &err)); /* never applied */
    assert_int_equal(err.domain, DC_ERR_INTERNAL);
    assert_non_null(strstr(err.message, "'tbl'"));

    apply_ok(s, &t);
    row[1] = vint(DC_TYPE_LONG, 1);
    assert_false(dc_sink_upsert(s, &t, row, &err));
    assert_int_equal(err.domain, DC_ERR_INTERNAL);
    assert_non_null(strstr(err.message, "'tbl'"));
    assert_non_null(strstr(err.message, "'num'"));

    dc_table_add_column(&t, "m", "m", DC_TYPE_STRING); /* not applied */
    row[1] = vint(DC_TYPE_INT, 1);
    row[2] = vtext(DC_TYPE_STRING, "x");
    assert_false(dc_sink_upsert(s, &t, row, &err));
    assert_int_equal(err.domain, DC_ERR_INTERNAL);
    assert_non_null(strstr(err.message, "'m'"));
    apply_ok(s, &t);
    upsert_ok(s, &t, row);

    /* A NULL primary key is refused by SQLite. */
    row[0] = vnull();
    assert_false(dc_sink_upsert(s, &t, row, &err));
    assert_int_equal(err.domain, DC_ERR_SINK);
    assert_non_null(strstr(err.message, "NOT NULL"));
    dc_sink_close(s);

    sqlite3 *db = peek(tmp.path);
    assert_query(db, "1|1|x", "SELECT _id || '|' || num || '|' || m FROM tbl");
    sqlite3_close(db);
    dc_table_cleanup(&t);
    tmp_remove(&tmp);
}

static void
many_rows(void **state)
{
    (void)state;
    tmp_t tmp;
    dc_table_t t;
    char id[32], text[32];
    tmp_make(&tmp, "w.db");
    dc_table_init(&t, "db.c", "c");
    dc_table_add_column(&t, "_id", "_id", DC_TYPE_STRING);
    dc_table_add_column(&t, "n", "n", DC_TYPE_LONG);
    dc_table_add_column(&t, "s", "s", DC_TYPE_STRING);
    dc_sink_t *s = open_ok(tmp.spec);
    apply_ok(s, &t);
    for (int i = 0; i < 20000; i++) {
        snprintf(id, sizeof id, "%08d", i);
        snprintf(text, sizeof text, "row %d", i);
        dc_value_t row[3] = {vtext(DC_TYPE_STRING, id), vint(DC_TYPE_LONG, i),
                             vtext(DC_TYPE_STRING, text)};
        upsert_ok(s, &t, row);
        if (i % 5000 == 4999)
            commit_ok(s);
    }
    dc_sink_close(s);
    sqlite3 *db = peek(tmp.path);
    assert_query(db, "20000|199990000|00019999|row 19999",
                 "SELECT count(*) || '|' || sum(n) || '|' || max(_id) || '|' || "
                 "(SELECT s FROM c WHERE n = 19999) FROM c");
    sqlite3_close(db);
    dc_table_cleanup(&t);
    tmp_remove(&tmp);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(table_helpers),
    cmocka_unit_test(open_creates_folders_and_metadata),
    cmocka_unit_test(bad_specs),
    cmocka_unit_test(create_and_upsert_every_type),
    cmocka_unit_test(upsert_replaces_row),
    cmocka_unit_test(add_column),
    cmocka_unit_test(add_column_to_empty_table),
    cmocka_unit_test(every_migration_converts_exactly),
    cmocka_unit_test(same_storage_migration_in_place),
    cmocka_unit_test(unsupported_migration_changes_nothing),
    cmocka_unit_test(hostile_identifiers),
    cmocka_unit_test(metadata_reload),
    cmocka_unit_test(names_are_stable),
    cmocka_unit_test(rows_visible_only_after_commit),
    cmocka_unit_test(state_commits_with_rows),
    cmocka_unit_test(upsert_programming_errors),
    cmocka_unit_test(many_rows),
};

DC_CMOCKA_MAIN(tests)

/* test_walckpt.c: WAL checkpoints beside the writer (sink/walckpt.h): while a writer commits
 * without pause, the background copies the log into the database file, the log stays bounded
 * (the writer restarts it past its mark), and every row is there, intact, after the writer
 * closes (and the log with it). */
#include "cmocka_main.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sink/walckpt.h"

#define PAGE 4096

static long
file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static void
exec_ok(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg ? msg : "?");
}

static long
count(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    long n = (long)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

static void
log_stays_bounded_and_rows_intact(void **state)
{
    (void)state;
    char dir[] = "/tmp/dc-walckpt-XXXXXX", path[256], wal[300];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/w.db", dir);
    snprintf(wal, sizeof wal, "%s-wal", path);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 10000);
    exec_ok(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)");
    /* Small marks: a pass every 10 pages, a restart past 300. */
    dc_walckpt_t *c = dc_walckpt_start_with(db, path, 10000, 10, 300);
    assert_non_null(c);
    sqlite3_stmt *ins;
    assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO t VALUES (?, ?)", -1, &ins, NULL),
                     SQLITE_OK);
    char text[201];
    long max_wal = 0;
    const int rows = 30000, per_commit = 100;
    for (int i = 0; i < rows; i++) {
        if (i % per_commit == 0)
            exec_ok(db, "BEGIN");
        memset(text, 'a' + i % 26, 200);
        text[200] = '\0';
        sqlite3_bind_int(ins, 1, i);
        sqlite3_bind_text(ins, 2, text, 200, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(ins), SQLITE_DONE);
        sqlite3_reset(ins);
        if (i % per_commit == per_commit - 1) {
            exec_ok(db, "COMMIT");
            long w = file_size(wal);
            if (w > max_wal)
                max_wal = w;
        }
    }
    sqlite3_finalize(ins);
    /* The log went back to its start instead of holding all 6 MB: at most the restart mark,
     * one commit more (about 6 pages here), and what a background pass held up. */
    assert_true(max_wal < 400L * (PAGE + 24));
    /* The background copied into the database file while the writer wrote. */
    assert_true(file_size(path) > 4L * 1024 * 1024);
    dc_walckpt_stop(c);
    assert_int_equal(count(db, "SELECT count(*) FROM t"), rows);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    assert_int_equal(file_size(wal), -1); /* the last connection copied it back and removed it */

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    assert_int_equal(count(db, "SELECT count(*) FROM t WHERE length(v) = 200"), rows);
    assert_int_equal(count(db, "SELECT sum(id) FROM t"), (long)rows * (rows - 1) / 2);
    sqlite3_close(db);
    unlink(path);
    rmdir(dir);
}

/* With a restart mark out of reach, only the background thread can copy the log into the
 * database file: it does, while the writer goes on. */
static void
background_copies(void **state)
{
    (void)state;
    char dir[] = "/tmp/dc-walckpt-XXXXXX", path[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/w.db", dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    exec_ok(db, "PRAGMA journal_mode=WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
    dc_walckpt_t *c = dc_walckpt_start_with(db, path, 0, 10, 1000000000);
    assert_non_null(c);
    long before = file_size(path);
    for (int k = 0; k < 100; k++)
        exec_ok(db, "BEGIN; INSERT INTO t (v) SELECT printf('%.*c', 300, 'x') FROM "
                    "(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < "
                    "100) SELECT i FROM n); COMMIT");
    /* 10000 rows of 300 bytes: about 3 MB, copied by the passes (give the last one time). */
    long after = 0;
    for (int tries = 0; tries < 200 && (after = file_size(path)) < 2L * 1024 * 1024; tries++)
        usleep(10000);
    assert_true(after >= 2L * 1024 * 1024);
    assert_true(after > before);
    dc_walckpt_stop(c);
    assert_int_equal(count(db, "SELECT count(*) FROM t"), 10000);
    sqlite3_close(db);
    unlink(path);
    rmdir(dir);
}

/* A reader that keeps an old snapshot open keeps the log from restarting, but must not stall
 * the writer: past the restart mark, each commit tries without waiting. (Waiting for the busy
 * timeout at every commit would take minutes here; the bound is only a guard against that.) */
static void
reader_does_not_stall_the_writer(void **state)
{
    (void)state;
    char dir[] = "/tmp/dc-walckpt-XXXXXX", path[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/w.db", dir);
    sqlite3 *db, *reader;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 10000);
    exec_ok(db, "PRAGMA journal_mode=WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);"
                "INSERT INTO t (v) VALUES ('first')");
    assert_int_equal(sqlite3_open(path, &reader), SQLITE_OK);
    exec_ok(reader, "BEGIN");
    assert_int_equal(count(reader, "SELECT count(*) FROM t"), 1); /* holds this snapshot */
    dc_walckpt_t *c = dc_walckpt_start_with(db, path, 10000, 10, 100);
    assert_non_null(c);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int k = 0; k < 100; k++)
        exec_ok(db, "BEGIN; INSERT INTO t (v) SELECT printf('%.*c', 300, 'y') FROM "
                    "(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < "
                    "100) SELECT i FROM n); COMMIT");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(t1.tv_sec - t0.tv_sec < 30);
    assert_int_equal(count(reader, "SELECT count(*) FROM t"), 1); /* its snapshot still */
    exec_ok(reader, "COMMIT");
    assert_int_equal(count(reader, "SELECT count(*) FROM t"), 10001);
    sqlite3_close(reader);
    dc_walckpt_stop(c);
    sqlite3_close(db);
    unlink(path);
    rmdir(dir);
}

/* Without a second connection (here: a database that cannot be opened again), nothing starts
 * and the writer keeps SQLite's own checkpoints. */
static void
no_second_connection(void **state)
{
    (void)state;
    sqlite3 *db;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    assert_null(dc_walckpt_start(db, "/nonexistent-dir/x.db", 0));
    dc_walckpt_stop(NULL);
    sqlite3_close(db);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(log_stays_bounded_and_rows_intact),
    cmocka_unit_test(background_copies),
    cmocka_unit_test(reader_does_not_stall_the_writer),
    cmocka_unit_test(no_second_connection),
};

DC_CMOCKA_MAIN(tests)

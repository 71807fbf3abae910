/* test_emu_libmongoc.c: docdb-emu driven by libmongoc 1.23, the C driver the connector uses:
 * TLS with a test CA, SCRAM-SHA-1, bulk inserts, sorted and filtered cursors over many
 * getMores, killCursors, a failCommand that drops the connection mid-cursor, idle cursor
 * expiry, and a client that does not trust the CA. */
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmocka_main.h"
#include "emu_harness.h"

static emu_proc_t emu;
static const char *const emu_args[] = {"--user", "alice:s3cret", "--cursor-timeout", "2", NULL};

static int
setup(void **state)
{
    (void)state;
    mongoc_init();
    return emu_proc_start(&emu, true, emu_args) ? 0 : -1;
}

static int
teardown(void **state)
{
    (void)state;
    int rc = emu_proc_stop(&emu);
    mongoc_cleanup();
    return rc == 0 ? 0 : -1;
}

/* A client for alice with the given password and CA file. */
static mongoc_client_t *
client_for(const char *password, const char *ca)
{
    char uri_s[512];
    snprintf(uri_s, sizeof uri_s,
             "mongodb://127.0.0.1:%d/?tls=true&serverSelectionTimeoutMS=3000&retryWrites=false",
             emu.port);
    mongoc_uri_t *uri = mongoc_uri_new(uri_s);
    assert_non_null(uri);
    mongoc_uri_set_username(uri, "alice");
    mongoc_uri_set_password(uri, password);
    mongoc_uri_set_auth_mechanism(uri, "SCRAM-SHA-1");
    mongoc_uri_set_auth_source(uri, "admin");
    mongoc_uri_set_option_as_utf8(uri, MONGOC_URI_TLSCAFILE, ca);
    mongoc_client_t *c = mongoc_client_new_from_uri(uri);
    mongoc_uri_destroy(uri);
    assert_non_null(c);
    mongoc_client_set_error_api(c, MONGOC_ERROR_API_VERSION_2);
    return c;
}

static mongoc_client_t *
client(void)
{
    return client_for("s3cret", emu_cert("ca.pem"));
}

static bool
ping(mongoc_client_t *c, bson_error_t *error)
{
    bson_t cmd = BSON_INITIALIZER;
    BSON_APPEND_INT32(&cmd, "ping", 1);
    bool ok = mongoc_client_command_simple(c, "admin", &cmd, NULL, NULL, error);
    bson_destroy(&cmd);
    return ok;
}

/* Inserts n documents {_id: i, i, g: i % 7, s: "doc-<i>"} into test.<coll>. */
static void
insert_n(mongoc_client_t *c, const char *coll_name, int n)
{
    mongoc_collection_t *coll = mongoc_client_get_collection(c, "test", coll_name);
    bson_t **docs = bson_malloc((size_t)n * sizeof *docs);
    bson_error_t error;
    for (int i = 0; i < n; i++) {
        char s[32];
        snprintf(s, sizeof s, "doc-%d", i);
        docs[i] = BCON_NEW("_id", BCON_INT32(i), "i", BCON_INT32(i), "g", BCON_INT32(i % 7), "s",
                           BCON_UTF8(s));
    }
    bool ok =
        mongoc_collection_insert_many(coll, (const bson_t **)docs, (size_t)n, NULL, NULL, &error);
    if (!ok)
        fail_msg("insert_many: %s", error.message);
    for (int i = 0; i < n; i++)
        bson_destroy(docs[i]);
    bson_free(docs);
    mongoc_collection_destroy(coll);
}

static void
test_tls_scram_sha1_connect(void **state)
{
    (void)state;
    mongoc_client_t *c = client();
    bson_error_t error;
    bson_t reply;
    bson_t *cmd = BCON_NEW("hello", BCON_INT32(1));
    if (!mongoc_client_command_simple(c, "admin", cmd, NULL, &reply, &error))
        fail_msg("hello: %s", error.message);
    bson_iter_t it;
    assert_true(bson_iter_init_find(&it, &reply, "maxWireVersion"));
    assert_int_equal(bson_iter_int32(&it), 13);
    assert_true(bson_iter_init_find(&it, &reply, "maxBsonObjectSize"));
    assert_int_equal(bson_iter_int32(&it), 16 * 1024 * 1024);
    assert_false(bson_iter_init_find(&it, &reply, "topologyVersion"));
    bson_destroy(&reply);
    bson_destroy(cmd);
    /* Authenticated: a command that needs it works. */
    bson_t *lc = BCON_NEW("listDatabases", BCON_INT32(1));
    if (!mongoc_client_command_simple(c, "admin", lc, NULL, NULL, &error))
        fail_msg("listDatabases: %s", error.message);
    bson_destroy(lc);
    mongoc_client_destroy(c);
}

static void
test_wrong_password_refused(void **state)
{
    (void)state;
    mongoc_client_t *c = client_for("wrong", emu_cert("ca.pem"));
    bson_error_t error;
    assert_false(ping(c, &error));
    assert_non_null(strstr(error.message, "Authentication failed"));
    mongoc_client_destroy(c);
}

static void
test_unauthenticated_is_refused(void **state)
{
    (void)state;
    char uri_s[256];
    snprintf(uri_s, sizeof uri_s, "mongodb://127.0.0.1:%d/?tls=true&serverSelectionTimeoutMS=3000",
             emu.port);
    mongoc_uri_t *uri = mongoc_uri_new(uri_s);
    mongoc_uri_set_option_as_utf8(uri, MONGOC_URI_TLSCAFILE, emu_cert("ca.pem"));
    mongoc_client_t *c = mongoc_client_new_from_uri(uri);
    mongoc_client_set_error_api(c, MONGOC_ERROR_API_VERSION_2);
    mongoc_uri_destroy(uri);
    bson_error_t error;
    assert_true(ping(c, &error)); /* ping needs no authentication */
    bson_t *cmd = BCON_NEW("listDatabases", BCON_INT32(1));
    assert_false(mongoc_client_command_simple(c, "admin", cmd, NULL, NULL, &error));
    assert_int_equal(error.code, 13);
    bson_destroy(cmd);
    mongoc_client_destroy(c);
}

static void
test_insert_100k(void **state)
{
    (void)state;
    mongoc_client_t *c = client();
    insert_n(c, "big", 100000);
    mongoc_collection_t *coll = mongoc_client_get_collection(c, "test", "big");
    bson_error_t error;
    int64_t n = mongoc_collection_estimated_document_count(coll, NULL, NULL, NULL, &error);
    assert_int_equal(n, 100000);
    /* Every document is there with its fields. */
    bson_t *filter = BCON_NEW("_id", BCON_INT32(77777));
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, NULL, NULL);
    const bson_t *doc;
    assert_true(mongoc_cursor_next(cur, &doc));
    bson_iter_t it;
    assert_true(bson_iter_init_find(&it, doc, "s"));
    assert_string_equal(bson_iter_utf8(&it, NULL), "doc-77777");
    assert_false(mongoc_cursor_next(cur, &doc));
    mongoc_cursor_destroy(cur);
    bson_destroy(filter);
    mongoc_collection_destroy(coll);
    mongoc_client_destroy(c);
}

static int getmores;

static void
count_getmore(const mongoc_apm_command_started_t *event)
{
    if (strcmp(mongoc_apm_command_started_get_command_name(event), "getMore") == 0)
        getmores++;
}

static void
test_find_filter_sort_batches(void **state)
{
    (void)state;
    mongoc_client_t *c = client();
    insert_n(c, "sorted", 100000);
    mongoc_apm_callbacks_t *cbs = mongoc_apm_callbacks_new();
    mongoc_apm_set_command_started_cb(cbs, count_getmore);
    mongoc_client_set_apm_callbacks(c, cbs, NULL);
    getmores = 0;

    mongoc_collection_t *coll = mongoc_client_get_collection(c, "test", "sorted");
    bson_t *filter = BCON_NEW("g", BCON_INT32(3), "i", "{", "$gte", BCON_INT32(1000), "}");
    bson_t *opts = BCON_NEW("sort", "{", "i", BCON_INT32(-1), "}", "batchSize", BCON_INT32(500));
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
    const bson_t *doc;
    int expected = 99999;
    while (expected % 7 != 3)
        expected--;
    int n = 0;
    while (mongoc_cursor_next(cur, &doc)) {
        bson_iter_t it;
        assert_true(bson_iter_init_find(&it, doc, "i"));
        assert_int_equal(bson_iter_int32(&it), expected);
        expected -= 7;
        n++;
    }
    bson_error_t error;
    if (mongoc_cursor_error(cur, &error))
        fail_msg("cursor: %s", error.message);
    assert_true(expected < 1000);
    /* (99999 - 1000) / 7 + 1 documents with g == 3 and i >= 1000, in batches of 500. */
    assert_int_equal(n, 14143);
    assert_int_equal(getmores, (n + 499) / 500 - 1 + (n % 500 == 0));
    mongoc_cursor_destroy(cur);
    bson_destroy(filter);
    bson_destroy(opts);
    mongoc_collection_destroy(coll);
    mongoc_client_destroy(c);
    mongoc_apm_callbacks_destroy(cbs);
}

/* getMore on cursor id `id` of test.<coll>; returns the server's error code (0 on success). */
static uint32_t
get_more(mongoc_client_t *c, const char *coll, int64_t id)
{
    bson_t *cmd = BCON_NEW("getMore", BCON_INT64(id), "collection", BCON_UTF8(coll));
    bson_error_t error;
    bool ok = mongoc_client_command_simple(c, "test", cmd, NULL, NULL, &error);
    bson_destroy(cmd);
    return ok ? 0 : error.code;
}

static void
test_kill_cursors(void **state)
{
    (void)state;
    mongoc_client_t *c = client();
    insert_n(c, "killed", 1000);
    mongoc_collection_t *coll = mongoc_client_get_collection(c, "test", "killed");
    bson_t *opts = BCON_NEW("batchSize", BCON_INT32(10));
    bson_t filter = BSON_INITIALIZER;
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &filter, opts, NULL);
    const bson_t *doc;
    assert_true(mongoc_cursor_next(cur, &doc));
    int64_t id = mongoc_cursor_get_id(cur);
    assert_true(id != 0);
    mongoc_cursor_destroy(cur); /* sends killCursors */
    assert_int_equal(get_more(c, "killed", id), 43);
    /* killCursors itself reports what it did. */
    bson_t reply;
    bson_error_t error;
    bson_t *kc = BCON_NEW("killCursors", BCON_UTF8("killed"), "cursors", "[", BCON_INT64(id), "]");
    assert_true(mongoc_client_command_simple(c, "test", kc, NULL, &reply, &error));
    bson_iter_t it, arr;
    assert_true(bson_iter_init_find(&it, &reply, "cursorsNotFound"));
    assert_true(bson_iter_recurse(&it, &arr) && bson_iter_next(&arr));
    assert_int_equal(bson_iter_int64(&arr), id);
    bson_destroy(&reply);
    bson_destroy(kc);
    bson_destroy(opts);
    mongoc_collection_destroy(coll);
    mongoc_client_destroy(c);
}

static void
configure_fail_point(mongoc_client_t *c, const char *json)
{
    bson_error_t error;
    bson_t *cmd = bson_new_from_json((const uint8_t *)json, -1, &error);
    assert_non_null(cmd);
    if (!mongoc_client_command_simple(c, "admin", cmd, NULL, NULL, &error))
        fail_msg("configureFailPoint: %s", error.message);
    bson_destroy(cmd);
}

static void
test_fail_command_closes_connection_mid_cursor(void **state)
{
    (void)state;
    mongoc_client_t *c = client();
    mongoc_client_t *admin = client();
    insert_n(c, "dropped", 1000);
    mongoc_collection_t *coll = mongoc_client_get_collection(c, "test", "dropped");
    bson_t *opts = BCON_NEW("batchSize", BCON_INT32(100), "sort", "{", "_id", BCON_INT32(1), "}");
    bson_t filter = BSON_INITIALIZER;
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &filter, opts, NULL);
    const bson_t *doc;
    int n = 0;
    while (n < 100 && mongoc_cursor_next(cur, &doc))
        n++;
    assert_int_equal(n, 100);
    configure_fail_point(admin, "{\"configureFailPoint\": \"failCommand\", \"mode\": {\"times\": "
                                "1}, \"data\": {\"failCommands\": [\"getMore\"], "
                                "\"closeConnection\": true}}");
    assert_false(mongoc_cursor_next(cur, &doc));
    bson_error_t error;
    assert_true(mongoc_cursor_error(cur, &error));
    assert_int_equal(error.domain, MONGOC_ERROR_STREAM);
    mongoc_cursor_destroy(cur);
    /* The fail point fired once; a new cursor reads everything. */
    cur = mongoc_collection_find_with_opts(coll, &filter, opts, NULL);
    n = 0;
    while (mongoc_cursor_next(cur, &doc))
        n++;
    if (mongoc_cursor_error(cur, &error))
        fail_msg("cursor after reconnect: %s", error.message);
    assert_int_equal(n, 1000);
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    mongoc_collection_destroy(coll);
    mongoc_client_destroy(admin);
    mongoc_client_destroy(c);
}

static void
test_fail_command_error_code(void **state)
{
    (void)state;
    mongoc_client_t *c = client();
    configure_fail_point(c, "{\"configureFailPoint\": \"failCommand\", \"mode\": {\"times\": 2}, "
                            "\"data\": {\"failCommands\": [\"find\"], \"errorCode\": 91, "
                            "\"errorLabels\": [\"ResumableChangeStreamError\"]}}");
    bson_t *cmd = BCON_NEW("find", BCON_UTF8("anything"));
    bson_error_t error;
    bson_t reply;
    assert_false(mongoc_client_command_simple(c, "test", cmd, NULL, &reply, &error));
    assert_int_equal(error.code, 91);
    bson_iter_t it;
    assert_true(bson_iter_init_find(&it, &reply, "errorLabels"));
    bson_destroy(&reply);
    assert_false(mongoc_client_command_simple(c, "test", cmd, NULL, NULL, &error));
    assert_int_equal(error.code, 91);
    assert_true(mongoc_client_command_simple(c, "test", cmd, NULL, NULL, &error));
    bson_destroy(cmd);
    mongoc_client_destroy(c);
}

static void
test_cursor_not_found_after_expiry(void **state)
{
    (void)state;
    mongoc_client_t *c = client();
    insert_n(c, "expiring", 100);
    mongoc_collection_t *coll = mongoc_client_get_collection(c, "test", "expiring");
    bson_t *opts = BCON_NEW("batchSize", BCON_INT32(10));
    bson_t filter = BSON_INITIALIZER;
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &filter, opts, NULL);
    const bson_t *doc;
    for (int i = 0; i < 10; i++)
        assert_true(mongoc_cursor_next(cur, &doc));
    sleep(4); /* the server was started with --cursor-timeout 2 */
    assert_false(mongoc_cursor_next(cur, &doc));
    bson_error_t error;
    assert_true(mongoc_cursor_error(cur, &error));
    assert_int_equal(error.code, 43);
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    mongoc_collection_destroy(coll);
    mongoc_client_destroy(c);
}

static void
test_untrusted_ca_refused(void **state)
{
    (void)state;
    mongoc_client_t *c = client_for("s3cret", emu_cert("other-ca.pem"));
    bson_error_t error;
    assert_false(ping(c, &error));
    assert_non_null(strstr(error.message, "TLS handshake failed"));
    mongoc_client_destroy(c);
}

static void
test_plain_client_refused_by_tls_server(void **state)
{
    (void)state;
    char uri_s[256];
    snprintf(uri_s, sizeof uri_s, "mongodb://127.0.0.1:%d/?serverSelectionTimeoutMS=2000",
             emu.port);
    mongoc_client_t *c = mongoc_client_new(uri_s);
    bson_error_t error;
    assert_false(ping(c, &error));
    mongoc_client_destroy(c);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_tls_scram_sha1_connect),
    cmocka_unit_test(test_wrong_password_refused),
    cmocka_unit_test(test_unauthenticated_is_refused),
    cmocka_unit_test(test_insert_100k),
    cmocka_unit_test(test_find_filter_sort_batches),
    cmocka_unit_test(test_kill_cursors),
    cmocka_unit_test(test_fail_command_closes_connection_mid_cursor),
    cmocka_unit_test(test_fail_command_error_code),
    cmocka_unit_test(test_cursor_not_found_after_expiry),
    cmocka_unit_test(test_untrusted_ca_refused),
    cmocka_unit_test(test_plain_client_refused_by_tls_server),
};

DC_CMOCKA_GROUP_MAIN(tests, setup, teardown)

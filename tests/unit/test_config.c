/* test_config.c: configuration.json parsing and validation (config.c): a table of bad files and
 * the message each must give, good files in Fivetran's all-strings form and with JSON numbers and
 * booleans, the URI built with setters and the masked description. No server is contacted. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <mongoc/mongoc.h>

#include "config/config.h"

#include "cmocka_main.h"

/* Every password in the bad table contains this; no message or log line may. */
#define SECRET "s3cr3t"

#define SEED_REST "\"username\": \"alice\", \"password\": \"" SECRET "\", \"database\": \"shop\""
#define SEED      "{\"hostname\": \"db.example.com\", \"port\": \"27017\", " SEED_REST

/* ---- stderr capture (dc_log writes to fd 2) -------------------------------------------- */

static char captured[16384];
static FILE *cap_file;
static int saved_fd = -1;

static void
capture_begin(void)
{
    fflush(stderr);
    cap_file = tmpfile();
    assert_non_null(cap_file);
    saved_fd = dup(STDERR_FILENO);
    dup2(fileno(cap_file), STDERR_FILENO);
}

static const char *
capture_end(void)
{
    size_t n;
    fflush(stderr);
    dup2(saved_fd, STDERR_FILENO);
    close(saved_fd);
    rewind(cap_file);
    n = fread(captured, 1, sizeof captured - 1, cap_file);
    captured[n] = '\0';
    fclose(cap_file);
    return captured;
}

static bool
parse(const char *json, dc_config_t *cfg, dc_error_t *err)
{
    return dc_config_parse(json, strlen(json), "configuration.json", cfg, err);
}

/* ---- bad configurations ------------------------------------------------------------------ */

typedef struct {
    const char *json;
    const char *expected; /* a substring of the message */
} bad_case_t;

static const bad_case_t bad_cases[] = {
    /* Required keys. */
    {"{\"port\": \"27017\", " SEED_REST "}", "configuration.json: missing required key 'hostname'"},
    {"{\"hostname\": \"\", " SEED_REST "}", "configuration.json: missing required key 'hostname'"},
    {"{\"hostname\": \"h\", \"password\": \"" SECRET "\", \"database\": \"d\"}",
     "configuration.json: missing required key 'username'"},
    {"{\"hostname\": \"h\", \"username\": \"u\", \"password\": \"\", \"database\": \"d\"}",
     "configuration.json: missing required key 'password'"},
    {"{\"hostname\": \"h\", \"username\": \"u\", \"password\": \"" SECRET "\"}",
     "configuration.json: missing required key 'database'"},
    /* Integers. */
    {SEED ", \"port\": \"0\"}", "configuration.json: key 'port' is given twice"},
    {"{\"hostname\": \"h\", \"port\": \"0\", " SEED_REST "}",
     "configuration.json: port: must be a whole number from 1 to 65535, not '0'"},
    {"{\"hostname\": \"h\", \"port\": \"65536\", " SEED_REST "}",
     "port: must be a whole number from 1 to 65535, not '65536'"},
    {"{\"hostname\": \"h\", \"port\": \"abc\", " SEED_REST "}",
     "port: must be a whole number from 1 to 65535, not 'abc'"},
    {"{\"hostname\": \"h\", \"port\": 27017.5, " SEED_REST "}",
     "port: must be a whole number from 1 to 65535, not 27017.5"},
    {"{\"hostname\": \"h\", \"port\": \"27017.0\", " SEED_REST "}",
     "port: must be a whole number from 1 to 65535, not '27017.0'"},
    {"{\"hostname\": \"h\", \"port\": true, " SEED_REST "}", "port: must be a whole number"},
    {"{\"hostname\": \"h\", \"port\": {}, " SEED_REST "}", "port: must be a whole number from 1 "
                                                           "to 65535, not an object"},
    {SEED ", \"batch_size\": \"-1\"}",
     "batch_size: must be a whole number from 1 to 100000, not '-1'"},
    {SEED ", \"batch_size\": 100001}", "batch_size: must be a whole number from 1 to 100000"},
    {SEED ", \"batch_size\": 18446744073709551617}", "invalid JSON at line 1"},
    {SEED ", \"checkpoint_interval\": 0}",
     "checkpoint_interval: must be a whole number from 1 to 10000000, not 0"},
    {SEED ", \"cursor_lookback_seconds\": \"31536001\"}",
     "cursor_lookback_seconds: must be a whole number from 0 to 31536000"},
    /* Booleans. */
    {SEED ", \"tls\": \"maybe\"}", "configuration.json: tls: must be true or false, not 'maybe'"},
    {SEED ", \"tls\": null}", "tls: must be true or false, not null"},
    {SEED ", \"tls_allow_invalid_hostnames\": 2}",
     "tls_allow_invalid_hostnames: must be true or false, not 2"},
    /* JSON syntax. */
    {"{\n  \"hostname\": \"h\",\n  \"port\": \"1\"\n  \"username\": \"u\"\n}",
     "configuration.json: invalid JSON at line 4, column 3:"},
    {"{\n  \"hostname\": \"h\",\n  \"password\": \"" SECRET "\",\n}",
     "invalid JSON at line 3, column 23: a comma before '}' or ']' (trailing comma)"},
    {"{\n  \"hostname\": \"h\",\n  \"password\": \"" SECRET "\"\n", "invalid JSON at line 3"},
    {"{\"hostname\": 'h'}", "invalid JSON at line 1, column 14"},
    {"[1, 2]", "configuration.json: the top level must be a JSON object {...}, not an array"},
    {"\"hostname\"", "the top level must be a JSON object {...}, not a string"},
    {"hostname: h", "invalid JSON at line 1, column 1: expected a JSON object"},
    {"", "configuration.json: the file is empty"},
    {" \n ", "configuration.json: the file is empty"},
    {SEED "}\n{\"port\": 1}", "invalid JSON at line 2, column 1: unexpected text after"},
    {"{\"hostname\": \"h\xff\"}", "invalid JSON at line 1, column 16: invalid UTF-8"},
    {"{\"hostname\": \"a\tb\"}", "invalid JSON at line 1"},
    {SEED ", \"hostname\": \"other\"}", "configuration.json: key 'hostname' is given twice"},
    /* Types of string keys. */
    {"{\"hostname\": \"h\", \"username\": \"u\", \"password\": [\"" SECRET "\"], \"database\": "
     "\"d\"}",
     "configuration.json: password: must be a string, not an array"},
    {"{\"hostname\": \"h\\u0000x\", " SEED_REST "}", "hostname: must not contain a NUL"},
    {"{\"hostname\": \"db.example.com:27017\", " SEED_REST "}",
     "hostname: 'db.example.com:27017' includes a port"},
    {"{\"hostname\": \"mongodb://h/\", " SEED_REST "}", "give it as uri instead"},
    {"{\"hostname\": \"db example\", " SEED_REST "}", "is not a valid host name or IP address"},
    {"{\"hostname\": \"h\", \"username\": \"u\", \"password\": \"" SECRET "\", \"database\": "
     "\"my db\"}",
     "database: 'my db' is not a valid database name"},
    /* TLS. */
    {SEED ", \"tls_ca_file\": \"/nonexistent/global-bundle.pem\"}",
     "configuration.json: tls_ca_file: cannot open '/nonexistent/global-bundle.pem': No such file "
     "or directory"},
    {SEED ", \"tls_ca_file\": \"/\"}", "tls_ca_file: cannot open '/': Is a directory"},
    {SEED ", \"tls\": \"false\", \"tls_ca_file\": \"/etc/hostname\"}",
     "tls_ca_file: TLS options are given but tls is false"},
    /* uri. */
    {"{\"uri\": \"mongodb://h/db\", \"hostname\": \"h\"}",
     "uri: cannot be combined with hostname or port"},
    {"{\"uri\": \"mongodb://h/db\", \"port\": 27017}",
     "uri: cannot be combined with hostname or port"},
    {"{\"uri\": \"mongodb://u:" SECRET "%zz@h/db\"}",
     "configuration.json: uri: not a valid MongoDB connection string"},
    {"{\"uri\": \"mongodb://u:" SECRET "/x@h/db\"}", "uri: not a valid MongoDB connection string"},
    {"{\"uri\": \"postgres://u:" SECRET "@h/db\"}", "uri: not a valid MongoDB connection string"},
    {"{\"uri\": \"mongodb://u:" SECRET "@x@h/db\"}", "uri: the user name or password contains an "
                                                     "unescaped '@'"},
    {"{\"uri\": \"mongodb://u:" SECRET "@h/\"}", "missing required key 'database'"},
    {"{\"uri\": \"mongodb://u@h/db\"}", "missing required key 'password'"},
    {"{\"uri\": \"mongodb://u:" SECRET "@h/db?authMechanism=GSSAPI\"}",
     "uri: authMechanism 'GSSAPI' is not supported"},
    {"{\"uri\": \"mongodb+srv://u:" SECRET "@c.example.net/db\", \"direct_connection\": true}",
     "direct_connection: cannot be true with several hosts or a mongodb+srv uri"},
    {"{\"uri\": \"mongodb://h/db?tls=false&tlsCAFile=/etc/hostname\"}",
     "uri: TLS options are given but tls is false"},
    /* Authentication and topology. */
    {SEED ", \"auth_mechanism\": \"GSSAPI\"}",
     "auth_mechanism: must be one of SCRAM-SHA-1, SCRAM-SHA-256, MONGODB-AWS, MONGODB-X509, "
     "PLAIN, not 'GSSAPI'"},
    {"{\"hostname\": \"h\", \"database\": \"d\", \"auth_mechanism\": \"MONGODB-X509\"}",
     "auth_mechanism: MONGODB-X509 needs a client certificate"},
    {SEED ", \"read_preference\": \"secondaryOnly\"}",
     "read_preference: must be one of primary, primaryPreferred, secondary, secondaryPreferred, "
     "nearest, not 'secondaryOnly'"},
    {SEED ", \"replica_set\": \"rs0\", \"direct_connection\": \"true\"}",
     "direct_connection: cannot be true when replica_set is given"},
    /* Replication settings. */
    {SEED ", \"start_date\": \"2024-13-01\"}",
     "start_date: must be an ISO-8601 date or date-time such as 2024-05-01 or "
     "2024-05-01T10:00:00Z, not '2024-13-01'"},
    {SEED ", \"start_date\": \"2023-02-29\"}", "start_date: must be an ISO-8601 date"},
    {SEED ", \"start_date\": \"yesterday\"}", "start_date: must be an ISO-8601 date"},
    {SEED ", \"start_date\": \"2024-05-01T25:00:00Z\"}", "start_date: must be an ISO-8601 date"},
    {SEED ", \"start_date\": \"2024-05-01T10:00:00+0x:00\"}", "start_date: must be an ISO-8601"},
    {SEED ", \"start_date\": 1714557600}",
     "start_date: must be an ISO-8601 date or date-time such as 2024-05-01 or "
     "2024-05-01T10:00:00Z, not 1714557600"},
    {SEED ", \"collections\": \",,\"}",
     "configuration.json: collections: an empty collection name in ',,'"},
    {SEED ", \"collections\": \"users, ,orders\"}", "collections: an empty collection name"},
    {SEED ", \"collections\": \"users, orders, users\"}", "collections: 'users' is listed twice"},
    {SEED ", \"collections\": [\"users\"]}", "collections: must be a string, not an array"},
    {SEED ", \"cursor_field\": \"$updated\"}", "cursor_field: '$updated' is not a valid field"},
};

static void
test_bad_configs(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        dc_config_t cfg;
        dc_error_t err;
        const char *log;
        bool ok;
        memset(&err, 0, sizeof err);
        capture_begin();
        ok = parse(bad_cases[i].json, &cfg, &err);
        log = capture_end();
        if (ok || !strstr(err.message, bad_cases[i].expected))
            fail_msg("case %zu: %s\n  expected: %s\n  got: %s", i, bad_cases[i].json,
                     bad_cases[i].expected, ok ? "(success)" : err.message);
        assert_int_equal(err.domain, DC_ERR_CONFIG);
        assert_int_equal(dc_error_exit_code(&err), 2);
        assert_null(strstr(err.message, SECRET));
        assert_null(strstr(log, SECRET));
        /* A failed parse leaves nothing to free. */
        assert_null(cfg.hostname);
        assert_null(cfg.password);
        dc_config_cleanup(&cfg);
    }
}

static void
test_too_many_keys(void **state)
{
    char json[8192];
    size_t n = 0;
    dc_config_t cfg;
    dc_error_t err;
    (void)state;
    n += (size_t)snprintf(json + n, sizeof json - n, "%s", SEED);
    for (int i = 0; i < 96; i++)
        n += (size_t)snprintf(json + n, sizeof json - n, ", \"x%d\": \"\"", i);
    snprintf(json + n, sizeof json - n, "}");
    capture_begin();
    bool ok = parse(json, &cfg, &err); /* 101 keys */
    capture_end();
    assert_false(ok);
    assert_non_null(strstr(err.message, "configuration.json: too many keys (101; at most 100)"));

    /* 100 keys pass, with a warning for each unknown one. */
    char *last = strrchr(json, ',');
    strcpy(last, "}");
    capture_begin();
    ok = parse(json, &cfg, &err);
    const char *log = capture_end();
    assert_true(ok);
    assert_non_null(strstr(log, "unknown key 'x94' ignored"));
    dc_config_cleanup(&cfg);
}

/* ---- good configurations ----------------------------------------------------------------- */

static void
test_seed_file(void **state)
{
    const char *json = "{\n"
                       "  \"hostname\": \"docdb.cluster-abc.us-east-1.docdb.amazonaws.com\",\n"
                       "  \"port\": \"27017\",\n"
                       "  \"username\": \"alice\",\n"
                       "  \"password\": \"" SECRET "\",\n"
                       "  \"database\": \"shop\"\n"
                       "}\n";
    dc_config_t cfg;
    dc_error_t err;
    char desc[512];
    (void)state;
    assert_true(parse(json, &cfg, &err));
    assert_string_equal(cfg.hostname, "docdb.cluster-abc.us-east-1.docdb.amazonaws.com");
    assert_int_equal(cfg.port, 27017);
    assert_string_equal(cfg.username, "alice");
    assert_string_equal(cfg.password, SECRET);
    assert_string_equal(cfg.database, "shop");
    /* Defaults. */
    assert_true(cfg.tls);
    assert_null(cfg.tls_ca_file);
    assert_false(cfg.tls_allow_invalid_certificates);
    assert_false(cfg.tls_allow_invalid_hostnames);
    assert_string_equal(cfg.auth_mechanism, "SCRAM-SHA-1");
    assert_string_equal(cfg.auth_source, "admin");
    assert_null(cfg.replica_set);
    assert_null(cfg.read_preference);
    assert_true(cfg.direct_connection);
    assert_null(cfg.uri);
    assert_null(cfg.collections);
    assert_int_equal(cfg.ncollections, 0);
    assert_string_equal(cfg.cursor_field, "updated_at");
    assert_int_equal(cfg.start_date_ms, INT64_C(631152000000));
    assert_false(cfg.start_date_set);
    assert_int_equal(cfg.batch_size, 10000);
    assert_int_equal(cfg.checkpoint_interval, 1000);
    assert_int_equal(cfg.cursor_lookback_seconds, 0);

    dc_config_describe(&cfg, desc, sizeof desc);
    assert_string_equal(desc,
                        "mongodb://alice:****@docdb.cluster-abc.us-east-1.docdb.amazonaws."
                        "com:27017/?tls=true&authMechanism=SCRAM-SHA-1&directConnection=true");

    mongoc_uri_t *uri = dc_config_uri(&cfg, &err);
    assert_non_null(uri);
    assert_string_equal(mongoc_uri_get_username(uri), "alice");
    assert_string_equal(mongoc_uri_get_password(uri), SECRET);
    assert_string_equal(mongoc_uri_get_auth_mechanism(uri), "SCRAM-SHA-1");
    assert_string_equal(mongoc_uri_get_auth_source(uri), "admin");
    assert_true(mongoc_uri_get_tls(uri));
    assert_false(mongoc_uri_get_option_as_bool(uri, MONGOC_URI_RETRYWRITES, true));
    assert_true(mongoc_uri_get_option_as_bool(uri, MONGOC_URI_DIRECTCONNECTION, false));
    assert_false(mongoc_uri_get_option_as_bool(uri, MONGOC_URI_TLSALLOWINVALIDCERTIFICATES, true));
    assert_false(mongoc_uri_get_option_as_bool(uri, MONGOC_URI_TLSALLOWINVALIDHOSTNAMES, true));
    assert_int_equal(mongoc_uri_get_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 0),
                     30000);
    assert_string_equal(mongoc_uri_get_appname(uri), "docdb-connector");
    assert_null(mongoc_uri_get_replica_set(uri));
    assert_int_equal(mongoc_read_prefs_get_mode(mongoc_uri_get_read_prefs_t(uri)),
                     MONGOC_READ_PRIMARY);
    const mongoc_host_list_t *h = mongoc_uri_get_hosts(uri);
    assert_string_equal(h->host, "docdb.cluster-abc.us-east-1.docdb.amazonaws.com");
    assert_int_equal(h->port, 27017);
    assert_null(h->next);
    mongoc_uri_destroy(uri);
    dc_config_cleanup(&cfg);
    assert_null(cfg.password);
    dc_config_cleanup(&cfg); /* twice is harmless */
}

static void
test_numbers_and_booleans(void **state)
{
    char ca[] = "/tmp/test_config_ca_XXXXXX";
    int fd = mkstemp(ca);
    char json[1024], desc[1024];
    dc_config_t cfg;
    dc_error_t err;
    (void)state;
    assert_true(fd >= 0);
    close(fd);
    snprintf(json, sizeof json,
             "{\"hostname\": \" db.example.com \", \"port\": 27018, \"username\": \"bob\", "
             "\"password\": \"pw\", \"database\": \"sales\", \"tls\": true, \"tls_ca_file\": "
             "\"%s\", \"tls_allow_invalid_certificates\": \"TRUE\", "
             "\"tls_allow_invalid_hostnames\": 1, \"auth_mechanism\": \"scram-sha-256\", "
             "\"auth_source\": \"users\", \"replica_set\": \"rs0\", \"read_preference\": "
             "\"SecondaryPreferred\", \"collections\": \" users , orders\", \"cursor_field\": "
             "\"meta.modified\", \"start_date\": \"2024-05-01T10:00:00.123+02:00\", "
             "\"batch_size\": 500, \"checkpoint_interval\": 5.0, \"cursor_lookback_seconds\": "
             "\"60\"}",
             ca);
    capture_begin();
    bool ok = parse(json, &cfg, &err);
    const char *log = capture_end();
    if (!ok)
        fail_msg("%s", err.message);
    assert_non_null(strstr(log, "tls_allow_invalid_certificates is true"));
    assert_non_null(strstr(log, "tls_allow_invalid_hostnames is true"));
    assert_non_null(strstr(log, "open to interception"));
    assert_string_equal(cfg.hostname, "db.example.com");
    assert_int_equal(cfg.port, 27018);
    assert_true(cfg.tls_allow_invalid_certificates);
    assert_true(cfg.tls_allow_invalid_hostnames);
    assert_string_equal(cfg.auth_mechanism, "SCRAM-SHA-256");
    assert_string_equal(cfg.auth_source, "users");
    assert_string_equal(cfg.replica_set, "rs0");
    assert_string_equal(cfg.read_preference, "secondaryPreferred");
    assert_false(cfg.direct_connection); /* a replica set is named */
    assert_int_equal(cfg.ncollections, 2);
    assert_string_equal(cfg.collections[0], "users");
    assert_string_equal(cfg.collections[1], "orders");
    assert_string_equal(cfg.cursor_field, "meta.modified");
    assert_true(cfg.start_date_set);
    assert_int_equal(cfg.start_date_ms, INT64_C(1714550400123)); /* 08:00:00.123Z */
    assert_int_equal(cfg.batch_size, 500);
    assert_int_equal(cfg.checkpoint_interval, 5);
    assert_int_equal(cfg.cursor_lookback_seconds, 60);

    dc_config_describe(&cfg, desc, sizeof desc);
    char expected[1024];
    snprintf(expected, sizeof expected,
             "mongodb://bob:****@db.example.com:27018/?tls=true&tlsCAFile=%s"
             "&tlsAllowInvalidCertificates=true&tlsAllowInvalidHostnames=true"
             "&authMechanism=SCRAM-SHA-256&authSource=users&replicaSet=rs0"
             "&readPreference=secondaryPreferred&directConnection=false",
             ca);
    assert_string_equal(desc, expected);

    mongoc_uri_t *uri = dc_config_uri(&cfg, &err);
    assert_non_null(uri);
    assert_string_equal(mongoc_uri_get_option_as_utf8(uri, MONGOC_URI_TLSCAFILE, NULL), ca);
    assert_true(mongoc_uri_get_option_as_bool(uri, MONGOC_URI_TLSALLOWINVALIDCERTIFICATES, false));
    assert_true(mongoc_uri_get_option_as_bool(uri, MONGOC_URI_TLSALLOWINVALIDHOSTNAMES, false));
    assert_false(mongoc_uri_get_option_as_bool(uri, MONGOC_URI_DIRECTCONNECTION, true));
    assert_string_equal(mongoc_uri_get_replica_set(uri), "rs0");
    assert_string_equal(mongoc_uri_get_auth_mechanism(uri), "SCRAM-SHA-256");
    assert_string_equal(mongoc_uri_get_auth_source(uri), "users");
    assert_int_equal(mongoc_read_prefs_get_mode(mongoc_uri_get_read_prefs_t(uri)),
                     MONGOC_READ_SECONDARY_PREFERRED);
    mongoc_uri_destroy(uri);
    dc_config_cleanup(&cfg);
    unlink(ca);
}

static void
test_tls_off_and_boolean_spellings(void **state)
{
    static const struct {
        const char *value;
        bool expected;
    } cases[] = {{"false", false},   {"\"false\"", false}, {"\"FALSE\"", false},
                 {"\"0\"", false},   {"0", false},         {"true", true},
                 {"\"True\"", true}, {"\"1\"", true},      {"\"\"", true} /* empty: the default */};
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char json[512], desc[512];
        dc_config_t cfg;
        dc_error_t err;
        snprintf(json, sizeof json, SEED ", \"tls\": %s}", cases[i].value);
        if (!parse(json, &cfg, &err))
            fail_msg("%s: %s", cases[i].value, err.message);
        assert_int_equal(cfg.tls, cases[i].expected);
        mongoc_uri_t *uri = dc_config_uri(&cfg, &err);
        assert_non_null(uri);
        assert_int_equal(mongoc_uri_get_tls(uri), cases[i].expected);
        dc_config_describe(&cfg, desc, sizeof desc);
        assert_non_null(strstr(desc, cases[i].expected ? "?tls=true&" : "?tls=false&"));
        mongoc_uri_destroy(uri);
        dc_config_cleanup(&cfg);
    }
}

static void
test_password_with_special_characters(void **state)
{
    const char *json = "{\"hostname\": \"h\", \"username\": \"al ice@corp\", \"password\": "
                       "\"p@ss:w/rd?#%+ x\", \"database\": \"d\"}";
    dc_config_t cfg;
    dc_error_t err;
    char desc[512];
    (void)state;
    assert_true(parse(json, &cfg, &err));
    assert_string_equal(cfg.password, "p@ss:w/rd?#%+ x");
    mongoc_uri_t *uri = dc_config_uri(&cfg, &err);
    assert_non_null(uri);
    assert_string_equal(mongoc_uri_get_username(uri), "al ice@corp");
    assert_string_equal(mongoc_uri_get_password(uri), "p@ss:w/rd?#%+ x");
    assert_string_equal(mongoc_uri_get_hosts(uri)->host, "h");
    assert_null(strstr(mongoc_uri_get_string(uri), "p@ss"));
    mongoc_uri_destroy(uri);
    dc_config_describe(&cfg, desc, sizeof desc);
    assert_string_equal(desc, "mongodb://al%20ice%40corp:****@h:27017/?tls=true&authMechanism="
                              "SCRAM-SHA-1&directConnection=true");
    assert_null(strstr(desc, "p@ss"));
    assert_null(strstr(desc, "w/rd"));
    dc_config_cleanup(&cfg);
}

static void
test_ipv6_hosts(void **state)
{
    static const char *const hosts[] = {"::1", "[::1]", "[fe80::1:2]", "2001:db8::7"};
    static const char *const bare[] = {"::1", "::1", "fe80::1:2", "2001:db8::7"};
    (void)state;
    for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++) {
        char json[512], desc[512], expected[128];
        dc_config_t cfg;
        dc_error_t err;
        snprintf(json, sizeof json, "{\"hostname\": \"%s\", \"port\": 27019, " SEED_REST "}",
                 hosts[i]);
        if (!parse(json, &cfg, &err))
            fail_msg("%s: %s", hosts[i], err.message);
        assert_string_equal(cfg.hostname, bare[i]);
        mongoc_uri_t *uri = dc_config_uri(&cfg, &err);
        assert_non_null(uri);
        assert_string_equal(mongoc_uri_get_hosts(uri)->host, bare[i]);
        assert_int_equal(mongoc_uri_get_hosts(uri)->port, 27019);
        mongoc_uri_destroy(uri);
        dc_config_describe(&cfg, desc, sizeof desc);
        snprintf(expected, sizeof expected, "@[%s]:27019/?", bare[i]);
        assert_non_null(strstr(desc, expected));
        dc_config_cleanup(&cfg);
    }
}

static void
test_uri(void **state)
{
    const char *json =
        "{\"uri\": \"mongodb://bob:fromuri@h1:27017,h2:27018/sales?replicaSet=rs0&readPreference="
        "secondaryPreferred&connectTimeoutMS=5000&appname=mine\", \"password\": \"p@ss word\"}";
    dc_config_t cfg;
    dc_error_t err;
    char desc[512];
    (void)state;
    if (!parse(json, &cfg, &err))
        fail_msg("%s", err.message);
    assert_null(cfg.hostname);
    assert_string_equal(cfg.username, "bob");
    assert_string_equal(cfg.password, "p@ss word"); /* the key overrides the URI */
    assert_string_equal(cfg.database, "sales");
    assert_string_equal(cfg.replica_set, "rs0");
    assert_string_equal(cfg.read_preference, "secondaryPreferred");
    assert_false(cfg.direct_connection);
    assert_true(cfg.tls); /* the default: the URI does not say */
    assert_string_equal(cfg.auth_mechanism, "SCRAM-SHA-1");
    assert_string_equal(cfg.auth_source, "sales"); /* the URI's rule: its database */

    dc_config_describe(&cfg, desc, sizeof desc);
    assert_string_equal(desc, "mongodb://bob:****@h1:27017,h2:27018/?tls=true&authMechanism="
                              "SCRAM-SHA-1&authSource=sales&replicaSet=rs0&readPreference="
                              "secondaryPreferred&directConnection=false&connectTimeoutMS=5000");
    assert_null(strstr(desc, "fromuri"));

    mongoc_uri_t *uri = dc_config_uri(&cfg, &err);
    assert_non_null(uri);
    assert_string_equal(mongoc_uri_get_password(uri), "p@ss word");
    assert_string_equal(mongoc_uri_get_appname(uri), "mine");
    assert_false(mongoc_uri_get_option_as_bool(uri, MONGOC_URI_RETRYWRITES, true));
    assert_true(mongoc_uri_get_tls(uri));
    assert_int_equal(mongoc_read_prefs_get_mode(mongoc_uri_get_read_prefs_t(uri)),
                     MONGOC_READ_SECONDARY_PREFERRED);
    mongoc_uri_destroy(uri);
    dc_config_cleanup(&cfg);

    /* mongodb+srv, database from the key, no credentials. */
    json = "{\"uri\": \"mongodb+srv://cluster0.example.net/?tls=false\", \"database\": \"d\"}";
    if (!parse(json, &cfg, &err))
        fail_msg("%s", err.message);
    assert_false(cfg.tls);
    assert_false(cfg.direct_connection);
    assert_null(cfg.username);
    dc_config_describe(&cfg, desc, sizeof desc);
    assert_string_equal(desc, "mongodb+srv://cluster0.example.net/?tls=false&directConnection="
                              "false");
    uri = dc_config_uri(&cfg, &err);
    assert_non_null(uri);
    assert_null(mongoc_uri_get_auth_mechanism(uri));
    mongoc_uri_destroy(uri);
    dc_config_cleanup(&cfg);
}

static void
test_dates(void **state)
{
    static const struct {
        const char *text;
        int64_t ms;
    } cases[] = {
        {"1990-01-01T00:00:00Z", INT64_C(631152000000)},
        {"2024-05-01", INT64_C(1714521600000)},
        {"2024-05-01T10:00:00", INT64_C(1714557600000)},
        {"2024-05-01t10:00:00z", INT64_C(1714557600000)},
        {"2024-05-01T10:00:00.5Z", INT64_C(1714557600500)},
        {"2024-05-01T10:00:00.123456789Z", INT64_C(1714557600123)},
        {"2024-05-01T10:00:00-05:30", INT64_C(1714577400000)},
        {"2024-05-01T10:00:00+0100", INT64_C(1714554000000)},
        {"2024-02-29T23:59:59Z", INT64_C(1709251199000)},
        {"1969-12-31T23:59:59Z", INT64_C(-1000)},
        {" 2000-01-01 ", INT64_C(946684800000)},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char json[512];
        dc_config_t cfg;
        dc_error_t err;
        snprintf(json, sizeof json, SEED ", \"start_date\": \"%s\"}", cases[i].text);
        if (!parse(json, &cfg, &err))
            fail_msg("%s: %s", cases[i].text, err.message);
        assert_true(cfg.start_date_set);
        if (cfg.start_date_ms != cases[i].ms)
            fail_msg("%s: %lld, expected %lld", cases[i].text, (long long)cfg.start_date_ms,
                     (long long)cases[i].ms);
        dc_config_cleanup(&cfg);
    }
}

static void
test_unknown_keys_warn(void **state)
{
    const char *json = SEED ", \"colour\": \"secret-value-1\", \"batchsize\": \"5\", "
                            "\"nested\": {\"a\": [1, 2]}, \"\\u00e9t\\u00e9\": null}";
    dc_config_t cfg;
    dc_error_t err;
    (void)state;
    capture_begin();
    bool ok = parse(json, &cfg, &err);
    const char *log = capture_end();
    if (!ok)
        fail_msg("%s", err.message);
    assert_non_null(strstr(log, "configuration.json: unknown key 'colour' ignored"));
    assert_non_null(strstr(log, "configuration.json: unknown key 'batchsize' ignored (did you mean "
                                "'batch_size'?)"));
    assert_non_null(strstr(log, "unknown key 'nested' ignored"));
    assert_non_null(strstr(log, "unknown key '\xc3\xa9t\xc3\xa9' ignored"));
    assert_null(strstr(log, "secret-value-1"));
    assert_null(strstr(log, SECRET));
    assert_int_equal(cfg.batch_size, 10000);
    assert_string_equal(cfg.hostname, "db.example.com");
    dc_config_cleanup(&cfg);
}

static void
test_empty_optional_values(void **state)
{
    const char *json = SEED ", \"tls_ca_file\": \"\", \"replica_set\": \"\", \"uri\": \"\", "
                            "\"collections\": \" \", \"start_date\": \"\", \"batch_size\": \"\", "
                            "\"auth_mechanism\": \"\", \"read_preference\": \"\"}";
    dc_config_t cfg;
    dc_error_t err;
    (void)state;
    if (!parse(json, &cfg, &err))
        fail_msg("%s", err.message);
    assert_null(cfg.tls_ca_file);
    assert_null(cfg.replica_set);
    assert_null(cfg.uri);
    assert_null(cfg.collections);
    assert_false(cfg.start_date_set);
    assert_int_equal(cfg.batch_size, 10000);
    assert_string_equal(cfg.auth_mechanism, "SCRAM-SHA-1");
    assert_null(cfg.read_preference);
    assert_true(cfg.direct_connection);
    dc_config_cleanup(&cfg);
}

static void
test_other_mechanisms(void **state)
{
    dc_config_t cfg;
    dc_error_t err;
    char desc[512];
    (void)state;
    /* PLAIN (LDAP): credentials live in $external. */
    assert_true(parse(SEED ", \"auth_mechanism\": \"PLAIN\"}", &cfg, &err));
    assert_string_equal(cfg.auth_source, "$external");
    mongoc_uri_t *uri = dc_config_uri(&cfg, &err);
    assert_string_equal(mongoc_uri_get_auth_mechanism(uri), "PLAIN");
    assert_string_equal(mongoc_uri_get_auth_source(uri), "$external");
    mongoc_uri_destroy(uri);
    dc_config_cleanup(&cfg);

    /* MONGODB-AWS without keys: the driver takes them from the environment. */
    assert_true(parse("{\"hostname\": \"h\", \"database\": \"d\", \"auth_mechanism\": "
                      "\"MONGODB-AWS\"}",
                      &cfg, &err));
    uri = dc_config_uri(&cfg, &err);
    assert_string_equal(mongoc_uri_get_auth_mechanism(uri), "MONGODB-AWS");
    assert_null(mongoc_uri_get_username(uri));
    mongoc_uri_destroy(uri);
    dc_config_describe(&cfg, desc, sizeof desc);
    assert_string_equal(desc, "mongodb://h:27017/?tls=true&authMechanism=MONGODB-AWS&authSource="
                              "$external&directConnection=true");
    dc_config_cleanup(&cfg);
}

static void
test_load_file(void **state)
{
    char path[] = "/tmp/test_config_json_XXXXXX";
    int fd = mkstemp(path);
    const char *json = "{\n  \"hostname\": \"h\",\n  \"port\": \"x\"\n}\n";
    dc_config_t cfg;
    dc_error_t err;
    char expected[256];
    (void)state;
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "\xEF\xBB\xBF", 3), 3); /* a byte order mark is skipped */
    assert_int_equal(write(fd, json, strlen(json)), (ssize_t)strlen(json));
    close(fd);
    assert_false(dc_config_load(path, &cfg, &err));
    snprintf(expected, sizeof expected, "%s: port: must be a whole number", path);
    assert_non_null(strstr(err.message, expected));

    fd = open(path, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, SEED "}", strlen(SEED "}")), (ssize_t)strlen(SEED "}"));
    close(fd);
    assert_true(dc_config_load(path, &cfg, &err));
    assert_string_equal(cfg.password, SECRET);
    dc_config_cleanup(&cfg);
    unlink(path);

    assert_false(dc_config_load("/nonexistent/configuration.json", &cfg, &err));
    assert_int_equal(err.domain, DC_ERR_CONFIG);
    assert_string_equal(err.message,
                        "cannot open '/nonexistent/configuration.json': No such file or directory");
    assert_false(dc_config_load("/tmp", &cfg, &err));
    assert_non_null(strstr(err.message, "Is a directory"));
}

static void
test_key_table(void **state)
{
    size_t n;
    const dc_config_key_t *k = dc_config_keys(&n);
    (void)state;
    assert_int_equal(n, 21);
    for (size_t i = 0; i < n; i++) {
        assert_non_null(k[i].name);
        assert_non_null(k[i].type);
        assert_non_null(k[i].help);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(k[i].name, k[j].name);
        assert_int_equal(k[i].secret,
                         strcmp(k[i].name, "password") == 0 || strcmp(k[i].name, "uri") == 0);
    }
    assert_string_equal(k[0].name, "hostname");
    assert_string_equal(k[1].dflt, "27017");
}

static void
test_describe_truncates(void **state)
{
    dc_config_t cfg;
    dc_error_t err;
    char small[12];
    (void)state;
    assert_true(parse(SEED "}", &cfg, &err));
    dc_config_describe(&cfg, small, sizeof small);
    assert_string_equal(small, "mongodb://a");
    dc_config_cleanup(&cfg);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_bad_configs),
    cmocka_unit_test(test_too_many_keys),
    cmocka_unit_test(test_seed_file),
    cmocka_unit_test(test_numbers_and_booleans),
    cmocka_unit_test(test_tls_off_and_boolean_spellings),
    cmocka_unit_test(test_password_with_special_characters),
    cmocka_unit_test(test_ipv6_hosts),
    cmocka_unit_test(test_uri),
    cmocka_unit_test(test_dates),
    cmocka_unit_test(test_unknown_keys_warn),
    cmocka_unit_test(test_empty_optional_values),
    cmocka_unit_test(test_other_mechanisms),
    cmocka_unit_test(test_load_file),
    cmocka_unit_test(test_key_table),
    cmocka_unit_test(test_describe_truncates),
};

DC_CMOCKA_MAIN(tests)

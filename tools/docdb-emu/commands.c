/* commands.c: the command table and dispatch: authentication gate, fail points, DocumentDB's
 * refusal of retryable writes, and the handshake, authentication and administrative commands.
 * Reads and writes of documents live in crud.c. */
#include "commands.h"
#include "cursor.h"
#include "failpoint.h"
#include "index.h"
#include "server.h"
#include "store.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers shared with crud.c ---- */

bool
emu_cmd_string(const emu_cmd_t *c, const char *field, const char **out, emu_error_t *err)
{
    bson_iter_t it;
    if (!bson_iter_init_find(&it, c->cmd, field) || !BSON_ITER_HOLDS_UTF8(&it))
        return emu_error_set(err, EMU_TYPE_MISMATCH,
                             "BSON field '%s.%s' is missing or not a string", c->name, field);
    *out = bson_iter_utf8(&it, NULL);
    return true;
}

bool
emu_cmd_doc(const emu_cmd_t *c, const char *field, bson_t *out, bool *present, emu_error_t *err)
{
    bson_iter_t it;
    *present = false;
    bson_init(out);
    if (!bson_iter_init_find(&it, c->cmd, field))
        return true;
    if (!BSON_ITER_HOLDS_DOCUMENT(&it))
        return emu_error_set(err, EMU_TYPE_MISMATCH,
                             "BSON field '%s.%s' is the wrong type '%s', expected type 'object'",
                             c->name, field, emu_type_name(bson_iter_type(&it)));
    const uint8_t *data;
    uint32_t len;
    bson_iter_document(&it, &len, &data);
    bson_destroy(out);
    if (!bson_init_static(out, data, len))
        return emu_error_set(err, EMU_BAD_VALUE, "invalid document in '%s'", field);
    *present = true;
    return true;
}

bool
emu_cmd_int64(const emu_cmd_t *c, const char *field, int64_t *out, bool *present, emu_error_t *err)
{
    bson_iter_t it;
    *present = false;
    if (!bson_iter_init_find(&it, c->cmd, field))
        return true;
    if (BSON_ITER_HOLDS_DOUBLE(&it)) {
        double d = bson_iter_double(&it);
        if (d != d || d < -9.2e18 || d > 9.2e18 || (double)(int64_t)d != d)
            return emu_error_set(err, EMU_BAD_VALUE, "BSON field '%s.%s' must be an integer",
                                 c->name, field);
    } else if (!BSON_ITER_HOLDS_INT32(&it) && !BSON_ITER_HOLDS_INT64(&it) &&
               !BSON_ITER_HOLDS_DECIMAL128(&it)) {
        return emu_error_set(err, EMU_TYPE_MISMATCH,
                             "BSON field '%s.%s' is the wrong type '%s', expected types "
                             "'[long, int, decimal, double]'",
                             c->name, field, emu_type_name(bson_iter_type(&it)));
    }
    *out = bson_iter_as_int64(&it);
    *present = true;
    return true;
}

bool
emu_cmd_bool(const emu_cmd_t *c, const char *field, bool dflt)
{
    bson_iter_t it;
    if (!bson_iter_init_find(&it, c->cmd, field))
        return dflt;
    return bson_iter_as_bool(&it);
}

bool
emu_valid_ns(const char *db, const char *coll, emu_error_t *err)
{
    if (!db || !*db || strlen(db) >= 64 || strpbrk(db, "/\\. \"$"))
        return emu_error_set(err, EMU_INVALID_NAMESPACE, "Invalid database name: '%s'",
                             db ? db : "");
    if (coll &&
        (!*coll || coll[0] == '.' || strchr(coll, '\0') == coll ||
         (coll[0] == '$' && strncmp(coll, "$cmd", 4) != 0) || strlen(db) + 1 + strlen(coll) > 255))
        return emu_error_set(err, EMU_INVALID_NAMESPACE, "Invalid collection name: %s", coll);
    return true;
}

/* ---- handshake ---- */

static const emu_user_t *
find_user(const char *name)
{
    for (int i = 0; i < emu_config.nusers; i++)
        if (strcmp(emu_config.users[i].name, name) == 0)
            return &emu_config.users[i];
    return NULL;
}

static int
mechs_supported(void)
{
    return emu_config.personality == EMU_DOCUMENTDB ? 1 : 2;
}

static bool
cmd_hello(emu_cmd_t *c, bson_t *reply, emu_error_t *err)
{
    (void)err;
    bson_iter_t it;
    bool legacy_name = strcmp(c->name, "hello") != 0;
    if (bson_iter_init_find(&it, c->cmd, "helloOk") && bson_iter_as_bool(&it))
        BSON_APPEND_BOOL(reply, "helloOk", true);
    BSON_APPEND_BOOL(reply, legacy_name ? "ismaster" : "isWritablePrimary", true);
    if (emu_config.replica_set) {
        bson_t hosts;
        BSON_APPEND_UTF8(reply, "setName", emu_config.replica_set);
        BSON_APPEND_INT32(reply, "setVersion", 1);
        BSON_APPEND_BOOL(reply, "secondary", false);
        BSON_APPEND_ARRAY_BEGIN(reply, "hosts", &hosts);
        BSON_APPEND_UTF8(&hosts, "0", c->conn->local_addr);
        bson_append_array_end(reply, &hosts);
        BSON_APPEND_UTF8(reply, "primary", c->conn->local_addr);
        BSON_APPEND_UTF8(reply, "me", c->conn->local_addr);
        bson_oid_t election;
        bson_oid_init_from_string(&election, "7fffffff0000000000000001");
        BSON_APPEND_OID(reply, "electionId", &election);
    }
    BSON_APPEND_INT32(reply, "maxBsonObjectSize", EMU_MAX_BSON_SIZE);
    BSON_APPEND_INT32(reply, "maxMessageSizeBytes", EMU_MAX_MESSAGE_SIZE);
    BSON_APPEND_INT32(reply, "maxWriteBatchSize", EMU_MAX_WRITE_BATCH);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    BSON_APPEND_DATE_TIME(reply, "localTime", (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    BSON_APPEND_INT32(reply, "logicalSessionTimeoutMinutes", 30);
    BSON_APPEND_INT32(reply, "connectionId", (int32_t)c->conn->id);
    BSON_APPEND_INT32(reply, "minWireVersion", 0);
    BSON_APPEND_INT32(reply, "maxWireVersion", emu_config.wire_version);
    BSON_APPEND_BOOL(reply, "readOnly", false);
    if (bson_iter_init_find(&it, c->cmd, "saslSupportedMechs") && BSON_ITER_HOLDS_UTF8(&it)) {
        /* "<db>.<user>": users live in admin. Unknown users get no field, as in mongod. */
        const char *v = bson_iter_utf8(&it, NULL);
        if (strncmp(v, "admin.", 6) == 0 && find_user(v + 6)) {
            bson_t mechs;
            BSON_APPEND_ARRAY_BEGIN(reply, "saslSupportedMechs", &mechs);
            BSON_APPEND_UTF8(&mechs, "0", "SCRAM-SHA-1");
            if (mechs_supported() > 1)
                BSON_APPEND_UTF8(&mechs, "1", "SCRAM-SHA-256");
            bson_append_array_end(reply, &mechs);
        }
    }
    /* Remember the application name for fail points scoped by appName. */
    bson_iter_t app;
    if (bson_iter_init_find(&it, c->cmd, "client") && BSON_ITER_HOLDS_DOCUMENT(&it) &&
        bson_iter_recurse(&it, &app) && bson_iter_find_descendant(&app, "application.name", &it) &&
        BSON_ITER_HOLDS_UTF8(&it))
        snprintf(c->conn->app_name, sizeof c->conn->app_name, "%s", bson_iter_utf8(&it, NULL));
    return true;
}

/* ---- SASL ---- */

static bool
sasl_payload(const emu_cmd_t *c, const char **data, uint32_t *len, emu_error_t *err)
{
    bson_iter_t it;
    if (!bson_iter_init_find(&it, c->cmd, "payload"))
        return emu_error_set(err, EMU_BAD_VALUE, "Missing required field 'payload'");
    if (BSON_ITER_HOLDS_BINARY(&it)) {
        bson_subtype_t st;
        const uint8_t *b;
        bson_iter_binary(&it, &st, len, &b);
        *data = (const char *)b;
        return true;
    }
    if (BSON_ITER_HOLDS_UTF8(&it)) {
        *data = bson_iter_utf8(&it, len);
        return true;
    }
    return emu_error_set(err, EMU_TYPE_MISMATCH, "'payload' must be binary or a string");
}

static bool
auth_failed(emu_cmd_t *c, const char *why, emu_error_t *err)
{
    if (emu_config.verbose)
        fprintf(stderr, "docdb-emu: connection %lld: authentication failed: %s\n",
                (long long)c->conn->id, why);
    memset(&c->conn->scram, 0, sizeof c->conn->scram);
    return emu_error_set(err, EMU_AUTHENTICATION_FAILED, "Authentication failed.");
}

static void
append_payload(bson_t *reply, const char *s)
{
    bson_append_binary(reply, "payload", 7, BSON_SUBTYPE_BINARY, (const uint8_t *)s,
                       (uint32_t)strlen(s));
}

static bool
cmd_sasl_start(emu_cmd_t *c, bson_t *reply, emu_error_t *err)
{
    const char *mech_name = NULL, *payload = NULL;
    uint32_t plen;
    emu_scram_mech_t mech;
    if (!emu_cmd_string(c, "mechanism", &mech_name, err) || !sasl_payload(c, &payload, &plen, err))
        return false;
    if (strcmp(mech_name, "SCRAM-SHA-1") == 0) {
        mech = EMU_SCRAM_SHA_1;
    } else if (strcmp(mech_name, "SCRAM-SHA-256") == 0 && mechs_supported() > 1) {
        mech = EMU_SCRAM_SHA_256;
    } else if (strcmp(mech_name, "SCRAM-SHA-256") == 0) {
        /* What drivers report from DocumentDB for SHA-256 (docdb-wire.md §1.3). */
        return emu_error_set(err, EMU_MECHANISM_UNAVAILABLE, "Unsupported mechanism [ -301 ]");
    } else {
        return emu_error_set(err, EMU_MECHANISM_UNAVAILABLE,
                             "Received authentication for mechanism %s which is unknown or not "
                             "enabled",
                             mech_name);
    }
    if (strcmp(c->db, "admin") != 0)
        return auth_failed(c, "users are defined in the admin database only", err);
    char out[512];
    const char *why = "";
    if (!emu_scram_start(&c->conn->scram, mech, payload, plen, find_user, NULL, out, sizeof out,
                         &why))
        return auth_failed(c, why, err);
    bson_iter_t it, opt;
    c->conn->skip_empty_exchange = bson_iter_init_find(&it, c->cmd, "options") &&
                                   BSON_ITER_HOLDS_DOCUMENT(&it) && bson_iter_recurse(&it, &opt) &&
                                   bson_iter_find(&opt, "skipEmptyExchange") &&
                                   bson_iter_as_bool(&opt);
    BSON_APPEND_INT32(reply, "conversationId", 1);
    BSON_APPEND_BOOL(reply, "done", false);
    append_payload(reply, out);
    return true;
}

static bool
cmd_sasl_continue(emu_cmd_t *c, bson_t *reply, emu_error_t *err)
{
    const char *payload = NULL;
    uint32_t plen;
    bson_iter_t it;
    if (!sasl_payload(c, &payload, &plen, err))
        return false;
    if (!bson_iter_init_find(&it, c->cmd, "conversationId") || !BSON_ITER_HOLDS_NUMBER(&it) ||
        bson_iter_as_int64(&it) != 1)
        return emu_error_set(err, EMU_PROTOCOL_ERROR, "sasl: Mismatched conversation id");
    emu_scram_t *s = &c->conn->scram;
    if (s->step == 2) {
        /* The long conversation's last, empty round. */
        s->step = 3;
        c->conn->user = s->user;
        BSON_APPEND_INT32(reply, "conversationId", 1);
        BSON_APPEND_BOOL(reply, "done", true);
        append_payload(reply, "");
        return true;
    }
    char out[256];
    const char *why = "";
    if (!emu_scram_continue(s, payload, plen, out, sizeof out, &why))
        return auth_failed(c, why, err);
    bool done = c->conn->skip_empty_exchange;
    if (done) {
        s->step = 3;
        c->conn->user = s->user;
    }
    BSON_APPEND_INT32(reply, "conversationId", 1);
    BSON_APPEND_BOOL(reply, "done", done);
    append_payload(reply, out);
    return true;
}

/* ---- administrative commands ---- */

static bool
cmd_ping(emu_cmd_t *c, bson_t *reply, emu_error_t *err)
{
    (void)c, (void)reply, (void)err;
    return true;
}

static void
server_version(char *out, size_t n, int parts[3])
{
    /* The MongoDB release that introduced the advertised wire version. */
    static const struct {
        int wire, maj, min;
    } map[] = {{6, 3, 6},  {7, 4, 0},  {8, 4, 2},  {9, 4, 4},  {13, 5, 0}, {14, 5, 1},
               {15, 5, 2}, {16, 5, 3}, {17, 6, 0}, {21, 7, 0}, {25, 8, 0}};
    int maj = 3, min = 6;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (emu_config.wire_version >= map[i].wire) {
            maj = map[i].maj;
            min = map[i].min;
        }
    parts[0] = maj;
    parts[1] = min;
    parts[2] = 0;
    snprintf(out, n, "%d.%d.0", maj, min);
}

static bool
cmd_build_info(emu_cmd_t *c, bson_t *reply, emu_error_t *err)
{
    (void)c, (void)err;
    char version[32];
    int parts[3];
    bson_t arr;
    server_version(version, sizeof version, parts);
    BSON_APPEND_UTF8(reply, "version", version);
    BSON_APPEND_UTF8(reply, "gitVersion", "docdb-emu");
    BSON_APPEND_ARRAY_BEGIN(reply, "versionArray", &arr);
    BSON_APPEND_INT32(&arr, "0", parts[0]);
    BSON_APPEND_INT32(&arr, "1", parts[1]);
    BSON_APPEND_INT32(&arr, "2", parts[2]);
    BSON_APPEND_INT32(&arr, "3", 0);
    bson_append_array_end(reply, &arr);
    BSON_APPEND_INT32(reply, "bits", 64);
    BSON_APPEND_BOOL(reply, "debug", false);
    BSON_APPEND_INT32(reply, "maxBsonObjectSize", EMU_MAX_BSON_SIZE);
    return true;
}

static bool
cmd_get_parameter(emu_cmd_t *c, bson_t *reply, emu_error_t *err)
{
    bson_iter_t it;
    char version[32], fcv[16];
    int parts[3];
    bool all = bson_iter_init_find(&it, c->cmd, "getParameter") && BSON_ITER_HOLDS_UTF8(&it) &&
               strcmp(bson_iter_utf8(&it, NULL), "*") == 0;
    server_version(version, sizeof version, parts);
    snprintf(fcv, sizeof fcv, "%d.%d", parts[0], parts[1]);
    bool any = false;
    if (all || bson_iter_init_find(&it, c->cmd, "featureCompatibilityVersion")) {
        bson_t v;
        BSON_APPEND_DOCUMENT_BEGIN(reply, "featureCompatibilityVersion", &v);
        BSON_APPEND_UTF8(&v, "version", fcv);
        bson_append_document_end(reply, &v);
        any = true;
    }
    if (all || bson_iter_init_find(&it, c->cmd, "cursorTimeoutMillis")) {
        BSON_APPEND_INT64(reply, "cursorTimeoutMillis",
                          (int64_t)emu_config.cursor_timeout_s * 1000);
        any = true;
    }
    if (all || bson_iter_init_find(&it, c->cmd, "authenticationMechanisms")) {
        bson_t arr;
        BSON_APPEND_ARRAY_BEGIN(reply, "authenticationMechanisms", &arr);
        BSON_APPEND_UTF8(&arr, "0", "SCRAM-SHA-1");
        if (mechs_supported() > 1)
            BSON_APPEND_UTF8(&arr, "1", "SCRAM-SHA-256");
        bson_append_array_end(reply, &arr);
        any = true;
    }
    if (!any)
        return emu_error_set(err, EMU_INVALID_OPTIONS, "no option found to get");
    return true;
}

static bool
cmd_ok(emu_cmd_t *c, bson_t *reply, emu_error_t *err)
{
    /* endSessions, killAllSessions: sessions are not tracked, so there is nothing to end. */
    (void)c, (void)reply, (void)err;
    return true;
}

static bool
cmd_configure_fail_point(emu_cmd_t *c, bson_t *reply, emu_error_t *err)
{
    if (strcmp(c->db, "admin") != 0)
        return emu_error_set(err, EMU_UNAUTHORIZED,
                             "configureFailPoint may only be run against the admin database.");
    return emu_failpoint_configure(c->cmd, reply, err);
}

typedef struct {
    bson_t *arr;
    uint32_t i;
    double total;
    bool name_only;
    emu_filter_t *filter;
} dblist_t;

static void
add_db(const char *name, uint64_t bytes, void *ctx)
{
    dblist_t *l = ctx;
    bson_t d = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&d, "name", name);
    if (!l->name_only) {
        BSON_APPEND_DOUBLE(&d, "sizeOnDisk", (double)bytes);
        BSON_APPEND_BOOL(&d, "empty", bytes == 0);
    }
    if (!l->filter || emu_filter_matches(l->filter, &d)) {
        char keybuf[16];
        const char *key;
        size_t klen = bson_uint32_to_string(l->i++, &key, keybuf, sizeof keybuf);
        bson_append_document(l->arr, key, (int)klen, &d);
        l->total += (double)bytes;
    }
    bson_destroy(&d);
}

static bool
cmd_list_databases(emu_cmd_t *c, bson_t *reply, emu_error_t *err)
{
    bson_t filter, arr;
    bool has_filter;
    if (strcmp(c->db, "admin") != 0)
        return emu_error_set(err, EMU_UNAUTHORIZED,
                             "listDatabases may only be run against the admin database.");
    if (!emu_cmd_doc(c, "filter", &filter, &has_filter, err))
        return false;
    dblist_t l = {.arr = &arr, .name_only = emu_cmd_bool(c, "nameOnly", false)};
    if (has_filter && !(l.filter = emu_filter_new(&filter, err)))
        return false;
    BSON_APPEND_ARRAY_BEGIN(reply, "databases", &arr);
    emu_store_rdlock();
    emu_store_each_db(add_db, &l);
    emu_store_unlock();
    bson_append_array_end(reply, &arr);
    if (!l.name_only)
        BSON_APPEND_DOUBLE(reply, "totalSize", l.total);
    emu_filter_destroy(l.filter);
    return true;
}

typedef struct {
    emu_doc_t **docs;
    size_t n, cap;
    bool name_only;
    emu_filter_t *filter;
} colllist_t;

static void
add_coll(const emu_coll_t *coll, void *ctx)
{
    colllist_t *l = ctx;
    bson_t d = BSON_INITIALIZER, sub;
    BSON_APPEND_UTF8(&d, "name", emu_coll_name(coll));
    BSON_APPEND_UTF8(&d, "type", "collection");
    if (!l->name_only) {
        BSON_APPEND_DOCUMENT_BEGIN(&d, "options", &sub);
        bson_append_document_end(&d, &sub);
        BSON_APPEND_DOCUMENT_BEGIN(&d, "info", &sub);
        BSON_APPEND_BOOL(&sub, "readOnly", false);
        bson_append_binary(&sub, "uuid", 4, BSON_SUBTYPE_UUID, emu_coll_uuid(coll), 16);
        bson_append_document_end(&d, &sub);
        BSON_APPEND_DOCUMENT_BEGIN(&d, "idIndex", &sub);
        BSON_APPEND_INT32(&sub, "v", 2);
        bson_t key;
        BSON_APPEND_DOCUMENT_BEGIN(&sub, "key", &key);
        BSON_APPEND_INT32(&key, "_id", 1);
        bson_append_document_end(&sub, &key);
        BSON_APPEND_UTF8(&sub, "name", "_id_");
        bson_append_document_end(&d, &sub);
    }
    if (!l->filter || emu_filter_matches(l->filter, &d)) {
        if (l->n == l->cap) {
            l->cap = l->cap ? l->cap * 2 : 16;
            l->docs = realloc(l->docs, l->cap * sizeof *l->docs);
            if (!l->docs)
                abort();
        }
        l->docs[l->n++] = emu_doc_new(bson_get_data(&d), d.len);
    }
    bson_destroy(&d);
}

static bool
cmd_list_collections(emu_cmd_t *c, bson_t *reply, emu_error_t *err)
{
    bson_t filter, cursor_opts;
    bool has_filter, has_cursor, has_bs = false;
    int64_t batch_size = -1;
    if (!emu_valid_ns(c->db, NULL, err) || !emu_cmd_doc(c, "filter", &filter, &has_filter, err) ||
        !emu_cmd_doc(c, "cursor", &cursor_opts, &has_cursor, err))
        return false;
    if (has_cursor) {
        bson_iter_t it;
        if (bson_iter_init_find(&it, &cursor_opts, "batchSize") && BSON_ITER_HOLDS_NUMBER(&it)) {
            batch_size = bson_iter_as_int64(&it);
            has_bs = true;
        }
    }
    colllist_t l = {.name_only = emu_cmd_bool(c, "nameOnly", false)};
    if (has_filter && !(l.filter = emu_filter_new(&filter, err)))
        return false;
    emu_store_rdlock();
    emu_store_each_coll(c->db, add_coll, &l);
    emu_store_unlock();
    emu_filter_destroy(l.filter);
    char ns[300];
    snprintf(ns, sizeof ns, "%s.$cmd.listCollections", c->db);
    emu_cursor_t *cur = emu_cursor_new(ns, l.docs, l.n, NULL);
    emu_cursor_reply(cur, reply, true, has_bs ? batch_size : 0, true);
    return true;
}

static bool
cmd_create(emu_cmd_t *c, bson_t *reply, emu_error_t *err)
{
    (void)reply;
    const char *name = NULL;
    if (!emu_cmd_string(c, "create", &name, err) || !emu_valid_ns(c->db, name, err))
        return false;
    if (emu_cmd_bool(c, "capped", false) && emu_config.personality == EMU_DOCUMENTDB)
        return emu_error_set(err, 303, "Feature not supported: capped:true");
    emu_store_wrlock();
    bool ok = emu_store_create(c->db, name, err);
    emu_store_unlock();
    return ok;
}

static bool
cmd_drop(emu_cmd_t *c, bson_t *reply, emu_error_t *err)
{
    const char *name = NULL;
    if (!emu_cmd_string(c, "drop", &name, err) || !emu_valid_ns(c->db, name, err))
        return false;
    emu_store_wrlock();
    emu_coll_t *coll = emu_store_coll(c->db, name, false);
    int32_t nindexes = coll ? (int32_t)emu_coll_nindexes(coll) + 1 : 0;
    bool ok = emu_store_drop(c->db, name);
    emu_store_unlock();
    if (!ok)
        return emu_error_set(err, EMU_NAMESPACE_NOT_FOUND, "ns not found");
    char ns[300];
    snprintf(ns, sizeof ns, "%s.%s", c->db, name);
    BSON_APPEND_INT32(reply, "nIndexesWas", nindexes);
    BSON_APPEND_UTF8(reply, "ns", ns);
    return true;
}

static bool
cmd_drop_database(emu_cmd_t *c, bson_t *reply, emu_error_t *err)
{
    if (!emu_valid_ns(c->db, NULL, err))
        return false;
    emu_store_wrlock();
    emu_store_drop_db(c->db);
    emu_store_unlock();
    BSON_APPEND_UTF8(reply, "dropped", c->db);
    return true;
}

/* ---- indexes (index.c keeps them; plan.c uses them) ---- */

static void
append_index_doc(emu_doc_t ***docs, size_t *n, const bson_t *spec)
{
    *docs = realloc(*docs, (*n + 1) * sizeof **docs);
    if (!*docs)
        abort();
    (*docs)[(*n)++] = emu_doc_new(bson_get_data(spec), spec->len);
}

static bool
cmd_list_indexes(emu_cmd_t *c, bson_t *reply, emu_error_t *err)
{
    const char *name = NULL;
    bson_t cursor_opts;
    bool has_cursor;
    int64_t batch_size = 0;
    if (!emu_cmd_string(c, "listIndexes", &name, err) || !emu_valid_ns(c->db, name, err) ||
        !emu_cmd_doc(c, "cursor", &cursor_opts, &has_cursor, err))
        return false;
    bson_iter_t it;
    if (has_cursor && bson_iter_init_find(&it, &cursor_opts, "batchSize") &&
        BSON_ITER_HOLDS_NUMBER(&it))
        batch_size = bson_iter_as_int64(&it);
    emu_doc_t **docs = NULL;
    size_t n = 0;
    emu_store_rdlock();
    emu_coll_t *coll = emu_store_coll(c->db, name, false);
    if (coll) {
        bson_t *id = BCON_NEW("v", BCON_INT32(2), "key", "{", "_id", BCON_INT32(1), "}", "name",
                              BCON_UTF8("_id_"));
        append_index_doc(&docs, &n, id);
        bson_destroy(id);
        for (size_t i = 0; i < emu_coll_nindexes(coll); i++)
            append_index_doc(&docs, &n, emu_index_spec(emu_coll_index(coll, i)));
    }
    emu_store_unlock();
    if (!coll)
        return emu_error_set(err, EMU_NAMESPACE_NOT_FOUND, "ns does not exist: %s.%s", c->db, name);
    char ns[300];
    snprintf(ns, sizeof ns, "%s.$cmd.listIndexes.%s", c->db, name);
    emu_cursor_t *cur = emu_cursor_new(ns, docs, n, NULL);
    emu_cursor_reply(cur, reply, true, batch_size, true);
    return true;
}

static bool
cmd_create_indexes(emu_cmd_t *c, bson_t *reply, emu_error_t *err)
{
    const char *name = NULL;
    bson_iter_t it, specs;
    if (!emu_cmd_string(c, "createIndexes", &name, err) || !emu_valid_ns(c->db, name, err))
        return false;
    if (!bson_iter_init_find(&it, c->cmd, "indexes") || !BSON_ITER_HOLDS_ARRAY(&it) ||
        !bson_iter_recurse(&it, &specs))
        return emu_error_set(err, EMU_TYPE_MISMATCH, "'indexes' must be an array");
    emu_store_wrlock();
    bool existed = emu_store_coll(c->db, name, false) != NULL;
    emu_coll_t *coll = emu_store_coll(c->db, name, true);
    int32_t before = (int32_t)emu_coll_nindexes(coll) + 1;
    bool ok = true;
    while (ok && bson_iter_next(&specs)) {
        bson_t spec;
        bson_iter_t f;
        const uint8_t *data;
        uint32_t len;
        if (!BSON_ITER_HOLDS_DOCUMENT(&specs)) {
            ok = emu_error_set(err, EMU_TYPE_MISMATCH, "index specifications must be objects");
            break;
        }
        bson_iter_document(&specs, &len, &data);
        bson_init_static(&spec, data, len);
        if (bson_iter_init_find(&f, &spec, "name") && BSON_ITER_HOLDS_UTF8(&f) &&
            strcmp(bson_iter_utf8(&f, NULL), "_id_") == 0)
            continue;
        /* Builds the index over the documents already there (code 11000 when a unique index
         * meets a duplicate, 86 for a name taken by another key, 67 for a bad key). */
        ok = emu_coll_add_index(coll, &spec, err);
    }
    int32_t after = (int32_t)emu_coll_nindexes(coll) + 1;
    emu_store_unlock();
    if (!ok)
        return false;
    BSON_APPEND_BOOL(reply, "createdCollectionAutomatically", !existed);
    if (after == before)
        BSON_APPEND_UTF8(reply, "note", "all indexes already exist");
    BSON_APPEND_INT32(reply, "numIndexesBefore", before);
    BSON_APPEND_INT32(reply, "numIndexesAfter", after);
    return true;
}

/* Checks (drop false) or drops (drop true) the indexes named by a string or an array of
 * strings. */
static bool
drop_names(emu_coll_t *coll, const bson_iter_t *index, bool drop, emu_error_t *err)
{
    bson_iter_t one = *index, arr;
    bool single = BSON_ITER_HOLDS_UTF8(index);
    if (!single && !bson_iter_recurse(index, &arr))
        return emu_error_set(err, EMU_TYPE_MISMATCH, "'index' must be a string or an array");
    for (bson_iter_t *cur = single ? &one : &arr; single || bson_iter_next(cur); single = false) {
        if (!BSON_ITER_HOLDS_UTF8(cur))
            return emu_error_set(err, EMU_TYPE_MISMATCH, "index names must be strings");
        const char *iname = bson_iter_utf8(cur, NULL);
        if (strcmp(iname, "_id_") == 0)
            return emu_error_set(err, EMU_INVALID_OPTIONS, "cannot drop _id index");
        bool found = false;
        for (size_t i = 0; i < emu_coll_nindexes(coll); i++)
            found = found || strcmp(emu_index_name(emu_coll_index(coll, i)), iname) == 0;
        if (!found)
            return emu_error_set(err, EMU_INDEX_NOT_FOUND, "index not found with name [%s]", iname);
        if (drop)
            emu_coll_drop_index(coll, iname);
        if (single)
            break;
    }
    return true;
}

/* dropIndexes: `index` is a name, an array of names, a key pattern or "*" (all but _id_), as
 * mongod takes it. */
static bool
cmd_drop_indexes(emu_cmd_t *c, bson_t *reply, emu_error_t *err)
{
    const char *name = NULL;
    bson_iter_t it;
    if (!emu_cmd_string(c, c->name, &name, err) || !emu_valid_ns(c->db, name, err))
        return false;
    if (!bson_iter_init_find(&it, c->cmd, "index"))
        return emu_error_set(err, EMU_FAILED_TO_PARSE, "BSON field 'dropIndexes.index' is missing");
    emu_store_wrlock();
    emu_coll_t *coll = emu_store_coll(c->db, name, false);
    bool ok = true;
    int32_t was = coll ? (int32_t)emu_coll_nindexes(coll) + 1 : 0;
    if (!coll) {
        ok = emu_error_set(err, EMU_NAMESPACE_NOT_FOUND, "ns not found %s.%s", c->db, name);
    } else if (BSON_ITER_HOLDS_UTF8(&it) && strcmp(bson_iter_utf8(&it, NULL), "*") == 0) {
        emu_coll_drop_indexes(coll);
    } else if (BSON_ITER_HOLDS_DOCUMENT(&it)) {
        bson_t key, other;
        const uint8_t *data;
        uint32_t len;
        const char *iname = NULL;
        bson_iter_document(&it, &len, &data);
        bson_init_static(&key, data, len);
        for (size_t i = 0; !iname && i < emu_coll_nindexes(coll); i++) {
            emu_index_key(emu_coll_index(coll, i), &other);
            if (bson_equal(&key, &other))
                iname = emu_index_name(emu_coll_index(coll, i));
        }
        bson_t *id_key = BCON_NEW("_id", BCON_INT32(1));
        if (bson_equal(&key, id_key))
            ok = emu_error_set(err, EMU_INVALID_OPTIONS, "cannot drop _id index");
        else if (iname)
            emu_coll_drop_index(coll, iname);
        else
            ok = emu_error_set(err, EMU_INDEX_NOT_FOUND, "can't find index with key");
        bson_destroy(id_key);
    } else {
        ok = drop_names(coll, &it, false, err) && drop_names(coll, &it, true, err);
    }
    emu_store_unlock();
    if (ok)
        BSON_APPEND_INT32(reply, "nIndexesWas", was);
    return ok;
}

/* ---- dispatch ---- */

enum {
    OPEN = 1 << 0,   /* allowed before authentication */
    LEGACY = 1 << 1, /* allowed over OP_QUERY */
    WRITE = 1 << 2,  /* a write: DocumentDB refuses txnNumber outside transactions */
};

typedef struct {
    const char *name;
    bool (*fn)(emu_cmd_t *c, bson_t *reply, emu_error_t *err);
    int flags;
} command_t;

static const command_t commands[] = {
    {"hello", cmd_hello, OPEN | LEGACY},
    {"isMaster", cmd_hello, OPEN | LEGACY},
    {"ismaster", cmd_hello, OPEN | LEGACY},
    {"saslStart", cmd_sasl_start, OPEN | LEGACY},
    {"saslContinue", cmd_sasl_continue, OPEN | LEGACY},
    {"ping", cmd_ping, OPEN | LEGACY},
    {"buildInfo", cmd_build_info, OPEN | LEGACY},
    {"buildinfo", cmd_build_info, OPEN | LEGACY},
    {"getParameter", cmd_get_parameter, 0},
    {"endSessions", cmd_ok, 0},
    {"killAllSessions", cmd_ok, 0},
    {"configureFailPoint", cmd_configure_fail_point, 0},
    {"listDatabases", cmd_list_databases, 0},
    {"listCollections", cmd_list_collections, 0},
    {"create", cmd_create, 0},
    {"drop", cmd_drop, 0},
    {"dropDatabase", cmd_drop_database, 0},
    {"listIndexes", cmd_list_indexes, 0},
    {"createIndexes", cmd_create_indexes, 0},
    {"dropIndexes", cmd_drop_indexes, 0},
    {"deleteIndexes", cmd_drop_indexes, 0},
    {"explain", emu_cmd_explain, 0},
    {"insert", emu_cmd_insert, WRITE},
    {"update", emu_cmd_update, WRITE},
    {"delete", emu_cmd_delete, WRITE},
    {"find", emu_cmd_find, 0},
    {"getMore", emu_cmd_get_more, 0},
    {"killCursors", emu_cmd_kill_cursors, 0},
    {"count", emu_cmd_count, 0},
    {"aggregate", emu_cmd_aggregate, 0},
};

static const command_t *
lookup(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static void
error_reply(bson_t *reply, const emu_error_t *err, const bson_t *labels)
{
    bson_reinit(reply);
    BSON_APPEND_DOUBLE(reply, "ok", 0.0);
    BSON_APPEND_UTF8(reply, "errmsg", err->msg);
    BSON_APPEND_INT32(reply, "code", err->code);
    const char *name = emu_code_name(err->code);
    if (*name) /* DocumentDB's own codes come without a codeName (docdb-wire.md §1.7) */
        BSON_APPEND_UTF8(reply, "codeName", name);
    if (labels && !bson_empty(labels))
        BSON_APPEND_ARRAY(reply, "errorLabels", labels);
}

void
emu_dispatch(emu_cmd_t *c, bson_t *reply)
{
    emu_error_t err = {0};
    const command_t *cmd = lookup(c->name);
    if (!cmd) {
        emu_error_set(&err, EMU_COMMAND_NOT_FOUND, "no such command: '%s'", c->name);
        goto fail;
    }
    if (c->legacy && !(cmd->flags & LEGACY)) {
        emu_error_set(&err, 352,
                      "Unsupported OP_QUERY command: %s. The client driver may require an upgrade.",
                      c->name);
        goto fail;
    }
    if (!c->db) {
        emu_error_set(&err, 40571, "OP_MSG requests require a $db argument");
        goto fail;
    }
    if (emu_config.nusers > 0 && !c->conn->user && !(cmd->flags & OPEN)) {
        emu_error_set(&err, EMU_UNAUTHORIZED, "command %s requires authentication", c->name);
        goto fail;
    }
    emu_fp_action_t act;
    if (strcmp(c->name, "configureFailPoint") != 0 &&
        emu_failpoint_check(c->name, c->conn->app_name, &act)) {
        if (act.block_ms > 0)
            usleep((useconds_t)act.block_ms * 1000);
        if (act.close_connection) {
            c->conn->closed = true;
            emu_failpoint_action_cleanup(&act);
            return;
        }
        if (act.error_code) {
            emu_error_set(&err, act.error_code, "Failing command via 'failCommand' failpoint");
            error_reply(reply, &err, &act.labels);
            emu_failpoint_action_cleanup(&act);
            return;
        }
        emu_failpoint_action_cleanup(&act);
    }
    bson_iter_t it;
    if ((cmd->flags & WRITE) && emu_config.personality == EMU_DOCUMENTDB &&
        bson_iter_init_find(&it, c->cmd, "txnNumber") &&
        !bson_iter_init_find(&it, c->cmd, "autocommit")) {
        emu_error_set(&err, EMU_DOCDB_RETRYABLE_WRITES, "Retryable writes are not supported");
        goto fail;
    }
    if (!cmd->fn(c, reply, &err))
        goto fail;
    BSON_APPEND_DOUBLE(reply, "ok", 1.0);
    return;
fail:
    error_reply(reply, &err, NULL);
}

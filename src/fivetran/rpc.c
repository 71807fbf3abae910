/* rpc.c: the four SourceConnector RPCs on the shared engine: ConfigurationForm from the
 * configuration key table, Test (connect, collections), Schema (declared and sampled columns)
 * and Update (the sync, streamed as Records batches and Checkpoints through a sink that turns
 * rows into Fivetran records). Message shapes: ../shared/research/fivetran-sdk.md §1. */
#include "fivetran/server.h"

#include "common.pb-c.h"
#include "connector_sdk.pb-c.h"
#include "config/config.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/mem.h"
#include "engine/sync.h"
#include "fivetran/records.h"
#include "sink/backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BATCH_RECORDS 100          /* Fivetran's limit per Records message */
#define BATCH_BYTES   (100 * 1024) /* and about this many bytes, as the partner examples do */

/* ---- configuration from the request's map ---- */

typedef struct {
    dc_config_t cfg;
    char ca_path[64]; /* a decoded upload, removed when done */
} request_config_t;

/* Builds the configuration from map entries (keys and values as strings, as Fivetran sends
 * them). tls_ca_file arrives as an upload: base64 of the PEM file, written to a private
 * temporary file for libmongoc. */
static bool
config_from_map(size_t n, char **keys, char **values, request_config_t *rc, dc_error_t *err)
{
    dc_buf_t json;
    bool ok = true;
    memset(rc, 0, sizeof *rc);
    dc_buf_init(&json);
    dc_buf_append_char(&json, '{');
    for (size_t i = 0; i < n && ok; i++) {
        const char *value = values[i];
        if (strcmp(keys[i], "tls_ca_file") == 0 && value[0]) {
            dc_buf_t pem;
            dc_buf_init(&pem);
            if (strncmp(value, "-----BEGIN", 10) == 0)
                dc_buf_append_str(&pem, value);
            else if (!dc_base64_decode(&pem, value, strlen(value)) || pem.len == 0)
                ok = dc_error_set(err, DC_ERR_CONFIG,
                                  "tls_ca_file: not an uploaded PEM file (expected its content, "
                                  "base64-encoded)");
            if (ok) {
                snprintf(rc->ca_path, sizeof rc->ca_path, "/tmp/docdb-connector-ca-XXXXXX");
                int fd = mkstemp(rc->ca_path);
                ok = fd >= 0 && write(fd, pem.data, pem.len) == (ssize_t)pem.len;
                if (fd >= 0)
                    close(fd);
                if (!ok)
                    dc_error_set(err, DC_ERR_IO, "tls_ca_file: cannot store the uploaded file");
                value = rc->ca_path;
            }
            dc_buf_cleanup(&pem);
        }
        if (json.len > 1)
            dc_buf_append_char(&json, ',');
        dc_buf_append_json_string(&json, keys[i], strlen(keys[i]));
        dc_buf_append_char(&json, ':');
        dc_buf_append_json_string(&json, value, strlen(value));
    }
    dc_buf_append_char(&json, '}');
    if (ok)
        ok = dc_config_parse(json.data, json.len, "configuration", &rc->cfg, err);
    /* The JSON held the password: wipe it. */
    memset(json.data, 0, json.len);
    dc_buf_cleanup(&json);
    return ok;
}

static void
config_done(request_config_t *rc)
{
    dc_config_cleanup(&rc->cfg);
    if (rc->ca_path[0])
        unlink(rc->ca_path);
}

/* The map entries of a request as parallel arrays (pointers into the message). */
#define MAP_ARRAYS(entries, n, keys, values)                                                       \
    char **keys = dc_xcalloc((n) + 1, sizeof *keys),                                               \
         **values = dc_xcalloc((n) + 1, sizeof *values);                                           \
    for (size_t i_ = 0; i_ < (n); i_++) {                                                          \
        keys[i_] = (entries)[i_]->key;                                                             \
        values[i_] = (entries)[i_]->value;                                                         \
    }

/* ---- ConfigurationForm ---- */

static char *
label_of(const char *name)
{
    char *l = dc_xstrdup(name);
    for (char *p = l; *p; p++)
        if (*p == '_')
            *p = ' ';
    if (l[0] >= 'a' && l[0] <= 'z')
        l[0] = (char)(l[0] - 'a' + 'A');
    return l;
}

static int
rpc_configuration_form(dc_call_t *c, char *message, size_t size)
{
    size_t n, len;
    const uint8_t *data = dc_call_request(c, &len);
    FivetranSdk__V2__ConfigurationFormRequest *req =
        fivetran_sdk__v2__configuration_form_request__unpack(NULL, len, data);
    if (!req) {
        snprintf(message, size, "ConfigurationFormRequest is not a valid message");
        return DC_GRPC_INVALID_ARGUMENT;
    }
    fivetran_sdk__v2__configuration_form_request__free_unpacked(req, NULL);
    const dc_config_key_t *keys = dc_config_keys(&n);
    FivetranSdk__V2__ConfigurationFormResponse resp =
        FIVETRAN_SDK__V2__CONFIGURATION_FORM_RESPONSE__INIT;
    FivetranSdk__V2__FormField *fields = dc_xcalloc(n, sizeof *fields);
    FivetranSdk__V2__FormField **fp = dc_xcalloc(n, sizeof *fp);
    FivetranSdk__V2__ToggleField toggle = FIVETRAN_SDK__V2__TOGGLE_FIELD__INIT;
    FivetranSdk__V2__UploadField upload = FIVETRAN_SDK__V2__UPLOAD_FIELD__INIT;
    char *types[] = {".pem", ".crt", ".cer"};
    upload.n_allowed_file_type = 3;
    upload.allowed_file_type = types;
    upload.max_file_size_bytes = 1024 * 1024;
    for (size_t i = 0; i < n; i++) {
        FivetranSdk__V2__FormField init = FIVETRAN_SDK__V2__FORM_FIELD__INIT;
        FivetranSdk__V2__FormField *f = &fields[i];
        *f = init;
        f->name = (char *)keys[i].name;
        f->label = label_of(keys[i].name);
        f->_required_case = FIVETRAN_SDK__V2__FORM_FIELD___REQUIRED_REQUIRED;
        f->required = strcmp(keys[i].name, "database") == 0;
        f->_description_case = FIVETRAN_SDK__V2__FORM_FIELD___DESCRIPTION_DESCRIPTION;
        f->description = (char *)keys[i].help;
        if (strcmp(keys[i].type, "boolean") == 0) {
            f->type_case = FIVETRAN_SDK__V2__FORM_FIELD__TYPE_TOGGLE_FIELD;
            f->toggle_field = &toggle;
        } else if (strcmp(keys[i].type, "file") == 0) {
            f->type_case = FIVETRAN_SDK__V2__FORM_FIELD__TYPE_UPLOAD_FIELD;
            f->upload_field = &upload;
        } else {
            f->type_case = FIVETRAN_SDK__V2__FORM_FIELD__TYPE_TEXT_FIELD;
            f->text_field = keys[i].secret ? FIVETRAN_SDK__V2__TEXT_FIELD__Password
                                           : FIVETRAN_SDK__V2__TEXT_FIELD__PlainText;
        }
        if (keys[i].dflt && !strchr(keys[i].dflt, ' ')) {
            f->_default_value_case = FIVETRAN_SDK__V2__FORM_FIELD___DEFAULT_VALUE_DEFAULT_VALUE;
            f->default_value = (char *)keys[i].dflt;
        }
        fp[i] = f;
    }
    FivetranSdk__V2__ConfigurationTest t1 = FIVETRAN_SDK__V2__CONFIGURATION_TEST__INIT;
    FivetranSdk__V2__ConfigurationTest t2 = FIVETRAN_SDK__V2__CONFIGURATION_TEST__INIT;
    t1.name = "connect";
    t1.label = "Connecting to the database and authenticating";
    t2.name = "collections";
    t2.label = "Listing the collections and checking cursor-field indexes";
    FivetranSdk__V2__ConfigurationTest *tests[] = {&t1, &t2};
    resp.schema_selection_supported = false;
    resp.table_selection_supported = true;
    resp.n_fields = n;
    resp.fields = fp;
    resp.n_tests = 2;
    resp.tests = tests;
    bool ok = dc_call_send(c, &resp.base);
    for (size_t i = 0; i < n; i++)
        free(fields[i].label);
    free(fields);
    free(fp);
    return ok ? DC_GRPC_OK : DC_GRPC_CANCELLED;
}

/* ---- Test ---- */

static int
rpc_test(dc_call_t *c, char *message, size_t size)
{
    size_t len;
    const uint8_t *data = dc_call_request(c, &len);
    FivetranSdk__V2__TestRequest *req = fivetran_sdk__v2__test_request__unpack(NULL, len, data);
    if (!req) {
        snprintf(message, size, "TestRequest is not a valid message");
        return DC_GRPC_INVALID_ARGUMENT;
    }
    bool connect = strcmp(req->name, "connect") == 0;
    if (!connect && strcmp(req->name, "collections") != 0) {
        snprintf(message, size, "'%s' is not a test of this connector (connect, collections)",
                 req->name);
        fivetran_sdk__v2__test_request__free_unpacked(req, NULL);
        return DC_GRPC_INVALID_ARGUMENT;
    }
    MAP_ARRAYS(req->configuration, req->n_configuration, keys, values);
    request_config_t rc;
    dc_error_t err = {0};
    dc_source_t *src = NULL;
    char **names = NULL;
    size_t n = 0;
    bool ok = config_from_map(req->n_configuration, keys, values, &rc, &err) &&
              (src = dc_source_open(&rc.cfg, &err)) != NULL;
    if (ok && !connect) {
        size_t unindexed;
        ok = dc_sync_collections(src, &rc.cfg, &names, &n, &err) &&
             dc_sync_check_indexes(src, &rc.cfg, names, n, &unindexed, &err);
    }
    FivetranSdk__V2__TestResponse resp = FIVETRAN_SDK__V2__TEST_RESPONSE__INIT;
    if (ok) {
        resp.response_case = FIVETRAN_SDK__V2__TEST_RESPONSE__RESPONSE_SUCCESS;
        resp.success = true;
    } else {
        resp.response_case = FIVETRAN_SDK__V2__TEST_RESPONSE__RESPONSE_FAILURE;
        resp.failure = err.message;
    }
    bool sent = dc_call_send(c, &resp.base);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    dc_source_close(src);
    config_done(&rc);
    free(keys);
    free(values);
    fivetran_sdk__v2__test_request__free_unpacked(req, NULL);
    return sent ? DC_GRPC_OK : DC_GRPC_CANCELLED;
}

/* ---- Schema ---- */

static int
error_status(const dc_error_t *err)
{
    switch (err->domain) {
    case DC_ERR_CONFIG:
    case DC_ERR_STATE:
    case DC_ERR_USAGE:
        return DC_GRPC_INVALID_ARGUMENT;
    case DC_ERR_AUTH:
    case DC_ERR_TLS:
        return DC_GRPC_FAILED_PRECONDITION;
    case DC_ERR_SOURCE:
        return err->retryable ? DC_GRPC_UNAVAILABLE : DC_GRPC_INTERNAL;
    default:
        return DC_GRPC_INTERNAL;
    }
}

static int
rpc_schema(dc_call_t *c, char *message, size_t size)
{
    size_t len;
    const uint8_t *data = dc_call_request(c, &len);
    FivetranSdk__V2__SchemaRequest *req = fivetran_sdk__v2__schema_request__unpack(NULL, len, data);
    if (!req) {
        snprintf(message, size, "SchemaRequest is not a valid message");
        return DC_GRPC_INVALID_ARGUMENT;
    }
    MAP_ARRAYS(req->configuration, req->n_configuration, keys, values);
    request_config_t rc;
    dc_error_t err = {0};
    dc_source_t *src = NULL;
    char **names = NULL;
    size_t n = 0;
    dc_table_t *tables = NULL;
    size_t ntables = 0;
    int status = DC_GRPC_OK;
    bool ok = config_from_map(req->n_configuration, keys, values, &rc, &err) &&
              (src = dc_source_open(&rc.cfg, &err)) != NULL &&
              dc_sync_collections(src, &rc.cfg, &names, &n, &err);
    if (ok) {
        tables = dc_xcalloc(n ? n : 1, sizeof *tables);
        for (size_t i = 0; ok && i < n; i++) {
            ok = dc_sync_infer_table(src, names[i], names[i], DC_NAMING_SOURCE, &tables[i], &err);
            ntables += ok;
        }
    }
    if (ok) {
        FivetranSdk__V2__SchemaResponse resp = FIVETRAN_SDK__V2__SCHEMA_RESPONSE__INIT;
        FivetranSdk__V2__TableList list = FIVETRAN_SDK__V2__TABLE_LIST__INIT;
        FivetranSdk__V2__Table *tv = dc_xcalloc(ntables ? ntables : 1, sizeof *tv);
        FivetranSdk__V2__Table **tp = dc_xcalloc(ntables ? ntables : 1, sizeof *tp);
        size_t ncols = 0;
        for (size_t i = 0; i < ntables; i++)
            ncols += tables[i].ncols;
        FivetranSdk__V2__Column *cv = dc_xcalloc(ncols ? ncols : 1, sizeof *cv);
        FivetranSdk__V2__Column **cp = dc_xcalloc(ncols ? ncols : 1, sizeof *cp);
        size_t k = 0;
        for (size_t i = 0; i < ntables; i++) {
            FivetranSdk__V2__Table tinit = FIVETRAN_SDK__V2__TABLE__INIT;
            tv[i] = tinit;
            tv[i].name = tables[i].name;
            tv[i].columns = cp + k;
            tv[i].n_columns = tables[i].ncols;
            for (size_t j = 0; j < tables[i].ncols; j++, k++) {
                FivetranSdk__V2__Column cinit = FIVETRAN_SDK__V2__COLUMN__INIT;
                cv[k] = cinit;
                cv[k].name = tables[i].cols[j].name;
                /* dc_type_t follows Fivetran's DataType numbering; "only nulls" is
                 * UNSPECIFIED. */
                cv[k].type = (FivetranSdk__V2__DataType)tables[i].cols[j].type;
                cv[k].primary_key = j == 0;
                cp[k] = &cv[k];
            }
            tp[i] = &tv[i];
        }
        list.n_tables = ntables;
        list.tables = tp;
        resp.response_case = FIVETRAN_SDK__V2__SCHEMA_RESPONSE__RESPONSE_WITHOUT_SCHEMA;
        resp.without_schema = &list;
        resp._selection_not_supported_case =
            FIVETRAN_SDK__V2__SCHEMA_RESPONSE___SELECTION_NOT_SUPPORTED_SELECTION_NOT_SUPPORTED;
        resp.selection_not_supported = false;
        if (!dc_call_send(c, &resp.base))
            status = DC_GRPC_CANCELLED;
        free(cv);
        free(cp);
        free(tv);
        free(tp);
    } else {
        status = error_status(&err);
        snprintf(message, size, "%s", err.message);
    }
    for (size_t i = 0; i < ntables; i++)
        dc_table_cleanup(&tables[i]);
    free(tables);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    dc_source_close(src);
    config_done(&rc);
    free(keys);
    free(values);
    fivetran_sdk__v2__schema_request__free_unpacked(req, NULL);
    return status;
}

/* ---- Update: a sink that streams records ---- */

/* Bytes for one batch's records, reset after each flush. */
typedef struct {
    FivetranSdk__V2__TableSelection **tables;
    size_t ntables;
    bool include_new_tables;
    bool present;
} selection_t;

static const FivetranSdk__V2__TableSelection *
selection_table(const selection_t *s, const char *name)
{
    for (size_t i = 0; i < s->ntables; i++)
        if (strcmp(s->tables[i]->table_name, name) == 0)
            return s->tables[i];
    return NULL;
}

static bool
include_table(void *ctx, const char *source)
{
    const selection_t *s = ctx;
    if (!s->present)
        return true;
    const FivetranSdk__V2__TableSelection *t = selection_table(s, source);
    return t ? t->included : s->include_new_tables;
}

static bool
include_column(const selection_t *s, const char *table, const char *column)
{
    if (!s->present || strcmp(column, "_id") == 0)
        return true;
    const FivetranSdk__V2__TableSelection *t = selection_table(s, table);
    if (!t)
        return true;
    for (size_t i = 0; i < t->n_columns; i++)
        if (strcmp(t->columns[i]->key, column) == 0)
            return t->columns[i]->value;
    return t->include_new_columns;
}

typedef struct {
    struct dc_sink base; /* first: sink.c reaches the ops through it */
    dc_call_t *call;
    const selection_t *selection;
    dc_records_t batch; /* encoded records, sent as one Records message */
    /* Which columns of the current table are selected, by column index. */
    const dc_table_t *cols_for;
    size_t cols_n;
    bool *selected;
    size_t *key_len; /* the length of each column's name */
    size_t selected_cap;
} record_sink_t;

static bool
flush(record_sink_t *s, dc_error_t *err)
{
    if (s->batch.n == 0)
        return true;
    uint8_t hdr[11];
    size_t hlen = dc_records_header(&s->batch, hdr);
    bool ok = dc_call_send_bytes(s->call, hdr, hlen, s->batch.body.data, s->batch.body.len);
    dc_records_reset(&s->batch);
    if (!ok)
        return dc_error_set(err, DC_ERR_SINK, "the client cancelled the update");
    return true;
}

static void
rs_close(dc_sink_t *sink)
{
    record_sink_t *s = (record_sink_t *)sink;
    dc_records_cleanup(&s->batch);
    free(s->selected);
    free(s->key_len);
}

static bool
rs_load_table(dc_sink_t *sink, const char *source, dc_table_t *t, dc_error_t *err)
{
    (void)sink, (void)source;
    memset(t, 0, sizeof *t);
    err->domain = DC_ERR_NONE;
    return false; /* Fivetran keeps the destination's schema; each Update starts afresh */
}

static bool
rs_each_table(dc_sink_t *sink, void (*fn)(const char *, const char *, void *), void *ctx,
              dc_error_t *err)
{
    (void)sink, (void)fn, (void)ctx, (void)err;
    return true;
}

static bool
rs_apply_table(dc_sink_t *sink, const dc_table_t *t, dc_error_t *err)
{
    (void)t;
    record_sink_t *s = (record_sink_t *)sink;
    s->cols_for = NULL; /* recompute the selected columns */
    /* Pending records point at the current table's names, which the engine frees next. */
    return flush(s, err);
}

static bool
rs_upsert(dc_sink_t *sink, const dc_table_t *t, const dc_value_t *values, dc_error_t *err)
{
    record_sink_t *s = (record_sink_t *)sink;
    if (s->cols_for != t || s->cols_n != t->ncols) {
        if (s->selected_cap < t->ncols) {
            s->selected_cap = t->ncols * 2;
            s->selected = dc_xrealloc(s->selected, s->selected_cap * sizeof *s->selected);
            s->key_len = dc_xrealloc(s->key_len, s->selected_cap * sizeof *s->key_len);
        }
        for (size_t i = 0; i < t->ncols; i++) {
            s->selected[i] = include_column(s->selection, t->source, t->cols[i].name);
            s->key_len[i] = strlen(t->cols[i].name);
        }
        s->cols_for = t;
        s->cols_n = t->ncols;
    }
    dc_records_add_upsert(&s->batch, t->source, t, s->selected, s->key_len, values);
    if (s->batch.n == BATCH_RECORDS || s->batch.body.len >= BATCH_BYTES)
        return flush(s, err);
    return true;
}

static bool
rs_commit(dc_sink_t *sink, const char *state, dc_error_t *err)
{
    (void)state; /* Fivetran keeps the state: it comes back in the next UpdateRequest */
    return flush((record_sink_t *)sink, err);
}

static const dc_sink_ops_t record_ops = {
    .close = rs_close,
    .load_table = rs_load_table,
    .each_table = rs_each_table,
    .apply_table = rs_apply_table,
    .upsert = rs_upsert,
    .commit = rs_commit,
};

typedef struct {
    dc_call_t *call;
    bool failed;
} emitter_t;

static bool
send_checkpoint(void *ctx, const dc_state_t *st, const char *json, dc_error_t *err)
{
    emitter_t *e = ctx;
    (void)st;
    FivetranSdk__V2__UpdateResponse resp = FIVETRAN_SDK__V2__UPDATE_RESPONSE__INIT;
    FivetranSdk__V2__Checkpoint cp = FIVETRAN_SDK__V2__CHECKPOINT__INIT;
    cp.state_json = (char *)json;
    resp.operation_case = FIVETRAN_SDK__V2__UPDATE_RESPONSE__OPERATION_CHECKPOINT;
    resp.checkpoint = &cp;
    if (!dc_call_send(e->call, &resp.base))
        return dc_error_set(err, DC_ERR_SINK, "the client cancelled the update");
    return true;
}

static void
send_text(dc_call_t *call, bool task, const char *text)
{
    FivetranSdk__V2__UpdateResponse resp = FIVETRAN_SDK__V2__UPDATE_RESPONSE__INIT;
    FivetranSdk__V2__Warning w = FIVETRAN_SDK__V2__WARNING__INIT;
    FivetranSdk__V2__Task t = FIVETRAN_SDK__V2__TASK__INIT;
    if (task) {
        t.message = (char *)text;
        resp.operation_case = FIVETRAN_SDK__V2__UPDATE_RESPONSE__OPERATION_TASK;
        resp.task = &t;
    } else {
        w.message = (char *)text;
        resp.operation_case = FIVETRAN_SDK__V2__UPDATE_RESPONSE__OPERATION_WARNING;
        resp.warning = &w;
    }
    dc_call_send(call, &resp.base);
}

static void
send_warning(void *ctx, const char *message)
{
    send_text(((emitter_t *)ctx)->call, false, message);
}

static int
rpc_update(dc_call_t *c, char *message, size_t size)
{
    size_t len;
    const uint8_t *data = dc_call_request(c, &len);
    FivetranSdk__V2__UpdateRequest *req = fivetran_sdk__v2__update_request__unpack(NULL, len, data);
    if (!req) {
        snprintf(message, size, "UpdateRequest is not a valid message");
        return DC_GRPC_INVALID_ARGUMENT;
    }
    MAP_ARRAYS(req->configuration, req->n_configuration, keys, values);
    request_config_t rc;
    dc_error_t err = {0};
    dc_state_t st;
    dc_sync_stats_t stats = {0};
    int status = DC_GRPC_OK;
    dc_state_init(&st);

    selection_t sel = {0};
    if (req->_selection_case == FIVETRAN_SDK__V2__UPDATE_REQUEST___SELECTION_SELECTION &&
        req->selection) {
        FivetranSdk__V2__Selection *s = req->selection;
        if (s->selection_case == FIVETRAN_SDK__V2__SELECTION__SELECTION_WITHOUT_SCHEMA &&
            s->without_schema) {
            sel.present = true;
            sel.tables = s->without_schema->tables;
            sel.ntables = s->without_schema->n_tables;
            sel.include_new_tables = s->without_schema->include_new_tables;
        } else if (s->selection_case == FIVETRAN_SDK__V2__SELECTION__SELECTION_WITH_SCHEMA &&
                   s->with_schema && s->with_schema->n_schemas > 0) {
            /* We declare no schemas; take the first (and only) one. */
            FivetranSdk__V2__SchemaSelection *ss = s->with_schema->schemas[0];
            sel.present = true;
            sel.tables = ss->tables;
            sel.ntables = ss->n_tables;
            sel.include_new_tables = ss->included && ss->include_new_tables;
        }
    }
    const char *state_json =
        req->_state_json_case == FIVETRAN_SDK__V2__UPDATE_REQUEST___STATE_JSON_STATE_JSON
            ? req->state_json
            : "";
    bool ok = config_from_map(req->n_configuration, keys, values, &rc, &err);
    if (ok && state_json[0])
        ok = dc_state_parse(state_json, strlen(state_json), "state_json", &st, &err);
    if (ok) {
        emitter_t em = {.call = c};
        record_sink_t sink = {.base = {.ops = &record_ops}, .call = c, .selection = &sel};
        dc_records_init(&sink.batch);
        dc_sync_opts_t o = {.cfg = &rc.cfg,
                            .naming = DC_NAMING_SOURCE,
                            .sink = &sink.base,
                            .save_state = send_checkpoint,
                            .no_date_text = true, /* Records carry dates as Timestamps */
                            .save_ctx = &em,
                            .include_table = include_table,
                            .include_ctx = &sel,
                            .warn = send_warning,
                            .warn_ctx = &em};
        ok = dc_sync_run(&o, &st, &stats, &err);
        rs_close(&sink.base);
        if (ok)
            dc_log(DC_LOG_INFO, "update done: %llu records, %llu checkpoints",
                   (unsigned long long)stats.upserts, (unsigned long long)stats.checkpoints);
    }
    if (!ok) {
        if (dc_call_cancelled(c)) {
            status = DC_GRPC_CANCELLED;
            snprintf(message, size, "cancelled by the client");
        } else if (err.domain == DC_ERR_AUTH || err.domain == DC_ERR_TLS ||
                   err.domain == DC_ERR_CONFIG || err.domain == DC_ERR_STATE) {
            /* Only the user can fix these: a Task, and the sync ends. */
            send_text(c, true, err.message);
            dc_log(DC_LOG_SEVERE, "%s", err.message);
        } else {
            status = error_status(&err);
            snprintf(message, size, "%s", err.message);
        }
    }
    dc_sync_stats_cleanup(&stats);
    dc_state_cleanup(&st);
    config_done(&rc);
    free(keys);
    free(values);
    fivetran_sdk__v2__update_request__free_unpacked(req, NULL);
    return status;
}

dc_rpc_handler_t
dc_rpc_lookup(const char *method, size_t len)
{
    static const struct {
        const char *name;
        dc_rpc_handler_t fn;
    } methods[] = {
        {"/fivetran_sdk.v2.SourceConnector/ConfigurationForm", rpc_configuration_form},
        {"/fivetran_sdk.v2.SourceConnector/Test", rpc_test},
        {"/fivetran_sdk.v2.SourceConnector/Schema", rpc_schema},
        {"/fivetran_sdk.v2.SourceConnector/Update", rpc_update},
    };
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (strlen(methods[i].name) == len && memcmp(methods[i].name, method, len) == 0)
            return methods[i].fn;
    return NULL;
}

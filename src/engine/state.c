/* state.c: (de)serialisation of the sync state as relaxed extended JSON (dates and ObjectIds
 * keep their types, so a resume filter compares exactly as the first read did) and its atomic
 * replacement on disk. Knows nothing of the source or the sink. */
#include "engine/state.h"
#include "core/mem.h"
#include "convert/convert.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void
dc_state_init(dc_state_t *st)
{
    memset(st, 0, sizeof *st);
}

static void
table_cleanup(dc_table_state_t *t)
{
    free(t->source);
    free(t->cursor_field);
    if (t->has_last_id)
        bson_value_destroy(&t->last_id);
    if (t->has_cursor_id)
        bson_value_destroy(&t->cursor_id);
    if (t->has_max_id)
        bson_value_destroy(&t->max_id);
    memset(t, 0, sizeof *t);
}

void
dc_state_cleanup(dc_state_t *st)
{
    for (size_t i = 0; i < st->n; i++)
        table_cleanup(&st->tables[i]);
    free(st->tables);
    dc_state_init(st);
}

void
dc_state_set_id(bson_value_t *dst, bool *has, const bson_value_t *v)
{
    if (*has)
        bson_value_destroy(dst);
    *has = v != NULL;
    if (v)
        bson_value_copy(v, dst);
}

void
dc_state_reset_table(dc_table_state_t *t)
{
    char *source = t->source, *field = t->cursor_field;
    t->source = t->cursor_field = NULL;
    table_cleanup(t);
    t->source = source;
    t->cursor_field = field;
    t->phase = DC_PHASE_SNAPSHOT;
}

dc_table_state_t *
dc_state_table(dc_state_t *st, const char *source, bool create)
{
    for (size_t i = 0; i < st->n; i++)
        if (strcmp(st->tables[i].source, source) == 0)
            return &st->tables[i];
    if (!create)
        return NULL;
    if (st->n == st->cap) {
        st->cap = st->cap ? st->cap * 2 : 8;
        st->tables = dc_xrealloc(st->tables, st->cap * sizeof *st->tables);
    }
    dc_table_state_t *t = &st->tables[st->n++];
    memset(t, 0, sizeof *t);
    t->source = dc_xstrdup(source);
    t->phase = DC_PHASE_SNAPSHOT;
    return t;
}

static bool
corrupt(dc_error_t *err, const char *origin, const char *what)
{
    return dc_error_set(err, DC_ERR_STATE,
                        "state '%s' is not valid: %s (fix or remove it to start a full re-sync)",
                        origin, what);
}

/* The seed connector's state: {"users_last_updated_at": "2024-05-01T10:00:00.123000+00:00"}. */
static bool
parse_seed(const bson_t *doc, const char *origin, dc_state_t *st, dc_error_t *err)
{
    bson_iter_t it;
    bson_iter_init(&it, doc);
    while (bson_iter_next(&it)) {
        const char *key = bson_iter_key(&it);
        size_t klen = strlen(key);
        static const char suffix[] = "_last_updated_at";
        if (klen <= sizeof suffix - 1 || strcmp(key + klen - (sizeof suffix - 1), suffix) != 0)
            return corrupt(err, origin, "unknown key");
        int64_t ms;
        if (!BSON_ITER_HOLDS_UTF8(&it) || !dc_parse_datetime(bson_iter_utf8(&it, NULL), &ms))
            return corrupt(err, origin, "a *_last_updated_at value is not an ISO-8601 date");
        char *source = strndup(key, klen - (sizeof suffix - 1));
        dc_table_state_t *t = dc_state_table(st, source, true);
        free(source);
        t->cursor_field = dc_xstrdup("updated_at");
        t->phase = DC_PHASE_INCREMENTAL;
        t->has_cursor = true;
        t->cursor_ms = ms; /* no cursor_id: documents at exactly ms are read again (ties) */
    }
    return true;
}

static bool
parse_table(const char *source, bson_iter_t *it, const char *origin, dc_state_t *st,
            dc_error_t *err)
{
    bson_iter_t f;
    if (!BSON_ITER_HOLDS_DOCUMENT(it) || !bson_iter_recurse(it, &f))
        return corrupt(err, origin, "a table entry is not an object");
    dc_table_state_t *t = dc_state_table(st, source, true);
    bool phase_seen = false;
    while (bson_iter_next(&f)) {
        const char *k = bson_iter_key(&f);
        if (strcmp(k, "phase") == 0 && BSON_ITER_HOLDS_UTF8(&f)) {
            const char *p = bson_iter_utf8(&f, NULL);
            if (strcmp(p, "snapshot") == 0)
                t->phase = DC_PHASE_SNAPSHOT;
            else if (strcmp(p, "incremental") == 0)
                t->phase = DC_PHASE_INCREMENTAL;
            else
                return corrupt(err, origin, "unknown phase");
            phase_seen = true;
        } else if (strcmp(k, "cursor_field") == 0 && BSON_ITER_HOLDS_UTF8(&f)) {
            free(t->cursor_field);
            t->cursor_field = dc_xstrdup(bson_iter_utf8(&f, NULL));
        } else if (strcmp(k, "last_id") == 0) {
            dc_state_set_id(&t->last_id, &t->has_last_id, bson_iter_value(&f));
        } else if (strcmp(k, "cursor_id") == 0) {
            dc_state_set_id(&t->cursor_id, &t->has_cursor_id, bson_iter_value(&f));
        } else if (strcmp(k, "cursor") == 0 && BSON_ITER_HOLDS_DATE_TIME(&f)) {
            t->has_cursor = true;
            t->cursor_ms = bson_iter_date_time(&f);
        } else if (strcmp(k, "max_id") == 0) {
            dc_state_set_id(&t->max_id, &t->has_max_id, bson_iter_value(&f));
        } else if (strcmp(k, "undated") == 0 &&
                   (BSON_ITER_HOLDS_INT32(&f) || BSON_ITER_HOLDS_INT64(&f)) &&
                   bson_iter_as_int64(&f) >= 0) {
            t->undated = bson_iter_as_int64(&f);
        } else if (strcmp(k, "snapshot_cursor") == 0 && BSON_ITER_HOLDS_DATE_TIME(&f)) {
            t->has_snapshot_cursor = true;
            t->snapshot_cursor_ms = bson_iter_date_time(&f);
        } else {
            return corrupt(err, origin, "unknown or mistyped field in a table entry");
        }
    }
    if (!phase_seen)
        return corrupt(err, origin, "a table entry has no phase");
    if (t->phase == DC_PHASE_INCREMENTAL && !t->has_cursor)
        return corrupt(err, origin, "an incremental table has no cursor");
    return true;
}

/* The optional lineage and checkpoint count. */
static bool
parse_lineage(const bson_t *doc, const char *origin, dc_state_t *st, dc_error_t *err)
{
    bson_iter_t it;
    if (bson_iter_init_find(&it, doc, "lineage")) {
        uint32_t len = 0;
        const char *v = BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, &len) : NULL;
        if (!v || len != 32 || strspn(v, "0123456789abcdef") != 32)
            return corrupt(err, origin, "lineage is not 32 hexadecimal digits");
        memcpy(st->lineage, v, 33);
    }
    if (bson_iter_init_find(&it, doc, "checkpoint")) {
        if (!BSON_ITER_HOLDS_INT32(&it) && !BSON_ITER_HOLDS_INT64(&it))
            return corrupt(err, origin, "checkpoint is not a number");
        st->checkpoint = bson_iter_as_int64(&it);
        if (st->checkpoint < 0)
            return corrupt(err, origin, "checkpoint is negative");
    }
    return true;
}

void
dc_state_ensure_lineage(dc_state_t *st)
{
    if (st->lineage[0])
        return;
    uint8_t r[16];
    /* Not a secret, only distinct between states: the kernel's generator, or time and pid. */
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t a = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
        uint64_t b = (uint64_t)getpid() * 0x9e3779b97f4a7c15u ^ (uint64_t)(uintptr_t)st;
        memcpy(r, &a, 8);
        memcpy(r + 8, &b, 8);
    }
    for (int i = 0; i < 16; i++)
        snprintf(st->lineage + 2 * i, 3, "%02x", r[i]);
}

bool
dc_state_is_newer_copy(const dc_state_t *copy, const dc_state_t *file)
{
    return file->lineage[0] && strcmp(copy->lineage, file->lineage) == 0 &&
           copy->checkpoint > file->checkpoint;
}

bool
dc_state_parse(const char *json, size_t len, const char *origin, dc_state_t *st, dc_error_t *err)
{
    bson_error_t jerr;
    bson_iter_t it;
    size_t i = 0;
    while (i < len && (json[i] == ' ' || json[i] == '\n' || json[i] == '\t' || json[i] == '\r'))
        i++;
    if (i == len)
        return corrupt(err, origin, "the file is empty");
    if (json[i] != '{')
        return corrupt(err, origin, "not a JSON object");
    bson_t *doc = bson_new_from_json((const uint8_t *)json, (ssize_t)len, &jerr);
    if (!doc)
        return corrupt(err, origin, "invalid JSON");
    bool ok = true;
    if (bson_empty(doc)) {
        ok = true;
    } else if (!bson_iter_init_find(&it, doc, "version")) {
        ok = parse_seed(doc, origin, st, err);
    } else if (!BSON_ITER_HOLDS_INT32(&it) && !BSON_ITER_HOLDS_INT64(&it)) {
        ok = corrupt(err, origin, "version is not a number");
    } else if (bson_iter_as_int64(&it) != DC_STATE_VERSION) {
        ok = dc_error_set(err, DC_ERR_STATE,
                          "state '%s' has version %lld; this docdb-connector understands "
                          "version %d",
                          origin, (long long)bson_iter_as_int64(&it), DC_STATE_VERSION);
    } else if (!bson_iter_init_find(&it, doc, "tables") || !BSON_ITER_HOLDS_DOCUMENT(&it)) {
        ok = corrupt(err, origin, "no tables object");
    } else if (!parse_lineage(doc, origin, st, err)) {
        ok = false;
    } else {
        bson_iter_t tables;
        bson_iter_recurse(&it, &tables);
        while (ok && bson_iter_next(&tables))
            ok = parse_table(bson_iter_key(&tables), &tables, origin, st, err);
    }
    bson_destroy(doc);
    if (!ok)
        dc_state_cleanup(st);
    return ok;
}

bool
dc_state_load(const char *path, dc_state_t *st, dc_error_t *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT)
            return true;
        return dc_error_set(err, DC_ERR_STATE, "cannot read state '%s': %s", path, strerror(errno));
    }
    char *data = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 > cap) {
            cap = cap ? cap * 2 : 8192;
            data = dc_xrealloc(data, cap);
        }
        size_t r = fread(data + len, 1, cap - len, f);
        len += r;
        if (r == 0)
            break;
        if (len > 64 * 1024 * 1024) {
            fclose(f);
            free(data);
            return corrupt(err, path, "larger than 64 MiB");
        }
    }
    bool read_error = ferror(f);
    fclose(f);
    bool ok = !read_error ? dc_state_parse(data, len, path, st, err)
                          : dc_error_set(err, DC_ERR_STATE, "cannot read state '%s'", path);
    free(data);
    return ok;
}

char *
dc_state_to_json(const dc_state_t *st)
{
    bson_t doc = BSON_INITIALIZER, tables, t;
    BSON_APPEND_INT32(&doc, "version", DC_STATE_VERSION);
    BSON_APPEND_UTF8(&doc, "connector", "docdb-connector");
    if (st->lineage[0]) {
        BSON_APPEND_UTF8(&doc, "lineage", st->lineage);
        BSON_APPEND_INT64(&doc, "checkpoint", st->checkpoint);
    }
    BSON_APPEND_DOCUMENT_BEGIN(&doc, "tables", &tables);
    for (size_t i = 0; i < st->n; i++) {
        const dc_table_state_t *e = &st->tables[i];
        bson_append_document_begin(&tables, e->source, -1, &t);
        BSON_APPEND_UTF8(&t, "phase", e->phase == DC_PHASE_SNAPSHOT ? "snapshot" : "incremental");
        if (e->cursor_field)
            BSON_APPEND_UTF8(&t, "cursor_field", e->cursor_field);
        if (e->has_last_id)
            BSON_APPEND_VALUE(&t, "last_id", &e->last_id);
        if (e->has_snapshot_cursor)
            BSON_APPEND_DATE_TIME(&t, "snapshot_cursor", e->snapshot_cursor_ms);
        if (e->has_cursor)
            BSON_APPEND_DATE_TIME(&t, "cursor", e->cursor_ms);
        if (e->has_cursor_id)
            BSON_APPEND_VALUE(&t, "cursor_id", &e->cursor_id);
        if (e->has_max_id)
            BSON_APPEND_VALUE(&t, "max_id", &e->max_id);
        if (e->undated)
            BSON_APPEND_INT64(&t, "undated", e->undated);
        bson_append_document_end(&tables, &t);
    }
    bson_append_document_end(&doc, &tables);
    char *json = bson_as_relaxed_extended_json(&doc, NULL);
    bson_destroy(&doc);
    return json;
}

static bool
mkdirs(char *dir)
{
    if (!*dir || strcmp(dir, ".") == 0 || strcmp(dir, "/") == 0)
        return true;
    struct stat sb;
    if (stat(dir, &sb) == 0)
        return S_ISDIR(sb.st_mode);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        bool ok = mkdirs(dir);
        *slash = '/';
        if (!ok)
            return false;
    }
    return mkdir(dir, 0777) == 0 || errno == EEXIST;
}

bool
dc_state_save(const char *path, const dc_state_t *st, bool sync_dir, dc_error_t *err)
{
    char *json = dc_state_to_json(st);
    bool ok = dc_state_save_json(path, json, sync_dir, err);
    bson_free(json);
    return ok;
}

bool
dc_state_save_json(const char *path, const char *json, bool sync_dir, dc_error_t *err)
{
    char tmp[4096], dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *d = dirname(dir);
    char dirbuf[4096];
    snprintf(dirbuf, sizeof dirbuf, "%s", d);
    if (!mkdirs(dirbuf))
        return dc_error_set(err, DC_ERR_IO, "cannot create folder '%s' for the state: %s", d,
                            strerror(errno));
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
        return dc_error_set(err, DC_ERR_IO, "state path too long");
    size_t len = strlen(json);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    bool ok = fd >= 0;
    const char *step = "create";
    if (ok) {
        size_t off = 0;
        step = "write";
        while (ok && off < len) {
            ssize_t w = write(fd, json + off, len - off);
            if (w < 0 && errno == EINTR)
                continue;
            ok = w > 0;
            off += ok ? (size_t)w : 0;
        }
        if (ok && write(fd, "\n", 1) != 1)
            ok = false;
        if (ok) {
            step = "fsync";
            ok = fdatasync(fd) == 0;
        }
        if (close(fd) != 0 && ok) {
            step = "close";
            ok = false;
        }
    }
    if (ok) {
        step = "rename";
        ok = rename(tmp, path) == 0;
    }
    if (ok && sync_dir) {
        /* The rename is durable only once the folder is. */
        int dfd = open(dirbuf, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    if (ok)
        return true;
    int e = errno;
    unlink(tmp);
    return dc_error_set(err, DC_ERR_IO, "cannot save state '%s' (%s): %s", path, step, strerror(e));
}

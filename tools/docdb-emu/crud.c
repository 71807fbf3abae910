/* crud.c: the commands that read and write documents: insert, update, delete, find, getMore,
 * killCursors, count, aggregate ($match, $sort, $skip, $limit, $project, $count, $sample, $group)
 * and explain of find, count and aggregate. Results are collected under the store's read lock
 * as document references through the planner (plan.h), then sorted and batched without the
 * lock. */
#include "commands.h"
#include "cursor.h"
#include "plan.h"
#include "store.h"
#include "update.h"
#include "wire.h"

#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

/* mongod refuses stored documents nested deeper than this (BSONDepth::kDefaultMaxAllowableDepth
 * minus the room commands need). */
#define MAX_DOC_DEPTH 180

/* ---- a growable array of document references ---- */

typedef struct {
    emu_doc_t **v;
    size_t n, cap;
} docvec_t;

static void
docvec_push(docvec_t *dv, emu_doc_t *d)
{
    if (dv->n == dv->cap) {
        dv->cap = dv->cap ? dv->cap * 2 : 256;
        dv->v = realloc(dv->v, dv->cap * sizeof *dv->v);
        if (!dv->v)
            abort();
    }
    dv->v[dv->n++] = d;
}

static void
docvec_release(docvec_t *dv, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        emu_doc_unref(dv->v[i]);
}

static void
docvec_free(docvec_t *dv)
{
    docvec_release(dv, 0, dv->n);
    free(dv->v);
    dv->v = NULL;
    dv->n = dv->cap = 0;
}

/* Keeps v[skip .. skip+limit) (limit 0: no limit). */
static void
docvec_slice(docvec_t *dv, int64_t skip, int64_t limit)
{
    size_t s = skip > 0 ? ((uint64_t)skip > dv->n ? dv->n : (size_t)skip) : 0;
    size_t e = dv->n;
    if (limit > 0 && (uint64_t)limit < e - s)
        e = s + (size_t)limit;
    docvec_release(dv, 0, s);
    docvec_release(dv, e, dv->n);
    if (s > 0 && e > s)
        memmove(dv->v, dv->v + s, (e - s) * sizeof *dv->v);
    dv->n = e - s;
}

/* The slots a filter can match: one slot through the _id index, or all of them. */
typedef struct {
    size_t first, end;
} slot_range_t;

static slot_range_t
candidate_slots(const emu_coll_t *coll, const bson_t *filter)
{
    bson_value_t id;
    slot_range_t r = {0, emu_coll_slots(coll)};
    if (emu_plan_id_equality(filter, &id)) {
        size_t s = emu_coll_find_id(coll, &id);
        r.first = s == SIZE_MAX ? 0 : s;
        r.end = s == SIZE_MAX ? 0 : s + 1;
    }
    return r;
}

static bool
push_doc(emu_doc_t *d, void *ctx)
{
    emu_doc_ref(d);
    docvec_push(ctx, d);
    return true;
}

typedef struct {
    docvec_t *dv;
    size_t want;
} capped_t;

/* The same, stopping once want documents are in (the plan's order is the result's). */
static bool
push_doc_capped(emu_doc_t *d, void *ctx)
{
    capped_t *c = ctx;
    push_doc(d, c->dv);
    return c->dv->n < c->want;
}

/* Collects references to the documents of coll matching f (NULL: all; filter is its source
 * document), in the order of the plan chosen for them and for sort (NULL: none), which is
 * natural order for a collection scan and index order for an index scan. True when that order
 * is sort's already; then at most want documents (0: all) are collected. */
static bool
collect(const emu_coll_t *coll, const bson_t *filter, const emu_filter_t *f, const bson_t *sort,
        size_t want, docvec_t *out)
{
    emu_plan_t plan;
    /* An empty filter matches everything: no document needs to be looked at. */
    if (filter && bson_empty(filter))
        f = NULL;
    emu_plan_choose(&plan, coll, filter, f, sort);
    capped_t cap = {out, want};
    if (want > 0 && plan.sorted)
        emu_plan_run(&plan, coll, f, push_doc_capped, &cap);
    else
        emu_plan_run(&plan, coll, f, push_doc, out);
    bool sorted = plan.sorted;
    emu_plan_cleanup(&plan);
    return sorted;
}

static bool
count_doc(emu_doc_t *d, void *ctx)
{
    (void)d;
    (*(int64_t *)ctx)++;
    return true;
}

static void
refilter(docvec_t *dv, const emu_filter_t *f)
{
    size_t o = 0;
    for (size_t i = 0; i < dv->n; i++) {
        bson_t view;
        emu_doc_view(dv->v[i], &view);
        if (emu_filter_matches(f, &view))
            dv->v[o++] = dv->v[i];
        else
            emu_doc_unref(dv->v[i]);
    }
    dv->n = o;
}

/* ---- sorting: keys are extracted once per document, then compared ---- */

typedef struct {
    const emu_sort_t *sort;
    const bson_value_t *keys;
    int nkeys;
} sortctx_t;

static _Thread_local const sortctx_t *sort_ctx;

typedef struct {
    emu_doc_t *doc;
    size_t pos; /* original position: a deterministic tie-break */
} sortitem_t;

static int
sort_cmp(const void *a, const void *b)
{
    const sortitem_t *x = a, *y = b;
    int r = emu_sort_compare(sort_ctx->sort, sort_ctx->keys + x->pos * (size_t)sort_ctx->nkeys,
                             sort_ctx->keys + y->pos * (size_t)sort_ctx->nkeys);
    if (r)
        return r;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static void
docvec_sort(docvec_t *dv, const emu_sort_t *s)
{
    int nk = emu_sort_nkeys(s);
    if (nk == 0 || dv->n < 2)
        return;
    bson_value_t *keys = malloc(dv->n * (size_t)nk * sizeof *keys);
    sortitem_t *items = malloc(dv->n * sizeof *items);
    if (!keys || !items)
        abort();
    for (size_t i = 0; i < dv->n; i++) {
        bson_t view;
        emu_doc_view(dv->v[i], &view);
        emu_sort_keys(s, &view, keys + i * (size_t)nk);
        items[i].doc = dv->v[i];
        items[i].pos = i;
    }
    sortctx_t ctx = {s, keys, nk};
    sort_ctx = &ctx;
    /* Documents inserted in key order (ObjectIds grow with time) are often sorted already: a
     * linear check saves the sort. */
    size_t sorted = 1;
    while (sorted < dv->n && sort_cmp(&items[sorted - 1], &items[sorted]) < 0)
        sorted++;
    if (sorted < dv->n)
        qsort(items, dv->n, sizeof *items, sort_cmp);
    sort_ctx = NULL;
    for (size_t i = 0; i < dv->n; i++)
        dv->v[i] = items[i].doc;
    free(items);
    free(keys);
}

/* ---- shared argument handling ---- */

static bool
coll_arg(emu_cmd_t *c, const char **coll, char *ns, size_t nslen, emu_error_t *err)
{
    if (!emu_cmd_string(c, c->name, coll, err) || !emu_valid_ns(c->db, *coll, err))
        return false;
    snprintf(ns, nslen, "%s.%s", c->db, *coll);
    return true;
}

/* Reads an array argument; *present false when absent. */
static bool
array_arg(emu_cmd_t *c, const char *field, bson_iter_t *items, emu_error_t *err)
{
    bson_iter_t it;
    if (!bson_iter_init_find(&it, c->cmd, field))
        return emu_error_set(err, EMU_FAILED_TO_PARSE, "BSON field '%s.%s' is missing", c->name,
                             field);
    if (!BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, items))
        return emu_error_set(err, EMU_TYPE_MISMATCH,
                             "BSON field '%s.%s' is the wrong type, expected type 'array'", c->name,
                             field);
    return true;
}

static void
doc_view_of(bson_iter_t *it, bson_t *view)
{
    const uint8_t *data;
    uint32_t len;
    bson_iter_document(it, &len, &data);
    if (!bson_init_static(view, data, len))
        bson_init(view);
}

static void
write_error(bson_t *errs, uint32_t *nerr, uint32_t index, const emu_error_t *e)
{
    char keybuf[16];
    const char *key;
    bson_t d;
    size_t klen = bson_uint32_to_string((*nerr)++, &key, keybuf, sizeof keybuf);
    bson_append_document_begin(errs, key, (int)klen, &d);
    BSON_APPEND_INT32(&d, "index", (int32_t)index);
    BSON_APPEND_INT32(&d, "code", e->code);
    const char *name = emu_code_name(e->code);
    if (*name)
        BSON_APPEND_UTF8(&d, "codeName", name);
    BSON_APPEND_UTF8(&d, "errmsg", e->msg);
    bson_append_document_end(errs, &d);
}

/* A stored copy of doc with _id first, generating an ObjectId when it has none. */
static emu_doc_t *
prepare_doc(const bson_t *doc, emu_error_t *err)
{
    bson_iter_t it;
    if (doc->len > EMU_MAX_BSON_SIZE) {
        emu_error_set(err, 10334, "object to insert too large. size in bytes: %u, max size: %d",
                      doc->len, EMU_MAX_BSON_SIZE);
        return NULL;
    }
    if (emu_bson_depth(doc, MAX_DOC_DEPTH) > MAX_DOC_DEPTH) {
        emu_error_set(err, 15, "Document exceeds maximum nesting depth of %d", MAX_DOC_DEPTH);
        return NULL;
    }
    bool has_id = bson_iter_init_find(&it, doc, "_id");
    if (has_id && (BSON_ITER_HOLDS_ARRAY(&it) || BSON_ITER_HOLDS_REGEX(&it) ||
                   BSON_ITER_HOLDS_UNDEFINED(&it))) {
        emu_error_set(err, EMU_BAD_VALUE, "can't use a%s for _id",
                      BSON_ITER_HOLDS_ARRAY(&it) ? "n array" : " regex or undefined");
        return NULL;
    }
    bson_iter_t first;
    if (has_id && bson_iter_init(&first, doc) && bson_iter_next(&first) &&
        strcmp(bson_iter_key(&first), "_id") == 0)
        return emu_doc_new(bson_get_data(doc), doc->len);
    /* mongod moves _id to the front (and adds one when missing). */
    bson_t out = BSON_INITIALIZER;
    if (has_id) {
        bson_append_iter(&out, "_id", 3, &it);
    } else {
        bson_oid_t oid;
        bson_oid_init(&oid, NULL);
        BSON_APPEND_OID(&out, "_id", &oid);
    }
    bson_copy_to_excluding_noinit(doc, &out, "_id", NULL);
    emu_doc_t *d = NULL;
    if (out.len > EMU_MAX_BSON_SIZE)
        emu_error_set(err, 10334, "object to insert too large");
    else
        d = emu_doc_new(bson_get_data(&out), out.len);
    bson_destroy(&out);
    return d;
}

/* ---- insert ---- */

bool
emu_cmd_insert(emu_cmd_t *c, bson_t *reply, emu_error_t *err)
{
    const char *name = NULL;
    char ns[300];
    bson_iter_t items;
    if (!coll_arg(c, &name, ns, sizeof ns, err) || !array_arg(c, "documents", &items, err))
        return false;
    bool ordered = emu_cmd_bool(c, "ordered", true);
    bson_t errs = BSON_INITIALIZER;
    uint32_t nerr = 0, index = 0;
    int32_t n = 0;
    emu_store_wrlock();
    emu_coll_t *coll = emu_store_coll(c->db, name, true);
    for (; bson_iter_next(&items); index++) {
        emu_error_t e = {0};
        bson_t doc;
        emu_doc_t *d = NULL;
        if (!BSON_ITER_HOLDS_DOCUMENT(&items))
            emu_error_set(&e, EMU_TYPE_MISMATCH, "documents to insert must be objects");
        else {
            doc_view_of(&items, &doc);
            d = prepare_doc(&doc, &e);
        }
        if (d && emu_coll_insert(coll, d, &e)) {
            n++;
            continue;
        }
        write_error(&errs, &nerr, index, &e);
        if (ordered)
            break;
    }
    emu_store_unlock();
    BSON_APPEND_INT32(reply, "n", n);
    if (nerr)
        BSON_APPEND_ARRAY(reply, "writeErrors", &errs);
    bson_destroy(&errs);
    return true;
}

/* ---- update ---- */

/* Applies one update statement; adds to *n, *modified and upserted. */
static bool
update_one_statement(emu_coll_t *coll, const bson_t *stmt, uint32_t index, int32_t *n,
                     int32_t *nmodified, bson_t *upserted, uint32_t *nups, emu_error_t *err)
{
    bson_iter_t it;
    bson_t q, u;
    bool upsert = false, multi = false;
    if (!bson_iter_init_find(&it, stmt, "q") || !BSON_ITER_HOLDS_DOCUMENT(&it))
        return emu_error_set(err, EMU_FAILED_TO_PARSE,
                             "BSON field 'update.updates.q' is missing or not an object");
    doc_view_of(&it, &q);
    if (!bson_iter_init_find(&it, stmt, "u"))
        return emu_error_set(err, EMU_FAILED_TO_PARSE, "BSON field 'update.updates.u' is missing");
    if (BSON_ITER_HOLDS_ARRAY(&it))
        return emu_error_set(err, EMU_BAD_VALUE,
                             "pipeline-style updates are not supported by docdb-emu");
    if (!BSON_ITER_HOLDS_DOCUMENT(&it))
        return emu_error_set(err, EMU_FAILED_TO_PARSE, "'u' must be an object or a pipeline");
    doc_view_of(&it, &u);
    if (bson_iter_init_find(&it, stmt, "upsert"))
        upsert = bson_iter_as_bool(&it);
    if (bson_iter_init_find(&it, stmt, "multi"))
        multi = bson_iter_as_bool(&it);
    if (bson_iter_init_find(&it, stmt, "arrayFilters"))
        return emu_error_set(err, EMU_BAD_VALUE, "arrayFilters are not supported by docdb-emu");
    if (!emu_update_validate(&u, err))
        return false;
    if (multi && !emu_update_is_operator(&u))
        return emu_error_set(err, EMU_FAILED_TO_PARSE,
                             "multi update is not supported for replacement-style update");
    emu_filter_t *f = emu_filter_new(&q, err);
    if (!f)
        return false;
    bool ok = true;
    int32_t matched = 0;
    slot_range_t range = candidate_slots(coll, &q);
    for (size_t s = range.first; s < range.end; s++) {
        emu_doc_t *d = emu_coll_at(coll, s);
        bson_t view, out = BSON_INITIALIZER;
        bool modified = false;
        if (!d)
            continue;
        emu_doc_view(d, &view);
        if (!emu_filter_matches(f, &view)) {
            bson_destroy(&out);
            continue;
        }
        if (!emu_update_apply(&view, &u, &out, &modified, err)) {
            bson_destroy(&out);
            ok = false;
            break;
        }
        if (modified) {
            emu_doc_t *nd = emu_doc_new(bson_get_data(&out), out.len);
            if (!nd)
                abort();
            if (!emu_coll_replace(coll, s, nd, err)) {
                bson_destroy(&out);
                ok = false;
                break;
            }
            (*nmodified)++;
        }
        matched++;
        bson_destroy(&out);
        if (!multi)
            break;
    }
    emu_filter_destroy(f);
    if (!ok)
        return false;
    *n += matched;
    if (matched || !upsert)
        return true;
    bson_t base = BSON_INITIALIZER;
    if (!emu_update_upsert_doc(&q, &u, &base, err)) {
        bson_destroy(&base);
        return false;
    }
    emu_doc_t *nd = prepare_doc(&base, err);
    bson_destroy(&base);
    if (!nd || !emu_coll_insert(coll, nd, err))
        return false;
    bson_t view, entry;
    bson_value_t id;
    char keybuf[16];
    const char *key;
    emu_doc_view(nd, &view);
    emu_doc_id(&view, &id);
    size_t klen = bson_uint32_to_string((*nups)++, &key, keybuf, sizeof keybuf);
    bson_append_document_begin(upserted, key, (int)klen, &entry);
    BSON_APPEND_INT32(&entry, "index", (int32_t)index);
    BSON_APPEND_VALUE(&entry, "_id", &id);
    bson_append_document_end(upserted, &entry);
    (*n)++;
    return true;
}

bool
emu_cmd_update(emu_cmd_t *c, bson_t *reply, emu_error_t *err)
{
    const char *name = NULL;
    char ns[300];
    bson_iter_t items;
    if (!coll_arg(c, &name, ns, sizeof ns, err) || !array_arg(c, "updates", &items, err))
        return false;
    bool ordered = emu_cmd_bool(c, "ordered", true);
    bson_t errs = BSON_INITIALIZER, upserted = BSON_INITIALIZER;
    uint32_t nerr = 0, nups = 0, index = 0;
    int32_t n = 0, nmodified = 0;
    emu_store_wrlock();
    emu_coll_t *coll = emu_store_coll(c->db, name, true);
    for (; bson_iter_next(&items); index++) {
        emu_error_t e = {0};
        bson_t stmt;
        bool ok;
        if (!BSON_ITER_HOLDS_DOCUMENT(&items)) {
            ok = emu_error_set(&e, EMU_TYPE_MISMATCH, "update statements must be objects");
        } else {
            doc_view_of(&items, &stmt);
            ok = update_one_statement(coll, &stmt, index, &n, &nmodified, &upserted, &nups, &e);
        }
        if (!ok) {
            write_error(&errs, &nerr, index, &e);
            if (ordered)
                break;
        }
    }
    emu_store_unlock();
    BSON_APPEND_INT32(reply, "n", n);
    BSON_APPEND_INT32(reply, "nModified", nmodified);
    if (nups)
        BSON_APPEND_ARRAY(reply, "upserted", &upserted);
    if (nerr)
        BSON_APPEND_ARRAY(reply, "writeErrors", &errs);
    bson_destroy(&errs);
    bson_destroy(&upserted);
    return true;
}

/* ---- delete ---- */

bool
emu_cmd_delete(emu_cmd_t *c, bson_t *reply, emu_error_t *err)
{
    const char *name = NULL;
    char ns[300];
    bson_iter_t items;
    if (!coll_arg(c, &name, ns, sizeof ns, err) || !array_arg(c, "deletes", &items, err))
        return false;
    bool ordered = emu_cmd_bool(c, "ordered", true);
    bson_t errs = BSON_INITIALIZER;
    uint32_t nerr = 0, index = 0;
    int32_t n = 0;
    emu_store_wrlock();
    emu_coll_t *coll = emu_store_coll(c->db, name, false);
    for (; bson_iter_next(&items); index++) {
        emu_error_t e = {0};
        bson_t stmt, q;
        bson_iter_t it;
        int64_t limit = 0;
        emu_filter_t *f = NULL;
        if (!BSON_ITER_HOLDS_DOCUMENT(&items)) {
            emu_error_set(&e, EMU_TYPE_MISMATCH, "delete statements must be objects");
            goto item_failed;
        }
        doc_view_of(&items, &stmt);
        if (!bson_iter_init_find(&it, &stmt, "q") || !BSON_ITER_HOLDS_DOCUMENT(&it)) {
            emu_error_set(&e, EMU_FAILED_TO_PARSE,
                          "BSON field 'delete.deletes.q' is missing or not an object");
            goto item_failed;
        }
        doc_view_of(&it, &q);
        if (!bson_iter_init_find(&it, &stmt, "limit") || !BSON_ITER_HOLDS_NUMBER(&it) ||
            ((limit = bson_iter_as_int64(&it)) != 0 && limit != 1)) {
            emu_error_set(&e, EMU_FAILED_TO_PARSE,
                          "The limit field in delete objects must be 0 or 1. Got %lld",
                          (long long)limit);
            goto item_failed;
        }
        if (!(f = emu_filter_new(&q, &e)))
            goto item_failed;
        slot_range_t range = coll ? candidate_slots(coll, &q) : (slot_range_t){0, 0};
        for (size_t s = range.first; s < range.end; s++) {
            emu_doc_t *d = emu_coll_at(coll, s);
            bson_t view;
            if (!d)
                continue;
            emu_doc_view(d, &view);
            if (!emu_filter_matches(f, &view))
                continue;
            emu_coll_remove(coll, s);
            n++;
            if (limit == 1)
                break;
        }
        emu_filter_destroy(f);
        continue;
    item_failed:
        write_error(&errs, &nerr, index, &e);
        if (ordered)
            break;
    }
    if (coll)
        emu_coll_compact(coll);
    emu_store_unlock();
    BSON_APPEND_INT32(reply, "n", n);
    if (nerr)
        BSON_APPEND_ARRAY(reply, "writeErrors", &errs);
    bson_destroy(&errs);
    return true;
}

/* ---- find, getMore, killCursors, count ---- */

typedef struct {
    bson_t filter, sort, projection;
    bool has_filter, has_sort, has_projection;
    int64_t skip, limit, batch_size;
    bool has_skip, has_limit, has_batch_size;
} find_args_t;

static bool
find_args(emu_cmd_t *c, find_args_t *a, const char *filter_field, emu_error_t *err)
{
    memset(a, 0, sizeof *a);
    if (!emu_cmd_doc(c, filter_field, &a->filter, &a->has_filter, err) ||
        !emu_cmd_doc(c, "sort", &a->sort, &a->has_sort, err) ||
        !emu_cmd_doc(c, "projection", &a->projection, &a->has_projection, err) ||
        !emu_cmd_int64(c, "skip", &a->skip, &a->has_skip, err) ||
        !emu_cmd_int64(c, "limit", &a->limit, &a->has_limit, err) ||
        !emu_cmd_int64(c, "batchSize", &a->batch_size, &a->has_batch_size, err))
        return false;
    if (a->skip < 0)
        return emu_error_set(err, EMU_BAD_VALUE,
                             "Skip value must be non-negative, but received: %lld",
                             (long long)a->skip);
    if (a->batch_size < 0)
        return emu_error_set(err, EMU_BAD_VALUE,
                             "BatchSize value must be non-negative, but received: %lld",
                             (long long)a->batch_size);
    return true;
}

bool
emu_cmd_find(emu_cmd_t *c, bson_t *reply, emu_error_t *err)
{
    const char *name = NULL;
    char ns[300];
    find_args_t a;
    emu_filter_t *f = NULL;
    emu_sort_t *s = NULL;
    emu_projection_t *p = NULL;
    docvec_t dv = {0};
    if (!coll_arg(c, &name, ns, sizeof ns, err) || !find_args(c, &a, "filter", err))
        return false;
    bool single = emu_cmd_bool(c, "singleBatch", false);
    if (a.limit < 0) {
        /* A negative limit is the legacy spelling of singleBatch. */
        a.limit = -a.limit;
        single = true;
    }
    if ((a.has_filter && !(f = emu_filter_new(&a.filter, err))) ||
        (a.has_sort && !(s = emu_sort_new(&a.sort, err))) ||
        (a.has_projection && !bson_empty(&a.projection) &&
         !(p = emu_projection_new(&a.projection, err)))) {
        emu_filter_destroy(f);
        emu_sort_destroy(s);
        return false;
    }
    emu_store_rdlock();
    emu_coll_t *coll = emu_store_coll(c->db, name, false);
    bool sorted = false;
    if (coll)
        sorted = collect(coll, a.has_filter ? &a.filter : NULL, f, a.has_sort ? &a.sort : NULL,
                         a.limit > 0 ? (size_t)(a.skip + a.limit) : 0, &dv);
    emu_store_unlock();
    emu_filter_destroy(f);
    if (s) {
        if (!sorted)
            docvec_sort(&dv, s);
        emu_sort_destroy(s);
    }
    docvec_slice(&dv, a.skip, a.limit);
    emu_cursor_t *cur = emu_cursor_new(ns, dv.v, dv.n, p);
    emu_cursor_reply(cur, reply, true, a.has_batch_size ? a.batch_size : -1, !single);
    return true;
}

bool
emu_cmd_get_more(emu_cmd_t *c, bson_t *reply, emu_error_t *err)
{
    bson_iter_t it;
    const char *coll = NULL;
    int64_t batch_size = 0;
    bool has_bs;
    char ns[300];
    if (!bson_iter_init_find(&it, c->cmd, "getMore") || !BSON_ITER_HOLDS_INT64(&it))
        return emu_error_set(err, EMU_TYPE_MISMATCH, "Field 'getMore' must be of type long");
    int64_t id = bson_iter_int64(&it);
    if (!emu_cmd_string(c, "collection", &coll, err) ||
        !emu_cmd_int64(c, "batchSize", &batch_size, &has_bs, err))
        return false;
    if (batch_size < 0)
        return emu_error_set(err, EMU_BAD_VALUE, "batchSize must be non-negative");
    snprintf(ns, sizeof ns, "%s.%s", c->db, coll);
    emu_cursor_reap(emu_now_ms(), (int64_t)emu_config.cursor_timeout_s * 1000);
    emu_cursor_t *cur = emu_cursor_checkout(id, ns, err);
    if (!cur)
        return false;
    emu_cursor_reply(cur, reply, false, batch_size, true);
    return true;
}

bool
emu_cmd_kill_cursors(emu_cmd_t *c, bson_t *reply, emu_error_t *err)
{
    const char *name = NULL;
    char ns[300];
    bson_iter_t items;
    bson_t killed = BSON_INITIALIZER, missing = BSON_INITIALIZER, empty = BSON_INITIALIZER;
    uint32_t nk = 0, nm = 0;
    if (!coll_arg(c, &name, ns, sizeof ns, err) || !array_arg(c, "cursors", &items, err))
        return false;
    while (bson_iter_next(&items)) {
        char keybuf[16];
        const char *key;
        if (!BSON_ITER_HOLDS_INT64(&items)) {
            bson_destroy(&killed);
            bson_destroy(&missing);
            return emu_error_set(err, EMU_TYPE_MISMATCH,
                                 "BSON field 'killCursors.cursors' must hold longs");
        }
        int64_t id = bson_iter_int64(&items);
        bool ok = emu_cursor_kill(id);
        bson_t *dst = ok ? &killed : &missing;
        uint32_t *cnt = ok ? &nk : &nm;
        size_t klen = bson_uint32_to_string((*cnt)++, &key, keybuf, sizeof keybuf);
        bson_append_int64(dst, key, (int)klen, id);
    }
    BSON_APPEND_ARRAY(reply, "cursorsKilled", &killed);
    BSON_APPEND_ARRAY(reply, "cursorsNotFound", &missing);
    BSON_APPEND_ARRAY(reply, "cursorsAlive", &empty);
    BSON_APPEND_ARRAY(reply, "cursorsUnknown", &empty);
    bson_destroy(&killed);
    bson_destroy(&missing);
    return true;
}

bool
emu_cmd_count(emu_cmd_t *c, bson_t *reply, emu_error_t *err)
{
    const char *name = NULL;
    char ns[300];
    find_args_t a;
    emu_filter_t *f = NULL;
    if (!coll_arg(c, &name, ns, sizeof ns, err) || !find_args(c, &a, "query", err))
        return false;
    if (a.has_filter && !bson_empty(&a.filter) && !(f = emu_filter_new(&a.filter, err)))
        return false;
    int64_t n = 0;
    emu_store_rdlock();
    emu_coll_t *coll = emu_store_coll(c->db, name, false);
    if (coll && !f) {
        n = (int64_t)emu_coll_count(coll);
    } else if (coll) {
        emu_plan_t plan;
        emu_plan_choose(&plan, coll, &a.filter, f, NULL);
        emu_plan_run(&plan, coll, f, count_doc, &n);
        emu_plan_cleanup(&plan);
    }
    emu_store_unlock();
    emu_filter_destroy(f);
    n -= a.skip;
    if (n < 0)
        n = 0;
    if (a.limit != 0 && n > llabs(a.limit))
        n = llabs(a.limit);
    BSON_APPEND_INT32(reply, "n", (int32_t)n);
    return true;
}

/* ---- aggregate ---- */

static bool
stage_int(bson_iter_t *it, const char *stage, int64_t *out, emu_error_t *err)
{
    if (!BSON_ITER_HOLDS_NUMBER(it))
        return emu_error_set(err, 15957, "the %s stage needs a number", stage);
    *out = bson_iter_as_int64(it);
    return true;
}

static bool
stage_doc(bson_iter_t *it, const char *stage, bson_t *out, emu_error_t *err)
{
    if (!BSON_ITER_HOLDS_DOCUMENT(it))
        return emu_error_set(err, 15959, "the %s stage specification must be an object", stage);
    doc_view_of(it, out);
    return true;
}

/* What a pipeline gives the planner: its leading $match (*has_match) and the $sort that comes
 * first or right after that $match (*has_sort). Views borrow from the pipeline. */
static bool
pipeline_query(const bson_iter_t *stages, bson_t *match, bool *has_match, bson_t *sort,
               bool *has_sort, emu_error_t *err)
{
    bson_iter_t it = *stages, st;
    *has_match = *has_sort = false;
    bson_init(match);
    bson_init(sort);
    for (int i = 0; i < 2 && bson_iter_next(&it); i++) {
        if (!BSON_ITER_HOLDS_DOCUMENT(&it) || !bson_iter_recurse(&it, &st) || !bson_iter_next(&st))
            return true; /* the pipeline's own checks answer the error */
        if (i == 0 && strcmp(bson_iter_key(&st), "$match") == 0) {
            if (!stage_doc(&st, "$match", match, err))
                return false;
            *has_match = true;
            continue;
        }
        if (strcmp(bson_iter_key(&st), "$sort") == 0 && BSON_ITER_HOLDS_DOCUMENT(&st)) {
            doc_view_of(&st, sort);
            *has_sort = true;
        }
        return true;
    }
    return true;
}

/* ---- $group: _id from a constant or a "$field" path; $sum, $avg, $min, $max, $first,
 * $last and $count accumulators (what drivers' count helpers and simple reports use) ---- */

typedef enum { ACC_SUM, ACC_AVG, ACC_MIN, ACC_MAX, ACC_FIRST, ACC_LAST, ACC_COUNT } acc_op_t;

typedef struct {
    const char *name; /* output field */
    acc_op_t op;
    bson_value_t arg; /* a constant, or a "$path" string */
} acc_spec_t;

/* One accumulator's running state in one group. */
typedef struct {
    double sum; /* $sum/$avg as a double, used when a double was seen or int64 overflowed */
    int64_t isum;
    bool is_double, overflow;
    int64_t nums;     /* numbers seen, for $avg */
    bson_value_t val; /* $min/$max/$first/$last (owned when has) */
    bool has;
} acc_state_t;

typedef struct {
    bson_value_t key; /* owned copy */
    int64_t n;        /* documents in the group */
    acc_state_t *acc; /* one per accumulator */
} group_t;

/* The value of expression e for doc: a "$path" reads the field (missing: EOD), anything else
 * is itself. */
static void
eval_expr(const bson_value_t *e, const bson_t *doc, bson_value_t *out)
{
    bson_iter_t it, f;
    if (e->value_type == BSON_TYPE_UTF8 && e->value.v_utf8.len > 1 &&
        e->value.v_utf8.str[0] == '$') {
        out->value_type = BSON_TYPE_EOD;
        if (bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, e->value.v_utf8.str + 1, &f))
            *out = *bson_iter_value(&f);
        return;
    }
    *out = *e;
}

static bool
parse_group(const bson_t *spec, bson_value_t *id_expr, acc_spec_t **accs, size_t *nacc,
            emu_error_t *err)
{
    bson_iter_t it, op;
    bool has_id = false;
    *nacc = 0;
    *accs = calloc(bson_count_keys(spec) + 1, sizeof **accs);
    bson_iter_init(&it, spec);
    while (bson_iter_next(&it)) {
        const char *k = bson_iter_key(&it);
        if (strcmp(k, "_id") == 0) {
            if (BSON_ITER_HOLDS_DOCUMENT(&it))
                return emu_error_set(err, EMU_BAD_VALUE,
                                     "docdb-emu's $group takes a constant or a \"$field\" _id");
            *id_expr = *bson_iter_value(&it);
            has_id = true;
            continue;
        }
        if (!BSON_ITER_HOLDS_DOCUMENT(&it) || !bson_iter_recurse(&it, &op) || !bson_iter_next(&op))
            return emu_error_set(err, 40234, "The field '%s' must be an accumulator object", k);
        static const struct {
            const char *name;
            acc_op_t op;
        } ops[] = {{"$sum", ACC_SUM},    {"$avg", ACC_AVG},     {"$min", ACC_MIN},
                   {"$max", ACC_MAX},    {"$first", ACC_FIRST}, {"$last", ACC_LAST},
                   {"$count", ACC_COUNT}};
        acc_spec_t *a = &(*accs)[(*nacc)++];
        a->name = k;
        size_t i;
        for (i = 0; i < sizeof ops / sizeof ops[0]; i++)
            if (strcmp(bson_iter_key(&op), ops[i].name) == 0)
                break;
        if (i == sizeof ops / sizeof ops[0])
            return emu_error_set(err, 15952, "unknown group operator '%s'", bson_iter_key(&op));
        a->op = ops[i].op;
        a->arg = *bson_iter_value(&op);
    }
    if (!has_id)
        return emu_error_set(err, 15955, "a group specification must include an _id");
    return true;
}

static void
accumulate(group_t *g, const acc_spec_t *accs, size_t nacc, const bson_t *doc)
{
    g->n++;
    for (size_t i = 0; i < nacc; i++) {
        acc_state_t *a = &g->acc[i];
        bson_value_t v;
        eval_expr(&accs[i].arg, doc, &v);
        switch (accs[i].op) {
        case ACC_COUNT:
            break;
        case ACC_SUM:
        case ACC_AVG:
            if (v.value_type == BSON_TYPE_INT32 || v.value_type == BSON_TYPE_INT64) {
                int64_t x = v.value_type == BSON_TYPE_INT32 ? v.value.v_int32 : v.value.v_int64;
                if (__builtin_add_overflow(a->isum, x, &a->isum))
                    a->overflow = true;
                a->sum += (double)x;
                a->nums++;
            } else if (v.value_type == BSON_TYPE_DOUBLE) {
                a->is_double = true;
                a->sum += v.value.v_double;
                a->nums++;
            }
            break;
        case ACC_FIRST:
        case ACC_LAST:
        case ACC_MIN:
        case ACC_MAX: {
            bool take;
            if (accs[i].op == ACC_FIRST)
                take = !a->has;
            else if (accs[i].op == ACC_LAST)
                take = true;
            else if (v.value_type == BSON_TYPE_EOD)
                take = false; /* $min/$max ignore missing fields */
            else
                take = !a->has || (accs[i].op == ACC_MIN ? emu_value_compare(&v, &a->val) < 0
                                                         : emu_value_compare(&v, &a->val) > 0);
            if (!take)
                break;
            if (a->has)
                bson_value_destroy(&a->val);
            if (v.value_type == BSON_TYPE_EOD)
                v.value_type = BSON_TYPE_NULL;
            bson_value_copy(&v, &a->val);
            a->has = true;
            break;
        }
        }
    }
}

static bool
run_group(bson_iter_t *arg, docvec_t *dv, emu_error_t *err)
{
    bson_t spec;
    bson_value_t id_expr;
    acc_spec_t *accs = NULL;
    size_t nacc = 0, ngroups = 0, cap = 0;
    group_t *groups = NULL;
    if (!BSON_ITER_HOLDS_DOCUMENT(arg))
        return emu_error_set(err, 15947, "a group's fields must be specified in an object");
    doc_view_of(arg, &spec);
    if (!parse_group(&spec, &id_expr, &accs, &nacc, err)) {
        free(accs);
        return false;
    }
    for (size_t d = 0; d < dv->n; d++) {
        bson_t view;
        bson_value_t key;
        emu_doc_view(dv->v[d], &view);
        eval_expr(&id_expr, &view, &key);
        if (key.value_type == BSON_TYPE_EOD)
            key.value_type = BSON_TYPE_NULL;
        size_t g = 0;
        while (g < ngroups && emu_value_compare(&groups[g].key, &key) != 0)
            g++;
        if (g == ngroups) {
            if (ngroups == cap) {
                cap = cap ? cap * 2 : 16;
                groups = realloc(groups, cap * sizeof *groups);
                if (!groups)
                    abort();
            }
            memset(&groups[g], 0, sizeof groups[g]);
            bson_value_copy(&key, &groups[g].key);
            groups[g].acc = calloc(nacc + 1, sizeof *groups[g].acc);
            if (!groups[g].acc)
                abort();
            ngroups++;
        }
        accumulate(&groups[g], accs, nacc, &view);
    }
    docvec_release(dv, 0, dv->n);
    dv->n = 0;
    for (size_t g = 0; g < ngroups; g++) {
        bson_t out = BSON_INITIALIZER;
        BSON_APPEND_VALUE(&out, "_id", &groups[g].key);
        for (size_t i = 0; i < nacc; i++) {
            const acc_state_t *a = &groups[g].acc[i];
            switch (accs[i].op) {
            case ACC_COUNT:
                bson_append_int32(&out, accs[i].name, -1, (int32_t)groups[g].n);
                break;
            case ACC_SUM:
                if (a->is_double || a->overflow)
                    bson_append_double(&out, accs[i].name, -1, a->sum);
                else if (a->isum >= INT32_MIN && a->isum <= INT32_MAX)
                    bson_append_int32(&out, accs[i].name, -1, (int32_t)a->isum);
                else
                    bson_append_int64(&out, accs[i].name, -1, a->isum);
                break;
            case ACC_AVG:
                if (a->nums)
                    bson_append_double(&out, accs[i].name, -1, a->sum / (double)a->nums);
                else
                    bson_append_null(&out, accs[i].name, -1);
                break;
            default:
                if (a->has)
                    bson_append_value(&out, accs[i].name, -1, &a->val);
                else
                    bson_append_null(&out, accs[i].name, -1);
            }
        }
        docvec_push(dv, emu_doc_new(bson_get_data(&out), out.len));
        bson_destroy(&out);
        bson_value_destroy(&groups[g].key);
        for (size_t i = 0; i < nacc; i++)
            if (groups[g].acc[i].has)
                bson_value_destroy(&groups[g].acc[i].val);
        free(groups[g].acc);
    }
    free(groups);
    free(accs);
    return true;
}

/* Runs one stage over dv in place. */
static bool
run_stage(const char *stage, bson_iter_t *arg, docvec_t *dv, emu_error_t *err)
{
    bson_t spec;
    int64_t n = 0;
    if (strcmp(stage, "$match") == 0) {
        if (!stage_doc(arg, stage, &spec, err))
            return false;
        emu_filter_t *f = emu_filter_new(&spec, err);
        if (!f)
            return false;
        refilter(dv, f);
        emu_filter_destroy(f);
    } else if (strcmp(stage, "$sort") == 0) {
        if (!stage_doc(arg, stage, &spec, err))
            return false;
        if (bson_empty(&spec))
            return emu_error_set(err, 15976, "$sort stage must have at least one sort key");
        emu_sort_t *s = emu_sort_new(&spec, err);
        if (!s)
            return false;
        docvec_sort(dv, s);
        emu_sort_destroy(s);
    } else if (strcmp(stage, "$skip") == 0) {
        if (!stage_int(arg, stage, &n, err))
            return false;
        if (n < 0)
            return emu_error_set(err, 15956,
                                 "invalid argument to $skip stage: value must be "
                                 "non-negative");
        docvec_slice(dv, n, 0);
    } else if (strcmp(stage, "$limit") == 0) {
        if (!stage_int(arg, stage, &n, err))
            return false;
        if (n <= 0)
            return emu_error_set(err, 15958,
                                 "invalid argument to $limit stage: value must be "
                                 "positive");
        docvec_slice(dv, 0, n);
    } else if (strcmp(stage, "$project") == 0) {
        if (!stage_doc(arg, stage, &spec, err))
            return false;
        if (bson_empty(&spec))
            return emu_error_set(err, 51272,
                                 "projection specification must have at least one "
                                 "field");
        emu_projection_t *p = emu_projection_new(&spec, err);
        if (!p)
            return false;
        for (size_t i = 0; i < dv->n; i++) {
            bson_t view, out = BSON_INITIALIZER;
            emu_doc_view(dv->v[i], &view);
            emu_projection_apply(p, &view, &out);
            emu_doc_t *nd = emu_doc_new(bson_get_data(&out), out.len);
            bson_destroy(&out);
            if (!nd)
                abort();
            emu_doc_unref(dv->v[i]);
            dv->v[i] = nd;
        }
        emu_projection_destroy(p);
    } else if (strcmp(stage, "$count") == 0) {
        if (!BSON_ITER_HOLDS_UTF8(arg) || bson_iter_utf8(arg, NULL)[0] == '\0' ||
            bson_iter_utf8(arg, NULL)[0] == '$' || strchr(bson_iter_utf8(arg, NULL), '.'))
            return emu_error_set(err, 40156,
                                 "the count field must be a non-empty string "
                                 "without '$' or '.'");
        size_t count = dv->n;
        docvec_release(dv, 0, dv->n);
        dv->n = 0;
        if (count) {
            bson_t out = BSON_INITIALIZER;
            BSON_APPEND_INT32(&out, bson_iter_utf8(arg, NULL), (int32_t)count);
            docvec_push(dv, emu_doc_new(bson_get_data(&out), out.len));
            bson_destroy(&out);
        }
    } else if (strcmp(stage, "$group") == 0) {
        return run_group(arg, dv, err);
    } else if (strcmp(stage, "$sample") == 0) {
        bson_iter_t sz;
        if (!stage_doc(arg, stage, &spec, err))
            return false;
        if (!bson_iter_init_find(&sz, &spec, "size") || !BSON_ITER_HOLDS_NUMBER(&sz) ||
            (n = bson_iter_as_int64(&sz)) < 0)
            return emu_error_set(err, 28749,
                                 "size argument to $sample must be a non-negative "
                                 "number");
        /* A partial Fisher-Yates shuffle: the first n are a uniform sample. */
        size_t k = (uint64_t)n < dv->n ? (size_t)n : dv->n;
        for (size_t i = 0; i < k; i++) {
            uint64_t r = 0;
            RAND_bytes((unsigned char *)&r, sizeof r);
            size_t j = i + (size_t)(r % (dv->n - i));
            emu_doc_t *t = dv->v[i];
            dv->v[i] = dv->v[j];
            dv->v[j] = t;
        }
        docvec_slice(dv, 0, (int64_t)k == 0 ? -1 : (int64_t)k);
        if (k == 0) {
            docvec_release(dv, 0, dv->n);
            dv->n = 0;
        }
    } else {
        return emu_error_set(err, 40324, "Unrecognized pipeline stage name: '%s'", stage);
    }
    return true;
}

/* ---- explain ---- */

/* Appends mongod's explain output for the find, count or aggregate command `inner` (run in
 * c's database): queryPlanner with the plan those commands would use and, unless verbosity is
 * "queryPlanner", executionStats from running it. For aggregate, the plan is that of the
 * leading $match (and $sort); later stages are not described. */
static bool
explain_query(emu_cmd_t *c, const bson_t *inner, const char *verbosity, bson_t *reply,
              emu_error_t *err)
{
    bson_iter_t it, stages;
    emu_cmd_t sub = *c;
    find_args_t a;
    bson_t match, agg_sort, empty = BSON_INITIALIZER;
    const bson_t *filter = NULL, *sort = NULL;
    bool has_match = false, has_sort = false, count = false;
    const char *name = NULL;
    char ns[300];
    emu_filter_t *f = NULL;
    memset(&a, 0, sizeof a);
    if (!bson_iter_init(&it, inner) || !bson_iter_next(&it))
        return emu_error_set(err, EMU_FAILED_TO_PARSE, "explain needs a command to explain");
    sub.name = bson_iter_key(&it);
    sub.cmd = inner;
    if (strcmp(sub.name, "find") == 0 || strcmp(sub.name, "count") == 0) {
        count = sub.name[0] == 'c';
        if (!coll_arg(&sub, &name, ns, sizeof ns, err) ||
            !find_args(&sub, &a, count ? "query" : "filter", err))
            return false;
        filter = a.has_filter ? &a.filter : NULL;
        sort = !count && a.has_sort ? &a.sort : NULL;
        if (sort) {
            emu_sort_t *s = emu_sort_new(sort, err);
            if (!s)
                return false;
            emu_sort_destroy(s);
        }
    } else if (strcmp(sub.name, "aggregate") == 0) {
        if (!coll_arg(&sub, &name, ns, sizeof ns, err) ||
            !array_arg(&sub, "pipeline", &stages, err) ||
            !pipeline_query(&stages, &match, &has_match, &agg_sort, &has_sort, err))
            return false;
        filter = has_match ? &match : NULL;
        sort = has_sort ? &agg_sort : NULL;
    } else {
        return emu_error_set(err, EMU_COMMAND_NOT_FOUND,
                             "Explain failed due to unknown command: %s (docdb-emu explains "
                             "find, count and aggregate)",
                             sub.name);
    }
    if (filter && !bson_empty(filter) && !(f = emu_filter_new(filter, err)))
        return false;

    bson_t qp, wp, none, stats;
    emu_plan_t plan;
    emu_store_rdlock();
    emu_coll_t *coll = emu_store_coll(c->db, name, false);
    BSON_APPEND_UTF8(reply, "explainVersion", "1");
    BSON_APPEND_DOCUMENT_BEGIN(reply, "queryPlanner", &qp);
    BSON_APPEND_INT32(&qp, "plannerVersion", 1);
    BSON_APPEND_UTF8(&qp, "namespace", ns);
    BSON_APPEND_BOOL(&qp, "indexFilterSet", false);
    BSON_APPEND_DOCUMENT(&qp, "parsedQuery", filter ? filter : &empty);
    BSON_APPEND_DOCUMENT_BEGIN(&qp, "winningPlan", &wp);
    if (coll) {
        emu_plan_choose(&plan, coll, filter, f, sort);
        emu_plan_explain(&plan, filter, sort, count, &wp);
    } else {
        BSON_APPEND_UTF8(&wp, "stage", "EOF"); /* mongod's plan for a missing collection */
    }
    bson_append_document_end(&qp, &wp);
    BSON_APPEND_ARRAY_BEGIN(&qp, "rejectedPlans", &none);
    bson_append_array_end(&qp, &none);
    bson_append_document_end(reply, &qp);
    if (strcmp(verbosity, "queryPlanner") != 0) {
        int64_t n = 0, t0 = emu_now_ms();
        if (coll)
            emu_plan_run(&plan, coll, f, count_doc, &n);
        n = a.skip < n ? n - a.skip : 0;
        if (a.limit != 0 && n > llabs(a.limit))
            n = llabs(a.limit);
        BSON_APPEND_DOCUMENT_BEGIN(reply, "executionStats", &stats);
        BSON_APPEND_BOOL(&stats, "executionSuccess", true);
        BSON_APPEND_INT64(&stats, "nReturned", n);
        BSON_APPEND_INT64(&stats, "executionTimeMillis", emu_now_ms() - t0);
        BSON_APPEND_INT64(&stats, "totalKeysExamined", coll ? (int64_t)plan.keys_examined : 0);
        BSON_APPEND_INT64(&stats, "totalDocsExamined", coll ? (int64_t)plan.docs_examined : 0);
        bson_append_document_end(reply, &stats);
    }
    if (coll)
        emu_plan_cleanup(&plan);
    emu_store_unlock();
    emu_filter_destroy(f);
    BSON_APPEND_DOCUMENT(reply, "command", inner);
    return true;
}

bool
emu_cmd_explain(emu_cmd_t *c, bson_t *reply, emu_error_t *err)
{
    bson_t inner;
    bool has;
    bson_iter_t it;
    const char *verbosity = "allPlansExecution"; /* mongod's default */
    if (!emu_cmd_doc(c, "explain", &inner, &has, err))
        return false;
    if (!has)
        return emu_error_set(err, EMU_FAILED_TO_PARSE, "explain command requires a nested object");
    if (bson_iter_init_find(&it, c->cmd, "verbosity")) {
        verbosity = BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, NULL) : "";
        if (strcmp(verbosity, "queryPlanner") != 0 && strcmp(verbosity, "executionStats") != 0 &&
            strcmp(verbosity, "allPlansExecution") != 0)
            return emu_error_set(err, EMU_BAD_VALUE,
                                 "verbosity string must be one of {'queryPlanner', "
                                 "'executionStats', 'allPlansExecution'}");
    }
    return explain_query(c, &inner, verbosity, reply, err);
}

bool
emu_cmd_aggregate(emu_cmd_t *c, bson_t *reply, emu_error_t *err)
{
    bson_iter_t it, stages;
    bson_t cursor_opts;
    bool has_cursor;
    int64_t batch_size = -1;
    char ns[300];
    docvec_t dv = {0};
    if (!bson_iter_init_find(&it, c->cmd, "aggregate") || !BSON_ITER_HOLDS_UTF8(&it))
        return emu_error_set(err, EMU_LOCATION_OP_NOT_SUPPORTED,
                             "docdb-emu runs aggregate on collections only");
    const char *name = bson_iter_utf8(&it, NULL);
    if (!emu_valid_ns(c->db, name, err) || !array_arg(c, "pipeline", &stages, err) ||
        !emu_cmd_doc(c, "cursor", &cursor_opts, &has_cursor, err))
        return false;
    if (emu_cmd_bool(c, "explain", false))
        return explain_query(c, c->cmd, "queryPlanner", reply, err);
    if (!has_cursor)
        return emu_error_set(err, EMU_FAILED_TO_PARSE,
                             "The 'cursor' option is required, except for aggregate with the "
                             "explain argument");
    if (bson_iter_init_find(&it, &cursor_opts, "batchSize") && BSON_ITER_HOLDS_NUMBER(&it))
        batch_size = bson_iter_as_int64(&it);
    snprintf(ns, sizeof ns, "%s.%s", c->db, name);

    /* A leading $match filters while collecting, under the lock, with the following $sort as
     * the order the planner may provide. */
    bson_t match, sort;
    bool first_is_match, has_sort;
    emu_filter_t *f = NULL;
    if (!pipeline_query(&stages, &match, &first_is_match, &sort, &has_sort, err) ||
        (first_is_match && !(f = emu_filter_new(&match, err))))
        return false;
    emu_store_rdlock();
    emu_coll_t *coll = emu_store_coll(c->db, name, false);
    if (coll)
        collect(coll, first_is_match ? &match : NULL, f, has_sort ? &sort : NULL, 0, &dv);
    emu_store_unlock();
    emu_filter_destroy(f);

    bool skip_first = first_is_match;
    while (bson_iter_next(&stages)) {
        bson_iter_t st;
        if (!BSON_ITER_HOLDS_DOCUMENT(&stages) || !bson_iter_recurse(&stages, &st) ||
            !bson_iter_next(&st)) {
            docvec_free(&dv);
            return emu_error_set(err, 40323,
                                 "A pipeline stage specification object must contain exactly "
                                 "one field.");
        }
        bson_iter_t extra = st;
        if (bson_iter_next(&extra)) {
            docvec_free(&dv);
            return emu_error_set(err, 40323,
                                 "A pipeline stage specification object must contain exactly "
                                 "one field.");
        }
        if (skip_first) {
            skip_first = false;
            continue;
        }
        if (!run_stage(bson_iter_key(&st), &st, &dv, err)) {
            docvec_free(&dv);
            return false;
        }
    }
    emu_cursor_t *cur = emu_cursor_new(ns, dv.v, dv.n, NULL);
    emu_cursor_reply(cur, reply, true, batch_size, true);
    return true;
}

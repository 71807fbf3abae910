/* plan.c: the query planner: _id equality through the _id index, else the usable secondary index
 * whose first field the filter bounds most tightly (preferring one whose order is the sort),
 * else an index whose order is the sort, else a collection scan; a bounded index scan that
 * still needs sorting and would visit a large part of the collection becomes a collection
 * scan. The index only narrows the candidates: every one still goes through the full filter. */
#include "plan.h"

#include <string.h>

/* When several indexes are bounded, each is judged by the entries in its bounds, counted up to
 * this many: enough to tell a selective index from a poor one, cheap next to a query. */
#define ESTIMATE_CAP 10000
/* An index scan that must be sorted anyway is dropped for a collection scan when its bounds
 * hold at least this fraction of the documents: walking the tree costs more per document than
 * walking the slots, and the natural order is often the sort wanted (_id order). */
#define SCAN_FRACTION 4

bool
emu_plan_id_equality(const bson_t *filter, bson_value_t *id)
{
    bson_iter_t it;
    if (!filter || !bson_iter_init(&it, filter) || !bson_iter_next(&it) ||
        strcmp(bson_iter_key(&it), "_id") != 0)
        return false;
    bson_iter_t rest = it;
    if (bson_iter_next(&rest))
        return false;
    switch (bson_iter_type(&it)) {
    case BSON_TYPE_DOCUMENT:
    case BSON_TYPE_ARRAY:
    case BSON_TYPE_REGEX:
    case BSON_TYPE_NULL:
    case BSON_TYPE_UNDEFINED:
    case BSON_TYPE_MINKEY:
    case BSON_TYPE_MAXKEY:
        return false;
    default:
        *id = *bson_iter_value(&it);
        return true;
    }
}

/* 1 when the index's order gives the sort, -1 when its reverse does, 0 otherwise: the sort's
 * fields are a prefix of the index's, all in its directions or all against them. */
static int
sort_direction(const emu_index_t *ix, const bson_t *sort)
{
    bson_iter_t it;
    int i = 0, rel = 0;
    if (!sort || bson_empty(sort) || !bson_iter_init(&it, sort))
        return 0;
    while (bson_iter_next(&it)) {
        int dir;
        if (i == emu_index_nfields(ix) || !BSON_ITER_HOLDS_NUMBER(&it))
            return 0;
        if (strcmp(bson_iter_key(&it), emu_index_field(ix, i++, &dir)) != 0)
            return 0;
        double d = bson_iter_as_double(&it);
        int r = (d > 0) == (dir > 0) ? 1 : -1;
        if (rel && r != rel)
            return 0;
        rel = r;
    }
    return rel;
}

typedef struct {
    size_t n, cap;
} counter_t;

static bool
count_capped(emu_doc_t *doc, void *ctx)
{
    counter_t *c = ctx;
    (void)doc;
    return ++c->n < c->cap;
}

/* The entries in b, counted up to cap. */
static size_t
estimate(const emu_index_t *ix, const emu_bounds_t *b, size_t cap)
{
    counter_t c = {0, cap};
    emu_index_scan(ix, b, false, count_capped, &c);
    return c.n;
}

/* Whether sort is exactly {_id: 1}. */
static bool
is_id_ascending(const bson_t *sort)
{
    bson_iter_t it;
    return sort && bson_iter_init(&it, sort) && bson_iter_next(&it) &&
           strcmp(bson_iter_key(&it), "_id") == 0 && BSON_ITER_HOLDS_NUMBER(&it) &&
           bson_iter_as_double(&it) == 1.0 && !bson_iter_next(&it);
}

void
emu_plan_choose(emu_plan_t *p, const emu_coll_t *coll, const bson_t *filter, const emu_filter_t *f,
                const bson_t *sort)
{
    bool want_sort = sort && !bson_empty(sort);
    size_t best_est = SIZE_MAX, nusable = 0;
    int best_dir = 0;
    memset(p, 0, sizeof *p);
    p->kind = EMU_PLAN_COLLSCAN;
    p->sorted = !want_sort;
    if (f && emu_plan_id_equality(filter, &p->id)) {
        p->kind = EMU_PLAN_IDHACK;
        p->sorted = true; /* at most one document */
        return;
    }
    for (size_t i = 0; i < emu_coll_nindexes(coll); i++)
        nusable += emu_index_usable(emu_coll_index(coll, i));
    for (size_t i = 0; i < emu_coll_nindexes(coll); i++) {
        const emu_index_t *ix = emu_coll_index(coll, i);
        emu_bounds_t b;
        int dir0;
        if (!emu_index_usable(ix))
            continue;
        int dir = sort_direction(ix, sort);
        if (!f || !emu_filter_bounds(f, emu_index_field(ix, 0, &dir0), &b)) {
            if (f)
                emu_bounds_cleanup(&b);
            /* Unbounded: worth walking only for its order, and only when no index narrows. */
            if (dir && p->kind == EMU_PLAN_COLLSCAN) {
                p->kind = EMU_PLAN_IXSCAN;
                p->ix = ix;
                emu_bounds_full(&p->bounds);
                best_dir = dir;
            }
            continue;
        }
        size_t est = nusable > 1 ? estimate(ix, &b, ESTIMATE_CAP) : 0;
        bool better = p->kind != EMU_PLAN_IXSCAN || best_est == SIZE_MAX || est < best_est ||
                      (est == best_est && dir && !best_dir);
        if (!better) {
            emu_bounds_cleanup(&b);
            continue;
        }
        if (p->kind == EMU_PLAN_IXSCAN)
            emu_bounds_cleanup(&p->bounds);
        p->kind = EMU_PLAN_IXSCAN;
        p->ix = ix;
        p->bounds = b;
        best_est = est;
        best_dir = dir;
    }
    if (p->kind != EMU_PLAN_IXSCAN) {
        p->sorted = p->sorted || (is_id_ascending(sort) && emu_coll_id_ordered(coll));
        return;
    }
    p->reverse = best_dir < 0;
    p->sorted = !want_sort || best_dir != 0;
    if (!p->sorted) {
        size_t cap = emu_coll_count(coll) / SCAN_FRACTION + 1;
        if (estimate(p->ix, &p->bounds, cap) >= cap) {
            emu_plan_cleanup(p);
            p->ix = NULL;
            p->reverse = false;
            p->sorted = is_id_ascending(sort) && emu_coll_id_ordered(coll);
        }
    }
}

typedef struct {
    emu_plan_t *p;
    const emu_filter_t *f;
    bool (*fn)(emu_doc_t *doc, void *ctx);
    void *ctx;
} run_t;

static bool
run_one(emu_doc_t *doc, void *ctx)
{
    run_t *r = ctx;
    r->p->docs_examined++;
    if (r->f) {
        bson_t view;
        emu_doc_view(doc, &view);
        if (!emu_filter_matches(r->f, &view))
            return true;
    }
    r->p->returned++;
    return r->fn(doc, r->ctx);
}

void
emu_plan_run(emu_plan_t *p, const emu_coll_t *coll, const emu_filter_t *f,
             bool (*fn)(emu_doc_t *doc, void *ctx), void *ctx)
{
    run_t r = {p, f, fn, ctx};
    p->keys_examined = p->docs_examined = p->returned = 0;
    switch (p->kind) {
    case EMU_PLAN_IDHACK: {
        size_t s = emu_coll_find_id(coll, &p->id);
        if (s != SIZE_MAX) {
            p->keys_examined = 1;
            run_one(emu_coll_at(coll, s), &r);
        }
        return;
    }
    case EMU_PLAN_IXSCAN:
        p->keys_examined = emu_index_scan(p->ix, &p->bounds, p->reverse, run_one, &r);
        return;
    case EMU_PLAN_COLLSCAN:
        for (size_t s = 0; s < emu_coll_slots(coll); s++) {
            emu_doc_t *d = emu_coll_at(coll, s);
            if (d && !run_one(d, &r))
                return;
        }
        return;
    }
}

static void
append_filter(bson_t *stage, const bson_t *filter)
{
    if (filter && !bson_empty(filter))
        BSON_APPEND_DOCUMENT(stage, "filter", filter);
}

/* The stage that reads documents, as mongod names it. */
static void
access_stage(const emu_plan_t *p, const bson_t *filter, bson_t *out)
{
    bson_t ixscan, key, bounds, arr;
    switch (p->kind) {
    case EMU_PLAN_COLLSCAN:
        BSON_APPEND_UTF8(out, "stage", "COLLSCAN");
        append_filter(out, filter);
        BSON_APPEND_UTF8(out, "direction", "forward");
        return;
    case EMU_PLAN_IDHACK:
        BSON_APPEND_UTF8(out, "stage", "IDHACK");
        return;
    case EMU_PLAN_IXSCAN:
        break;
    }
    BSON_APPEND_UTF8(out, "stage", "FETCH");
    if (!p->bounds.exact)
        append_filter(out, filter);
    BSON_APPEND_DOCUMENT_BEGIN(out, "inputStage", &ixscan);
    BSON_APPEND_UTF8(&ixscan, "stage", "IXSCAN");
    emu_index_key(p->ix, &key);
    BSON_APPEND_DOCUMENT(&ixscan, "keyPattern", &key);
    BSON_APPEND_UTF8(&ixscan, "indexName", emu_index_name(p->ix));
    BSON_APPEND_BOOL(&ixscan, "isMultiKey", false);
    BSON_APPEND_BOOL(&ixscan, "isUnique", emu_index_unique(p->ix));
    BSON_APPEND_BOOL(&ixscan, "isSparse", emu_index_sparse(p->ix));
    BSON_APPEND_INT32(&ixscan, "indexVersion", 2);
    BSON_APPEND_UTF8(&ixscan, "direction", p->reverse ? "backward" : "forward");
    BSON_APPEND_DOCUMENT_BEGIN(&ixscan, "indexBounds", &bounds);
    for (int i = 0; i < emu_index_nfields(p->ix); i++) {
        int dir;
        const char *field = emu_index_field(p->ix, i, &dir);
        bson_append_array_begin(&bounds, field, -1, &arr);
        if (i == 0)
            emu_bounds_append_strings(&p->bounds, &arr);
        else
            BSON_APPEND_UTF8(&arr, "0", "[MinKey, MaxKey]");
        bson_append_array_end(&bounds, &arr);
    }
    bson_append_document_end(&ixscan, &bounds);
    bson_append_document_end(out, &ixscan);
}

void
emu_plan_explain(const emu_plan_t *p, const bson_t *filter, const bson_t *sort, bool count,
                 bson_t *winning)
{
    bson_t stage = BSON_INITIALIZER;
    access_stage(p, filter, &stage);
    if (!count && sort && !bson_empty(sort) && !p->sorted) {
        bson_t sorted = BSON_INITIALIZER;
        BSON_APPEND_UTF8(&sorted, "stage", "SORT");
        BSON_APPEND_DOCUMENT(&sorted, "sortPattern", sort);
        BSON_APPEND_UTF8(&sorted, "type", "simple");
        BSON_APPEND_DOCUMENT(&sorted, "inputStage", &stage);
        bson_destroy(&stage);
        bson_steal(&stage, &sorted);
    }
    if (count) {
        BSON_APPEND_UTF8(winning, "stage", "COUNT");
        BSON_APPEND_DOCUMENT(winning, "inputStage", &stage);
    } else {
        bson_concat(winning, &stage);
    }
    bson_destroy(&stage);
}

void
emu_plan_cleanup(emu_plan_t *p)
{
    if (p->kind == EMU_PLAN_IXSCAN)
        emu_bounds_cleanup(&p->bounds);
    p->kind = EMU_PLAN_COLLSCAN;
}

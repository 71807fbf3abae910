/* plan.h: how a query reads a collection: the _id index for {_id: v}, a secondary index over the
 * bounds its filter puts on the index's first field, or a collection scan; and the explain
 * output of that choice. Plans run under the store lock and never change the store. */
#ifndef EMU_PLAN_H
#define EMU_PLAN_H

#include "index.h"
#include "query.h"
#include "store.h"

typedef enum { EMU_PLAN_COLLSCAN, EMU_PLAN_IDHACK, EMU_PLAN_IXSCAN } emu_plan_kind_t;

typedef struct {
    emu_plan_kind_t kind;
    const emu_index_t *ix; /* IXSCAN: the collection's, valid while the lock is held */
    emu_bounds_t bounds;   /* IXSCAN: on the index's first field (the full range when the index
                            * is scanned only for its order) */
    bool reverse;          /* IXSCAN: walk the index backward */
    bool sorted;           /* documents come in the requested sort order */
    bson_value_t id;       /* IDHACK: borrowed from the filter */
    /* What the last emu_plan_run did. */
    size_t keys_examined, docs_examined, returned;
} emu_plan_t;

/* Chooses how to find the documents matching filter (the request's document, or NULL) whose
 * compiled form is f (NULL: everything), for results wanted in the order of sort (a sort
 * specification, or NULL). The plan borrows from filter, f and coll's indexes: clean it up
 * before they go. The result is the same whatever the plan; only the work and the order of
 * unsorted results differ. */
void emu_plan_choose(emu_plan_t *p, const emu_coll_t *coll, const bson_t *filter,
                     const emu_filter_t *f, const bson_t *sort);
/* Calls fn for every document of coll matching f (NULL: all) in the plan's order, until fn
 * returns false. */
void emu_plan_run(emu_plan_t *p, const emu_coll_t *coll, const emu_filter_t *f,
                  bool (*fn)(emu_doc_t *doc, void *ctx), void *ctx);
/* Appends mongod's winningPlan fields for p to winning (an open document): COLLSCAN, IDHACK,
 * or FETCH over IXSCAN; under SORT when sort is given and the plan's order is not it, under
 * COUNT for a count. */
void emu_plan_explain(const emu_plan_t *p, const bson_t *filter, const bson_t *sort, bool count,
                      bson_t *winning);
void emu_plan_cleanup(emu_plan_t *p);

/* True when filter is exactly {_id: v} with v a plain value (not an operator document, array,
 * regex, null, undefined, MinKey or MaxKey): the _id index finds the one document it matches.
 * id borrows from filter. */
bool emu_plan_id_equality(const bson_t *filter, bson_value_t *id);

#endif

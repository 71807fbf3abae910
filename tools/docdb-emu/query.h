/* query.h: MongoDB's query semantics over BSON: the cross-type comparison and sort order,
 * filter matching, sort keys and projection. Pure functions over documents; no store, no I/O.
 * Facts: ../shared/research/docdb-wire.md §3 (type order, bracketing, null/missing, arrays). */
#ifndef EMU_QUERY_H
#define EMU_QUERY_H

#include "emu.h"

/* A missing value is represented by a bson_value_t whose value_type is BSON_TYPE_EOD. */

/* mongod's canonical type rank (MinKey -1, missing/undefined 0, null 5, numbers 10, string and
 * symbol 15, object 20, array 25, binary 30, ObjectId 35, bool 40, date 45, timestamp 47,
 * regex 50, dbpointer 55, code 60, code with scope 65, MaxKey 127). */
int emu_type_rank(bson_type_t t);

/* Total order of two values as MongoDB sorts and compares them: canonical type rank first, then
 * the value (numbers by exact value across int32/int64/double/decimal128, NaN lowest; strings by
 * bytes; documents and arrays element by element). Returns <0, 0 or >0. */
int emu_value_compare(const bson_value_t *a, const bson_value_t *b);

/* A validated filter. emu_filter_new copies what it needs from `filter` (the caller keeps
 * ownership of `filter`). An unknown or malformed operator fails with code 2 (BadValue) and a
 * message naming it, as mongod does; it never silently matches. */
typedef struct emu_filter emu_filter_t;
emu_filter_t *emu_filter_new(const bson_t *filter, emu_error_t *err);
bool emu_filter_matches(const emu_filter_t *f, const bson_t *doc);
void emu_filter_destroy(emu_filter_t *f);

/* A sort specification {field: 1|-1, ...} with dotted paths. */
typedef struct emu_sort emu_sort_t;
emu_sort_t *emu_sort_new(const bson_t *spec, emu_error_t *err);
/* Number of keys of the sort (0 for an empty spec). */
int emu_sort_nkeys(const emu_sort_t *s);
/* Extracts the sort keys of `doc` into keys[0..nkeys): each key borrows from `doc` (valid while
 * doc is). Arrays contribute their smallest element ascending and largest descending; an empty
 * array sorts below null; a missing field sorts as null. */
void emu_sort_keys(const emu_sort_t *s, const bson_t *doc, bson_value_t *keys);
/* Compares two documents' key arrays as the sort orders them. */
int emu_sort_compare(const emu_sort_t *s, const bson_value_t *ka, const bson_value_t *kb);
void emu_sort_destroy(emu_sort_t *s);

/* A projection {a: 1, "b.c": 1} (inclusion) or {a: 0} (exclusion); _id is included unless
 * {_id: 0}. Mixing inclusion and exclusion (other than _id) fails with code 2. */
typedef struct emu_projection emu_projection_t;
emu_projection_t *emu_projection_new(const bson_t *spec, emu_error_t *err);
/* Appends the projected `doc` to `out` (an initialised, empty bson_t). */
void emu_projection_apply(const emu_projection_t *p, const bson_t *doc, bson_t *out);
void emu_projection_destroy(emu_projection_t *p);

/* ---- Index bounds: which keys of an ordered index a filter can match ----
 * An index key is a document's value at the index's field, null when the field is missing.
 * Documents with an array along the field are outside this model: an index that holds one is
 * not used for planning (docs/test-server.md). */

/* A cut: a position between two neighbouring keys of emu_value_compare's order, so no key ever
 * sits on it. edge -1 is below every value of type rank `rank`, edge +1 above every one; edge 0
 * is just below (side -1) or just above (side +1) `value`. */
typedef struct {
    int rank;
    int edge;
    int side;
    bson_value_t value; /* edge 0 only; borrowed from the filter */
} emu_cut_t;

/* The keys strictly between two cuts. */
typedef struct {
    emu_cut_t lo, hi;
} emu_interval_t;

/* A union of disjoint, non-empty intervals in ascending order. When exact, a document (without
 * arrays along the field) matches the filter exactly when its key lies in them; otherwise they
 * hold a superset of the matching keys and the filter must still be applied. */
typedef struct {
    emu_interval_t *v;
    size_t n, cap;
    bool exact;
} emu_bounds_t;

/* Fills out (uninitialised) with the bounds filter f puts on the dotted field `path`: equality,
 * $lt/$lte/$gt/$gte with type bracketing, $in, $type, $not and $nor of exact bounds, $and as
 * intersection, $or as union. Values in out borrow from f. Returns false when the bounds are the
 * full range, so that an index on path cannot narrow the scan. Free out with emu_bounds_cleanup
 * in either case. */
bool emu_filter_bounds(const emu_filter_t *f, const char *path, emu_bounds_t *out);
void emu_bounds_cleanup(emu_bounds_t *b);
/* Fills b (uninitialised) with the full range, exact. */
void emu_bounds_full(emu_bounds_t *b);
/* Sign of (cut - key) in emu_value_compare's order; never 0. */
int emu_cut_compare_key(const emu_cut_t *c, const bson_value_t *key);
/* True when key lies in one of the intervals. */
bool emu_bounds_contains(const emu_bounds_t *b, const bson_value_t *key);
/* Appends the intervals to arr as strings in explain's indexBounds style, such as
 * "(new Date(1704067200000), <max date>]". */
void emu_bounds_append_strings(const emu_bounds_t *b, bson_t *arr);

#endif

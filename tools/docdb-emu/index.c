/* index.c: secondary indexes: key extraction (missing fields as null, arrays noted), the entries
 * in a red-black tree from libbsd ordered by key under MongoDB's comparison order, range scans
 * over bounds, and the unique check. It never decides whether an index is used (plan.c does). */
#include "index.h"

#include <bsd/sys/tree.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *path; /* owned, dotted */
    int dir;    /* 1 or -1 */
    int nparts;
    struct {
        uint32_t off, len;
    } * parts; /* into path */
} ix_field_t;

typedef struct ix_probe ix_probe_t;

/* One document in the tree. Entries hold no reference: the collection keeps the document alive
 * while it is indexed, and the document being immutable, keys can view into it. */
typedef struct ix_entry {
    RB_ENTRY(ix_entry) link;
    emu_doc_t *doc; /* NULL in a probe */
    union {
        const emu_index_t *ix;   /* an entry: its index, for the field directions */
        const ix_probe_t *probe; /* a probe: what it searches for */
    } u;
    bson_value_t keys[]; /* one per key field */
} ix_entry_t;

/* A search position for RB_NFIND/RB_FIND: never equal to an entry unless doc is given. */
struct ix_probe {
    const emu_cut_t *cut;     /* compare the first key field with this cut, or */
    const bson_value_t *keys; /* every key field with these keys, then */
    const emu_doc_t *doc;     /* this document's seq (an exact entry), or */
    int side;                 /* below (-1) or above (+1) every entry with these keys */
};

RB_HEAD(ix_tree, ix_entry);

struct emu_index {
    bson_t *spec; /* owned copy */
    const char *name;
    bson_t key; /* view into spec */
    ix_field_t fields[EMU_INDEX_MAX_FIELDS];
    int nfields;
    bool ordered; /* false: a special index type ("hashed", "text"...), metadata only */
    bool unique, sparse;
    emu_filter_t *partial; /* partialFilterExpression, or NULL */
    struct ix_tree tree;
    size_t nentries;
    size_t narrays; /* entries whose document has an array along an indexed path */
};

static int
entry_cmp(const ix_entry_t *a, const ix_entry_t *b)
{
    const emu_index_t *ix = b->u.ix; /* b is always an entry of the tree */
    const bson_value_t *keys;
    const emu_doc_t *doc;
    int side = 0;
    if (a->doc) {
        keys = a->keys;
        doc = a->doc;
    } else {
        const ix_probe_t *p = a->u.probe;
        if (p->cut) {
            int c = emu_cut_compare_key(p->cut, &b->keys[0]);
            return ix->fields[0].dir < 0 ? -c : c;
        }
        keys = p->keys;
        doc = p->doc;
        side = p->side;
    }
    for (int i = 0; i < ix->nfields; i++) {
        int c = emu_value_compare(&keys[i], &b->keys[i]);
        if (c)
            return ix->fields[i].dir < 0 ? -c : c;
    }
    if (!doc)
        return side;
    /* Equal keys: insertion order, which replacements keep (store.c), as a collection scan
     * would meet them. */
    return (doc->seq > b->doc->seq) - (doc->seq < b->doc->seq);
}

/* RB_GENERATE_STATIC would mark the functions with libbsd's __unused, which it leaves
 * undefined on Linux; the attribute is spelled out instead. */
RB_GENERATE_INTERNAL(ix_tree, ix_entry, link, entry_cmp, __attribute__((unused)) static)

/* ---- keys ---- */

/* What key extraction met: an array along a path, a missing field, no key field at all. */
enum { KEY_ARRAY = 1, KEY_MISSING = 2, KEY_ALL_MISSING = 4 };

/* The key of one field: the value at the dotted path, null when the path does not resolve (a
 * missing field, or a scalar where a document is needed, as the matcher sees it). Returns
 * KEY_ARRAY, with the array as the key, when an array lies along the path; KEY_MISSING when
 * the path does not resolve; else 0. */
static int
path_key(const uint8_t *data, uint32_t len, const ix_field_t *f, bson_value_t *key)
{
    bson_iter_t it;
    memset(key, 0, sizeof *key);
    key->value_type = BSON_TYPE_NULL;
    for (int i = 0; i < f->nparts; i++) {
        const char *part = f->path + f->parts[i].off;
        uint32_t plen = f->parts[i].len;
        bool found = false;
        if (!bson_iter_init_from_data(&it, data, len))
            return KEY_MISSING;
        while (!found && bson_iter_next(&it))
            found = bson_iter_key_len(&it) == plen && memcmp(bson_iter_key(&it), part, plen) == 0;
        if (!found)
            return KEY_MISSING;
        if (BSON_ITER_HOLDS_ARRAY(&it)) {
            *key = *bson_iter_value(&it);
            return KEY_ARRAY;
        }
        if (i + 1 == f->nparts) {
            *key = *bson_iter_value(&it);
            return 0;
        }
        if (!BSON_ITER_HOLDS_DOCUMENT(&it))
            return KEY_MISSING;
        bson_iter_document(&it, &len, &data);
    }
    return KEY_MISSING;
}

/* Fills keys[0..nfields) with views into doc; returns KEY_ARRAY and KEY_ALL_MISSING flags. */
static int
extract(const emu_index_t *ix, const emu_doc_t *doc, bson_value_t *keys)
{
    int flags = 0, missing = 0;
    for (int i = 0; i < ix->nfields; i++) {
        int r = path_key(doc->data, doc->len, &ix->fields[i], &keys[i]);
        flags |= r & KEY_ARRAY;
        missing += (r & KEY_MISSING) != 0;
    }
    if (missing == ix->nfields)
        flags |= KEY_ALL_MISSING;
    return flags;
}

/* ---- life cycle ---- */

static bool
add_field(emu_index_t *ix, const char *path, int dir, emu_error_t *err)
{
    ix_field_t *f = &ix->fields[ix->nfields];
    int n = 1;
    for (const char *s = path; *s; s++)
        n += *s == '.';
    f->path = bson_strdup(path);
    f->dir = dir;
    f->parts = bson_malloc(sizeof *f->parts * (size_t)n);
    f->nparts = 0;
    ix->nfields++;
    for (const char *s = path;;) {
        const char *e = strchr(s, '.');
        uint32_t len = e ? (uint32_t)(e - s) : (uint32_t)strlen(s);
        if (len == 0)
            return emu_error_set(err, EMU_CANNOT_CREATE_INDEX,
                                 "Index keys cannot be an empty field.");
        f->parts[f->nparts].off = (uint32_t)(s - path);
        f->parts[f->nparts].len = len;
        f->nparts++;
        if (!e)
            return true;
        s = e + 1;
    }
}

/* The direction of one key pattern value: 1 or -1, 0 for a special index type (a string), or
 * false for anything else. */
static bool
key_direction(const bson_iter_t *it, int *dir, emu_error_t *err)
{
    const bson_value_t *v = bson_iter_value((bson_iter_t *)it);
    static const bson_value_t zero = {.value_type = BSON_TYPE_INT32};
    switch (v->value_type) {
    case BSON_TYPE_UTF8:
        *dir = 0;
        return true;
    case BSON_TYPE_DOUBLE:
        if (isnan(v->value.v_double))
            break;
        /* fall through */
    case BSON_TYPE_INT32:
    case BSON_TYPE_INT64:
    case BSON_TYPE_DECIMAL128:
        *dir = emu_value_compare(v, &zero);
        if (*dir != 0)
            return true;
        break;
    default:
        break;
    }
    return emu_error_set(err, EMU_CANNOT_CREATE_INDEX,
                         "Values in v:2 index key pattern cannot be of type %s. Only numbers > 0, "
                         "numbers < 0, and strings are allowed.",
                         emu_type_name(v->value_type));
}

emu_index_t *
emu_index_new(const bson_t *spec, emu_error_t *err)
{
    emu_index_t *ix = bson_malloc0(sizeof *ix);
    bson_iter_t it, k;
    const uint8_t *data;
    uint32_t len;
    ix->spec = bson_copy(spec);
    ix->ordered = true;
    RB_INIT(&ix->tree);
    if (!bson_iter_init_find(&it, ix->spec, "name") || !BSON_ITER_HOLDS_UTF8(&it)) {
        emu_error_set(err, EMU_FAILED_TO_PARSE, "index specification needs a 'name'");
        goto fail;
    }
    ix->name = bson_iter_utf8(&it, NULL);
    if (!bson_iter_init_find(&it, ix->spec, "key") || !BSON_ITER_HOLDS_DOCUMENT(&it)) {
        emu_error_set(err, EMU_FAILED_TO_PARSE, "index specification needs a 'key'");
        goto fail;
    }
    bson_iter_document(&it, &len, &data);
    if (!bson_init_static(&ix->key, data, len) || !bson_iter_init(&k, &ix->key)) {
        emu_error_set(err, EMU_FAILED_TO_PARSE, "invalid index key pattern");
        goto fail;
    }
    while (bson_iter_next(&k)) {
        int dir;
        if (ix->nfields == EMU_INDEX_MAX_FIELDS) {
            emu_error_set(err, EMU_CANNOT_CREATE_INDEX, "Index key pattern has more than %d fields",
                          EMU_INDEX_MAX_FIELDS);
            goto fail;
        }
        if (!key_direction(&k, &dir, err) || !add_field(ix, bson_iter_key(&k), dir, err))
            goto fail;
        if (dir == 0)
            ix->ordered = false;
    }
    if (ix->nfields == 0) {
        emu_error_set(err, EMU_CANNOT_CREATE_INDEX, "Index keys cannot be empty.");
        goto fail;
    }
    ix->unique = bson_iter_init_find(&it, ix->spec, "unique") && bson_iter_as_bool(&it);
    ix->sparse = bson_iter_init_find(&it, ix->spec, "sparse") && bson_iter_as_bool(&it);
    if (bson_iter_init_find(&it, ix->spec, "partialFilterExpression")) {
        bson_t pf;
        if (!BSON_ITER_HOLDS_DOCUMENT(&it)) {
            emu_error_set(err, EMU_TYPE_MISMATCH, "partialFilterExpression must be an object");
            goto fail;
        }
        bson_iter_document(&it, &len, &data);
        if (!bson_init_static(&pf, data, len) || !(ix->partial = emu_filter_new(&pf, err)))
            goto fail;
    }
    return ix;
fail:
    emu_index_destroy(ix);
    return NULL;
}

/* Frees a subtree without rebalancing. The depth of a red-black tree is at most twice the
 * logarithm of its size, so the recursion stays shallow. */
static void
free_subtree(ix_entry_t *e)
{
    if (!e)
        return;
    free_subtree(RB_LEFT(e, link));
    free_subtree(RB_RIGHT(e, link));
    free(e);
}

void
emu_index_destroy(emu_index_t *ix)
{
    if (!ix)
        return;
    free_subtree(RB_ROOT(&ix->tree));
    for (int i = 0; i < ix->nfields; i++) {
        bson_free(ix->fields[i].path);
        bson_free(ix->fields[i].parts);
    }
    emu_filter_destroy(ix->partial);
    bson_destroy(ix->spec);
    bson_free(ix);
}

/* ---- accessors ---- */

const char *
emu_index_name(const emu_index_t *ix)
{
    return ix->name;
}

const bson_t *
emu_index_spec(const emu_index_t *ix)
{
    return ix->spec;
}

void
emu_index_key(const emu_index_t *ix, bson_t *view)
{
    bson_init_static(view, bson_get_data(&ix->key), ix->key.len);
}

int
emu_index_nfields(const emu_index_t *ix)
{
    return ix->nfields;
}

const char *
emu_index_field(const emu_index_t *ix, int i, int *dir)
{
    *dir = ix->fields[i].dir;
    return ix->fields[i].path;
}

bool
emu_index_unique(const emu_index_t *ix)
{
    return ix->unique;
}

bool
emu_index_sparse(const emu_index_t *ix)
{
    return ix->sparse;
}

bool
emu_index_usable(const emu_index_t *ix)
{
    return ix->ordered && ix->narrays == 0;
}

bool
emu_index_multikey(const emu_index_t *ix)
{
    return ix->narrays > 0;
}

size_t
emu_index_entries(const emu_index_t *ix)
{
    return ix->nentries;
}

/* ---- maintenance ---- */

static bool
partial_matches(const emu_index_t *ix, const emu_doc_t *doc)
{
    bson_t view;
    if (!ix->partial)
        return true;
    emu_doc_view(doc, &view);
    return emu_filter_matches(ix->partial, &view);
}

/* Whether doc takes part in uniqueness: mongod leaves documents outside a partial filter, and
 * (sparse) those without any key field, out of the index; docdb-emu also leaves out documents
 * with arrays along the key instead of checking each element. */
static bool
unique_applies(const emu_index_t *ix, const emu_doc_t *doc, int flags)
{
    if (flags & KEY_ARRAY)
        return false;
    if (ix->sparse && (flags & KEY_ALL_MISSING))
        return false;
    return partial_matches(ix, doc);
}

static bool
dup_error(const emu_index_t *ix, const bson_value_t *keys, const char *ns, emu_error_t *err)
{
    bson_t dup = BSON_INITIALIZER;
    for (int i = 0; i < ix->nfields; i++)
        bson_append_value(&dup, ix->fields[i].path, -1, &keys[i]);
    char *json = bson_as_relaxed_extended_json(&dup, NULL);
    emu_error_set(err, EMU_DUPLICATE_KEY,
                  "E11000 duplicate key error collection: %s index: %s dup key: %s", ns, ix->name,
                  json ? json : "?");
    bson_free(json);
    bson_destroy(&dup);
    return false;
}

bool
emu_index_check_unique(const emu_index_t *ix, const emu_doc_t *doc, const emu_doc_t *self,
                       const char *ns, emu_error_t *err)
{
    bson_value_t keys[EMU_INDEX_MAX_FIELDS], other[EMU_INDEX_MAX_FIELDS];
    if (!ix->unique || !ix->ordered || !unique_applies(ix, doc, extract(ix, doc, keys)))
        return true;
    ix_probe_t p = {.keys = keys, .side = -1};
    ix_entry_t probe = {.doc = NULL, .u.probe = &p};
    struct ix_tree *tree = (struct ix_tree *)&ix->tree; /* RB_NFIND and RB_NEXT only read */
    for (ix_entry_t *e = RB_NFIND(ix_tree, tree, &probe); e; e = RB_NEXT(ix_tree, tree, e)) {
        for (int i = 0; i < ix->nfields; i++) {
            if (emu_value_compare(&keys[i], &e->keys[i]) != 0)
                return true; /* past the entries with these keys */
        }
        if (e->doc != self && unique_applies(ix, e->doc, extract(ix, e->doc, other)))
            return dup_error(ix, keys, ns, err);
    }
    return true;
}

void
emu_index_add(emu_index_t *ix, emu_doc_t *doc)
{
    if (!ix->ordered)
        return;
    ix_entry_t *e = malloc(sizeof *e + sizeof e->keys[0] * (size_t)ix->nfields);
    if (!e) {
        fputs("docdb-emu: out of memory\n", stderr);
        abort();
    }
    e->doc = doc;
    e->u.ix = ix;
    if (extract(ix, doc, e->keys) & KEY_ARRAY)
        ix->narrays++;
    RB_INSERT(ix_tree, &ix->tree, e);
    ix->nentries++;
}

void
emu_index_remove(emu_index_t *ix, emu_doc_t *doc)
{
    bson_value_t keys[EMU_INDEX_MAX_FIELDS];
    if (!ix->ordered)
        return;
    int flags = extract(ix, doc, keys);
    ix_probe_t p = {.keys = keys, .doc = doc};
    ix_entry_t probe = {.doc = NULL, .u.probe = &p};
    ix_entry_t *e = RB_FIND(ix_tree, &ix->tree, &probe);
    if (!e)
        return;
    RB_REMOVE(ix_tree, &ix->tree, e);
    free(e);
    ix->nentries--;
    if (flags & KEY_ARRAY)
        ix->narrays--;
}

/* ---- scans ---- */

size_t
emu_index_scan(const emu_index_t *ix, const emu_bounds_t *b, bool reverse,
               bool (*fn)(emu_doc_t *doc, void *ctx), void *ctx)
{
    struct ix_tree *tree = (struct ix_tree *)&ix->tree; /* only read */
    size_t visited = 0;
    if (!ix->ordered)
        return 0;
    /* The tree orders the first field by its direction; a scan walks it forward or backward.
     * When the walk meets values in ascending order, intervals are taken in their (ascending)
     * order, each from its lower cut; otherwise the other way round. */
    bool forward = !reverse;
    bool ascending = (ix->fields[0].dir > 0) == forward;
    for (size_t k = 0; k < b->n; k++) {
        const emu_interval_t *iv = &b->v[ascending ? k : b->n - 1 - k];
        const emu_cut_t *start = ascending ? &iv->lo : &iv->hi;
        const emu_cut_t *end = ascending ? &iv->hi : &iv->lo;
        ix_probe_t p = {.cut = start};
        ix_entry_t probe = {.doc = NULL, .u.probe = &p};
        ix_entry_t *e = RB_NFIND(ix_tree, tree, &probe);
        if (!forward)
            e = e ? RB_PREV(ix_tree, tree, e) : RB_MAX(ix_tree, tree);
        for (; e; e = forward ? RB_NEXT(ix_tree, tree, e) : RB_PREV(ix_tree, tree, e)) {
            int c = emu_cut_compare_key(end, &e->keys[0]);
            if (ascending ? c < 0 : c > 0)
                break;
            visited++;
            if (!fn(e->doc, ctx))
                return visited;
        }
    }
    return visited;
}

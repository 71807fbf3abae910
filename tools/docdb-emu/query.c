/* query.c: MongoDB's query semantics for docdb-emu: cross-type value order, filter compilation
 * and matching (mongod's path traversal through arrays), sort keys and projection.
 * Facts: shared/research/docdb-wire.md §3; mongod's matcher (path.cpp, expression_leaf.cpp). */
#include "query.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Filters nested deeper than this ($and/$or/$nor/$not levels) are refused, as mongod does. */
#define MAX_TREE_DEPTH 100
/* Longest dotted path accepted; keeps the path walkers' recursion bounded. */
#define MAX_PATH_PARTS 255
/* Value comparison and projection recurse into nested documents at most this deep. */
#define MAX_VALUE_DEPTH 200

static const bson_value_t missing_value = {.value_type = BSON_TYPE_EOD};

/* ------------------------------------------------------------------------------------------ */
/* Type ranks and value comparison                                                            */
/* ------------------------------------------------------------------------------------------ */

int
emu_type_rank(bson_type_t t)
{
    switch (t) {
    case BSON_TYPE_MINKEY:
        return -1;
    case BSON_TYPE_EOD:
    case BSON_TYPE_UNDEFINED:
        return 0;
    case BSON_TYPE_NULL:
        return 5;
    case BSON_TYPE_DOUBLE:
    case BSON_TYPE_INT32:
    case BSON_TYPE_INT64:
    case BSON_TYPE_DECIMAL128:
        return 10;
    case BSON_TYPE_UTF8:
    case BSON_TYPE_SYMBOL:
        return 15;
    case BSON_TYPE_DOCUMENT:
        return 20;
    case BSON_TYPE_ARRAY:
        return 25;
    case BSON_TYPE_BINARY:
        return 30;
    case BSON_TYPE_OID:
        return 35;
    case BSON_TYPE_BOOL:
        return 40;
    case BSON_TYPE_DATE_TIME:
        return 45;
    case BSON_TYPE_TIMESTAMP:
        return 47;
    case BSON_TYPE_REGEX:
        return 50;
    case BSON_TYPE_DBPOINTER:
        return 55;
    case BSON_TYPE_CODE:
        return 60;
    case BSON_TYPE_CODEWSCOPE:
        return 65;
    case BSON_TYPE_MAXKEY:
        return 127;
    default:
        return 0;
    }
}

static int
sign_of(int x)
{
    return (x > 0) - (x < 0);
}

static int
cmp_i64(int64_t a, int64_t b)
{
    return (a > b) - (a < b);
}

static int
cmp_u32(uint32_t a, uint32_t b)
{
    return (a > b) - (a < b);
}

/* mongod's compareDoubles: NaN equals NaN and is below every other number. */
static int
cmp_doubles(double a, double b)
{
    if (a < b)
        return -1;
    if (a > b)
        return 1;
    if (a == b)
        return 0;
    if (isnan(a))
        return isnan(b) ? 0 : -1;
    return 1;
}

/* Exact comparison of an int64 with a double (mongod's compareLongToDouble). */
static int
cmp_long_double(int64_t l, double d)
{
    const int64_t precise = (int64_t)1 << 53;
    if (isnan(d))
        return 1;
    if (l <= precise && l >= -precise)
        return cmp_doubles((double)l, d);
    if (d >= 9223372036854775808.0)
        return -1;
    if (d < -9223372036854775808.0)
        return 1;
    return cmp_i64(l, (int64_t)d);
}

static int64_t
int_value(const bson_value_t *v)
{
    return v->value_type == BSON_TYPE_INT32 ? v->value.v_int32 : v->value.v_int64;
}

static bool
decimal_is_nan(const bson_decimal128_t *d)
{
    return ((d->high >> 58) & 0x1f) == 0x1f;
}

/* A number as a normalised decimal: value = 0.d[0..nd) * 10^(adj + 1), no leading or trailing
 * zero digits; nd == 0 is zero. */
enum { DEC_NAN, DEC_FINITE, DEC_INF };
typedef struct {
    int cls;
    bool neg;
    int nd;
    int adj; /* exponent of the first digit */
    char d[48];
} dec_t;

/* Parses the text of a number ("-1.25E+3", "0.001", "1.5e-07", "Infinity", "NaN"). */
static void
dec_parse(const char *s, dec_t *o)
{
    int exp = 0;
    bool point = false;

    memset(o, 0, sizeof *o);
    o->cls = DEC_FINITE;
    if (*s == '-') {
        o->neg = true;
        s++;
    } else if (*s == '+') {
        s++;
    }
    if (*s == 'N' || *s == 'n') {
        o->cls = DEC_NAN;
        o->neg = false;
        return;
    }
    if (*s == 'I' || *s == 'i') {
        o->cls = DEC_INF;
        return;
    }
    for (; *s; s++) {
        if (*s >= '0' && *s <= '9') {
            if (o->nd == 0 && *s == '0') {
                if (point)
                    exp--;
                continue;
            }
            if (o->nd < (int)sizeof o->d) {
                o->d[o->nd++] = *s;
                if (point)
                    exp--;
            } else if (!point) {
                exp++;
            }
        } else if (*s == '.') {
            point = true;
        } else if (*s == 'e' || *s == 'E') {
            exp += atoi(s + 1);
            break;
        }
    }
    while (o->nd > 0 && o->d[o->nd - 1] == '0') {
        o->nd--;
        exp++;
    }
    if (o->nd == 0) {
        o->neg = false;
        o->adj = 0;
    } else {
        o->adj = exp + o->nd - 1;
    }
}

/* Any number as a decimal. Doubles are rounded to 34 significant digits, as mongod's
 * Decimal128(double, kRoundTo34Digits) does before comparing with a decimal. */
static void
to_dec(const bson_value_t *v, dec_t *o)
{
    char buf[64];
    switch (v->value_type) {
    case BSON_TYPE_DECIMAL128: {
        char s[BSON_DECIMAL128_STRING];
        bson_decimal128_to_string(&v->value.v_decimal128, s);
        dec_parse(s, o);
        return;
    }
    case BSON_TYPE_DOUBLE:
        if (isnan(v->value.v_double)) {
            dec_parse("NaN", o);
            return;
        }
        if (isinf(v->value.v_double)) {
            dec_parse(v->value.v_double < 0 ? "-Infinity" : "Infinity", o);
            return;
        }
        snprintf(buf, sizeof buf, "%.33e", v->value.v_double);
        dec_parse(buf, o);
        return;
    default:
        snprintf(buf, sizeof buf, "%" PRId64, int_value(v));
        dec_parse(buf, o);
        return;
    }
}

static int
dec_sign(const dec_t *x)
{
    if (x->cls == DEC_FINITE && x->nd == 0)
        return 0;
    return x->neg ? -1 : 1;
}

static int
dec_cmp(const dec_t *a, const dec_t *b)
{
    int sa, sb, mag;
    if (a->cls == DEC_NAN || b->cls == DEC_NAN) {
        if (a->cls == DEC_NAN)
            return b->cls == DEC_NAN ? 0 : -1;
        return 1;
    }
    sa = dec_sign(a);
    sb = dec_sign(b);
    if (sa != sb)
        return sa < sb ? -1 : 1;
    if (sa == 0)
        return 0;
    /* Same sign: compare magnitudes. */
    if (a->cls == DEC_INF || b->cls == DEC_INF) {
        mag = (a->cls == DEC_INF) - (b->cls == DEC_INF);
    } else if (a->adj != b->adj) {
        mag = a->adj < b->adj ? -1 : 1;
    } else {
        int n = a->nd < b->nd ? a->nd : b->nd;
        mag = sign_of(memcmp(a->d, b->d, (size_t)n));
        if (mag == 0)
            mag = (a->nd > b->nd) - (a->nd < b->nd);
    }
    return sa * mag;
}

static int
cmp_numbers(const bson_value_t *a, const bson_value_t *b)
{
    bson_type_t ta = a->value_type, tb = b->value_type;
    if (ta == BSON_TYPE_DECIMAL128 || tb == BSON_TYPE_DECIMAL128) {
        dec_t x, y;
        to_dec(a, &x);
        to_dec(b, &y);
        return dec_cmp(&x, &y);
    }
    if (ta == BSON_TYPE_DOUBLE && tb == BSON_TYPE_DOUBLE)
        return cmp_doubles(a->value.v_double, b->value.v_double);
    if (ta == BSON_TYPE_DOUBLE)
        return -cmp_long_double(int_value(b), a->value.v_double);
    if (tb == BSON_TYPE_DOUBLE)
        return cmp_long_double(int_value(a), b->value.v_double);
    return cmp_i64(int_value(a), int_value(b));
}

/* Bytes first (memcmp of the common prefix), then length. */
static int
cmp_bytes(const void *a, size_t la, const void *b, size_t lb)
{
    size_t n = la < lb ? la : lb;
    int c = n ? memcmp(a, b, n) : 0;
    if (c)
        return sign_of(c);
    return (la > lb) - (la < lb);
}

static int compare_values(const bson_value_t *a, const bson_value_t *b, int depth);

/* Documents and arrays element by element: canonical type, then field name, then value; a
 * prefix is smaller. */
static int
cmp_docs(const uint8_t *da, uint32_t la, const uint8_t *db, uint32_t lb, int depth)
{
    bson_iter_t ia, ib;
    if (depth > MAX_VALUE_DEPTH || !bson_iter_init_from_data(&ia, da, la) ||
        !bson_iter_init_from_data(&ib, db, lb))
        return cmp_bytes(da, la, db, lb);
    for (;;) {
        bool ma = bson_iter_next(&ia), mb = bson_iter_next(&ib);
        int c;
        if (!ma || !mb)
            return (int)ma - (int)mb;
        c = emu_type_rank(bson_iter_type(&ia)) - emu_type_rank(bson_iter_type(&ib));
        if (c)
            return sign_of(c);
        c = strcmp(bson_iter_key(&ia), bson_iter_key(&ib));
        if (c)
            return sign_of(c);
        c = compare_values(bson_iter_value(&ia), bson_iter_value(&ib), depth + 1);
        if (c)
            return c;
    }
}

static int
compare_values(const bson_value_t *a, const bson_value_t *b, int depth)
{
    int ra = emu_type_rank(a->value_type), rb = emu_type_rank(b->value_type);
    int c;
    if (ra != rb)
        return ra < rb ? -1 : 1;
    switch (a->value_type) {
    case BSON_TYPE_DOUBLE:
    case BSON_TYPE_INT32:
    case BSON_TYPE_INT64:
    case BSON_TYPE_DECIMAL128:
        return cmp_numbers(a, b);
    case BSON_TYPE_UTF8:
    case BSON_TYPE_SYMBOL: {
        const char *sa, *sb;
        uint32_t la, lb;
        if (a->value_type == BSON_TYPE_UTF8) {
            sa = a->value.v_utf8.str;
            la = a->value.v_utf8.len;
        } else {
            sa = a->value.v_symbol.symbol;
            la = a->value.v_symbol.len;
        }
        if (b->value_type == BSON_TYPE_UTF8) {
            sb = b->value.v_utf8.str;
            lb = b->value.v_utf8.len;
        } else {
            sb = b->value.v_symbol.symbol;
            lb = b->value.v_symbol.len;
        }
        return cmp_bytes(sa, la, sb, lb);
    }
    case BSON_TYPE_DOCUMENT:
    case BSON_TYPE_ARRAY:
        return cmp_docs(a->value.v_doc.data, a->value.v_doc.data_len, b->value.v_doc.data,
                        b->value.v_doc.data_len, depth);
    case BSON_TYPE_BINARY:
        if (a->value.v_binary.data_len != b->value.v_binary.data_len)
            return a->value.v_binary.data_len < b->value.v_binary.data_len ? -1 : 1;
        if (a->value.v_binary.subtype != b->value.v_binary.subtype)
            return (int)a->value.v_binary.subtype < (int)b->value.v_binary.subtype ? -1 : 1;
        return cmp_bytes(a->value.v_binary.data, a->value.v_binary.data_len, b->value.v_binary.data,
                         b->value.v_binary.data_len);
    case BSON_TYPE_OID:
        return sign_of(memcmp(a->value.v_oid.bytes, b->value.v_oid.bytes, 12));
    case BSON_TYPE_BOOL:
        return (int)a->value.v_bool - (int)b->value.v_bool;
    case BSON_TYPE_DATE_TIME:
        return cmp_i64(a->value.v_datetime, b->value.v_datetime);
    case BSON_TYPE_TIMESTAMP:
        c = cmp_u32(a->value.v_timestamp.timestamp, b->value.v_timestamp.timestamp);
        return c ? c : cmp_u32(a->value.v_timestamp.increment, b->value.v_timestamp.increment);
    case BSON_TYPE_REGEX:
        c = strcmp(a->value.v_regex.regex, b->value.v_regex.regex);
        if (c)
            return sign_of(c);
        return sign_of(strcmp(a->value.v_regex.options ? a->value.v_regex.options : "",
                              b->value.v_regex.options ? b->value.v_regex.options : ""));
    case BSON_TYPE_DBPOINTER:
        /* mongod: value size first, then the bytes (collection, then ObjectId). */
        if (a->value.v_dbpointer.collection_len != b->value.v_dbpointer.collection_len)
            return a->value.v_dbpointer.collection_len < b->value.v_dbpointer.collection_len ? -1
                                                                                             : 1;
        c = memcmp(a->value.v_dbpointer.collection, b->value.v_dbpointer.collection,
                   a->value.v_dbpointer.collection_len);
        if (c)
            return sign_of(c);
        return sign_of(memcmp(a->value.v_dbpointer.oid.bytes, b->value.v_dbpointer.oid.bytes, 12));
    case BSON_TYPE_CODE:
        return cmp_bytes(a->value.v_code.code, a->value.v_code.code_len, b->value.v_code.code,
                         b->value.v_code.code_len);
    case BSON_TYPE_CODEWSCOPE:
        c = cmp_bytes(a->value.v_codewscope.code, a->value.v_codewscope.code_len,
                      b->value.v_codewscope.code, b->value.v_codewscope.code_len);
        if (c)
            return c;
        return cmp_docs(a->value.v_codewscope.scope_data, a->value.v_codewscope.scope_len,
                        b->value.v_codewscope.scope_data, b->value.v_codewscope.scope_len, depth);
    default:
        /* MinKey, MaxKey, null, undefined, missing: one value each. */
        return 0;
    }
}

int
emu_value_compare(const bson_value_t *a, const bson_value_t *b)
{
    return compare_values(a, b, 0);
}

/* ------------------------------------------------------------------------------------------ */
/* Dotted paths                                                                               */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
    const char *s;
    uint32_t len;
    bool num; /* all digits: may index an array */
} part_t;

typedef struct {
    const char *dotted; /* the whole path, borrowed (NUL-terminated) */
    part_t *parts;
    int n;
} path_t;

static bool
path_init(path_t *p, const char *dotted, emu_error_t *err)
{
    const char *s = dotted;
    int n = 1, i = 0;
    for (; *s; s++)
        n += *s == '.';
    if (n > MAX_PATH_PARTS)
        return emu_error_set(err, EMU_BAD_VALUE, "path has too many parts: %.100s", dotted);
    p->dotted = dotted;
    p->n = n;
    p->parts = bson_malloc(sizeof *p->parts * (size_t)n);
    s = dotted;
    for (;;) {
        const char *e = strchr(s, '.');
        uint32_t len = e ? (uint32_t)(e - s) : (uint32_t)strlen(s);
        bool num = len > 0;
        for (uint32_t k = 0; k < len; k++)
            num = num && s[k] >= '0' && s[k] <= '9';
        p->parts[i].s = s;
        p->parts[i].len = len;
        p->parts[i].num = num;
        i++;
        if (!e)
            break;
        s = e + 1;
    }
    return true;
}

static bool
key_is(const bson_iter_t *it, const char *s, uint32_t len)
{
    return bson_iter_key_len(it) == len && memcmp(bson_iter_key(it), s, len) == 0;
}

/* Positions `it` on the first field of the document named by `part`. */
static bool
find_field(const uint8_t *data, uint32_t len, const part_t *part, bson_iter_t *it)
{
    if (!bson_iter_init_from_data(it, data, len))
        return false;
    while (bson_iter_next(it)) {
        if (key_is(it, part->s, part->len))
            return true;
    }
    return false;
}

/* ------------------------------------------------------------------------------------------ */
/* Filters                                                                                    */
/* ------------------------------------------------------------------------------------------ */

enum { NK_AND, NK_OR, NK_NOR, NK_NOT, NK_CMP, NK_IN, NK_EXISTS, NK_TYPE };
enum { OP_EQ, OP_LT, OP_LTE, OP_GT, OP_GTE };

/* Bits of a $type set: BSON type codes 1..19, plus MinKey, MaxKey and "number". */
#define TYPE_BIT_MINKEY (1u << 20)
#define TYPE_BIT_MAXKEY (1u << 21)
#define TYPE_BIT_NUMBER (1u << 22)

typedef struct fnode fnode_t;
struct fnode {
    int kind;
    int op;            /* NK_CMP */
    path_t path;       /* leaves */
    bson_value_t val;  /* NK_CMP operand, borrowed from the filter copy */
    int val_rank;      /* NK_CMP */
    bool val_nan;      /* NK_CMP */
    bson_value_t *set; /* NK_IN: sorted operands */
    size_t nset;
    bool has_null;  /* NK_IN */
    uint32_t types; /* NK_TYPE */
    fnode_t **kids; /* NK_AND, NK_OR, NK_NOR, NK_NOT */
    size_t nkids, capkids;
};

struct emu_filter {
    bson_t *copy;
    fnode_t *root;
};

static fnode_t *
node_new(int kind)
{
    fnode_t *n = bson_malloc0(sizeof *n);
    n->kind = kind;
    return n;
}

static void
node_free(fnode_t *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->nkids; i++)
        node_free(n->kids[i]);
    bson_free(n->kids);
    bson_free(n->path.parts);
    bson_free(n->set);
    bson_free(n);
}

static void
node_add(fnode_t *parent, fnode_t *kid)
{
    if (parent->nkids == parent->capkids) {
        parent->capkids = parent->capkids ? parent->capkids * 2 : 4;
        parent->kids = bson_realloc(parent->kids, sizeof *parent->kids * parent->capkids);
    }
    parent->kids[parent->nkids++] = kid;
}

static bool
value_is_nan(const bson_value_t *v)
{
    if (v->value_type == BSON_TYPE_DOUBLE)
        return isnan(v->value.v_double);
    if (v->value_type == BSON_TYPE_DECIMAL128)
        return decimal_is_nan(&v->value.v_decimal128);
    return false;
}

/* ComparisonMatchExpression::matchesSingleElement. */
static bool
cmp_matches(const fnode_t *n, const bson_value_t *v)
{
    int rv = emu_type_rank(v->value_type);
    int c;
    if (rv != n->val_rank) {
        /* null (5) against missing or undefined (0) */
        if (rv + n->val_rank == 5)
            return n->op == OP_EQ || n->op == OP_LTE || n->op == OP_GTE;
        if (n->val.value_type == BSON_TYPE_MAXKEY)
            return n->op == OP_LT || n->op == OP_LTE;
        if (n->val.value_type == BSON_TYPE_MINKEY)
            return n->op == OP_GT || n->op == OP_GTE;
        return false;
    }
    if (n->op == OP_EQ) {
        if (v->value_type == BSON_TYPE_UTF8 && n->val.value_type == BSON_TYPE_UTF8 &&
            v->value.v_utf8.len != n->val.value.v_utf8.len)
            return false;
    } else {
        bool lnan = value_is_nan(v);
        if (lnan || n->val_nan) {
            if (n->op == OP_LT || n->op == OP_GT)
                return false;
            return lnan && n->val_nan;
        }
    }
    c = emu_value_compare(v, &n->val);
    switch (n->op) {
    case OP_LT:
        return c < 0;
    case OP_LTE:
        return c <= 0;
    case OP_GT:
        return c > 0;
    case OP_GTE:
        return c >= 0;
    default:
        return c == 0;
    }
}

static bool
in_matches(const fnode_t *n, const bson_value_t *v)
{
    size_t lo = 0, hi = n->nset;
    if (n->has_null && (v->value_type == BSON_TYPE_EOD || v->value_type == BSON_TYPE_UNDEFINED))
        return true;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = emu_value_compare(v, &n->set[mid]);
        if (c == 0)
            return true;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return false;
}

static bool
type_matches(const fnode_t *n, const bson_value_t *v)
{
    bson_type_t t = v->value_type;
    switch (t) {
    case BSON_TYPE_EOD:
        return false;
    case BSON_TYPE_MINKEY:
        return (n->types & TYPE_BIT_MINKEY) != 0;
    case BSON_TYPE_MAXKEY:
        return (n->types & TYPE_BIT_MAXKEY) != 0;
    case BSON_TYPE_DOUBLE:
    case BSON_TYPE_INT32:
    case BSON_TYPE_INT64:
    case BSON_TYPE_DECIMAL128:
        if (n->types & TYPE_BIT_NUMBER)
            return true;
        break;
    default:
        break;
    }
    return (unsigned)t < 20 && (n->types & (1u << (unsigned)t)) != 0;
}

/* matchesSingleElement of a leaf. */
static bool
leaf_matches(const fnode_t *n, const bson_value_t *v)
{
    switch (n->kind) {
    case NK_CMP:
        return cmp_matches(n, v);
    case NK_IN:
        return in_matches(n, v);
    case NK_EXISTS:
        return v->value_type != BSON_TYPE_EOD;
    case NK_TYPE:
        return type_matches(n, v);
    default:
        return false;
    }
}

static bool walk_array(bson_iter_t *arr, const fnode_t *n, int j);

/* mongod's BSONElementIterator started on a document at path part i: follows sub-documents
 * (getFieldDottedOrArray), yields missing when the path does not resolve, and hands arrays to
 * walk_array. True as soon as one yielded value matches. */
static bool
walk_obj(const uint8_t *data, uint32_t len, const fnode_t *n, int i)
{
    bson_iter_t it;
    for (;;) {
        bson_type_t t;
        if (!find_field(data, len, &n->path.parts[i], &it))
            return leaf_matches(n, &missing_value);
        t = bson_iter_type(&it);
        if (t == BSON_TYPE_DOCUMENT && i + 1 < n->path.n) {
            bson_iter_document(&it, &len, &data);
            i++;
            continue;
        }
        if (t == BSON_TYPE_ARRAY)
            return walk_array(&it, n, i + 1);
        if (i + 1 < n->path.n)
            return leaf_matches(n, &missing_value);
        return leaf_matches(n, bson_iter_value(&it));
    }
}

/* The array iteration state of BSONElementIterator: `arr` is positioned on an array, j is the
 * first path part after it. */
static bool
walk_array(bson_iter_t *arr, const fnode_t *n, int j)
{
    bson_iter_t ai;
    const part_t *part;
    if (!bson_iter_recurse(arr, &ai))
        return false;
    if (j == n->path.n) {
        /* The path ends at this array: each element, then the array itself. */
        bson_value_t whole;
        while (bson_iter_next(&ai)) {
            if (leaf_matches(n, bson_iter_value(&ai)))
                return true;
        }
        whole = *bson_iter_value(arr);
        return leaf_matches(n, &whole);
    }
    part = &n->path.parts[j];
    while (bson_iter_next(&ai)) {
        bson_type_t t = bson_iter_type(&ai);
        bool offset = part->num && key_is(&ai, part->s, part->len);
        if (t == BSON_TYPE_DOCUMENT) {
            const uint8_t *data;
            uint32_t len;
            bson_iter_document(&ai, &len, &data);
            if (walk_obj(data, len, n, j))
                return true;
            if (offset) {
                if (j + 1 == n->path.n) {
                    if (leaf_matches(n, bson_iter_value(&ai)))
                        return true;
                } else if (walk_obj(data, len, n, j + 1)) {
                    return true;
                }
            }
        } else if (offset) {
            if (j + 1 == n->path.n) {
                if (leaf_matches(n, bson_iter_value(&ai)))
                    return true;
            } else if (t == BSON_TYPE_ARRAY && walk_array(&ai, n, j + 1)) {
                return true;
            }
        }
    }
    return false;
}

static bool
eval_node(const fnode_t *n, const uint8_t *data, uint32_t len)
{
    switch (n->kind) {
    case NK_AND:
        for (size_t i = 0; i < n->nkids; i++) {
            if (!eval_node(n->kids[i], data, len))
                return false;
        }
        return true;
    case NK_OR:
        for (size_t i = 0; i < n->nkids; i++) {
            if (eval_node(n->kids[i], data, len))
                return true;
        }
        return false;
    case NK_NOR:
        for (size_t i = 0; i < n->nkids; i++) {
            if (eval_node(n->kids[i], data, len))
                return false;
        }
        return true;
    case NK_NOT:
        return !eval_node(n->kids[0], data, len);
    default:
        return walk_obj(data, len, n, 0);
    }
}

bool
emu_filter_matches(const emu_filter_t *f, const bson_t *doc)
{
    return eval_node(f->root, bson_get_data(doc), doc->len);
}

/* --- compilation --- */

static bool
is_dbref_doc(const bson_value_t *v)
{
    bson_iter_t it;
    bool ref = false, id = false;
    if (!bson_iter_init_from_data(&it, v->value.v_doc.data, v->value.v_doc.data_len))
        return false;
    while (bson_iter_next(&it)) {
        if (strcmp(bson_iter_key(&it), "$ref") == 0)
            ref = true;
        else if (strcmp(bson_iter_key(&it), "$id") == 0)
            id = true;
    }
    return ref && id;
}

/* mongod's isExpressionDocument: a non-empty document whose first key starts with '$' and that
 * is not a DBRef. */
static bool
is_expression_doc(const bson_value_t *v)
{
    bson_iter_t it;
    if (v->value_type != BSON_TYPE_DOCUMENT)
        return false;
    if (!bson_iter_init_from_data(&it, v->value.v_doc.data, v->value.v_doc.data_len) ||
        !bson_iter_next(&it))
        return false;
    if (bson_iter_key(&it)[0] != '$')
        return false;
    return !is_dbref_doc(v);
}

/* mongod's BSONElement::trueValue. */
static bool
true_value(const bson_value_t *v)
{
    switch (v->value_type) {
    case BSON_TYPE_BOOL:
        return v->value.v_bool;
    case BSON_TYPE_INT32:
        return v->value.v_int32 != 0;
    case BSON_TYPE_INT64:
        return v->value.v_int64 != 0;
    case BSON_TYPE_DOUBLE:
        return v->value.v_double != 0;
    case BSON_TYPE_DECIMAL128: {
        dec_t d;
        to_dec(v, &d);
        return d.cls != DEC_FINITE || d.nd != 0;
    }
    case BSON_TYPE_EOD:
    case BSON_TYPE_NULL:
    case BSON_TYPE_UNDEFINED:
        return false;
    default:
        return true;
    }
}

static fnode_t *
leaf_new(int kind, const char *dotted, emu_error_t *err)
{
    fnode_t *n = node_new(kind);
    if (!path_init(&n->path, dotted, err)) {
        node_free(n);
        return NULL;
    }
    return n;
}

static fnode_t *
cmp_new(int op, const char *dotted, const bson_value_t *v, emu_error_t *err)
{
    fnode_t *n;
    if (v->value_type == BSON_TYPE_UNDEFINED) {
        emu_error_set(err, EMU_BAD_VALUE, "cannot compare to undefined");
        return NULL;
    }
    n = leaf_new(NK_CMP, dotted, err);
    if (!n)
        return NULL;
    n->op = op;
    n->val = *v;
    n->val_rank = emu_type_rank(v->value_type);
    n->val_nan = value_is_nan(v);
    return n;
}

static fnode_t *
not_of(fnode_t *kid)
{
    fnode_t *n;
    if (!kid)
        return NULL;
    n = node_new(NK_NOT);
    node_add(n, kid);
    return n;
}

static int
cmp_set_values(const void *a, const void *b)
{
    return emu_value_compare(a, b);
}

static fnode_t *
in_new(const char *op, const char *dotted, const bson_iter_t *e, emu_error_t *err)
{
    bson_iter_t ai;
    fnode_t *n;
    size_t cap = 0;
    if (bson_iter_type(e) != BSON_TYPE_ARRAY || !bson_iter_recurse(e, &ai)) {
        emu_error_set(err, EMU_BAD_VALUE, "%s needs an array", op);
        return NULL;
    }
    n = leaf_new(NK_IN, dotted, err);
    if (!n)
        return NULL;
    while (bson_iter_next(&ai)) {
        const bson_value_t *v = bson_iter_value(&ai);
        if (is_expression_doc(v)) {
            emu_error_set(err, EMU_BAD_VALUE, "cannot nest $ under %s", op);
            goto fail;
        }
        if (v->value_type == BSON_TYPE_REGEX) {
            emu_error_set(err, EMU_BAD_VALUE,
                          "regular expressions in %s are not supported by docdb-emu", op);
            goto fail;
        }
        if (v->value_type == BSON_TYPE_UNDEFINED) {
            emu_error_set(err, EMU_BAD_VALUE, "InMatchExpression equality cannot be undefined");
            goto fail;
        }
        if (v->value_type == BSON_TYPE_NULL)
            n->has_null = true;
        if (n->nset == cap) {
            cap = cap ? cap * 2 : 8;
            n->set = bson_realloc(n->set, sizeof *n->set * cap);
        }
        n->set[n->nset++] = *v;
    }
    if (n->nset > 1)
        qsort(n->set, n->nset, sizeof *n->set, cmp_set_values);
    return n;
fail:
    node_free(n);
    return NULL;
}

static const struct {
    const char *alias;
    uint32_t bits;
} type_aliases[] = {
    {"double", 1u << 1},         {"string", 1u << 2},         {"object", 1u << 3},
    {"array", 1u << 4},          {"binData", 1u << 5},        {"undefined", 1u << 6},
    {"objectId", 1u << 7},       {"bool", 1u << 8},           {"date", 1u << 9},
    {"null", 1u << 10},          {"regex", 1u << 11},         {"dbPointer", 1u << 12},
    {"javascript", 1u << 13},    {"symbol", 1u << 14},        {"javascriptWithScope", 1u << 15},
    {"int", 1u << 16},           {"timestamp", 1u << 17},     {"long", 1u << 18},
    {"decimal", 1u << 19},       {"minKey", TYPE_BIT_MINKEY}, {"maxKey", TYPE_BIT_MAXKEY},
    {"number", TYPE_BIT_NUMBER},
};

/* One $type entry (a number code or a string alias) into a bit of *bits. */
static bool
parse_type_entry(const bson_value_t *v, uint32_t *bits, emu_error_t *err)
{
    switch (v->value_type) {
    case BSON_TYPE_UTF8:
        for (size_t i = 0; i < sizeof type_aliases / sizeof type_aliases[0]; i++) {
            if (strlen(type_aliases[i].alias) == v->value.v_utf8.len &&
                memcmp(type_aliases[i].alias, v->value.v_utf8.str, v->value.v_utf8.len) == 0) {
                *bits |= type_aliases[i].bits;
                return true;
            }
        }
        return emu_error_set(err, EMU_BAD_VALUE, "Unknown type name alias: %.100s",
                             v->value.v_utf8.str);
    case BSON_TYPE_INT32:
    case BSON_TYPE_INT64:
    case BSON_TYPE_DOUBLE:
    case BSON_TYPE_DECIMAL128: {
        double d = v->value_type == BSON_TYPE_DOUBLE ? v->value.v_double : 0;
        int64_t code;
        if (v->value_type == BSON_TYPE_DECIMAL128) {
            char s[BSON_DECIMAL128_STRING];
            bson_decimal128_to_string(&v->value.v_decimal128, s);
            d = strtod(s, NULL);
        }
        if (v->value_type == BSON_TYPE_INT32 || v->value_type == BSON_TYPE_INT64) {
            code = int_value(v);
        } else {
            if (!(d >= -2147483648.0 && d <= 2147483647.0) || d != (double)(int64_t)d)
                return emu_error_set(err, EMU_BAD_VALUE, "Invalid numerical type code: %g", d);
            code = (int64_t)d;
        }
        if (code == -1) {
            *bits |= TYPE_BIT_MINKEY;
        } else if (code == 127) {
            *bits |= TYPE_BIT_MAXKEY;
        } else if (code >= 1 && code <= 19) {
            *bits |= 1u << (unsigned)code;
        } else {
            return emu_error_set(err, EMU_BAD_VALUE, "Invalid numerical type code: %" PRId64, code);
        }
        return true;
    }
    default:
        return emu_error_set(err, EMU_BAD_VALUE,
                             "type must be represented as a number or a string");
    }
}

static fnode_t *
type_new(const char *dotted, bson_iter_t *e, emu_error_t *err)
{
    uint32_t bits = 0;
    fnode_t *n;
    if (bson_iter_type(e) == BSON_TYPE_ARRAY) {
        bson_iter_t ai;
        if (!bson_iter_recurse(e, &ai))
            return NULL;
        while (bson_iter_next(&ai)) {
            if (!parse_type_entry(bson_iter_value(&ai), &bits, err))
                return NULL;
        }
        if (bits == 0) {
            emu_error_set(err, EMU_FAILED_TO_PARSE, "$type must match at least one type");
            return NULL;
        }
    } else if (!parse_type_entry(bson_iter_value(e), &bits, err)) {
        return NULL;
    }
    n = leaf_new(NK_TYPE, dotted, err);
    if (n)
        n->types = bits;
    return n;
}

/* mongod operators this module does not implement: refused by name rather than as unknown. */
static const char *const unsupported_ops[] = {
    "$regex",     "$options",    "$size",          "$all",        "$elemMatch",
    "$mod",       "$bitsAllSet", "$bitsAllClear",  "$bitsAnySet", "$bitsAnyClear",
    "$geoWithin", "$within",     "$geoIntersects", "$near",       "$nearSphere",
    "$where",     "$text",       "$expr",          "$jsonSchema", "$sampleRate",
};

static bool
is_unsupported(const char *name)
{
    for (size_t i = 0; i < sizeof unsupported_ops / sizeof unsupported_ops[0]; i++) {
        if (strcmp(unsupported_ops[i], name) == 0)
            return true;
    }
    return false;
}

static bool parse_sub(const char *path, const bson_value_t *ops, fnode_t *and_node, int depth,
                      emu_error_t *err);

/* parseSubField: one operator of {path: {$op: value, ...}}. */
static fnode_t *
parse_sub_field(const char *path, bson_iter_t *e, int depth, emu_error_t *err)
{
    const char *name = bson_iter_key(e);
    const bson_value_t *v = bson_iter_value(e);
    int op = -1;

    if (strcmp(name, "$eq") == 0)
        return cmp_new(OP_EQ, path, v, err);
    if (strcmp(name, "$not") == 0) {
        fnode_t *and_node;
        bson_iter_t it;
        if (v->value_type == BSON_TYPE_REGEX) {
            emu_error_set(err, EMU_BAD_VALUE, "$not with a regex is not supported by docdb-emu");
            return NULL;
        }
        if (v->value_type != BSON_TYPE_DOCUMENT) {
            emu_error_set(err, EMU_BAD_VALUE, "$not needs a regex or a document");
            return NULL;
        }
        if (!bson_iter_init_from_data(&it, v->value.v_doc.data, v->value.v_doc.data_len) ||
            !bson_iter_next(&it)) {
            emu_error_set(err, EMU_BAD_VALUE, "$not cannot be empty");
            return NULL;
        }
        if (depth + 1 > MAX_TREE_DEPTH) {
            emu_error_set(err, EMU_BAD_VALUE, "exceeded maximum query tree depth of %d at %s",
                          MAX_TREE_DEPTH, path);
            return NULL;
        }
        and_node = node_new(NK_AND);
        if (!parse_sub(path, v, and_node, depth + 1, err)) {
            node_free(and_node);
            return NULL;
        }
        return not_of(and_node);
    }
    if (strcmp(name, "$lt") == 0)
        op = OP_LT;
    else if (strcmp(name, "$lte") == 0)
        op = OP_LTE;
    else if (strcmp(name, "$gt") == 0)
        op = OP_GT;
    else if (strcmp(name, "$gte") == 0)
        op = OP_GTE;
    if (op >= 0) {
        if (v->value_type == BSON_TYPE_REGEX) {
            emu_error_set(err, EMU_BAD_VALUE,
                          "Can't have RegEx as arg to predicate over field '%s'.", path);
            return NULL;
        }
        return cmp_new(op, path, v, err);
    }
    if (strcmp(name, "$ne") == 0) {
        if (v->value_type == BSON_TYPE_REGEX) {
            emu_error_set(err, EMU_BAD_VALUE, "Can't have regex as arg to $ne.");
            return NULL;
        }
        return not_of(cmp_new(OP_EQ, path, v, err));
    }
    if (strcmp(name, "$in") == 0)
        return in_new("$in", path, e, err);
    if (strcmp(name, "$nin") == 0)
        return not_of(in_new("$nin", path, e, err));
    if (strcmp(name, "$exists") == 0) {
        fnode_t *n = leaf_new(NK_EXISTS, path, err);
        return true_value(v) ? n : not_of(n);
    }
    if (strcmp(name, "$type") == 0)
        return type_new(path, e, err);
    if (is_unsupported(name)) {
        emu_error_set(err, EMU_BAD_VALUE, "operator %s is not supported by docdb-emu", name);
        return NULL;
    }
    emu_error_set(err, EMU_BAD_VALUE, "unknown operator: %s", name);
    return NULL;
}

/* parseSub: every operator of an operator document, ANDed into and_node. */
static bool
parse_sub(const char *path, const bson_value_t *ops, fnode_t *and_node, int depth, emu_error_t *err)
{
    bson_iter_t it;
    if (!bson_iter_init_from_data(&it, ops->value.v_doc.data, ops->value.v_doc.data_len))
        return emu_error_set(err, EMU_BAD_VALUE, "invalid BSON in filter");
    while (bson_iter_next(&it)) {
        fnode_t *n = parse_sub_field(path, &it, depth, err);
        if (!n)
            return false;
        node_add(and_node, n);
    }
    return true;
}

static bool parse_doc(const uint8_t *data, uint32_t len, fnode_t *and_node, int depth,
                      emu_error_t *err);

/* $and / $or / $nor: a non-empty array of filter documents. */
static fnode_t *
parse_tree(int kind, const char *name, const bson_iter_t *e, int depth, emu_error_t *err)
{
    bson_iter_t ai;
    fnode_t *n;
    if (bson_iter_type(e) != BSON_TYPE_ARRAY || !bson_iter_recurse(e, &ai)) {
        emu_error_set(err, EMU_BAD_VALUE, "%s must be an array", name);
        return NULL;
    }
    if (depth + 1 > MAX_TREE_DEPTH) {
        emu_error_set(err, EMU_BAD_VALUE, "exceeded maximum query tree depth of %d",
                      MAX_TREE_DEPTH);
        return NULL;
    }
    n = node_new(kind);
    while (bson_iter_next(&ai)) {
        const uint8_t *data;
        uint32_t len;
        fnode_t *sub;
        if (bson_iter_type(&ai) != BSON_TYPE_DOCUMENT) {
            emu_error_set(err, EMU_BAD_VALUE, "$or/$and/$nor entries need to be full objects");
            goto fail;
        }
        bson_iter_document(&ai, &len, &data);
        sub = node_new(NK_AND);
        node_add(n, sub);
        if (!parse_doc(data, len, sub, depth + 1, err))
            goto fail;
    }
    if (n->nkids == 0) {
        emu_error_set(err, EMU_BAD_VALUE, "$and/$or/$nor must be a nonempty array");
        goto fail;
    }
    return n;
fail:
    node_free(n);
    return NULL;
}

/* parse: a filter document, its clauses ANDed into and_node. */
static bool
parse_doc(const uint8_t *data, uint32_t len, fnode_t *and_node, int depth, emu_error_t *err)
{
    bson_iter_t it;
    if (!bson_iter_init_from_data(&it, data, len))
        return emu_error_set(err, EMU_BAD_VALUE, "invalid BSON in filter");
    while (bson_iter_next(&it)) {
        const char *key = bson_iter_key(&it);
        const bson_value_t *v = bson_iter_value(&it);
        fnode_t *n = NULL;
        if (key[0] == '$') {
            if (strcmp(key, "$and") == 0) {
                n = parse_tree(NK_AND, key, &it, depth, err);
            } else if (strcmp(key, "$or") == 0) {
                n = parse_tree(NK_OR, key, &it, depth, err);
            } else if (strcmp(key, "$nor") == 0) {
                n = parse_tree(NK_NOR, key, &it, depth, err);
            } else if (strcmp(key, "$comment") == 0) {
                continue;
            } else if (strcmp(key, "$alwaysTrue") == 0 || strcmp(key, "$alwaysFalse") == 0) {
                if (!(v->value_type == BSON_TYPE_INT32 || v->value_type == BSON_TYPE_INT64 ||
                      v->value_type == BSON_TYPE_DOUBLE) ||
                    (v->value_type == BSON_TYPE_DOUBLE ? v->value.v_double != 1.0
                                                       : int_value(v) != 1))
                    return emu_error_set(err, EMU_FAILED_TO_PARSE,
                                         "%s must be an integer value of 1", key);
                /* An empty AND is true, an empty OR false. */
                n = node_new(strcmp(key, "$alwaysTrue") == 0 ? NK_AND : NK_OR);
            } else if (strcmp(key, "$ref") == 0 || strcmp(key, "$id") == 0 ||
                       strcmp(key, "$db") == 0) {
                n = cmp_new(OP_EQ, key, v, err);
            } else if (is_unsupported(key)) {
                return emu_error_set(err, EMU_BAD_VALUE,
                                     "top level operator %s is not supported by docdb-emu", key);
            } else {
                return emu_error_set(err, EMU_BAD_VALUE, "unknown top level operator: %s", key);
            }
            if (!n)
                return false;
            node_add(and_node, n);
            continue;
        }
        if (is_expression_doc(v)) {
            if (!parse_sub(key, v, and_node, depth, err))
                return false;
            continue;
        }
        if (v->value_type == BSON_TYPE_REGEX)
            return emu_error_set(err, EMU_BAD_VALUE,
                                 "regular expression matches are not supported by docdb-emu "
                                 "(field '%s')",
                                 key);
        n = cmp_new(OP_EQ, key, v, err);
        if (!n)
            return false;
        node_add(and_node, n);
    }
    return true;
}

emu_filter_t *
emu_filter_new(const bson_t *filter, emu_error_t *err)
{
    emu_filter_t *f = bson_malloc0(sizeof *f);
    f->copy = filter ? bson_copy(filter) : bson_new();
    f->root = node_new(NK_AND);
    if (!parse_doc(bson_get_data(f->copy), f->copy->len, f->root, 0, err)) {
        emu_filter_destroy(f);
        return NULL;
    }
    /* A single clause needs no AND around it. */
    if (f->root->nkids == 1) {
        fnode_t *only = f->root->kids[0];
        f->root->nkids = 0;
        node_free(f->root);
        f->root = only;
    }
    return f;
}

void
emu_filter_destroy(emu_filter_t *f)
{
    if (!f)
        return;
    node_free(f->root);
    bson_destroy(f->copy);
    bson_free(f);
}

/* ------------------------------------------------------------------------------------------ */
/* Sort                                                                                       */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
    path_t path;
    int dir;
} sort_key_t;

struct emu_sort {
    bson_t *copy;
    int n;
    sort_key_t *keys;
};

emu_sort_t *
emu_sort_new(const bson_t *spec, emu_error_t *err)
{
    emu_sort_t *s = bson_malloc0(sizeof *s);
    bson_iter_t it;
    int cap;
    s->copy = spec ? bson_copy(spec) : bson_new();
    cap = (int)bson_count_keys(s->copy);
    s->keys = bson_malloc0(sizeof *s->keys * (size_t)(cap > 0 ? cap : 1));
    if (!bson_iter_init(&it, s->copy)) {
        emu_error_set(err, EMU_BAD_VALUE, "bad sort specification");
        goto fail;
    }
    while (bson_iter_next(&it)) {
        const bson_value_t *v = bson_iter_value(&it);
        double d;
        switch (v->value_type) {
        case BSON_TYPE_INT32:
        case BSON_TYPE_INT64:
            d = (double)int_value(v);
            break;
        case BSON_TYPE_DOUBLE:
            d = v->value.v_double;
            break;
        default:
            d = 0;
            break;
        }
        if ((d != 1.0 && d != -1.0) || bson_iter_key(&it)[0] == '\0') {
            emu_error_set(err, EMU_BAD_VALUE, "bad sort specification");
            goto fail;
        }
        if (!path_init(&s->keys[s->n].path, bson_iter_key(&it), err))
            goto fail;
        s->keys[s->n].dir = d > 0 ? 1 : -1;
        s->n++;
    }
    return s;
fail:
    emu_sort_destroy(s);
    return NULL;
}

int
emu_sort_nkeys(const emu_sort_t *s)
{
    return s->n;
}

/* The running best candidate of one sort key: the smallest (ascending) or largest. */
typedef struct {
    bson_value_t best;
    bool have;
    int dir;
} sort_acc_t;

static void
offer(sort_acc_t *acc, const bson_value_t *v)
{
    int c;
    if (!acc->have) {
        acc->best = *v;
        acc->have = true;
        return;
    }
    c = emu_value_compare(v, &acc->best);
    if ((acc->dir > 0 && c < 0) || (acc->dir < 0 && c > 0))
        acc->best = *v;
}

static void
offer_type(sort_acc_t *acc, bson_type_t t)
{
    bson_value_t v;
    memset(&v, 0, sizeof v);
    v.value_type = t;
    offer(acc, &v);
}

static void sk_array(const bson_iter_t *arr, const path_t *p, int j, sort_acc_t *acc);

/* Sort key candidates of path part i onwards in a document (mongod's btree key generation:
 * missing is null, arrays give one candidate per element). */
static void
sk_obj(const uint8_t *data, uint32_t len, const path_t *p, int i, sort_acc_t *acc)
{
    bson_iter_t it;
    for (;;) {
        bson_type_t t;
        if (!find_field(data, len, &p->parts[i], &it)) {
            offer_type(acc, BSON_TYPE_NULL);
            return;
        }
        t = bson_iter_type(&it);
        if (t == BSON_TYPE_DOCUMENT && i + 1 < p->n) {
            bson_iter_document(&it, &len, &data);
            i++;
            continue;
        }
        if (t == BSON_TYPE_ARRAY) {
            sk_array(&it, p, i + 1, acc);
            return;
        }
        if (i + 1 < p->n)
            offer_type(acc, BSON_TYPE_NULL);
        else
            offer(acc, bson_iter_value(&it));
        return;
    }
}

static void
sk_array(const bson_iter_t *arr, const path_t *p, int j, sort_acc_t *acc)
{
    bson_iter_t ai;
    bool any = false;
    if (!bson_iter_recurse(arr, &ai))
        return;
    if (j == p->n) {
        /* Leaf array: each element is a candidate; an empty array is undefined. */
        while (bson_iter_next(&ai)) {
            offer(acc, bson_iter_value(&ai));
            any = true;
        }
        if (!any)
            offer_type(acc, BSON_TYPE_UNDEFINED);
        return;
    }
    if (p->parts[j].num) {
        /* Positional: "a.1" picks the element at that index when there is one. */
        bson_iter_t pi;
        if (bson_iter_recurse(arr, &pi)) {
            while (bson_iter_next(&pi)) {
                if (!key_is(&pi, p->parts[j].s, p->parts[j].len))
                    continue;
                if (j + 1 == p->n) {
                    offer(acc, bson_iter_value(&pi));
                } else if (BSON_ITER_HOLDS_DOCUMENT(&pi)) {
                    const uint8_t *data;
                    uint32_t len;
                    bson_iter_document(&pi, &len, &data);
                    sk_obj(data, len, p, j + 1, acc);
                } else if (BSON_ITER_HOLDS_ARRAY(&pi)) {
                    sk_array(&pi, p, j + 1, acc);
                } else {
                    offer_type(acc, BSON_TYPE_NULL);
                }
                return;
            }
        }
    }
    while (bson_iter_next(&ai)) {
        any = true;
        if (BSON_ITER_HOLDS_DOCUMENT(&ai)) {
            const uint8_t *data;
            uint32_t len;
            bson_iter_document(&ai, &len, &data);
            sk_obj(data, len, p, j, acc);
        } else {
            offer_type(acc, BSON_TYPE_NULL);
        }
    }
    if (!any)
        offer_type(acc, BSON_TYPE_NULL);
}

void
emu_sort_keys(const emu_sort_t *s, const bson_t *doc, bson_value_t *keys)
{
    for (int i = 0; i < s->n; i++) {
        sort_acc_t acc;
        memset(&acc, 0, sizeof acc);
        acc.dir = s->keys[i].dir;
        sk_obj(bson_get_data(doc), doc->len, &s->keys[i].path, 0, &acc);
        if (!acc.have)
            offer_type(&acc, BSON_TYPE_NULL);
        keys[i] = acc.best;
    }
}

int
emu_sort_compare(const emu_sort_t *s, const bson_value_t *ka, const bson_value_t *kb)
{
    for (int i = 0; i < s->n; i++) {
        int c = emu_value_compare(&ka[i], &kb[i]);
        if (c)
            return s->keys[i].dir > 0 ? c : -c;
    }
    return 0;
}

void
emu_sort_destroy(emu_sort_t *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n; i++)
        bson_free(s->keys[i].path.parts);
    bson_free(s->keys);
    bson_destroy(s->copy);
    bson_free(s);
}

/* ------------------------------------------------------------------------------------------ */
/* Projection                                                                                 */
/* ------------------------------------------------------------------------------------------ */

typedef struct pnode pnode_t;
struct pnode {
    const char *name; /* borrowed from the spec copy */
    uint32_t len;
    bool leaf;
    pnode_t *kids;
    size_t nkids, cap;
};

enum { PROJ_IDENTITY, PROJ_INCLUDE, PROJ_EXCLUDE };

struct emu_projection {
    bson_t *copy;
    int mode;
    int id; /* -1 unspecified, 0 excluded, 1 included */
    pnode_t root;
};

static void
pnode_clear(pnode_t *n)
{
    for (size_t i = 0; i < n->nkids; i++)
        pnode_clear(&n->kids[i]);
    bson_free(n->kids);
}

static pnode_t *
pnode_find(const pnode_t *n, const char *name, uint32_t len)
{
    for (size_t i = 0; i < n->nkids; i++) {
        if (n->kids[i].len == len && memcmp(n->kids[i].name, name, len) == 0)
            return &n->kids[i];
    }
    return NULL;
}

/* Adds a dotted path to the tree; a path that is a prefix of another is a collision. */
static bool
pnode_add(pnode_t *root, const char *dotted, emu_error_t *err)
{
    pnode_t *n = root;
    const char *s = dotted;
    int parts = 0;
    for (;;) {
        const char *e = strchr(s, '.');
        uint32_t len = e ? (uint32_t)(e - s) : (uint32_t)strlen(s);
        pnode_t *kid;
        if (len == 0)
            return emu_error_set(err, EMU_BAD_VALUE,
                                 "FieldPath field names may not be empty strings.");
        if (s[0] == '$')
            return emu_error_set(err, EMU_BAD_VALUE,
                                 "projection field '%s' is not supported by docdb-emu", dotted);
        if (++parts > MAX_PATH_PARTS)
            return emu_error_set(err, EMU_BAD_VALUE, "path has too many parts: %.100s", dotted);
        kid = pnode_find(n, s, len);
        if (kid && (kid->leaf || !e))
            return emu_error_set(err, 31249, "Path collision at %s", dotted);
        if (!kid) {
            if (n->nkids == n->cap) {
                n->cap = n->cap ? n->cap * 2 : 4;
                n->kids = bson_realloc(n->kids, sizeof *n->kids * n->cap);
            }
            kid = &n->kids[n->nkids++];
            memset(kid, 0, sizeof *kid);
            kid->name = s;
            kid->len = len;
            kid->leaf = !e;
        }
        if (!e)
            return true;
        n = kid;
        s = e + 1;
    }
}

emu_projection_t *
emu_projection_new(const bson_t *spec, emu_error_t *err)
{
    emu_projection_t *p = bson_malloc0(sizeof *p);
    bson_iter_t it;
    p->copy = spec ? bson_copy(spec) : bson_new();
    p->id = -1;
    p->mode = PROJ_IDENTITY;
    if (!bson_iter_init(&it, p->copy)) {
        emu_error_set(err, EMU_BAD_VALUE, "invalid projection");
        goto fail;
    }
    while (bson_iter_next(&it)) {
        const char *key = bson_iter_key(&it);
        const bson_value_t *v = bson_iter_value(&it);
        bool include;
        switch (v->value_type) {
        case BSON_TYPE_BOOL:
        case BSON_TYPE_INT32:
        case BSON_TYPE_INT64:
        case BSON_TYPE_DOUBLE:
        case BSON_TYPE_DECIMAL128:
            include = true_value(v);
            break;
        default:
            emu_error_set(err, EMU_BAD_VALUE,
                          "projection value for field '%s' is not supported by docdb-emu "
                          "(only 1, 0, true and false are)",
                          key);
            goto fail;
        }
        if (strcmp(key, "_id") == 0) {
            if (p->id >= 0 || pnode_find(&p->root, "_id", 3)) {
                emu_error_set(err, 31249, "Path collision at _id");
                goto fail;
            }
            p->id = include;
            continue;
        }
        if (p->mode == PROJ_INCLUDE && !include) {
            emu_error_set(err, EMU_BAD_VALUE,
                          "Cannot do exclusion on field %s in inclusion projection", key);
            goto fail;
        }
        if (p->mode == PROJ_EXCLUDE && include) {
            emu_error_set(err, EMU_BAD_VALUE,
                          "Cannot do inclusion on field %s in exclusion projection", key);
            goto fail;
        }
        if (p->id >= 0 && strncmp(key, "_id.", 4) == 0) {
            emu_error_set(err, 31249, "Path collision at %s", key);
            goto fail;
        }
        p->mode = include ? PROJ_INCLUDE : PROJ_EXCLUDE;
        if (!pnode_add(&p->root, key, err))
            goto fail;
    }
    if (p->mode == PROJ_IDENTITY && p->id >= 0)
        p->mode = p->id ? PROJ_INCLUDE : PROJ_EXCLUDE;
    return p;
fail:
    emu_projection_destroy(p);
    return NULL;
}

static void project_doc(const emu_projection_t *p, const pnode_t *n, bson_iter_t *it, bson_t *out,
                        bool top, int depth);

/* Applies the subtree n to an array's elements: documents are projected; other values, arrays
 * nested in the array included (find's kDoNotRecurseNestedArrays), are dropped by an inclusion
 * and kept as they are by an exclusion. */
static void
project_array(const emu_projection_t *p, const pnode_t *n, bson_iter_t *ai, bson_t *out, int depth)
{
    uint32_t idx = 0;
    while (bson_iter_next(ai)) {
        char buf[16];
        const char *key;
        size_t klen = bson_uint32_to_string(idx, &key, buf, sizeof buf);
        bson_iter_t sub;
        if (BSON_ITER_HOLDS_DOCUMENT(ai) && depth < MAX_VALUE_DEPTH &&
            bson_iter_recurse(ai, &sub)) {
            bson_t child;
            bson_append_document_begin(out, key, (int)klen, &child);
            project_doc(p, n, &sub, &child, false, depth + 1);
            bson_append_document_end(out, &child);
        } else if (p->mode == PROJ_EXCLUDE) {
            bson_append_value(out, key, (int)klen, bson_iter_value(ai));
        } else {
            continue;
        }
        idx++;
    }
}

static void
project_doc(const emu_projection_t *p, const pnode_t *n, bson_iter_t *it, bson_t *out, bool top,
            int depth)
{
    bool include = p->mode == PROJ_INCLUDE;
    while (bson_iter_next(it)) {
        const char *key = bson_iter_key(it);
        int klen = (int)bson_iter_key_len(it);
        const pnode_t *kid;
        bson_iter_t sub;
        if (top && klen == 3 && memcmp(key, "_id", 3) == 0 && !pnode_find(n, key, 3)) {
            /* _id is kept unless excluded; an inclusion of other fields keeps it too. */
            if (p->id != 0)
                bson_append_value(out, key, klen, bson_iter_value(it));
            continue;
        }
        kid = pnode_find(n, key, (uint32_t)klen);
        if (!kid) {
            if (!include)
                bson_append_value(out, key, klen, bson_iter_value(it));
            continue;
        }
        if (kid->leaf) {
            if (include)
                bson_append_value(out, key, klen, bson_iter_value(it));
            continue;
        }
        if (depth < MAX_VALUE_DEPTH && BSON_ITER_HOLDS_DOCUMENT(it) &&
            bson_iter_recurse(it, &sub)) {
            bson_t child;
            bson_append_document_begin(out, key, klen, &child);
            project_doc(p, kid, &sub, &child, false, depth + 1);
            bson_append_document_end(out, &child);
        } else if (depth < MAX_VALUE_DEPTH && BSON_ITER_HOLDS_ARRAY(it) &&
                   bson_iter_recurse(it, &sub)) {
            bson_t child;
            bson_append_array_begin(out, key, klen, &child);
            project_array(p, kid, &sub, &child, depth + 1);
            bson_append_array_end(out, &child);
        } else if (!include) {
            bson_append_value(out, key, klen, bson_iter_value(it));
        }
    }
}

void
emu_projection_apply(const emu_projection_t *p, const bson_t *doc, bson_t *out)
{
    bson_iter_t it;
    if (!bson_iter_init(&it, doc))
        return;
    if (p->mode == PROJ_IDENTITY) {
        bson_concat(out, doc);
        return;
    }
    project_doc(p, &p->root, &it, out, true, 0);
}

void
emu_projection_destroy(emu_projection_t *p)
{
    if (!p)
        return;
    pnode_clear(&p->root);
    bson_destroy(p->copy);
    bson_free(p);
}

/* ------------------------------------------------------------------------------------------ */
/* Index bounds                                                                               */
/* ------------------------------------------------------------------------------------------ */

/* The whole key space: below MinKey to above MaxKey. */
static const emu_cut_t cut_min = {.rank = -1, .edge = -1};
static const emu_cut_t cut_max = {.rank = 127, .edge = 1};
/* A double NaN: numbers sort NaN lowest, so "just above NaN" starts the non-NaN numbers. */
static const bson_value_t nan_value = {.value_type = BSON_TYPE_DOUBLE, .value.v_double = NAN};

static int
cut_cmp(const emu_cut_t *a, const emu_cut_t *b)
{
    int c;
    if (a->rank != b->rank)
        return a->rank < b->rank ? -1 : 1;
    if (a->edge != b->edge)
        return a->edge < b->edge ? -1 : 1;
    if (a->edge != 0)
        return 0;
    c = emu_value_compare(&a->value, &b->value);
    if (c)
        return c;
    return (a->side > b->side) - (a->side < b->side);
}

int
emu_cut_compare_key(const emu_cut_t *c, const bson_value_t *key)
{
    int rk = emu_type_rank(key->value_type), v;
    if (c->rank != rk)
        return c->rank < rk ? -1 : 1;
    if (c->edge != 0)
        return c->edge;
    v = emu_value_compare(&c->value, key);
    return v ? v : c->side;
}

static emu_cut_t
edge_cut(int rank, int edge)
{
    emu_cut_t c = {.rank = rank, .edge = edge};
    return c;
}

static emu_cut_t
value_cut(const bson_value_t *v, int side)
{
    emu_cut_t c = {.rank = emu_type_rank(v->value_type), .side = side, .value = *v};
    return c;
}

static void
bounds_init(emu_bounds_t *b, bool exact)
{
    memset(b, 0, sizeof *b);
    b->exact = exact;
}

void
emu_bounds_cleanup(emu_bounds_t *b)
{
    bson_free(b->v);
    memset(b, 0, sizeof *b);
}

/* Appends [lo, hi] unless it is empty; callers keep the intervals ordered or normalise. */
static void
bounds_push(emu_bounds_t *b, emu_cut_t lo, emu_cut_t hi)
{
    if (cut_cmp(&lo, &hi) >= 0)
        return;
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 4;
        b->v = bson_realloc(b->v, sizeof *b->v * b->cap);
    }
    b->v[b->n].lo = lo;
    b->v[b->n].hi = hi;
    b->n++;
}

static void
bounds_full(emu_bounds_t *b, bool exact)
{
    b->n = 0;
    b->exact = exact;
    bounds_push(b, cut_min, cut_max);
}

void
emu_bounds_full(emu_bounds_t *b)
{
    bounds_init(b, true);
    bounds_full(b, true);
}

static bool
bounds_is_full(const emu_bounds_t *b)
{
    return b->n == 1 && cut_cmp(&b->v[0].lo, &cut_min) <= 0 && cut_cmp(&b->v[0].hi, &cut_max) >= 0;
}

static int
interval_lo_cmp(const void *a, const void *b)
{
    return cut_cmp(&((const emu_interval_t *)a)->lo, &((const emu_interval_t *)b)->lo);
}

/* Sorts by lower cut and merges overlapping intervals: disjoint and ascending again. */
static void
bounds_normalise(emu_bounds_t *b)
{
    size_t o = 0;
    if (b->n < 2)
        return;
    qsort(b->v, b->n, sizeof *b->v, interval_lo_cmp);
    for (size_t i = 1; i < b->n; i++) {
        if (cut_cmp(&b->v[i].lo, &b->v[o].hi) <= 0) {
            if (cut_cmp(&b->v[i].hi, &b->v[o].hi) > 0)
                b->v[o].hi = b->v[i].hi;
        } else {
            b->v[++o] = b->v[i];
        }
    }
    b->n = o + 1;
}

/* a = a ∪ b; the exact flags combine. */
static void
bounds_union(emu_bounds_t *a, const emu_bounds_t *b)
{
    for (size_t i = 0; i < b->n; i++)
        bounds_push(a, b->v[i].lo, b->v[i].hi);
    a->exact = a->exact && b->exact;
    bounds_normalise(a);
}

/* a = a ∩ b (both normalised). */
static void
bounds_intersect(emu_bounds_t *a, const emu_bounds_t *b)
{
    emu_bounds_t r;
    size_t i = 0, j = 0;
    bounds_init(&r, a->exact && b->exact);
    while (i < a->n && j < b->n) {
        const emu_interval_t *x = &a->v[i], *y = &b->v[j];
        emu_cut_t lo = cut_cmp(&x->lo, &y->lo) >= 0 ? x->lo : y->lo;
        emu_cut_t hi = cut_cmp(&x->hi, &y->hi) <= 0 ? x->hi : y->hi;
        bounds_push(&r, lo, hi);
        if (cut_cmp(&x->hi, &y->hi) <= 0)
            i++;
        else
            j++;
    }
    emu_bounds_cleanup(a);
    *a = r;
}

/* b = the keys not in b: the gaps between its cuts. Only meaningful for exact bounds. */
static void
bounds_complement(emu_bounds_t *b)
{
    emu_bounds_t r;
    emu_cut_t prev = cut_min;
    bounds_init(&r, b->exact);
    for (size_t i = 0; i < b->n; i++) {
        bounds_push(&r, prev, b->v[i].lo);
        prev = b->v[i].hi;
    }
    bounds_push(&r, prev, cut_max);
    emu_bounds_cleanup(b);
    *b = r;
}

/* {path: v}: null also matches missing (indexed as null) and undefined. */
static void
eq_bounds(const bson_value_t *v, emu_bounds_t *b)
{
    if (v->value_type == BSON_TYPE_NULL)
        bounds_push(b, edge_cut(0, -1), edge_cut(5, 1));
    else if (v->value_type == BSON_TYPE_MINKEY || v->value_type == BSON_TYPE_MAXKEY)
        bounds_push(b, edge_cut(emu_type_rank(v->value_type), -1),
                    edge_cut(emu_type_rank(v->value_type), 1));
    else
        bounds_push(b, value_cut(v, -1), value_cut(v, 1));
}

/* The keys cmp_matches accepts, exactly: type bracketing keeps a range within the operand's
 * type rank; MinKey, MaxKey, null and NaN follow mongod's special cases. */
static void
cmp_bounds(const fnode_t *n, emu_bounds_t *b)
{
    const bson_value_t *v = &n->val;
    int r = n->val_rank;
    bool lower = n->op == OP_LT || n->op == OP_LTE;
    bool incl = n->op == OP_LTE || n->op == OP_GTE;
    if (n->op == OP_EQ) {
        eq_bounds(v, b);
        return;
    }
    switch (v->value_type) {
    case BSON_TYPE_NULL:
        if (incl)
            eq_bounds(v, b);
        return;
    case BSON_TYPE_MINKEY:
        if (!lower)
            bounds_push(b, edge_cut(-1, incl ? -1 : 1), cut_max);
        else if (incl)
            eq_bounds(v, b);
        return;
    case BSON_TYPE_MAXKEY:
        if (lower)
            bounds_push(b, cut_min, edge_cut(127, incl ? 1 : -1));
        else if (incl)
            eq_bounds(v, b);
        return;
    default:
        break;
    }
    if (n->val_nan) {
        if (incl)
            eq_bounds(v, b);
        return;
    }
    if (lower) {
        /* NaN sorts below every number but is never less than one. */
        emu_cut_t lo = r == 10 ? value_cut(&nan_value, 1) : edge_cut(r, -1);
        bounds_push(b, lo, value_cut(v, incl ? 1 : -1));
    } else {
        bounds_push(b, value_cut(v, incl ? -1 : 1), edge_cut(r, 1));
    }
}

/* $type: the whole rank of every named type. Exact when each rank is fully covered (all four
 * numeric types, string with symbol) and null is not asked for, since missing fields index as
 * null without matching {$type: "null"}. */
static void
type_bounds(uint32_t types, emu_bounds_t *b)
{
    bool exact = (types & (1u << BSON_TYPE_NULL)) == 0;
    for (unsigned t = 1; t < 20; t++) {
        if (!(types & (1u << t)))
            continue;
        int r = emu_type_rank((bson_type_t)t);
        bounds_push(b, edge_cut(r, -1), edge_cut(r, 1));
        for (unsigned u = 1; u < 20; u++) {
            if (emu_type_rank((bson_type_t)u) == r && !(types & (1u << u)) &&
                !(r == 10 && (types & TYPE_BIT_NUMBER)))
                exact = false;
        }
    }
    if (types & TYPE_BIT_NUMBER)
        bounds_push(b, edge_cut(10, -1), edge_cut(10, 1));
    if (types & TYPE_BIT_MINKEY)
        bounds_push(b, edge_cut(-1, -1), edge_cut(-1, 1));
    if (types & TYPE_BIT_MAXKEY)
        bounds_push(b, edge_cut(127, -1), edge_cut(127, 1));
    bounds_normalise(b);
    b->exact = exact;
}

static void
node_bounds(const fnode_t *n, const char *path, emu_bounds_t *b)
{
    emu_bounds_t kid;
    bounds_init(b, true);
    switch (n->kind) {
    case NK_AND:
        bounds_full(b, true);
        for (size_t i = 0; i < n->nkids; i++) {
            node_bounds(n->kids[i], path, &kid);
            bounds_intersect(b, &kid);
            emu_bounds_cleanup(&kid);
        }
        return;
    case NK_OR:
    case NK_NOR:
        for (size_t i = 0; i < n->nkids; i++) {
            node_bounds(n->kids[i], path, &kid);
            bool unbounded = !kid.exact && bounds_is_full(&kid);
            bounds_union(b, &kid);
            emu_bounds_cleanup(&kid);
            if (unbounded)
                break; /* one unbounded branch makes the union unbounded */
        }
        if (n->kind == NK_NOR) {
            if (b->exact)
                bounds_complement(b);
            else
                bounds_full(b, false);
        }
        return;
    case NK_NOT:
        node_bounds(n->kids[0], path, b);
        if (b->exact)
            bounds_complement(b);
        else
            bounds_full(b, false);
        return;
    default:
        break;
    }
    if (strcmp(n->path.dotted, path) != 0) {
        bounds_full(b, false);
        return;
    }
    switch (n->kind) {
    case NK_CMP:
        cmp_bounds(n, b);
        return;
    case NK_IN:
        for (size_t i = 0; i < n->nset; i++)
            eq_bounds(&n->set[i], b);
        bounds_normalise(b);
        return;
    case NK_TYPE:
        type_bounds(n->types, b);
        return;
    default:
        /* $exists: a missing field and an explicit null share the key null. */
        bounds_full(b, false);
        return;
    }
}

bool
emu_filter_bounds(const emu_filter_t *f, const char *path, emu_bounds_t *out)
{
    node_bounds(f->root, path, out);
    return !bounds_is_full(out);
}

bool
emu_bounds_contains(const emu_bounds_t *b, const bson_value_t *key)
{
    size_t lo = 0, hi = b->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (emu_cut_compare_key(&b->v[mid].hi, key) < 0)
            lo = mid + 1;
        else if (emu_cut_compare_key(&b->v[mid].lo, key) > 0)
            hi = mid;
        else
            return true;
    }
    return false;
}

/* mongod's names of type ranks, for the edges of ranges in explain output. */
static const char *
rank_name(int rank)
{
    static const struct {
        int rank;
        const char *name;
    } names[] = {{0, "undefined"},  {5, "null"},        {10, "number"},
                 {15, "string"},    {20, "object"},     {25, "array"},
                 {30, "binData"},   {35, "objectId"},   {40, "bool"},
                 {45, "date"},      {47, "timestamp"},  {50, "regex"},
                 {55, "dbPointer"}, {60, "javascript"}, {65, "javascriptWithScope"}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (names[i].rank == rank)
            return names[i].name;
    }
    return "?";
}

/* A value as relaxed extended JSON: {"": value} without the braces and the empty key. */
static void
json_string(const bson_value_t *v, char *out, size_t n)
{
    bson_t d = BSON_INITIALIZER;
    bson_append_value(&d, "", 0, v);
    char *json = bson_as_relaxed_extended_json(&d, NULL);
    const char *s = json ? strstr(json, ":") : NULL;
    size_t len = s ? strlen(s) : 0;
    if (s && len >= 4)
        snprintf(out, n, "%.*s", (int)(len - 4), s + 2);
    else
        snprintf(out, n, "?");
    bson_free(json);
    bson_destroy(&d);
}

static void
cut_string(const emu_cut_t *c, char *out, size_t n)
{
    const bson_value_t *v = &c->value;
    if (c->rank == -1 || c->rank == 127) {
        snprintf(out, n, "%s", c->rank == -1 ? "MinKey" : "MaxKey");
    } else if (c->edge != 0) {
        snprintf(out, n, "<%s %s>", c->edge < 0 ? "min" : "max", rank_name(c->rank));
    } else if (v->value_type == BSON_TYPE_DATE_TIME) {
        snprintf(out, n, "new Date(%" PRId64 ")", v->value.v_datetime);
    } else if (v->value_type == BSON_TYPE_OID) {
        char hex[25];
        bson_oid_to_string(&v->value.v_oid, hex);
        snprintf(out, n, "ObjectId('%s')", hex);
    } else if (v->value_type == BSON_TYPE_DOUBLE && isnan(v->value.v_double)) {
        snprintf(out, n, "nan"); /* mongod prints NaN and the infinities bare */
    } else if (v->value_type == BSON_TYPE_DOUBLE && isinf(v->value.v_double)) {
        snprintf(out, n, "%s", v->value.v_double < 0 ? "-inf" : "inf");
    } else {
        json_string(v, out, n);
    }
}

void
emu_bounds_append_strings(const emu_bounds_t *b, bson_t *arr)
{
    for (size_t i = 0; i < b->n; i++) {
        char lo[128], hi[128], s[300], keybuf[16];
        const char *key;
        const emu_interval_t *iv = &b->v[i];
        bool lo_incl = iv->lo.edge ? iv->lo.edge < 0 : iv->lo.side < 0;
        bool hi_incl = iv->hi.edge ? iv->hi.edge > 0 : iv->hi.side > 0;
        cut_string(&iv->lo, lo, sizeof lo);
        cut_string(&iv->hi, hi, sizeof hi);
        snprintf(s, sizeof s, "%s%s, %s%s", lo_incl ? "[" : "(", lo, hi, hi_incl ? "]" : ")");
        size_t klen = bson_uint32_to_string((uint32_t)i, &key, keybuf, sizeof keybuf);
        bson_append_utf8(arr, key, (int)klen, s, -1);
    }
}

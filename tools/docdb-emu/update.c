/* update.c: MongoDB's update semantics for one document in docdb-emu: replacement documents,
 * the $set, $unset and $inc operators on dotted paths, and the base document of an upsert.
 * Behaviour follows mongod 5.0+ (see update.h); the limits are listed in the notes below. */
#include "update.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Notes on what is deliberately not supported, and on mongod behaviours reproduced:
 * - Only $set, $unset and $inc exist; every other modifier ($push, $rename, ...) is refused as
 *   mongod refuses an unknown one (code 9). The positional operators "$", "$[]" and "$[id]" are
 *   refused with code 2 (BadValue), since they need the query match and arrayFilters.
 * - As in mongod 5.0+, an operator with an empty argument ({$set: {}}) is a valid no-op, and {}
 *   is an (empty) replacement document, so no "empty operator update" can reach the validator.
 * - New fields are created in the order mongod 5.0+ applies updates: field names in
 *   lexicographic order, numeric names in numeric order (its cmpPathsAndArrayIndexes rule);
 *   existing fields keep their place. _id is moved first, as mongod does after every update.
 * - $inc follows mongod's SafeNum: int32 overflow widens to int64, int64 overflow fails with
 *   code 2, a double operand gives a double, a decimal operand gives a decimal (a double is
 *   first rounded to 15 significant digits, as mongod's Decimal128(double) does). Decimal sums
 *   are computed exactly on digit strings and rounded half-even to 34 digits.
 * - Two paths that differ only in the spelling of an array index ("a.1" and "a.01") and meet
 *   the same element are refused with code 2 instead of being applied one after the other.
 * - Upsert: equalities come from field: value, field: {$eq: v}, a one-element $in, the
 *   elements of $all, $and, and a one-clause $or. They are set in the byte order of their paths
 *   (mongod's historical std::map order). $expr, $elemMatch and the rest contribute nothing.
 * - Conflict detection between update paths and between upsert equalities is quadratic in the
 *   number of paths, which keeps the module free of heap allocation beyond the output bson
 *   (and, for an upsert, the base document built from the filter).
 */

/* mongod error codes that emu.h does not name (names from mongod's error_codes.yml). */
static const int UPD_PATH_NOT_VIABLE = 28;        /* PathNotViable */
static const int UPD_CANNOT_BACKFILL_ARRAY = 34;  /* CannotBackfillArray */
static const int UPD_CONFLICTING_OPERATORS = 40;  /* ConflictingUpdateOperators */
static const int UPD_DOLLAR_PREFIXED_FIELD = 52;  /* DollarPrefixedFieldName */
static const int UPD_INVALID_ID_FIELD = 53;       /* InvalidIdField */
static const int UPD_NOT_SINGLE_VALUE_FIELD = 54; /* NotSingleValueField */
static const int UPD_EMPTY_FIELD_NAME = 56;       /* EmptyFieldName */
static const int UPD_NOT_EXACT_VALUE_FIELD = 111; /* NotExactValueField */
static const int UPD_DOC_TOO_LARGE = 17419;       /* mongod's assertion id for updates */
static const int UPD_UPSERT_TOO_LARGE = 17420;    /* mongod's assertion id for upserts */

#define UPD_MAX_DEPTH    100      /* path components an update path may have */
#define UPD_MAX_BSON     16777216 /* BSONObjMaxUserSize */
#define UPD_MAX_PADDING  1500000  /* mongod's kMaxPaddingAllowed for array backfill */
#define UPD_FMT_DEPTH    6        /* nesting shown in error messages */
#define UPD_EQUAL_DEPTH  200      /* nesting compared by value in _id comparisons */
#define DEC_MAX_DIGITS   34       /* decimal128 precision */
#define DEC_STICKY_SHIFT 80       /* alignment beyond which an addend only acts as sticky */
#define DEC_WORK         (2 * DEC_MAX_DIGITS + DEC_STICKY_SHIFT + 24)

/* ---------------------------------------------------------------------------------------------
 * Bounded text for error messages, in the style of mongod's BSONElement::toString.
 */

typedef struct {
    char *buf;
    size_t cap;
    size_t len;
} sbuf_t;

static void
sb_init(sbuf_t *sb, char *buf, size_t cap)
{
    sb->buf = buf;
    sb->cap = cap;
    sb->len = 0;
    buf[0] = '\0';
}

static void sb_printf(sbuf_t *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
sb_printf(sbuf_t *sb, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (sb->len + 1 >= sb->cap)
        return;
    va_start(ap, fmt);
    n = vsnprintf(sb->buf + sb->len, sb->cap - sb->len, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    sb->len += (size_t)n;
    if (sb->len >= sb->cap)
        sb->len = sb->cap - 1;
}

static void
sb_putn(sbuf_t *sb, const char *s, size_t n)
{
    size_t room;

    if (sb->len + 1 >= sb->cap)
        return;
    room = sb->cap - sb->len - 1;
    if (n > room)
        n = room;
    memcpy(sb->buf + sb->len, s, n);
    sb->len += n;
    sb->buf[sb->len] = '\0';
}

static void
fmt_double(sbuf_t *sb, double d)
{
    char tmp[40];
    size_t i;
    bool plain = true;

    if (isnan(d)) {
        sb_printf(sb, "nan.0");
        return;
    }
    if (isinf(d)) {
        sb_printf(sb, "%sinf.0", d < 0 ? "-" : "");
        return;
    }
    snprintf(tmp, sizeof tmp, "%.17g", d);
    for (int prec = 15; prec < 17; prec++) {
        char shorter[40];
        snprintf(shorter, sizeof shorter, "%.*g", prec, d);
        if (strtod(shorter, NULL) == d) {
            memcpy(tmp, shorter, sizeof tmp);
            break;
        }
    }
    for (i = 0; tmp[i]; i++) {
        if (tmp[i] != '-' && (tmp[i] < '0' || tmp[i] > '9'))
            plain = false;
    }
    sb_printf(sb, "%s%s", tmp, plain ? ".0" : "");
}

static void fmt_value(sbuf_t *sb, const bson_iter_t *it, int depth);

static void
fmt_children(sbuf_t *sb, const bson_iter_t *it, bool is_array, int depth)
{
    bson_iter_t child;
    bool first = true;

    if (!bson_iter_recurse(it, &child)) {
        sb_printf(sb, "%s", is_array ? "[]" : "{}");
        return;
    }
    if (depth >= UPD_FMT_DEPTH) {
        sb_printf(sb, "%s", is_array ? "[ ... ]" : "{ ... }");
        return;
    }
    while (bson_iter_next(&child)) {
        sb_printf(sb, "%s", first ? (is_array ? "[ " : "{ ") : ", ");
        first = false;
        if (!is_array)
            sb_printf(sb, "%s: ", bson_iter_key(&child));
        fmt_value(sb, &child, depth + 1);
    }
    if (first)
        sb_printf(sb, "%s", is_array ? "[]" : "{}");
    else
        sb_printf(sb, "%s", is_array ? " ]" : " }");
}

static void
fmt_value(sbuf_t *sb, const bson_iter_t *it, int depth)
{
    uint32_t len = 0;
    const char *s;

    switch (bson_iter_type(it)) {
    case BSON_TYPE_DOUBLE:
        fmt_double(sb, bson_iter_double(it));
        break;
    case BSON_TYPE_UTF8:
    case BSON_TYPE_SYMBOL:
        s = bson_iter_type(it) == BSON_TYPE_UTF8 ? bson_iter_utf8(it, &len)
                                                 : bson_iter_symbol(it, &len);
        sb_printf(sb, "\"");
        sb_putn(sb, s, len);
        sb_printf(sb, "\"");
        break;
    case BSON_TYPE_DOCUMENT:
        fmt_children(sb, it, false, depth);
        break;
    case BSON_TYPE_ARRAY:
        fmt_children(sb, it, true, depth);
        break;
    case BSON_TYPE_BINARY: {
        bson_subtype_t sub;
        const uint8_t *data;
        bson_iter_binary(it, &sub, &len, &data);
        sb_printf(sb, "BinData(%d, ", (int)sub);
        for (uint32_t i = 0; i < len && i < 32; i++)
            sb_printf(sb, "%02X", data[i]);
        sb_printf(sb, "%s)", len > 32 ? "..." : "");
        break;
    }
    case BSON_TYPE_UNDEFINED:
        sb_printf(sb, "undefined");
        break;
    case BSON_TYPE_OID: {
        char hex[25];
        bson_oid_to_string(bson_iter_oid(it), hex);
        sb_printf(sb, "ObjectId('%s')", hex);
        break;
    }
    case BSON_TYPE_BOOL:
        sb_printf(sb, "%s", bson_iter_bool(it) ? "true" : "false");
        break;
    case BSON_TYPE_DATE_TIME:
        sb_printf(sb, "new Date(%" PRId64 ")", bson_iter_date_time(it));
        break;
    case BSON_TYPE_NULL:
        sb_printf(sb, "null");
        break;
    case BSON_TYPE_REGEX: {
        const char *options = NULL;
        s = bson_iter_regex(it, &options);
        sb_printf(sb, "/%s/%s", s, options ? options : "");
        break;
    }
    case BSON_TYPE_CODE:
        s = bson_iter_code(it, &len);
        sb_putn(sb, s, len);
        break;
    case BSON_TYPE_CODEWSCOPE: {
        uint32_t scope_len;
        const uint8_t *scope;
        s = bson_iter_codewscope(it, &len, &scope_len, &scope);
        sb_putn(sb, s, len);
        break;
    }
    case BSON_TYPE_INT32:
        sb_printf(sb, "%" PRId32, bson_iter_int32(it));
        break;
    case BSON_TYPE_INT64:
        sb_printf(sb, "%" PRId64, bson_iter_int64(it));
        break;
    case BSON_TYPE_TIMESTAMP: {
        uint32_t ts, inc;
        bson_iter_timestamp(it, &ts, &inc);
        sb_printf(sb, "Timestamp(%" PRIu32 ", %" PRIu32 ")", ts, inc);
        break;
    }
    case BSON_TYPE_DECIMAL128: {
        bson_decimal128_t dec;
        char str[BSON_DECIMAL128_STRING];
        bson_iter_decimal128(it, &dec);
        bson_decimal128_to_string(&dec, str);
        sb_printf(sb, "NumberDecimal(\"%s\")", str);
        break;
    }
    case BSON_TYPE_MINKEY:
        sb_printf(sb, "MinKey");
        break;
    case BSON_TYPE_MAXKEY:
        sb_printf(sb, "MaxKey");
        break;
    default:
        sb_printf(sb, "%s", emu_type_name(bson_iter_type(it)));
        break;
    }
}

/* "key: value", as mongod prints an element. */
static void
fmt_element(sbuf_t *sb, const bson_iter_t *it)
{
    sb_printf(sb, "%s: ", bson_iter_key(it));
    fmt_value(sb, it, 0);
}

/* ---------------------------------------------------------------------------------------------
 * Comparisons of BSON values.
 */

static bool
is_number(bson_type_t t)
{
    return t == BSON_TYPE_INT32 || t == BSON_TYPE_INT64 || t == BSON_TYPE_DOUBLE ||
           t == BSON_TYPE_DECIMAL128;
}

static bool
bytes_equal(const void *a, uint32_t alen, const void *b, uint32_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/* Same type and same bytes: mongod's binaryEqualValues, the test for a no-op $set. */
static bool
values_identical(const bson_iter_t *a, const bson_iter_t *b)
{
    bson_type_t t = bson_iter_type(a);
    uint32_t alen = 0, blen = 0;

    if (t != bson_iter_type(b))
        return false;
    switch (t) {
    case BSON_TYPE_DOUBLE: {
        double x = bson_iter_double(a), y = bson_iter_double(b);
        return memcmp(&x, &y, sizeof x) == 0;
    }
    case BSON_TYPE_UTF8: {
        const char *x = bson_iter_utf8(a, &alen), *y = bson_iter_utf8(b, &blen);
        return bytes_equal(x, alen, y, blen);
    }
    case BSON_TYPE_SYMBOL: {
        const char *x = bson_iter_symbol(a, &alen), *y = bson_iter_symbol(b, &blen);
        return bytes_equal(x, alen, y, blen);
    }
    case BSON_TYPE_CODE: {
        const char *x = bson_iter_code(a, &alen), *y = bson_iter_code(b, &blen);
        return bytes_equal(x, alen, y, blen);
    }
    case BSON_TYPE_DOCUMENT:
    case BSON_TYPE_ARRAY: {
        const uint8_t *x = NULL, *y = NULL;
        if (t == BSON_TYPE_DOCUMENT) {
            bson_iter_document(a, &alen, &x);
            bson_iter_document(b, &blen, &y);
        } else {
            bson_iter_array(a, &alen, &x);
            bson_iter_array(b, &blen, &y);
        }
        return bytes_equal(x, alen, y, blen);
    }
    case BSON_TYPE_BINARY: {
        bson_subtype_t sx, sy;
        const uint8_t *x, *y;
        bson_iter_binary(a, &sx, &alen, &x);
        bson_iter_binary(b, &sy, &blen, &y);
        return sx == sy && bytes_equal(x, alen, y, blen);
    }
    case BSON_TYPE_OID:
        return bson_oid_equal(bson_iter_oid(a), bson_iter_oid(b));
    case BSON_TYPE_BOOL:
        return bson_iter_bool(a) == bson_iter_bool(b);
    case BSON_TYPE_DATE_TIME:
        return bson_iter_date_time(a) == bson_iter_date_time(b);
    case BSON_TYPE_REGEX: {
        const char *ox = NULL, *oy = NULL;
        const char *x = bson_iter_regex(a, &ox), *y = bson_iter_regex(b, &oy);
        return strcmp(x, y) == 0 && strcmp(ox ? ox : "", oy ? oy : "") == 0;
    }
    case BSON_TYPE_DBPOINTER: {
        const char *x, *y;
        const bson_oid_t *ox, *oy;
        bson_iter_dbpointer(a, &alen, &x, &ox);
        bson_iter_dbpointer(b, &blen, &y, &oy);
        return bytes_equal(x, alen, y, blen) && bson_oid_equal(ox, oy);
    }
    case BSON_TYPE_CODEWSCOPE: {
        uint32_t sxl, syl;
        const uint8_t *sx, *sy;
        const char *x = bson_iter_codewscope(a, &alen, &sxl, &sx);
        const char *y = bson_iter_codewscope(b, &blen, &syl, &sy);
        return bytes_equal(x, alen, y, blen) && bytes_equal(sx, sxl, sy, syl);
    }
    case BSON_TYPE_INT32:
        return bson_iter_int32(a) == bson_iter_int32(b);
    case BSON_TYPE_INT64:
        return bson_iter_int64(a) == bson_iter_int64(b);
    case BSON_TYPE_TIMESTAMP: {
        uint32_t tx, ix, ty, iy;
        bson_iter_timestamp(a, &tx, &ix);
        bson_iter_timestamp(b, &ty, &iy);
        return tx == ty && ix == iy;
    }
    case BSON_TYPE_DECIMAL128: {
        bson_decimal128_t x, y;
        bson_iter_decimal128(a, &x);
        bson_iter_decimal128(b, &y);
        return x.high == y.high && x.low == y.low;
    }
    case BSON_TYPE_UNDEFINED:
    case BSON_TYPE_NULL:
    case BSON_TYPE_MINKEY:
    case BSON_TYPE_MAXKEY:
        return true;
    default:
        return false;
    }
}

/* ---------------------------------------------------------------------------------------------
 * Decimal arithmetic on digit strings, enough for $inc: exact sums rounded half-even to 34
 * significant digits, as the IEEE 754 decimal128 addition mongod uses.
 */

enum { DEC_FINITE, DEC_INF, DEC_NAN };

typedef struct {
    int kind;
    bool neg;
    int nd;                     /* coefficient digits in d, >= 1 for a finite number */
    char d[DEC_MAX_DIGITS + 8]; /* '0'..'9', most significant first, no leading zeros */
    int exp;                    /* value = coefficient * 10^exp */
} dec_t;

static bool
dec_is_zero(const dec_t *a)
{
    return a->kind == DEC_FINITE && a->nd == 1 && a->d[0] == '0';
}

/* Parses the strings bson_decimal128_to_string and printf's %e produce. */
static void
dec_from_string(const char *s, dec_t *r)
{
    int frac = 0;
    bool in_frac = false;

    memset(r, 0, sizeof *r);
    r->kind = DEC_FINITE;
    if (*s == '-' || *s == '+')
        r->neg = *s++ == '-';
    if (strcmp(s, "NaN") == 0 || strcmp(s, "nan") == 0) {
        r->kind = DEC_NAN;
        return;
    }
    if (strcmp(s, "Infinity") == 0 || strcmp(s, "inf") == 0) {
        r->kind = DEC_INF;
        return;
    }
    for (; *s; s++) {
        if (*s == '.') {
            in_frac = true;
        } else if (*s >= '0' && *s <= '9') {
            if (r->nd == 1 && r->d[0] == '0')
                r->nd = 0; /* drop a leading zero */
            if (r->nd < (int)sizeof r->d)
                r->d[r->nd++] = *s;
            frac += in_frac;
        } else if (*s == 'E' || *s == 'e') {
            r->exp = (int)strtol(s + 1, NULL, 10);
            break;
        }
    }
    if (r->nd == 0)
        r->d[r->nd++] = '0';
    r->exp -= frac;
}

static void
dec_from_i64(int64_t v, dec_t *r)
{
    char tmp[24];

    snprintf(tmp, sizeof tmp, "%" PRId64, v);
    dec_from_string(tmp, r);
}

/* A double rounded to `digits` significant digits, keeping trailing zeros; zeros keep their
 * sign and get exponent 0 (as Intel's binary64_to_bid128). */
static void
dec_from_double(double v, int digits, dec_t *r)
{
    char tmp[64];

    if (v == 0.0) {
        dec_from_string(signbit(v) ? "-0" : "0", r);
        return;
    }
    snprintf(tmp, sizeof tmp, "%.*e", digits - 1, v);
    dec_from_string(tmp, r);
}

static void
dec_from_iter(const bson_iter_t *it, int double_digits, dec_t *r)
{
    switch (bson_iter_type(it)) {
    case BSON_TYPE_INT32:
        dec_from_i64(bson_iter_int32(it), r);
        break;
    case BSON_TYPE_INT64:
        dec_from_i64(bson_iter_int64(it), r);
        break;
    case BSON_TYPE_DOUBLE:
        dec_from_double(bson_iter_double(it), double_digits, r);
        break;
    default: {
        bson_decimal128_t dec;
        char str[BSON_DECIMAL128_STRING];
        bson_iter_decimal128(it, &dec);
        bson_decimal128_to_string(&dec, str);
        dec_from_string(str, r);
        break;
    }
    }
}

/* Numeric equality (Decimal128::isEqual): NaN equals nothing, zeros are equal whatever their
 * sign and exponent, trailing zeros do not matter. */
static bool
dec_equal(const dec_t *a, const dec_t *b)
{
    int an = a->nd, bn = b->nd, ae = a->exp, be = b->exp;

    if (a->kind == DEC_NAN || b->kind == DEC_NAN)
        return false;
    if (a->kind == DEC_INF || b->kind == DEC_INF)
        return a->kind == b->kind && a->neg == b->neg;
    if (dec_is_zero(a) || dec_is_zero(b))
        return dec_is_zero(a) && dec_is_zero(b);
    if (a->neg != b->neg)
        return false;
    while (an > 1 && a->d[an - 1] == '0') {
        an--;
        ae++;
    }
    while (bn > 1 && b->d[bn - 1] == '0') {
        bn--;
        be++;
    }
    return an == bn && ae == be && memcmp(a->d, b->d, (size_t)an) == 0;
}

/* r = x + y, IEEE 754 decimal128 addition with round-half-even. */
static void
dec_add(const dec_t *x, const dec_t *y, dec_t *r)
{
    const dec_t *a = x, *b = y;
    unsigned char A[DEC_WORK], B[DEC_WORK], R[DEC_WORK];
    char bd[DEC_MAX_DIGITS + 8];
    int bnd, shift, width, la, start, n, e;
    long span;
    bool neg;

    memset(r, 0, sizeof *r);
    if (x->kind == DEC_NAN || y->kind == DEC_NAN) {
        r->kind = DEC_NAN;
        return;
    }
    if (x->kind == DEC_INF || y->kind == DEC_INF) {
        if (x->kind == DEC_INF && y->kind == DEC_INF && x->neg != y->neg) {
            r->kind = DEC_NAN;
        } else {
            r->kind = DEC_INF;
            r->neg = x->kind == DEC_INF ? x->neg : y->neg;
        }
        return;
    }
    if (a->exp < b->exp) {
        a = y;
        b = x;
    }
    /* Now a has the larger exponent; the ideal exponent of the sum is b's. */
    if (dec_is_zero(a) && dec_is_zero(b)) {
        *r = *b;
        r->neg = a->neg && b->neg;
        return;
    }
    if (dec_is_zero(a)) {
        *r = *b;
        return;
    }
    if (dec_is_zero(b)) {
        *r = *a;
        span = (long)a->exp - b->exp;
        shift = DEC_MAX_DIGITS - a->nd;
        if (span < shift)
            shift = (int)span;
        if (shift < 0)
            shift = 0;
        for (int i = 0; i < shift; i++)
            r->d[r->nd++] = '0';
        r->exp -= shift;
        return;
    }
    span = (long)a->exp - b->exp;
    if (span > DEC_STICKY_SHIFT) {
        /* b lies far below a's last digit: only its sign and non-zeroness matter. */
        bd[0] = '1';
        bnd = 1;
        span = DEC_STICKY_SHIFT;
    } else {
        memcpy(bd, b->d, (size_t)b->nd);
        bnd = b->nd;
    }
    e = a->exp - (int)span;
    la = a->nd + (int)span;
    width = (la > bnd ? la : bnd) + 1;
    memset(A, 0, sizeof A);
    memset(B, 0, sizeof B);
    memset(R, 0, sizeof R);
    for (int i = 0; i < a->nd; i++)
        A[width - la + i] = (unsigned char)(a->d[i] - '0');
    for (int i = 0; i < bnd; i++)
        B[width - bnd + i] = (unsigned char)(bd[i] - '0');

    if (a->neg == b->neg) {
        int carry = 0;
        for (int i = width - 1; i >= 0; i--) {
            int s = A[i] + B[i] + carry;
            R[i] = (unsigned char)(s % 10);
            carry = s / 10;
        }
        neg = a->neg;
    } else {
        const unsigned char *big = A, *small = B;
        int cmp = memcmp(A, B, (size_t)width), borrow = 0;
        if (cmp == 0) {
            /* Exact cancellation: +0 with the ideal exponent. */
            r->kind = DEC_FINITE;
            r->d[0] = '0';
            r->nd = 1;
            r->exp = e;
            return;
        }
        if (cmp < 0) {
            big = B;
            small = A;
        }
        for (int i = width - 1; i >= 0; i--) {
            int s = big[i] - small[i] - borrow;
            borrow = s < 0;
            R[i] = (unsigned char)(s + (borrow ? 10 : 0));
        }
        neg = cmp > 0 ? a->neg : b->neg;
    }

    start = 0;
    while (start < width - 1 && R[start] == 0)
        start++;
    n = width - start;
    if (n > DEC_MAX_DIGITS) {
        const unsigned char *keep = R + start;
        const unsigned char *rest = keep + DEC_MAX_DIGITS;
        int nrest = n - DEC_MAX_DIGITS;
        bool sticky = false, up;
        for (int i = 1; i < nrest; i++)
            sticky = sticky || rest[i] != 0;
        up = rest[0] > 5 || (rest[0] == 5 && (sticky || (keep[DEC_MAX_DIGITS - 1] & 1)));
        e += nrest;
        n = DEC_MAX_DIGITS;
        if (up) {
            int i = start + DEC_MAX_DIGITS - 1;
            while (i >= start && R[i] == 9)
                R[i--] = 0;
            if (i >= start) {
                R[i]++;
            } else {
                /* 99...9 rounded up: 10^34 is 1000...0 (34 digits) one exponent higher. */
                R[start] = 1;
                e++;
            }
        }
    }
    r->kind = DEC_FINITE;
    r->neg = neg;
    r->nd = n;
    r->exp = e;
    for (int i = 0; i < n; i++)
        r->d[i] = (char)('0' + R[start + i]);
}

static bool
dec_to_bson(const dec_t *a, bson_decimal128_t *out)
{
    char digits[DEC_MAX_DIGITS + 8];
    char str[96];
    int nd = a->nd, e = a->exp;

    if (a->kind == DEC_NAN)
        return bson_decimal128_from_string("NaN", out);
    if (a->kind == DEC_INF)
        return bson_decimal128_from_string(a->neg ? "-Infinity" : "Infinity", out);
    memcpy(digits, a->d, (size_t)nd);
    if (e > 6111) {
        /* Clamp: fold the exponent into trailing zeros, or overflow to infinity. */
        if (dec_is_zero(a)) {
            e = 6111;
        } else if (nd + (e - 6111) <= DEC_MAX_DIGITS) {
            while (e > 6111) {
                digits[nd++] = '0';
                e--;
            }
        } else {
            return bson_decimal128_from_string(a->neg ? "-Infinity" : "Infinity", out);
        }
    }
    snprintf(str, sizeof str, "%s%.*sE%d", a->neg ? "-" : "", nd, digits, e);
    return bson_decimal128_from_string(str, out);
}

/* woCompare equality of two values as mongod compares an immutable field: numbers by value
 * across types, strings and symbols by bytes, documents field by field, others by bytes. */
static bool
values_equal(const bson_iter_t *a, const bson_iter_t *b, int depth)
{
    bson_type_t ta = bson_iter_type(a), tb = bson_iter_type(b);

    if (is_number(ta) && is_number(tb)) {
        dec_t x, y;
        if (ta == BSON_TYPE_DOUBLE && tb == BSON_TYPE_DOUBLE) {
            double p = bson_iter_double(a), q = bson_iter_double(b);
            return p == q || (isnan(p) && isnan(q));
        }
        if ((ta == BSON_TYPE_INT32 || ta == BSON_TYPE_INT64) &&
            (tb == BSON_TYPE_INT32 || tb == BSON_TYPE_INT64))
            return bson_iter_as_int64(a) == bson_iter_as_int64(b);
        dec_from_iter(a, DEC_MAX_DIGITS, &x);
        dec_from_iter(b, DEC_MAX_DIGITS, &y);
        return dec_equal(&x, &y);
    }
    if ((ta == BSON_TYPE_UTF8 || ta == BSON_TYPE_SYMBOL) &&
        (tb == BSON_TYPE_UTF8 || tb == BSON_TYPE_SYMBOL)) {
        uint32_t alen = 0, blen = 0;
        const char *x =
            ta == BSON_TYPE_UTF8 ? bson_iter_utf8(a, &alen) : bson_iter_symbol(a, &alen);
        const char *y =
            tb == BSON_TYPE_UTF8 ? bson_iter_utf8(b, &blen) : bson_iter_symbol(b, &blen);
        return bytes_equal(x, alen, y, blen);
    }
    if (ta != tb)
        return false;
    if ((ta == BSON_TYPE_DOCUMENT || ta == BSON_TYPE_ARRAY) && depth < UPD_EQUAL_DEPTH) {
        bson_iter_t ca, cb;
        if (!bson_iter_recurse(a, &ca) || !bson_iter_recurse(b, &cb))
            return false;
        for (;;) {
            bool more_a = bson_iter_next(&ca), more_b = bson_iter_next(&cb);
            if (!more_a || !more_b)
                return more_a == more_b;
            if (bson_iter_key_len(&ca) != bson_iter_key_len(&cb) ||
                memcmp(bson_iter_key(&ca), bson_iter_key(&cb), bson_iter_key_len(&ca)) != 0 ||
                !values_equal(&ca, &cb, depth + 1))
                return false;
        }
    }
    return values_identical(a, b);
}

/* ---------------------------------------------------------------------------------------------
 * Paths and the entries of an operator update.
 */

typedef enum { OP_SET, OP_UNSET, OP_INC } op_t;

static bool
op_from_name(const char *name, op_t *op)
{
    if (strcmp(name, "$set") == 0)
        *op = OP_SET;
    else if (strcmp(name, "$unset") == 0)
        *op = OP_UNSET;
    else if (strcmp(name, "$inc") == 0)
        *op = OP_INC;
    else
        return false;
    return true;
}

/* One field of one operator: {$op: {path: value}}. */
typedef struct {
    op_t op;
    const char *path;
    size_t path_len;
    bson_iter_t value;
} entry_t;

/* Walks the entries of a validated operator update in document order. */
typedef struct {
    bson_iter_t top;
    bson_iter_t field;
    bool in_op;
    op_t op;
} cursor_t;

static void
cursor_init(cursor_t *c, const bson_t *update)
{
    memset(c, 0, sizeof *c);
    bson_iter_init(&c->top, update);
}

static bool
cursor_next(cursor_t *c, entry_t *e)
{
    for (;;) {
        if (c->in_op && bson_iter_next(&c->field)) {
            e->op = c->op;
            e->path = bson_iter_key(&c->field);
            e->path_len = bson_iter_key_len(&c->field);
            e->value = c->field;
            return true;
        }
        c->in_op = false;
        if (!bson_iter_next(&c->top))
            return false;
        if (op_from_name(bson_iter_key(&c->top), &c->op) && BSON_ITER_HOLDS_DOCUMENT(&c->top) &&
            bson_iter_recurse(&c->top, &c->field))
            c->in_op = true;
    }
}

/* Digits only: an array index (leading zeros allowed, as mongod's isNumeric). Large values
 * saturate, so they never meet a real element. */
static bool
parse_index(const char *p, size_t n, uint64_t *out)
{
    uint64_t v = 0;

    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v > (UINT64_MAX - 9) / 10 ? UINT64_MAX : v * 10 + (uint64_t)(p[i] - '0');
    }
    *out = v;
    return true;
}

static bool
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* mongod's cmpPathsAndArrayIndexes: byte order, except that names starting with a digit (and
 * not zero-padded) order numbers by magnitude. Returns <0, 0 or >0. */
static int
cmp_names(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t common = alen < blen ? alen : blen;
    int c;

    if (alen > 0 && blen > 0 && is_digit(a[0]) && is_digit(b[0]) && !(a[0] == '0' && alen > 1) &&
        !(b[0] == '0' && blen > 1)) {
        if (alen != blen)
            return alen < blen ? -1 : 1;
        for (size_t i = 0; i < alen && is_digit(a[i]) && is_digit(b[i]); i++) {
            if (a[i] != b[i])
                return (unsigned char)a[i] < (unsigned char)b[i] ? -1 : 1;
        }
    }
    c = common ? memcmp(a, b, common) : 0;
    if (c != 0)
        return c;
    return alen == blen ? 0 : (alen < blen ? -1 : 1);
}

/* Plain byte order of two strings (std::string's operator<). */
static int
cmp_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t common = alen < blen ? alen : blen;
    int c = common ? memcmp(a, b, common) : 0;

    if (c != 0)
        return c;
    return alen == blen ? 0 : (alen < blen ? -1 : 1);
}

/* True when `pre` is a proper prefix of `path` at a component boundary ("a" of "a.b"). */
static bool
path_is_prefix(const char *pre, size_t pre_len, const char *path, size_t path_len)
{
    return pre_len < path_len && path[pre_len] == '.' && memcmp(pre, path, pre_len) == 0;
}

static bool
path_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen == blen && memcmp(a, b, alen) == 0;
}

/* Checks one update path: no empty components, no more than UPD_MAX_DEPTH of them, no
 * positional operator, no '$'-prefixed top-level field. */
static bool
check_path(const entry_t *e, emu_error_t *err)
{
    const char *p = e->path, *end = e->path + e->path_len;
    int parts = 0, positional = 0;
    bool first_positional = false;

    if (e->path_len == 0)
        return emu_error_set(err, UPD_EMPTY_FIELD_NAME, "An empty update path is not valid.");
    for (;;) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        size_t n = (size_t)((dot ? dot : end) - p);
        if (n == 0)
            return emu_error_set(err, UPD_EMPTY_FIELD_NAME,
                                 "The update path '%s' contains an empty field name, which is "
                                 "not allowed.",
                                 e->path);
        if (n == 1 && p[0] == '$') {
            positional++;
            first_positional = first_positional || parts == 0;
        }
        parts++;
        if (!dot)
            break;
        p = dot + 1;
    }
    if (parts > UPD_MAX_DEPTH)
        return emu_error_set(err, EMU_BAD_VALUE,
                             "The update path '%.64s...' has more than %d components, which "
                             "docdb-emu does not support",
                             e->path, UPD_MAX_DEPTH);
    if (positional > 1)
        return emu_error_set(err, EMU_BAD_VALUE,
                             "Too many positional (i.e. '$') elements found in path '%s'", e->path);
    if (first_positional)
        return emu_error_set(err, EMU_BAD_VALUE,
                             "Cannot have positional (i.e. '$') element in the first position in "
                             "path '%s'",
                             e->path);
    /* Positional and array-filter components anywhere, then a '$' first component. */
    for (p = e->path;;) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        size_t n = (size_t)((dot ? dot : end) - p);
        if ((n == 1 && p[0] == '$') || (n >= 3 && p[0] == '$' && p[1] == '[' && p[n - 1] == ']'))
            return emu_error_set(err, EMU_BAD_VALUE,
                                 "docdb-emu does not support the positional operator in the "
                                 "update path '%s'",
                                 e->path);
        if (!dot)
            break;
        p = dot + 1;
    }
    if (e->path[0] == '$') {
        const char *dot = memchr(e->path, '.', e->path_len);
        int n = (int)(dot ? (size_t)(dot - e->path) : e->path_len);
        return emu_error_set(err, UPD_DOLLAR_PREFIXED_FIELD,
                             "The dollar ($) prefixed field '%.*s' in '%.*s' is not allowed in "
                             "the context of an update's replacement document. Consider using an "
                             "aggregation pipeline with $replaceWith.",
                             n, e->path, n, e->path);
    }
    return true;
}

/* Checks `e` against the entries before it: the same path twice, or one path a prefix of the
 * other, is mongod's ConflictingUpdateOperators. */
static bool
check_conflicts(const bson_t *update, const entry_t *e, emu_error_t *err)
{
    cursor_t c;
    entry_t q;

    cursor_init(&c, update);
    while (cursor_next(&c, &q) && q.path != e->path) {
        if (path_is_prefix(q.path, q.path_len, e->path, e->path_len))
            return emu_error_set(err, UPD_CONFLICTING_OPERATORS,
                                 "Updating the path '%s' would create a conflict at '%s'", e->path,
                                 q.path);
        if (path_equal(q.path, q.path_len, e->path, e->path_len) ||
            path_is_prefix(e->path, e->path_len, q.path, q.path_len))
            return emu_error_set(err, UPD_CONFLICTING_OPERATORS,
                                 "Updating the path '%s' would create a conflict at '%s'", e->path,
                                 e->path);
    }
    return true;
}

static bool
validate_replacement(const bson_t *update, emu_error_t *err)
{
    bson_iter_t it;

    if (!bson_iter_init(&it, update))
        return emu_error_set(err, EMU_BAD_VALUE, "The update document is not valid BSON");
    while (bson_iter_next(&it)) {
        const char *key = bson_iter_key(&it);
        if (key[0] == '$')
            return emu_error_set(err, UPD_DOLLAR_PREFIXED_FIELD,
                                 "The dollar ($) prefixed field '%s' in '%s' is not allowed in "
                                 "the context of an update's replacement document. Consider "
                                 "using an aggregation pipeline with $replaceWith.",
                                 key, key);
    }
    return true;
}

bool
emu_update_is_operator(const bson_t *update)
{
    bson_iter_t it;

    return bson_iter_init(&it, update) && bson_iter_next(&it) && bson_iter_key(&it)[0] == '$';
}

bool
emu_update_validate(const bson_t *update, emu_error_t *err)
{
    bson_iter_t top;

    if (!emu_update_is_operator(update))
        return validate_replacement(update, err);
    if (!bson_iter_init(&top, update))
        return emu_error_set(err, EMU_BAD_VALUE, "The update document is not valid BSON");
    while (bson_iter_next(&top)) {
        const char *name = bson_iter_key(&top);
        bson_iter_t field;
        op_t op;

        if (!op_from_name(name, &op))
            return emu_error_set(err, EMU_FAILED_TO_PARSE,
                                 "Unknown modifier: %s. Expected a valid update modifier or "
                                 "pipeline-style update specified as an array",
                                 name);
        if (!BSON_ITER_HOLDS_DOCUMENT(&top)) {
            char text[256];
            sbuf_t sb;
            sb_init(&sb, text, sizeof text);
            fmt_element(&sb, &top);
            return emu_error_set(err, EMU_FAILED_TO_PARSE,
                                 "Modifiers operate on fields but we found type %s instead. For "
                                 "example: {$mod: {<field>: ...}} not {%s}",
                                 emu_type_name(bson_iter_type(&top)), text);
        }
        if (!bson_iter_recurse(&top, &field))
            return emu_error_set(err, EMU_BAD_VALUE, "The update document is not valid BSON");
        while (bson_iter_next(&field)) {
            entry_t e;
            e.op = op;
            e.path = bson_iter_key(&field);
            e.path_len = bson_iter_key_len(&field);
            e.value = field;
            if (!check_path(&e, err))
                return false;
            if (op == OP_INC && !is_number(bson_iter_type(&field))) {
                char text[256];
                sbuf_t sb;
                sb_init(&sb, text, sizeof text);
                fmt_element(&sb, &field);
                return emu_error_set(err, EMU_TYPE_MISMATCH,
                                     "Cannot increment with non-numeric argument: {%s}", text);
            }
            if (!check_conflicts(update, &e, err))
                return false;
        }
    }
    return true;
}

/* ---------------------------------------------------------------------------------------------
 * Applying operators: the document is rebuilt level by level, following only the branches the
 * update paths name; everything else is copied element by element.
 */

/* How the path component at one depth matched the document: a field name, or an index into an
 * array (where "1" and "01" name the same element). */
typedef struct {
    const char *key;
    size_t key_len;
    bool is_index;
    uint64_t index;
} level_t;

typedef struct {
    const bson_t *update;
    bool has_id;
    bson_iter_t id; /* the original document's _id, for messages and the immutability check */
    level_t levels[UPD_MAX_DEPTH + 1];
    emu_error_t *err;
} apply_ctx_t;

static bool
part_matches_level(const level_t *lv, const char *p, size_t n)
{
    uint64_t v;

    if (lv->is_index)
        return parse_index(p, n, &v) && v == lv->index;
    return path_equal(p, n, lv->key, lv->key_len);
}

/* When the first `depth` components of e's path are the current levels, sets *part to
 * component `depth` and *last to whether it is the final one. */
static bool
entry_at_level(const apply_ctx_t *ctx, const entry_t *e, int depth, const char **part,
               size_t *part_len, bool *last)
{
    const char *p = e->path, *end = e->path + e->path_len;

    for (int d = 0;; d++) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        size_t n = (size_t)((dot ? dot : end) - p);
        if (d == depth) {
            *part = p;
            *part_len = n;
            *last = dot == NULL;
            return true;
        }
        if (!dot || !part_matches_level(&ctx->levels[d], p, n))
            return false;
        p = dot + 1;
    }
}

/* Component `depth` of e's path (which has it). */
static void
entry_part(const entry_t *e, int depth, const char **part, size_t *part_len)
{
    const char *p = e->path, *end = e->path + e->path_len;

    for (int d = 0;; d++) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        if (d == depth || !dot) {
            *part = p;
            *part_len = (size_t)((dot ? dot : end) - p);
            return;
        }
        p = dot + 1;
    }
}

static bool
part_is_child(bool is_array, const char *part, size_t part_len, const char *key, size_t key_len,
              uint64_t idx)
{
    uint64_t v;

    if (is_array)
        return parse_index(part, part_len, &v) && v == idx;
    return path_equal(part, part_len, key, key_len);
}

/* The entries that reach one existing child. */
typedef struct {
    bool leaf; /* an entry ends at the child */
    entry_t leaf_entry;
    bool deeper; /* entries continue below the child */
    entry_t deeper_entry;
    bool creating; /* one of the deeper entries creates fields ($set, $inc) */
    entry_t creating_entry;
} child_match_t;

static bool
ambiguous_index(apply_ctx_t *ctx, const entry_t *a, const entry_t *b)
{
    return emu_error_set(ctx->err, EMU_BAD_VALUE,
                         "The update paths '%s' and '%s' name the same array element, which "
                         "docdb-emu does not support",
                         b->path, a->path);
}

static bool
match_child(apply_ctx_t *ctx, int depth, bool is_array, const char *key, size_t key_len,
            uint64_t idx, child_match_t *m)
{
    cursor_t c;
    entry_t e;

    memset(m, 0, sizeof *m);
    cursor_init(&c, ctx->update);
    while (cursor_next(&c, &e)) {
        const char *part;
        size_t part_len;
        bool last;
        if (!entry_at_level(ctx, &e, depth, &part, &part_len, &last) ||
            !part_is_child(is_array, part, part_len, key, key_len, idx))
            continue;
        if (m->leaf || (last && m->deeper))
            return ambiguous_index(ctx, &e, m->leaf ? &m->leaf_entry : &m->deeper_entry);
        if (last) {
            m->leaf = true;
            m->leaf_entry = e;
            continue;
        }
        if (!m->deeper) {
            m->deeper = true;
            m->deeper_entry = e;
        }
        if (!m->creating && e.op != OP_UNSET) {
            m->creating = true;
            m->creating_entry = e;
        }
    }
    return true;
}

/* True when a sibling before `cur` has the same name (mongod only updates the first). */
static bool
key_seen_before(const bson_iter_t *children, const bson_iter_t *cur)
{
    bson_iter_t it = *children;
    const char *key = bson_iter_key(cur);
    uint32_t len = bson_iter_key_len(cur);

    while (bson_iter_next(&it) && bson_iter_key(&it) != key) {
        if (bson_iter_key_len(&it) == len && memcmp(bson_iter_key(&it), key, len) == 0)
            return true;
    }
    return false;
}

static bool
child_exists(const bson_iter_t *children, const char *name, size_t name_len)
{
    bson_iter_t it;

    if (!children)
        return false;
    it = *children;
    while (bson_iter_next(&it)) {
        if (path_equal(bson_iter_key(&it), bson_iter_key_len(&it), name, name_len))
            return true;
    }
    return false;
}

static bool
too_large(apply_ctx_t *ctx)
{
    return emu_error_set(ctx->err, UPD_DOC_TOO_LARGE,
                         "Resulting document after update is larger than %d", UPD_MAX_BSON);
}

static void
id_text(const apply_ctx_t *ctx, char *buf, size_t cap)
{
    sbuf_t sb;

    sb_init(&sb, buf, cap);
    if (ctx->has_id)
        fmt_element(&sb, &ctx->id);
    else
        sb_printf(&sb, "no id");
}

/* cur + by, as mongod's SafeNum adds. *same is set when the sum is identical to cur (same type
 * and equal value), in which case mongod leaves the field untouched. */
static bool
inc_value(apply_ctx_t *ctx, const bson_iter_t *cur, const bson_iter_t *by, bson_value_t *res,
          bool *same)
{
    bson_type_t tc = bson_iter_type(cur), tb = bson_iter_type(by);

    memset(res, 0, sizeof *res);
    *same = false;
    if (tc == BSON_TYPE_DECIMAL128 || tb == BSON_TYPE_DECIMAL128) {
        dec_t x, y, sum, orig;
        dec_from_iter(by, 15, &x);
        dec_from_iter(cur, 15, &y);
        dec_add(&x, &y, &sum);
        res->value_type = BSON_TYPE_DECIMAL128;
        if (!dec_to_bson(&sum, &res->value.v_decimal128))
            return emu_error_set(ctx->err, EMU_BAD_VALUE, "Failed to apply $inc operations");
        if (tc == BSON_TYPE_DECIMAL128) {
            dec_from_iter(cur, 15, &orig);
            *same = dec_equal(&sum, &orig);
        }
        return true;
    }
    if (tc == BSON_TYPE_DOUBLE || tb == BSON_TYPE_DOUBLE) {
        double x = tc == BSON_TYPE_DOUBLE ? bson_iter_double(cur) : (double)bson_iter_as_int64(cur);
        double y = tb == BSON_TYPE_DOUBLE ? bson_iter_double(by) : (double)bson_iter_as_int64(by);
        res->value_type = BSON_TYPE_DOUBLE;
        res->value.v_double = y + x;
        *same = tc == BSON_TYPE_DOUBLE && res->value.v_double == x;
        return true;
    }
    if (tc == BSON_TYPE_INT32 && tb == BSON_TYPE_INT32) {
        int64_t sum = (int64_t)bson_iter_int32(cur) + bson_iter_int32(by);
        if (sum >= INT32_MIN && sum <= INT32_MAX) {
            res->value_type = BSON_TYPE_INT32;
            res->value.v_int32 = (int32_t)sum;
            *same = res->value.v_int32 == bson_iter_int32(cur);
        } else {
            res->value_type = BSON_TYPE_INT64;
            res->value.v_int64 = sum;
        }
        return true;
    } else {
        int64_t x = bson_iter_as_int64(cur), y = bson_iter_as_int64(by);
        if ((y > 0 && x > INT64_MAX - y) || (y < 0 && x < INT64_MIN - y)) {
            char idbuf[160];
            id_text(ctx, idbuf, sizeof idbuf);
            return emu_error_set(ctx->err, EMU_BAD_VALUE,
                                 "Failed to apply $inc operations to current value ((%s)%" PRId64
                                 ") for document {%s}",
                                 tc == BSON_TYPE_INT32 ? "NumberInt" : "NumberLong", x, idbuf);
        }
        res->value_type = BSON_TYPE_INT64;
        res->value.v_int64 = x + y;
        *same = tc == BSON_TYPE_INT64 && y == 0;
        return true;
    }
}

/* The last element appended to `out` (the one just written), if any was. */
static bool
last_element(const bson_t *out, uint32_t len_before, bson_iter_t *last)
{
    bson_iter_t it;
    bool found = false;

    if (out->len <= len_before || !bson_iter_init(&it, out))
        return false;
    while (bson_iter_next(&it)) {
        *last = it;
        found = true;
    }
    return found;
}

/* After the original _id (`orig`) was rewritten into `out` from `len_before` on: anything but
 * the identical value is a change of an immutable field. */
static bool
check_id_unchanged(apply_ctx_t *ctx, const bson_iter_t *orig, const bson_t *out,
                   uint32_t len_before, const entry_t *by)
{
    bson_iter_t now;

    if (last_element(out, len_before, &now) && values_identical(orig, &now))
        return true;
    return emu_error_set(ctx->err, EMU_IMMUTABLE_FIELD,
                         "Performing an update on the path '%s' would modify the immutable field "
                         "'_id'",
                         by->path);
}

/* Applies the leaf entry `e` to the existing element `cur`, writing the result into `out`. */
static bool
apply_leaf(apply_ctx_t *ctx, const entry_t *e, const bson_iter_t *cur, bool in_array, bson_t *out)
{
    const char *key = bson_iter_key(cur);
    int key_len = (int)bson_iter_key_len(cur);
    bson_value_t sum;
    bool same;

    switch (e->op) {
    case OP_SET:
        return bson_append_iter(out, key, key_len, &e->value) || too_large(ctx);
    case OP_UNSET:
        /* An array element is set to null rather than removed, so that indexes do not move. */
        return !in_array || bson_append_null(out, key, key_len) || too_large(ctx);
    case OP_INC:
        if (!is_number(bson_iter_type(cur))) {
            char idbuf[160];
            id_text(ctx, idbuf, sizeof idbuf);
            return emu_error_set(ctx->err, EMU_TYPE_MISMATCH,
                                 "Cannot apply $inc to a value of non-numeric type. {%s} has the "
                                 "field '%s' of non-numeric type %s",
                                 idbuf, key, emu_type_name(bson_iter_type(cur)));
        }
        if (!inc_value(ctx, cur, &e->value, &sum, &same))
            return false;
        if (same)
            return bson_append_iter(out, key, key_len, cur) || too_large(ctx);
        return bson_append_value(out, key, key_len, &sum) || too_large(ctx);
    }
    return false;
}

static bool apply_level(apply_ctx_t *ctx, int depth, const bson_iter_t *self,
                        const bson_iter_t *children, bool is_array, bson_t *out);

/* Rebuilds the existing container `cur` (a document or an array) with the entries below it. */
static bool
apply_container(apply_ctx_t *ctx, int depth, const bson_iter_t *cur, bson_t *out)
{
    bson_iter_t grand;
    bson_t sub;
    bool child_is_array = BSON_ITER_HOLDS_ARRAY(cur), ok;
    const char *key = bson_iter_key(cur);
    int key_len = (int)bson_iter_key_len(cur);

    if (!bson_iter_recurse(cur, &grand))
        return emu_error_set(ctx->err, EMU_BAD_VALUE, "The document is not valid BSON");
    if (child_is_array ? !bson_append_array_begin(out, key, key_len, &sub)
                       : !bson_append_document_begin(out, key, key_len, &sub))
        return too_large(ctx);
    ok = apply_level(ctx, depth + 1, cur, &grand, child_is_array, &sub);
    if (child_is_array ? !bson_append_array_end(out, &sub) : !bson_append_document_end(out, &sub))
        return ok && too_large(ctx);
    return ok;
}

static bool
cannot_create(apply_ctx_t *ctx, const entry_t *e, int depth, const bson_iter_t *elem)
{
    char text[256];
    const char *part;
    size_t part_len;
    sbuf_t sb;

    entry_part(e, depth, &part, &part_len);
    sb_init(&sb, text, sizeof text);
    if (elem)
        fmt_element(&sb, elem);
    return emu_error_set(ctx->err, UPD_PATH_NOT_VIABLE,
                         "Cannot create field '%.*s' in element {%s}", (int)part_len, part, text);
}

/* Creates, under `out`, the field `name` for the entries whose component `depth` is `name`
 * (none of them reaching an existing element): a leaf value, or a new document. */
static bool
create_child(apply_ctx_t *ctx, int depth, const char *name, size_t name_len, bool index_level,
             uint64_t idx, bson_t *out)
{
    cursor_t c;
    entry_t e, leaf;
    bool have_leaf = false, have_deeper = false;
    bson_t sub;
    bool ok;

    cursor_init(&c, ctx->update);
    while (cursor_next(&c, &e)) {
        const char *part;
        size_t part_len;
        bool last;
        uint64_t v;
        if (e.op == OP_UNSET || !entry_at_level(ctx, &e, depth, &part, &part_len, &last))
            continue;
        if (index_level ? !(parse_index(part, part_len, &v) && v == idx)
                        : !path_equal(part, part_len, name, name_len))
            continue;
        if (have_leaf || (last && have_deeper))
            return ambiguous_index(ctx, &e, have_leaf ? &leaf : &e);
        if (last) {
            have_leaf = true;
            leaf = e;
        } else {
            have_deeper = true;
        }
    }
    if (have_leaf) {
        /* $set writes its value; $inc of a missing field writes the increment as it is. */
        return bson_append_iter(out, name, (int)name_len, &leaf.value) || too_large(ctx);
    }
    ctx->levels[depth].key = name;
    ctx->levels[depth].key_len = name_len;
    ctx->levels[depth].is_index = index_level;
    ctx->levels[depth].index = idx;
    if (!bson_append_document_begin(out, name, (int)name_len, &sub))
        return too_large(ctx);
    ok = apply_level(ctx, depth + 1, NULL, NULL, false, &sub);
    if (!bson_append_document_end(out, &sub))
        return ok && too_large(ctx);
    return ok;
}

/* New fields of a document level, in mongod's order of application. */
static bool
create_fields(apply_ctx_t *ctx, int depth, const bson_iter_t *children, bson_t *out)
{
    const char *last_name = NULL;
    size_t last_len = 0;

    for (;;) {
        const char *best = NULL;
        size_t best_len = 0;
        cursor_t c;
        entry_t e;

        cursor_init(&c, ctx->update);
        while (cursor_next(&c, &e)) {
            const char *part;
            size_t part_len;
            bool last;
            if (e.op == OP_UNSET || !entry_at_level(ctx, &e, depth, &part, &part_len, &last))
                continue;
            if (last_name && cmp_names(part, part_len, last_name, last_len) <= 0)
                continue;
            if (best && cmp_names(part, part_len, best, best_len) >= 0)
                continue;
            if (child_exists(children, part, part_len))
                continue;
            best = part;
            best_len = part_len;
        }
        if (!best)
            return true;
        if (!create_child(ctx, depth, best, best_len, false, 0, out))
            return false;
        last_name = best;
        last_len = best_len;
    }
}

/* New elements of an array level: indexes past the end, padded with nulls as mongod does. */
static bool
create_elements(apply_ctx_t *ctx, int depth, const bson_iter_t *self, uint64_t count, bson_t *out)
{
    bool have_last = false;
    uint64_t last_idx = 0;

    for (;;) {
        bool found = false;
        uint64_t best = 0;
        cursor_t c;
        entry_t e;

        cursor_init(&c, ctx->update);
        while (cursor_next(&c, &e)) {
            const char *part;
            size_t part_len;
            bool last;
            uint64_t v;
            if (e.op == OP_UNSET || !entry_at_level(ctx, &e, depth, &part, &part_len, &last))
                continue;
            if (!parse_index(part, part_len, &v))
                return cannot_create(ctx, &e, depth, self);
            if (v < count || (have_last && v <= last_idx) || (found && v >= best))
                continue;
            found = true;
            best = v;
        }
        if (!found)
            return true;
        if (best - count > UPD_MAX_PADDING)
            return emu_error_set(ctx->err, UPD_CANNOT_BACKFILL_ARRAY,
                                 "can't backfill more than %d elements", UPD_MAX_PADDING);
        for (; count < best; count++) {
            char buf[16];
            const char *key;
            size_t len = bson_uint32_to_string((uint32_t)count, &key, buf, sizeof buf);
            if (!bson_append_null(out, key, (int)len))
                return too_large(ctx);
        }
        {
            char buf[16];
            const char *key;
            size_t len = bson_uint32_to_string((uint32_t)best, &key, buf, sizeof buf);
            if (!create_child(ctx, depth, key, len, true, best, out))
                return false;
        }
        count = best + 1;
        have_last = true;
        last_idx = best;
    }
}

/* Writes into `out` the container whose children `children` iterates (NULL for a container being
 * created), with every entry that reaches depth `depth` applied. `self` is the container's own
 * element (NULL at the top), for messages. */
static bool
apply_level(apply_ctx_t *ctx, int depth, const bson_iter_t *self, const bson_iter_t *children,
            bool is_array, bson_t *out)
{
    uint64_t count = 0;

    if (children) {
        bson_iter_t it = *children;
        while (bson_iter_next(&it)) {
            const char *key = bson_iter_key(&it);
            size_t key_len = bson_iter_key_len(&it);
            uint64_t idx = count++;
            bool is_id = depth == 0 && ctx->has_id && path_equal(key, key_len, "_id", 3) &&
                         bson_iter_key(&it) == bson_iter_key(&ctx->id);
            uint32_t len_before = out->len;
            child_match_t m;

            if (!match_child(ctx, depth, is_array, key, key_len, idx, &m))
                return false;
            if ((!m.leaf && !m.deeper) || (!is_array && key_seen_before(children, &it))) {
                if (!bson_append_iter(out, NULL, 0, &it))
                    return too_large(ctx);
                continue;
            }
            if (m.leaf) {
                if (!apply_leaf(ctx, &m.leaf_entry, &it, is_array, out))
                    return false;
            } else if (BSON_ITER_HOLDS_DOCUMENT(&it) || BSON_ITER_HOLDS_ARRAY(&it)) {
                ctx->levels[depth].key = key;
                ctx->levels[depth].key_len = key_len;
                ctx->levels[depth].is_index = is_array;
                ctx->levels[depth].index = idx;
                if (!apply_container(ctx, depth, &it, out))
                    return false;
            } else if (m.creating) {
                return cannot_create(ctx, &m.creating_entry, depth + 1, &it);
            } else if (!bson_append_iter(out, NULL, 0, &it)) {
                return too_large(ctx);
            }
            if (is_id && !check_id_unchanged(ctx, &it, out, len_before,
                                             m.leaf ? &m.leaf_entry : &m.deeper_entry))
                return false;
        }
    }
    if (is_array)
        return create_elements(ctx, depth, self, count, out);
    return create_fields(ctx, depth, children, out);
}

/* Reverses p[lo, hi). */
static void
reverse_bytes(uint8_t *p, size_t lo, size_t hi)
{
    while (lo + 1 < hi) {
        uint8_t t = p[lo];
        p[lo] = p[hi - 1];
        p[hi - 1] = t;
        lo++;
        hi--;
    }
}

/* Moves the _id element of `b` to the front, in place (mongod keeps _id first). */
static void
move_id_first(bson_t *b)
{
    bson_iter_t it;
    uint8_t *data = (uint8_t *)bson_get_data(b); /* b is ours: its buffer is writable */
    size_t start = 0, end = 0;
    bool found = false;

    if (!bson_iter_init(&it, b))
        return;
    while (bson_iter_next(&it)) {
        if (found) {
            end = (size_t)((const uint8_t *)bson_iter_key(&it) - data) - 1;
            break;
        }
        if (strcmp(bson_iter_key(&it), "_id") == 0) {
            found = true;
            start = (size_t)((const uint8_t *)bson_iter_key(&it) - data) - 1;
            end = b->len - 1;
        }
    }
    if (!found || start == 4)
        return;
    /* Rotate [4, end) so that [start, end) comes first: three reversals. */
    reverse_bytes(data, 4, start);
    reverse_bytes(data, start, end);
    reverse_bytes(data, 4, end);
}

static bool
find_id(const bson_t *doc, bson_iter_t *id)
{
    if (!bson_iter_init(id, doc))
        return false;
    while (bson_iter_next(id)) {
        if (strcmp(bson_iter_key(id), "_id") == 0)
            return true;
    }
    return false;
}

static bool
apply_operators(const bson_t *doc, const bson_t *update, bson_t *out, emu_error_t *err)
{
    apply_ctx_t ctx;
    bson_iter_t top;

    memset(&ctx, 0, sizeof ctx);
    ctx.update = update;
    ctx.err = err;
    ctx.has_id = find_id(doc, &ctx.id);
    if (!bson_iter_init(&top, doc))
        return emu_error_set(err, EMU_BAD_VALUE, "The document is not valid BSON");
    return apply_level(&ctx, 0, NULL, &top, false, out);
}

static bool
apply_replacement(const bson_t *doc, const bson_t *repl, bson_t *out, emu_error_t *err)
{
    bson_iter_t did, rid;
    bool doc_has_id = find_id(doc, &did), repl_has_id = find_id(repl, &rid);

    if (doc_has_id && repl_has_id && !values_equal(&did, &rid, 0)) {
        char text[256];
        sbuf_t sb;
        sb_init(&sb, text, sizeof text);
        fmt_element(&sb, &rid);
        return emu_error_set(err, EMU_IMMUTABLE_FIELD,
                             "After applying the update, the (immutable) field '_id' was found to "
                             "have been altered to %s",
                             text);
    }
    /* The original _id stays unless the replacement brings its own (equal) one. */
    if (doc_has_id && !repl_has_id && !bson_append_iter(out, NULL, 0, &did))
        return emu_error_set(err, UPD_DOC_TOO_LARGE,
                             "Resulting document after update is larger than %d", UPD_MAX_BSON);
    if (!bson_concat(out, repl))
        return emu_error_set(err, UPD_DOC_TOO_LARGE,
                             "Resulting document after update is larger than %d", UPD_MAX_BSON);
    return true;
}

bool
emu_update_apply(const bson_t *doc, const bson_t *update, bson_t *out, bool *modified,
                 emu_error_t *err)
{
    bool ok;

    if (modified)
        *modified = false;
    ok = emu_update_validate(update, err);
    if (ok)
        ok = emu_update_is_operator(update) ? apply_operators(doc, update, out, err)
                                            : apply_replacement(doc, update, out, err);
    if (ok) {
        move_id_first(out);
        if (out->len > UPD_MAX_BSON)
            ok = emu_error_set(err, UPD_DOC_TOO_LARGE,
                               "Resulting document after update is larger than %d", UPD_MAX_BSON);
    }
    if (!ok) {
        bson_reinit(out);
        return false;
    }
    if (modified)
        *modified = !bson_equal(doc, out);
    return true;
}

/* ---------------------------------------------------------------------------------------------
 * Upserts: the equality conditions of the filter become the base document.
 */

typedef bool (*eq_cb_t)(void *arg, const char *path, size_t path_len, const bson_iter_t *value);

/* True for {$op: ...} (not a DBRef, whose $ref/$id/$db keys are values). */
static bool
is_operator_object(const bson_iter_t *value)
{
    bson_iter_t it;
    const char *k;

    if (!BSON_ITER_HOLDS_DOCUMENT(value) || !bson_iter_recurse(value, &it) || !bson_iter_next(&it))
        return false;
    k = bson_iter_key(&it);
    return k[0] == '$' && strcmp(k, "$ref") != 0 && strcmp(k, "$id") != 0 && strcmp(k, "$db") != 0;
}

static bool
is_elem_match(const bson_iter_t *value)
{
    bson_iter_t it;

    return BSON_ITER_HOLDS_DOCUMENT(value) && bson_iter_recurse(value, &it) &&
           bson_iter_next(&it) && strcmp(bson_iter_key(&it), "$elemMatch") == 0;
}

/* Calls cb for each equality condition in the filter whose elements `it` iterates, in filter
 * order; stops (returning false) as soon as cb returns false. */
static bool
eq_walk(bson_iter_t it, int depth, eq_cb_t cb, void *arg)
{
    while (bson_iter_next(&it)) {
        const char *key = bson_iter_key(&it);
        size_t key_len = bson_iter_key_len(&it);
        bson_iter_t sub, clause;
        uint32_t n = 0;

        if (strcmp(key, "$and") == 0 || strcmp(key, "$or") == 0) {
            if (!BSON_ITER_HOLDS_ARRAY(&it) || depth >= UPD_MAX_DEPTH ||
                !bson_iter_recurse(&it, &sub))
                continue;
            if (key[1] == 'o') {
                /* A one-clause $or is that clause (mongod's canonical form). */
                bson_iter_t count = sub;
                while (bson_iter_next(&count))
                    n++;
                if (n != 1)
                    continue;
            }
            while (bson_iter_next(&sub)) {
                if (BSON_ITER_HOLDS_DOCUMENT(&sub) && bson_iter_recurse(&sub, &clause) &&
                    !eq_walk(clause, depth + 1, cb, arg))
                    return false;
            }
            continue;
        }
        if (key[0] == '$')
            continue;
        if (BSON_ITER_HOLDS_REGEX(&it))
            continue;
        if (!is_operator_object(&it)) {
            if (!cb(arg, key, key_len, &it))
                return false;
            continue;
        }
        if (!bson_iter_recurse(&it, &sub))
            continue;
        while (bson_iter_next(&sub)) {
            const char *op = bson_iter_key(&sub);
            bson_iter_t elems;
            if (strcmp(op, "$eq") == 0) {
                if (!cb(arg, key, key_len, &sub))
                    return false;
            } else if (strcmp(op, "$in") == 0 && BSON_ITER_HOLDS_ARRAY(&sub) &&
                       bson_iter_recurse(&sub, &elems) && bson_iter_next(&elems)) {
                bson_iter_t only = elems;
                if (!bson_iter_next(&elems) && !BSON_ITER_HOLDS_REGEX(&only) &&
                    !cb(arg, key, key_len, &only))
                    return false;
            } else if (strcmp(op, "$all") == 0 && BSON_ITER_HOLDS_ARRAY(&sub) &&
                       bson_iter_recurse(&sub, &elems)) {
                while (bson_iter_next(&elems)) {
                    if (!BSON_ITER_HOLDS_REGEX(&elems) && !is_elem_match(&elems) &&
                        !cb(arg, key, key_len, &elems))
                        return false;
                }
            }
        }
    }
    return true;
}

typedef struct {
    const bson_t *filter;
    bool replacement; /* only conditions on _id count */
    emu_error_t *err;
    bool failed;
    /* check pass */
    const char *target;
    size_t target_len;
    const char *target_id; /* identity of the condition: its value element's key pointer */
    /* selection pass */
    bool have_last;
    const char *last;
    size_t last_len;
    bool have_best;
    const char *best;
    size_t best_len;
    bson_iter_t best_value;
} eq_ctx_t;

static bool
eq_relevant(const eq_ctx_t *q, const char *path, size_t path_len)
{
    return !q->replacement || path_equal(path, path_len, "_id", 3) ||
           path_is_prefix("_id", 3, path, path_len);
}

static bool
eq_conflict_cb(void *arg, const char *path, size_t path_len, const bson_iter_t *value)
{
    eq_ctx_t *q = arg;

    if (bson_iter_key(value) == q->target_id)
        return false; /* reached the condition being checked */
    if (!eq_relevant(q, path, path_len))
        return true;
    if (path_equal(path, path_len, q->target, q->target_len)) {
        q->failed = true;
        emu_error_set(q->err, UPD_NOT_SINGLE_VALUE_FIELD,
                      "cannot infer query fields to set, path '%.*s' is matched twice",
                      (int)path_len, path);
        return false;
    }
    if (path_is_prefix(path, path_len, q->target, q->target_len) ||
        path_is_prefix(q->target, q->target_len, path, path_len)) {
        bool longer = path_len > q->target_len;
        q->failed = true;
        emu_error_set(q->err, UPD_NOT_SINGLE_VALUE_FIELD,
                      "cannot infer query fields to set, both paths '%.*s' and '%.*s' are matched",
                      (int)(longer ? path_len : q->target_len), longer ? path : q->target,
                      (int)(longer ? q->target_len : path_len), longer ? q->target : path);
        return false;
    }
    return true;
}

static bool
eq_check_cb(void *arg, const char *path, size_t path_len, const bson_iter_t *value)
{
    eq_ctx_t *q = arg;
    bson_iter_t top;

    if (!eq_relevant(q, path, path_len))
        return true;
    if (q->replacement && path_len > 3) {
        q->failed = true;
        emu_error_set(q->err, UPD_NOT_EXACT_VALUE_FIELD,
                      "field at '_id' must be exactly specified, field at sub-path '%.*s'found",
                      (int)path_len, path);
        return false;
    }
    if (BSON_ITER_HOLDS_UNDEFINED(value)) {
        q->failed = true;
        emu_error_set(q->err, EMU_BAD_VALUE, "cannot compare to undefined");
        return false;
    }
    q->target = path;
    q->target_len = path_len;
    q->target_id = bson_iter_key(value);
    bson_iter_init(&top, q->filter);
    eq_walk(top, 0, eq_conflict_cb, q);
    return !q->failed;
}

static bool
eq_select_cb(void *arg, const char *path, size_t path_len, const bson_iter_t *value)
{
    eq_ctx_t *q = arg;

    if (!eq_relevant(q, path, path_len))
        return true;
    if (q->have_last && cmp_bytes(path, path_len, q->last, q->last_len) <= 0)
        return true;
    if (q->have_best && cmp_bytes(path, path_len, q->best, q->best_len) >= 0)
        return true;
    q->have_best = true;
    q->best = path;
    q->best_len = path_len;
    q->best_value = *value;
    return true;
}

/* Builds a document from (path, value) pairs given in byte order of their paths, none a prefix
 * of another: the paths sharing a prefix are then consecutive, so each level is open once. */
typedef struct {
    bson_t *root;
    int open;
    bson_t stack[UPD_MAX_DEPTH];
    const char *names[UPD_MAX_DEPTH];
    size_t name_lens[UPD_MAX_DEPTH];
} tree_builder_t;

static bson_t *
tb_top(tree_builder_t *tb)
{
    return tb->open ? &tb->stack[tb->open - 1] : tb->root;
}

static void
tb_close_to(tree_builder_t *tb, int level)
{
    while (tb->open > level) {
        tb->open--;
        bson_append_document_end(tb_top(tb), &tb->stack[tb->open]);
    }
}

static bool
tb_add(tree_builder_t *tb, const char *path, size_t path_len, const bson_iter_t *value,
       emu_error_t *err)
{
    const char *parts[UPD_MAX_DEPTH];
    size_t lens[UPD_MAX_DEPTH];
    const char *p = path, *end = path + path_len;
    int n = 0, common = 0;

    for (;;) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        if (n == UPD_MAX_DEPTH)
            return emu_error_set(err, EMU_BAD_VALUE,
                                 "The query path '%.64s...' has more than %d components, which "
                                 "docdb-emu does not support",
                                 path, UPD_MAX_DEPTH);
        parts[n] = p;
        lens[n++] = (size_t)((dot ? dot : end) - p);
        if (!dot)
            break;
        p = dot + 1;
    }
    while (common < tb->open && common < n - 1 &&
           path_equal(tb->names[common], tb->name_lens[common], parts[common], lens[common]))
        common++;
    tb_close_to(tb, common);
    for (int i = common; i < n - 1; i++) {
        if (!bson_append_document_begin(tb_top(tb), parts[i], (int)lens[i], &tb->stack[tb->open]))
            return emu_error_set(err, UPD_UPSERT_TOO_LARGE, "Document to upsert is larger than %d",
                                 UPD_MAX_BSON);
        tb->names[tb->open] = parts[i];
        tb->name_lens[tb->open] = lens[i];
        tb->open++;
    }
    if (!bson_append_iter(tb_top(tb), parts[n - 1], (int)lens[n - 1], value))
        return emu_error_set(err, UPD_UPSERT_TOO_LARGE, "Document to upsert is larger than %d",
                             UPD_MAX_BSON);
    return true;
}

static bool
build_upsert_base(const bson_t *filter, bool replacement, bson_t *base, emu_error_t *err)
{
    eq_ctx_t q;
    bson_iter_t top;
    tree_builder_t tb;
    bool ok = true;

    memset(&q, 0, sizeof q);
    q.filter = filter;
    q.replacement = replacement;
    q.err = err;
    if (!bson_iter_init(&top, filter))
        return emu_error_set(err, EMU_BAD_VALUE, "The filter is not valid BSON");
    eq_walk(top, 0, eq_check_cb, &q);
    if (q.failed)
        return false;

    memset(&tb, 0, sizeof tb);
    tb.root = base;
    for (;;) {
        q.have_best = false;
        bson_iter_init(&top, filter);
        eq_walk(top, 0, eq_select_cb, &q);
        if (!q.have_best)
            break;
        if (!tb_add(&tb, q.best, q.best_len, &q.best_value, err)) {
            ok = false;
            break;
        }
        q.have_last = true;
        q.last = q.best;
        q.last_len = q.best_len;
    }
    tb_close_to(&tb, 0);
    return ok;
}

bool
emu_update_upsert_doc(const bson_t *filter, const bson_t *update, bson_t *out, emu_error_t *err)
{
    bson_t base;
    bson_iter_t id;
    bool ok, is_op;

    if (!emu_update_validate(update, err)) {
        bson_reinit(out);
        return false;
    }
    is_op = emu_update_is_operator(update);
    bson_init(&base);
    ok = build_upsert_base(filter, !is_op, &base, err);
    if (ok)
        ok = is_op ? apply_operators(&base, update, out, err)
                   : apply_replacement(&base, update, out, err);
    bson_destroy(&base);
    if (ok) {
        move_id_first(out);
        if (find_id(out, &id) && (BSON_ITER_HOLDS_ARRAY(&id) || BSON_ITER_HOLDS_REGEX(&id) ||
                                  BSON_ITER_HOLDS_UNDEFINED(&id)))
            ok = emu_error_set(err, UPD_INVALID_ID_FIELD, "The '_id' value cannot be of type %s",
                               emu_type_name(bson_iter_type(&id)));
        else if (out->len > UPD_MAX_BSON)
            ok = emu_error_set(err, UPD_UPSERT_TOO_LARGE, "Document to upsert is larger than %d",
                               UPD_MAX_BSON);
    }
    if (!ok)
        bson_reinit(out);
    return ok;
}

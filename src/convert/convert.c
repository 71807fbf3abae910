/* convert.c: BSON values to typed row values and to plain JSON text (convert.h, docs/types.md),
 * exactly: 64-bit doubles as their shortest round-trip text, decimal128 as plain text, dates by
 * integer calendar arithmetic over the whole int64 range. No I/O, no per-value heap allocation. */
#include "convert/convert.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Documents and arrays nested deeper than this (counting the value converted as level 1) are
 * rendered as null, so that recursion stays bounded whatever the input (MongoDB documents
 * support at most 100 levels; a 16 MiB BSON could otherwise nest millions deep). */
#define MAX_DEPTH 200

#define MS_PER_DAY INT64_C(86400000)

static void json_value(const bson_iter_t *it, dc_buf_t *buf, dc_convert_stats_t *st, int depth);

static void
count_invalid(dc_convert_stats_t *st, size_t n)
{
    if (st)
        st->invalid_utf8 += n;
}

/* ---- Text primitives ------------------------------------------------------------------- */

static void
append_i64(dc_buf_t *buf, int64_t v)
{
    char tmp[24];
    char *p = tmp + sizeof tmp;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    dc_buf_append(buf, p, (size_t)(tmp + sizeof tmp - p));
}

static void
append_oid_hex(dc_buf_t *buf, const bson_oid_t *oid)
{
    static const char hex[] = "0123456789abcdef";
    char s[24];
    for (int i = 0; i < 12; i++) {
        s[2 * i] = hex[oid->bytes[i] >> 4];
        s[2 * i + 1] = hex[oid->bytes[i] & 15];
    }
    dc_buf_append(buf, s, sizeof s);
}

/* Appends n bytes of text as is (no quotes, no escaping), each invalid UTF-8 byte replaced by
 * U+FFFD. */
static void
append_utf8(dc_buf_t *buf, const char *str, size_t n, dc_convert_stats_t *st)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, start = 0, bad = 0;
    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = dc_utf8_seq(s + i, n - i);
        if (k) {
            i += k;
            continue;
        }
        dc_buf_append(buf, s + start, i - start);
        dc_buf_append(buf, "\xEF\xBF\xBD", 3);
        bad++;
        start = ++i;
    }
    dc_buf_append(buf, s + start, n - start);
    count_invalid(st, bad);
}

static void
append_json_string(dc_buf_t *buf, const char *s, size_t n, dc_convert_stats_t *st)
{
    count_invalid(st, dc_buf_append_json_string(buf, s, n));
}

/* ---- Numbers --------------------------------------------------------------------------- */

/* Writes into out (at least 32 bytes) the shortest "%.Ng" text of the finite d that strtod reads
 * back as d, and returns its length. For a normal double, a decimal of at most 15 digits that
 * rounds to it is what %.15g prints, so trying 15, 16, 17 finds the shortest; subnormals hold
 * fewer digits and are searched from 1. Assumes the "C" LC_NUMERIC locale (the connector never
 * calls setlocale). */
static int
shortest_double(double d, char *out)
{
    int n;
    /* Fast path, exact: a value of at most 6 decimals below 1e15 (prices, scores, most data)
     * is m / 10^k for the smallest k with an integral m < 10^15; the division is correctly
     * rounded, so "m with the point k digits in" reads back to d, and it is what %.15g would
     * print (fixed notation, no trailing zeros). */
    double a = fabs(d);
    if (a >= 1e-4 && a < 1e15) {
        static const double pow10[] = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6};
        for (int k = 0; k <= 6; k++) {
            double x = a * pow10[k];
            if (x >= 1e15) /* at most 15 significant digits, as %.15g */
                break;
            /* floor(x + 0.5) for 0 <= x < 1e15, without a libm call: the conversion
             * truncates, exactly, since the value fits in 64 bits. */
            double m = (double)(uint64_t)(x + 0.5);
            if (m / pow10[k] == a && m >= 1) {
                char digits[24];
                int len = 0;
                uint64_t u = (uint64_t)m;
                char rev[24];
                do {
                    rev[len++] = (char)('0' + u % 10);
                    u /= 10;
                } while (u);
                for (int q = 0; q < len; q++)
                    digits[q] = rev[len - 1 - q];
                char *o = out;
                if (d < 0)
                    *o++ = '-';
                if (len <= k) { /* 0.00ddd */
                    *o++ = '0';
                    *o++ = '.';
                    for (int z = len; z < k; z++)
                        *o++ = '0';
                    memcpy(o, digits, (size_t)len);
                    o += len;
                } else {
                    memcpy(o, digits, (size_t)(len - k));
                    o += len - k;
                    if (k) {
                        *o++ = '.';
                        memcpy(o, digits + len - k, (size_t)k);
                        o += k;
                    }
                }
                *o = '\0';
                return (int)(o - out);
            }
        }
    }
    int p = d != 0 && fabs(d) < DBL_MIN ? 1 : 15;
    for (; p < 17; p++) {
        n = snprintf(out, 32, "%.*g", p, d);
        if (strtod(out, NULL) == d)
            return n;
    }
    return snprintf(out, 32, "%.17g", d);
}

void
dc_convert_double_json(dc_buf_t *buf, double d)
{
    if (isnan(d)) {
        dc_buf_append(buf, "\"NaN\"", 5);
        return;
    }
    if (isinf(d)) {
        if (d > 0)
            dc_buf_append(buf, "\"Infinity\"", 10);
        else
            dc_buf_append(buf, "\"-Infinity\"", 11);
        return;
    }
    char tmp[40];
    int n = shortest_double(d, tmp);
    /* "2" would read back as an integer: integral doubles keep a ".0" (or their exponent). */
    if (!strpbrk(tmp, ".e")) {
        tmp[n++] = '.';
        tmp[n++] = '0';
    }
    dc_buf_append(buf, tmp, (size_t)n);
}

static void
append_zeros(dc_buf_t *buf, long n)
{
    static const char zeros[] = "0000000000000000";
    while (n > 0) {
        long k = n < 16 ? n : 16;
        dc_buf_append(buf, zeros, (size_t)k);
        n -= k;
    }
}

/* Appends the finite number written in s (an optional sign, digits with an optional '.', an
 * optional exponent 'e'/'E', as printed by %g or bson_decimal128_to_string) in plain notation,
 * keeping every digit of the coefficient: "1.50E+3" -> "1500", "1E-7" -> "0.0000001",
 * "1.0E-7" -> "0.00000010". When the exponent exceeds 100 in magnitude the scientific form is
 * kept, normalised as "d.dddE+x". */
static void
append_plain_number(dc_buf_t *buf, const char *s)
{
    const char *p = s;
    bool neg = false;
    if (*p == '-' || *p == '+')
        neg = *p++ == '-';
    char digits[64];
    size_t nd = 0;
    long frac = 0;
    bool point = false;
    for (; (*p >= '0' && *p <= '9') || *p == '.'; p++) {
        if (*p == '.') {
            point = true;
        } else if (nd < sizeof digits) {
            digits[nd++] = *p;
            frac += point;
        }
    }
    if (nd == 0 || (*p != 'e' && *p != 'E')) {
        dc_buf_append_str(buf, s); /* already plain */
        return;
    }
    p++;
    bool eneg = *p == '-';
    if (*p == '-' || *p == '+')
        p++;
    long e = 0;
    for (; *p >= '0' && *p <= '9'; p++)
        if (e < 1000000)
            e = e * 10 + (*p - '0');
    if (eneg)
        e = -e;

    /* Leading zeros carry nothing (the coefficient's digits after the point stay counted). */
    size_t lead = 0;
    while (lead + 1 < nd && digits[lead] == '0')
        lead++;
    const char *dg = digits + lead;
    size_t n = nd - lead;

    if (neg)
        dc_buf_append_char(buf, '-');
    if (e > 100 || e < -100) {
        /* e is the exponent of the first digit only for a normalised mantissa; recompute it. */
        long adj = e - frac + (long)n - 1;
        dc_buf_append_char(buf, dg[0]);
        if (n > 1) {
            dc_buf_append_char(buf, '.');
            dc_buf_append(buf, dg + 1, n - 1);
        }
        dc_buf_append_char(buf, 'E');
        dc_buf_append_char(buf, adj < 0 ? '-' : '+');
        append_i64(buf, adj < 0 ? -adj : adj);
        return;
    }
    long exp = e - frac; /* the value is dg * 10^exp */
    bool zero = n == 1 && dg[0] == '0';
    if (exp >= 0) {
        dc_buf_append(buf, dg, n);
        if (!zero)
            append_zeros(buf, exp);
        return;
    }
    long pos = (long)n + exp; /* digits before the point */
    if (pos > 0) {
        dc_buf_append(buf, dg, (size_t)pos);
        dc_buf_append_char(buf, '.');
        dc_buf_append(buf, dg + pos, n - (size_t)pos);
    } else {
        dc_buf_append(buf, "0.", 2);
        append_zeros(buf, -pos);
        dc_buf_append(buf, dg, n);
    }
}

void
dc_convert_double_decimal(dc_buf_t *buf, double d)
{
    if (isnan(d)) {
        dc_buf_append_str(buf, "NaN");
        return;
    }
    if (isinf(d)) {
        dc_buf_append_str(buf, d > 0 ? "Infinity" : "-Infinity");
        return;
    }
    char tmp[40];
    shortest_double(d, tmp);
    append_plain_number(buf, tmp);
}

static void
append_decimal128(dc_buf_t *buf, const bson_iter_t *it)
{
    bson_decimal128_t dec;
    char s[BSON_DECIMAL128_STRING];
    if (!bson_iter_decimal128(it, &dec)) {
        dc_buf_append_str(buf, "NaN");
        return;
    }
    bson_decimal128_to_string(&dec, s);
    const char *p = s[0] == '-' ? s + 1 : s;
    if (*p == 'N') /* libbson may print a negative NaN as "-NaN" */
        dc_buf_append_str(buf, "NaN");
    else if (*p == 'I')
        dc_buf_append_str(buf, s);
    else
        append_plain_number(buf, s);
}

/* ---- Dates ----------------------------------------------------------------------------- */

/* Proleptic Gregorian calendar <-> days since 1970-01-01 (H. Hinnant's algorithms), exact for
 * every day an int64 of milliseconds can reach. */
static void
civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;                                      /* [0, 146096] */
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* [0, 365] */
    int64_t mp = (5 * doy + 2) / 153;                                    /* [0, 11] */
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int64_t
days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int
days_in_month(int64_t y, int m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))
        return 29;
    return dm[m - 1];
}

static char *
put_digits(char *p, int64_t v, int width)
{
    char *end = p + width;
    for (char *q = end; q > p; v /= 10)
        *--q = (char)('0' + v % 10);
    return end;
}

void
dc_format_datetime(int64_t ms, char *out)
{
    int64_t days = ms / MS_PER_DAY, rem = ms % MS_PER_DAY;
    if (rem < 0) {
        rem += MS_PER_DAY;
        days--;
    }
    int64_t y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    char *p = out;
    if (y >= 0 && y <= 9999) {
        p = put_digits(p, y, 4);
    } else {
        /* ISO 8601 expanded year: a sign and at least five digits. */
        *p++ = y < 0 ? '-' : '+';
        int64_t a = y < 0 ? -y : y;
        int w = 5;
        for (int64_t t = 100000; t <= a && w < 18; t *= 10)
            w++;
        p = put_digits(p, a, w);
    }
    *p++ = '-';
    p = put_digits(p, m, 2);
    *p++ = '-';
    p = put_digits(p, d, 2);
    *p++ = 'T';
    p = put_digits(p, rem / 3600000, 2);
    *p++ = ':';
    p = put_digits(p, rem / 60000 % 60, 2);
    *p++ = ':';
    p = put_digits(p, rem / 1000 % 60, 2);
    *p++ = '.';
    p = put_digits(p, rem % 1000, 3);
    *p++ = 'Z';
    *p = '\0';
}

/* Reads exactly n digits at *p. */
static bool
read_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return true;
}

bool
dc_parse_datetime(const char *s, int64_t *ms)
{
    if (!s)
        return false;
    const char *p = s;
    int64_t year = 0;
    if (*p == '+' || *p == '-') {
        /* Expanded year, as dc_format_datetime writes it outside 0..9999: 4 to 9 digits. */
        bool neg = *p++ == '-';
        int n = 0;
        for (; p[n] >= '0' && p[n] <= '9'; n++)
            if (n < 9)
                year = year * 10 + (p[n] - '0');
        if (n < 4 || n > 9)
            return false;
        p += n;
        if (neg)
            year = -year;
    } else {
        int y4;
        if (!read_digits(&p, 4, &y4))
            return false;
        year = y4;
    }
    int mon, day;
    if (*p++ != '-' || !read_digits(&p, 2, &mon) || *p++ != '-' || !read_digits(&p, 2, &day))
        return false;
    if (mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon))
        return false;
    int64_t total = days_from_civil(year, mon, day);
    int64_t msofday = 0, offset = 0;
    if (*p) {
        int hh, mi, ss, frac = 0;
        if (*p != 'T' && *p != 't' && *p != ' ')
            return false;
        p++;
        if (!read_digits(&p, 2, &hh) || *p++ != ':' || !read_digits(&p, 2, &mi) || *p++ != ':' ||
            !read_digits(&p, 2, &ss))
            return false;
        if (hh > 23 || mi > 59 || ss > 59)
            return false;
        if (*p == '.') {
            /* Any number of fractional digits; the milliseconds are kept, the rest dropped. */
            p++;
            int n = 0;
            for (; p[n] >= '0' && p[n] <= '9'; n++)
                if (n < 3)
                    frac = frac * 10 + (p[n] - '0');
            if (n == 0)
                return false;
            for (int i = n; i < 3; i++)
                frac *= 10;
            p += n;
        }
        msofday = ((int64_t)hh * 3600 + mi * 60 + ss) * 1000 + frac;
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            bool neg = *p++ == '-';
            int oh, om;
            if (!read_digits(&p, 2, &oh))
                return false;
            if (*p == ':')
                p++;
            if (!read_digits(&p, 2, &om) || oh > 23 || om > 59)
                return false;
            offset = ((int64_t)oh * 60 + om) * 60000;
            if (neg)
                offset = -offset;
        }
        if (*p)
            return false;
    }
    /* Local time minus the offset is UTC. Fold the time of day into the days so that the
     * remainder has the sign of the result: then days * MS_PER_DAY lies between 0 and the
     * result, and overflows only when the result itself is beyond an int64 of milliseconds. */
    int64_t rest = msofday - offset;
    while (rest < 0) {
        rest += MS_PER_DAY;
        total--;
    }
    while (rest >= MS_PER_DAY) {
        rest -= MS_PER_DAY;
        total++;
    }
    if (total < 0 && rest > 0) {
        rest -= MS_PER_DAY;
        total++;
    }
    if (__builtin_mul_overflow(total, MS_PER_DAY, &total) ||
        __builtin_add_overflow(total, rest, &total))
        return false;
    if (ms)
        *ms = total;
    return true;
}

/* ---- JSON ------------------------------------------------------------------------------ */

/* Appends the members of the document or array under child (positioned before its first
 * element) at nesting level depth. */
static void
json_members(bson_iter_t *child, bool array, dc_buf_t *buf, dc_convert_stats_t *st, int depth)
{
    bool first = true;
    dc_buf_append_char(buf, array ? '[' : '{');
    while (bson_iter_next(child)) {
        if (!first)
            dc_buf_append_char(buf, ',');
        first = false;
        if (!array) {
            append_json_string(buf, bson_iter_key(child), bson_iter_key_len(child), st);
            dc_buf_append_char(buf, ':');
        }
        json_value(child, buf, st, depth);
    }
    dc_buf_append_char(buf, array ? ']' : '}');
}

static void
json_container(const bson_iter_t *it, bool array, dc_buf_t *buf, dc_convert_stats_t *st, int depth)
{
    bson_iter_t child;
    if (depth >= MAX_DEPTH || !bson_iter_recurse(it, &child)) {
        dc_buf_append(buf, "null", 4);
        return;
    }
    json_members(&child, array, buf, st, depth + 1);
}

/* Appends '{' (first member) or ',' then "key": for a member of a fixed-shape object (the key
 * is plain ASCII). */
static void
json_key(dc_buf_t *buf, const char *key, bool first)
{
    dc_buf_append(buf, first ? "{\"" : ",\"", 2);
    dc_buf_append_str(buf, key);
    dc_buf_append(buf, "\":", 2);
}

static void
json_value(const bson_iter_t *it, dc_buf_t *buf, dc_convert_stats_t *st, int depth)
{
    uint32_t len = 0;
    switch (bson_iter_type(it)) {
    case BSON_TYPE_DOUBLE:
        dc_convert_double_json(buf, bson_iter_double(it));
        break;
    case BSON_TYPE_UTF8: {
        const char *s = bson_iter_utf8(it, &len);
        append_json_string(buf, s, len, st);
        break;
    }
    case BSON_TYPE_DOCUMENT:
        json_container(it, false, buf, st, depth);
        break;
    case BSON_TYPE_ARRAY:
        json_container(it, true, buf, st, depth);
        break;
    case BSON_TYPE_BINARY: {
        bson_subtype_t sub;
        const uint8_t *data = NULL;
        bson_iter_binary(it, &sub, &len, &data);
        dc_buf_append_char(buf, '"');
        dc_buf_append_base64(buf, data, len);
        dc_buf_append_char(buf, '"');
        break;
    }
    case BSON_TYPE_OID:
        dc_buf_append_char(buf, '"');
        append_oid_hex(buf, bson_iter_oid(it));
        dc_buf_append_char(buf, '"');
        break;
    case BSON_TYPE_BOOL:
        if (bson_iter_bool(it))
            dc_buf_append(buf, "true", 4);
        else
            dc_buf_append(buf, "false", 5);
        break;
    case BSON_TYPE_DATE_TIME: {
        char tmp[32];
        dc_format_datetime(bson_iter_date_time(it), tmp);
        dc_buf_append_char(buf, '"');
        dc_buf_append_str(buf, tmp);
        dc_buf_append_char(buf, '"');
        break;
    }
    case BSON_TYPE_REGEX: {
        const char *options = NULL;
        const char *pattern = bson_iter_regex(it, &options);
        json_key(buf, "pattern", true);
        append_json_string(buf, pattern, strlen(pattern), st);
        json_key(buf, "options", false);
        append_json_string(buf, options ? options : "", options ? strlen(options) : 0, st);
        dc_buf_append_char(buf, '}');
        break;
    }
    case BSON_TYPE_DBPOINTER: {
        const char *ns = NULL;
        const bson_oid_t *oid = NULL;
        bson_iter_dbpointer(it, &len, &ns, &oid);
        json_key(buf, "$ref", true);
        append_json_string(buf, ns ? ns : "", ns ? len : 0, st);
        json_key(buf, "$id", false);
        dc_buf_append_char(buf, '"');
        if (oid)
            append_oid_hex(buf, oid);
        dc_buf_append(buf, "\"}", 2);
        break;
    }
    case BSON_TYPE_CODE: {
        const char *code = bson_iter_code(it, &len);
        append_json_string(buf, code, len, st);
        break;
    }
    case BSON_TYPE_SYMBOL: {
        const char *sym = bson_iter_symbol(it, &len);
        append_json_string(buf, sym, len, st);
        break;
    }
    case BSON_TYPE_CODEWSCOPE: {
        uint32_t scope_len = 0;
        const uint8_t *scope = NULL;
        const char *code = bson_iter_codewscope(it, &len, &scope_len, &scope);
        json_key(buf, "code", true);
        append_json_string(buf, code, len, st);
        json_key(buf, "scope", false);
        bson_t b;
        bson_iter_t child;
        if (depth + 1 < MAX_DEPTH && scope && bson_init_static(&b, scope, scope_len) &&
            bson_iter_init(&child, &b))
            json_members(&child, false, buf, st, depth + 2);
        else
            dc_buf_append(buf, "null", 4);
        dc_buf_append_char(buf, '}');
        break;
    }
    case BSON_TYPE_INT32:
        append_i64(buf, bson_iter_int32(it));
        break;
    case BSON_TYPE_INT64:
        append_i64(buf, bson_iter_int64(it));
        break;
    case BSON_TYPE_TIMESTAMP: {
        uint32_t t, i;
        bson_iter_timestamp(it, &t, &i);
        json_key(buf, "t", true);
        append_i64(buf, t);
        json_key(buf, "i", false);
        append_i64(buf, i);
        dc_buf_append_char(buf, '}');
        break;
    }
    case BSON_TYPE_DECIMAL128:
        dc_buf_append_char(buf, '"');
        append_decimal128(buf, it);
        dc_buf_append_char(buf, '"');
        break;
    case BSON_TYPE_MINKEY:
        dc_buf_append_str(buf, "{\"$minKey\":1}");
        break;
    case BSON_TYPE_MAXKEY:
        dc_buf_append_str(buf, "{\"$maxKey\":1}");
        break;
    case BSON_TYPE_UNDEFINED:
    case BSON_TYPE_NULL:
    case BSON_TYPE_EOD:
    default:
        dc_buf_append(buf, "null", 4);
        break;
    }
}

void
dc_convert_json(const bson_iter_t *it, dc_buf_t *buf, dc_convert_stats_t *st)
{
    json_value(it, buf, st, 0);
}

void
dc_convert_id(const bson_iter_t *it, dc_buf_t *buf, dc_convert_stats_t *st)
{
    uint32_t len = 0;
    const char *s;
    switch (bson_iter_type(it)) {
    case BSON_TYPE_OID:
        append_oid_hex(buf, bson_iter_oid(it));
        break;
    case BSON_TYPE_UTF8:
        s = bson_iter_utf8(it, &len);
        append_utf8(buf, s, len, st);
        break;
    case BSON_TYPE_SYMBOL:
        s = bson_iter_symbol(it, &len);
        append_utf8(buf, s, len, st);
        break;
    case BSON_TYPE_CODE:
        s = bson_iter_code(it, &len);
        append_utf8(buf, s, len, st);
        break;
    default:
        json_value(it, buf, st, 0);
        break;
    }
}

/* ---- Typed values ---------------------------------------------------------------------- */

dc_type_t
dc_convert_natural_type(bson_type_t t)
{
    switch (t) {
    case BSON_TYPE_UTF8:
    case BSON_TYPE_SYMBOL:
    case BSON_TYPE_CODE:
    case BSON_TYPE_OID:
        return DC_TYPE_STRING;
    case BSON_TYPE_INT32:
        return DC_TYPE_INT;
    case BSON_TYPE_INT64:
        return DC_TYPE_LONG;
    case BSON_TYPE_DOUBLE:
        return DC_TYPE_DOUBLE;
    case BSON_TYPE_DECIMAL128:
        return DC_TYPE_DECIMAL;
    case BSON_TYPE_BOOL:
        return DC_TYPE_BOOLEAN;
    case BSON_TYPE_DATE_TIME:
        return DC_TYPE_UTC_DATETIME;
    case BSON_TYPE_BINARY:
        return DC_TYPE_BINARY;
    case BSON_TYPE_DOCUMENT:
    case BSON_TYPE_ARRAY:
    case BSON_TYPE_TIMESTAMP:
    case BSON_TYPE_REGEX:
    case BSON_TYPE_DBPOINTER:
    case BSON_TYPE_CODEWSCOPE:
    case BSON_TYPE_MINKEY:
    case BSON_TYPE_MAXKEY:
        return DC_TYPE_JSON;
    case BSON_TYPE_NULL:
    case BSON_TYPE_UNDEFINED:
    case BSON_TYPE_EOD:
    default:
        return DC_TYPE_NULL;
    }
}

/* The offset scheme: while a row is being built, a text or binary value's bytes are appended to
 * buf, which may be reallocated by the next value. So v.s.ptr holds the byte OFFSET of the value
 * in buf->data, cast through uintptr_t, and dc_convert_finish_row replaces it with
 * buf->data + offset once the row is complete. Each such value is followed in buf by a NUL byte
 * (not counted in v.s.len), so text values are also C strings. */
static bool
is_buffered(dc_type_t t)
{
    return t == DC_TYPE_STRING || t == DC_TYPE_JSON || t == DC_TYPE_DECIMAL ||
           t == DC_TYPE_UTC_DATETIME || t == DC_TYPE_BINARY;
}

static void
end_buffered(dc_value_t *out, dc_type_t type, dc_buf_t *buf, size_t start)
{
    out->type = type;
    out->v.s.ptr = (const char *)(uintptr_t)start;
    out->v.s.len = buf->len - start;
    dc_buf_append_char(buf, '\0'); /* counted in buf->len: the next value starts after it */
}

void
dc_convert_value(const bson_iter_t *it, dc_type_t target, dc_buf_t *buf, dc_value_t *out,
                 dc_convert_stats_t *st)
{
    dc_convert_value_ex(it, target, buf, out, st, false);
}

void
dc_convert_value_ex(const bson_iter_t *it, dc_type_t target, dc_buf_t *buf, dc_value_t *out,
                    dc_convert_stats_t *st, bool no_date_text)
{
    bson_type_t bt = bson_iter_type(it);
    size_t start = buf->len;
    out->type = DC_TYPE_NULL;
    memset(&out->v, 0, sizeof out->v);
    if (bt == BSON_TYPE_NULL || bt == BSON_TYPE_UNDEFINED || bt == BSON_TYPE_EOD)
        return;

    /* A target the value cannot be held in exactly is a caller's bug (the engine joins the
     * column type with the value's natural type first): such a value comes out as NULL. */
    switch (target) {
    case DC_TYPE_BOOLEAN:
        if (bt == BSON_TYPE_BOOL) {
            out->type = DC_TYPE_BOOLEAN;
            out->v.b = bson_iter_bool(it);
        }
        break;
    case DC_TYPE_INT:
        if (bt == BSON_TYPE_INT32) {
            out->type = DC_TYPE_INT;
            out->v.i = bson_iter_int32(it);
        }
        break;
    case DC_TYPE_LONG:
        if (bt == BSON_TYPE_INT32 || bt == BSON_TYPE_INT64) {
            out->type = DC_TYPE_LONG;
            out->v.i = bt == BSON_TYPE_INT32 ? bson_iter_int32(it) : bson_iter_int64(it);
        }
        break;
    case DC_TYPE_DOUBLE:
        if (bt == BSON_TYPE_DOUBLE || bt == BSON_TYPE_INT32) {
            out->type = DC_TYPE_DOUBLE;
            out->v.d = bt == BSON_TYPE_DOUBLE ? bson_iter_double(it) : bson_iter_int32(it);
        }
        break;
    case DC_TYPE_DECIMAL:
        if (bt == BSON_TYPE_INT32)
            append_i64(buf, bson_iter_int32(it));
        else if (bt == BSON_TYPE_INT64)
            append_i64(buf, bson_iter_int64(it));
        else if (bt == BSON_TYPE_DOUBLE)
            dc_convert_double_decimal(buf, bson_iter_double(it));
        else if (bt == BSON_TYPE_DECIMAL128)
            append_decimal128(buf, it);
        else
            break;
        end_buffered(out, target, buf, start);
        break;
    case DC_TYPE_UTC_DATETIME:
        if (bt == BSON_TYPE_DATE_TIME) {
            char tmp[32];
            out->ms = bson_iter_date_time(it);
            if (!no_date_text) {
                dc_format_datetime(out->ms, tmp);
                dc_buf_append_str(buf, tmp);
            }
            end_buffered(out, target, buf, start);
        }
        break;
    case DC_TYPE_BINARY:
        if (bt == BSON_TYPE_BINARY) {
            bson_subtype_t sub;
            uint32_t len = 0;
            const uint8_t *data = NULL;
            bson_iter_binary(it, &sub, &len, &data);
            dc_buf_append(buf, data, len);
            end_buffered(out, target, buf, start);
        }
        break;
    case DC_TYPE_STRING:
        dc_convert_id(it, buf, st);
        end_buffered(out, target, buf, start);
        break;
    case DC_TYPE_JSON:
        json_value(it, buf, st, 0);
        end_buffered(out, target, buf, start);
        break;
    default:
        break;
    }
}

void
dc_convert_finish_row(dc_value_t *values, size_t n, const dc_buf_t *buf)
{
    for (size_t i = 0; i < n; i++) {
        if (!is_buffered(values[i].type))
            continue;
        uintptr_t off = (uintptr_t)values[i].v.s.ptr;
        values[i].v.s.ptr = buf->data ? buf->data + off : "";
    }
}

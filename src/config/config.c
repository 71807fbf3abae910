/* config.c: configuration.json: JSON text to a validated dc_config_t (every check happens here,
 * before any connection), the libmongoc URI built with setters, and a masked description. Must not
 * connect, write files, or let a password reach mongoc_uri_new, a log line or an error message. */
#include "config.h"
#include "core/mem.h"

#include "core/buf.h"
#include "core/log.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_KEYS       100
#define MAX_FILE_BYTES (1024 * 1024)
#define SHOW_MAX       40 /* bytes of a value quoted in a message */

enum {
    KEY_HOSTNAME,
    KEY_PORT,
    KEY_USERNAME,
    KEY_PASSWORD,
    KEY_DATABASE,
    KEY_URI,
    KEY_TLS,
    KEY_TLS_CA_FILE,
    KEY_TLS_ALLOW_INVALID_CERTIFICATES,
    KEY_TLS_ALLOW_INVALID_HOSTNAMES,
    KEY_AUTH_MECHANISM,
    KEY_AUTH_SOURCE,
    KEY_REPLICA_SET,
    KEY_READ_PREFERENCE,
    KEY_DIRECT_CONNECTION,
    KEY_COLLECTIONS,
    KEY_CURSOR_FIELD,
    KEY_START_DATE,
    KEY_BATCH_SIZE,
    KEY_CHECKPOINT_INTERVAL,
    KEY_CURSOR_LOOKBACK_SECONDS,
    KEY_COUNT
};

static const dc_config_key_t keys[KEY_COUNT] = {
    [KEY_HOSTNAME] = {"hostname", "string", NULL, false,
                      "Host name or IP address of the server or cluster endpoint (IPv6 as ::1 or "
                      "[::1]). Required unless uri is given."},
    [KEY_PORT] = {"port", "integer", "27017", false, "TCP port, 1 to 65535."},
    [KEY_USERNAME] = {"username", "string", NULL, false,
                      "Database user. Required unless uri is given (then it overrides the URI's)."},
    [KEY_PASSWORD] = {"password", "string", NULL, true,
                      "The user's password, taken literally (no URL escaping). Required unless uri "
                      "is given (then it overrides the URI's). Never logged."},
    [KEY_DATABASE] = {"database", "string", NULL, false,
                      "Database to replicate. Required unless uri has a /database path."},
    [KEY_URI] = {"uri", "string", NULL, true,
                 "A full mongodb:// or mongodb+srv:// connection string instead of hostname and "
                 "port. Never logged."},
    [KEY_TLS] = {"tls", "boolean", "true", false, "Connect with TLS."},
    [KEY_TLS_CA_FILE] = {"tls_ca_file", "file", NULL, false,
                         "PEM file of the certificate authorities to trust, e.g. Amazon's "
                         "global-bundle.pem. Default: the system's trust store."},
    [KEY_TLS_ALLOW_INVALID_CERTIFICATES] = {"tls_allow_invalid_certificates", "boolean", "false",
                                            false,
                                            "Skip verification of the server's certificate. "
                                            "Insecure: the connection is open to interception."},
    [KEY_TLS_ALLOW_INVALID_HOSTNAMES] = {"tls_allow_invalid_hostnames", "boolean", "false", false,
                                         "Accept a certificate issued for another host name (e.g. "
                                         "through an SSH tunnel). Insecure."},
    [KEY_AUTH_MECHANISM] = {"auth_mechanism", "string", "SCRAM-SHA-1", false,
                            "SCRAM-SHA-1, SCRAM-SHA-256, MONGODB-AWS, MONGODB-X509 or PLAIN."},
    [KEY_AUTH_SOURCE] = {"auth_source", "string", "admin", false,
                         "Database that holds the user's credentials."},
    [KEY_REPLICA_SET] = {"replica_set", "string", NULL, false,
                         "Replica set name (rs0 on DocumentDB); enables discovery of the cluster's "
                         "members."},
    [KEY_READ_PREFERENCE] = {"read_preference", "string", "primary", false,
                             "primary, primaryPreferred, secondary, secondaryPreferred or "
                             "nearest."},
    [KEY_DIRECT_CONNECTION] = {"direct_connection", "boolean", "true unless replica_set is set",
                               false,
                               "Talk only to the given host, without discovering other members."},
    [KEY_COLLECTIONS] = {"collections", "list", NULL, false,
                         "Comma-separated collection names to replicate. Default: every collection "
                         "of the database."},
    [KEY_CURSOR_FIELD] = {"cursor_field", "string", "updated_at", false,
                          "Field holding each document's last-modified time, for incremental "
                          "syncs."},
    [KEY_START_DATE] = {"start_date", "datetime", "1990-01-01T00:00:00Z", false,
                        "Initial value of the cursor: an ISO-8601 date or date-time (UTC unless an "
                        "offset is given)."},
    [KEY_BATCH_SIZE] = {"batch_size", "integer", "10000", false,
                        "Documents per server batch, 1 to 100000."},
    [KEY_CHECKPOINT_INTERVAL] = {"checkpoint_interval", "integer", "1000", false,
                                 "Records between checkpoints, 1 to 10000000."},
    [KEY_CURSOR_LOOKBACK_SECONDS] = {"cursor_lookback_seconds", "integer", "0", false,
                                     "Seconds subtracted from the saved cursor on each sync, to "
                                     "catch late writes; 0 to 31536000."},
};

static const struct {
    long long min, max;
} int_range[KEY_COUNT] = {
    [KEY_PORT] = {1, 65535},
    [KEY_BATCH_SIZE] = {1, 100000},
    [KEY_CHECKPOINT_INTERVAL] = {1, 10000000},
    [KEY_CURSOR_LOOKBACK_SECONDS] = {0, 31536000},
};

static const char *const mechanisms[] = {"SCRAM-SHA-1", "SCRAM-SHA-256", "MONGODB-AWS",
                                         "MONGODB-X509", "PLAIN"};

static const struct {
    const char *name;
    mongoc_read_mode_t mode;
} read_modes[] = {
    {"primary", MONGOC_READ_PRIMARY},     {"primaryPreferred", MONGOC_READ_PRIMARY_PREFERRED},
    {"secondary", MONGOC_READ_SECONDARY}, {"secondaryPreferred", MONGOC_READ_SECONDARY_PREFERRED},
    {"nearest", MONGOC_READ_NEAREST},
};

#define DEFAULT_START_DATE_MS INT64_C(631152000000) /* 1990-01-01T00:00:00Z */

const dc_config_key_t *
dc_config_keys(size_t *n)
{
    if (n)
        *n = KEY_COUNT;
    return keys;
}

/* ---- small helpers ---------------------------------------------------------------------- */

/* bson_iter_t is over-aligned, so an array of it needs a wrapper. */
typedef struct {
    bson_iter_t it;
} slot_t;

typedef struct {
    const char *origin;
    dc_error_t *err;
    slot_t slot[KEY_COUNT];
    bool present[KEY_COUNT]; /* in the file */
    bool given[KEY_COUNT];   /* in the file with a value that is not empty */
} parse_t;

static bool failf(const char *origin, dc_error_t *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool
failf(const char *origin, dc_error_t *err, const char *fmt, ...)
{
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return dc_error_set(err, DC_ERR_CONFIG, "%s: %s", origin, msg);
}

static void
free_secret(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

static bool
is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void
trim(const char **s, size_t *len)
{
    while (*len > 0 && is_space(**s)) {
        (*s)++;
        (*len)--;
    }
    while (*len > 0 && is_space((*s)[*len - 1]))
        (*len)--;
}

/* 'text' for a message: at most SHOW_MAX bytes (cut at a character boundary), control
 * characters as '?'. Only for values that are not secret. */
static void
show_text(const char *s, size_t len, char *out, size_t n)
{
    dc_buf_t b;
    size_t cut = len;
    if (cut > SHOW_MAX) {
        cut = SHOW_MAX;
        while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
            cut--;
    }
    dc_buf_init(&b);
    dc_buf_append_char(&b, '\'');
    for (size_t i = 0; i < cut; i++) {
        unsigned char c = (unsigned char)s[i];
        dc_buf_append_char(&b, (c < 0x20 || c == 0x7f) ? '?' : (char)c);
    }
    if (cut < len)
        dc_buf_append_str(&b, "...");
    dc_buf_append_char(&b, '\'');
    snprintf(out, n, "%s", b.data);
    dc_buf_cleanup(&b);
}

/* The shortest text that reads back as d. */
static void
show_double(double d, char *out, size_t n)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, n, "%.*g", prec, d);
        if (strtod(out, NULL) == d)
            return;
    }
}

/* What a JSON value was, for "must be X, not Y" messages. */
static void
show_value(const bson_iter_t *it, bool secret, char *out, size_t n)
{
    switch (bson_iter_type(it)) {
    case BSON_TYPE_UTF8: {
        uint32_t len;
        const char *s = bson_iter_utf8(it, &len);
        if (secret)
            snprintf(out, n, "that string");
        else
            show_text(s, len, out, n);
        break;
    }
    case BSON_TYPE_INT32:
        snprintf(out, n, "%d", (int)bson_iter_int32(it));
        break;
    case BSON_TYPE_INT64:
        snprintf(out, n, "%lld", (long long)bson_iter_int64(it));
        break;
    case BSON_TYPE_DOUBLE:
        show_double(bson_iter_double(it), out, n);
        break;
    case BSON_TYPE_BOOL:
        snprintf(out, n, "%s", bson_iter_bool(it) ? "true" : "false");
        break;
    case BSON_TYPE_DOCUMENT:
        snprintf(out, n, "an object");
        break;
    case BSON_TYPE_ARRAY:
        snprintf(out, n, "an array");
        break;
    case BSON_TYPE_NULL:
        snprintf(out, n, "null");
        break;
    default:
        snprintf(out, n, "an extended-JSON value");
        break;
    }
}

static bool
type_error(parse_t *p, int key, const char *expected)
{
    char what[128];
    show_value(&p->slot[key].it, keys[key].secret, what, sizeof what);
    return failf(p->origin, p->err, "%s: must be %s, not %s", keys[key].name, expected, what);
}

/* ---- JSON text ---------------------------------------------------------------------------- */

/* Line and column (1-based, in characters) of byte offset pos. */
static void
line_col(const char *text, size_t len, size_t pos, size_t *line, size_t *col)
{
    *line = 1;
    *col = 1;
    if (pos > len)
        pos = len;
    for (size_t i = 0; i < pos; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else if (((unsigned char)text[i] & 0xC0) != 0x80) {
            (*col)++;
        }
    }
}

static bool
json_fail_at(const char *origin, dc_error_t *err, const char *text, size_t len, size_t pos,
             const char *why)
{
    size_t line, col;
    line_col(text, len, pos, &line, &col);
    return failf(origin, err, "invalid JSON at line %zu, column %zu: %s", line, col, why);
}

/* Offset of the first byte that is not valid UTF-8, or len. */
static size_t
first_bad_utf8(const char *text, size_t len)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            n = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 3;
            lo = c == 0xE0 ? 0xA0 : 0x80;
            hi = c == 0xED ? 0x9F : 0xBF;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 4;
            lo = c == 0xF0 ? 0x90 : 0x80;
            hi = c == 0xF4 ? 0x8F : 0xBF;
        } else {
            return i;
        }
        if (i + n > len || s[i + 1] < lo || s[i + 1] > hi)
            return i;
        for (size_t k = 2; k < n; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return i;
        i += n;
    }
    return len;
}

/* Is the number token s[0..n) outside what libbson stores exactly (an integer beyond int64, which
 * libbson 1.23 may wrap silently, or a float that overflows)? */
static bool
number_out_of_range(const char *s, size_t n)
{
    bool neg = n > 0 && s[0] == '-';
    const char *d = s + neg;
    size_t nd = n - neg;
    if (memchr(s, '.', n) || memchr(s, 'e', n) || memchr(s, 'E', n)) {
        char tmp[64];
        if (n >= sizeof tmp)
            return false;
        memcpy(tmp, s, n);
        tmp[n] = '\0';
        return isinf(strtod(tmp, NULL));
    }
    while (nd > 1 && *d == '0') {
        d++;
        nd--;
    }
    if (nd != 19)
        return nd > 19;
    return memcmp(d, neg ? "9223372036854775808" : "9223372036854775807", 19) > 0;
}

/* Walks the JSON text lexically from its first '{': sets *end to the offset just after the
 * matching '}' (or len) and *bad_number to the offset of the first out-of-range number (or len). */
static void
scan_json(const char *text, size_t len, size_t start, size_t *end, size_t *bad_number)
{
    int depth = 0;
    size_t i = start;
    *end = len;
    *bad_number = len;
    while (i < len) {
        char c = text[i];
        if (c == '"') {
            for (i++; i < len && text[i] != '"'; i++)
                if (text[i] == '\\')
                    i++;
            i++;
        } else if (c == '{' || c == '[') {
            depth++;
            i++;
        } else if (c == '}' || c == ']') {
            depth--;
            i++;
            if (depth <= 0) {
                *end = i;
                return;
            }
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t b = i;
            while (i < len && strchr("+-.eE0123456789", text[i]) && text[i] != '\0')
                i++;
            if (*bad_number == len && number_out_of_range(text + b, i - b))
                *bad_number = b;
        } else {
            i++;
        }
    }
}

static const char *
jsonsl_reason(const char *code)
{
    static const struct {
        const char *code, *why;
    } reasons[] = {
        {"TRAILING_COMMA", "a comma before '}' or ']' (trailing comma)"},
        {"STRAY_TOKEN", "unexpected character (a missing or extra comma?)"},
        {"CANT_INSERT", "unexpected value (a missing comma or colon?)"},
        {"MISSING_TOKEN", "a value or key is missing here"},
        {"SPECIAL_EXPECTED", "expected a value: a string in double quotes, a number, true, false "
                             "or null"},
        {"SPECIAL_INCOMPLETE", "incomplete value (expected true, false, null or a number)"},
        {"INVALID_NUMBER", "invalid number"},
        {"HKEY_EXPECTED", "expected a key in double quotes"},
        {"VALUE_EXPECTED", "expected a value after ':'"},
        {"BRACKET_MISMATCH", "a '}' or ']' that does not match its opening bracket"},
        {"WEIRD_WHITESPACE", "control character (write a tab or line break in a string as \\t "
                             "or \\n)"},
        {"ESCAPE_INVALID", "invalid escape sequence in a string (write a backslash as \\\\)"},
        {"UESCAPE_TOOSHORT", "a \\u escape needs four hexadecimal digits"},
        {"INVALID_CODEPOINT", "invalid \\u escape"},
        {"ESCAPE_OUTSIDE_STRING", "a backslash outside a string"},
        {"KEY_OUTSIDE_OBJECT", "a ':' outside an object"},
        {"STRING_OUTSIDE_CONTAINER", "a string outside the object"},
        {"FOUND_NULL_BYTE", "a NUL byte"},
        {"LEVELS_EXCEEDED", "nested too deeply"},
        {"GARBAGE_TRAILING", "unexpected text after the object"},
    };
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
        if (strcmp(code, reasons[i].code) == 0)
            return reasons[i].why;
    return "syntax error";
}

/* Explains a bson_new_from_json failure with a line number, without echoing libbson's text
 * (which may quote values). */
static bool
json_error(const char *origin, dc_error_t *err, const char *text, size_t len, const bson_error_t *e)
{
    const char *msg = e->message, *p;
    if (strncmp(msg, "Got parse error at", 18) == 0 && (p = strstr(msg, ", position ")) != NULL) {
        char code[40] = "";
        const char *q;
        size_t pos = strtoul(p + 11, NULL, 10);
        if ((q = strstr(p, ": \"")) != NULL) {
            size_t n = strcspn(q + 3, "\"");
            if (n < sizeof code) {
                memcpy(code, q + 3, n);
                code[n] = '\0';
            }
        }
        if (strcmp(code, "TRAILING_COMMA") == 0) {
            /* Point at the comma, not at the bracket after it. */
            size_t c = pos < len ? pos : len;
            while (c > 0 && text[c - 1] != ',')
                c--;
            if (c > 0)
                pos = c - 1;
        }
        return json_fail_at(origin, err, text, len, pos, jsonsl_reason(code));
    }
    if (strstr(msg, "Incomplete JSON")) {
        size_t end = len;
        while (end > 0 && is_space(text[end - 1]))
            end--;
        return json_fail_at(origin, err, text, len, end ? end - 1 : 0,
                            "unexpected end of the file (a missing '}' or '\"'?)");
    }
    if (strstr(msg, "UTF8") || strstr(msg, "UTF-8")) {
        size_t bad = first_bad_utf8(text, len);
        if (bad < len)
            return json_fail_at(origin, err, text, len, bad,
                                "invalid UTF-8 (save the file as UTF-8)");
        return failf(origin, err, "invalid JSON: invalid UTF-8 (save the file as UTF-8)");
    }
    if (strstr(msg, "out of range")) {
        size_t end, bad;
        scan_json(text, len, 0, &end, &bad);
        if (bad < len)
            return json_fail_at(origin, err, text, len, bad, "number out of range");
        return failf(origin, err, "invalid JSON: a number is out of range");
    }
    return failf(origin, err,
                 "invalid JSON: unsupported or malformed extended-JSON value (an object whose "
                 "keys start with '$')");
}

static const char *
json_kind(char c)
{
    switch (c) {
    case '[':
        return "an array";
    case '"':
        return "a string";
    case 't':
    case 'f':
        return "a boolean";
    case 'n':
        return "null";
    default:
        return (c == '-' || (c >= '0' && c <= '9')) ? "a number" : "not JSON";
    }
}

/* Zeroes a document's bytes (they hold the password) and destroys it. */
static void
destroy_secret_doc(bson_t *doc)
{
    if (doc) {
        explicit_bzero((void *)bson_get_data(doc), doc->len);
        bson_destroy(doc);
    }
}

static bool
parse_json(const char *text, size_t len, const char *origin, bson_t **out, dc_error_t *err)
{
    bson_error_t e;
    size_t start = 0, end, bad;
    *out = NULL;
    if (len > MAX_FILE_BYTES)
        return failf(origin, err, "too large (%zu bytes; at most %d)", len, MAX_FILE_BYTES);
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
        text += 3; /* a UTF-8 byte order mark */
        len -= 3;
    }
    while (start < len && is_space(text[start]))
        start++;
    if (start == len)
        return failf(origin, err,
                     "the file is empty; expected a JSON object such as "
                     "{\"hostname\": \"...\", ...}");
    if (text[start] != '{') {
        if (strcmp(json_kind(text[start]), "not JSON") == 0)
            return json_fail_at(origin, err, text, len, start,
                                "expected a JSON object starting with '{'");
        return failf(origin, err, "the top level must be a JSON object {...}, not %s",
                     json_kind(text[start]));
    }
    bson_t *doc = bson_new_from_json((const uint8_t *)text, (ssize_t)len, &e);
    if (!doc) {
        bool r = json_error(origin, err, text, len, &e);
        explicit_bzero(&e, sizeof e);
        return r;
    }
    scan_json(text, len, start, &end, &bad);
    if (bad < end) {
        destroy_secret_doc(doc);
        return json_fail_at(origin, err, text, len, bad, "number out of range");
    }
    while (end < len && is_space(text[end]))
        end++;
    if (end < len) {
        destroy_secret_doc(doc);
        return json_fail_at(origin, err, text, len, end,
                            "unexpected text after the closing '}' of the object");
    }
    *out = doc;
    return true;
}

/* ---- keys and values -------------------------------------------------------------------- */

static int
find_key(const char *name)
{
    for (int i = 0; i < KEY_COUNT; i++)
        if (strcmp(keys[i].name, name) == 0)
            return i;
    return -1;
}

/* Edit distance, case-insensitive, for "did you mean" (both at most 63 bytes). */
static size_t
edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), prev[64], cur[64];
    if (la > 63 || lb > 63)
        return 99;
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = prev[j - 1] +
                         (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, (lb + 1) * sizeof cur[0]);
    }
    return prev[lb];
}

static void
warn_unknown_key(const char *origin, const char *name)
{
    char shown[128];
    const char *best = NULL;
    size_t best_d = 3;
    show_text(name, strlen(name), shown, sizeof shown);
    for (int i = 0; i < KEY_COUNT; i++) {
        size_t d = edit_distance(name, keys[i].name);
        if (d < best_d) {
            best_d = d;
            best = keys[i].name;
        }
    }
    if (best)
        dc_log(DC_LOG_WARNING, "%s: unknown key %s ignored (did you mean '%s'?)", origin, shown,
               best);
    else
        dc_log(DC_LOG_WARNING, "%s: unknown key %s ignored", origin, shown);
}

/* A string value (JSON integers are taken as their decimal text). *out: NULL when absent or
 * empty (after trimming, unless raw). */
static bool
take_string(parse_t *p, int key, bool raw, char **out)
{
    const bson_iter_t *it = &p->slot[key].it;
    const char *s;
    uint32_t len32;
    size_t len;
    char num[32];
    *out = NULL;
    if (!p->present[key])
        return true;
    switch (bson_iter_type(it)) {
    case BSON_TYPE_UTF8:
        s = bson_iter_utf8(it, &len32);
        len = len32;
        break;
    case BSON_TYPE_INT32:
    case BSON_TYPE_INT64:
        snprintf(num, sizeof num, "%lld", (long long)bson_iter_as_int64(it));
        s = num;
        len = strlen(num);
        break;
    default:
        return type_error(p, key, "a string");
    }
    if (memchr(s, '\0', len))
        return failf(p->origin, p->err, "%s: must not contain a NUL character (\\u0000)",
                     keys[key].name);
    if (!raw)
        trim(&s, &len);
    if (len > 0) {
        *out = dc_xstrndup(s, len);
        p->given[key] = true;
    }
    return true;
}

static bool
parse_whole(const char *s, long long *v)
{
    char *end;
    if (!*s || !(isdigit((unsigned char)s[0]) || s[0] == '-' || s[0] == '+'))
        return false;
    errno = 0;
    *v = strtoll(s, &end, 10);
    return errno == 0 && *end == '\0' && end != s;
}

static bool
take_int(parse_t *p, int key, int *out)
{
    const bson_iter_t *it = &p->slot[key].it;
    long long v = 0, lo = int_range[key].min, hi = int_range[key].max;
    bool ok = false;
    char expected[96];
    if (!p->present[key])
        return true;
    switch (bson_iter_type(it)) {
    case BSON_TYPE_UTF8: {
        uint32_t len32;
        const char *s = bson_iter_utf8(it, &len32);
        size_t len = len32;
        char tmp[32];
        trim(&s, &len);
        if (len == 0)
            return true;
        if (len < sizeof tmp && !memchr(s, '\0', len)) {
            memcpy(tmp, s, len);
            tmp[len] = '\0';
            ok = parse_whole(tmp, &v);
        }
        break;
    }
    case BSON_TYPE_INT32:
    case BSON_TYPE_INT64:
        v = bson_iter_as_int64(it);
        ok = true;
        break;
    case BSON_TYPE_DOUBLE: {
        double d = bson_iter_double(it);
        ok = isfinite(d) && d > -9.0e15 && d < 9.0e15 && (double)(long long)d == d;
        v = ok ? (long long)d : 0;
        break;
    }
    default:
        break;
    }
    if (!ok || v < lo || v > hi) {
        snprintf(expected, sizeof expected, "a whole number from %lld to %lld", lo, hi);
        return type_error(p, key, expected);
    }
    *out = (int)v;
    p->given[key] = true;
    return true;
}

static bool
take_bool(parse_t *p, int key, bool *out)
{
    const bson_iter_t *it = &p->slot[key].it;
    bool ok = false, v = false;
    if (!p->present[key])
        return true;
    switch (bson_iter_type(it)) {
    case BSON_TYPE_BOOL:
        v = bson_iter_bool(it);
        ok = true;
        break;
    case BSON_TYPE_INT32:
    case BSON_TYPE_INT64: {
        int64_t i = bson_iter_as_int64(it);
        ok = i == 0 || i == 1;
        v = i == 1;
        break;
    }
    case BSON_TYPE_UTF8: {
        uint32_t len32;
        const char *s = bson_iter_utf8(it, &len32);
        size_t len = len32;
        trim(&s, &len);
        if (len == 0)
            return true;
        if ((len == 4 && strncasecmp(s, "true", 4) == 0) || (len == 1 && s[0] == '1'))
            ok = v = true;
        else if ((len == 5 && strncasecmp(s, "false", 5) == 0) || (len == 1 && s[0] == '0'))
            ok = true;
        break;
    }
    default:
        break;
    }
    if (!ok)
        return type_error(p, key, "true or false");
    *out = v;
    p->given[key] = true;
    return true;
}

/* One of names[] (case-insensitive); *out: the canonical spelling, or NULL when absent. */
static bool
take_choice(parse_t *p, int key, const char *const *names, size_t n, const char **out)
{
    char *s, expected[160];
    dc_buf_t b;
    *out = NULL;
    if (!take_string(p, key, false, &s))
        return false;
    if (!s)
        return true;
    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(s, names[i]) == 0) {
            *out = names[i];
            free(s);
            return true;
        }
    }
    free(s);
    dc_buf_init(&b);
    dc_buf_append_str(&b, "one of ");
    for (size_t i = 0; i < n; i++)
        dc_buf_printf(&b, "%s%s", i ? ", " : "", names[i]);
    snprintf(expected, sizeof expected, "%s", b.data);
    dc_buf_cleanup(&b);
    return type_error(p, key, expected);
}

static bool
readable_file(const char *origin, dc_error_t *err, const char *what, const char *path)
{
    char shown[128];
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int e = 0;
    if (fd < 0)
        e = errno;
    else if (fstat(fd, &st) != 0)
        e = errno;
    else if (S_ISDIR(st.st_mode))
        e = EISDIR;
    if (fd >= 0)
        close(fd);
    if (e == 0)
        return true;
    show_text(path, strlen(path), shown, sizeof shown);
    return failf(origin, err, "%s: cannot open %s: %s", what, shown, strerror(e));
}

/* Host names, IPv4 and IPv6 literals; *out gets IPv6 without brackets. */
static bool
check_hostname(const char *origin, dc_error_t *err, char **host)
{
    char *h = *host, shown[128];
    size_t len = strlen(h), colons = 0;
    bool ipv6_chars = true, name_chars = true;
    show_text(h, len, shown, sizeof shown);
    if (strstr(h, "://"))
        return failf(origin, err, "hostname: %s is a connection string; give it as uri instead",
                     shown);
    if (len >= 2 && h[0] == '[' && h[len - 1] == ']') {
        memmove(h, h + 1, len - 2);
        h[len - 2] = '\0';
        len -= 2;
        if (!strchr(h, ':'))
            return failf(origin, err, "hostname: %s is not a valid IPv6 address", shown);
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)h[i];
        colons += c == ':';
        if (!(isxdigit(c) || c == ':' || c == '.'))
            ipv6_chars = false;
        if (!(isalnum(c) || c == '.' || c == '-' || c == '_'))
            name_chars = false;
    }
    if (colons == 1)
        return failf(origin, err, "hostname: %s includes a port; give the port as port", shown);
    if (len == 0 || len > 255 || (colons >= 2 ? !ipv6_chars : !name_chars))
        return failf(origin, err, "hostname: %s is not a valid host name or IP address", shown);
    return true;
}

static bool
check_database(const char *origin, dc_error_t *err, const char *what, const char *db)
{
    char shown[128];
    if (strlen(db) < 64 && !strpbrk(db, "/\\. \"$\t\r\n"))
        return true;
    show_text(db, strlen(db), shown, sizeof shown);
    return failf(origin, err,
                 "%s: %s is not a valid database name (at most 63 bytes, none of / \\ . \" $ or "
                 "spaces)",
                 what, shown);
}

static bool
parse_collections(parse_t *p, const char *list, dc_config_t *c)
{
    char shown[128];
    size_t n = 1;
    const char *s = list;
    show_text(list, strlen(list), shown, sizeof shown);
    for (const char *q = list; *q; q++)
        n += *q == ',';
    c->collections = dc_xcalloc(n, sizeof *c->collections);
    for (size_t i = 0; i < n; i++) {
        size_t len = strcspn(s, ",");
        const char *name = s;
        size_t nlen = len;
        trim(&name, &nlen);
        if (nlen == 0)
            return failf(p->origin, p->err,
                         "collections: an empty collection name in %s (check for doubled or "
                         "trailing commas)",
                         shown);
        c->collections[c->ncollections] = dc_xstrndup(name, nlen);
        if (memchr(name, '$', nlen) || strncmp(name, "system.", 7) == 0) {
            char bad[128];
            show_text(name, nlen, bad, sizeof bad);
            c->ncollections++;
            return failf(p->origin, p->err,
                         "collections: %s cannot be replicated (names must not contain '$' or "
                         "start with 'system.')",
                         bad);
        }
        for (size_t k = 0; k < c->ncollections; k++) {
            if (strcmp(c->collections[k], c->collections[c->ncollections]) == 0) {
                char dup[128];
                show_text(name, nlen, dup, sizeof dup);
                c->ncollections++;
                return failf(p->origin, p->err, "collections: %s is listed twice", dup);
            }
        }
        c->ncollections++;
        s += len + (s[len] == ',');
    }
    return true;
}

static bool
check_field_path(parse_t *p, const char *path)
{
    char shown[128];
    size_t len = strlen(path);
    if (path[0] != '$' && path[0] != '.' && path[len - 1] != '.' && !strstr(path, ".."))
        return true;
    show_text(path, len, shown, sizeof shown);
    return failf(p->origin, p->err, "cursor_field: %s is not a valid field name or dotted path",
                 shown);
}

/* ---- dates -------------------------------------------------------------------------------- */

static bool
digits(const char **s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*s)[i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    *s += n;
    *out = v;
    return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM:SS[.fff]" with Z, ±HH:MM, ±HHMM or nothing (UTC). */
static bool
parse_datetime(const char *s, int64_t *ms)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h = 0, mi = 0, sec = 0, frac = 0, off = 0;
    if (!digits(&s, 4, &y) || *s++ != '-' || !digits(&s, 2, &mo) || *s++ != '-' ||
        !digits(&s, 2, &d))
        return false;
    if (*s == 'T' || *s == 't' || *s == ' ') {
        s++;
        if (!digits(&s, 2, &h) || *s++ != ':' || !digits(&s, 2, &mi) || *s++ != ':' ||
            !digits(&s, 2, &sec))
            return false;
        if (*s == '.') {
            int n = 0;
            for (s++; *s >= '0' && *s <= '9'; s++, n++)
                if (n < 3)
                    frac = frac * 10 + (*s - '0');
            if (n == 0 || n > 9)
                return false;
            for (; n < 3; n++)
                frac *= 10;
        }
        if (*s == 'Z' || *s == 'z') {
            s++;
        } else if (*s == '+' || *s == '-') {
            int sign = *s++ == '-' ? -1 : 1, oh, om;
            if (!digits(&s, 2, &oh))
                return false;
            if (*s == ':')
                s++;
            if (!digits(&s, 2, &om) || oh > 23 || om > 59)
                return false;
            off = sign * (oh * 60 + om);
        }
    }
    if (*s != '\0' || y < 1 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 59)
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[mo - 1] + (mo == 2 && leap))
        return false;
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off * 60;
    *ms = secs * 1000 + frac;
    return true;
}

/* ---- the configuration ------------------------------------------------------------------ */

static bool
is_external_mechanism(const char *mech)
{
    return mech && (strcmp(mech, "MONGODB-X509") == 0 || strcmp(mech, "MONGODB-AWS") == 0);
}

static bool
is_scram(const char *mech)
{
    return mech && strncmp(mech, "SCRAM-", 6) == 0;
}

static bool
uri_has_tls_options(const mongoc_uri_t *u, bool *insecure)
{
    bson_iter_t it;
    bool any = false;
    *insecure = false;
    if (!bson_iter_init(&it, mongoc_uri_get_options(u)))
        return false;
    while (bson_iter_next(&it)) {
        const char *k = bson_iter_key(&it);
        if (strcasecmp(k, "tls") != 0 &&
            (strncasecmp(k, "tls", 3) == 0 || strncasecmp(k, "ssl", 3) == 0))
            any = true;
        if (strcasecmp(k, MONGOC_URI_TLSINSECURE) == 0 && BSON_ITER_HOLDS_BOOL(&it) &&
            bson_iter_bool(&it))
            *insecure = true;
    }
    return any;
}

static size_t
count_hosts(const mongoc_uri_t *u)
{
    size_t n = 0;
    for (const mongoc_host_list_t *h = mongoc_uri_get_hosts(u); h; h = h->next)
        n++;
    return n;
}

/* What build() learns on the way, beyond the dc_config_t itself. */
typedef struct {
    char *mech;        /* the auth mechanism, canonical, or NULL */
    char *read_pref;   /* the read preference mode name, or NULL */
    mongoc_uri_t *uri; /* the parsed uri key */
    size_t nhosts;
    bool is_srv, uri_insecure, uri_tls_opts;
} build_t;

/* Every key to its C type, in table order: type and range errors. */
static bool
take_all(parse_t *p, dc_config_t *c, build_t *b)
{
    const char *names[sizeof read_modes / sizeof read_modes[0]], *choice;
    char *s = NULL;
    bool ok = false;

    for (size_t i = 0; i < sizeof read_modes / sizeof read_modes[0]; i++)
        names[i] = read_modes[i].name;
    if (!take_string(p, KEY_HOSTNAME, false, &c->hostname) || !take_int(p, KEY_PORT, &c->port) ||
        !take_string(p, KEY_USERNAME, true, &c->username) ||
        !take_string(p, KEY_PASSWORD, true, &c->password) ||
        !take_string(p, KEY_DATABASE, false, &c->database) ||
        !take_string(p, KEY_URI, false, &c->uri) || !take_bool(p, KEY_TLS, &c->tls) ||
        !take_string(p, KEY_TLS_CA_FILE, false, &c->tls_ca_file) ||
        !take_bool(p, KEY_TLS_ALLOW_INVALID_CERTIFICATES, &c->tls_allow_invalid_certificates) ||
        !take_bool(p, KEY_TLS_ALLOW_INVALID_HOSTNAMES, &c->tls_allow_invalid_hostnames))
        return false;
    if (!take_choice(p, KEY_AUTH_MECHANISM, mechanisms, sizeof mechanisms / sizeof mechanisms[0],
                     &choice))
        return false;
    b->mech = dc_xstrdup(choice);
    if (!take_string(p, KEY_AUTH_SOURCE, false, &c->auth_source) ||
        !take_string(p, KEY_REPLICA_SET, false, &c->replica_set) ||
        !take_choice(p, KEY_READ_PREFERENCE, names, sizeof names / sizeof names[0], &choice))
        return false;
    b->read_pref = dc_xstrdup(choice);
    if (!take_bool(p, KEY_DIRECT_CONNECTION, &c->direct_connection) ||
        !take_string(p, KEY_COLLECTIONS, false, &s))
        goto done;
    if (s && !parse_collections(p, s, c))
        goto done;
    free(s);
    s = NULL;
    if (!take_string(p, KEY_CURSOR_FIELD, false, &c->cursor_field))
        goto done;
    if (c->cursor_field && !check_field_path(p, c->cursor_field))
        goto done;
    if (!c->cursor_field)
        c->cursor_field = dc_xstrdup("updated_at");
    if (!take_string(p, KEY_START_DATE, false, &s))
        goto done;
    if (s && !parse_datetime(s, &c->start_date_ms)) {
        type_error(p, KEY_START_DATE,
                   "an ISO-8601 date or date-time such as 2024-05-01 or 2024-05-01T10:00:00Z");
        goto done;
    }
    c->start_date_set = s != NULL;
    ok = take_int(p, KEY_BATCH_SIZE, &c->batch_size) &&
         take_int(p, KEY_CHECKPOINT_INTERVAL, &c->checkpoint_interval) &&
         take_int(p, KEY_CURSOR_LOOKBACK_SECONDS, &c->cursor_lookback_seconds);
done:
    free(s);
    return ok;
}

/* The uri key: parsed (its error text never shown: it may quote the password), then every
 * setting the keys left open is taken from it. */
static bool
merge_uri(parse_t *p, dc_config_t *c, build_t *b)
{
    const char *origin = p->origin;
    dc_error_t *err = p->err;
    bson_error_t e;
    mongoc_uri_t *u;

    if (c->hostname || p->given[KEY_PORT])
        return failf(origin, err,
                     "uri: cannot be combined with hostname or port; give the hosts in the uri");
    u = b->uri = mongoc_uri_new_with_error(c->uri, &e);
    explicit_bzero(&e, sizeof e);
    if (!u)
        return failf(origin, err,
                     "uri: not a valid MongoDB connection string (mongodb://... or "
                     "mongodb+srv://...; percent-encode special characters in the user name and "
                     "password, or give them as username and password)");
    for (const mongoc_host_list_t *h = mongoc_uri_get_hosts(u); h; h = h->next)
        if (strchr(h->host, '@'))
            return failf(origin, err,
                         "uri: the user name or password contains an unescaped '@'; write it as "
                         "%%40 or give the password as password");
    b->is_srv = mongoc_uri_get_srv_hostname(u) != NULL;
    b->nhosts = count_hosts(u);
    b->uri_tls_opts = uri_has_tls_options(u, &b->uri_insecure);
    if (!c->username && mongoc_uri_get_username(u))
        c->username = dc_xstrdup(mongoc_uri_get_username(u));
    if (!c->password && mongoc_uri_get_password(u) && *mongoc_uri_get_password(u))
        c->password = dc_xstrdup(mongoc_uri_get_password(u));
    if (!c->database && mongoc_uri_get_database(u) && *mongoc_uri_get_database(u))
        c->database = dc_xstrdup(mongoc_uri_get_database(u));

    /* TLS: the URI's own setting wins over the default, a key over both. */
    if (!p->given[KEY_TLS] && (b->uri_tls_opts || mongoc_uri_has_option(u, MONGOC_URI_TLS)))
        c->tls = mongoc_uri_get_tls(u);
    if (!c->tls_ca_file && mongoc_uri_get_option_as_utf8(u, MONGOC_URI_TLSCAFILE, NULL))
        c->tls_ca_file = dc_xstrdup(mongoc_uri_get_option_as_utf8(u, MONGOC_URI_TLSCAFILE, NULL));
    if (b->uri_insecure &&
        ((p->given[KEY_TLS_ALLOW_INVALID_CERTIFICATES] && !c->tls_allow_invalid_certificates) ||
         (p->given[KEY_TLS_ALLOW_INVALID_HOSTNAMES] && !c->tls_allow_invalid_hostnames)))
        return failf(origin, err,
                     "uri: tlsInsecure=true conflicts with tls_allow_invalid_certificates or "
                     "tls_allow_invalid_hostnames false");
    if (!p->given[KEY_TLS_ALLOW_INVALID_CERTIFICATES])
        c->tls_allow_invalid_certificates =
            b->uri_insecure ||
            mongoc_uri_get_option_as_bool(u, MONGOC_URI_TLSALLOWINVALIDCERTIFICATES, false);
    if (!p->given[KEY_TLS_ALLOW_INVALID_HOSTNAMES])
        c->tls_allow_invalid_hostnames =
            b->uri_insecure ||
            mongoc_uri_get_option_as_bool(u, MONGOC_URI_TLSALLOWINVALIDHOSTNAMES, false);

    if (!b->mech && mongoc_uri_get_auth_mechanism(u)) {
        const char *m = mongoc_uri_get_auth_mechanism(u);
        size_t i, n = sizeof mechanisms / sizeof mechanisms[0];
        char shown[128];
        for (i = 0; i < n; i++) {
            if (strcasecmp(m, mechanisms[i]) == 0) {
                b->mech = dc_xstrdup(mechanisms[i]);
                break;
            }
        }
        show_text(m, strlen(m), shown, sizeof shown);
        if (!b->mech)
            return failf(origin, err,
                         "uri: authMechanism %s is not supported (use SCRAM-SHA-1, SCRAM-SHA-256, "
                         "MONGODB-AWS, MONGODB-X509 or PLAIN)",
                         shown);
    }
    if (!c->replica_set && mongoc_uri_get_replica_set(u))
        c->replica_set = dc_xstrdup(mongoc_uri_get_replica_set(u));
    if (!b->read_pref && mongoc_uri_has_option(u, MONGOC_URI_READPREFERENCE)) {
        mongoc_read_mode_t m = mongoc_read_prefs_get_mode(mongoc_uri_get_read_prefs_t(u));
        for (size_t i = 0; i < sizeof read_modes / sizeof read_modes[0]; i++)
            if (read_modes[i].mode == m)
                b->read_pref = dc_xstrdup(read_modes[i].name);
    }
    if (!p->given[KEY_DIRECT_CONNECTION]) {
        if (mongoc_uri_has_option(u, MONGOC_URI_DIRECTCONNECTION)) {
            c->direct_connection =
                mongoc_uri_get_option_as_bool(u, MONGOC_URI_DIRECTCONNECTION, false);
            p->given[KEY_DIRECT_CONNECTION] = true; /* as if given: the same rules apply */
        } else {
            c->direct_connection =
                !c->replica_set && b->nhosts == 1 && !b->is_srv &&
                !mongoc_uri_get_option_as_bool(u, MONGOC_URI_LOADBALANCED, false);
        }
    }
    return true;
}

/* The rules between keys, once every value is known. */
static bool
check_rules(parse_t *p, dc_config_t *c, build_t *b)
{
    const char *origin = p->origin;
    dc_error_t *err = p->err;
    bool external = is_external_mechanism(c->auth_mechanism);

    /* Credentials, in the order of the key table. */
    if (!c->uri && !external && !c->username)
        return failf(origin, err, "missing required key 'username'");
    if (c->username && !c->password) {
        if (strcmp(c->auth_mechanism, "MONGODB-AWS") == 0)
            return failf(origin, err,
                         "missing required key 'password' (the AWS secret access key)");
        if (!external)
            return failf(origin, err, "missing required key 'password'");
    }
    if (c->password && !c->username)
        return failf(origin, err, "password: given without a username");
    if (strcmp(c->auth_mechanism, "MONGODB-X509") == 0) {
        if (c->password)
            return failf(origin, err,
                         "password: not used with MONGODB-X509 (the client certificate "
                         "identifies the user)");
        if (!b->uri ||
            !mongoc_uri_get_option_as_utf8(b->uri, MONGOC_URI_TLSCERTIFICATEKEYFILE, NULL))
            return failf(origin, err,
                         "auth_mechanism: MONGODB-X509 needs a client certificate: give a uri "
                         "with tlsCertificateKeyFile=...");
    }
    if (c->auth_source) {
        if (external && strcmp(c->auth_source, "$external") != 0)
            return failf(origin, err, "auth_source: must be $external with %s", c->auth_mechanism);
    } else if (external || strcmp(c->auth_mechanism, "PLAIN") == 0) {
        c->auth_source = dc_xstrdup("$external");
    } else if (b->uri) {
        c->auth_source =
            dc_xstrdup(mongoc_uri_get_auth_source(b->uri)); /* authSource, the path, admin */
    } else {
        c->auth_source = dc_xstrdup("admin");
    }

    if (!c->database)
        return failf(origin, err, "missing required key 'database'");
    if (!check_database(origin, err, "database", c->database))
        return false;

    if (!c->tls) {
        const char *k =
            p->given[KEY_TLS_CA_FILE] ? "tls_ca_file"
            : p->given[KEY_TLS_ALLOW_INVALID_CERTIFICATES] && c->tls_allow_invalid_certificates
                ? "tls_allow_invalid_certificates"
            : p->given[KEY_TLS_ALLOW_INVALID_HOSTNAMES] && c->tls_allow_invalid_hostnames
                ? "tls_allow_invalid_hostnames"
            : b->uri_tls_opts ? "uri"
                              : NULL;
        if (k)
            return failf(origin, err, "%s: TLS options are given but tls is false", k);
    }
    if (c->tls_ca_file &&
        !readable_file(origin, err, p->given[KEY_TLS_CA_FILE] ? "tls_ca_file" : "uri: tlsCAFile",
                       c->tls_ca_file))
        return false;

    if (c->direct_connection && c->replica_set && p->given[KEY_DIRECT_CONNECTION])
        return failf(origin, err, "direct_connection: cannot be true when replica_set is given");
    if (c->direct_connection && (b->nhosts > 1 || b->is_srv))
        return failf(origin, err,
                     "direct_connection: cannot be true with several hosts or a mongodb+srv uri");
    return true;
}

/* Everything after the JSON: typed values, the uri or the host, defaults, the rules. */
static bool
build(parse_t *p, dc_config_t *c)
{
    build_t b;
    bool ok = false;

    memset(&b, 0, sizeof b);
    b.nhosts = 1;
    if (!take_all(p, c, &b))
        goto done;
    if (c->uri) {
        if (!merge_uri(p, c, &b))
            goto done;
    } else {
        if (!c->hostname) {
            failf(p->origin, p->err, "missing required key 'hostname'");
            goto done;
        }
        if (!check_hostname(p->origin, p->err, &c->hostname))
            goto done;
        if (!p->given[KEY_DIRECT_CONNECTION])
            c->direct_connection = !c->replica_set;
    }
    c->auth_mechanism = b.mech ? b.mech : dc_xstrdup("SCRAM-SHA-1");
    c->read_preference = b.read_pref;
    b.mech = b.read_pref = NULL;
    ok = check_rules(p, c, &b);
done:
    free(b.mech);
    free(b.read_pref);
    if (b.uri)
        mongoc_uri_destroy(b.uri);
    return ok;
}

bool
dc_config_parse(const char *json, size_t len, const char *origin, dc_config_t *cfg, dc_error_t *err)
{
    dc_config_t c;
    parse_t p;
    bson_t *doc = NULL;
    bson_iter_t it;
    const char *names[MAX_KEYS];
    size_t nkeys = 0;
    bool ok = false;

    memset(cfg, 0, sizeof *cfg);
    memset(&c, 0, sizeof c);
    memset(&p, 0, sizeof p);
    if (!origin)
        origin = "configuration.json";
    p.origin = origin;
    p.err = err;
    c.port = 27017;
    c.tls = true;
    c.direct_connection = true;
    c.start_date_ms = DEFAULT_START_DATE_MS;
    c.batch_size = 10000;
    c.checkpoint_interval = 1000;
    c.cursor_lookback_seconds = 0;

    if (!json)
        json = "";
    if (!parse_json(json, len, origin, &doc, err))
        goto done;
    bson_iter_init(&it, doc);
    while (bson_iter_next(&it))
        nkeys++;
    if (nkeys > MAX_KEYS) {
        failf(origin, err, "too many keys (%zu; at most %d)", nkeys, MAX_KEYS);
        goto done;
    }
    nkeys = 0;
    bson_iter_init(&it, doc);
    while (bson_iter_next(&it)) {
        const char *name = bson_iter_key(&it);
        for (size_t i = 0; i < nkeys; i++) {
            if (strcmp(names[i], name) == 0) {
                char shown[128];
                show_text(name, strlen(name), shown, sizeof shown);
                failf(origin, err, "key %s is given twice", shown);
                goto done;
            }
        }
        names[nkeys++] = name;
        int k = find_key(name);
        if (k < 0) {
            warn_unknown_key(origin, name);
            continue;
        }
        p.slot[k].it = it;
        p.present[k] = true;
    }
    if (!build(&p, &c))
        goto done;
    if (c.tls && c.tls_allow_invalid_certificates)
        dc_log(DC_LOG_WARNING,
               "%s: tls_allow_invalid_certificates is true: the server's certificate is not "
               "verified, so the connection is open to interception",
               origin);
    if (c.tls && c.tls_allow_invalid_hostnames)
        dc_log(DC_LOG_WARNING,
               "%s: tls_allow_invalid_hostnames is true: a certificate for any host is accepted, "
               "so the connection is open to interception",
               origin);
    *cfg = c;
    ok = true;
done:
    destroy_secret_doc(doc);
    if (!ok)
        dc_config_cleanup(&c);
    return ok;
}

bool
dc_config_load(const char *path, dc_config_t *cfg, dc_error_t *err)
{
    struct stat st;
    char *buf = NULL;
    size_t len = 0;
    bool ok;
    int fd;

    memset(cfg, 0, sizeof *cfg);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return dc_error_set(err, DC_ERR_CONFIG, "cannot open '%s': %s", path, strerror(errno));
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return dc_error_set(err, DC_ERR_CONFIG, "cannot read '%s': %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return dc_error_set(err, DC_ERR_CONFIG, "cannot read '%s': %s", path,
                            S_ISDIR(st.st_mode) ? strerror(EISDIR) : "not a regular file");
    }
    if (st.st_size > MAX_FILE_BYTES) {
        close(fd);
        return dc_error_set(err, DC_ERR_CONFIG, "%s: too large (%lld bytes; at most %d)", path,
                            (long long)st.st_size, MAX_FILE_BYTES);
    }
    buf = dc_xmalloc((size_t)st.st_size + 1);
    while (len < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + len, (size_t)st.st_size - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            explicit_bzero(buf, len);
            free(buf);
            return dc_error_set(err, DC_ERR_CONFIG, "cannot read '%s': %s", path, strerror(e));
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    ok = dc_config_parse(buf, len, path, cfg, err);
    explicit_bzero(buf, (size_t)st.st_size + 1);
    free(buf);
    return ok;
}

void
dc_config_cleanup(dc_config_t *cfg)
{
    if (!cfg)
        return;
    free(cfg->hostname);
    free(cfg->username);
    free_secret(cfg->password);
    free(cfg->database);
    free(cfg->tls_ca_file);
    free(cfg->auth_mechanism);
    free(cfg->auth_source);
    free(cfg->replica_set);
    free(cfg->read_preference);
    free_secret(cfg->uri);
    for (size_t i = 0; i < cfg->ncollections; i++)
        free(cfg->collections[i]);
    free(cfg->collections);
    free(cfg->cursor_field);
    memset(cfg, 0, sizeof *cfg);
}

/* ---- URI -------------------------------------------------------------------------------- */

mongoc_uri_t *
dc_config_uri(const dc_config_t *cfg, dc_error_t *err)
{
    mongoc_uri_t *u;
    const char *mech = cfg->auth_mechanism ? cfg->auth_mechanism : "SCRAM-SHA-1";
    bool ok = true;

    if (cfg->uri) {
        bson_error_t e;
        u = mongoc_uri_new_with_error(cfg->uri, &e);
        explicit_bzero(&e, sizeof e);
        if (!u) {
            dc_error_set(err, DC_ERR_CONFIG, "uri: not a valid MongoDB connection string");
            return NULL;
        }
    } else {
        char host[300];
        if (!cfg->hostname || cfg->port < 1 || cfg->port > 65535) {
            dc_error_set(err, DC_ERR_CONFIG, "hostname and port are required");
            return NULL;
        }
        if (strchr(cfg->hostname, ':') && cfg->hostname[0] != '[')
            snprintf(host, sizeof host, "[%s]", cfg->hostname);
        else
            snprintf(host, sizeof host, "%s", cfg->hostname);
        u = mongoc_uri_new_for_host_port(host, (uint16_t)cfg->port);
        if (!u) {
            dc_error_set(err, DC_ERR_CONFIG, "hostname: '%s' is not a valid host name", host);
            return NULL;
        }
    }
    if (cfg->username) {
        ok = ok && mongoc_uri_set_username(u, cfg->username);
        if (cfg->password)
            ok = ok && mongoc_uri_set_password(u, cfg->password);
    }
    if (cfg->username || is_external_mechanism(mech)) {
        ok = ok && mongoc_uri_set_auth_mechanism(u, mech);
        if ((is_scram(mech) || strcmp(mech, "PLAIN") == 0) && cfg->auth_source)
            ok = ok && mongoc_uri_set_auth_source(u, cfg->auth_source);
    }
    ok = ok && mongoc_uri_set_option_as_bool(u, MONGOC_URI_RETRYWRITES, false);
    ok = ok && mongoc_uri_set_option_as_bool(u, MONGOC_URI_TLS, cfg->tls);
    if (cfg->tls) {
        if (cfg->tls_ca_file)
            ok = ok && mongoc_uri_set_option_as_utf8(u, MONGOC_URI_TLSCAFILE, cfg->tls_ca_file);
        if (!mongoc_uri_has_option(u, MONGOC_URI_TLSINSECURE)) {
            ok = ok && mongoc_uri_set_option_as_bool(u, MONGOC_URI_TLSALLOWINVALIDCERTIFICATES,
                                                     cfg->tls_allow_invalid_certificates);
            ok = ok && mongoc_uri_set_option_as_bool(u, MONGOC_URI_TLSALLOWINVALIDHOSTNAMES,
                                                     cfg->tls_allow_invalid_hostnames);
        }
    }
    ok =
        ok && mongoc_uri_set_option_as_bool(u, MONGOC_URI_DIRECTCONNECTION, cfg->direct_connection);
    if (cfg->replica_set)
        ok = ok && mongoc_uri_set_option_as_utf8(u, MONGOC_URI_REPLICASET, cfg->replica_set);
    if (!mongoc_uri_get_appname(u))
        ok = ok && mongoc_uri_set_appname(u, "docdb-connector");
    if (!mongoc_uri_has_option(u, MONGOC_URI_SERVERSELECTIONTIMEOUTMS))
        ok = ok && mongoc_uri_set_option_as_int32(u, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 30000);
    if (cfg->read_preference) {
        mongoc_read_mode_t mode = MONGOC_READ_PRIMARY;
        for (size_t i = 0; i < sizeof read_modes / sizeof read_modes[0]; i++)
            if (strcmp(read_modes[i].name, cfg->read_preference) == 0)
                mode = read_modes[i].mode;
        /* Not the readPreference option: libmongoc ignores it after parsing. */
        if (mongoc_read_prefs_get_mode(mongoc_uri_get_read_prefs_t(u)) != mode) {
            mongoc_read_prefs_t *prefs = mongoc_read_prefs_new(mode);
            mongoc_uri_set_read_prefs_t(u, prefs);
            mongoc_read_prefs_destroy(prefs);
        }
    }
    if (!ok) {
        mongoc_uri_destroy(u);
        dc_error_set(err, DC_ERR_CONFIG, "cannot build the connection settings (invalid UTF-8?)");
        return NULL;
    }
    return u;
}

/* Percent-encodes s; keep: extra bytes left as they are besides the unreserved set. */
static void
append_escaped(dc_buf_t *b, const char *s, const char *keep)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || strchr("-._~", c) || (keep && strchr(keep, c)))
            dc_buf_append_char(b, (char)c);
        else
            dc_buf_printf(b, "%%%02X", c);
    }
}

void
dc_config_describe(const dc_config_t *cfg, char *out, size_t n)
{
    /* Options of a given uri that are safe to show (never credentials or key files). */
    static const char *const extra[] = {
        "connectTimeoutMS", "socketTimeoutMS", "serverSelectionTimeoutMS", "heartbeatFrequencyMS",
        "localThresholdMS", "maxPoolSize",     "waitQueueTimeoutMS",       "loadBalanced",
        "compressors",      "retryReads",
    };
    dc_buf_t b;
    mongoc_uri_t *u = NULL;
    const char *mech = cfg->auth_mechanism ? cfg->auth_mechanism : "SCRAM-SHA-1";
    char sep = '?';

    if (!out || n == 0)
        return;
    dc_buf_init(&b);
    if (cfg->uri) {
        bson_error_t e;
        u = mongoc_uri_new_with_error(cfg->uri, &e);
        explicit_bzero(&e, sizeof e);
        if (!u) {
            snprintf(out, n, "(an invalid uri)");
            return;
        }
    }
    dc_buf_append_str(&b, u && mongoc_uri_get_srv_hostname(u) ? "mongodb+srv://" : "mongodb://");
    if (cfg->username) {
        append_escaped(&b, cfg->username, NULL);
        dc_buf_append_str(&b, cfg->password ? ":****@" : "@");
    }
    if (u && mongoc_uri_get_srv_hostname(u)) {
        append_escaped(&b, mongoc_uri_get_srv_hostname(u), NULL);
    } else if (u) {
        for (const mongoc_host_list_t *h = mongoc_uri_get_hosts(u); h; h = h->next) {
            append_escaped(&b, h->host_and_port, ":[]");
            if (h->next)
                dc_buf_append_char(&b, ',');
        }
    } else if (cfg->hostname) {
        bool v6 = strchr(cfg->hostname, ':') && cfg->hostname[0] != '[';
        dc_buf_append_str(&b, v6 ? "[" : "");
        append_escaped(&b, cfg->hostname, ":[]");
        dc_buf_printf(&b, "%s:%d", v6 ? "]" : "", cfg->port);
    }
    dc_buf_append_char(&b, '/');
#define OPT(name) (dc_buf_printf(&b, "%c%s=", sep, name), sep = '&')
    OPT("tls");
    dc_buf_append_str(&b, cfg->tls ? "true" : "false");
    if (cfg->tls && cfg->tls_ca_file) {
        OPT("tlsCAFile");
        append_escaped(&b, cfg->tls_ca_file, "/:@");
    }
    if (cfg->tls && cfg->tls_allow_invalid_certificates) {
        OPT("tlsAllowInvalidCertificates");
        dc_buf_append_str(&b, "true");
    }
    if (cfg->tls && cfg->tls_allow_invalid_hostnames) {
        OPT("tlsAllowInvalidHostnames");
        dc_buf_append_str(&b, "true");
    }
    if (cfg->username || is_external_mechanism(mech)) {
        OPT("authMechanism");
        append_escaped(&b, mech, NULL);
        if (cfg->auth_source && strcmp(cfg->auth_source, "admin") != 0) {
            OPT("authSource");
            append_escaped(&b, cfg->auth_source, "$");
        }
    }
    if (cfg->replica_set) {
        OPT("replicaSet");
        append_escaped(&b, cfg->replica_set, NULL);
    }
    if (cfg->read_preference) {
        OPT("readPreference");
        append_escaped(&b, cfg->read_preference, NULL);
    }
    OPT("directConnection");
    dc_buf_append_str(&b, cfg->direct_connection ? "true" : "false");
    for (size_t i = 0; u && i < sizeof extra / sizeof extra[0]; i++) {
        bson_iter_t it;
        if (!bson_iter_init_find_case(&it, mongoc_uri_get_options(u), extra[i]))
            continue;
        OPT(extra[i]);
        if (BSON_ITER_HOLDS_BOOL(&it))
            dc_buf_append_str(&b, bson_iter_bool(&it) ? "true" : "false");
        else if (BSON_ITER_HOLDS_INT32(&it))
            dc_buf_printf(&b, "%d", (int)bson_iter_int32(&it));
        else if (BSON_ITER_HOLDS_UTF8(&it))
            append_escaped(&b, bson_iter_utf8(&it, NULL), ",");
    }
#undef OPT
    snprintf(out, n, "%s", b.data);
    dc_buf_cleanup(&b);
    if (u)
        mongoc_uri_destroy(u);
}

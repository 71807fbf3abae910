/* naming.c: destination names for collections and fields: Fivetran's naming rules (ICU
 * transliteration to ASCII, then snake_case) or the source name as is. Names only: collisions
 * between the resulting names are the caller's to resolve. */
#include "convert/naming.h"
#include "core/mem.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unicode/ustring.h>
#include <unicode/utrans.h>

#include "core/log.h"

/* One transliterator for the process, opened on first use. A UTransliterator instance is not
 * thread-safe, so every use holds icu_lock (names are computed once per column, not per row). */
static pthread_once_t icu_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t icu_lock = PTHREAD_MUTEX_INITIALIZER;
static UTransliterator *icu_trans; /* NULL when ICU failed: non-ASCII then becomes '_' */

static void
icu_open(void)
{
    static const char id8[] = "Any-Latin; Latin-ASCII";
    UChar id[sizeof id8];
    UErrorCode status = U_ZERO_ERROR;
    u_uastrncpy(id, id8, (int32_t)sizeof id8);
    icu_trans = utrans_openU(id, -1, UTRANS_FORWARD, NULL, 0, NULL, &status);
    if (U_FAILURE(status)) {
        icu_trans = NULL;
        dc_log(DC_LOG_WARNING, "ICU transliterator unavailable (%s): non-ASCII names become '_'",
               u_errorName(status));
    }
}

/* s (n bytes of UTF-8, invalid bytes taken as U+FFFD) through "Any-Latin; Latin-ASCII", newly
 * allocated; NULL when ICU is unavailable or fails. */
static char *
transliterate(const char *s, size_t n)
{
    pthread_once(&icu_once, icu_open);
    if (!icu_trans || n > INT32_MAX / 16)
        return NULL;
    UErrorCode status = U_ZERO_ERROR;
    int32_t ulen = 0;
    /* Transliteration may lengthen the text (one Han character becomes a syllable): start with
     * room for four times the input and grow on U_BUFFER_OVERFLOW_ERROR. */
    int32_t cap = (int32_t)n * 4 + 16;
    UChar *u = NULL;
    for (int attempt = 0; attempt < 6; attempt++) {
        free(u);
        u = dc_xmalloc((size_t)cap * sizeof *u);
        status = U_ZERO_ERROR;
        u_strFromUTF8WithSub(u, cap, &ulen, s, (int32_t)n, 0xFFFD, NULL, &status);
        if (U_FAILURE(status))
            break;
        int32_t len = ulen, limit = ulen;
        pthread_mutex_lock(&icu_lock);
        utrans_transUChars(icu_trans, u, &len, cap, 0, &limit, &status);
        pthread_mutex_unlock(&icu_lock);
        if (status == U_BUFFER_OVERFLOW_ERROR && cap < INT32_MAX / 4) {
            cap = (len > cap ? len : cap) * 2;
            continue;
        }
        ulen = len;
        break;
    }
    if (U_FAILURE(status)) {
        free(u);
        return NULL;
    }
    int32_t olen = 0;
    status = U_ZERO_ERROR;
    u_strToUTF8(NULL, 0, &olen, u, ulen, &status); /* preflight: the length */
    if (status != U_BUFFER_OVERFLOW_ERROR && U_FAILURE(status)) {
        free(u);
        return NULL;
    }
    char *out = dc_xmalloc((size_t)olen + 1);
    status = U_ZERO_ERROR;
    u_strToUTF8(out, olen + 1, &olen, u, ulen, &status);
    free(u);
    if (U_FAILURE(status)) {
        free(out);
        return NULL;
    }
    out[olen] = '\0';
    return out;
}

static bool
is_upper(char c)
{
    return c >= 'A' && c <= 'Z';
}

static bool
is_lower(char c)
{
    return c >= 'a' && c <= 'z';
}

static bool
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Appends c to out[*n], lowercased, collapsing runs of '_'. */
static void
emit(char *out, size_t *n, char c)
{
    if (c == '_' && *n > 0 && out[*n - 1] == '_')
        return;
    out[(*n)++] = is_upper(c) ? (char)(c - 'A' + 'a') : c;
}

char *
dc_name(const char *source, bool is_table, dc_naming_t naming)
{
    if (!source)
        source = "";
    if (naming == DC_NAMING_SOURCE)
        return dc_xstrdup(*source ? source : "_");

    /* 1. Transliterate to ASCII (only when there is something to transliterate). */
    char *translit = NULL;
    const char *s = source;
    for (const unsigned char *p = (const unsigned char *)source; *p; p++) {
        if (*p >= 0x80) {
            translit = transliterate(source, strlen(source));
            if (translit)
                s = translit;
            break;
        }
    }

    /* 2. Anything but [A-Za-z0-9_] becomes '_' (including bytes ICU left non-ASCII). */
    size_t n = strlen(s);
    char *m = dc_xmalloc(n + 1);
    for (size_t i = 0; i < n; i++)
        m[i] = is_upper(s[i]) || is_lower(s[i]) || is_digit(s[i]) ? s[i] : '_';
    free(translit);

    /* 3-5. Split camelCase, collapse '_' runs, lowercase. The split inserts at most one '_'
     * per character, plus the prefix byte, a "_" for an empty name and the NUL. */
    char *out = dc_xmalloc(2 * n + 3);
    out[0] = '\0'; /* kept free for the '_' prefix of step 6 (and not a '_' for emit) */
    size_t o = 1, start = 1;
    for (size_t i = 0; i < n; i++) {
        char c = m[i];
        if (i > 0 && is_upper(c)) {
            char prev = m[i - 1];
            if (is_lower(prev) || is_digit(prev) ||
                (is_upper(prev) && i + 1 < n && is_lower(m[i + 1])))
                emit(out, &o, '_');
        }
        emit(out, &o, c);
    }
    free(m);

    /* 6. A leading digit gets a '_' prefix. */
    if (o > start && is_digit(out[start]))
        out[--start] = '_';

    /* 7. Tables drop leading '_' when a letter follows (after collapsing, there is one). */
    if (is_table && o - start >= 2 && out[start] == '_' && is_lower(out[start + 1]))
        start++;

    if (o == start) /* never "" */
        out[o++] = '_';
    out[o] = '\0';
    if (start > 0)
        memmove(out, out + start, o - start + 1);
    return out;
}

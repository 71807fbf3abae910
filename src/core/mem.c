/* mem.c: allocation that cannot fail (mem.h). */
#include "core/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
dc_out_of_memory(void)
{
    fputs("docdb-connector: out of memory\n", stderr);
    abort();
}

void *
dc_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        dc_out_of_memory();
    return p;
}

void *
dc_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        dc_out_of_memory();
    return q;
}

void *
dc_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        dc_out_of_memory();
    return p;
}

char *
dc_xstrndup(const char *s, size_t n)
{
    char *d = dc_xmalloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *
dc_xstrdup(const char *s)
{
    return s ? dc_xstrndup(s, strlen(s)) : NULL;
}

/* mem.h: allocation that cannot fail. The connector has no sensible way on with a failed small
 * allocation: these print one line and abort, so callers need no out-of-memory paths. */
#ifndef DC_MEM_H
#define DC_MEM_H

#include <stddef.h>

void *dc_xmalloc(size_t n);
void *dc_xrealloc(void *p, size_t n);
void *dc_xcalloc(size_t n, size_t size);
/* Copies of s (NULL for NULL), and of its first n bytes (NUL-terminated). */
char *dc_xstrdup(const char *s);
char *dc_xstrndup(const char *s, size_t n);
/* Prints "docdb-connector: out of memory" and aborts. */
void dc_out_of_memory(void) __attribute__((noreturn));

#endif

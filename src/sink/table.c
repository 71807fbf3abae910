/* table.c: dc_table_t, the description of a destination table (source collection, name,
 * columns with types) that the engine builds and every sink applies. Plain bookkeeping: no
 * destination, no naming rules, no type decisions here. */
#include "sink/sink.h"
#include "core/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
dc_table_init(dc_table_t *t, const char *source, const char *name)
{
    t->source = dc_xstrdup(source);
    t->name = dc_xstrdup(name);
    t->cols = NULL;
    t->ncols = t->cap = 0;
}

void
dc_table_cleanup(dc_table_t *t)
{
    for (size_t i = 0; i < t->ncols; i++) {
        free(t->cols[i].field);
        free(t->cols[i].name);
    }
    free(t->cols);
    free(t->source);
    free(t->name);
    memset(t, 0, sizeof *t);
}

size_t
dc_table_add_column(dc_table_t *t, const char *field, const char *name, dc_type_t type)
{
    if (t->ncols == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 8;
        t->cols = dc_xrealloc(t->cols, t->cap * sizeof *t->cols);
    }
    dc_column_t *c = &t->cols[t->ncols];
    c->field = dc_xstrdup(field);
    c->name = dc_xstrdup(name);
    c->type = type;
    return t->ncols++;
}

long
dc_table_find_field(const dc_table_t *t, const char *field)
{
    for (size_t i = 0; i < t->ncols; i++) {
        if (strcmp(t->cols[i].field, field) == 0)
            return (long)i;
    }
    return -1;
}

long
dc_table_find_name(const dc_table_t *t, const char *name)
{
    for (size_t i = 0; i < t->ncols; i++) {
        if (strcmp(t->cols[i].name, name) == 0)
            return (long)i;
    }
    return -1;
}

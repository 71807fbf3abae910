/* sink.c: dc_sink_open chooses the backend from the spec's prefix ("sqlite:PATH"), and the
 * dc_sink_* calls forward to it. No destination logic here. */
#include "sink/sqlite.h"

#include <string.h>

dc_sink_t *
dc_sink_open(const char *spec, dc_error_t *err)
{
    const char *colon = spec ? strchr(spec, ':') : NULL;
    if (!colon) {
        dc_error_set(err, DC_ERR_CONFIG, "destination '%s' has no kind (expected sqlite:PATH)",
                     spec ? spec : "");
        return NULL;
    }
    size_t n = (size_t)(colon - spec);
    if (n == strlen("sqlite") && memcmp(spec, "sqlite", n) == 0)
        return dc_sqlite_open(colon + 1, err);
    dc_error_set(err, DC_ERR_CONFIG, "unknown destination kind '%.*s' in '%s' (known: sqlite)",
                 (int)n, spec, spec);
    return NULL;
}

void
dc_sink_close(dc_sink_t *s)
{
    if (s)
        s->ops->close(s);
}

bool
dc_sink_load_table(dc_sink_t *s, const char *source, dc_table_t *t, dc_error_t *err)
{
    return s->ops->load_table(s, source, t, err);
}

bool
dc_sink_each_table(dc_sink_t *s, void (*fn)(const char *source, const char *name, void *ctx),
                   void *ctx, dc_error_t *err)
{
    return s->ops->each_table(s, fn, ctx, err);
}

bool
dc_sink_apply_table(dc_sink_t *s, const dc_table_t *t, dc_error_t *err)
{
    return s->ops->apply_table(s, t, err);
}

bool
dc_sink_upsert(dc_sink_t *s, const dc_table_t *t, const dc_value_t *values, dc_error_t *err)
{
    return s->ops->upsert(s, t, values, err);
}

bool
dc_sink_commit(dc_sink_t *s, const char *state, dc_error_t *err)
{
    return s->ops->commit(s, state, err);
}

bool
dc_sink_load_state(dc_sink_t *s, char **state, dc_error_t *err)
{
    *state = NULL;
    return !s->ops->load_state || s->ops->load_state(s, state, err);
}

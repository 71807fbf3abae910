/* backend.h: what a destination backend implements (sink.h documents each operation). Only
 * backends include this; everyone else uses sink.h. */
#ifndef DC_SINK_BACKEND_H
#define DC_SINK_BACKEND_H

#include "sink/sink.h"

/* What every backend provides (sink.h documents each). A backend's sink object begins with a
 * struct dc_sink so that sink.c can reach it. */
typedef struct {
    void (*close)(dc_sink_t *s);
    bool (*load_table)(dc_sink_t *s, const char *source, dc_table_t *t, dc_error_t *err);
    bool (*each_table)(dc_sink_t *s, void (*fn)(const char *source, const char *name, void *ctx),
                       void *ctx, dc_error_t *err);
    bool (*apply_table)(dc_sink_t *s, const dc_table_t *t, dc_error_t *err);
    bool (*upsert)(dc_sink_t *s, const dc_table_t *t, const dc_value_t *values, dc_error_t *err);
    bool (*commit)(dc_sink_t *s, const char *state, dc_error_t *err);
    /* NULL for a backend that keeps no state. */
    bool (*load_state)(dc_sink_t *s, char **state, dc_error_t *err);
} dc_sink_ops_t;

struct dc_sink {
    const dc_sink_ops_t *ops;
};

#endif

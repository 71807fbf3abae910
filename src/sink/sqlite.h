/* sqlite.h: private to src/sink/: the SQLite backend's opener. Callers outside src/sink/ use
 * sink.h only. */
#ifndef DC_SINK_SQLITE_H
#define DC_SINK_SQLITE_H

#include "sink/backend.h"

/* Opens (creating it and its parent folders) the SQLite warehouse at path (the spec after
 * "sqlite:"). NULL with err on failure. */
dc_sink_t *dc_sqlite_open(const char *path, dc_error_t *err);

#endif

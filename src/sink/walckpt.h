/* walckpt.h: WAL checkpoints on a thread of their own. A writer connection in WAL mode copies
 * the log back into the database file every 1000 pages by itself (SQLite's automatic
 * checkpoint), inside the commit that crosses the mark: a fifth of a bulk load's writer time.
 * Here a second connection does that copying beside the writer, and the writer only restarts
 * the log when it has grown long (copying what the background pass has not reached yet). */
#ifndef DC_SINK_WALCKPT_H
#define DC_SINK_WALCKPT_H

#include <sqlite3.h>
#include <stdbool.h>

typedef struct dc_walckpt dc_walckpt_t;

/* Takes over the automatic checkpoints of db (a connection to path in WAL mode, whose busy
 * timeout is busy_ms): returns NULL, leaving db as it was, when the second connection or the
 * thread cannot be had. */
dc_walckpt_t *dc_walckpt_start(sqlite3 *db, const char *path, int busy_ms);
/* The same with other marks (tests): a background pass from background_pages, the writer's
 * restart from restart_pages. */
dc_walckpt_t *dc_walckpt_start_with(sqlite3 *db, const char *path, int busy_ms,
                                    int background_pages, int restart_pages);
/* Stops the thread and closes its connection (before db is closed); NULL does nothing. */
void dc_walckpt_stop(dc_walckpt_t *c);

#endif

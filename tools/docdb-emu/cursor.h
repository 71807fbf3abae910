/* cursor.h: server-side cursors. A cursor owns the references to its remaining result
 * documents, so the store lock is not held between batches. Idle cursors expire. */
#ifndef EMU_CURSOR_H
#define EMU_CURSOR_H

#include "query.h"
#include "store.h"

typedef struct emu_cursor {
    int64_t id;
    char *ns;               /* "db.coll" as the reply's cursor.ns */
    emu_doc_t **docs;       /* results, one reference each */
    size_t n, pos;          /* docs[pos..n) are still to be returned */
    emu_projection_t *proj; /* applied as batches are built; owned, may be NULL */
    int64_t last_used_ms;
} emu_cursor_t;

/* A cursor over docs[0..n) (the cursor takes the array and its references) and proj. */
emu_cursor_t *emu_cursor_new(const char *ns, emu_doc_t **docs, size_t n, emu_projection_t *proj);
void emu_cursor_destroy(emu_cursor_t *c);

/* Appends cursor: {firstBatch|nextBatch: [...], id, ns} to reply, taking at most batch_size
 * documents (0 or negative: no count limit) and about 16 MiB. When documents remain and
 * keep_open, the cursor is registered (or stays registered) and its id is returned in the
 * reply; otherwise it is destroyed and the id is 0. The caller must not use c afterwards. */
void emu_cursor_reply(emu_cursor_t *c, bson_t *reply, bool first, int64_t batch_size,
                      bool keep_open);

/* Takes the cursor with this id out of the table for a getMore; code 43 CursorNotFound when
 * it is unknown, expired, or not on namespace ns. */
emu_cursor_t *emu_cursor_checkout(int64_t id, const char *ns, emu_error_t *err);
/* Kills a registered cursor; false when unknown. */
bool emu_cursor_kill(int64_t id);
/* Destroys cursors idle for longer than the configured timeout. */
void emu_cursor_reap(int64_t now_ms, int64_t timeout_ms);
void emu_cursor_cleanup(void);

#endif

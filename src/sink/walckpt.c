/* walckpt.c: WAL checkpoints beside the writer (walckpt.h says why). SQLite's own checkpoint API
 * does the copying; this file only decides when and on which thread. */
#include "sink/walckpt.h"
#include "core/log.h"

#include <pthread.h>
#include <stdlib.h>

/* A background pass starts once the log holds this many pages (SQLite's automatic checkpoint
 * starts at 1000 too). */
#define BACKGROUND_PAGES 1000
/* The log only goes back to its start when a checkpoint has copied all of it while nobody
 * writes; a writer that never pauses keeps it growing, so beyond this many pages (64 MiB of
 * 4 KiB pages) the writer restarts it itself, copying only what the background has not. */
#define RESTART_PAGES 16000

struct dc_walckpt {
    sqlite3 *writer, *db;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int background_pages, restart_pages, busy_ms;
    bool pending;        /* a pass is wanted */
    bool in_pass;        /* the thread is copying */
    bool restart_wanted; /* the writer waits to restart the log: no new pass */
    bool stop, warned;
};

static int
wal_hook(void *ctx, sqlite3 *db, const char *name, int pages)
{
    dc_walckpt_t *c = ctx;
    if (pages >= c->restart_pages) {
        /* The restart needs the log to itself: no new pass starts, the one running ends (a
         * few milliseconds), then the writer copies what is left and starts the log over.
         * A reader still on an older snapshot makes it a passive copy instead (busy timeout 0:
         * a long query must not stall the writer), and the next commit tries again. */
        pthread_mutex_lock(&c->mu);
        c->restart_wanted = true;
        while (c->in_pass)
            pthread_cond_wait(&c->cv, &c->mu);
        pthread_mutex_unlock(&c->mu);
        sqlite3_busy_timeout(db, 0);
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_RESTART, NULL, NULL);
        sqlite3_busy_timeout(db, c->busy_ms);
        pthread_mutex_lock(&c->mu);
        c->restart_wanted = false;
        c->pending = false;
        pthread_mutex_unlock(&c->mu);
        return SQLITE_OK;
    }
    if (pages >= c->background_pages) {
        pthread_mutex_lock(&c->mu);
        if (!c->pending) {
            c->pending = true;
            pthread_cond_broadcast(&c->cv);
        }
        pthread_mutex_unlock(&c->mu);
    }
    return SQLITE_OK;
}

static void *
run(void *arg)
{
    dc_walckpt_t *c = arg;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while ((!c->pending || c->restart_wanted) && !c->stop)
            pthread_cond_wait(&c->cv, &c->mu);
        if (c->stop)
            break;
        c->pending = false;
        c->in_pass = true;
        pthread_mutex_unlock(&c->mu);
        int rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY && !c->warned) {
            /* The log keeps what was not copied; the writer's next restart tries again. */
            c->warned = true;
            dc_log(DC_LOG_WARNING, "sqlite: a background checkpoint failed: %s",
                   sqlite3_errmsg(c->db));
        }
        pthread_mutex_lock(&c->mu);
        c->in_pass = false;
        pthread_cond_broadcast(&c->cv); /* a writer may wait for the pass to end */
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

dc_walckpt_t *
dc_walckpt_start(sqlite3 *writer, const char *path, int busy_ms)
{
    return dc_walckpt_start_with(writer, path, busy_ms, BACKGROUND_PAGES, RESTART_PAGES);
}

dc_walckpt_t *
dc_walckpt_start_with(sqlite3 *writer, const char *path, int busy_ms, int background_pages,
                      int restart_pages)
{
    dc_walckpt_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->writer = writer;
    c->busy_ms = busy_ms;
    c->background_pages = background_pages;
    c->restart_pages = restart_pages;
    if (sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
            SQLITE_OK ||
        sqlite3_exec(c->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_close(c->db);
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    if (pthread_create(&c->thread, NULL, run, c) != 0) {
        pthread_cond_destroy(&c->cv);
        pthread_mutex_destroy(&c->mu);
        sqlite3_close(c->db);
        free(c);
        return NULL;
    }
    sqlite3_wal_hook(writer, wal_hook, c); /* replaces the automatic checkpoint */
    return c;
}

void
dc_walckpt_stop(dc_walckpt_t *c)
{
    if (!c)
        return;
    sqlite3_wal_autocheckpoint(c->writer, BACKGROUND_PAGES); /* the writer's own again */
    pthread_mutex_lock(&c->mu);
    c->stop = true;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    sqlite3_close(c->db);
    free(c);
}

/* cmd_sync.c: `docdb-connector sync`: a local run into the embedded SQLite warehouse, with the
 * files `fivetran debug` uses (configuration.json, files/state.json, files/warehouse.db), a
 * progress line per table on a terminal, and fivetran debug's summary at the end. */
#include "cli/cli.h"
#include "core/mem.h"
#include "core/log.h"
#include "engine/sync.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void
usage(FILE *out)
{
    fputs("usage: docdb-connector sync [--config FILE] [--state FILE]\n"
          "                            [--destination sqlite:PATH] [--naming fivetran|source]\n"
          "                            [--log-format text|json]\n\n"
          "Reads every configured collection (a full read the first time, then changes by the\n"
          "cursor field) and upserts the documents into the destination, checkpointing as it\n"
          "goes; an interrupted sync resumes where it stopped.\n\n"
          "  --config FILE       configuration (default configuration.json)\n"
          "  --state FILE        sync state (default files/state.json)\n"
          "  --destination SPEC  sqlite:PATH (default sqlite:files/warehouse.db)\n"
          "  --naming N          fivetran (default: Fivetran's naming rules) or source (as is)\n"
          "  --log-format F      text (default) or json (Fivetran's JSON log lines)\n",
          out);
}

/* The state file mirrors the warehouse's copy of the state (committed with the rows of each
 * checkpoint): written at most once a second, so that a checkpoint costs one flush (the
 * warehouse's commit) instead of two, and whenever the sync ends. */
#define STATE_FILE_INTERVAL_S 1.0

typedef struct {
    const char *path;
    double last_write;
    char *pending; /* the last committed state, when not yet written */
} state_file_t;

static double
mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool
save_state_file(void *ctx, const dc_state_t *st, const char *json, dc_error_t *err)
{
    state_file_t *f = ctx;
    (void)st;
    free(f->pending);
    f->pending = NULL;
    double now = mono_s();
    if (now - f->last_write < STATE_FILE_INTERVAL_S) {
        f->pending = dc_xstrdup(json);
        return true;
    }
    f->last_write = now;
    return dc_state_save_json(f->path, json, false, err);
}

/* Continues from the warehouse's copy of the state when it belongs to this state file and is
 * further along (the file lags by up to a second, or a crash came between the two). A copy
 * that cannot be read is reported and left aside: the file still says where to resume. */
static bool
prefer_warehouse_state(dc_sink_t *sink, const char *dest, dc_state_t *st, dc_error_t *err)
{
    char *text = NULL;
    if (!dc_sink_load_state(sink, &text, err))
        return false;
    if (!text)
        return true;
    char origin[512];
    snprintf(origin, sizeof origin, "the state stored in %s", dest);
    dc_state_t copy;
    dc_state_init(&copy);
    dc_error_t perr = {0};
    if (!dc_state_parse(text, strlen(text), origin, &copy, &perr))
        dc_log(DC_LOG_WARNING, "%s; continuing from the state file", perr.message);
    else if (dc_state_is_newer_copy(&copy, st)) {
        dc_log(DC_LOG_INFO,
               "continuing from the warehouse's checkpoint %lld (the state file has %lld)",
               (long long)copy.checkpoint, (long long)st->checkpoint);
        dc_state_t old = *st;
        *st = copy;
        copy = old;
    }
    dc_state_cleanup(&copy);
    free(text);
    return true;
}

static void
summary(const dc_sync_stats_t *s, bool ok, const dc_error_t *err)
{
    printf("\nSYNC PROGRESS:\n"
           "Operation     | Calls\n"
           "------------- + ------------\n"
           "Upserts       | %llu\n"
           "Updates       | 0\n"
           "Deletes       | 0\n"
           "Truncates     | 0\n"
           "SchemaChanges | %llu\n"
           "Checkpoints   | %llu\n\n",
           (unsigned long long)s->upserts, (unsigned long long)s->schema_changes,
           (unsigned long long)s->checkpoints);
    if (s->ntables) {
        printf("%-24s %-24s %12s %12s %10s\n", "collection", "table", "records", "records/s",
               "seconds");
        for (size_t i = 0; i < s->ntables; i++) {
            const dc_table_stats_t *t = &s->tables[i];
            printf("%-24s %-24s %12llu %12.0f %10.2f\n", t->source, t->table ? t->table : "-",
                   (unsigned long long)t->records,
                   t->seconds > 0 ? (double)t->records / t->seconds : 0.0, t->seconds);
        }
    }
    printf("\n%llu records in %.2f s (%.0f records/s)\n", (unsigned long long)s->upserts,
           s->seconds, s->seconds > 0 ? (double)s->upserts / s->seconds : 0.0);
    if (ok)
        printf("Sync SUCCEEDED\n");
    else
        printf("Sync FAILED: %s\n", err->message);
    fflush(stdout);
}

int
dc_cmd_sync(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"state", required_argument, NULL, 's'},
        {"destination", required_argument, NULL, 'd'},
        {"naming", required_argument, NULL, 'n'},
        {"log-format", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config = "configuration.json", *state_path = "files/state.json";
    const char *dest = "sqlite:files/warehouse.db";
    dc_naming_t naming = DC_NAMING_FIVETRAN;
    bool json = false;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            config = optarg;
            break;
        case 's':
            state_path = optarg;
            break;
        case 'd':
            dest = optarg;
            break;
        case 'n':
            if (!dc_cli_naming("sync", optarg, &naming))
                return 2;
            break;
        case 'l':
            if (strcmp(optarg, "json") == 0)
                json = true;
            else if (strcmp(optarg, "text") != 0) {
                fprintf(stderr,
                        "docdb-connector sync: --log-format must be text or json, not "
                        "'%s'\n",
                        optarg);
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!dc_cli_no_arguments("sync", argc, argv, optind))
        return 2;
    dc_log_init(json, DC_LOG_INFO);

    dc_config_t cfg;
    dc_state_t st;
    dc_error_t err = {0};
    dc_sync_stats_t stats = {0};
    dc_sink_t *sink = NULL;
    int rc = 2;
    dc_state_init(&st);
    if (!dc_cli_load_config(config, &cfg))
        return 2;
    /* Everything that can be checked locally is, before any connection or write. */
    if (!dc_state_load(state_path, &st, &err)) {
        dc_cli_error("sync", &err);
        goto done;
    }
    if (strncmp(dest, "sqlite:", 7) != 0 || !dest[7]) {
        fprintf(stderr, "docdb-connector sync: --destination must be sqlite:PATH, not '%s'\n",
                dest);
        goto done;
    }
    if (!(sink = dc_sink_open(dest, &err))) {
        dc_cli_error("sync", &err);
        rc = dc_error_exit_code(&err);
        goto done;
    }
    dc_log(DC_LOG_INFO, "destination %s, state %s", dest, state_path);
    if (!prefer_warehouse_state(sink, dest, &st, &err)) {
        dc_cli_error("sync", &err);
        rc = dc_error_exit_code(&err);
        goto done;
    }
    dc_state_ensure_lineage(&st);
    state_file_t sf = {state_path, -1e9, NULL};
    dc_sync_opts_t o = {.cfg = &cfg,
                        .naming = naming,
                        .sink = sink,
                        .save_state = save_state_file,
                        .save_ctx = &sf,
                        .progress = !json && isatty(STDERR_FILENO)};
    bool ok = dc_sync_run(&o, &st, &stats, &err);
    /* The last state, durable with its folder: after a failure, the last one committed. */
    dc_error_t serr = {0};
    if (ok ? !dc_state_save(state_path, &st, true, &serr)
           : sf.pending && !dc_state_save_json(state_path, sf.pending, true, &serr)) {
        if (ok)
            err = serr;
        else
            dc_log(DC_LOG_SEVERE, "%s (the warehouse keeps a copy of the state)", serr.message);
        ok = false;
    }
    free(sf.pending);
    if (!ok)
        dc_cli_error("sync", &err);
    summary(&stats, ok, &err);
    rc = ok ? 0 : dc_error_exit_code(&err);
done:
    dc_sink_close(sink);
    dc_sync_stats_cleanup(&stats);
    dc_state_cleanup(&st);
    dc_config_cleanup(&cfg);
    return rc;
}

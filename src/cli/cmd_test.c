/* cmd_test.c: `docdb-connector test`: connects, authenticates, lists the collections a sync
 * would read and warns when the cursor field has no index; one verdict line. */
#include "cli/cli.h"
#include "core/log.h"
#include "engine/sync.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

static void
usage(FILE *out)
{
    fputs("usage: docdb-connector test [--config FILE]\n\n"
          "Connects and authenticates, lists the collections a sync would read, and warns\n"
          "about collections without an index on the cursor field. Prints one verdict line;\n"
          "exit status 0 when a sync can run, 1 when it cannot, 2 for a bad configuration.\n\n"
          "  --config FILE  configuration (default configuration.json)\n",
          out);
}

int
dc_cmd_test(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config = "configuration.json";
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            config = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!dc_cli_no_arguments("test", argc, argv, optind))
        return 2;
    dc_config_t cfg;
    if (!dc_cli_load_config(config, &cfg))
        return 2;
    dc_error_t err = {0};
    char **names = NULL;
    size_t n = 0, unindexed = 0;
    int rc = 1;
    dc_source_t *src = dc_source_open(&cfg, &err);
    if (!src || !dc_sync_collections(src, &cfg, &names, &n, &err))
        goto failed;
    if (!dc_sync_check_indexes(src, &cfg, names, n, &unindexed, &err))
        goto failed;
    printf("docdb-connector test: OK: %s, database '%s', %zu collection%s", dc_source_describe(src),
           dc_source_database(src), n, n == 1 ? "" : "s");
    if (unindexed)
        printf(", %zu without an index on '%s'", unindexed, cfg.cursor_field);
    printf("\n");
    rc = 0;
    goto done;
failed:
    printf("docdb-connector test: FAILED: %s\n", err.message);
    rc = dc_error_exit_code(&err);
done:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    dc_source_close(src);
    dc_config_cleanup(&cfg);
    return rc;
}

/* cmd_serve.c: `docdb-connector serve`: Fivetran's SDK v2 SourceConnector gRPC service on the
 * same engine as `sync` (docs/fivetran.md). Logs are Fivetran's JSON lines on stdout. */
#include "cli/cli.h"
#include "core/log.h"
#include "fivetran/server.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

static void
usage(FILE *out)
{
    fputs("usage: docdb-connector serve [--port N] [--bind ADDR]\n\n"
          "Serves Fivetran's SDK v2 SourceConnector gRPC service (ConfigurationForm, Test,\n"
          "Schema, Update) so that Fivetran can drive the connector. Logs one JSON object per\n"
          "line on stdout; stops on SIGTERM or SIGINT.\n\n"
          "  --port N     port to listen on (default 50051; 0 picks a free one)\n"
          "  --bind ADDR  listen on ADDR only (default: every IPv4 and IPv6 address)\n",
          out);
}

int
dc_cmd_serve(int argc, char **argv)
{
    static const struct option opts[] = {
        {"port", required_argument, NULL, 'p'},
        {"bind", required_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    long port = 50051;
    const char *bind = NULL;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'p': {
            char *end;
            errno = 0;
            port = strtol(optarg, &end, 10);
            if (errno || *end || end == optarg || port < 0 || port > 65535) {
                fprintf(stderr, "docdb-connector serve: --port must be 0 to 65535, not '%s'\n",
                        optarg);
                return 2;
            }
            break;
        }
        case 'b':
            bind = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!dc_cli_no_arguments("serve", argc, argv, optind))
        return 2;
    dc_log_init(true, DC_LOG_INFO);
    dc_log_to_stdout(true);
    return dc_serve_run(bind, (int)port);
}

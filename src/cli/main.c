/* main.c: docdb-connector's entry point: the command table, --help and --version. Everything a
 * command does lives in its own file. */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef DC_VERSION
#define DC_VERSION "0.1.0"
#endif

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"sync", dc_cmd_sync, "sync the collections into the destination (like `fivetran debug`)"},
    {"test", dc_cmd_test, "check the connection, authentication, collections and indexes"},
    {"schema", dc_cmd_schema, "print the tables, primary keys and column types a sync creates"},
    {"serve", dc_cmd_serve, "serve Fivetran's SDK v2 SourceConnector gRPC service"},
};

static void
usage(FILE *out)
{
    fputs("usage: docdb-connector <command> [options]\n\n"
          "Replicates AWS DocumentDB (or any MongoDB-compatible database) collections into an\n"
          "analytics destination, incrementally and exactly.\n\ncommands:\n",
          out);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fputs("\n'docdb-connector <command> --help' describes a command's options.\n"
          "Exit status: 0 success, 1 the command failed, 2 usage or configuration error.\n",
          out);
}

int
main(int argc, char **argv)
{
    /* libmongoc, initialised when it is loaded, keeps performance counters in shared memory
     * named after the process (/dev/shm/mongoc-PID) and removes it at exit. A killed connector
     * could not: the file stayed, and the next process given the same PID printed a warning on
     * stderr before main(), in the middle of JSON logs. Unlinked now, the mapping lives on
     * until the process ends, however it ends. */
    char shm[32];
    snprintf(shm, sizeof shm, "/mongoc-%ld", (long)getpid());
    shm_unlink(shm);

    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("docdb-connector %s\n", DC_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "docdb-connector: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}

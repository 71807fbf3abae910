/* main.c: docdb-emu's command line. Parses and checks the options, derives the SCRAM
 * credentials of the configured users, then hands over to the server loop. */
#include "server.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
usage(FILE *out)
{
    fputs("usage: docdb-emu --port N [--bind ADDR] [--tls-cert FILE --tls-key FILE]\n"
          "                 [--user NAME:PASSWORD]... [--wire-version N] [--replica-set NAME]\n"
          "                 [--personality documentdb|mongodb] [--cursor-timeout SECONDS]\n"
          "                 [--verbose]\n"
          "\n"
          "An in-memory server speaking the MongoDB wire protocol the way AWS DocumentDB does,\n"
          "for tests and demos (docs/test-server.md). Prints 'listening on HOST:PORT' when\n"
          "ready; stops on SIGTERM or SIGINT.\n"
          "\n"
          "  --port N              port to listen on; 0 picks a free one\n"
          "  --bind ADDR           address to listen on (default 127.0.0.1)\n"
          "  --tls-cert FILE       PEM certificate chain; every connection must then use TLS\n"
          "  --tls-key FILE        PEM private key of the certificate\n"
          "  --user NAME:PASSWORD  a user of the admin database (repeatable); with users,\n"
          "                        commands need SCRAM authentication\n"
          "  --wire-version N      maxWireVersion to advertise (default 13, MongoDB 5.0)\n"
          "  --replica-set NAME    present as the primary of replica set NAME\n"
          "  --personality P       documentdb (default): SCRAM-SHA-1 only, no retryable\n"
          "                        writes; mongodb: as mongod\n"
          "  --cursor-timeout S    idle cursors expire after S seconds (default 600)\n"
          "  --verbose             log connection errors and failed authentications\n",
          out);
}

static bool
parse_int(const char *s, long min, long max, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return false;
    *out = (int)v;
    return true;
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"port", required_argument, NULL, 'p'},
        {"bind", required_argument, NULL, 'b'},
        {"tls-cert", required_argument, NULL, 'c'},
        {"tls-key", required_argument, NULL, 'k'},
        {"user", required_argument, NULL, 'u'},
        {"wire-version", required_argument, NULL, 'w'},
        {"replica-set", required_argument, NULL, 'r'},
        {"personality", required_argument, NULL, 'P'},
        {"cursor-timeout", required_argument, NULL, 't'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    emu_config_t *cfg = &emu_config;
    bool have_port = false;
    int ch;

    cfg->bind = "127.0.0.1";
    cfg->wire_version = 13;
    cfg->personality = EMU_DOCUMENTDB;
    cfg->cursor_timeout_s = 600;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'p':
            if (!parse_int(optarg, 0, 65535, &cfg->port)) {
                fprintf(stderr, "docdb-emu: --port must be a number from 0 to 65535, not '%s'\n",
                        optarg);
                return 2;
            }
            have_port = true;
            break;
        case 'b':
            cfg->bind = optarg;
            break;
        case 'c':
            cfg->tls_cert = optarg;
            break;
        case 'k':
            cfg->tls_key = optarg;
            break;
        case 'u': {
            const char *colon = strchr(optarg, ':');
            if (!colon || colon == optarg || (size_t)(colon - optarg) >= 128) {
                fputs("docdb-emu: --user must be NAME:PASSWORD with a non-empty name\n", stderr);
                return 2;
            }
            if (cfg->nusers == EMU_MAX_USERS) {
                fprintf(stderr, "docdb-emu: at most %d users\n", EMU_MAX_USERS);
                return 2;
            }
            char name[128];
            memcpy(name, optarg, (size_t)(colon - optarg));
            name[colon - optarg] = '\0';
            if (!emu_scram_user_init(&cfg->users[cfg->nusers++], name, colon + 1)) {
                fputs("docdb-emu: cannot derive SCRAM credentials\n", stderr);
                return 1;
            }
            break;
        }
        case 'w':
            if (!parse_int(optarg, 6, 30, &cfg->wire_version)) {
                fprintf(stderr, "docdb-emu: --wire-version must be from 6 to 30, not '%s'\n",
                        optarg);
                return 2;
            }
            break;
        case 'r':
            cfg->replica_set = optarg;
            break;
        case 'P':
            if (strcmp(optarg, "documentdb") == 0)
                cfg->personality = EMU_DOCUMENTDB;
            else if (strcmp(optarg, "mongodb") == 0)
                cfg->personality = EMU_MONGODB;
            else {
                fprintf(stderr,
                        "docdb-emu: --personality must be documentdb or mongodb, not "
                        "'%s'\n",
                        optarg);
                return 2;
            }
            break;
        case 't':
            if (!parse_int(optarg, 1, 86400 * 365, &cfg->cursor_timeout_s)) {
                fprintf(stderr,
                        "docdb-emu: --cursor-timeout must be a positive number of "
                        "seconds, not '%s'\n",
                        optarg);
                return 2;
            }
            break;
        case 'v':
            cfg->verbose = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "docdb-emu: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!have_port) {
        fputs("docdb-emu: --port is required (0 picks a free port)\n", stderr);
        return 2;
    }
    if (!cfg->tls_cert != !cfg->tls_key) {
        fputs("docdb-emu: --tls-cert and --tls-key go together\n", stderr);
        return 2;
    }
    return emu_server_run();
}

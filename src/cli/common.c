/* common.c: what the subcommands share: loading the configuration and reporting errors. */
#include "cli/cli.h"
#include "core/log.h"

#include <stdio.h>
#include <string.h>

void
dc_cli_error(const char *cmd, const dc_error_t *err)
{
    if (dc_log_is_json())
        dc_log(DC_LOG_SEVERE, "%s", err->message);
    fprintf(stderr, "docdb-connector %s: %s\n", cmd, err->message);
}

bool
dc_cli_load_config(const char *path, dc_config_t *cfg)
{
    dc_error_t err = {0};
    if (dc_config_load(path, cfg, &err))
        return true;
    fprintf(stderr, "docdb-connector: %s\n", err.message);
    return false;
}

bool
dc_cli_naming(const char *cmd, const char *arg, dc_naming_t *naming)
{
    if (strcmp(arg, "fivetran") == 0)
        *naming = DC_NAMING_FIVETRAN;
    else if (strcmp(arg, "source") == 0)
        *naming = DC_NAMING_SOURCE;
    else {
        fprintf(stderr, "docdb-connector %s: --naming must be fivetran or source, not '%s'\n", cmd,
                arg);
        return false;
    }
    return true;
}

bool
dc_cli_no_arguments(const char *cmd, int argc, char **argv, int optind_)
{
    if (optind_ >= argc)
        return true;
    fprintf(stderr, "docdb-connector %s: unexpected argument '%s'\n", cmd, argv[optind_]);
    return false;
}

/* common.c: what the subcommands share: loading the configuration and reporting errors. */
#include "cli/cli.h"
#include "core/log.h"

#include <stdio.h>

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

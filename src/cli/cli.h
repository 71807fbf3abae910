/* cli.h: the subcommands of docdb-connector. Each parses its own options, runs, prints its
 * result and returns the process exit status (0 success, 1 failure, 2 usage/configuration). */
#ifndef DC_CLI_H
#define DC_CLI_H

#include "config/config.h"
#include "convert/naming.h"
#include "core/error.h"

int dc_cmd_sync(int argc, char **argv);
int dc_cmd_test(int argc, char **argv);
int dc_cmd_schema(int argc, char **argv);
int dc_cmd_serve(int argc, char **argv);

/* Loads the configuration file, printing the error and returning false on failure. */
bool dc_cli_load_config(const char *path, dc_config_t *cfg);
/* Prints "docdb-connector <cmd>: <message>" for an error on stderr (and the log). */
void dc_cli_error(const char *cmd, const dc_error_t *err);
/* Parses --naming's argument; prints what is wrong and returns false for anything else. */
bool dc_cli_naming(const char *cmd, const char *arg, dc_naming_t *naming);
/* True when getopt left no operand (from optind_ on); else prints the first one. */
bool dc_cli_no_arguments(const char *cmd, int argc, char **argv, int optind_);

#endif

/* cmd_schema.c: `docdb-connector schema`: the tables, primary keys and column types a sync
 * would create, as JSON on stdout, inferred from the declared columns and a sample of each
 * collection's documents. */
#include "cli/cli.h"
#include "core/buf.h"
#include "engine/sync.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
usage(FILE *out)
{
    fputs("usage: docdb-connector schema [--config FILE] [--naming fivetran|source]\n\n"
          "Prints as JSON the tables, primary keys and column types a sync would create,\n"
          "inferred from the declared columns and the first 1000 documents of each collection\n"
          "in _id order (a sync widens types further if later documents need it).\n\n"
          "  --config FILE  configuration (default configuration.json)\n"
          "  --naming N     fivetran (default) or source\n",
          out);
}

int
dc_cmd_schema(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"naming", required_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config = "configuration.json";
    dc_naming_t naming = DC_NAMING_FIVETRAN;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            config = optarg;
            break;
        case 'n':
            if (!dc_cli_naming("schema", optarg, &naming))
                return 2;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!dc_cli_no_arguments("schema", argc, argv, optind))
        return 2;
    dc_config_t cfg;
    if (!dc_cli_load_config(config, &cfg))
        return 2;
    dc_error_t err = {0};
    char **names = NULL;
    size_t n = 0;
    int rc = 1;
    dc_buf_t out;
    dc_buf_init(&out);
    dc_source_t *src = dc_source_open(&cfg, &err);
    if (!src || !dc_sync_collections(src, &cfg, &names, &n, &err))
        goto failed;
    dc_buf_append_str(&out, "{\"tables\": [");
    for (size_t i = 0; i < n; i++) {
        dc_table_t t;
        char *name = dc_name(names[i], true, naming);
        bool inferred = dc_sync_infer_table(src, names[i], name, naming, &t, &err);
        free(name);
        if (!inferred)
            goto failed;
        dc_buf_append_str(&out, i ? ",\n  {\"table\": " : "\n  {\"table\": ");
        dc_buf_append_json_string(&out, t.name, strlen(t.name));
        dc_buf_append_str(&out, ", \"source\": ");
        dc_buf_append_json_string(&out, t.source, strlen(t.source));
        dc_buf_append_str(&out, ", \"primary_key\": [\"_id\"], \"columns\": {");
        for (size_t c = 0; c < t.ncols; c++) {
            if (c)
                dc_buf_append_str(&out, ", ");
            dc_buf_append_json_string(&out, t.cols[c].name, strlen(t.cols[c].name));
            dc_buf_printf(&out, ": \"%s\"", dc_type_name(t.cols[c].type));
        }
        dc_buf_append_str(&out, "}}");
        dc_table_cleanup(&t);
    }
    dc_buf_append_str(&out, n ? "\n]}\n" : "]}\n");
    fwrite(out.data, 1, out.len, stdout);
    rc = 0;
    goto done;
failed:
    dc_cli_error("schema", &err);
    rc = dc_error_exit_code(&err);
done:
    dc_buf_cleanup(&out);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    dc_source_close(src);
    dc_config_cleanup(&cfg);
    return rc;
}

/* config.h: configuration.json: the key table (one place for names, types, defaults, help and
 * secrecy), parsing and validation before any connection, and the libmongoc URI built from it
 * with setters (so credentials need no escaping) plus a masked description for logs. */
#ifndef DC_CONFIG_H
#define DC_CONFIG_H

#include <mongoc/mongoc.h>

#include "core/error.h"

typedef struct {
    char *hostname;
    int port; /* 27017 */
    char *username;
    char *password;
    char *database;
    bool tls;                            /* true */
    char *tls_ca_file;                   /* NULL: the system store */
    bool tls_allow_invalid_certificates; /* false */
    bool tls_allow_invalid_hostnames;    /* false */
    char *auth_mechanism;                /* "SCRAM-SHA-1" */
    char *auth_source;                   /* "admin" */
    char *replica_set;                   /* NULL */
    char *read_preference;               /* NULL: primary */
    bool direct_connection;              /* true, unless replica_set is given */
    char *uri;                           /* a full MongoDB URI instead of the fields */
    char **collections;                  /* NULL: every collection of the database */
    size_t ncollections;
    char *cursor_field;          /* "updated_at" */
    int64_t start_date_ms;       /* 1990-01-01T00:00:00Z */
    bool start_date_set;         /* the key was given */
    int batch_size;              /* documents per server batch */
    int checkpoint_interval;     /* 1000 records */
    int cursor_lookback_seconds; /* 0 */
} dc_config_t;

typedef struct {
    const char *name;
    const char *type; /* "string", "integer", "boolean", "list", "datetime", "file" */
    const char *dflt; /* NULL: no default */
    bool secret;
    const char *help;
} dc_config_key_t;

/* The configuration keys, in documentation order. */
const dc_config_key_t *dc_config_keys(size_t *n);

/* Reads and validates the file at path. Errors (domain DC_ERR_CONFIG) name the key, or the line
 * of a JSON syntax error; unknown keys are logged as warnings. */
bool dc_config_load(const char *path, dc_config_t *cfg, dc_error_t *err);
/* The same from JSON text; origin names it in messages. */
bool dc_config_parse(const char *json, size_t len, const char *origin, dc_config_t *cfg,
                     dc_error_t *err);
void dc_config_cleanup(dc_config_t *cfg);

/* A new URI for cfg (destroy with mongoc_uri_destroy): retryWrites=false, the TLS options,
 * SCRAM-SHA-1 unless told otherwise, directConnection unless a replica set is named. */
mongoc_uri_t *dc_config_uri(const dc_config_t *cfg, dc_error_t *err);

/* "mongodb://user:****@host:port/?tls=true&..." for logs: never the password. */
void dc_config_describe(const dc_config_t *cfg, char *out, size_t n);

#endif

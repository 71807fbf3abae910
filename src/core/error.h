/* error.h: the connector's error value. Library code fills a caller-provided dc_error_t and
 * returns false/NULL; only the command layer prints it, once. Messages say what failed, then
 * why, and never contain credentials. */
#ifndef DC_ERROR_H
#define DC_ERROR_H

#include <stdbool.h>

typedef enum {
    DC_ERR_NONE = 0,
    DC_ERR_USAGE,    /* bad command line */
    DC_ERR_CONFIG,   /* configuration file or value */
    DC_ERR_STATE,    /* state file unreadable or corrupt */
    DC_ERR_SOURCE,   /* the database: network, server errors */
    DC_ERR_AUTH,     /* authentication refused */
    DC_ERR_TLS,      /* TLS handshake or certificate */
    DC_ERR_SINK,     /* the destination */
    DC_ERR_IO,       /* local files */
    DC_ERR_INTERNAL, /* a bug */
} dc_err_domain_t;

typedef struct {
    dc_err_domain_t domain;
    int code;       /* the server's error code for DC_ERR_SOURCE, else 0 */
    bool retryable; /* a transient source error: retry and resume */
    char message[1024];
} dc_error_t;

/* Sets err (when not NULL); returns false. */
bool dc_error_set(dc_error_t *err, dc_err_domain_t domain, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes err->message with "<context>: ". */
void dc_error_prefix(dc_error_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The exit status for an error: 2 for usage, configuration and state errors, else 1. */
int dc_error_exit_code(const dc_error_t *err);

#endif

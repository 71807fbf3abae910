/* error.c: filling and prefixing dc_error_t. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

bool
dc_error_set(dc_error_t *err, dc_err_domain_t domain, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        err->domain = domain;
        err->code = 0;
        err->retryable = false;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return false;
}

void
dc_error_prefix(dc_error_t *err, const char *fmt, ...)
{
    char old[sizeof err->message];
    va_list ap;
    if (!err)
        return;
    memcpy(old, err->message, sizeof old);
    va_start(ap, fmt);
    int n = vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n + 2 >= sizeof err->message)
        return; /* the prefix alone fills the message */
    size_t used = (size_t)n;
    size_t room = sizeof err->message - used - 2;
    size_t len = strnlen(old, room);
    memcpy(err->message + used, ": ", 2);
    memcpy(err->message + used + 2, old, len);
    err->message[used + 2 + len] = '\0';
}

int
dc_error_exit_code(const dc_error_t *err)
{
    switch (err->domain) {
    case DC_ERR_USAGE:
    case DC_ERR_CONFIG:
    case DC_ERR_STATE:
        return 2;
    default:
        return 1;
    }
}

/* log.c: formatting of log lines. One write(2) per line so that lines from threads never
 * interleave. */
#include "log.h"
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static bool as_json;
static dc_log_level_t min_level = DC_LOG_INFO;
static int log_fd = STDERR_FILENO;

void
dc_log_to_stdout(bool on)
{
    log_fd = on ? STDOUT_FILENO : STDERR_FILENO;
}

void
dc_log_init(bool json, dc_log_level_t min)
{
    as_json = json;
    min_level = min;
}

bool
dc_log_is_json(void)
{
    return as_json;
}

void
dc_log(dc_log_level_t level, const char *fmt, ...)
{
    static const char *const names[] = {"DEBUG", "INFO", "WARNING", "SEVERE"};
    char msg[2048];
    va_list ap;
    if (level < min_level)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    dc_buf_t b;
    dc_buf_init(&b);
    if (as_json) {
        /* Fivetran's levels: INFO, WARNING, SEVERE (DEBUG is written as INFO). */
        dc_buf_printf(
            &b, "{\"level\": \"%s\", \"message\": ", level == DC_LOG_DEBUG ? "INFO" : names[level]);
        dc_buf_append_json_string(&b, msg, strlen(msg));
        dc_buf_append_str(&b, ", \"message-origin\": \"sdk_connector\"}\n");
    } else {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        dc_buf_printf(&b, "%02d:%02d:%02d.%03ld %-8s %s\n", tm.tm_hour, tm.tm_min, tm.tm_sec,
                      ts.tv_nsec / 1000000, names[level], msg);
    }
    ssize_t w = write(log_fd, b.data, b.len);
    (void)w;
    dc_buf_cleanup(&b);
}

/* log.h: the connector's log lines on stderr, as text or as Fivetran's JSON lines
 * ({"level", "message", "message-origin": "sdk_connector"}). Callers never pass credentials
 * or document contents at INFO level. */
#ifndef DC_LOG_H
#define DC_LOG_H

#include <stdbool.h>

typedef enum { DC_LOG_DEBUG, DC_LOG_INFO, DC_LOG_WARNING, DC_LOG_SEVERE } dc_log_level_t;

/* json: JSON lines; min: the lowest level written. Default: text, INFO. */
void dc_log_init(bool json, dc_log_level_t min);
/* Writes to stdout instead of stderr (`serve`: Fivetran reads connector logs from stdout). */
void dc_log_to_stdout(bool on);
bool dc_log_is_json(void);
void dc_log(dc_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif

/* failpoint.h: mongod's `failCommand` fail point, configured with configureFailPoint exactly as
 * drivers' own test suites do against a real server (mode times/alwaysOn/off; data
 * failCommands, errorCode, closeConnection, blockConnection + blockTimeMS, errorLabels,
 * appName). */
#ifndef EMU_FAILPOINT_H
#define EMU_FAILPOINT_H

#include "emu.h"

typedef struct {
    bool close_connection;
    int block_ms;
    int error_code; /* 0: no error reply */
    bson_t labels;  /* errorLabels array (owned; emu_failpoint_action_cleanup) */
} emu_fp_action_t;

/* Handles {configureFailPoint: "failCommand", mode, data}; appends {count} to reply. */
bool emu_failpoint_configure(const bson_t *cmd, bson_t *reply, emu_error_t *err);

/* Whether the fail point fires for this command from a client named app_name; when it does,
 * act is filled (and must be cleaned up) and one `times` use is consumed. */
bool emu_failpoint_check(const char *cmd_name, const char *app_name, emu_fp_action_t *act);
void emu_failpoint_action_cleanup(emu_fp_action_t *act);
void emu_failpoint_cleanup(void);

#endif

/* emu_harness.h: starts docdb-emu as a child process for a C integration test and stops it.
 * The binary comes from $DOCDB_EMU, certificates from $TEST_CERTS (set by CMake). */
#ifndef DC_EMU_HARNESS_H
#define DC_EMU_HARNESS_H

#include <stdbool.h>
#include <sys/types.h>

typedef struct {
    pid_t pid;
    int port;
} emu_proc_t;

/* Starts docdb-emu --port 0 plus the NULL-terminated extra arguments and waits for its
 * "listening on" line. With tls, adds the test certificates. False when it did not start. */
bool emu_proc_start(emu_proc_t *p, bool tls, const char *const *extra);

/* Sends SIGTERM and waits; returns the exit status (0 when it stopped cleanly, without leaks
 * under AddressSanitizer), or -1 when it died of a signal. */
int emu_proc_stop(emu_proc_t *p);

/* Path of a file in the certificate directory (static buffer). */
const char *emu_cert(const char *name);

#endif

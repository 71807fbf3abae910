/* emu.h: types shared by every module of docdb-emu, the MongoDB-wire-compatible test server.
 * Only plain declarations live here; no module's internals. */
#ifndef EMU_H
#define EMU_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stdint.h>

/* MongoDB error codes the server answers (names from mongod's error_codes.yml). */
enum {
    EMU_BAD_VALUE = 2,
    EMU_FAILED_TO_PARSE = 9,
    EMU_UNAUTHORIZED = 13,
    EMU_TYPE_MISMATCH = 14,
    EMU_AUTHENTICATION_FAILED = 18,
    EMU_NAMESPACE_NOT_FOUND = 26,
    EMU_INDEX_NOT_FOUND = 27,
    EMU_CURSOR_NOT_FOUND = 43,
    EMU_NAMESPACE_EXISTS = 48,
    EMU_COMMAND_NOT_FOUND = 59,
    EMU_INVALID_NAMESPACE = 73,
    EMU_INVALID_OPTIONS = 72,
    EMU_OPERATION_FAILED = 96,
    EMU_PROTOCOL_ERROR = 17,
    EMU_IMMUTABLE_FIELD = 66,
    EMU_CANNOT_CREATE_INDEX = 67,
    EMU_INDEX_KEY_SPECS_CONFLICT = 86,
    EMU_MECHANISM_UNAVAILABLE = 334,
    EMU_DOCDB_RETRYABLE_WRITES = 301,
    EMU_LOCATION_OP_NOT_SUPPORTED = 115,
    EMU_DUPLICATE_KEY = 11000,
};

/* An error as a command reply carries it: {ok: 0, errmsg, code, codeName}. */
typedef struct {
    int code;
    char msg[512];
} emu_error_t;

/* Fills err (when not NULL) with code and a printf-formatted message; returns false so that
 * callers can write `return emu_error_set(...)`. */
bool emu_error_set(emu_error_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* mongod's name of a BSON type ("double", "objectId", ...), as its messages use it. */
const char *emu_type_name(bson_type_t t);

/* The codeName mongod gives a code, or "" for codes it does not name the same way. */
const char *emu_code_name(int code);

#endif

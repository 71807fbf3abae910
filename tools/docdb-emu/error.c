/* error.c: the emulator's error values and MongoDB's code names. */
#include "emu.h"

#include <stdarg.h>
#include <stdio.h>

bool
emu_error_set(emu_error_t *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        err->code = code;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return false;
}

const char *
emu_code_name(int code)
{
    /* Names from mongod's src/mongo/base/error_codes.yml. DocumentDB's 301 has its own meaning
     * (docs/test-server.md), so it is given the name DocumentDB's message implies. */
    switch (code) {
    case 2:
        return "BadValue";
    case 9:
        return "FailedToParse";
    case 11:
        return "UserNotFound";
    case 13:
        return "Unauthorized";
    case 14:
        return "TypeMismatch";
    case 17:
        return "ProtocolError";
    case 18:
        return "AuthenticationFailed";
    case 26:
        return "NamespaceNotFound";
    case 27:
        return "IndexNotFound";
    case 43:
        return "CursorNotFound";
    case 48:
        return "NamespaceExists";
    case 50:
        return "MaxTimeMSExpired";
    case 59:
        return "CommandNotFound";
    case 66:
        return "ImmutableField";
    case 67:
        return "CannotCreateIndex";
    case 72:
        return "InvalidOptions";
    case 73:
        return "InvalidNamespace";
    case 86:
        return "IndexKeySpecsConflict";
    case 91:
        return "ShutdownInProgress";
    case 96:
        return "OperationFailed";
    case 115:
        return "CommandNotSupported";
    case 189:
        return "PrimarySteppedDown";
    case 262:
        return "ExceededTimeLimit";
    case 334:
        return "MechanismUnavailable";
    case 10107:
        return "NotWritablePrimary";
    case 11000:
        return "DuplicateKey";
    case 11600:
        return "InterruptedAtShutdown";
    case 11602:
        return "InterruptedDueToReplStateChange";
    case 13435:
        return "NotPrimaryNoSecondaryOk";
    case 13436:
        return "NotPrimaryOrSecondary";
    default:
        return "";
    }
}

const char *
emu_type_name(bson_type_t t)
{
    switch (t) {
    case BSON_TYPE_DOUBLE:
        return "double";
    case BSON_TYPE_UTF8:
        return "string";
    case BSON_TYPE_DOCUMENT:
        return "object";
    case BSON_TYPE_ARRAY:
        return "array";
    case BSON_TYPE_BINARY:
        return "binData";
    case BSON_TYPE_UNDEFINED:
        return "undefined";
    case BSON_TYPE_OID:
        return "objectId";
    case BSON_TYPE_BOOL:
        return "bool";
    case BSON_TYPE_DATE_TIME:
        return "date";
    case BSON_TYPE_NULL:
        return "null";
    case BSON_TYPE_REGEX:
        return "regex";
    case BSON_TYPE_DBPOINTER:
        return "dbPointer";
    case BSON_TYPE_CODE:
        return "javascript";
    case BSON_TYPE_SYMBOL:
        return "symbol";
    case BSON_TYPE_CODEWSCOPE:
        return "javascriptWithScope";
    case BSON_TYPE_INT32:
        return "int";
    case BSON_TYPE_TIMESTAMP:
        return "timestamp";
    case BSON_TYPE_INT64:
        return "long";
    case BSON_TYPE_DECIMAL128:
        return "decimal";
    case BSON_TYPE_MINKEY:
        return "minKey";
    case BSON_TYPE_MAXKEY:
        return "maxKey";
    default:
        return "missing";
    }
}

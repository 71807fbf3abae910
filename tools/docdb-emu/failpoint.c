/* failpoint.c: the failCommand fail point (mongod's src/mongo/db/commands.cpp semantics as the
 * drivers' specifications use it: ../shared/research/docdb-wire.md §4). One process-wide state
 * behind a mutex. */
#include "failpoint.h"

#include <pthread.h>
#include <string.h>

enum { OFF, TIMES, ALWAYS, SKIP };

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int mode = OFF;
static int64_t remaining; /* for TIMES: fires left; for SKIP: passes left */
static int64_t entered;   /* times the fail point fired since it was configured */
static bson_t *data;      /* copy of the data document */

static bool
parse_mode(const bson_t *cmd, int *m, int64_t *n, emu_error_t *err)
{
    bson_iter_t it, sub;
    if (!bson_iter_init_find(&it, cmd, "mode"))
        return emu_error_set(err, EMU_BAD_VALUE, "Missing required 'mode' field");
    if (BSON_ITER_HOLDS_UTF8(&it)) {
        const char *s = bson_iter_utf8(&it, NULL);
        if (strcmp(s, "off") == 0)
            *m = OFF;
        else if (strcmp(s, "alwaysOn") == 0)
            *m = ALWAYS;
        else
            return emu_error_set(err, EMU_BAD_VALUE, "unknown mode: %s", s);
        return true;
    }
    if (BSON_ITER_HOLDS_DOCUMENT(&it) && bson_iter_recurse(&it, &sub) && bson_iter_next(&sub) &&
        BSON_ITER_HOLDS_NUMBER(&sub)) {
        const char *k = bson_iter_key(&sub);
        *n = bson_iter_as_int64(&sub);
        if (*n < 0)
            return emu_error_set(err, EMU_BAD_VALUE, "mode.%s must be non-negative", k);
        if (strcmp(k, "times") == 0) {
            *m = *n ? TIMES : OFF;
            return true;
        }
        if (strcmp(k, "skip") == 0) {
            *m = SKIP;
            return true;
        }
        if (strcmp(k, "activationProbability") == 0)
            return emu_error_set(err, EMU_BAD_VALUE, "activationProbability is not supported");
    }
    return emu_error_set(err, EMU_BAD_VALUE,
                         "'mode' must be \"off\", \"alwaysOn\", {times: n} or {skip: n}");
}

bool
emu_failpoint_configure(const bson_t *cmd, bson_t *reply, emu_error_t *err)
{
    bson_iter_t it;
    if (!bson_iter_init_find(&it, cmd, "configureFailPoint") || !BSON_ITER_HOLDS_UTF8(&it))
        return emu_error_set(err, EMU_BAD_VALUE, "configureFailPoint needs a fail point name");
    const char *name = bson_iter_utf8(&it, NULL);
    if (strcmp(name, "failCommand") != 0)
        return emu_error_set(err, EMU_BAD_VALUE, "Cannot find failPoint named %s", name);
    int m = OFF;
    int64_t n = 0;
    if (!parse_mode(cmd, &m, &n, err))
        return false;
    bson_t *d = NULL;
    if (bson_iter_init_find(&it, cmd, "data")) {
        const uint8_t *buf;
        uint32_t len;
        if (!BSON_ITER_HOLDS_DOCUMENT(&it))
            return emu_error_set(err, EMU_TYPE_MISMATCH, "'data' must be a document");
        bson_iter_document(&it, &len, &buf);
        d = bson_new_from_data(buf, len);
    }
    if (m != OFF) {
        bson_iter_t f;
        if (!d || !bson_iter_init_find(&f, d, "failCommands") || !BSON_ITER_HOLDS_ARRAY(&f)) {
            bson_destroy(d);
            return emu_error_set(err, EMU_BAD_VALUE, "'data' must contain a 'failCommands' array");
        }
    }
    pthread_mutex_lock(&mu);
    int64_t count = entered;
    bson_destroy(data);
    data = d;
    mode = m;
    remaining = n;
    entered = 0;
    pthread_mutex_unlock(&mu);
    bson_append_int64(reply, "count", 5, count);
    return true;
}

static bool
array_has(const bson_t *doc, const char *field, const char *value)
{
    bson_iter_t it, arr;
    if (!bson_iter_init_find(&it, doc, field) || !BSON_ITER_HOLDS_ARRAY(&it) ||
        !bson_iter_recurse(&it, &arr))
        return false;
    while (bson_iter_next(&arr))
        if (BSON_ITER_HOLDS_UTF8(&arr) && strcmp(bson_iter_utf8(&arr, NULL), value) == 0)
            return true;
    return false;
}

bool
emu_failpoint_check(const char *cmd_name, const char *app_name, emu_fp_action_t *act)
{
    bson_iter_t it;
    bool fire = false;

    pthread_mutex_lock(&mu);
    if (mode == OFF || !data || !array_has(data, "failCommands", cmd_name))
        goto done;
    if (bson_iter_init_find(&it, data, "appName") && BSON_ITER_HOLDS_UTF8(&it) &&
        strcmp(bson_iter_utf8(&it, NULL), app_name ? app_name : "") != 0)
        goto done;
    if (mode == SKIP && remaining > 0) {
        remaining--;
        goto done;
    }
    fire = true;
    entered++;
    if (mode == TIMES && --remaining == 0)
        mode = OFF;
    memset(act, 0, sizeof *act);
    bson_init(&act->labels);
    if (bson_iter_init_find(&it, data, "closeConnection") && BSON_ITER_HOLDS_BOOL(&it))
        act->close_connection = bson_iter_bool(&it);
    if (bson_iter_init_find(&it, data, "errorCode") && BSON_ITER_HOLDS_NUMBER(&it))
        act->error_code = (int)bson_iter_as_int64(&it);
    if (bson_iter_init_find(&it, data, "blockConnection") && bson_iter_as_bool(&it) &&
        bson_iter_init_find(&it, data, "blockTimeMS") && BSON_ITER_HOLDS_NUMBER(&it))
        act->block_ms = (int)bson_iter_as_int64(&it);
    if (bson_iter_init_find(&it, data, "errorLabels") && BSON_ITER_HOLDS_ARRAY(&it)) {
        const uint8_t *buf;
        uint32_t len;
        bson_t arr;
        bson_iter_array(&it, &len, &buf);
        if (bson_init_static(&arr, buf, len)) {
            bson_destroy(&act->labels);
            bson_copy_to(&arr, &act->labels);
        }
    }
done:
    pthread_mutex_unlock(&mu);
    return fire;
}

void
emu_failpoint_action_cleanup(emu_fp_action_t *act)
{
    bson_destroy(&act->labels);
}

void
emu_failpoint_cleanup(void)
{
    pthread_mutex_lock(&mu);
    bson_destroy(data);
    data = NULL;
    mode = OFF;
    pthread_mutex_unlock(&mu);
}

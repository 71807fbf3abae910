/* commands.h: command handlers shared between commands.c (dispatch, handshake, admin) and
 * crud.c (documents), and the small argument readers they use. A handler appends its reply
 * fields to `reply` and returns true, or fills err and returns false. */
#ifndef EMU_COMMANDS_H
#define EMU_COMMANDS_H

#include "query.h"
#include "server.h"

bool emu_cmd_insert(emu_cmd_t *c, bson_t *reply, emu_error_t *err);
bool emu_cmd_update(emu_cmd_t *c, bson_t *reply, emu_error_t *err);
bool emu_cmd_delete(emu_cmd_t *c, bson_t *reply, emu_error_t *err);
bool emu_cmd_find(emu_cmd_t *c, bson_t *reply, emu_error_t *err);
bool emu_cmd_get_more(emu_cmd_t *c, bson_t *reply, emu_error_t *err);
bool emu_cmd_kill_cursors(emu_cmd_t *c, bson_t *reply, emu_error_t *err);
bool emu_cmd_count(emu_cmd_t *c, bson_t *reply, emu_error_t *err);
bool emu_cmd_aggregate(emu_cmd_t *c, bson_t *reply, emu_error_t *err);
bool emu_cmd_explain(emu_cmd_t *c, bson_t *reply, emu_error_t *err);

/* Argument readers. Views returned by emu_cmd_doc borrow from the command. */
bool emu_cmd_string(const emu_cmd_t *c, const char *field, const char **out, emu_error_t *err);
bool emu_cmd_doc(const emu_cmd_t *c, const char *field, bson_t *out, bool *present,
                 emu_error_t *err);
bool emu_cmd_int64(const emu_cmd_t *c, const char *field, int64_t *out, bool *present,
                   emu_error_t *err);
bool emu_cmd_bool(const emu_cmd_t *c, const char *field, bool dflt);
/* Checks a database name and, when coll is not NULL, a collection name (code 73). */
bool emu_valid_ns(const char *db, const char *coll, emu_error_t *err);

#endif

/* update.h: MongoDB's update command semantics for one document: replacement documents and
 * the $set, $unset and $inc operators on top-level and dotted paths, and the base document an
 * upsert starts from. Pure functions over BSON; no store, no I/O. */
#ifndef EMU_UPDATE_H
#define EMU_UPDATE_H

#include "emu.h"

/* True when `update` is an operator update (its first key starts with '$'), false when it is a
 * replacement document. */
bool emu_update_is_operator(const bson_t *update);

/* Checks an update document before any document is touched: a replacement must hold no '$' keys
 * at top level (code 52); an operator update may use only $set, $unset and $inc (any other
 * operator: code 9 FailedToParse "Unknown modifier: $x"), each with a document argument; $inc
 * values must be numbers (code 14 TypeMismatch); two paths that overlap conflict (code 40). As in
 * mongod 5.0+, {$set: {}} is a valid no-op and {} an empty replacement. */
bool emu_update_validate(const bson_t *update, emu_error_t *err);

/* Applies a validated `update` to `doc`, writing the new document into `out` (initialised,
 * empty). A replacement keeps doc's _id first (a different _id in the replacement is code 66
 * ImmutableField). Operators keep existing fields in place and create new ones in sorted order
 * (as mongod 5.0+ does), create intermediate documents for dotted paths, and fail with code 66
 * on a change of _id, code 14 when $inc meets a non-number and code 28 PathNotViable when a path
 * crosses a non-document. Results over 16 MiB are code 17419. *modified is set to whether the
 * result differs from doc. */
bool emu_update_apply(const bson_t *doc, const bson_t *update, bson_t *out, bool *modified,
                      emu_error_t *err);

/* The document an upsert inserts when nothing matched: the equality conditions of `filter`
 * (field: value and field: {$eq: value}, top level and inside $and; dotted paths become nested
 * documents) with the update applied (operators) or the replacement itself. `out` gets no _id
 * when neither the filter nor the update gives one; the caller adds a generated ObjectId. */
bool emu_update_upsert_doc(const bson_t *filter, const bson_t *update, bson_t *out,
                           emu_error_t *err);

#endif

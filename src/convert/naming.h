/* naming.h: destination names for collections and fields. Fivetran's naming rules
 * (../shared/research/fivetran-sdk.md §4.5) or the source name as is. */
#ifndef DC_NAMING_H
#define DC_NAMING_H

#include <stdbool.h>

typedef enum { DC_NAMING_FIVETRAN, DC_NAMING_SOURCE } dc_naming_t;

/* The destination name of a table (is_table) or column under `naming`, newly allocated (free
 * with free()). Fivetran naming: transliterate to ASCII (ICU "Any-Latin; Latin-ASCII"),
 * replace other characters with '_', split camelCase, collapse '_' runs, lowercase, prefix '_'
 * to a leading digit, and for tables drop leading '_' before a letter. Never returns "". */
char *dc_name(const char *source, bool is_table, dc_naming_t naming);

#endif

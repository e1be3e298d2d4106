/* enum_names.c - the name tables of the enumerated settings, from the lists of enum_names.h. */
#include "geneinr/enum_names.h"

#include <stddef.h>

#define GI_ENUM_NAME_(id, name) name,
#define GI_ENUM_DEFINE_(list, tag, names) const char *const names[] = {list(GI_ENUM_NAME_) NULL};
GI_ENUM_LISTS(GI_ENUM_DEFINE_)


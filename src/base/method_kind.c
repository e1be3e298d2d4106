/* method_kind.c - method names and properties from the GI_METHOD_LIST table (see method_kind.h). */
#include "geneinr/method_kind.h"

#include <string.h>

const char *const GI_METHOD_NAMES[] = {
#define GI_METHOD_NAME(id, name, anat, impl) name,
    GI_METHOD_LIST(GI_METHOD_NAME)
#undef GI_METHOD_NAME
    NULL};

int gi_method_parse(const char *name)
{
    for (int k = 0; GI_METHOD_NAMES[k]; k++)
        if (strcmp(name, GI_METHOD_NAMES[k]) == 0)
            return k;
    return -1;
}

int gi_method_needs_anatomy(int kind)
{
    static const int needs[] = {
#define GI_METHOD_ANAT(id, name, anat, impl) anat,
        GI_METHOD_LIST(GI_METHOD_ANAT)
#undef GI_METHOD_ANAT
    };
    return kind >= 0 && kind < GI_METHOD_COUNT && needs[kind];
}

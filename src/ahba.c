/* ahba.c - reading the AHBA donor folders (see ahba.h). */
#include "geneinr/ahba.h"

#include <string.h>

/* The six donors of the release: numeric id and specimen name (facts of the
 * release, also in abagen's donor_info.csv). */
static const struct { const char *id, *name; } DONORS[] = {
    {"9861", "H0351.2001"},  {"10021", "H0351.2002"}, {"12876", "H0351.1009"},
    {"14380", "H0351.1012"}, {"15496", "H0351.1015"}, {"15697", "H0351.1016"},
};

const char *gi_ahba_donor_name(const char *id_or_name)
{
    for (size_t i = 0; i < sizeof DONORS / sizeof DONORS[0]; i++)
        if (strcmp(id_or_name, DONORS[i].id) == 0 || strcmp(id_or_name, DONORS[i].name) == 0)
            return DONORS[i].name;
    return NULL;
}

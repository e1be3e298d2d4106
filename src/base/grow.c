/* grow.c - capacity growth of a malloc'd array (grow.h). */
#include "geneinr/grow.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int gi_grow(void *parr, size_t *cap, size_t need, size_t sz)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need) {
        if (c > SIZE_MAX / 2)
            return -1;
        c *= 2;
    }
    if (c > SIZE_MAX / sz)
        return -1;
    /* The caller's pointer is read and written as bytes: it may point to any
     * object type. */
    void *p;
    memcpy(&p, parr, sizeof p);
    void *q = realloc(p, c * sz);
    if (!q)
        return -1;
    memcpy(parr, &q, sizeof q);
    *cap = c;
    return 0;
}

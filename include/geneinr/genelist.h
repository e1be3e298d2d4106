/* genelist.h - gene list files: one gene symbol a line.
 *
 * Used by data.genes (which columns of a sample table are genes) and
 * prepare.genes (which genes `geneinr prepare` writes). Leading and trailing
 * blanks are trimmed; empty lines and lines starting with '#' are skipped; a
 * symbol listed twice is an error naming both lines. Plain or .gz.
 */
#ifndef GENEINR_GENELIST_H
#define GENEINR_GENELIST_H

#include "geneinr/error.h"

typedef struct gi_genelist {
    int n;
    char **names;     /* [n] in file order */
    long *lines;      /* [n] 1-based line of each symbol, for messages */
    char *path;
} gi_genelist;

int gi_genelist_read(gi_genelist *l, const char *path, gi_err *err);

/* Index of name in the list, or -1 (linear; lists are short). */
int gi_genelist_find(const gi_genelist *l, const char *name);

void gi_genelist_free(gi_genelist *l);

#endif

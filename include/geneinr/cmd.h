/* cmd.h - commands implemented outside cli.c (cli.c parses and dispatches).
 * Each returns 0 or -1 with the message in err, agreed across the ranks of comm. */
#ifndef GENEINR_CMD_H
#define GENEINR_CMD_H

#include <mpi.h>

#include "geneinr/error.h"

/* geneinr eval CONFIG [--out DIR] [--set k=v]... */
int gi_cmd_eval(MPI_Comm comm, const char *config, const char *out, const char *const *sets, int n_sets, gi_err *err);

/* geneinr regions ATLAS --parcellation LABELS.nii.gz [--labels LABELS.csv] --out regions.csv */
int gi_cmd_regions(MPI_Comm comm, const char *atlas, const char *parcellation, const char *labels, const char *out,
                   gi_err *err);

#endif

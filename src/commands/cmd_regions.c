/* cmd_regions.c - `geneinr regions ATLAS --parcellation LABELS.nii.gz [--labels LABELS.csv] --out regions.csv`.
 * Serial work on rank 0 (one pass per gene over the atlas); see regions.h. */
#include <stdio.h>

#include "geneinr/cmd.h"
#include "geneinr/dist.h"
#include "geneinr/regions.h"

int gi_cmd_regions(MPI_Comm comm, const char *atlas, const char *parcellation, const char *labels, const char *out,
                   gi_err *err)
{
    int rank;
    MPI_Comm_rank(comm, &rank);
    if (!atlas || !parcellation || !out)
        return gi_fail(err, "regions needs ATLAS --parcellation LABELS.nii.gz --out regions.csv "
                       "[--labels LABELS.csv]");
    int rc = 0;
    if (rank == 0) {
        long n = 0;
        rc = gi_regions_table(atlas, parcellation, labels, out, &n, err);
        if (rc == 0)
            printf("regions: %ld regions of %s summarised from %s into %s\n", n, parcellation, atlas, out);
    }
    return gi_dist_agree(comm, rc, err);
}

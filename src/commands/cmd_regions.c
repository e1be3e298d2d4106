/* cmd_regions.c - `geneinr regions ATLAS --parcellation LABELS.nii.gz --out regions.csv`.
 * Serial work on rank 0 (one pass per gene over the atlas); see regions.h. */
#include <stdio.h>

#include "geneinr/cmd.h"
#include "geneinr/error.h"
#include "geneinr/dist.h"
#include "geneinr/regions.h"

static int run_regions(const gi_cmd_ctx *x, const gi_cmd_args *a)
{
    gi_err err = {{0}};
    int rc = 0;
    if (x->rank == 0) {
        long n = 0;
        char warning[2400];
        rc = gi_regions_table(a->operand, a->parcellation, a->labels, a->out, &n, warning, sizeof warning, &err);
        if (rc == 0 && warning[0])
            fprintf(stderr, "geneinr: %s\n", warning);
        if (rc == 0)
            printf("regions: %ld regions of %s summarised from %s into %s\n", n, a->parcellation, a->operand, a->out);
    }
    return gi_cmd_status(x, gi_dist_agree(x->comm, rc, &err), &err);
}

static const gi_cmd_opt OPTS[] = {
    GI_OPT_S_REQ("--parcellation", parcellation, "LABELS.nii.gz", "integer label image, on any grid"),
    GI_OPT_S("--labels", labels, "LABELS.csv", "names of the labels (columns id and label, as abagen's)"),
    GI_OPT_S_REQ("--out", out, "regions.csv", "the table to write"),
    GI_OPT_END,
};

const gi_cmd gi_cmd_regions = {
    .name = "regions",
    .run = run_regions,
    .operand = "ATLAS",
    .synopsis = "region x gene mean, SD and voxel count of any atlas for any parcellation on any grid",
    .help = "Summarises ATLAS over the regions of a parcellation on any grid: every labelled voxel is taken\n"
            "through the affines to the nearest atlas voxel; per label and gene, the count, mean and SD of those\n"
            "in the atlas mask. Long format: id,label,gene,n_voxels,mean,sd (label from --labels, columns id and\n"
            "label).",
    .opts = OPTS,
};

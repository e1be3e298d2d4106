/* cmd_regions.c - `geneinr regions ATLAS --parcellation LABELS.nii.gz --out regions.csv`.
 * Serial work on rank 0 (one pass per gene over the atlas); see regions.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "geneinr/cmd.h"
#include "geneinr/error.h"
#include "geneinr/dist.h"
#include "geneinr/regions.h"

static int run_regions(const gi_cmd_ctx *x, const gi_cmd_args *a)
{
    gi_err err = {{0}};
    gi_regions_args in = {.atlas = a->operand, .parcellation = a->parcellation, .labels_csv = a->labels,
                          .out_csv = a->out, .tolerance_mm = -1};
    if (a->tolerance) {
        /* As data.anatomy_tolerance: [0, 50] mm (label_match.h searches a box of that radius). */
        char *end;
        in.tolerance_mm = strtod(a->tolerance, &end);
        if (end == a->tolerance || *end || !isfinite(in.tolerance_mm) || in.tolerance_mm < 0 || in.tolerance_mm > 50)
            return gi_cmd_usage_error(x, "regions", "--tolerance '%s' is not a distance in mm from 0 to 50",
                                      a->tolerance);
    }
    int rc = 0;
    if (x->rank == 0) {
        gi_regions_result r;
        rc = gi_regions_table(&in, &r, &err);
        if (rc == 0 && r.warning[0])
            fprintf(stderr, "geneinr: %s\n", r.warning);
        if (rc == 0) {
            printf("regions: %ld regions of %s summarised from %s into %s\n", r.n_regions, a->parcellation,
                   a->operand, a->out);
            if (r.n_samples > 0)
                printf("regions: %d samples matched at tolerance %g mm%s: %d by voxel, %d by distance (max %.1f mm), "
                       "%d in no region\n", r.n_samples, r.tolerance_mm,
                       r.tolerance_from == GI_TOLERANCE_ATLAS ? " (the atlas's data.anatomy_tolerance; --tolerance to change)"
                       : r.tolerance_from == GI_TOLERANCE_NONE ? " (the atlas has no config to take data.anatomy_tolerance "
                                                                 "from; --tolerance to change)" : "",
                       r.match.by_voxel, r.match.by_distance, r.match.max_mm, r.match.none);
            if (r.note[0])
                printf("regions: %s\n", r.note);
        }
    }
    return gi_cmd_status(x, gi_dist_agree(x->comm, rc, &err), &err);
}

static const gi_cmd_opt OPTS[] = {
    GI_OPT_S_REQ("--parcellation", parcellation, "LABELS.nii.gz", "integer label image, on any grid"),
    GI_OPT_S("--labels", labels, "LABELS.csv", "names of the labels (columns id and label, as abagen's)"),
    GI_OPT_S("--tolerance", tolerance, "MM",
             "how far a sample may reach for its region (default: the atlas's data.anatomy_tolerance)"),
    GI_OPT_S_REQ("--out", out, "regions.csv", "the table to write"),
    GI_OPT_END,
};

const gi_cmd gi_cmd_regions = {
    .name = "regions",
    .run = run_regions,
    .operand = "ATLAS",
    .synopsis = "region x gene mean, SD, voxel count and mean uncertainty, with samples and donors per region, of "
                "any atlas for any parcellation on any grid",
    .help = "Summarises ATLAS over the regions of a parcellation on any grid: every labelled voxel is taken\n"
            "through the affines to the nearest atlas voxel; per label and gene, the count, mean and SD of those\n"
            "in the atlas mask, and the mean of the atlas's /uncertainty (the map's predictive SD) over them.\n"
            "The atlas's samples are matched to the labels on the parcellation's grid as training matches them\n"
            "(own voxel, else the nearest labelled voxel within --tolerance mm): n_samples and n_donors per\n"
            "region. Long format: id,label,gene,n_voxels,mean,sd,mean_uncertainty,n_samples,n_donors (label\n"
            "from --labels, columns id and label); a column the atlas cannot fill is empty, with a note.",
    .opts = OPTS,
};

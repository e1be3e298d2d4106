/* cmd_score.c - `geneinr score ATLAS --truth TRUTH.h5 --samples CSV`: accuracy against a known truth (score.h).
 * Serial work on rank 0. */
#include "geneinr/cmd.h"
#include "geneinr/error.h"

#include <stdio.h>

#include "geneinr/dist.h"
#include "geneinr/score.h"

static int run_score(const gi_cmd_ctx *x, const gi_cmd_args *a)
{
    gi_err err = {{0}};
    int rc = 0;
    if (x->rank == 0) {
        gi_score s;
        rc = gi_score_atlas(a->operand, a->truth, a->samples, a->stride > 0 ? (int)a->stride : 2, &s, &err);
        if (rc == 0) {
            gi_score_print(stdout, &s);
            if (a->json)
                rc = gi_score_write_json(a->json, &s, &err);
            gi_score_free(&s);
        }
    }
    return gi_cmd_status(x, gi_dist_agree(x->comm, rc, &err), &err);
}

static const gi_cmd_opt OPTS[] = {
    GI_OPT_S_REQ("--truth", truth, "TRUTH.h5", "the true maps (a phantom's truth.h5)"),
    GI_OPT_S_REQ("--samples", samples, "CSV", "the sample table the atlas was made from (for the nearest-sample map)"),
    GI_OPT_L("--stride", stride, "N", 1, 64, "score every N-th voxel along each axis (default 2)"),
    GI_OPT_S("--json", json, "FILE", "also write the scores as JSON"),
    GI_OPT_END,
};

const gi_cmd gi_cmd_score = {
    .name = "score",
    .run = run_score,
    .operand = "ATLAS",
    .synopsis = "per-gene Pearson r and RMSE of the atlas and of the nearest-sample map against a truth",
    .help = "Compares ATLAS with a known truth (a phantom's truth.h5) inside the mask, gene by gene, and the\n"
            "nearest-sample map of the same samples as a floor: Pearson r and RMSE per gene and their means.",
    .opts = OPTS,
};

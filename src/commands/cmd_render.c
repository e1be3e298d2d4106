/* cmd_render.c - `geneinr render CONFIG`: render a trained checkpoint or a baseline (cmd_run.c does the work). */
#include "geneinr/cmd.h"

static int run_render(const gi_cmd_ctx *x, const gi_cmd_args *a)
{
    return gi_cmd_train_render(x, a, 0, 1);
}

static const gi_cmd_opt OPTS[] = {
    GI_OPT_RUN_OUT, GI_OPT_SETS,
    GI_OPT_S("--checkpoint", checkpoint, "FILE", "render this checkpoint instead of OUT/checkpoint.h5"),
    GI_OPT_RUN_NIFTI, GI_OPT_END,
};

const gi_cmd gi_cmd_render = {
    .name = "render",
    .run = run_render,
    .operand = "CONFIG",
    .synopsis = "renders `OUT/atlas.h5` (and `OUT/nifti/*.nii.gz`, previews, `report.html`) from the checkpoint",
    .help = "Renders every gene on the grid of render.mask into OUT/atlas.h5, split into z-slabs across the\n"
            "ranks, with memory bounded by render.buffer_mb; with render.nifti also NIfTI maps, and previews\n"
            "and report.html as render.* asks. render.method other than inr renders a baseline fitted on\n"
            "every sample instead (nothing to train).",
    .opts = OPTS,
};

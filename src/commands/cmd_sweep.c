/* cmd_sweep.c - `geneinr sweep SWEEP.yaml`: a hyper-parameter sweep over groups of ranks (the engine: sweep.h). */
#include "geneinr/cmd.h"

#include "geneinr/sweep.h"

static int run_sweep(const gi_cmd_ctx *x, const gi_cmd_args *a)
{
    gi_sweep_opts so = {a->out, (int)a->trial, a->collect, a->retry_failed};
    return gi_sweep_command(a->operand, &so, x->comm);
}

static const gi_cmd_opt OPTS[] = {
    GI_OPT_S("--out", out, "DIR", "sweep folder (default: sweeps/<sweep file name>)"),
    GI_OPT_L("--trial", trial, "K", 0, 1000000, "run trial K alone on all ranks (one task of a job array)"),
    GI_OPT_F("--collect", collect, "rebuild OUT/results.csv from the trial folders (and render the best)"),
    GI_OPT_F("--retry-failed", retry_failed, "rerun failed trials too (from scratch)"),
    GI_OPT_END,
};

const gi_cmd gi_cmd_sweep = {
    .name = "sweep",
    .run = run_sweep,
    .operand = "SWEEP.yaml",
    .synopsis = "hyper-parameter sweep over groups of ranks (see Sweeps)",
    .help = "Runs the trials of SWEEP.yaml (a base config, overrides, swept keys) in groups of\n"
            "ranks_per_trial ranks that take trials as they free up, each into OUT/trials/NNN/ as `train`\n"
            "would; OUT/results.csv lists them. A rerun skips finished trials and resumes interrupted ones.",
    .opts = OPTS,
};

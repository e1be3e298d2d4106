/* cmd_train.c - `geneinr train CONFIG`: train the model into a run folder (cmd_run.c does the work). */
#include "geneinr/cmd.h"

static int run_train(const gi_cmd_ctx *x, const gi_cmd_args *a)
{
    return gi_cmd_train_render(x, a, 1, 0);
}

static const gi_cmd_opt OPTS[] = {
    GI_OPT_RUN_OUT, GI_OPT_SETS, GI_OPT_RUN_RESUME, GI_OPT_RUN_RESUME_FROM, GI_OPT_RUN_FORCE, GI_OPT_END,
};

const gi_cmd gi_cmd_train = {
    .name = "train",
    .run = run_train,
    .operand = "CONFIG",
    .synopsis = "trains; writes `OUT/checkpoint.h5`, `OUT/train_log.csv`, `OUT/config.yaml`",
    .help = "Trains the model of CONFIG on data.samples, data-parallel over the ranks: OUT/checkpoint.h5 (the\n"
            "best-validation weights and the last state), OUT/train_log.csv, and OUT/config.yaml, the\n"
            "effective config. With train.ensemble = K, members 2..K go to OUT/ensemble/. A run stopped by\n"
            "SIGTERM/SIGUSR1 checkpoints and exits 75; --resume (or train.resume: auto) continues it.\n"
            "Maps of earlier weights in OUT are removed.",
    .opts = OPTS,
};

/* cmd_report.c - `geneinr report RUN_DIR`: rebuild the run's report.html (report.h). Serial, rank 0. */
#include "geneinr/cmd.h"
#include "geneinr/error.h"

#include <stdio.h>

#include "geneinr/dist.h"
#include "geneinr/report.h"

static int run_report(const gi_cmd_ctx *x, const gi_cmd_args *a)
{
    gi_err err = {{0}};
    int rc = x->rank == 0 ? gi_report_write(a->operand, &err) : 0;
    if (rc == 0 && x->rank == 0)
        printf("report: %s/report.html\n", a->operand);
    return gi_cmd_status(x, gi_dist_agree(x->comm, rc, &err), &err);
}

static const gi_cmd_opt OPTS[] = {GI_OPT_END};

const gi_cmd gi_cmd_report = {
    .name = "report",
    .run = run_report,
    .operand = "RUN_DIR",
    .synopsis = "rebuilds `RUN_DIR/report.html` from the folder's files",
    .help = "Rebuilds RUN_DIR/report.html (run, data, training curve, accuracy, maps) from the files the run\n"
            "left in the folder: run.json, config.yaml, train_log.csv, eval and score results, previews.",
    .opts = OPTS,
};

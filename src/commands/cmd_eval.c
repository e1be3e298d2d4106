/* cmd_eval.c - `geneinr eval CONFIG [--out DIR] [--set k=v]...` (see eval.h).
 *
 * Set-up (config, output folder), compute (gi_eval_run), report (the table
 * it prints, eval.csv, summary.csv). The default output folder is
 * runs/<config name>/eval-<split>, so the three splits of one config sit side
 * by side.
 */
#include "geneinr/files.h"
#include "geneinr/cmd.h"

#include <cblas.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "geneinr/dist.h"
#include "geneinr/eval.h"
#include "geneinr/report.h"

int gi_cmd_eval(MPI_Comm comm, const char *config, const char *out, const char *const *sets, int n_sets, gi_err *err)
{
    static const char *const split[] = {"kfold", "donor", "block"};
    int rank;
    MPI_Comm_rank(comm, &rank);
    if (!config)
        return gi_fail(err, "eval needs a CONFIG file (e.g. configs/atlas.yaml)");
    gi_config c;
    int rc = gi_config_load(&c, config, sets, n_sets, err);
    if (gi_dist_agree(comm, rc, err) != 0)
        return -1;
    char dir[GI_PATH_MAX];
    if (out) {
        snprintf(dir, sizeof dir, "%s", out);
    } else {
        const char *base = strrchr(config, '/');
        base = base ? base + 1 : config;
        int len = (int)strcspn(base, ".");
        snprintf(dir, sizeof dir, "runs/%.*s/eval-%s", len, base, split[c.eval.split]);
    }
    /* Fixed OpenBLAS threads, as for train: results must not depend on them. */
    openblas_set_num_threads(c.run.threads > 0 ? c.run.threads : 1);
    rc = rank == 0 ? gi_make_dirs(dir, err) : 0;
    if (gi_dist_agree(comm, rc, err) != 0)
        return -1;
    rc = gi_eval_run(&c, comm, dir, err);
    if (rc == 0 && c.render.report)   /* the accuracy table of the run's report.html */
        rc = gi_dist_agree(comm, rank == 0 ? gi_report_after_eval(dir, err) : 0, err);
    return rc;
}

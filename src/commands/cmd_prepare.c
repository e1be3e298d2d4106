/* cmd_prepare.c - `geneinr prepare CONFIG`: AHBA donor folders -> a sample table (prepare.h).
 *
 * Set-up (config, output folder), compute (gi_prepare_run on rank 0: the
 * pipeline is I/O-bound and threaded, so more ranks would only compete for
 * the same disk), report (summary and resources). Other ranks wait for the
 * agreed status, so a job started with mpirun -np N still ends cleanly.
 */
#include "geneinr/cmd.h"
#include "geneinr/error.h"

#include <errno.h>
#include <mpi.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "geneinr/dist.h"
#include "geneinr/files.h"
#include "geneinr/prepare.h"
#include "geneinr/runlock.h"

static int run_prepare(const gi_cmd_ctx *x, const gi_cmd_args *a)
{
    MPI_Comm comm = x->comm;
    int rank = x->rank;
    const char *config_path = a->operand, *out_opt = a->out;
    double t0 = MPI_Wtime();
    gi_err err = {{0}};
    gi_config c;
    int rc = gi_config_load(&c, config_path, a->sets, a->n_sets, &err);
    char out[GI_PATH_MAX];
    if (rc == 0) {
        if (out_opt)
            snprintf(out, sizeof out, "%s", out_opt);
        else if (c.prepare.out[0])
            snprintf(out, sizeof out, "%s", c.prepare.out);
        else {
            const char *base = strrchr(config_path, '/');
            base = base ? base + 1 : config_path;
            snprintf(out, sizeof out, "prepared/%.*s", (int)strcspn(base, "."), base);
        }
    }
    gi_rundir_lock lock;
    memset(&lock, 0, sizeof lock);
    if (rc == 0 && rank == 0) {
        rc = gi_make_dirs(out, &err);
        /* One job per folder (runlock.h): two prepares would write one samples.csv. */
        char note[GI_PATH_MAX + 600] = "";
        if (rc == 0 && gi_rundir_lock_take(&lock, out, note, sizeof note, &err) != 0)
            rc = -1;
        if (note[0])
            printf("%s\n", note);
        if (rc == 0) {
            /* A failed run must not leave an older samples.csv that looks like its result. */
            char path[GI_PATH_MAX + 32];
            snprintf(path, sizeof path, "%s/samples.csv", out);
            gi_remove_partial(path);
            snprintf(path, sizeof path, "%s/report.json", out);
            gi_remove_partial(path);
            rc = gi_prepare_run(&c, out, stdout, &err);
        }
        gi_rundir_lock_release(&lock);
    }
    /* The other ranks wait without spinning (Open MPI's blocking collectives
     * busy-poll, which would take a core from rank 0's reader threads). */
    MPI_Request req;
    MPI_Ibarrier(comm, &req);
    for (int done = 0; !done;) {
        MPI_Test(&req, &done, MPI_STATUS_IGNORE);
        if (!done)
            nanosleep(&(struct timespec){0, 20000000}, NULL);
    }
    rc = gi_dist_agree(comm, rc, &err);
    if (rc != 0) {
        if (rank == 0)
            fprintf(stderr, "geneinr: error: %s\n", err.msg);
        return 1;
    }
    if (rank == 0) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        printf("resources: %.1f s wall, peak memory %.0f MB\n", MPI_Wtime() - t0, ru.ru_maxrss / 1024.0);
    }
    return 0;
}

static const gi_cmd_opt OPTS[] = {
    GI_OPT_S("--out", out, "DIR", "output folder (default: prepare.out, else prepared/<config name>)"),
    GI_OPT_SETS,
    GI_OPT_END,
};

const gi_cmd gi_cmd_prepare = {
    .name = "prepare",
    .run = run_prepare,
    .operand = "CONFIG",
    .synopsis = "AHBA donor folders -> `OUT/samples.csv` (as abagen computes it) and `OUT/report.json`",
    .help = "Reads the AHBA donor folders of prepare.data_dir and runs abagen's sample-level pipeline (probe\n"
            "reannotation, corrected coordinates, filters, probe selection, normalisation) into\n"
            "OUT/samples.csv, the data.samples of a training config, and OUT/report.json.",
    .opts = OPTS,
};

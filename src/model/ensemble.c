/* ensemble.c - member folders and training of a train.ensemble (ensemble.h). */
#include "geneinr/ensemble.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "geneinr/dist.h"
#include "geneinr/files.h"

int gi_ensemble_size(const gi_config *c)
{
    return c->train.ensemble > 1 ? c->train.ensemble : 1;
}

void gi_ensemble_member(const gi_config *c, const char *dir, int k, gi_config *ck, char *kdir, size_t len)
{
    *ck = *c;
    ck->train.seed = c->train.seed + (uint64_t)k;
    if (k == 0)
        snprintf(kdir, len, "%s", dir);
    else
        snprintf(kdir, len, "%s/ensemble/%d", dir, k);
    snprintf(ck->run.out, sizeof ck->run.out, "%s", kdir);
}

void gi_ensemble_clear(const char *dir)
{
    static const char *const FILES[] = {"checkpoint.h5", "checkpoint.h5.tmp", "train_log.csv"};
    char kdir[GI_PATH_MAX + 32], path[GI_PATH_MAX + 64];
    for (int k = 1; k <= 64; k++) {
        snprintf(kdir, sizeof kdir, "%s/ensemble/%d", dir, k);
        for (size_t f = 0; f < sizeof FILES / sizeof *FILES; f++) {
            snprintf(path, sizeof path, "%s/%s", kdir, FILES[f]);
            gi_remove_partial(path);
        }
        rmdir(kdir);   /* only when empty: a user's own files stay */
    }
    snprintf(kdir, sizeof kdir, "%s/ensemble", dir);
    rmdir(kdir);
}

int gi_ensemble_train_on(const gi_config *c, gi_targets_fn targets, MPI_Comm comm, const char *dir, int from,
                         int resume, int force, gi_train_result *res, gi_err *err)
{
    int rank, K = gi_ensemble_size(c);
    MPI_Comm_rank(comm, &rank);
    memset(res, 0, sizeof *res);
    if (from == 0 && !resume && rank == 0)
        gi_ensemble_clear(dir);
    for (int k = from; k < K; k++) {
        gi_config ck;
        char kdir[GI_PATH_MAX + 32], ckpt[GI_PATH_MAX + 64];
        gi_ensemble_member(c, dir, k, &ck, kdir, sizeof kdir);
        snprintf(ckpt, sizeof ckpt, "%s/checkpoint.h5", kdir);
        int rc = rank == 0 ? gi_make_dirs(kdir, err) : 0;
        /* rank 0 looks for the member's checkpoint, so all ranks agree */
        int found = rc == 0 && resume && rank == 0 && access(ckpt, R_OK) == 0;
        MPI_Bcast(&found, 1, MPI_INT, 0, comm);
        if (gi_dist_agree(comm, rc, err) != 0)
            return -1;
        if (rank == 0 && K > 1) {
            printf("train: ensemble member %d/%d (train.seed %llu) in %s%s\n", k + 1, K,
                   (unsigned long long)ck.train.seed, kdir, found ? ", resumed" : "");
            fflush(stdout);
        }
        if (gi_train_on(&ck, targets, comm, kdir, found ? ckpt : NULL, force, res, err) != 0) {
            if (K > 1)
                gi_fail_prefix(err, "ensemble member %d/%d", k + 1, K);
            return -1;
        }
        if (res->interrupted)
            return 0;
    }
    return 0;
}

/* test_dist.c - slab partition balance and shares; checkpoint round trip. */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "geneinr/checkpoint.h"
#include "geneinr/config.h"
#include "geneinr/dist.h"

static void test_partition(void)
{
    /* A brain-like profile: empty ends, a bulge in the middle. */
    enum { NZ = 182 };
    long count[NZ], total = 0;
    for (int z = 0; z < NZ; z++) {
        double u = (z - 95.0) / 70.0;
        count[z] = fabs(u) < 1 ? (long)(10000 * (1 - u * u)) : 0;
        total += count[z];
    }
    for (int parts = 1; parts <= 16; parts *= 2) {
        int begin[17];
        gi_slab_partition(count, NZ, parts, begin);
        int okb = begin[0] == 0 && begin[parts] == NZ;
        long worst = 0;
        for (int p = 0; p < parts; p++) {
            okb &= begin[p] <= begin[p + 1];
            long c = 0;
            for (int z = begin[p]; z < begin[p + 1]; z++)
                c += count[z];
            if (labs(c - total / parts) > worst)
                worst = labs(c - total / parts);
        }
        char name[96];
        snprintf(name, sizeof name, "slab partition into %d parts covers all slices in order", parts);
        CHECK(okb, name);
        /* Balanced to within one slice's worth of voxels. */
        snprintf(name, sizeof name, "slab partition into %d parts balances in-mask voxels", parts);
        CHECKF(worst <= 10000, name, "worst deviation %ld voxels of %ld per part", worst, total / parts);
    }
    int begin[9];
    long tiny[3] = {0, 5, 0};
    gi_slab_partition(tiny, 3, 8, begin);
    int mono = begin[0] == 0 && begin[8] == 3;
    for (int p = 0; p < 8; p++)
        mono &= begin[p] <= begin[p + 1];
    CHECK(mono, "more parts than slices: empty slabs, still ordered and complete");
}

static void test_share(void)
{
    long covered = 0, prev = 0;
    int ok = 1;
    for (int p = 0; p < 7; p++) {
        long lo, hi;
        gi_share(100, p, 7, &lo, &hi);
        ok &= lo == prev && hi >= lo && hi - lo >= 14 && hi - lo <= 15;
        covered += hi - lo;
        prev = hi;
    }
    CHECK(ok && covered == 100, "shares are contiguous, complete and even");
}

static void test_agree(void)
{
    gi_err err = {{0}};
    CHECK(gi_dist_agree(MPI_COMM_WORLD, 0, &err) == 0, "agree: all ranks fine -> 0");
    gi_fail(&err, "disk on fire");
    CHECK(gi_dist_agree(MPI_COMM_WORLD, -1, &err) == -1 && strstr(err.msg, "disk on fire"),
          "agree: a failure is returned with its message");
}

static void test_checkpoint(void)
{
    gi_state st;
    memset(&st, 0, sizeof st);
    gi_model_spec s = {.arch = GI_ARCH_SIREN, .gene_mode = GI_GENE_FACTORIZED, .hidden_layers = 2, .width = 8,
                       .omega0 = 10, .omega_hidden = 30, .fourier_features = 4, .fourier_scale = 1, .n_genes = 3,
                       .gene_dim = 4, .gene_frequencies = 3, .n_donors = 2, .donor_dim = 2, .n_labels = 3,
                       .anatomy_dim = 2};
    gi_err err = {{0}};
    int ok = gi_model_init(&st.model, &s, 7, &err) == 0 && gi_adam_init(&st.adam, st.model.n_params, &err) == 0;
    CHECK(ok, "checkpoint: model and optimizer set up");
    if (!ok)
        return;
    size_t np = st.model.n_params;
    char *genes[] = {"A", "B", "C"}, *donors[] = {"d1", "d2"};
    float mean[] = {1, 2, 3}, sd[] = {0.5f, 1, 2}, pos[] = {0, 0.5f, 1};
    int labels[] = {0, 4, 9};
    st.best_params = malloc(sizeof(float) * np);
    for (size_t i = 0; i < np; i++) {
        st.best_params[i] = (float)i * 0.25f;
        st.adam.m[i] = (float)i;
        st.adam.v[i] = (float)i * 2;
    }
    st.adam.t = 17;
    st.step = 17;
    st.best_step = 10;
    st.best_val = 0.125;
    st.bad_evals = 2;
    st.seed = 99;
    st.n_genes = 3;
    st.genes = genes;
    st.gene_mean = mean;
    st.gene_std = sd;
    st.gene_position = pos;
    st.n_donors = 2;
    st.donors = donors;
    st.n_labels = 3;
    st.label_values = labels;
    st.config_yaml = "train:\n  steps: 17\n";
    char path[] = "/tmp/geneinr-ckpt-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    CHECKF(gi_checkpoint_save(&st, path, &err) == 0, "checkpoint: save", "%s", err.msg);
    gi_state back;
    int rc = gi_checkpoint_load(&back, path, &err);
    CHECKF(rc == 0, "checkpoint: load", "%s", err.msg);
    if (rc == 0) {
        CHECK(back.model.n_params == np && memcmp(back.model.params, st.model.params, sizeof(float) * np) == 0 &&
                  memcmp(back.best_params, st.best_params, sizeof(float) * np) == 0 &&
                  memcmp(back.adam.m, st.adam.m, sizeof(float) * np) == 0 &&
                  memcmp(back.adam.v, st.adam.v, sizeof(float) * np) == 0,
              "checkpoint: parameters, best parameters and moments round-trip exactly");
        CHECK(back.step == 17 && back.adam.t == 17 && back.best_step == 10 && back.best_val == 0.125 &&
                  back.bad_evals == 2 && back.seed == 99,
              "checkpoint: counters round-trip");
        CHECK(memcmp(&back.model.spec, &s, sizeof s) == 0, "checkpoint: model spec round-trips");
        CHECK(strcmp(back.genes[2], "C") == 0 && strcmp(back.donors[1], "d2") == 0 && back.gene_std[2] == 2 &&
                  back.label_values[2] == 9 && strcmp(back.config_yaml, st.config_yaml) == 0,
              "checkpoint: names, normalisation, labels and config round-trip");
        gi_state_free(&back);
    }
    FILE *f = fopen(path, "w");
    fputs("not hdf5", f);
    fclose(f);
    CHECK(gi_checkpoint_load(&back, path, &err) == -1 && strstr(err.msg, path), "checkpoint: garbage file refused clearly");
    CHECK(gi_checkpoint_save(&st, "/nonexistent-dir/x.h5", &err) == -1 && strstr(err.msg, "nonexistent-dir"),
          "checkpoint: unwritable folder refused clearly");
    remove(path);
    free(st.best_params);
    gi_model_free(&st.model);
    gi_adam_free(&st.adam);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    test_partition();
    test_share();
    test_agree();
    test_checkpoint();
    MPI_Finalize();
    return check_summary();
}

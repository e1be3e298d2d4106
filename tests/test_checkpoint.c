/* test_checkpoint.c - checkpoint integrity (checksums, settings history), the
 * HDF5 helpers' error-printing discipline, and the model settings list. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hdf5.h>
#include <mpi.h>

#include "check.h"
#include "geneinr/checkpoint.h"
#include "geneinr/config.h"
#include "geneinr/h5.h"
#include "geneinr/model.h"

/* A small but complete state; free with free_state. */
static int make_state(gi_state *st, gi_err *err)
{
    memset(st, 0, sizeof *st);
    gi_model_spec s = {.arch = GI_ARCH_SIREN, .gene_mode = GI_GENE_FACTORIZED, .hidden_layers = 2, .width = 8,
                       .omega0 = 10, .omega_hidden = 30, .fourier_features = 4, .fourier_scale = 1, .n_genes = 2,
                       .gene_dim = 4, .gene_frequencies = 3, .n_donors = 2, .donor_dim = 2, .n_labels = 0,
                       .anatomy_dim = 2};
    if (gi_model_init(&st->model, &s, 3, err) != 0 || gi_adam_init(&st->adam, st->model.n_params, err) != 0)
        return -1;
    size_t np = st->model.n_params;
    st->best_params = calloc(np, sizeof(float));
    /* A pattern to find in the file: it is the raw little-endian float data
     * of /params. */
    for (size_t i = 0; i < np; i++)
        st->model.params[i] = 1000.0f + (float)i;
    st->n_genes = 2;
    st->genes = calloc(2, sizeof(char *));
    st->genes[0] = strdup("A");
    st->genes[1] = strdup("B");
    st->n_donors = 2;
    st->donors = calloc(2, sizeof(char *));
    st->donors[0] = strdup("d1");
    st->donors[1] = strdup("d2");
    st->gene_mean = calloc(2, sizeof(float));
    st->gene_std = malloc(2 * sizeof(float));
    st->gene_std[0] = st->gene_std[1] = 1;
    st->gene_position = calloc(2, sizeof(float));
    st->label_values = calloc(1, sizeof(int));
    st->config_yaml = strdup("train:\n  steps: 5\n");
    st->best_val = INFINITY;
    st->step = 5;
    return 0;
}

static void test_history_and_checksums(void)
{
    gi_state st;
    gi_err err = {{0}};
    int ok = make_state(&st, &err) == 0;
    CHECKF(ok, "checkpoint: state set up", "%s", err.msg);
    if (!ok)
        return;
    ok = gi_state_add_history(&st, 3, "train.lr: 0.001 -> 0.0005", &err) == 0 &&
         gi_state_add_history(&st, 4, "train.batch_size: 0 -> 16", &err) == 0;
    char path[] = "/tmp/geneinr-ckpt-XXXXXX";
    close(mkstemp(path));
    ok = ok && gi_checkpoint_save(&st, path, &err) == 0;
    CHECKF(ok, "checkpoint: save with a settings history", "%s", err.msg);
    gi_state back;
    int rc = gi_checkpoint_load(&back, path, &err);
    CHECKF(rc == 0 && back.n_history == 2 && back.history_step[0] == 3 && back.history_step[1] == 4 &&
               strcmp(back.history[1], "train.batch_size: 0 -> 16") == 0,
           "checkpoint: the settings history round-trips, oldest first", "%s", rc ? err.msg : "history differs");
    if (rc == 0)
        gi_state_free(&back);

    /* Every numeric dataset carries a fletcher32 filter (empty ones, such as
     * /fixed of a SIREN, have no data to check). */
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    int with_checksum = 0, datasets = 0;
    const char *names[] = {"params", "best_params", "adam_m", "adam_v", "gene_position", "gene_mean", "gene_std"};
    for (int i = 0; f >= 0 && i < 7; i++) {
        hid_t d = H5Dopen2(f, names[i], H5P_DEFAULT);
        hid_t dcpl = H5Dget_create_plist(d);
        unsigned flags;
        size_t nelem = 0;
        char fname[64];
        for (int k = 0; k < H5Pget_nfilters(dcpl); k++)
            if (H5Pget_filter2(dcpl, (unsigned)k, &flags, &nelem, NULL, sizeof fname, fname, NULL) ==
                H5Z_FILTER_FLETCHER32)
                with_checksum++;
        datasets++;
        H5Pclose(dcpl);
        H5Dclose(d);
    }
    if (f >= 0)
        H5Fclose(f);
    CHECKF(datasets == 7 && with_checksum == 7, "checkpoint: numeric datasets carry fletcher32 checksums",
           "%d of %d", with_checksum, datasets);

    /* Flip one byte inside /params' data: the load must fail, not return
     * other numbers. */
    FILE *fp = fopen(path, "rb");
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    rewind(fp);
    unsigned char *bytes = malloc((size_t)size);
    size_t got = fread(bytes, 1, (size_t)size, fp);
    fclose(fp);
    float pattern[4] = {1000.0f, 1001.0f, 1002.0f, 1003.0f};
    long at = -1;
    for (long i = 0; got == (size_t)size && i + 16 <= size; i++)
        if (memcmp(bytes + i, pattern, 16) == 0) {
            at = i;
            break;
        }
    CHECK(at >= 0, "checkpoint: the parameter bytes are found in the file");
    if (at >= 0) {
        bytes[at + 9] ^= 0x10; /* params[2] changes by a small amount */
        fp = fopen(path, "wb");
        fwrite(bytes, 1, (size_t)size, fp);
        fclose(fp);
        rc = gi_checkpoint_load(&back, path, &err);
        CHECKF(rc == -1 && strstr(err.msg, "params") && strstr(err.msg, path),
               "checkpoint: one corrupted byte in /params is detected on load", "%s",
               rc == 0 ? "loaded" : err.msg);
        if (rc == 0)
            gi_state_free(&back);
    }
    free(bytes);

    /* A corrupted byte in the metadata (the superblock's checksum covers it). */
    gi_checkpoint_save(&st, path, &err);
    fp = fopen(path, "r+b");
    fseek(fp, 20, SEEK_SET);
    int c = fgetc(fp);
    fseek(fp, 20, SEEK_SET);
    fputc(c ^ 0x01, fp);
    fclose(fp);
    rc = gi_checkpoint_load(&back, path, &err);
    CHECKF(rc == -1, "checkpoint: a corrupted superblock byte is detected on load", "%s", "loaded");
    if (rc == 0)
        gi_state_free(&back);
    remove(path);
    gi_state_free(&st);
}

static int printed;
static herr_t count_prints(hid_t stack, void *data)
{
    (void)stack;
    (void)data;
    printed++;
    return 0;
}

/* Saving and loading switch HDF5's error printing off only while they run:
 * the caller's handler is back afterwards (it used to stay off for good). */
static void test_error_printing_restored(void)
{
    H5E_auto2_t saved_fn;
    void *saved_data;
    H5Eget_auto2(H5E_DEFAULT, &saved_fn, &saved_data);
    H5Eset_auto2(H5E_DEFAULT, count_prints, NULL);
    gi_state st;
    gi_err err;
    memset(&st, 0, sizeof st);
    gi_checkpoint_load(&st, "/nonexistent-dir/nothing.h5", &err);
    char path[] = "/tmp/geneinr-ckpt-XXXXXX";
    int fd = mkstemp(path);
    (void)!write(fd, "garbage", 7);
    close(fd);
    gi_checkpoint_load(&st, path, &err);
    remove(path);
    H5E_auto2_t fn;
    void *data;
    H5Eget_auto2(H5E_DEFAULT, &fn, &data);
    CHECK(fn == count_prints && printed == 0,
          "h5: failed checkpoint loads print nothing and restore the caller's HDF5 error handler");
    /* And HDF5 still reports to it outside our calls. */
    H5Fopen("/nonexistent-dir/nothing.h5", H5F_ACC_RDONLY, H5P_DEFAULT);
    CHECK(printed > 0, "h5: HDF5's own error printing still works after our calls");
    H5Eset_auto2(H5E_DEFAULT, saved_fn, saved_data);
}

/* One line per model setting: the config section, the spec and the diff
 * agree on every row. */
static void test_settings_list(void)
{
    gi_config c;
    gi_err err;
    const char *sets[] = {"model.arch=fourier",        "model.hidden_layers=5", "model.width=33",
                          "model.omega0=7",            "model.omega_hidden=8",  "model.fourier_features=9",
                          "model.fourier_scale=0.25",  "model.gene_mode=concat", "model.gene_code=spectral",
                          "model.gene_dim=6",          "model.gene_frequencies=5", "model.donor_dim=3",
                          "model.anatomy_dim=2"};
    int rc = gi_config_load(&c, NULL, sets, 13, &err);
    CHECKF(rc == 0, "settings: every model key is a config key", "%s", err.msg);
    gi_model_spec s, d;
    gi_model_spec_from_config(&s, &c, 4, 5, 6);
    CHECK(s.arch == GI_ARCH_FOURIER && s.hidden_layers == 5 && s.width == 33 && s.omega0 == 7 &&
              s.omega_hidden == 8 && s.fourier_features == 9 && s.fourier_scale == 0.25f &&
              s.gene_mode == GI_GENE_CONCAT && s.gene_code == GI_CODE_SPECTRAL && s.gene_dim == 6 &&
              s.gene_frequencies == 5 && s.donor_dim == 3 && s.anatomy_dim == 2 && s.n_genes == 4 &&
              s.n_donors == 5 && s.n_labels == 6,
          "settings: the spec gets every model setting and the data sizes");
    char what[256];
    d = s;
    CHECK(gi_model_spec_diff(&s, &d, what, sizeof what) == 0 && what[0] == '\0', "settings: equal specs: no diff");
    d.width = 34;
    d.fourier_scale = 0.5f;
    d.n_genes = 3;
    int n = gi_model_spec_diff(&s, &d, what, sizeof what);
    CHECKF(n == 3 && strcmp(what, "model.width, model.fourier_scale, number of genes") == 0,
           "settings: the diff names the keys that differ", "%d: %s", n, what);
    /* The checkpoint stores and restores each setting under its name. */
    gi_config a = c, b = c;
    b.model.width = 40;
    b.train.lr = 0.5f;
    n = gi_config_diff(&a, &b, "model.", NULL, NULL);
    CHECK(n == 1 && gi_config_diff(&a, &b, NULL, NULL, NULL) == 2, "config: diff counts keys by prefix");
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    test_history_and_checksums();
    test_error_printing_restored();
    test_settings_list();
    MPI_Finalize();
    return check_summary();
}

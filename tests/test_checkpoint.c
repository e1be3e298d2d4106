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


/* ---- content hashes (h5_seal.h): what fletcher32 lets through ------------- */

static int load_fails_with(const char *path, const char *want, char *why, size_t n)
{
    gi_state back;
    gi_err err = {{0}};
    int rc = gi_checkpoint_load(&back, path, &err);
    if (rc == 0) {
        snprintf(why, n, "loaded (sealed %d)", back.sealed);
        gi_state_free(&back);
        return 0;
    }
    snprintf(why, n, "%s", err.msg);
    return strstr(err.msg, want) != NULL && strstr(err.msg, path) != NULL;
}

/* Open a checkpoint for editing as h5py would (1.8 format kept). */
static hid_t open_rw(const char *path)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, fapl);
    H5Pclose(fapl);
    return f;
}

/* Replace /best_params by a new chunked, fletcher32-checksummed dataset of
 * the given values carrying the old one's hash attribute. */
static int replace_best_params(const char *path, float value)
{
    hid_t f = open_rw(path);
    if (f < 0)
        return -1;
    hid_t d = H5Dopen2(f, "best_params", H5P_DEFAULT);
    hid_t sp = H5Dget_space(d);
    hssize_t n = H5Sget_simple_extent_npoints(sp);
    char *hash = NULL;
    gi_err err;
    gi_h5_get_attr_str(d, path, "xxh3_128", &hash, &err);
    H5Dclose(d);
    H5Ldelete(f, "best_params", H5P_DEFAULT);
    float *v = malloc(sizeof(float) * (size_t)n);
    for (hssize_t i = 0; i < n; i++)
        v[i] = value;
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hsize_t chunk = (hsize_t)n;
    H5Pset_chunk(dcpl, 1, &chunk);
    H5Pset_fletcher32(dcpl);
    d = H5Dcreate2(f, "best_params", H5T_NATIVE_FLOAT, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    int rc = d >= 0 && H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0 && hash &&
                     gi_h5_put_attr_fixed_str(d, path, "xxh3_128", hash, &err) == 0
                 ? 0
                 : -1;
    H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(sp);
    H5Fclose(f);
    free(v);
    free(hash);
    return rc;
}

static void test_content_hashes(void)
{
    gi_state st;
    gi_err err = {{0}};
    char why[2100];
    int ok = make_state(&st, &err) == 0;
    CHECKF(ok, "hashes: state set up", "%s", err.msg);
    if (!ok)
        return;
    for (size_t i = 0; i < st.model.n_params; i++)
        st.best_params[i] = 0.5f + (float)i;
    char a[] = "/tmp/geneinr-ckpt-XXXXXX", b[] = "/tmp/geneinr-ckpt-XXXXXX";
    close(mkstemp(a));
    close(mkstemp(b));
    gi_state back;
    ok = gi_checkpoint_save(&st, a, &err) == 0 && gi_checkpoint_load(&back, a, &err) == 0;
    CHECKF(ok && back.sealed == 1, "hashes: an intact checkpoint loads with every hash checked", "%s",
           ok ? "not sealed" : err.msg);
    if (ok)
        gi_state_free(&back);

    /* 1. The chunk of /best_params zeroed in full, checksum included: fletcher32 of zeros is 0. */
    hid_t f = H5Fopen(a, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, "best_params", H5P_DEFAULT), fsp = H5Dget_space(d);
    hsize_t offset[1] = {0}, size = 0;
    haddr_t addr = 0;
    unsigned mask = 0;
    herr_t hr = H5Dget_chunk_info(d, fsp, 0, offset, &mask, &addr, &size);
    H5Sclose(fsp);
    H5Dclose(d);
    H5Fclose(f);
    CHECK(hr >= 0 && size > 0, "hashes: the chunk of /best_params is found");
    if (hr >= 0 && size > 0) {
        FILE *fp = fopen(a, "r+b");
        fseek(fp, (long)addr, SEEK_SET);
        for (hsize_t i = 0; i < size; i++)
            fputc(0, fp);
        fclose(fp);
        CHECKF(load_fails_with(a, "/best_params does not match its content hash", why, sizeof why),
               "hashes: a /best_params chunk zeroed in full (fletcher32 passes it) fails the load", "%s", why);
    }

    /* 2. /best_params replaced (as h5py does) with a valid fletcher32 and the old hash attribute. */
    gi_checkpoint_save(&st, a, &err);
    ok = replace_best_params(a, 0.0f) == 0;
    CHECK(ok, "hashes: /best_params replaced by zeros with a valid fletcher32");
    if (ok)
        CHECKF(load_fails_with(a, "/best_params does not match its content hash", why, sizeof why),
               "hashes: a replaced dataset with a valid checksum fails the load", "%s", why);

    /* 3. /best_params copied, hash attribute and all, from another checkpoint. */
    gi_checkpoint_save(&st, a, &err);
    st.best_params[0] += 1;
    st.step = 6;
    gi_checkpoint_save(&st, b, &err);
    hid_t fa = open_rw(a), fb = H5Fopen(b, H5F_ACC_RDONLY, H5P_DEFAULT);
    H5Ldelete(fa, "best_params", H5P_DEFAULT);
    hr = H5Ocopy(fb, "best_params", fa, "best_params", H5P_DEFAULT, H5P_DEFAULT);
    H5Fclose(fb);
    H5Fclose(fa);
    CHECK(hr >= 0, "hashes: /best_params transplanted from another checkpoint (H5Ocopy, attributes too)");
    if (hr >= 0)
        CHECKF(load_fails_with(a, "/best_params does not match its content hash", why, sizeof why),
               "hashes: a dataset transplanted from another checkpoint fails the load", "%s", why);
    ok = gi_checkpoint_load(&back, b, &err) == 0;
    CHECKF(ok, "hashes: the other checkpoint itself still loads", "%s", err.msg);
    if (ok)
        gi_state_free(&back);

    /* 4. A checkpoint from before content hashes (no content_id, no xxh3_128
     * attributes) loads, unchecked, and says so (sealed 0). */
    gi_checkpoint_save(&st, a, &err);
    fa = open_rw(a);
    H5Adelete(fa, "content_id");
    const char *names[] = {"params", "best_params", "adam_m", "adam_v", "fixed", "gene_mean", "gene_std",
                           "gene_position", "genes", "donors", "label_values", "donor_in_average",
                           "settings_history", "settings_history_step"};
    for (int i = 0; i < 14; i++) {
        d = H5Dopen2(fa, names[i], H5P_DEFAULT);
        H5Adelete(d, "xxh3_128");
        H5Dclose(d);
    }
    H5Fclose(fa);
    ok = gi_checkpoint_load(&back, a, &err) == 0;
    CHECKF(ok && back.sealed == 0, "hashes: a checkpoint without hashes (an older one) loads, marked unchecked", "%s",
           ok ? "sealed" : err.msg);
    if (ok)
        gi_state_free(&back);

    /* 5. Sealed, but one dataset without its hash (added afterwards). */
    gi_checkpoint_save(&st, a, &err);
    fa = open_rw(a);
    d = H5Dopen2(fa, "gene_std", H5P_DEFAULT);
    H5Adelete(d, "xxh3_128");
    H5Dclose(d);
    H5Fclose(fa);
    CHECKF(load_fails_with(a, "/gene_std has no content hash", why, sizeof why),
           "hashes: a sealed checkpoint with a dataset lacking its hash fails the load", "%s", why);

    /* Equal states still give byte-identical files (the identity is derived from the content). */
    gi_checkpoint_save(&st, a, &err);
    gi_checkpoint_save(&st, b, &err);
    FILE *pa = fopen(a, "rb"), *pb = fopen(b, "rb");
    int same = pa && pb, ca, cb;
    while (same && (ca = fgetc(pa)) != EOF) {
        cb = fgetc(pb);
        same = ca == cb;
    }
    same = same && fgetc(pb) == EOF;
    if (pa) fclose(pa);
    if (pb) fclose(pb);
    CHECK(same, "hashes: equal states still give byte-identical checkpoints");
    remove(a);
    remove(b);
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
    test_content_hashes();
    test_error_printing_restored();
    test_settings_list();
    MPI_Finalize();
    return check_summary();
}

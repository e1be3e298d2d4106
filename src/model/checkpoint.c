/* checkpoint.c - HDF5 checkpoints (layout and integrity rules in checkpoint.h).
 *
 * Saving is serial (one rank). The model settings are written and read by
 * walking GI_MODEL_SETTINGS, so a new setting needs no change here. Every
 * HDF5 call goes through the h5.h helpers; HDF5's error printing is switched
 * off only for the duration of a save or load and then restored.
 */
#include "geneinr/checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "geneinr/h5.h"
#include "geneinr/h5_seal.h"
#include "geneinr/version.h"

/* Datasets: no timestamps (equal states, equal bytes) and checksummed. */
#define DSET_FLAGS (GI_H5_NO_TIMES | GI_H5_CHECKSUM)
/* Strings: fixed length, so that they are checksummed like everything else. */
#define STR_FLAGS (GI_H5_NO_TIMES | GI_H5_CHECKSUM | GI_H5_FIXED)

/* ---- settings history ------------------------------------------------------ */

int gi_state_add_history(gi_state *st, long step, const char *text, gi_err *err)
{
    char **h = realloc(st->history, sizeof *h * (size_t)(st->n_history + 1));
    if (h)
        st->history = h;
    long *hs = h ? realloc(st->history_step, sizeof *hs * (size_t)(st->n_history + 1)) : NULL;
    if (hs)
        st->history_step = hs;
    char *copy = hs ? strdup(text) : NULL;
    if (!copy)
        return gi_fail(err, "out of memory for the settings history");
    st->history[st->n_history] = copy;
    st->history_step[st->n_history] = step;
    st->n_history++;
    return 0;
}

/* ---- writing -------------------------------------------------------------- */

/* fsync a file, then its folder (so the rename that follows, or preceded, is durable). */
static int sync_path(const char *path, int is_dir, gi_err *err)
{
    int fd = open(path, is_dir ? O_RDONLY | O_DIRECTORY : O_RDONLY);
    if (fd < 0)
        return gi_fail(err, "cannot open %s to sync it: %s", path, strerror(errno));
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    /* Some file systems cannot sync a folder (EINVAL); the data itself is safe. */
    if (rc != 0 && !(is_dir && (e == EINVAL || e == EROFS)))
        return gi_fail(err, "cannot write %s to disk: %s (disk full?)", path, strerror(e));
    return 0;
}

static int sync_dir_of(const char *path, gi_err *err)
{
    char *copy = strdup(path);
    if (!copy)
        return gi_fail(err, "out of memory");
    int rc = sync_path(dirname(copy), 1, err);
    free(copy);
    return rc;
}

static int write_contents(hid_t f, const gi_state *st, const char *where, gi_err *err)
{
    const gi_model *m = &st->model;
    const gi_model_spec *s = &m->spec;
    if (gi_h5_put_array(f, where, "params", H5T_NATIVE_FLOAT, m->params, m->n_params, DSET_FLAGS, err) ||
        gi_h5_put_array(f, where, "best_params", H5T_NATIVE_FLOAT, st->best_params, m->n_params, DSET_FLAGS, err) ||
        gi_h5_put_array(f, where, "adam_m", H5T_NATIVE_FLOAT, st->adam.m, m->n_params, DSET_FLAGS, err) ||
        gi_h5_put_array(f, where, "adam_v", H5T_NATIVE_FLOAT, st->adam.v, m->n_params, DSET_FLAGS, err) ||
        gi_h5_put_array(f, where, "fixed", H5T_NATIVE_FLOAT, m->fixed, m->n_fixed, DSET_FLAGS, err) ||
        gi_h5_put_array(f, where, "gene_mean", H5T_NATIVE_FLOAT, st->gene_mean, (hsize_t)st->n_genes, DSET_FLAGS, err) ||
        gi_h5_put_array(f, where, "gene_std", H5T_NATIVE_FLOAT, st->gene_std, (hsize_t)st->n_genes, DSET_FLAGS, err) ||
        gi_h5_put_array(f, where, "gene_position", H5T_NATIVE_FLOAT, st->gene_position, (hsize_t)st->n_genes,
                        DSET_FLAGS, err) ||
        gi_h5_put_strings(f, where, "genes", st->genes, st->n_genes, STR_FLAGS, err) ||
        gi_h5_put_strings(f, where, "donors", st->donors, st->n_donors, STR_FLAGS, err) ||
        gi_h5_put_array(f, where, "label_values", H5T_NATIVE_INT, st->label_values, (hsize_t)st->n_labels,
                        DSET_FLAGS, err) ||
        gi_h5_put_array(f, where, "donor_in_average", H5T_NATIVE_UCHAR, m->donor_in_average,
                        (hsize_t)st->n_donors, DSET_FLAGS, err))
        return -1;
    if (st->n_prior_hyper == GI_PRIOR_HYPER_N &&
        gi_h5_put_array(f, where, "prior_hyper", H5T_NATIVE_DOUBLE, st->prior_hyper, GI_PRIOR_HYPER_N, DSET_FLAGS, err))
        return -1;

    long long *steps = malloc(sizeof *steps * (size_t)(st->n_history > 0 ? st->n_history : 1));
    if (!steps)
        return gi_fail(err, "%s: out of memory", where);
    for (int i = 0; i < st->n_history; i++)
        steps[i] = st->history_step[i];
    int rc = gi_h5_put_strings(f, where, "settings_history", st->history, st->n_history, STR_FLAGS, err) ||
             gi_h5_put_array(f, where, "settings_history_step", H5T_NATIVE_LLONG, steps, (hsize_t)st->n_history,
                             DSET_FLAGS, err);
    free(steps);
    if (rc)
        return -1;
    const char *config = st->config_yaml ? st->config_yaml : "";

    if (gi_h5_put_attr_fixed_str(f, where, "kind", "checkpoint", err) ||
        gi_h5_put_attr_fixed_str(f, where, "geneinr_version", GENEINR_VERSION, err) ||
        gi_h5_put_attr_fixed_str(f, where, "config", config, err) ||
        gi_h5_put_attr_i64(f, where, "step", st->step, err) ||
        gi_h5_put_attr_i64(f, where, "adam_t", st->adam.t, err) ||
        gi_h5_put_attr_i64(f, where, "best_step", st->best_step, err) ||
        gi_h5_put_attr_i64(f, where, "bad_evals", st->bad_evals, err) ||
        gi_h5_put_attr_i64(f, where, "stopped", st->stopped, err) ||
        gi_h5_put_attr_f64(f, where, "best_val", st->best_val, err) ||
        gi_h5_put_attr_u64(f, where, "seed", st->seed, err))
        return -1;
#define PUT_INT(field) gi_h5_put_attr_i64(f, where, #field, s->field, err)
#define PUT_SETTING(kind, field, ...) if (PUT_##kind(field)) return -1;
#define PUT_ENUM PUT_INT
#define PUT_FLOAT(field) gi_h5_put_attr_f64(f, where, #field, s->field, err)
    GI_MODEL_SETTINGS(PUT_SETTING)
#undef PUT_SETTING
#undef PUT_INT
#undef PUT_ENUM
#undef PUT_FLOAT
    if (gi_h5_put_attr_i64(f, where, "n_genes", s->n_genes, err) ||
        gi_h5_put_attr_i64(f, where, "n_donors", s->n_donors, err) ||
        gi_h5_put_attr_i64(f, where, "n_labels", s->n_labels, err))
        return -1;
    return 0;
}

/* An upper bound on the file's size: the data plus generous room for HDF5's
 * metadata (object headers, B-trees, heaps). */
static size_t size_bound(const gi_state *st)
{
    const gi_model *m = &st->model;
    size_t bytes = 4 * (4 * m->n_params + m->n_fixed) + 4 * 3 * (size_t)st->n_genes + 4 * (size_t)st->n_labels +
                   (size_t)st->n_donors + 2 * (st->config_yaml ? strlen(st->config_yaml) : 0) + (256 << 10);
    for (int g = 0; g < st->n_genes; g++)
        bytes += 2 * (strlen(st->genes[g]) + 1) + 64;
    for (int d = 0; d < st->n_donors; d++)
        bytes += 2 * (strlen(st->donors[d]) + 1) + 64;
    for (int h = 0; h < st->n_history; h++)
        bytes += 2 * (strlen(st->history[h]) + 1) + 64;
    return bytes + bytes / 8;
}

/* Reserve the space the file will need before HDF5 writes a byte of it.
 * HDF5 must not meet a full disk: when its writes fail at close the file
 * stays half-closed inside the library, and its clean-up in MPI_Finalize
 * crashes. So: refuse when the folder has too little space, and reserve the
 * bound beyond the file's end (fallocate, KEEP_SIZE: the size does not
 * change) so that nobody else takes it meanwhile. File systems without
 * fallocate get the free-space check only. */
static int reserve_space(const char *tmp, size_t need, gi_err *err)
{
    char *copy = strdup(tmp);
    struct statvfs vfs;
    int rc = 0;
    if (copy && statvfs(dirname(copy), &vfs) == 0 && (double)vfs.f_bavail * vfs.f_frsize < (double)need)
        rc = gi_fail(err, "writing checkpoint %s: not enough space on the disk (about %.1f MB needed, %.1f MB "
                     "free)", tmp, need / 1048576.0, (double)vfs.f_bavail * vfs.f_frsize / 1048576.0);
    free(copy);
    if (rc != 0)
        return -1;
    int fd = open(tmp, O_WRONLY);
    if (fd < 0)
        return gi_fail(err, "cannot open %s: %s", tmp, strerror(errno));
    if (fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)need) != 0 && errno != EOPNOTSUPP && errno != ENOSYS)
        rc = gi_fail(err, "writing checkpoint %s: cannot reserve %.1f MB: %s", tmp, need / 1048576.0,
                     strerror(errno));
    close(fd);
    return rc;
}

static int save(const gi_state *st, const char *path, const char *tmp, gi_err *err)
{
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE), fapl = H5Pcreate(H5P_FILE_ACCESS);
    hid_t f = -1;
    int rc = 0;
    /* The 1.8 file format checksums all metadata (what the fletcher32 filter
     * on the datasets does not cover: attributes, object headers). */
    if (fcpl < 0 || fapl < 0 || H5Pset_obj_track_times(fcpl, 0) < 0 ||
        H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST) < 0)
        rc = gi_h5_fail(err, "%s: cannot set up the checkpoint file", tmp);
    else if ((f = H5Fcreate(tmp, H5F_ACC_TRUNC, fcpl, fapl)) < 0)
        rc = gi_h5_fail(err, "cannot create checkpoint %s: %s", tmp, strerror(errno));
    if (fcpl >= 0)
        H5Pclose(fcpl);
    if (fapl >= 0)
        H5Pclose(fapl);
    if (rc != 0)
        return -1;
    rc = reserve_space(tmp, size_bound(st), err);
    if (rc == 0)
        rc = write_contents(f, st, tmp, err);
    /* Content hashes of every dataset, read back from the file (h5_seal.h). */
    if (rc == 0)
        rc = gi_h5_seal(f, tmp, NULL, NULL, err);
    if (rc == 0 && H5Fflush(f, H5F_SCOPE_GLOBAL) < 0)
        rc = gi_h5_fail(err, "%s: cannot write the checkpoint to disk (disk full?)", tmp);
    /* Giving up on the file: release its space first, so that the close
     * (which writes HDF5's metadata again) can succeed. */
    if (rc != 0)
        (void)!truncate(tmp, 0);
    if (H5Fclose(f) < 0 && rc == 0)
        rc = gi_h5_fail(err, "%s: cannot finish writing (disk full?)", tmp);
    /* Give back what the reservation did not use (blocks past the end). */
    struct stat sb;
    if (rc == 0 && stat(tmp, &sb) == 0)
        (void)!truncate(tmp, sb.st_size);
    if (rc == 0)
        rc = sync_path(tmp, 0, err);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = gi_fail(err, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    if (rc == 0)
        rc = sync_dir_of(path, err);
    return rc;
}

int gi_checkpoint_save(const gi_state *st, const char *path, gi_err *err)
{
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return gi_fail(err, "checkpoint path too long: %s", path);
    gi_h5_printer printer = gi_h5_quiet();
    int rc = save(st, path, tmp, err);
    if (rc != 0)
        remove(tmp);
    gi_h5_loud(printer);
    return rc;
}

/* ---- reading -------------------------------------------------------------- */

static int get_int(hid_t f, const char *where, const char *name, int *v, gi_err *err)
{
    long long x;
    if (gi_h5_get_attr_i64(f, where, name, &x, err) != 0)
        return -1;
    if (x < -2147483647LL || x > 2147483647LL)
        return gi_fail(err, "%s: attribute %s = %lld is out of range", where, name, x);
    *v = (int)x;
    return 0;
}

static int get_float(hid_t f, const char *where, const char *name, float *v, gi_err *err)
{
    double x;
    if (gi_h5_get_attr_f64(f, where, name, &x, err) != 0)
        return -1;
    *v = (float)x;
    return 0;
}

static int read_spec(hid_t f, const char *path, gi_model_spec *s, gi_err *err)
{
    memset(s, 0, sizeof *s);
#define GET_INT(field) get_int(f, path, #field, &s->field, err)
#define GET_ENUM GET_INT
#define GET_FLOAT(field) get_float(f, path, #field, &s->field, err)
#define GET_SETTING(kind, field, ...) if (GET_##kind(field)) return -1;
    GI_MODEL_SETTINGS(GET_SETTING)
#undef GET_SETTING
#undef GET_INT
#undef GET_ENUM
#undef GET_FLOAT
    if (get_int(f, path, "n_genes", &s->n_genes, err) || get_int(f, path, "n_donors", &s->n_donors, err) ||
        get_int(f, path, "n_labels", &s->n_labels, err))
        return -1;
    return 0;
}

/* The training prior's hyperparameters (optional: none without data.prior,
 * with per-gene hyperparameters, or before they were kept). */
static int read_prior_hyper(hid_t f, const char *path, gi_state *st, gi_err *err)
{
    st->n_prior_hyper = 0;
    if (H5Lexists(f, "prior_hyper", H5P_DEFAULT) <= 0)
        return 0;
    if (gi_h5_get_array(f, path, "prior_hyper", H5T_NATIVE_DOUBLE, st->prior_hyper, GI_PRIOR_HYPER_N, err) != 0)
        return -1;
    /* range > 0, nugget > 0, the variance ratios >= 0, the weight in [0, 1] */
    const double *h = st->prior_hyper;
    int ok = h[0] > 0 && h[1] > 0 && h[2] >= 0 && h[3] >= 0 && h[4] >= 0 && h[4] <= 1;
    for (int i = 0; i < GI_PRIOR_HYPER_N; i++)
        ok = ok && isfinite(h[i]);
    if (!ok)
        return gi_fail(err, "%s: invalid prior_hyper (range %g, nugget/sill %g, label %g, donor %g, similarity %g)",
                       path, h[0], h[1], h[2], h[3], h[4]);
    st->n_prior_hyper = GI_PRIOR_HYPER_N;
    return 0;
}

/* The settings history (checkpoints before it existed have none). */
static int read_history(hid_t f, const char *path, gi_state *st, gi_err *err)
{
    if (H5Lexists(f, "settings_history", H5P_DEFAULT) <= 0)
        return 0;
    char **text = NULL;
    int n = 0;
    if (gi_h5_get_strings(f, path, "settings_history", &text, &n, err) != 0)
        return -1;
    long long *steps = malloc(sizeof *steps * (size_t)(n > 0 ? n : 1));
    st->history_step = malloc(sizeof *st->history_step * (size_t)(n > 0 ? n : 1));
    int rc = steps && st->history_step
                 ? gi_h5_get_array(f, path, "settings_history_step", H5T_NATIVE_LLONG, steps, (hsize_t)n, err)
                 : gi_fail(err, "%s: out of memory", path);
    for (int i = 0; rc == 0 && i < n; i++)
        st->history_step[i] = (long)steps[i];
    free(steps);
    st->history = text;
    st->n_history = n;
    return rc;
}

/* Before allocating anything from the sizes a file claims: every count must
 * be backed by stored bytes (no dataset here is compressed), so a damaged or
 * hostile header cannot make us allocate gigabytes. The weight matrices alone
 * give a lower bound on the parameter count. */
static int plausible_sizes(hid_t f, const char *path, const gi_model_spec *s, gi_err *err)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return gi_fail(err, "%s: cannot stat: %s", path, strerror(errno));
    double bytes = (double)sb.st_size;
    double n_out = s->gene_mode == GI_GENE_FACTORIZED ? s->n_genes : 1;
    double weights = (double)(s->hidden_layers - 1) * s->width * s->width + n_out * s->width +
                     (double)s->n_donors * s->donor_dim + (s->n_labels > 0 ? (double)s->n_labels * s->anatomy_dim : 0);
    long long np = gi_h5_dataset_len(f, "params");
    if (s->n_genes < 1 || s->n_donors < 0 || s->n_labels < 0 || s->hidden_layers < 1 || s->width < 1 ||
        (double)s->n_genes > bytes || (double)s->n_donors > bytes || (double)s->n_labels > bytes)
        return gi_fail(err, "%s: the model sizes (%d genes, %d donors, %d labels) do not fit the file", path,
                       s->n_genes, s->n_donors, s->n_labels);
    if (np < 0 || weights > (double)np || 4.0 * (double)np > bytes)
        return gi_fail(err, "%s: /params (%lld values) does not match the model it describes", path, np);
    return 0;
}

/* Open path read-only and check it is a geneinr checkpoint: *f, and 0; or
 * -1 with the reason (and *f closed or never opened). */
static int open_checkpoint(const char *path, hid_t *f, gi_err *err)
{
    *f = -1;
    if (access(path, R_OK) != 0)
        return gi_fail(err, "%s: cannot read: %s", path, strerror(errno));
    if (H5Fis_hdf5(path) <= 0)
        return gi_fail(err, "%s: not an HDF5 file (or it does not exist)", path);
    *f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (*f < 0)
        return gi_h5_fail(err, "%s: cannot open (corrupted file?)", path);
    char *kind = NULL;
    int rc = gi_h5_get_attr_str(*f, path, "kind", &kind, err);
    if (rc == 0 && !(kind && strcmp(kind, "checkpoint") == 0))
        rc = gi_fail(err, "%s: not a geneinr checkpoint (no kind = \"checkpoint\" attribute)", path);
    free(kind);
    if (rc != 0) {
        H5Fclose(*f);
        *f = -1;
    }
    return rc;
}

static int load(gi_state *st, const char *path, gi_err *err)
{
    hid_t f;
    if (open_checkpoint(path, &f, err) != 0)
        return -1;
    int rc = 0;

    gi_model_spec s;
    long long step = 0, adam_t = 0, best_step = 0, bad_evals = 0, stopped = 0;
    if (rc == 0 &&
        (read_spec(f, path, &s, err) || gi_h5_get_attr_i64(f, path, "step", &step, err) ||
         gi_h5_get_attr_i64(f, path, "adam_t", &adam_t, err) ||
         gi_h5_get_attr_i64(f, path, "best_step", &best_step, err) ||
         gi_h5_get_attr_i64(f, path, "bad_evals", &bad_evals, err) ||
         gi_h5_get_attr_i64(f, path, "stopped", &stopped, err) ||
         gi_h5_get_attr_f64(f, path, "best_val", &st->best_val, err) ||
         gi_h5_get_attr_u64(f, path, "seed", &st->seed, err)))
        rc = -1;
    if (rc == 0 && (step < 0 || adam_t < 0 || best_step < 0 || bad_evals < 0 || bad_evals > 2147483647LL ||
                    (stopped != 0 && stopped != 1) || isnan(st->best_val)))
        rc = gi_fail(err, "%s: the training counters are inconsistent (step %lld, adam_t %lld)", path, step, adam_t);
    if (rc == 0)
        rc = plausible_sizes(f, path, &s, err);
    if (rc == 0 && gi_model_alloc(&st->model, &s, err) != 0)
        rc = gi_fail_prefix(err, "%s: invalid model in checkpoint", path);
    if (rc != 0) {
        H5Fclose(f);
        return -1;
    }
    st->step = step;
    st->best_step = best_step;
    st->bad_evals = (int)bad_evals;
    st->stopped = (int)stopped;
    gi_model *m = &st->model;
    st->n_genes = s.n_genes;
    st->n_donors = s.n_donors;
    st->n_labels = s.n_labels;
    size_t np = m->n_params;
    st->best_params = malloc(sizeof(float) * (np ? np : 1));
    st->gene_mean = malloc(sizeof(float) * (size_t)(s.n_genes ? s.n_genes : 1));
    st->gene_std = malloc(sizeof(float) * (size_t)(s.n_genes ? s.n_genes : 1));
    st->gene_position = malloc(sizeof(float) * (size_t)(s.n_genes ? s.n_genes : 1));
    st->label_values = malloc(sizeof(int) * (size_t)(s.n_labels ? s.n_labels : 1));
    if (!st->best_params || !st->gene_mean || !st->gene_std || !st->gene_position || !st->label_values ||
        gi_adam_init(&st->adam, np, err) != 0) {
        H5Fclose(f);
        return gi_fail(err, "%s: out of memory", path);
    }
    st->adam.t = adam_t;
    int n_genes = 0, n_donors = 0;
    if (gi_h5_get_array(f, path, "params", H5T_NATIVE_FLOAT, m->params, np, err) ||
        gi_h5_get_array(f, path, "best_params", H5T_NATIVE_FLOAT, st->best_params, np, err) ||
        gi_h5_get_array(f, path, "adam_m", H5T_NATIVE_FLOAT, st->adam.m, np, err) ||
        gi_h5_get_array(f, path, "adam_v", H5T_NATIVE_FLOAT, st->adam.v, np, err) ||
        gi_h5_get_array(f, path, "fixed", H5T_NATIVE_FLOAT, m->fixed, m->n_fixed, err) ||
        gi_h5_get_array(f, path, "gene_mean", H5T_NATIVE_FLOAT, st->gene_mean, (hsize_t)s.n_genes, err) ||
        gi_h5_get_array(f, path, "gene_std", H5T_NATIVE_FLOAT, st->gene_std, (hsize_t)s.n_genes, err) ||
        gi_h5_get_array(f, path, "gene_position", H5T_NATIVE_FLOAT, st->gene_position, (hsize_t)s.n_genes, err) ||
        gi_h5_get_array(f, path, "label_values", H5T_NATIVE_INT, st->label_values, (hsize_t)s.n_labels, err) ||
        gi_h5_get_array(f, path, "donor_in_average", H5T_NATIVE_UCHAR, m->donor_in_average, (hsize_t)s.n_donors,
                        err) ||
        gi_h5_get_strings(f, path, "genes", &st->genes, &n_genes, err) ||
        gi_h5_get_strings(f, path, "donors", &st->donors, &n_donors, err) ||
        gi_h5_get_attr_str(f, path, "config", &st->config_yaml, err)) {
        rc = -1;
    } else if (n_genes != s.n_genes || n_donors != s.n_donors) {
        rc = gi_fail(err, "%s: %d gene and %d donor names for a model of %d genes and %d donors", path, n_genes,
                     n_donors, s.n_genes, s.n_donors);
    } else if (!st->config_yaml) {
        rc = gi_fail(err, "%s: checkpoint has no config attribute", path);
    } else {
        rc = read_history(f, path, st, err);
    }
    if (rc == 0)
        rc = read_prior_hyper(f, path, st, err);
    /* fletcher32 passes a zeroed chunk and a replaced dataset: the content
     * hashes do not. Checkpoints written before them load unchecked
     * (st->sealed = 0; the callers say so). */
    gi_h5_seal_check chk;
    if (rc == 0 && gi_h5_verify(f, path, NULL, &chk, err) != 0)
        rc = -1;
    if (rc == 0)
        st->sealed = chk.sealed;
    /* Names read so far are freed with the counts that were read. */
    if (!st->genes || n_genes != s.n_genes) {
        gi_h5_free_strings(st->genes, n_genes);
        st->genes = NULL;
    }
    if (!st->donors || n_donors != s.n_donors) {
        gi_h5_free_strings(st->donors, n_donors);
        st->donors = NULL;
    }
    if (H5Fclose(f) < 0 && rc == 0)
        rc = gi_h5_fail(err, "%s: cannot close", path);
    if (rc == 0) {
        for (int g = 0; g < s.n_genes; g++)
            if (!(st->gene_std[g] > 0) || !isfinite(st->gene_std[g]) || !isfinite(st->gene_mean[g]))
                rc = gi_fail(err, "%s: gene %d has an invalid normalisation (mean %g, std %g)", path, g + 1,
                             (double)st->gene_mean[g], (double)st->gene_std[g]);
        for (int l = 1; l < s.n_labels; l++)
            if (rc == 0 && st->label_values[l] <= st->label_values[l - 1])
                rc = gi_fail(err, "%s: the anatomy label list is not increasing", path);
    }
    return rc;
}

int gi_checkpoint_load(gi_state *st, const char *path, gi_err *err)
{
    memset(st, 0, sizeof *st);
    gi_h5_printer printer = gi_h5_quiet();
    int rc = load(st, path, err);
    if (rc != 0)
        gi_state_free(st);
    gi_h5_loud(printer);
    return rc;
}

int gi_checkpoint_read_config(const char *path, char **yaml, gi_err *err)
{
    *yaml = NULL;
    gi_h5_printer printer = gi_h5_quiet();
    hid_t f;
    int rc = open_checkpoint(path, &f, err);
    if (rc == 0) {
        rc = gi_h5_get_attr_str(f, path, "config", yaml, err);
        if (rc == 0 && !*yaml)
            rc = gi_fail(err, "%s: checkpoint has no config attribute", path);
        H5Fclose(f);
    }
    if (rc != 0) {
        free(*yaml);
        *yaml = NULL;
    }
    gi_h5_loud(printer);
    return rc;
}

void gi_state_free(gi_state *st)
{
    gi_model_free(&st->model);
    gi_adam_free(&st->adam);
    free(st->best_params);
    free(st->gene_mean);
    free(st->gene_std);
    free(st->gene_position);
    free(st->label_values);
    free(st->config_yaml);
    gi_h5_free_strings(st->genes, st->n_genes);
    gi_h5_free_strings(st->donors, st->n_donors);
    gi_h5_free_strings(st->history, st->n_history);
    free(st->history_step);
    memset(st, 0, sizeof *st);
}

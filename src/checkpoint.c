/* checkpoint.c - HDF5 checkpoints (layout in checkpoint.h). */
#include "geneinr/checkpoint.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "geneinr/version.h"

/* ---- writing -------------------------------------------------------------- */

static int write_array(hid_t f, const char *name, hid_t type, const void *data, hsize_t n)
{
    hsize_t dims[1] = {n};
    hid_t space = H5Screate_simple(1, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_obj_track_times(dcpl, 0);
    hid_t d = H5Dcreate2(f, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    herr_t rc = d < 0 ? -1 : (n ? H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) : 0);
    if (d >= 0)
        H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(space);
    return d < 0 || rc < 0 ? -1 : 0;
}

static int write_strings(hid_t f, const char *name, char *const *s, int n)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    int rc = write_array(f, name, t, s, (hsize_t)n);
    H5Tclose(t);
    return rc;
}

static int attr_write(hid_t obj, const char *name, hid_t type, const void *v)
{
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Awrite(a, type, v);
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(space);
    return a < 0 || rc < 0 ? -1 : 0;
}

static int attr_str(hid_t obj, const char *name, const char *s)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    int rc = attr_write(obj, name, t, &s);
    H5Tclose(t);
    return rc;
}

static int attr_i64(hid_t obj, const char *name, long long v) { return attr_write(obj, name, H5T_NATIVE_LLONG, &v); }
static int attr_f64(hid_t obj, const char *name, double v) { return attr_write(obj, name, H5T_NATIVE_DOUBLE, &v); }

int gi_checkpoint_save(const gi_state *st, const char *path, gi_err *err)
{
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return gi_fail(err, "checkpoint path too long: %s", path);
    /* Failures are reported through err; HDF5's own stack printing would only
     * repeat them less clearly. */
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    H5Pset_obj_track_times(fcpl, 0);
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, fcpl, H5P_DEFAULT);
    H5Pclose(fcpl);
    if (f < 0)
        return gi_fail(err, "cannot create checkpoint %s (does the folder exist and is it writable?)", tmp);
    const gi_model *m = &st->model;
    const gi_model_spec *s = &m->spec;
    int bad = 0;
    bad |= write_array(f, "params", H5T_NATIVE_FLOAT, m->params, m->n_params);
    bad |= write_array(f, "best_params", H5T_NATIVE_FLOAT, st->best_params, m->n_params);
    bad |= write_array(f, "adam_m", H5T_NATIVE_FLOAT, st->adam.m, m->n_params);
    bad |= write_array(f, "adam_v", H5T_NATIVE_FLOAT, st->adam.v, m->n_params);
    bad |= write_array(f, "fixed", H5T_NATIVE_FLOAT, m->fixed, m->n_fixed);
    bad |= write_array(f, "gene_mean", H5T_NATIVE_FLOAT, st->gene_mean, (hsize_t)st->n_genes);
    bad |= write_array(f, "gene_std", H5T_NATIVE_FLOAT, st->gene_std, (hsize_t)st->n_genes);
    bad |= write_array(f, "gene_position", H5T_NATIVE_FLOAT, st->gene_position, (hsize_t)st->n_genes);
    bad |= write_strings(f, "genes", st->genes, st->n_genes);
    bad |= write_strings(f, "donors", st->donors, st->n_donors);
    bad |= write_array(f, "label_values", H5T_NATIVE_INT, st->label_values, (hsize_t)st->n_labels);
    bad |= write_array(f, "donor_in_average", H5T_NATIVE_UCHAR, m->donor_in_average, (hsize_t)st->n_donors);
    bad |= attr_str(f, "kind", "checkpoint");
    bad |= attr_str(f, "geneinr_version", GENEINR_VERSION);
    bad |= attr_str(f, "config", st->config_yaml ? st->config_yaml : "");
    bad |= attr_i64(f, "step", st->step);
    bad |= attr_i64(f, "adam_t", st->adam.t);
    bad |= attr_i64(f, "best_step", st->best_step);
    bad |= attr_i64(f, "bad_evals", st->bad_evals);
    bad |= attr_i64(f, "stopped", st->stopped);
    bad |= attr_f64(f, "best_val", st->best_val);
    bad |= attr_write(f, "seed", H5T_NATIVE_UINT64, &st->seed);
    bad |= attr_i64(f, "arch", s->arch);
    bad |= attr_i64(f, "gene_mode", s->gene_mode);
    bad |= attr_i64(f, "gene_code", s->gene_code);
    bad |= attr_i64(f, "hidden_layers", s->hidden_layers);
    bad |= attr_i64(f, "width", s->width);
    bad |= attr_f64(f, "omega0", s->omega0);
    bad |= attr_f64(f, "omega_hidden", s->omega_hidden);
    bad |= attr_i64(f, "fourier_features", s->fourier_features);
    bad |= attr_f64(f, "fourier_scale", s->fourier_scale);
    bad |= attr_i64(f, "n_genes", s->n_genes);
    bad |= attr_i64(f, "gene_dim", s->gene_dim);
    bad |= attr_i64(f, "gene_frequencies", s->gene_frequencies);
    bad |= attr_i64(f, "n_donors", s->n_donors);
    bad |= attr_i64(f, "donor_dim", s->donor_dim);
    bad |= attr_i64(f, "n_labels", s->n_labels);
    bad |= attr_i64(f, "anatomy_dim", s->anatomy_dim);
    if (H5Fclose(f) < 0)
        bad = 1;
    if (bad) {
        remove(tmp);
        return gi_fail(err, "writing checkpoint %s failed (disk full?)", tmp);
    }
    if (rename(tmp, path) != 0) {
        remove(tmp);
        return gi_fail(err, "cannot rename %s to %s", tmp, path);
    }
    return 0;
}

/* ---- reading -------------------------------------------------------------- */

static int read_array(hid_t f, const char *name, hid_t type, void *out, hsize_t n)
{
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0)
        return -1;
    hid_t space = H5Dget_space(d);
    hssize_t got = H5Sget_simple_extent_npoints(space);
    H5Sclose(space);
    int rc = -1;
    if (got == (hssize_t)n)
        rc = n == 0 || H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) >= 0 ? 0 : -1;
    H5Dclose(d);
    return rc;
}

static long long dataset_len(hid_t f, const char *name)
{
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0)
        return -1;
    hid_t space = H5Dget_space(d);
    long long n = H5Sget_simple_extent_npoints(space);
    H5Sclose(space);
    H5Dclose(d);
    return n;
}

static int read_strings(hid_t f, const char *name, char ***out, int n)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8); /* must match the stored set, or HDF5 refuses to convert */
    char **raw = calloc((size_t)n + 1, sizeof *raw);
    char **res = calloc((size_t)n + 1, sizeof *res);
    int rc = raw && res ? read_array(f, name, t, raw, (hsize_t)n) : -1;
    if (rc == 0) {
        for (int i = 0; i < n; i++)
            if (!(res[i] = strdup(raw[i] ? raw[i] : "")))
                rc = -1;
        hid_t space = H5Screate_simple(1, (hsize_t[]){(hsize_t)n}, NULL);
        H5Dvlen_reclaim(t, space, H5P_DEFAULT, raw);
        H5Sclose(space);
    }
    H5Tclose(t);
    free(raw);
    if (rc != 0) {
        for (int i = 0; res && i < n; i++)
            free(res[i]);
        free(res);
        return -1;
    }
    *out = res;
    return 0;
}

static int attr_read(hid_t obj, const char *name, hid_t type, void *v)
{
    if (H5Aexists(obj, name) <= 0)
        return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    herr_t rc = H5Aread(a, type, v);
    H5Aclose(a);
    return rc < 0 ? -1 : 0;
}

static int attr_int(hid_t f, const char *name, int *v)
{
    long long x;
    if (attr_read(f, name, H5T_NATIVE_LLONG, &x) != 0)
        return -1;
    *v = (int)x;
    return 0;
}

static int attr_float(hid_t f, const char *name, float *v)
{
    double x;
    if (attr_read(f, name, H5T_NATIVE_DOUBLE, &x) != 0)
        return -1;
    *v = (float)x;
    return 0;
}

static char *attr_string(hid_t f, const char *name)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    char *raw = NULL, *res = NULL;
    if (attr_read(f, name, t, &raw) == 0 && raw) {
        res = strdup(raw);
        H5free_memory(raw);
    }
    H5Tclose(t);
    return res;
}

int gi_checkpoint_load(gi_state *st, const char *path, gi_err *err)
{
    memset(st, 0, sizeof *st);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    if (H5Fis_hdf5(path) <= 0)
        return gi_fail(err, "%s: not an HDF5 file (or it does not exist)", path);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0)
        return gi_fail(err, "%s: cannot open", path);
    char *kind = attr_string(f, "kind");
    int is_ckpt = kind && strcmp(kind, "checkpoint") == 0;
    free(kind);
    if (!is_ckpt) {
        H5Fclose(f);
        return gi_fail(err, "%s: not a geneinr checkpoint (no kind = \"checkpoint\" attribute)", path);
    }
    gi_model_spec s;
    memset(&s, 0, sizeof s);
    int bad = 0;
    bad |= attr_int(f, "arch", &s.arch);
    bad |= attr_int(f, "gene_mode", &s.gene_mode);
    bad |= attr_int(f, "gene_code", &s.gene_code);
    bad |= attr_int(f, "hidden_layers", &s.hidden_layers);
    bad |= attr_int(f, "width", &s.width);
    bad |= attr_float(f, "omega0", &s.omega0);
    bad |= attr_float(f, "omega_hidden", &s.omega_hidden);
    bad |= attr_int(f, "fourier_features", &s.fourier_features);
    bad |= attr_float(f, "fourier_scale", &s.fourier_scale);
    bad |= attr_int(f, "n_genes", &s.n_genes);
    bad |= attr_int(f, "gene_dim", &s.gene_dim);
    bad |= attr_int(f, "gene_frequencies", &s.gene_frequencies);
    bad |= attr_int(f, "n_donors", &s.n_donors);
    bad |= attr_int(f, "donor_dim", &s.donor_dim);
    bad |= attr_int(f, "n_labels", &s.n_labels);
    bad |= attr_int(f, "anatomy_dim", &s.anatomy_dim);
    long long step = 0, adam_t = 0, best_step = 0, bad_evals = 0, stopped = 0;
    bad |= attr_read(f, "step", H5T_NATIVE_LLONG, &step);
    bad |= attr_read(f, "adam_t", H5T_NATIVE_LLONG, &adam_t);
    bad |= attr_read(f, "best_step", H5T_NATIVE_LLONG, &best_step);
    bad |= attr_read(f, "bad_evals", H5T_NATIVE_LLONG, &bad_evals);
    bad |= attr_read(f, "stopped", H5T_NATIVE_LLONG, &stopped);
    bad |= attr_read(f, "best_val", H5T_NATIVE_DOUBLE, &st->best_val);
    bad |= attr_read(f, "seed", H5T_NATIVE_UINT64, &st->seed);
    if (bad) {
        H5Fclose(f);
        return gi_fail(err, "%s: checkpoint is missing attributes (written by another version?)", path);
    }
    st->step = step;
    st->best_step = best_step;
    st->bad_evals = (int)bad_evals;
    st->stopped = (int)stopped;
    if (gi_model_alloc(&st->model, &s, err) != 0) {
        H5Fclose(f);
        return gi_fail_prefix(err, "%s: invalid model in checkpoint", path);
    }
    gi_model *m = &st->model;
    st->n_genes = s.n_genes;
    st->n_donors = s.n_donors;
    st->n_labels = s.n_labels;
    size_t np = m->n_params;
    st->best_params = malloc(sizeof(float) * (np ? np : 1));
    st->gene_mean = malloc(sizeof(float) * s.n_genes);
    st->gene_std = malloc(sizeof(float) * s.n_genes);
    st->gene_position = malloc(sizeof(float) * s.n_genes);
    st->label_values = malloc(sizeof(int) * (s.n_labels ? s.n_labels : 1));
    if (!st->best_params || !st->gene_mean || !st->gene_std || !st->gene_position || !st->label_values
        || gi_adam_init(&st->adam, np, err) != 0) {
        H5Fclose(f);
        gi_state_free(st);
        return gi_fail(err, "%s: out of memory", path);
    }
    st->adam.t = adam_t;
    bad |= read_array(f, "params", H5T_NATIVE_FLOAT, m->params, np);
    bad |= read_array(f, "best_params", H5T_NATIVE_FLOAT, st->best_params, np);
    bad |= read_array(f, "adam_m", H5T_NATIVE_FLOAT, st->adam.m, np);
    bad |= read_array(f, "adam_v", H5T_NATIVE_FLOAT, st->adam.v, np);
    bad |= read_array(f, "fixed", H5T_NATIVE_FLOAT, m->fixed, m->n_fixed);
    bad |= read_array(f, "gene_mean", H5T_NATIVE_FLOAT, st->gene_mean, (hsize_t)s.n_genes);
    bad |= read_array(f, "gene_std", H5T_NATIVE_FLOAT, st->gene_std, (hsize_t)s.n_genes);
    bad |= read_array(f, "gene_position", H5T_NATIVE_FLOAT, st->gene_position, (hsize_t)s.n_genes);
    bad |= dataset_len(f, "label_values") != s.n_labels;
    if (!bad)
        bad |= read_array(f, "label_values", H5T_NATIVE_INT, st->label_values, (hsize_t)s.n_labels);
    bad |= read_array(f, "donor_in_average", H5T_NATIVE_UCHAR, m->donor_in_average, (hsize_t)s.n_donors);
    bad |= read_strings(f, "genes", &st->genes, s.n_genes);
    bad |= read_strings(f, "donors", &st->donors, s.n_donors);
    st->config_yaml = attr_string(f, "config");
    H5Fclose(f);
    if (bad || !st->config_yaml) {
        gi_state_free(st);
        return gi_fail(err, "%s: checkpoint is incomplete or its arrays do not match its model", path);
    }
    return 0;
}

static void free_strings(char **s, int n)
{
    for (int i = 0; s && i < n; i++)
        free(s[i]);
    free(s);
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
    free_strings(st->genes, st->n_genes);
    free_strings(st->donors, st->n_donors);
    memset(st, 0, sizeof *st);
}

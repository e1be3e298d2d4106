/* test_torch.c - the C model against a PyTorch reference (tools/torch_reference.py).
 *
 * For several architectures and conditioning modes: build a model, run a
 * batch forward and backward (loss = sum(out * w)), write spec, parameters,
 * batch and results to HDF5, and let the reference recompute both in double
 * precision with autograd. SKIP when /usr/bin/python3 has no torch.
 */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "geneinr/config.h"
#include "geneinr/model.h"
#include "geneinr/rng.h"

static void put(hid_t f, const char *name, hid_t type, const void *data, hsize_t n)
{
    hid_t sp = H5Screate_simple(1, &n, NULL);
    hid_t d = H5Dcreate2(f, name, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    H5Dclose(d);
    H5Sclose(sp);
}

static void attr(hid_t f, const char *name, double v)
{
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, name, H5T_NATIVE_DOUBLE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_DOUBLE, &v);
    H5Aclose(a);
    H5Sclose(sp);
}

static int run_case(const char *name, gi_model_spec s, const char *dir)
{
    gi_model m;
    gi_err err;
    if (gi_model_init(&m, &s, 11, &err) != 0) {
        printf("# %s: %s\n", name, err.msg);
        return -1;
    }
    if (s.n_donors > 1)
        m.donor_in_average[1] = 0; /* exercise the held-out-donor rule of the average */
    enum { N = 37 };
    float xyz[3 * N];
    int donor[N], label[N], gene[N];
    for (int i = 0; i < N; i++) {
        for (int k = 0; k < 3; k++)
            xyz[3 * i + k] = (float)(2 * gi_rng_uniform(3, 1, 3 * i + k) - 1);
        donor[i] = (int)gi_rng_below(3, 2, i, s.n_donors + 1) - 1; /* -1 = average */
        label[i] = s.n_labels ? (int)gi_rng_below(3, 3, i, s.n_labels) : 0;
        gene[i] = (int)gi_rng_below(3, 4, i, s.n_genes);
    }
    gi_batch b = {N, xyz, s.donor_dim ? donor : NULL, s.n_labels ? label : NULL,
                  s.gene_mode == GI_GENE_CONCAT ? gene : NULL};
    gi_workspace *ws = gi_workspace_new(&m, N);
    float *out = malloc(sizeof(float) * N * m.n_out), *w = malloc(sizeof(float) * N * m.n_out);
    for (int q = 0; q < N * m.n_out; q++)
        w[q] = (float)gi_rng_normal(3, 5, q);
    gi_model_forward(&m, &b, ws, out);
    memset(m.grads, 0, sizeof(float) * m.n_params);
    gi_model_backward(&m, &b, ws, w);

    char path[512];
    snprintf(path, sizeof path, "%s/%s.h5", dir, name);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    attr(f, "arch", s.arch);
    attr(f, "gene_mode", s.gene_mode);
    attr(f, "gene_code", s.gene_code);
    attr(f, "hidden_layers", s.hidden_layers);
    attr(f, "width", s.width);
    attr(f, "omega0", s.omega0);
    attr(f, "omega_hidden", s.omega_hidden);
    attr(f, "fourier_features", s.fourier_features);
    attr(f, "n_genes", s.n_genes);
    attr(f, "gene_dim", s.gene_dim);
    attr(f, "gene_frequencies", s.gene_frequencies);
    attr(f, "n_donors", s.n_donors);
    attr(f, "donor_dim", s.donor_dim);
    attr(f, "n_labels", s.n_labels);
    attr(f, "anatomy_dim", s.anatomy_dim);
    put(f, "params", H5T_NATIVE_FLOAT, m.params, m.n_params);
    put(f, "fixed", H5T_NATIVE_FLOAT, m.fixed, m.n_fixed ? m.n_fixed : 1);
    put(f, "grads", H5T_NATIVE_FLOAT, m.grads, m.n_params);
    put(f, "xyz", H5T_NATIVE_FLOAT, xyz, 3 * N);
    put(f, "donor", H5T_NATIVE_INT, donor, N);
    put(f, "label", H5T_NATIVE_INT, label, N);
    put(f, "gene", H5T_NATIVE_INT, gene, N);
    put(f, "donor_in_average", H5T_NATIVE_UCHAR, m.donor_in_average, s.n_donors);
    put(f, "weights", H5T_NATIVE_FLOAT, w, (hsize_t)N * m.n_out);
    put(f, "out", H5T_NATIVE_FLOAT, out, (hsize_t)N * m.n_out);
    H5Fclose(f);
    /* The reference reads /xyz as [n][3], /out and /weights as [n][n_out]. */
    char cmd[2400];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"import h5py,numpy as np,sys;f=h5py.File('%s','r+');"
             "x=f['xyz'][()];o=f['out'][()];w=f['weights'][()];"
             "[f.__delitem__(k) for k in ('xyz','out','weights')];"
             "f['xyz']=x.reshape(-1,3);f['out']=o.reshape(%d,-1);f['weights']=w.reshape(%d,-1)\" "
             "&& /usr/bin/python3 tools/torch_reference.py '%s'",
             path, N, N, path);
    int rc = system(cmd);
    free(out);
    free(w);
    gi_workspace_free(ws);
    gi_model_free(&m);
    return rc == 0 ? 0 : 1;
}

int main(void)
{
    if (system("/usr/bin/python3 -c 'import torch, h5py' >/dev/null 2>&1") != 0 || access("tools/torch_reference.py", R_OK) != 0) {
        SKIP("PyTorch cross-check", "/usr/bin/python3 cannot import torch (apt-get install python3-torch)");
        return 0;
    }
    char dir[] = "/tmp/geneinr-torch-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    gi_model_spec base = {.arch = GI_ARCH_SIREN, .gene_mode = GI_GENE_FACTORIZED, .gene_code = GI_CODE_EMBEDDING,
                          .hidden_layers = 3, .width = 16, .omega0 = 30, .omega_hidden = 30,
                          .fourier_features = 8, .fourier_scale = 1, .n_genes = 5, .gene_dim = 4,
                          .gene_frequencies = 6, .n_donors = 3, .donor_dim = 4, .n_labels = 6, .anatomy_dim = 3};
    struct { const char *name; int arch, mode, code; } cases[] = {
        {"siren_factorized", GI_ARCH_SIREN, GI_GENE_FACTORIZED, GI_CODE_EMBEDDING},
        {"siren_concat_embedding", GI_ARCH_SIREN, GI_GENE_CONCAT, GI_CODE_EMBEDDING},
        {"siren_concat_spectral", GI_ARCH_SIREN, GI_GENE_CONCAT, GI_CODE_SPECTRAL},
        {"fourier_factorized", GI_ARCH_FOURIER, GI_GENE_FACTORIZED, GI_CODE_EMBEDDING},
        {"fourier_concat_spectral", GI_ARCH_FOURIER, GI_GENE_CONCAT, GI_CODE_SPECTRAL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gi_model_spec s = base;
        s.arch = cases[i].arch;
        s.gene_mode = cases[i].mode;
        s.gene_code = cases[i].code;
        char name[128];
        snprintf(name, sizeof name, "forward and backward match PyTorch: %s", cases[i].name);
        CHECK(run_case(cases[i].name, s, dir) == 0, name);
    }
    char rm[600];
    snprintf(rm, sizeof rm, "rm -rf '%s'", dir);
    if (system(rm) != 0)
        return 1;
    return check_summary();
}

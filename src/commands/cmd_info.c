/* cmd_info.c - `geneinr info FILE`: describe a sample table, NIfTI, checkpoint or atlas. Serial, rank 0. */
#include "geneinr/cmd.h"
#include "geneinr/error.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <hdf5.h>

#include "geneinr/atlas.h"
#include "geneinr/checkpoint.h"
#include "geneinr/config.h"
#include "geneinr/dist.h"
#include "geneinr/enum_names.h"
#include "geneinr/files.h"
#include "geneinr/h5.h"
#include "geneinr/nifti.h"
#include "geneinr/samples.h"

static void print_affine(const double *A)
{
    for (int r = 0; r < 3; r++)
        printf("    [%8.3f %8.3f %8.3f %9.3f]\n", A[4 * r], A[4 * r + 1], A[4 * r + 2], A[4 * r + 3]);
}

static void print_names(const char *what, char *const *names, int n)
{
    printf("  %s (%d):", what, n);
    for (int i = 0; i < n && i < 12; i++)
        printf(" %s", names[i]);
    printf("%s\n", n > 12 ? " ..." : "");
}

static int info_checkpoint(const char *path, gi_err *err)
{
    gi_state st;
    if (gi_checkpoint_load(&st, path, err) != 0)
        return -1;
    const gi_model_spec *s = &st.model.spec;
    printf("%s: geneinr checkpoint\n", path);
    printf("  model: %s, %d hidden layers x %d, omega0 %g, omega_hidden %g, gene mode %s", GI_ARCH_NAMES[s->arch],
           s->hidden_layers, s->width, s->omega0, s->omega_hidden, GI_GENE_MODE_NAMES[s->gene_mode]);
    if (s->gene_mode == 0)
        printf(" (%s code)", GI_GENE_CODE_NAMES[s->gene_code]);
    printf("\n  inputs: donor_dim %d, anatomy labels %d (dim %d)\n", s->donor_dim, s->n_labels, s->anatomy_dim);
    printf("  parameters: %zu\n", st.model.n_params);
    printf("  steps: %ld%s\n", st.step, st.stopped ? " (stopped early)" : "");
    if (isfinite(st.best_val))
        printf("  best validation MSE: %.5f (standardised units) at step %ld\n", st.best_val, st.best_step);
    print_names("genes", st.genes, st.n_genes);
    print_names("donors", st.donors, st.n_donors);
    for (int i = 0; i < st.n_history; i++)
        printf("  settings changed at step %ld: %s\n", st.history_step[i], st.history[i]);
    /* gi_checkpoint_load has failed if any hash differs. */
    printf("  content hashes: %s\n", st.sealed ? "ok (every dataset matches its xxh3_128)"
                                             : "none (written before content hashes; not checked)");
    gi_state_free(&st);
    return 0;
}

static int info_atlas(const char *path, gi_err *err)
{
    gi_atlas a;
    if (gi_atlas_open(&a, path, err) != 0)
        return -1;
    long inside = 0;
    for (size_t q = 0; q < (size_t)a.nx * a.ny * a.nz; q++)
        inside += a.mask[q] != 0;
    printf("%s: geneinr %s (geneinr %s)\n", path, a.kind ? a.kind : "atlas", a.version ? a.version : "?");
    printf("  /expression: %d genes x %d x %d x %d (gene, k, j, i), %s; %ld in-mask voxels\n", a.n_genes,
           a.nz, a.ny, a.nx, a.dtype == GI_DTYPE_UINT16 ? "uint16 codes" : "float32", inside);
    if (a.dtype == GI_DTYPE_UINT16) {
        double lo = a.scale[0], hi = a.scale[0];
        for (int g = 1; g < a.n_genes; g++) {
            lo = a.scale[g] < lo ? a.scale[g] : lo;
            hi = a.scale[g] > hi ? a.scale[g] : hi;
        }
        printf("  uint16: value = offset + scale * code (per gene, attributes of /expression), code 0 = NaN; "
               "scale %.4g .. %.4g: each value within scale / 2 of the float32 render\n", lo, hi);
    }
    if (a.rendered_for)
        printf("  rendered for: %s\n", a.rendered_for);
    printf("  affine (voxel i,j,k -> MNI mm):\n");
    print_affine(a.affine);
    print_names("genes", a.genes, a.n_genes);
    print_names("donors", a.donors, a.n_donors);
    int genes_ok = 0, rc = gi_atlas_verify(&a, &genes_ok, err);
    if (rc == 0)
        printf("  content hashes: %s", a.sealed ? "ok (every dataset and" : "none (written before content hashes; "
                                                                          "not checked)\n");
    if (rc == 0 && a.sealed)
        printf(" all %d genes of /expression%s match their xxh3_128)\n", a.has_uncertainty ? genes_ok / 2 : genes_ok,
               a.has_uncertainty ? " and of /uncertainty" : "");
    if (rc == 0 && (a.has_uncertainty || a.has_distance || a.n_samples))
        printf("  /uncertainty: %s; /distance: %s; samples: %d (/sample_mni, /sample_donor)\n",
               a.has_uncertainty ? "predictive SD per gene and voxel" : "none", a.has_distance ? "mm to the nearest "
               "sample" : "none", a.n_samples);
    gi_atlas_close(&a);
    return rc;
}

static int info_nifti(const char *path, gi_err *err)
{
    gi_volume v;
    if (gi_volume_read(&v, path, 1, err) != 0)
        return -1;
    long nonzero = 0;
    for (size_t q = 0; q < (size_t)v.nx * v.ny * v.nz; q++)
        nonzero += v.data[q] != 0 && !isnan(v.data[q]);
    printf("%s: NIfTI volume %d x %d x %d, %ld non-zero voxels\n  affine (voxel i,j,k -> mm):\n", path, v.nx, v.ny,
           v.nz, nonzero);
    print_affine(v.affine);
    gi_volume_free(&v);
    return 0;
}

static int info_samples(const char *path, gi_err *err)
{
    gi_samples s;
    if (gi_samples_read_csv(&s, path, err) != 0)
        return -1;
    long measured = gi_samples_n_measured(&s);
    printf("%s: sample table, %d samples x %d genes, %d donors, %.1f%% of values measured\n", path, s.n,
           s.n_genes, s.n_donors, 100.0 * measured / ((double)s.n * s.n_genes));
    for (int d = 0; d < s.n_donors; d++) {
        int cnt = 0;
        for (int i = 0; i < s.n; i++)
            cnt += s.donor[i] == d;
        printf("  donor %-12s %5d samples\n", s.donor_names[d], cnt);
    }
    float lo[3] = {INFINITY, INFINITY, INFINITY}, hi[3] = {-INFINITY, -INFINITY, -INFINITY};
    for (int i = 0; i < s.n; i++)
        for (int k = 0; k < 3; k++) {
            lo[k] = fminf(lo[k], s.mni[3 * i + k]);
            hi[k] = fmaxf(hi[k], s.mni[3 * i + k]);
        }
    printf("  MNI range: x %.1f..%.1f, y %.1f..%.1f, z %.1f..%.1f mm\n", lo[0], hi[0], lo[1], hi[1], lo[2], hi[2]);
    if (s.n_annot)
        print_names("annotation columns", s.annot_names, s.n_annot);
    print_names("genes", s.gene_names, s.n_genes);
    gi_samples_free(&s);
    return 0;
}

static int run_info(const gi_cmd_ctx *x, const gi_cmd_args *a)
{
    gi_err err = {{0}};
    int rc = 0;
    if (x->rank == 0) {
        const char *p = a->operand;
        gi_h5_printer printer = gi_h5_quiet();
        if (access(p, R_OK) != 0)
            rc = gi_fail(&err, "%s: %s", p, strerror(errno));
        else if (H5Fis_hdf5(p) > 0)
            rc = gi_h5_has_dataset(p, "expression") ? info_atlas(p, &err) : info_checkpoint(p, &err);
        else if (gi_ends_with(p, ".nii") || gi_ends_with(p, ".nii.gz"))
            rc = info_nifti(p, &err);
        else
            rc = info_samples(p, &err);
        gi_h5_loud(printer);
    }
    return gi_cmd_status(x, gi_dist_agree(x->comm, rc, &err), &err);
}

static const gi_cmd_opt OPTS[] = {GI_OPT_END};

const gi_cmd gi_cmd_info = {
    .name = "info",
    .run = run_info,
    .operand = "FILE",
    .synopsis = "describes a sample table, NIfTI, checkpoint or atlas",
    .help = "Tells what FILE is and summarises it: an atlas (genes, grid, affine, donor), a checkpoint (model,\n"
            "steps, validation, genes, donors, settings changes), a NIfTI volume (shape, affine) or a sample\n"
            "table (samples, genes, donors, MNI range).",
    .opts = OPTS,
};

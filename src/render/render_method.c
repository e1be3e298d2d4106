/* render_method.c - baselines rendered as atlases (see render_method.h). */
#include "geneinr/render_method.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "geneinr/anatomy.h"
#include "geneinr/atlas.h"
#include "geneinr/dataset.h"
#include "geneinr/dist.h"
#include "geneinr/ensemble.h"
#include "geneinr/export.h"
#include "geneinr/method.h"
#include "geneinr/nifti.h"
#include "geneinr/render_plan.h"
#include "geneinr/rundir.h"

#define BATCH 4096

typedef struct job {
    const gi_config *c;
    gi_dataset d;
    gi_method *m;
    gi_volume mask;
    gi_anatomy anat;
    int have_anat;
    float *pts, *pred;
    int *labels;
    long *where;
    double *mm;              /* [BATCH][3] the slice walk's scratch */
    int destandardise;       /* baselines predict standardised values; the INR table units */
} job;

static void job_free(job *j)
{
    gi_dataset_free(&j->d);
    gi_method_free(j->m);
    gi_volume_free(&j->mask);
    if (j->have_anat)
        gi_anatomy_free(&j->anat);
    free(j->pts);
    free(j->pred);
    free(j->labels);
    free(j->where);
    free(j->mm);
}

static int setup(job *j, const gi_config *c, const char *checkpoint, gi_err *err)
{
    int kind = c->render.method;
    if (!c->render.mask[0])
        return gi_fail(err, "%s: render.mask is not set (the NIfTI mask that defines the grid)",
                       c->source[0] ? c->source : "config");
    if (gi_method_needs_anatomy(kind) && !c->data.anatomy[0])
        return gi_fail(err, "render.method: %s needs data.anatomy (a label image)", GI_METHOD_NAMES[kind]);
    gi_config all = *c;
    if (kind != GI_METHOD_INR) {
        all.train.val_mode = GI_VAL_NONE; /* a baseline map uses every sample */
        all.data.prior = GI_PRIOR_NONE;   /* ... and the plain standardised values, not a model's residuals */
    }
    if (gi_dataset_build(&j->d, &all, err) != 0)
        return -1;
    if (gi_volume_read(&j->mask, c->render.mask, 1, err) != 0)
        return gi_fail_prefix(err, "render.mask");
    if (c->data.anatomy[0]) {
        /* Same label list as the dataset's (both derived from the image). */
        if (gi_anatomy_load(&j->anat, c->data.anatomy, j->d.label_values, j->d.n_labels, err) != 0)
            return -1;
        j->have_anat = 1;
    }
    const gi_samples *s = &j->d.s;
    gi_fit_data fd = {.n = s->n, .n_genes = s->n_genes, .mni = s->mni, .y = j->d.y, .donor = s->donor,
                      .n_donors = s->n_donors, .donor_names = s->donor_names, .gene_names = s->gene_names,
                      .label = j->d.label, .n_labels = j->d.n_labels};
    gi_method_opts o;
    gi_method_opts_from_config(&o, c);
    j->destandardise = kind != GI_METHOD_INR;
    j->m = kind == GI_METHOD_INR ? gi_method_inr_load(checkpoint, c, s->n_genes, err) : gi_method_fit(kind, &o, &fd, err);
    if (!j->m)
        return gi_fail_prefix(err, "render.method %s", GI_METHOD_NAMES[kind]);
    j->pts = malloc(sizeof(float) * 3 * BATCH);
    j->labels = malloc(sizeof(int) * BATCH);
    j->where = malloc(sizeof(long) * BATCH);
    j->mm = malloc(sizeof(double) * 3 * BATCH);
    if (!j->pts || !j->labels || !j->where || !j->mm)
        return gi_fail(err, "out of memory");
    return 0;
}

/* One batch of the slice walk (render_plan.h): predict the voxels for genes
 * g0 .. g0+ng-1 and scatter them into buf ([ng][slices][ny][nx]). */
typedef struct walk {
    job *j;
    int g0, ng;
    float *buf;
    size_t gene_stride;
} walk;

static int walk_batch(void *ctx, int nb, const double *mm, const int *label, const long *where, gi_err *err)
{
    walk *w = ctx;
    job *j = w->j;
    for (int q = 0; q < 3 * nb; q++)
        j->pts[q] = (float)mm[q];
    if (gi_method_predict_genes(j->m, nb, j->pts, label, w->g0, w->ng, j->pred, err) != 0)
        return -1;
    for (int k = 0; k < nb; k++)
        for (int q = 0; q < w->ng; q++) {
            int g = w->g0 + q;
            float p = j->pred[(size_t)k * w->ng + q];
            w->buf[q * w->gene_stride + where[k]] = j->destandardise ? p * j->d.gene_std[g] + j->d.gene_mean[g] : p;
        }
    return 0;
}

/* Slices [z0, z0 + nzb) of genes [g0, g0 + ng) into buf and mbuf (gi_render_block_fn). */
static int render_block(void *ctx, int z0, int nzb, int g0, int ng, float *buf, unsigned char *mbuf, gi_err *err)
{
    job *j = ctx;
    const gi_volume *v = &j->mask;
    size_t gene_stride = (size_t)v->nx * v->ny * nzb;
    for (size_t q = 0; q < gene_stride * ng; q++)
        buf[q] = NAN;
    walk w = {j, g0, ng, buf, gene_stride};
    return gi_render_walk_slices(v, j->have_anat ? &j->anat : NULL, z0, nzb, BATCH, j->mm, j->labels, j->where, mbuf,
                                 walk_batch, &w, err);
}

int gi_render_method(const gi_config *c, MPI_Comm comm, const char *out_dir, const char *checkpoint,
                     gi_render_result *res, gi_err *err)
{
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    memset(res, 0, sizeof *res);
    double t0 = MPI_Wtime();
    job j;
    memset(&j, 0, sizeof j);
    j.c = c;
    /* Map names are checked before anything is rendered (export.h). */
    if (gi_dist_agree(comm, setup(&j, c, checkpoint, err), err) != 0 ||
        gi_dist_agree(comm, c->render.nifti & GI_NIFTI_3D
                      ? gi_export_check_gene_names((const char *const *)j.d.s.gene_names, j.d.s.n_genes, out_dir, err)
                      : 0, err) != 0) {
        job_free(&j);
        return -1;
    }
    const gi_volume *v = &j.mask;
    int G = j.d.s.n_genes;
    size_t plane = (size_t)v->nx * v->ny;
    /* Scratch per gene of a group: one batch of predictions here, and what
     * the method's predict takes per gene (method.h). */
    size_t per_gene = sizeof(float) * BATCH + gi_method_predict_bytes_per_gene(j.m);
    gi_render_plan plan;
    if (gi_render_plan_make(v, comm, G, c, per_gene, 0, &plan, err) != 0) {
        job_free(&j);
        return -1;
    }
    long total = plan.total;
    float *buf = malloc(plane * (size_t)plan.ng * sizeof(float) * (size_t)plan.k);
    unsigned char *mbuf = malloc(plane * (size_t)plan.k);
    j.pred = malloc(sizeof(float) * BATCH * (size_t)plan.ng);
    int rc = buf && mbuf && j.pred ? 0 : gi_fail(err, "out of memory for %d slices of %d genes (render.buffer_mb)",
                                               plan.k, plan.ng);
    /* The fit has passed: this render replaces the folder's maps, so the
     * earlier render's files go now (rundir.h), not only those it rewrites. */
    if (rc == 0 && rank == 0 && gi_rundir_remove_renders(out_dir, 1, err) < 0)
        rc = -1;
    if (gi_dist_agree(comm, rc, err) != 0) {
        free(buf);
        free(mbuf);
        job_free(&j);
        return -1;
    }
    if (rank == 0) {
        printf("render: %s fitted on %d samples; %ld in-mask voxels of %dx%dx%d, %d genes, %d rank%s, %d slices x %d "
               "genes per write (atlas chunks: 1 slice x %d genes); per rank %.1f MB output buffers\n",
               GI_METHOD_NAMES[c->render.method], j.d.s.n, total, v->nx, v->ny, v->nz, G, size, size > 1 ? "s" : "",
               plan.k, plan.ng, plan.chunk_genes, plan.buffer_bytes / 1048576.0);
        fflush(stdout);
    }
    char atlas_path[GI_PATH_MAX + 32], units[GI_PATH_MAX + 64];
    snprintf(atlas_path, sizeof atlas_path, "%s/atlas.h5", out_dir);
    snprintf(units, sizeof units, "the units of the sample table (%s)", c->data.samples);
    gi_config prov = *c;
    memset(prov.run.out, 0, sizeof prov.run.out);
    char *yaml = gi_config_to_yaml(&prov);
    char norm[256];
    int K = gi_ensemble_size(c);
    char members[96] = "";
    if (K > 1)
        snprintf(members, sizeof members, "mean over the %d train.ensemble members of ", K);
    if (c->render.method == GI_METHOD_INR && c->data.prior != GI_PRIOR_NONE)
        snprintf(norm, sizeof norm, "%s(network output + data.prior %s) * gene_std + gene_mean, with the mean and std "
                 "of the training samples", members, GI_PRIOR_NAMES[c->data.prior]);
    else if (c->render.method == GI_METHOD_INR)
        snprintf(norm, sizeof norm, "%snetwork output * gene_std + gene_mean, with the mean and std of the training "
                 "samples", members);
    else
        snprintf(norm, sizeof norm, "%s fitted on per-gene standardised samples, de-standardised: value = prediction "
                 "* gene_std + gene_mean (mean and std of all samples)", GI_METHOD_NAMES[c->render.method]);
    gi_atlas_info info = {
        .n_genes = G, .genes = (const char *const *)j.d.s.gene_names,
        .n_donors = j.d.s.n_donors, .donors = (const char *const *)j.d.s.donor_names,
        .nx = v->nx, .ny = v->ny, .nz = v->nz, .units = units, .normalisation = norm,
        .config_yaml = yaml, .rendered_for = "average", .kind = "atlas", .compress = c->render.compress,
        .chunk_genes = c->render.chunk_genes,
        /* the slabs cover every slice, and every gene group is written for each */
        .every_slice_written = 1,
    };
    memcpy(info.affine, v->affine, sizeof info.affine);
    gi_atlas_writer *w = gi_atlas_create(comm, atlas_path, &info, err);
    free(yaml);
    rc = w ? 0 : -1;
    double t_write = 0; /* rank 0's time in the collective writes (docs/SCALING.md) */
    if (rc == 0)
        rc = gi_render_plan_write(&plan, G, w, comm, buf, mbuf, render_block, &j, &t_write, err);
    free(buf);
    free(mbuf);
    if (w)
        rc = rc == 0 ? gi_atlas_finish(w, err) : (gi_atlas_abort(w), -1);
    double el = MPI_Wtime() - t0;
    /* One 3-D file per gene (render.nifti 3d or both). */
    if (rc == 0 && (c->render.nifti & GI_NIFTI_3D))
        rc = gi_export_gene_maps(c, comm, out_dir, atlas_path, &j.mask, GI_METHOD_NAMES[c->render.method], err);
    if (rc == 0)   /* 4-D NIfTI, dataset_description.json, previews */
        rc = gi_export_after_render(c, comm, out_dir, atlas_path, &j.mask, err);
    res->voxels = total;
    res->genes = G;
    res->seconds = el;
    res->voxels_per_second = el > 0 ? total / el : 0;
    if (rc == 0 && rank == 0) {
        printf("render: %s, %ld voxels x %d genes in %.1f s (rank 0: collective writes %.1f s); atlas %s\n",
               GI_METHOD_NAMES[c->render.method], total, G, el, t_write, atlas_path);
        fflush(stdout);
    }
    job_free(&j);
    return rc;
}

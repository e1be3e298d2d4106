/* render.c - every method rendered into the parallel HDF5 atlas through one
 * plan / predict / write loop (see render.h).
 *
 * What differs between methods is only where the fitted method comes from
 * and how the atlas describes it (a `source`): the method is set up by
 * map_source.c, the one set-up `geneinr predict` shares (the INR loaded from
 * its checkpoint with its prior and ensemble members, a baseline fitted on
 * every sample); the description is this file's. The loop is the same for all: the slab plan
 * (render_plan.h), a walk over this rank's slices in batches of in-mask
 * voxels, gi_method_predict_genes for the write's gene group, one collective
 * write per round, then the NIfTI maps and the other exports.
 */
#include "geneinr/render.h"
#include "geneinr/render_plan.h"
#include "geneinr/rundir.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "geneinr/anatomy.h"
#include "geneinr/atlas.h"
#include "geneinr/checkpoint.h"
#include "geneinr/dataset.h"
#include "geneinr/dist.h"
#include "geneinr/ensemble.h"
#include "geneinr/export.h"
#include "geneinr/manifest.h"
#include "geneinr/map_source.h"
#include "geneinr/method.h"
#include "geneinr/nifti.h"
#include "geneinr/samples.h"
#include "geneinr/stop.h"
#include "geneinr/uncertainty.h"

typedef struct source {
    const gi_config *c;
    /* The method, its anatomy, batch, genes, donors and de-standardisation:
     * the one set-up `geneinr predict` shares (map_source.h); its mask is
     * unused here (the render's is the grid below). */
    gi_map_source src;
    gi_volume mask;
    gi_config prov;          /* the config recorded in the atlas */
    char normalisation[320];
    const char *rendered_for, *what;   /* the atlas's rendered_for; the NIfTI maps' description */
    float *pts, *pred;       /* [batch][3] MNI mm; [batch][group] predictions */
    int *labels;
    long *where;
    double *mm;              /* [batch][3] the slice walk's scratch */
    /* The samples /distance measures to and the atlas records (n_samples 0:
     * data.samples not set): the baseline's dataset's, or read here (INR). */
    gi_samples smp;
    int have_smp;
    int n_samples;
    const float *sample_mni; /* [n][3] */
    double *sample_mni64;    /* the same as written */
    const char **sample_donor;
    gi_knn knn;
    int have_knn;
    /* render.uncertainty: */
    int sd;                  /* 1: the SD is rendered */
    gi_sd_lattice lat;       /* the smooth part's lattice (step >= 2) */
    int have_lat;
    float *q, *sdp, *dist;   /* [batch] q, [batch][group] SD, [batch] distance */
    int *vox;                /* [batch][3] voxel indices */
    double t_lattice, t_sd, t_dist;   /* this rank's seconds in the lattice, the SD per voxel, /distance */
    char sd_what[448];
    /* render.prior_step >= 2: the prior's smooth part on a lattice (issue 31) */
    gi_lattice plat;
    int have_plat;
    int plat_g0, plat_ng;    /* the gene group its held planes are of */
    float *smooth;           /* [batch][group] the smooth part interpolated at a batch's voxels */
    double t_plat, t_pred;   /* this rank's seconds in the lattice's planes, in the map's prediction per voxel */
} source;

/* The prior's smooth part of one gene group at lattice points (gi_lattice_fn). */
typedef struct prior_group {
    const gi_method *m;
    int g0, ng;
} prior_group;

static int prior_smooth_fn(void *ctx, int n, const float *mni, float *out, gi_err *err)
{
    const prior_group *pg = ctx;
    return gi_method_predict_smooth(pg->m, n, mni, pg->g0, pg->ng, out, err);
}

static void source_free(source *s)
{
    gi_map_source_free(&s->src);
    gi_volume_free(&s->mask);
    free(s->pts);
    free(s->pred);
    free(s->labels);
    free(s->where);
    free(s->mm);
    if (s->have_smp)
        gi_samples_free(&s->smp);
    free(s->sample_mni64);
    free(s->sample_donor);
    if (s->have_knn)
        gi_knn_free(&s->knn);
    if (s->have_lat)
        gi_sd_lattice_free(&s->lat);
    if (s->have_plat)
        gi_lattice_free(&s->plat);
    free(s->smooth);
    free(s->q);
    free(s->sdp);
    free(s->dist);
    free(s->vox);
}

/* How the atlas describes the INR of a checkpoint (set up by map_source.c).
 * A single network records the checkpoint's config (what the model is and
 * was trained on) with this render's section; a model over data.prior or an
 * ensemble renders the donor average and records the render's config, from
 * which its prior and members are rebuilt. */
static void describe_inr(source *s, const char *checkpoint)
{
    const gi_config *c = s->c;
    int K = gi_ensemble_size(c), single = c->data.prior == GI_PRIOR_NONE && K == 1;
    const gi_state *st = gi_method_inr_checkpoint(s->src.m);
    s->rendered_for = c->render.donor;
    if (single) {
        if (gi_config_load_text(&s->prov, st->config_yaml, checkpoint, NULL) != 0)
            gi_config_defaults(&s->prov);
        s->prov.render = c->render;
        s->what = c->render.donor;
        snprintf(s->normalisation, sizeof s->normalisation, "model output de-standardised per gene: value = output * "
                 "gene_std + gene_mean, with the mean and std of the training samples");
        return;
    }
    s->prov = *c;
    s->what = GI_METHOD_NAMES[GI_METHOD_INR];
    char members[96] = "";
    if (K > 1)
        snprintf(members, sizeof members, "mean over the %d train.ensemble members of ", K);
    if (c->data.prior != GI_PRIOR_NONE)
        snprintf(s->normalisation, sizeof s->normalisation, "%s(network output + data.prior %s) * gene_std + "
                 "gene_mean, with the mean and std of the training samples", members, GI_PRIOR_NAMES[c->data.prior]);
    else
        snprintf(s->normalisation, sizeof s->normalisation, "%snetwork output * gene_std + gene_mean, with the mean "
                 "and std of the training samples", members);
}

/* How the atlas describes a baseline fitted on every sample of data.samples
 * (per-gene standardised, no validation split, no prior; map_source.c). */
static void describe_baseline(source *s)
{
    const gi_config *c = s->c;
    int kind = c->render.method;
    s->prov = *c;
    s->rendered_for = "average";
    s->what = GI_METHOD_NAMES[kind];
    snprintf(s->normalisation, sizeof s->normalisation, "%s fitted on per-gene standardised samples, "
             "de-standardised: value = prediction * gene_std + gene_mean (mean and std of all samples)",
             GI_METHOD_NAMES[kind]);
}

/* The samples of data.samples (every row: with train.ensemble each member
 * holds out other validation samples, so together they see them all), for
 * /distance and for the counts per region that readers make from
 * /sample_mni and /sample_donor. A baseline has them in its dataset; the INR
 * reads the table (the genes of data.genes only, to keep it small). */
static int setup_samples(source *s, gi_err *err)
{
    const gi_config *c = s->c;
    const gi_samples *sm = NULL;
    if (s->src.have_d) {
        sm = &s->src.d.s;
    } else if (c->data.samples[0]) {
        if (gi_samples_read_csv_genes(&s->smp, c->data.samples, c->data.genes, err) != 0)
            return gi_fail_prefix(err, "data.samples (the samples /distance measures to)");
        s->have_smp = 1;
        sm = &s->smp;
    } else if (c->render.uncertainty) {
        return gi_fail(err, "render.uncertainty: data.samples is not set (the samples /distance measures to)");
    } else {
        return 0;
    }
    if (sm->n < 1)
        return 0;
    s->n_samples = sm->n;
    s->sample_mni = sm->mni;
    s->sample_mni64 = malloc(sizeof(double) * 3 * (size_t)sm->n);
    s->sample_donor = malloc(sizeof(char *) * (size_t)sm->n);
    if (!s->sample_mni64 || !s->sample_donor)
        return gi_fail(err, "out of memory for %d samples", sm->n);
    for (int i = 0; i < sm->n; i++) {
        for (int d = 0; d < 3; d++)
            s->sample_mni64[3 * i + d] = sm->mni[3 * i + d];
        s->sample_donor[i] = sm->donor_names[sm->donor[i]];
    }
    if (gi_knn_build(&s->knn, s->sample_mni, s->n_samples) != 0)
        return gi_fail(err, "out of memory for the nearest-sample index of %d samples", s->n_samples);
    s->have_knn = 1;
    return 0;
}

/* render.uncertainty: the method must have an SD (refused before anything is
 * rendered), and the lattice of its smooth part. */
static int setup_sd(source *s, gi_err *err)
{
    const gi_config *c = s->c;
    if (!c->render.uncertainty)
        return 0;
    if (!gi_method_has_sd(s->src.m))
        return gi_fail(err, "render.uncertainty: render.method %s%s has no predictive SD (methods with one: kriging, "
                       "regression_kriging, and inr trained with data.prior or train.ensemble > 1); set "
                       "render.uncertainty: false", GI_METHOD_NAMES[c->render.method],
                       c->render.method == GI_METHOD_INR ? " (a single network without data.prior)" : "");
    s->sd = 1;
    if (c->render.uncertainty_step >= 2) {
        if (gi_sd_lattice_init(&s->lat, &s->mask, c->render.uncertainty_step, gi_method_sd_width(s->src.m), err) != 0)
            return -1;
        s->have_lat = 1;
    }
    /* The INR's calibration (method.h), said where the SD is read. */
    char cal[160] = "";
    double scale, raw, c50, c90;
    int cal_n;
    if (gi_method_inr_calibration(s->src.m, &scale, &raw, &cal_n, &c50, &c90) == 0)
        snprintf(cal, sizeof cal, "; calibrated: scale %.4g (the validation's own %.4g) on %d validation values "
                 "(coverage 50%% %.3f, 90%% %.3f)", scale, raw, cal_n, c50, c90);
    if (c->render.uncertainty_step >= 2)
        snprintf(s->sd_what, sizeof s->sd_what, "predictive SD of the map in /expression (%s), its smooth part "
                 "computed on a lattice of every %d voxels and interpolated trilinearly (render.uncertainty_step)%s",
                 s->what, c->render.uncertainty_step, cal);
    else
        snprintf(s->sd_what, sizeof s->sd_what, "predictive SD of the map in /expression (%s), exact at every "
                 "voxel (render.uncertainty_step 1)%s", s->what, cal);
    return 0;
}

static int setup(source *s, const char *checkpoint, gi_err *err)
{
    const gi_config *c = s->c;
    if (!c->render.mask[0])
        return gi_fail(err, "%s: render.mask is not set (the NIfTI mask that defines the grid)",
                       c->source[0] ? c->source : "config");
    if (gi_volume_read(&s->mask, c->render.mask, 1, err) != 0)
        return gi_fail_prefix(err, "render.mask");
    if (gi_map_source_method(&s->src, c, checkpoint, 1, err) != 0)
        return -1;
    if (c->render.method == GI_METHOD_INR)
        describe_inr(s, checkpoint);
    else
        describe_baseline(s);
    if (setup_samples(s, err) != 0 || setup_sd(s, err) != 0)
        return -1;
    memset(s->prov.run.out, 0, sizeof s->prov.run.out);
    size_t B = (size_t)s->src.batch;
    s->pts = malloc(sizeof(float) * 3 * B);
    s->labels = malloc(sizeof(int) * B);
    s->where = malloc(sizeof(long) * B);
    s->mm = malloc(sizeof(double) * 3 * B);
    s->dist = malloc(sizeof(float) * B);
    if (s->sd)
        s->q = malloc(sizeof(float) * B * (size_t)gi_method_sd_width(s->src.m));
    if (s->sd || s->c->render.prior_step >= 2)
        s->vox = malloc(sizeof(int) * 3 * B);
    if (!s->pts || !s->labels || !s->where || !s->mm || !s->dist || (s->sd && !s->q) ||
        ((s->sd || s->c->render.prior_step >= 2) && !s->vox))
        return gi_fail(err, "out of memory for render.batch_voxels = %d", s->src.batch);
    return 0;
}

/* One batch of the slice walk (render_plan.h): predict the voxels for genes
 * g0 .. g0+ng-1 and scatter them into buf ([ng][slices][ny][nx]). */
typedef struct walk {
    source *s;
    int z0, g0, ng;
    const gi_render_bufs *b;
    size_t gene_stride;
} walk;

static int walk_batch(void *ctx, int nb, const double *mm, const int *label, const long *where, gi_err *err)
{
    walk *w = ctx;
    source *s = w->s;
    /* A stop signal (stop.h) fails this rank's block; the round's agreement
     * (render_plan.c) then stops every rank and the atlas's .tmp is removed. */
    if (gi_stop_pending())
        return gi_fail(err, "render stopped by a signal");
    for (int q = 0; q < 3 * nb; q++)
        s->pts[q] = (float)mm[q];
    if (s->vox) {
        size_t nx = (size_t)s->mask.nx, plane = nx * (size_t)s->mask.ny;
        for (int k = 0; k < nb; k++) {
            s->vox[3 * k] = (int)(where[k] % nx);
            s->vox[3 * k + 1] = (int)(where[k] % plane / nx);
            s->vox[3 * k + 2] = w->z0 + (int)(where[k] / plane);
        }
    }
    /* With the prior's lattice: its smooth part interpolated at the voxels,
     * the rest (network, prior mean and label effects) exact per voxel. */
    double tp = MPI_Wtime();
    const float *smooth = NULL;
    if (s->have_plat) {
        gi_lattice_at(&s->plat, nb, s->vox, s->smooth);
        smooth = s->smooth;
    }
    if (gi_method_predict_with_smooth(s->src.m, nb, s->pts, s->src.have_anat ? label : NULL, smooth, w->g0, w->ng,
                                      s->pred, err) != 0)
        return -1;
    s->t_pred += MPI_Wtime() - tp;
    for (int k = 0; k < nb; k++)
        for (int q = 0; q < w->ng; q++) {
            int g = w->g0 + q;
            float p = s->pred[(size_t)k * w->ng + q];
            w->b->expr[q * w->gene_stride + where[k]] = s->src.mean ? p * s->src.std[g] + s->src.mean[g] : p;
        }
    if (w->b->sd) {
        /* The smooth part interpolated at the voxels (exact: q NULL), then
         * the rest of the SD exact per voxel; a baseline's SD is in
         * standardised units, like its prediction. */
        double t0 = MPI_Wtime();
        const float *q = NULL;
        if (s->have_lat) {
            gi_sd_lattice_at(&s->lat, nb, s->vox, s->q);
            q = s->q;
        }
        if (gi_method_predict_sd(s->src.m, nb, s->pts, s->src.have_anat ? label : NULL, q, w->g0, w->ng, s->sdp,
                                 err) != 0)
            return -1;
        for (int k = 0; k < nb; k++)
            for (int j = 0; j < w->ng; j++) {
                float v = s->sdp[(size_t)k * w->ng + j];
                w->b->sd[j * w->gene_stride + where[k]] = s->src.std ? v * s->src.std[w->g0 + j] : v;
            }
        s->t_sd += MPI_Wtime() - t0;
    }
    if (w->b->dist) {
        double t0 = MPI_Wtime();
        gi_nearest_distance(&s->knn, nb, mm, s->dist);
        for (int k = 0; k < nb; k++)
            w->b->dist[where[k]] = s->dist[k];
        s->t_dist += MPI_Wtime() - t0;
    }
    return 0;
}

/* Slices [z0, z0 + nzb) of genes [g0, g0 + ng) into buf and mbuf (gi_render_block_fn). */
static int render_block(void *ctx, int z0, int nzb, int g0, int ng, const gi_render_bufs *b, gi_err *err)
{
    source *s = ctx;
    const gi_volume *v = &s->mask;
    size_t gene_stride = (size_t)v->nx * v->ny * nzb;
    for (size_t q = 0; q < gene_stride * ng; q++)
        b->expr[q] = NAN;
    if (b->sd)
        for (size_t q = 0; q < gene_stride * ng; q++)
            b->sd[q] = NAN;
    if (b->dist)
        for (size_t q = 0; q < gene_stride; q++)
            b->dist[q] = NAN;
    /* (The SD lattice's planes were all computed at set-up, shared by the ranks: gi_sd_lattice_share.)
     * The prior's lattice planes of this gene group (uncertainty.h: a fixed
     * batching per plane, so a voxel's value does not depend on the rank). */
    double t0 = MPI_Wtime();
    if (s->have_plat) {
        if (g0 != s->plat_g0 || ng != s->plat_ng) {
            gi_lattice_reset(&s->plat, ng);
            s->plat_g0 = g0;
            s->plat_ng = ng;
        }
        prior_group pg = {s->src.m, g0, ng};
        if (gi_lattice_planes(&s->plat, z0, nzb, prior_smooth_fn, &pg, err) != 0)
            return -1;
    }
    s->t_plat += MPI_Wtime() - t0;
    walk w = {s, z0, g0, ng, b, gene_stride};
    return gi_render_walk_slices(v, s->src.have_anat ? &s->src.anat : NULL, z0, nzb, s->src.batch, s->mm, s->labels,
                                 s->where, b->mask, walk_batch, &w, err);
}

/* Set-up agreed across ranks, map names checked before anything is rendered
 * (export.h), then the plan: the output buffers, one batch of predictions
 * per gene of a group and what the method's predict takes (method.h). */
static int prepare(source *s, MPI_Comm comm, const char *out_dir, const char *checkpoint, gi_render_plan *plan,
                   gi_err *err)
{
    const gi_config *c = s->c;
    int rank;
    MPI_Comm_rank(comm, &rank);
    if (gi_dist_agree(comm, setup(s, checkpoint, err), err) != 0 ||
        gi_dist_agree(comm, rank == 0 ? gi_export_check_outputs(c, out_dir, (const char *const *)s->src.genes,
                                                                s->src.n_genes, 0, checkpoint, err) : 0, err) != 0)
        return -1;
    size_t per_gene, fixed;
    gi_method_predict_bytes(s->src.m, &per_gene, &fixed);
    /* with the SD, a batch of SDs per gene too (predict_sd's own scratch is the method's) and the lattice */
    size_t batch_bytes = sizeof(float) * (size_t)s->src.batch * (s->sd ? 2 : 1);
    if (s->have_lat)
        fixed += gi_sd_lattice_bytes(&s->mask, s->lat.step, s->lat.width);
    if (c->render.prior_step >= 2 && gi_method_has_smooth(s->src.m)) {
        /* the prior's lattice: its point flags and scratch, and per gene the
         * smooth part of a batch and the planes a block holds (a block of k
         * slices holds k / step + 2: budgeted for 16 slices) */
        int st = c->render.prior_step, planes = 16 / st + 2;
        size_t base = gi_lattice_bytes(&s->mask, st, 0, 0);
        fixed += base;
        per_gene += sizeof(float) * (size_t)s->src.batch + gi_lattice_bytes(&s->mask, st, 1, planes) - base;
    }
    return gi_render_plan_make(&s->mask, comm, s->src.n_genes, c, batch_bytes + per_gene, fixed, plan, err);
}

/* The atlas's description of what it holds. */
static gi_atlas_writer *create_atlas(const source *s, MPI_Comm comm, const char *path, gi_err *err)
{
    const gi_volume *v = &s->mask;
    char units[GI_PATH_MAX + 64];
    snprintf(units, sizeof units, "the units of the sample table (%s)", s->prov.data.samples);
    char *yaml = gi_config_to_yaml(&s->prov);
    gi_atlas_info info = {
        .n_genes = s->src.n_genes, .genes = (const char *const *)s->src.genes,
        .n_donors = s->src.n_donors, .donors = (const char *const *)s->src.donors,
        .nx = v->nx, .ny = v->ny, .nz = v->nz, .units = units, .normalisation = s->normalisation,
        .config_yaml = yaml, .rendered_for = s->rendered_for, .kind = "atlas", .compress = s->c->render.compress,
        /* the slabs cover every slice, and every gene group is written for each */
        .every_slice_written = 1, .chunk_genes = s->c->render.chunk_genes, .dtype = s->c->render.dtype,
        .uncertainty = s->sd, .uncertainty_what = s->sd_what, .distance = s->n_samples > 0,
        .n_samples = s->n_samples, .sample_mni = s->sample_mni64, .sample_donor = s->sample_donor,
        .sample_source = s->n_samples > 0 ? s->c->data.samples : NULL,
    };
    memcpy(info.affine, v->affine, sizeof info.affine);
    gi_atlas_writer *w = gi_atlas_create(comm, path, &info, err);
    free(yaml);
    return w;
}

static void free_bufs(gi_render_bufs *b)
{
    free(b->expr);
    free(b->mask);
    free(b->sd);
    free(b->dist);
    memset(b, 0, sizeof *b);
}

int gi_render(const gi_config *c, MPI_Comm comm, const char *out_dir, const char *checkpoint,
              gi_render_result *res, gi_err *err)
{
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    memset(res, 0, sizeof *res);
    double t0 = MPI_Wtime();
    source s;
    memset(&s, 0, sizeof s);
    s.c = c;

    /* Set-up: the method, mask, anatomy, plan, buffers. */
    gi_render_plan plan;
    if (prepare(&s, comm, out_dir, checkpoint, &plan, err) != 0) {
        source_free(&s);
        return -1;
    }
    double t_setup = MPI_Wtime() - t0;   /* the method's fit or load: said beside the uncertainty's share */
    const gi_volume *v = &s.mask;
    int G = s.src.n_genes;
    size_t plane = (size_t)v->nx * v->ny;
    size_t cells = plane * (size_t)plan.ng * (size_t)plan.k;
    gi_render_bufs bufs = {malloc(cells * sizeof(float)), malloc(plane * (size_t)plan.k),
                           s.sd ? malloc(cells * sizeof(float)) : NULL,
                           s.n_samples > 0 ? malloc(plane * (size_t)plan.k * sizeof(float)) : NULL};
    s.pred = malloc(sizeof(float) * (size_t)s.src.batch * (size_t)plan.ng);
    if (c->render.prior_step >= 2 && gi_method_has_smooth(s.src.m)) {
        /* The prior's lattice, of the plan's gene groups (a function of the mask: the same on every rank). */
        if (gi_lattice_init(&s.plat, &s.mask, c->render.prior_step, plan.ng, err) == 0) {
            s.have_plat = 1;
            s.plat_g0 = -1;
            s.smooth = malloc(sizeof(float) * (size_t)s.src.batch * (size_t)plan.ng);
        }
    }
    if (s.sd)
        s.sdp = malloc(sizeof(float) * (size_t)s.src.batch * (size_t)plan.ng);
    int rc = bufs.expr && bufs.mask && s.pred && (!s.sd || (bufs.sd && s.sdp)) && (s.n_samples == 0 || bufs.dist) &&
                     (s.have_plat ? s.smooth != NULL : !(c->render.prior_step >= 2 && gi_method_has_smooth(s.src.m)))
                 ? 0
                 : gi_fail(err, "out of memory for %d slices of %d genes (render.buffer_mb)", plan.k, plan.ng);
    /* Set-up has passed: this render replaces the folder's maps, so the
     * earlier render's files go now (rundir.h), not only those it rewrites.
     * A render that fails its set-up leaves the folder as it was. */
    static const char *const ATLAS[] = {"atlas.h5"};   /* geneinr's file from here on (manifest.h) */
    if (rc == 0 && rank == 0 && (gi_rundir_remove_renders(out_dir, 1, err) < 0 ||
                                 gi_manifest_claim_in(out_dir, ATLAS, 1, "render", err) != 0))
        rc = -1;
    if (gi_dist_agree(comm, rc, err) != 0) {
        free_bufs(&bufs);
        source_free(&s);
        return -1;
    }
    if (s.have_lat) {
        /* The SD lattice once, shared by the ranks (uncertainty.h); its planes are then all done. */
        double tl = MPI_Wtime();
        if (gi_sd_lattice_share(&s.lat, s.src.m, comm, err) != 0) {
            free_bufs(&bufs);
            source_free(&s);
            return -1;
        }
        s.t_lattice += MPI_Wtime() - tl;
    }
    if (rank == 0) {
        printf("render: %s; %ld in-mask voxels of %dx%dx%d, %d genes, %d rank%s, %d slices x %d genes per write "
               "(atlas chunks: 1 slice x %d genes); per rank %.1f MB output buffers\n",
               GI_METHOD_NAMES[c->render.method], plan.total, v->nx, v->ny, v->nz, G, size, size > 1 ? "s" : "", plan.k, plan.ng, plan.chunk_genes,
               plan.buffer_bytes / 1048576.0);
        fflush(stdout);
    }

    /* Compute and write: one collective write per round of slices. */
    char atlas_path[GI_PATH_MAX + 32];
    snprintf(atlas_path, sizeof atlas_path, "%s/atlas.h5", out_dir);
    gi_atlas_writer *w = create_atlas(&s, comm, atlas_path, err);
    rc = w ? 0 : -1;
    double t_write = 0; /* rank 0's time in the collective writes (docs/SCALING.md) */
    if (rc == 0)
        rc = gi_render_plan_write(&plan, G, w, comm, &bufs, render_block, &s, &t_write, err);
    free_bufs(&bufs);
    double tw = MPI_Wtime();
    if (w)
        rc = rc == 0 ? gi_atlas_finish(w, err) : (gi_atlas_abort(w), -1);
    if (rc == 0 && rank == 0)
        rc = gi_manifest_commit_in(out_dir, ATLAS, 1, err);
    rc = gi_dist_agree(comm, rc, err);
    t_write += MPI_Wtime() - tw;
    double el = MPI_Wtime() - t0;
    if (rc == 0 && (c->render.nifti & GI_NIFTI_3D))   /* one 3-D file per gene */
        rc = gi_export_gene_maps(c, comm, out_dir, atlas_path, &s.mask, s.what, err);
    double el_nifti = MPI_Wtime() - t0 - el;

    /* Report. */
    res->voxels = plan.total;
    res->genes = G;
    res->seconds = el;
    res->voxels_per_second = el > 0 ? plan.total / el : 0;
    if (rc == 0 && rank == 0) {
        printf("render: %ld voxels x %d genes in %.1f s (%.0f voxels/s; rank 0: collective writes %.1f s); atlas %s\n",
               plan.total, G, el, res->voxels_per_second, t_write, atlas_path);
        printf("render: set-up (the method fitted or loaded, mask, plan) %.1f s of it\n", t_setup);
        if (s.have_plat)
            printf("render: on rank 0: the prior's smooth part at %ld lattice points (every %d voxels, "
                   "render.prior_step) in %.1f s, the map at its voxels in %.1f s\n", s.plat.computed, s.plat.step,
                   s.t_plat, s.t_pred);
        else
            printf("render: on rank 0: the map at its voxels in %.1f s\n", s.t_pred);
        if (s.sd)
            printf("render: uncertainty on rank 0: the SD's smooth part at %ld lattice points (every %d voxels) in "
                   "%.1f s, the SD at its voxels in %.1f s; /distance in %.1f s\n", s.lat.computed,
                   s.have_lat ? s.lat.step : 1, s.t_lattice, s.t_sd, s.t_dist);
        else if (s.n_samples > 0)
            printf("render: /distance on rank 0 in %.1f s\n", s.t_dist);
        if (c->render.nifti & GI_NIFTI_3D)
            printf("render: NIfTI maps in %s/nifti/ (%.1f s more)\n", out_dir, el_nifti);
        fflush(stdout);
    }
    if (rc == 0)   /* then the 4-D NIfTI, dataset_description.json, previews (export.h) */
        rc = gi_export_after_render(c, comm, out_dir, atlas_path, &s.mask, err);
    source_free(&s);
    return rc;
}

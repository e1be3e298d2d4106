/* render.c - slab-partitioned rendering into the parallel HDF5 atlas (see render.h). */
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
#include "geneinr/dist.h"
#include "geneinr/export.h"
#include "geneinr/model.h"
#include "geneinr/nifti.h"

typedef struct renderer {
    const gi_config *c;
    MPI_Comm comm;
    int rank, size;
    gi_state st;
    gi_volume mask;
    gi_anatomy anat;
    int have_anat;
    int donor;               /* -1 = donor average */
    gi_workspace *ws;
    int nb_max;
    float *xyz, *out;
    int *donors, *labels, *genes;
    long *where;             /* [nb_max] voxel offset within the round buffer */
    double *mm;              /* [nb_max][3] MNI mm of a batch (the slice walk's scratch) */
    /* concat mode: the batch's coordinate columns (Fourier features), computed
     * once and shared by every gene's pass; NULL in factorized mode */
    float *coords;           /* [nb_max][gi_model_coord_width] */
    int *rows;               /* [nb_max] 0, 1, 2, ...: row k of coords is voxel k */
} renderer;

static void renderer_free(renderer *r)
{
    gi_state_free(&r->st);
    gi_volume_free(&r->mask);
    if (r->have_anat)
        gi_anatomy_free(&r->anat);
    gi_workspace_free(r->ws);
    free(r->xyz);
    free(r->out);
    free(r->donors);
    free(r->labels);
    free(r->genes);
    free(r->where);
    free(r->mm);
    free(r->coords);
    free(r->rows);
}

static int setup(renderer *r, const char *checkpoint, gi_err *err)
{
    const gi_config *c = r->c;
    if (!c->render.mask[0])
        return gi_fail(err, "%s: render.mask is not set (the NIfTI mask that defines the grid)",
                       c->source[0] ? c->source : "config");
    if (gi_checkpoint_load(&r->st, checkpoint, err) != 0)
        return -1;
    gi_model *m = &r->st.model;
    /* Render what validation chose (equal to the last weights without validation). */
    memcpy(m->params, r->st.best_params, sizeof(float) * m->n_params);
    if (gi_volume_read(&r->mask, c->render.mask, 1, err) != 0)
        return gi_fail_prefix(err, "render.mask");
    if (r->st.n_labels > 0) {
        if (!c->data.anatomy[0])
            return gi_fail(err, "%s was trained with an anatomical input; set data.anatomy to the label image",
                           checkpoint);
        /* The image's own label set must be the checkpoint's, as on resume:
         * with another image, unknown labels would silently become 0 and the
         * maps would differ without a word. Loading without a list derives it
         * from the image (and refuses non-integer labels). */
        if (gi_anatomy_load(&r->anat, c->data.anatomy, NULL, 0, err) != 0)
            return -1;
        r->have_anat = 1;
        if (r->anat.n_labels != r->st.n_labels ||
            memcmp(r->anat.values, r->st.label_values, sizeof(int) * (size_t)r->st.n_labels) != 0) {
            int extra = 0, missing = 0, first_extra = 0, first_missing = 0;
            for (int i = 1; i < r->anat.n_labels; i++) {
                int found = 0;
                for (int j = 1; j < r->st.n_labels && !found; j++)
                    found = r->st.label_values[j] == r->anat.values[i];
                if (!found && !extra++)
                    first_extra = r->anat.values[i];
            }
            for (int j = 1; j < r->st.n_labels; j++) {
                int found = 0;
                for (int i = 1; i < r->anat.n_labels && !found; i++)
                    found = r->st.label_values[j] == r->anat.values[i];
                if (!found && !missing++)
                    first_missing = r->st.label_values[j];
            }
            return gi_fail(err, "data.anatomy %s is not the image %s was trained with: it has %d labels, the "
                           "checkpoint %d (%d not in the checkpoint, e.g. %d; %d missing, e.g. %d); render with "
                           "the training's anatomy image", c->data.anatomy, checkpoint, r->anat.n_labels - 1,
                           r->st.n_labels - 1, extra, first_extra, missing, first_missing);
        }
    }
    r->donor = -1;
    if (strcmp(c->render.donor, "average") != 0) {
        for (int d = 0; d < r->st.n_donors; d++)
            if (strcmp(r->st.donors[d], c->render.donor) == 0)
                r->donor = d;
        if (r->donor < 0)
            return gi_fail(err, "render.donor: '%s' is not a donor of %s (use \"average\" or one of its donors, "
                           "e.g. '%s')", c->render.donor, checkpoint, r->st.donors[0]);
        if (!m->donor_in_average[r->donor])
            return gi_fail(err, "render.donor: '%s' had no training samples in %s (held out for validation), so "
                           "the model knows nothing specific to it; render \"average\" instead",
                           c->render.donor, checkpoint);
    }
    r->nb_max = c->render.batch_voxels;
    /* Forward only: no activations kept for a backward pass. */
    r->ws = gi_workspace_new_inference(m, r->nb_max);
    r->xyz = malloc(sizeof(float) * 3 * (size_t)r->nb_max);
    r->donors = malloc(sizeof(int) * (size_t)r->nb_max);
    r->labels = malloc(sizeof(int) * (size_t)r->nb_max);
    r->genes = malloc(sizeof(int) * (size_t)r->nb_max);
    r->where = malloc(sizeof(long) * (size_t)r->nb_max);
    r->mm = malloc(sizeof(double) * 3 * (size_t)r->nb_max);
    if (!r->ws || !r->xyz || !r->donors || !r->labels || !r->genes || !r->where || !r->mm)
        return gi_fail(err, "out of memory for render.batch_voxels = %d", r->nb_max);
    if (m->spec.gene_mode == GI_GENE_CONCAT) {
        r->coords = malloc(sizeof(float) * (size_t)r->nb_max * (size_t)gi_model_coord_width(m));
        r->rows = malloc(sizeof(int) * (size_t)r->nb_max);
        if (!r->coords || !r->rows)
            return gi_fail(err, "out of memory for render.batch_voxels = %d", r->nb_max);
        for (int k = 0; k < r->nb_max; k++)
            r->rows[k] = k;
    }
    for (int k = 0; k < r->nb_max; k++)
        r->donors[k] = r->donor;
    return 0;
}

/* Evaluate nb gathered voxels for genes g0 .. g0+ng-1 and scatter into buf
 * ([ng][slices][ny][nx]: gene g0 + j's block starts at j * gene_stride and
 * voxel k sits at offset where[k] within it). */
static void eval_batch(renderer *r, int nb, int g0, int ng, float *buf, size_t gene_stride)
{
    gi_model *m = &r->st.model;
    gi_batch b = {nb, r->xyz, m->spec.donor_dim ? r->donors : NULL, r->have_anat ? r->labels : NULL, NULL};
    if (m->spec.gene_mode == GI_GENE_FACTORIZED) {
        /* One trunk pass, then only this group's rows of the output layer. */
        gi_model_forward_outputs(m, &b, r->ws, g0, ng, r->out);
        for (int k = 0; k < nb; k++)
            for (int j = 0; j < ng; j++) {
                int g = g0 + j;
                buf[j * gene_stride + r->where[k]] = r->out[(size_t)k * ng + j] * r->st.gene_std[g] + r->st.gene_mean[g];
            }
        return;
    }
    b.gene = r->genes;
    /* The coordinate columns do not depend on the gene: once per batch. */
    gi_model_coord_features(m, r->xyz, nb, r->coords);
    for (int j = 0; j < ng; j++) {
        int g = g0 + j;
        for (int k = 0; k < nb; k++)
            r->genes[k] = g;
        gi_model_forward_coords(m, &b, r->coords, r->rows, r->ws, r->out);
        for (int k = 0; k < nb; k++)
            buf[j * gene_stride + r->where[k]] = r->out[k] * r->st.gene_std[g] + r->st.gene_mean[g];
    }
}

/* One batch of the slice walk (render_plan.h): normalised coordinates, then
 * the model for this write's genes. */
typedef struct walk {
    renderer *r;
    int g0, ng;
    float *buf;
    size_t gene_stride;
} walk;

static int walk_batch(void *ctx, int nb, const double *mm, const int *label, const long *where, gi_err *err)
{
    (void)label, (void)where, (void)err; /* in r->labels and r->where: the walk's scratch */
    walk *w = ctx;
    for (int k = 0; k < nb; k++)
        gi_mni_normalise(mm[3 * k], mm[3 * k + 1], mm[3 * k + 2], w->r->xyz + 3 * k);
    eval_batch(w->r, nb, w->g0, w->ng, w->buf, w->gene_stride);
    return 0;
}

/* Render slices [z0, z0 + nzb) of genes [g0, g0 + ng) into buf and mbuf
 * (gi_render_block_fn; the model cannot fail here). */
static int render_block(void *ctx, int z0, int nzb, int g0, int ng, float *buf, unsigned char *mbuf, gi_err *err)
{
    (void)err;
    renderer *r = ctx;
    const gi_volume *v = &r->mask;
    size_t gene_stride = (size_t)v->nx * v->ny * nzb;
    for (size_t q = 0; q < gene_stride * ng; q++)
        buf[q] = NAN;
    walk w = {r, g0, ng, buf, gene_stride};
    return gi_render_walk_slices(v, r->have_anat ? &r->anat : NULL, z0, nzb, r->nb_max, r->mm, r->labels, r->where,
                                 mbuf, walk_batch, &w, NULL);
}

/* The config recorded in the atlas: the checkpoint's (what the model is and
 * was trained on) with this render's section. */
static char *provenance_yaml(const renderer *r, const char *checkpoint, gi_config *trained)
{
    if (gi_config_load_text(trained, r->st.config_yaml, checkpoint, NULL) != 0)
        gi_config_defaults(trained);
    trained->render = r->c->render;
    memset(trained->run.out, 0, sizeof trained->run.out);
    return gi_config_to_yaml(trained);
}

/* The slab plan (render_plan.h) with this renderer's scratch: the model's
 * outputs of one batch, [batch_voxels][ng] factorized, [batch_voxels] concat. */
static int plan_slabs(const renderer *r, gi_render_plan *p, gi_err *err)
{
    size_t nb = (size_t)r->nb_max * sizeof(float);
    int factorized = r->st.model.spec.gene_mode == GI_GENE_FACTORIZED;
    return gi_render_plan_make(&r->mask, r->comm, r->st.n_genes, r->c, factorized ? nb : 0, factorized ? 0 : nb, p,
                               err);
}

int gi_render(const gi_config *c, MPI_Comm comm, const char *out_dir, const char *checkpoint,
              gi_render_result *res, gi_err *err)
{
    renderer r;
    memset(&r, 0, sizeof r);
    memset(res, 0, sizeof *res);
    r.c = c;
    r.comm = comm;
    MPI_Comm_rank(comm, &r.rank);
    MPI_Comm_size(comm, &r.size);
    double t0 = MPI_Wtime();

    /* Set-up: checkpoint, mask, anatomy, slab plan, buffers. */
    gi_render_plan plan;
    /* Map names are checked before anything is rendered (export.h). */
    if (gi_dist_agree(comm, setup(&r, checkpoint, err), err) != 0 ||
        gi_dist_agree(comm, c->render.nifti & GI_NIFTI_3D
                      ? gi_export_check_gene_names((const char *const *)r.st.genes, r.st.n_genes, out_dir, err) : 0,
                      err) != 0 ||
        plan_slabs(&r, &plan, err) != 0) {
        renderer_free(&r);
        return -1;
    }
    const gi_volume *v = &r.mask;
    int G = r.st.n_genes;
    size_t plane = (size_t)v->nx * v->ny;
    float *buf = malloc(plane * (size_t)plan.ng * sizeof(float) * (size_t)plan.k);
    unsigned char *mbuf = malloc(plane * (size_t)plan.k);
    r.out = malloc(sizeof(float) * (size_t)r.nb_max *
                   (r.st.model.spec.gene_mode == GI_GENE_FACTORIZED ? (size_t)plan.ng : 1));
    int ok = buf && mbuf && r.out ? 0 : gi_fail(err, "out of memory for %d slices of %d genes (render.buffer_mb)",
                                                plan.k, plan.ng);
    /* Set-up has passed (checkpoint, mask, anatomy, donor): this render will
     * replace the folder's maps, so the earlier render's files go now, not
     * only those this render rewrites (rundir.h). A render that fails its
     * set-up leaves the folder as it was. */
    if (ok == 0 && r.rank == 0 && gi_rundir_remove_renders(out_dir, 1, err) < 0)
        ok = -1;
    if (gi_dist_agree(comm, ok, err) != 0) {
        free(buf);
        free(mbuf);
        renderer_free(&r);
        return -1;
    }
    if (r.rank == 0) {
        printf("render: %ld in-mask voxels of %dx%dx%d, %d genes, %d rank%s, %d slices x %d genes per write "
               "(atlas chunks: 1 slice x %d genes); per rank %.1f MB output buffers, %.1f MB forward workspace\n",
               plan.total, v->nx, v->ny, v->nz, G, r.size, r.size > 1 ? "s" : "", plan.k, plan.ng, plan.chunk_genes,
               plan.buffer_bytes / 1048576.0,
               (gi_workspace_bytes(&r.st.model, r.nb_max, 1) +
                (r.coords ? sizeof(float) * (size_t)r.nb_max * (size_t)gi_model_coord_width(&r.st.model) : 0)) /
                   1048576.0);
        fflush(stdout);
    }

    /* Compute and write: one collective write per round of slices. */
    char atlas_path[GI_PATH_MAX + 32];
    snprintf(atlas_path, sizeof atlas_path, "%s/atlas.h5", out_dir);
    gi_config trained;
    char *yaml = provenance_yaml(&r, checkpoint, &trained);
    char units[GI_PATH_MAX + 64];
    snprintf(units, sizeof units, "the units of the sample table (%s)", trained.data.samples);
    gi_atlas_info info = {
        .n_genes = G, .genes = (const char *const *)r.st.genes,
        .n_donors = r.st.n_donors, .donors = (const char *const *)r.st.donors,
        .nx = v->nx, .ny = v->ny, .nz = v->nz,
        .units = units,
        .normalisation = "model output de-standardised per gene: value = output * gene_std + gene_mean, "
                         "with the mean and std of the training samples",
        .config_yaml = yaml, .rendered_for = c->render.donor, .kind = "atlas",
        .compress = c->render.compress,
        /* the slabs cover every slice, and every gene group is written for each */
        .every_slice_written = 1, .chunk_genes = c->render.chunk_genes,
    };
    memcpy(info.affine, v->affine, sizeof info.affine);
    gi_atlas_writer *w = gi_atlas_create(comm, atlas_path, &info, err);
    free(yaml);
    int rc = w ? 0 : -1;
    double t_write = 0; /* rank 0's time in the collective writes (docs/SCALING.md) */
    if (rc == 0)
        rc = gi_render_plan_write(&plan, G, w, comm, buf, mbuf, render_block, &r, &t_write, err);
    free(buf);
    free(mbuf);
    double tw = MPI_Wtime();
    if (w)
        rc = rc == 0 ? gi_atlas_finish(w, err) : (gi_atlas_abort(w), -1);
    t_write += MPI_Wtime() - tw;
    double el = MPI_Wtime() - t0;
    if (rc == 0 && (c->render.nifti & GI_NIFTI_3D))
        rc = gi_export_gene_maps(c, comm, out_dir, atlas_path, &r.mask, c->render.donor, err);
    double el_nifti = MPI_Wtime() - t0 - el;

    /* Report. */
    res->voxels = plan.total;
    res->genes = G;
    res->seconds = el;
    res->voxels_per_second = el > 0 ? plan.total / el : 0;
    if (rc == 0 && r.rank == 0) {
        printf("render: %ld voxels x %d genes in %.1f s (%.0f voxels/s; rank 0: collective writes %.1f s); atlas %s\n",
               plan.total, G, el, res->voxels_per_second, t_write, atlas_path);
        if (c->render.nifti & GI_NIFTI_3D)
            printf("render: NIfTI maps in %s/nifti/ (%.1f s more)\n", out_dir, el_nifti);
        fflush(stdout);
    }
    if (rc == 0)   /* then the 4-D NIfTI, dataset_description.json, previews (export.h) */
        rc = gi_export_after_render(c, comm, out_dir, atlas_path, &r.mask, err);
    renderer_free(&r);
    return rc;
}

/* render.c - slab-partitioned rendering into the parallel HDF5 atlas (see render.h). */
#include "geneinr/render.h"
#include "geneinr/rundir.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>

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
    /* concat mode: the batch's coordinate columns (Fourier features), computed
     * once and shared by every gene's pass; NULL in factorized mode */
    float *coords;           /* [nb_max][gi_model_coord_width] */
    int *rows;               /* [nb_max] 0, 1, 2, ...: row k of coords is voxel k */
} renderer;

/* Non-zero, non-NaN mask voxels are inside. */
static int in_mask(float v)
{
    return v != 0 && !isnan(v);
}

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
    if (!r->ws || !r->xyz || !r->donors || !r->labels || !r->genes || !r->where)
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

/* Render slices [z0, z0 + nzb) of genes [g0, g0 + ng) into buf and mbuf. */
static void render_slices(renderer *r, int z0, int nzb, int g0, int ng, float *buf, unsigned char *mbuf)
{
    const gi_volume *v = &r->mask;
    size_t plane = (size_t)v->nx * v->ny, gene_stride = plane * nzb;
    for (size_t q = 0; q < gene_stride * ng; q++)
        buf[q] = NAN;
    int nb = 0;
    for (int zz = 0; zz < nzb; zz++) {
        int z = z0 + zz;
        for (int y = 0; y < v->ny; y++)
            for (int x = 0; x < v->nx; x++) {
                size_t off = (size_t)zz * plane + (size_t)y * v->nx + x;
                int inside = in_mask(v->data[(size_t)z * plane + (size_t)y * v->nx + x]);
                mbuf[off] = (unsigned char)inside;
                if (!inside)
                    continue;
                double mm[3];
                gi_affine_apply(v->affine, x, y, z, mm);
                gi_mni_normalise(mm[0], mm[1], mm[2], r->xyz + 3 * nb);
                if (r->have_anat)
                    r->labels[nb] = gi_anatomy_index_at(&r->anat, mm[0], mm[1], mm[2]);
                r->where[nb] = (long)off;
                if (++nb == r->nb_max) {
                    eval_batch(r, nb, g0, ng, buf, gene_stride);
                    nb = 0;
                }
            }
        /* Batches never cross a slice: a voxel's batch (its rows and their
         * order) then depends on its slice alone, not on which rank renders
         * it or where its block starts, so the values are bit-identical at
         * any rank count whatever GEMM kernels OpenBLAS runs (some, e.g. the
         * Haswell ones, round a row differently by its place in the batch). */
        if (nb) {
            eval_batch(r, nb, g0, ng, buf, gene_stride);
            nb = 0;
        }
    }
}

/* File name of a gene: symbols are file-name safe in practice; anything
 * else becomes '_'. */
static void gene_file_name(const char *gene, char *out, size_t n)
{
    snprintf(out, n, "%s", gene);
    for (char *p = out; *p; p++)
        if (*p == '/' || *p == '\\' || *p == ' ' || *p == ':' || (*p == '.' && p == out))
            *p = '_';
}

/* Rank 0: create OUT/nifti, remove maps of an earlier render (they would sit
 * among the new ones looking current), refuse genes whose file names collide. */
static int prepare_nifti_dir(const renderer *r, const char *dir, gi_err *err)
{
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return gi_fail(err, "cannot create %s: %s", dir, strerror(errno));
    DIR *dh = opendir(dir);
    if (!dh)
        return gi_fail(err, "cannot read %s: %s", dir, strerror(errno));
    struct dirent *e;
    char path[GI_PATH_MAX + 300];
    while ((e = readdir(dh))) {
        size_t n = strlen(e->d_name);
        if (n > 7 && strcmp(e->d_name + n - 7, ".nii.gz") == 0) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            remove(path);
        }
    }
    closedir(dh);
    char a[256], b[256];
    for (int g = 0; g < r->st.n_genes; g++)
        for (int h = 0; h < g; h++) {
            gene_file_name(r->st.genes[g], a, sizeof a);
            gene_file_name(r->st.genes[h], b, sizeof b);
            if (strcmp(a, b) == 0)
                return gi_fail(err, "genes '%s' and '%s' would both be written as %s/%s.nii.gz", r->st.genes[h],
                               r->st.genes[g], dir, a);
        }
    return 0;
}

/* One .nii.gz per gene on the mask's geometry, read back from the finished
 * atlas; genes dealt round-robin to ranks. Collective. */
static int write_nifti(renderer *r, const char *out_dir, const char *atlas_path, gi_err *err)
{
    char dir[GI_PATH_MAX + 16];
    snprintf(dir, sizeof dir, "%s/nifti", out_dir);
    if (gi_dist_agree(r->comm, r->rank == 0 ? prepare_nifti_dir(r, dir, err) : 0, err) != 0)
        return -1;
    gi_atlas a;
    int rc = gi_atlas_open(&a, atlas_path, err);
    float *vol = rc == 0 ? malloc(sizeof(float) * (size_t)a.nx * a.ny * a.nz) : NULL;
    if (rc == 0 && !vol)
        rc = gi_fail(err, "out of memory for one %dx%dx%d map", a.nx, a.ny, a.nz);
    for (int g = r->rank; rc == 0 && g < a.n_genes; g += r->size) {
        char name[256], path[GI_PATH_MAX + 300], tmp[GI_PATH_MAX + 320], desc[80];
        gene_file_name(a.genes[g], name, sizeof name);
        snprintf(path, sizeof path, "%s/%s.nii.gz", dir, name);
        snprintf(tmp, sizeof tmp, "%s/.%s.tmp.nii.gz", dir, name);
        snprintf(desc, sizeof desc, "geneinr %s (%s)", a.genes[g], r->c->render.donor);
        rc = gi_atlas_read_gene(&a, g, vol, err);
        if (rc == 0)
            gi_export_background(r->c, vol, (size_t)a.nx * a.ny * a.nz);   /* render.background */
        if (rc != 0 || gi_volume_write_like(&r->mask, vol, tmp, desc, err) != 0)
            rc = -1;
        else if (rename(tmp, path) != 0)
            rc = gi_fail(err, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    }
    free(vol);
    gi_atlas_close(&a);
    return gi_dist_agree(r->comm, rc, err);
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

/* Which slices this rank renders, and how many slices and genes per
 * collective write.
 *
 * Blocks of k slices are dealt to the ranks in turn: write i of rank p is the
 * block [(i P + p) k, (i P + p + 1) k) (P ranks), so one write's blocks lie
 * side by side. Every write is a synchronisation point (it is collective and
 * compresses inside), so what counts is the balance of each write, not of a
 * rank's whole share: with one contiguous slab per rank (balanced by in-mask
 * voxels in total) a write paired the bottom of one slab (few brain voxels,
 * cheap) with the middle of the brain on the other rank, and the fast rank
 * waited at every write. Neighbouring blocks cost about the same to render
 * and to compress. (Slices dealt one by one balance better still, but the
 * strided selection made HDF5 1.10's filtered collective write twice as
 * slow: docs/BENCHMARKS.md.) A chunk is one slice, so no chunk is shared by
 * two ranks either way, and a voxel's value depends on its slice alone
 * (render_slices), so the atlas is the same at any rank count. */
typedef struct slab_plan {
    long total;              /* in-mask voxels of the whole grid */
    int k;                   /* slices per write (a block) */
    int ng;                  /* genes per write (a group); n_genes when a slice of all fits */
    int groups;              /* gene groups = ceil(n_genes / ng) */
    int rounds;              /* collective writes per gene group (the same on every rank) */
    int chunk_genes;         /* genes per chunk of the atlas (gi_atlas_chunk_genes) */
    size_t buffer_bytes;     /* the output buffers this plan allocates per rank */
} slab_plan;

/* Output buffers of a write of k slices x ng genes: the slab [ng][k][ny][nx]
 * floats, its mask [k][ny][nx] bytes and the model's outputs of one batch
 * ([batch_voxels][ng] factorized, [batch_voxels] concat). */
static size_t plan_bytes(const renderer *r, size_t plane, size_t k, size_t ng)
{
    size_t nb = (size_t)r->nb_max;
    size_t outs = r->st.model.spec.gene_mode == GI_GENE_FACTORIZED ? nb * ng : nb;
    return k * plane * ng * sizeof(float) + k * plane + outs * sizeof(float);
}

static int plan_slabs(const renderer *r, slab_plan *p, gi_err *err)
{
    const gi_volume *v = &r->mask;
    size_t plane = (size_t)v->nx * v->ny;
    int rc = 0;
    p->total = 0;
    for (size_t q = 0; q < plane * (size_t)v->nz; q++)
        p->total += in_mask(v->data[q]);
    if (p->total == 0)
        rc = gi_fail(err, "render.mask %s has no voxel inside (all zero or NaN)", r->c->render.mask);
    if (gi_dist_agree(r->comm, rc, err) != 0)
        return -1;
    /* render.buffer_mb bounds the output buffers (plan_bytes). As many slices
     * of all genes as fit; when not even one slice of all genes fits, one
     * slice of as many genes as fit (gene groups, each a pass over the slab).
     * Only one slice of one gene that alone exceeds the bound is allowed past
     * it, with a note. The plan depends only on the grid, the genes and the
     * config, so every rank makes the same one. */
    size_t budget = (size_t)r->c->render.buffer_mb * 1048576, G = (size_t)r->st.n_genes;
    gi_atlas_info layout = { .n_genes = (int)G, .nx = v->nx, .ny = v->ny, .nz = v->nz,
                             .chunk_genes = r->c->render.chunk_genes };
    p->chunk_genes = gi_atlas_chunk_genes(&layout);
    int tallest = (v->nz + r->size - 1) / r->size; /* no block beyond a rank's share */
    size_t k = 1, ng = G;
    if (plan_bytes(r, plane, 1, G) <= budget) {
        while (k < (size_t)(tallest > 0 ? tallest : 1) && plan_bytes(r, plane, k + 1, G) <= budget)
            k++;
    } else {
        size_t lo = 1, hi = G; /* largest ng with plan_bytes(1, ng) <= budget */
        while (lo < hi) {
            size_t mid = (lo + hi + 1) / 2;
            if (plan_bytes(r, plane, 1, mid) <= budget)
                lo = mid;
            else
                hi = mid - 1;
        }
        ng = lo;
        /* Whole chunks per write (atlas.h): a group that ends inside a chunk
         * would make the next group's write read, inflate and rewrite it. */
        if (ng >= (size_t)p->chunk_genes)
            ng -= ng % (size_t)p->chunk_genes;
        if (r->rank == 0) {
            if (plan_bytes(r, plane, 1, 1) > budget)
                printf("render: note: one slice of one gene with render.batch_voxels = %d takes %.1f MB, more than "
                       "render.buffer_mb = %d\n", r->nb_max, plan_bytes(r, plane, 1, 1) / 1048576.0,
                       r->c->render.buffer_mb);
            else
                printf("render: one slice of all %zu genes takes %.1f MB, more than render.buffer_mb = %d: "
                       "rendering in groups of %zu genes%s\n", G, plan_bytes(r, plane, 1, G) / 1048576.0,
                       r->c->render.buffer_mb, ng,
                       ng % (size_t)p->chunk_genes ? " (fewer than the atlas's genes per chunk: each write "
                                                     "rewrites chunks it shares with the next)" : "");
        }
    }
    p->k = (int)k;
    p->ng = (int)ng;
    p->groups = (int)((G + ng - 1) / ng);
    p->buffer_bytes = plan_bytes(r, plane, k, ng);
    long span = (long)p->k * r->size; /* slices per round of writes */
    p->rounds = (int)((v->nz + span - 1) / span);
    return 0;
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
    slab_plan plan;
    if (gi_dist_agree(comm, setup(&r, checkpoint, err), err) != 0 || plan_slabs(&r, &plan, err) != 0) {
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
    int total_rounds = plan.rounds * plan.groups;
    double t_write = 0; /* rank 0's time in the collective writes (docs/SCALING.md) */
    for (int grp = 0; rc == 0 && grp < plan.groups; grp++) {
        int g0 = grp * plan.ng, ng = G - g0 < plan.ng ? G - g0 : plan.ng;
        for (int round = 0; rc == 0 && round < plan.rounds; round++) {
            long z0 = ((long)round * r.size + r.rank) * plan.k;
            int nzb = z0 >= v->nz ? 0 : (int)(v->nz - z0 < plan.k ? v->nz - z0 : plan.k);
            if (nzb > 0)
                render_slices(&r, (int)z0, nzb, g0, ng, buf, mbuf);
            /* The mask once, with the first gene group. */
            double tw = MPI_Wtime();
            rc = gi_atlas_write_genes(w, g0, ng, nzb > 0 ? (int)z0 : 0, nzb, buf, grp == 0 ? mbuf : NULL, err);
            t_write += MPI_Wtime() - tw;
            if (r.rank == 0 && total_rounds > 1) {
                printf("render: round %d/%d\n", grp * plan.rounds + round + 1, total_rounds);
                fflush(stdout);
            }
        }
    }
    free(buf);
    free(mbuf);
    double tw = MPI_Wtime();
    if (w)
        rc = rc == 0 ? gi_atlas_finish(w, err) : (gi_atlas_abort(w), -1);
    t_write += MPI_Wtime() - tw;
    double el = MPI_Wtime() - t0;
    if (rc == 0 && (c->render.nifti & GI_NIFTI_3D))
        rc = write_nifti(&r, out_dir, atlas_path, err);
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

/* render_method.c - baselines rendered as atlases (see render_method.h). */
#include "geneinr/render_method.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "geneinr/anatomy.h"
#include "geneinr/atlas.h"
#include "geneinr/dataset.h"
#include "geneinr/dist.h"
#include "geneinr/export.h"
#include "geneinr/method.h"
#include "geneinr/nifti.h"

#define BATCH 4096

static int in_mask(float v) { return v != 0 && !isnan(v); }

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
    j->pred = malloc(sizeof(float) * BATCH * (size_t)s->n_genes);
    j->labels = malloc(sizeof(int) * BATCH);
    j->where = malloc(sizeof(long) * BATCH);
    if (!j->pts || !j->pred || !j->labels || !j->where)
        return gi_fail(err, "out of memory");
    return 0;
}

static int flush_batch(job *j, int nb, float *buf, size_t gene_stride, gi_err *err)
{
    int G = j->d.s.n_genes;
    if (gi_method_predict(j->m, nb, j->pts, j->have_anat ? j->labels : NULL, j->pred, err) != 0)
        return -1;
    for (int k = 0; k < nb; k++)
        for (int g = 0; g < G; g++)
            buf[g * gene_stride + j->where[k]] = j->destandardise
                ? j->pred[(size_t)k * G + g] * j->d.gene_std[g] + j->d.gene_mean[g] : j->pred[(size_t)k * G + g];
    return 0;
}

static int render_slices(job *j, int z0, int nzb, float *buf, unsigned char *mbuf, gi_err *err)
{
    const gi_volume *v = &j->mask;
    size_t plane = (size_t)v->nx * v->ny, gene_stride = plane * nzb;
    int G = j->d.s.n_genes, nb = 0;
    for (size_t q = 0; q < gene_stride * G; q++)
        buf[q] = NAN;
    for (int zz = 0; zz < nzb; zz++)
        for (int y = 0; y < v->ny; y++)
            for (int x = 0; x < v->nx; x++) {
                size_t off = (size_t)zz * plane + (size_t)y * v->nx + x;
                int inside = in_mask(v->data[(size_t)(z0 + zz) * plane + (size_t)y * v->nx + x]);
                mbuf[off] = (unsigned char)inside;
                if (!inside)
                    continue;
                double mm[3];
                gi_affine_apply(v->affine, x, y, z0 + zz, mm);
                for (int a = 0; a < 3; a++)
                    j->pts[3 * nb + a] = (float)mm[a];
                if (j->have_anat)
                    j->labels[nb] = gi_anatomy_index_at(&j->anat, mm[0], mm[1], mm[2]);
                j->where[nb] = (long)off;
                if (++nb == BATCH) {
                    if (flush_batch(j, nb, buf, gene_stride, err) != 0)
                        return -1;
                    nb = 0;
                }
            }
    return nb ? flush_batch(j, nb, buf, gene_stride, err) : 0;
}

static int write_nifti(job *j, MPI_Comm comm, const char *out_dir, const char *atlas_path, gi_err *err)
{
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    char dir[GI_PATH_MAX + 16];
    snprintf(dir, sizeof dir, "%s/nifti", out_dir);
    int rc = rank == 0 && mkdir(dir, 0777) != 0 && errno != EEXIST ? gi_fail(err, "cannot create %s: %s", dir, strerror(errno)) : 0;
    if (gi_dist_agree(comm, rc, err) != 0)
        return -1;
    gi_atlas a;
    rc = gi_atlas_open(&a, atlas_path, err);
    int opened = rc == 0;
    float *vol = rc == 0 ? malloc(sizeof(float) * (size_t)a.nx * a.ny * a.nz) : NULL;
    if (rc == 0 && !vol)
        rc = gi_fail(err, "out of memory");
    for (int g = rank; rc == 0 && g < a.n_genes; g += size) {
        char name[256], path[GI_PATH_MAX + 300], tmp[GI_PATH_MAX + 320], desc[80];
        snprintf(name, sizeof name, "%s", a.genes[g]);
        for (char *p = name; *p; p++)
            if (*p == '/' || *p == '\\' || *p == ' ' || *p == ':' || (*p == '.' && p == name))
                *p = '_';
        snprintf(path, sizeof path, "%s/%s.nii.gz", dir, name);
        snprintf(tmp, sizeof tmp, "%s/.%s.tmp.nii.gz", dir, name);
        snprintf(desc, sizeof desc, "geneinr %s (%s)", a.genes[g], GI_METHOD_NAMES[j->c->render.method]);
        rc = gi_atlas_read_gene(&a, g, vol, err);
        if (rc == 0)
            gi_export_background(j->c, vol, (size_t)a.nx * a.ny * a.nz);   /* render.background */
        if (rc != 0 || gi_volume_write_like(&j->mask, vol, tmp, desc, err) != 0)
            rc = -1;
        else if (rename(tmp, path) != 0)
            rc = gi_fail(err, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    }
    free(vol);
    if (opened)
        gi_atlas_close(&a);
    return gi_dist_agree(comm, rc, err);
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
    if (gi_dist_agree(comm, setup(&j, c, checkpoint, err), err) != 0) {
        job_free(&j);
        return -1;
    }
    const gi_volume *v = &j.mask;
    int G = j.d.s.n_genes;
    size_t plane = (size_t)v->nx * v->ny;
    /* Slabs balanced by in-mask voxels; slices per write bounded by render.buffer_mb. */
    long *count = calloc((size_t)v->nz, sizeof(long)), total = 0;
    int *begin = malloc(sizeof(int) * ((size_t)size + 1));
    int rc = count && begin ? 0 : gi_fail(err, "out of memory");
    if (rc == 0) {
        for (int z = 0; z < v->nz; z++) {
            for (size_t q = 0; q < plane; q++)
                count[z] += in_mask(v->data[(size_t)z * plane + q]);
            total += count[z];
        }
        gi_slab_partition(count, v->nz, size, begin);
        if (total == 0)
            rc = gi_fail(err, "render.mask %s has no voxel inside (all zero or NaN)", c->render.mask);
    }
    int z_lo = begin ? begin[rank] : 0, z_hi = begin ? begin[rank + 1] : 0;
    free(count);
    free(begin);
    size_t per_slice = plane * (size_t)G * sizeof(float);
    int k = (int)((size_t)c->render.buffer_mb * 1048576 / per_slice);
    if (k < 1) k = 1;
    if (k > v->nz) k = v->nz;
    int mine = (z_hi - z_lo + k - 1) / k, rounds = 0;
    MPI_Allreduce(&mine, &rounds, 1, MPI_INT, MPI_MAX, comm);
    float *buf = rc == 0 ? malloc(per_slice * (size_t)k) : NULL;
    unsigned char *mbuf = rc == 0 ? malloc(plane * (size_t)k) : NULL;
    if (rc == 0 && (!buf || !mbuf))
        rc = gi_fail(err, "out of memory for %d slices of %d genes (render.buffer_mb)", k, G);
    if (gi_dist_agree(comm, rc, err) != 0) {
        free(buf);
        free(mbuf);
        job_free(&j);
        return -1;
    }
    if (rank == 0) {
        printf("render: %s fitted on %d samples; %ld in-mask voxels of %dx%dx%d, %d genes, %d rank%s\n",
               GI_METHOD_NAMES[c->render.method], j.d.s.n, total, v->nx, v->ny, v->nz, G, size, size > 1 ? "s" : "");
        fflush(stdout);
    }
    char atlas_path[GI_PATH_MAX + 32], units[GI_PATH_MAX + 64];
    snprintf(atlas_path, sizeof atlas_path, "%s/atlas.h5", out_dir);
    snprintf(units, sizeof units, "the units of the sample table (%s)", c->data.samples);
    gi_config prov = *c;
    memset(prov.run.out, 0, sizeof prov.run.out);
    char *yaml = gi_config_to_yaml(&prov);
    char norm[256];
    if (c->render.method == GI_METHOD_INR)
        snprintf(norm, sizeof norm, "(network output + data.prior %s) * gene_std + gene_mean, with the mean and std of "
                 "the training samples", c->data.prior == GI_PRIOR_RK ? "regression_kriging" : "kriging");
    else
        snprintf(norm, sizeof norm, "%s fitted on per-gene standardised samples, de-standardised: value = prediction "
                 "* gene_std + gene_mean (mean and std of all samples)", GI_METHOD_NAMES[c->render.method]);
    gi_atlas_info info = {
        .n_genes = G, .genes = (const char *const *)j.d.s.gene_names,
        .n_donors = j.d.s.n_donors, .donors = (const char *const *)j.d.s.donor_names,
        .nx = v->nx, .ny = v->ny, .nz = v->nz, .units = units, .normalisation = norm,
        .config_yaml = yaml, .rendered_for = "average", .kind = "atlas", .compress = c->render.compress,
        .chunk_genes = c->render.chunk_genes,
        /* the slabs cover every slice, each write holds all genes */
        .every_slice_written = 1,
    };
    memcpy(info.affine, v->affine, sizeof info.affine);
    gi_atlas_writer *w = gi_atlas_create(comm, atlas_path, &info, err);
    free(yaml);
    rc = w ? 0 : -1;
    for (int round = 0; rc == 0 && round < rounds; round++) {
        int z0 = z_lo + round * k, nzb = z_hi - z0 < k ? z_hi - z0 : k;
        if (nzb < 0)
            nzb = 0;
        int lrc = nzb > 0 ? render_slices(&j, z0, nzb, buf, mbuf, err) : 0;
        if (gi_dist_agree(comm, lrc, err) != 0) {
            rc = -1;
            break;
        }
        rc = gi_atlas_write_slices(w, nzb > 0 ? z0 : 0, nzb, buf, mbuf, err);
    }
    free(buf);
    free(mbuf);
    if (w)
        rc = rc == 0 ? gi_atlas_finish(w, err) : (gi_atlas_abort(w), -1);
    double el = MPI_Wtime() - t0;
    /* One 3-D file per gene (render.nifti 3d or both). */
    if (rc == 0 && (c->render.nifti & GI_NIFTI_3D))
        rc = write_nifti(&j, comm, out_dir, atlas_path, err);
    if (rc == 0)   /* 4-D NIfTI, dataset_description.json, previews */
        rc = gi_export_after_render(c, comm, out_dir, atlas_path, &j.mask, err);
    res->voxels = total;
    res->genes = G;
    res->seconds = el;
    res->voxels_per_second = el > 0 ? total / el : 0;
    if (rc == 0 && rank == 0) {
        printf("render: %s, %ld voxels x %d genes in %.1f s; atlas %s\n", GI_METHOD_NAMES[c->render.method], total, G,
               el, atlas_path);
        fflush(stdout);
    }
    job_free(&j);
    return rc;
}

/* render_plan.c - slabs, slices and gene groups of a render (see render_plan.h). */
#include "geneinr/render_plan.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "geneinr/atlas.h"
#include "geneinr/dist.h"
#include "geneinr/enum_names.h"
#include "geneinr/progress.h"

int gi_render_in_mask(float v)
{
    return v != 0 && !isnan(v);
}

typedef struct cost {
    size_t plane, per_gene, fixed;
    size_t maps;             /* per-gene maps per slice: 1, or 2 with the SD */
    size_t code_bytes;       /* render.dtype uint16: the atlas writer's codes, 2 bytes per value of the slab */
    size_t per_slice;        /* bytes per voxel of a slice beyond them: the mask, the distance */
} cost;

static size_t plan_bytes(const cost *c, size_t k, size_t ng)
{
    return k * c->plane * ng * (sizeof(float) * c->maps + c->code_bytes) + k * c->plane * c->per_slice +
           ng * c->per_gene + c->fixed;
}

int gi_render_plan_make(const gi_volume *v, MPI_Comm comm, int n_genes, const gi_config *c,
                        size_t scratch_per_gene, size_t scratch_fixed, gi_render_plan *p, gi_err *err)
{
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    size_t plane = (size_t)v->nx * v->ny;
    p->rank = rank;
    p->plane = (long)plane;
    p->size = size;
    p->nz = v->nz;
    p->total = 0;
    for (size_t q = 0; q < plane * (size_t)v->nz; q++)
        p->total += gi_render_in_mask(v->data[q]);
    int rc = p->total == 0 ? gi_fail(err, "render.mask %s has no voxel inside (all zero or NaN)", c->render.mask) : 0;
    if (gi_dist_agree(comm, rc, err) != 0)
        return -1;
    int sd = c->render.uncertainty != 0;
    cost cs = {plane, scratch_per_gene, scratch_fixed, sd ? 2 : 1, c->render.dtype == GI_DTYPE_UINT16 ? 2 : 0,
               1 + sizeof(float)};
    size_t budget = (size_t)c->render.buffer_mb * 1048576, G = (size_t)n_genes;
    gi_atlas_info layout = {.n_genes = n_genes, .nx = v->nx, .ny = v->ny, .nz = v->nz,
                            .chunk_genes = c->render.chunk_genes, .uncertainty = sd};
    p->chunk_genes = gi_atlas_chunk_genes(&layout);
    int tallest = (v->nz + size - 1) / size; /* no block beyond a rank's share */
    size_t k = 1, ng = G;
    if (plan_bytes(&cs, 1, G) <= budget) {
        while (k < (size_t)(tallest > 0 ? tallest : 1) && plan_bytes(&cs, k + 1, G) <= budget)
            k++;
    } else {
        size_t lo = 1, hi = G; /* largest ng with plan_bytes(1, ng) <= budget */
        while (lo < hi) {
            size_t mid = (lo + hi + 1) / 2;
            if (plan_bytes(&cs, 1, mid) <= budget)
                lo = mid;
            else
                hi = mid - 1;
        }
        ng = lo;
        /* Whole chunks per write (atlas.h): a group that ends inside a chunk
         * would make the next group's write read, inflate and rewrite it. */
        if (ng >= (size_t)p->chunk_genes)
            ng -= ng % (size_t)p->chunk_genes;
        if (rank == 0) {
            if (plan_bytes(&cs, 1, 1) > budget)
                printf("render: note: one slice of one gene takes %.1f MB with its scratch, more than "
                       "render.buffer_mb = %d\n", plan_bytes(&cs, 1, 1) / 1048576.0, c->render.buffer_mb);
            else
                printf("render: one slice of all %zu genes takes %.1f MB, more than render.buffer_mb = %d: "
                       "rendering in groups of %zu genes%s\n", G, plan_bytes(&cs, 1, G) / 1048576.0,
                       c->render.buffer_mb, ng,
                       ng % (size_t)p->chunk_genes ? " (fewer than the atlas's genes per chunk: each write "
                                                     "rewrites chunks it shares with the next)" : "");
            fflush(stdout);
        }
    }
    p->k = (int)k;
    p->ng = (int)ng;
    p->groups = (int)((G + ng - 1) / ng);
    p->buffer_bytes = plan_bytes(&cs, k, ng);
    long span = (long)p->k * size; /* slices per round of writes */
    p->rounds = (int)((v->nz + span - 1) / span);
    return 0;
}

int gi_render_plan_block(const gi_render_plan *p, int round, int *z0)
{
    /* Write `round` covers the run [lo, hi) of about nz / rounds slices, cut
     * into one block per rank: every write, the last too, is as even as the
     * slices allow (rounds = ceil(nz / (P k)) keeps every block <= k). */
    long lo = (long)round * p->nz / p->rounds, hi = (long)(round + 1) * p->nz / p->rounds;
    long first = lo + (hi - lo) * p->rank / p->size, end = lo + (hi - lo) * (p->rank + 1) / p->size;
    *z0 = end > first ? (int)first : 0;
    return (int)(end - first);
}

int gi_render_walk_slices(const gi_volume *v, const gi_anatomy *anat, int z0, int nzb, int nb_max, double *mm,
                          int *label, long *where, unsigned char *mbuf, gi_render_batch_fn fn, void *ctx,
                          gi_err *err)
{
    size_t plane = (size_t)v->nx * v->ny;
    for (int zz = 0; zz < nzb; zz++) {
        int z = z0 + zz, nb = 0;
        for (int y = 0; y < v->ny; y++)
            for (int x = 0; x < v->nx; x++) {
                size_t off = (size_t)zz * plane + (size_t)y * v->nx + x;
                int inside = gi_render_in_mask(v->data[(size_t)z * plane + (size_t)y * v->nx + x]);
                mbuf[off] = (unsigned char)inside;
                if (!inside)
                    continue;
                double *p = mm + 3 * (size_t)nb;
                gi_affine_apply(v->affine, x, y, z, p);
                if (anat)
                    label[nb] = gi_anatomy_index_at(anat, p[0], p[1], p[2]);
                where[nb] = (long)off;
                if (++nb == nb_max) {
                    if (fn(ctx, nb, mm, anat ? label : NULL, where, err) != 0)
                        return -1;
                    nb = 0;
                }
            }
        if (nb && fn(ctx, nb, mm, anat ? label : NULL, where, err) != 0)
            return -1;
    }
    return 0;
}

/* render.dtype uint16: this rank's range of the group's genes over its block
 * (the in-mask voxels of b->mask), into lo/hi. */
static void block_range(const gi_render_plan *p, int nzb, int ng, const gi_render_bufs *b, float *lo, float *hi)
{
    gi_atlas_range_add(ng, (size_t)nzb * (size_t)p->plane, b->expr, b->mask, lo, hi);
}

int gi_render_plan_write(const gi_render_plan *p, int n_genes, gi_atlas_writer *w, MPI_Comm comm,
                         const gi_render_bufs *b, gi_render_block_fn fn, void *ctx, double *t_write, gi_err *err)
{
    /* uint16 needs each gene's range before its first write (atlas.h): when a
     * rank's slab is one block (one round) it is rendered, its range reduced
     * and written; otherwise the group is rendered twice, the range first
     * (the values are the same bits both times: a voxel's value depends on
     * its slice alone). */
    int u16 = gi_atlas_writer_dtype(w) == GI_DTYPE_UINT16, twice = u16 && p->rounds > 1;
    int total_rounds = p->rounds * p->groups * (twice ? 2 : 1), rc = 0, done = 0;
    *t_write = 0;
    float *lo = u16 ? malloc(sizeof *lo * (size_t)p->ng) : NULL, *hi = u16 ? malloc(sizeof *hi * (size_t)p->ng) : NULL;
    if (gi_dist_agree(comm, u16 && (!lo || !hi) ? gi_fail(err, "out of memory for %d gene ranges", p->ng) : 0,
                      err) != 0) {
        free(lo);
        free(hi);
        return -1;
    }
    if (twice && p->rank == 0) {
        printf("render: uint16: each gene group is rendered twice, the range first (%d writes per group; a "
               "render.buffer_mb that holds a rank's whole slab makes it one pass)\n", p->rounds);
        fflush(stdout);
    }
    /* Rounds are collective, so rank 0's count is everyone's: progress and
     * ETA every few seconds (progress.h), not a line per round. */
    gi_progress prog;
    gi_progress_begin(&prog, p->rank == 0 ? "render" : NULL, "rounds of slices", total_rounds);
    for (int grp = 0; rc == 0 && grp < p->groups; grp++) {
        int g0 = grp * p->ng, ng = n_genes - g0 < p->ng ? n_genes - g0 : p->ng;
        for (int g = 0; u16 && g < ng; g++) {
            lo[g] = INFINITY;
            hi[g] = -INFINITY;
        }
        for (int round = 0; rc == 0 && twice && round < p->rounds; round++) {
            int z0, nzb = gi_render_plan_block(p, round, &z0);
            gi_render_bufs bb = {b->expr, b->mask, NULL, NULL};   /* the values only */
            if (gi_dist_agree(comm, nzb > 0 ? fn(ctx, z0, nzb, g0, ng, &bb, err) : 0, err) != 0)
                rc = -1;
            else
                block_range(p, nzb, ng, &bb, lo, hi);
            gi_progress_step(&prog, ++done);
        }
        if (rc == 0 && twice)
            rc = gi_atlas_set_range(w, g0, ng, lo, hi, err);
        for (int round = 0; rc == 0 && round < p->rounds; round++) {
            int z0, nzb = gi_render_plan_block(p, round, &z0);
            gi_render_bufs bb = *b;
            if (grp > 0)
                bb.dist = NULL;   /* one volume, made with the first group */
            if (gi_dist_agree(comm, nzb > 0 ? fn(ctx, z0, nzb, g0, ng, &bb, err) : 0, err) != 0) {
                rc = -1;
                break;
            }
            if (u16 && !twice) {
                block_range(p, nzb, ng, &bb, lo, hi);
                if ((rc = gi_atlas_set_range(w, g0, ng, lo, hi, err)) != 0)
                    break;
            }
            double tw = MPI_Wtime();
            rc = gi_atlas_write_genes(w, g0, ng, z0, nzb, bb.expr, grp == 0 ? bb.mask : NULL, err);
            if (rc == 0 && bb.sd)
                rc = gi_atlas_write_sd(w, g0, ng, z0, nzb, bb.sd, err);
            if (rc == 0 && bb.dist)
                rc = gi_atlas_write_distance(w, z0, nzb, bb.dist, err);
            *t_write += MPI_Wtime() - tw;
            gi_progress_step(&prog, ++done);
        }
    }
    free(lo);
    free(hi);
    return rc;
}

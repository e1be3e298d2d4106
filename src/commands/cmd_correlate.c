/* cmd_correlate.c - `geneinr correlate ATLAS --map MAP --out DIR`: which genes follow a brain map,
 * with spatial nulls (correlate.h). MPI-parallel over the nulls. */
#include <limits.h>
#include <stdio.h>

#include "geneinr/cmd.h"
#include "geneinr/correlate.h"
#include "geneinr/dist.h"
#include "geneinr/error.h"
#include "geneinr/files.h"
#include "geneinr/runlock.h"

#define DEFAULT_NULLS 1000
#define DEFAULT_SEED 1
#define DEFAULT_RESOLUTION 4
#define DEFAULT_TOP 6

static int run_correlate(const gi_cmd_ctx *x, const gi_cmd_args *a)
{
    gi_err err = {{0}};
    gi_correlate_opts o = {
        .atlas = a->operand, .map = a->map, .out = a->out, .parcellation = a->parcellation,
        .n_gene_sets = a->gene_sets.n,
        .n_nulls = a->nulls >= 0 ? a->nulls : DEFAULT_NULLS,
        .seed = (uint64_t)(a->seed >= 0 ? a->seed : DEFAULT_SEED),
        .resolution_mm = (double)(a->resolution >= 0 ? a->resolution : DEFAULT_RESOLUTION),
        .top_genes = (int)(a->top >= 0 ? a->top : DEFAULT_TOP),
    };
    if (a->gene_sets.n > GI_CORRELATE_MAX_SETS)
        return gi_cmd_usage_error(x, "correlate", "at most %d --gene-set files", GI_CORRELATE_MAX_SETS);
    for (int i = 0; i < a->gene_sets.n; i++)
        o.gene_sets[i] = a->gene_sets.v[i];
    double t0 = MPI_Wtime();
    int rc = x->rank == 0 ? gi_make_dirs(a->out, &err) : 0;
    if (gi_dist_agree(x->comm, rc, &err) != 0)
        return gi_cmd_status(x, -1, &err);
    /* One job per folder (runlock.h), as for every command that writes one. */
    gi_rundir_lock lock;
    if (gi_cmd_lock(x, a->out, &lock, &err) != 0)
        return gi_cmd_status(x, -1, &err);
    gi_correlate_summary s;
    rc = gi_correlate_run(x->comm, &o, &s, &err);
    gi_rundir_lock_release(&lock);
    if (rc == 0 && x->rank == 0) {
        if (s.note[0])
            fprintf(stderr, "geneinr: note: %s", s.note);
        if (a->parcellation)
            printf("correlate: %d genes x %d regions (map covers %.1f%% of the atlas mask)\n", s.n_genes, s.n_units,
                   100 * s.share);
        else
            printf("correlate: %d genes x %d units of %dx%dx%d voxels (map covers %.1f%% of the atlas mask)\n",
                   s.n_genes, s.n_units, s.block[0], s.block[1], s.block[2], 100 * s.share);
        printf("correlate: %ld nulls on %d rank%s in %.1f s; %.1f s in all\n", o.n_nulls, x->size,
               x->size > 1 ? "s" : "", s.seconds_nulls, MPI_Wtime() - t0);
        if (s.top_gene[0])
            printf("correlate: top gene %s (r = %.3f, p_spatial = %.3g); wrote %s/correlations.csv, nulls.h5, "
                   "report.html%s\n",
                   s.top_gene, s.top_r, s.top_p, a->out, a->gene_sets.n ? ", gene_sets.csv" : "");
    }
    return gi_cmd_status(x, rc, &err);
}

static const gi_cmd_opt OPTS[] = {
    GI_OPT_S_REQ("--map", map, "MAP.nii.gz", "the brain map (NIfTI, any grid and affine; NaN = no value)"),
    GI_OPT_S_REQ("--out", out, "DIR", "output folder"),
    GI_OPT_L("--nulls", nulls, "N", 1, 1000000, "spatial null maps (default 1000)"),
    GI_OPT_L("--seed", seed, "S", 0, LONG_MAX, "seed of the nulls (default 1)"),
    GI_OPT_S("--parcellation", parcellation, "P.nii.gz",
             "correlate region means of this label image (any grid); adds Moran spectral randomisation"),
    GI_OPT_LIST_S("--gene-set", gene_sets, "FILE", "a gene set, one symbol a line (# comments); repeatable"),
    GI_OPT_L("--resolution", resolution, "MM", 0, 16,
             "voxel mode: analyse blocks of about MM mm (default 4; 0 = the atlas's voxels)"),
    GI_OPT_L("--top", top, "K", 0, 100, "genes drawn in report.html (default 6)"),
    GI_OPT_END,
};

const gi_cmd gi_cmd_correlate = {
    .name = "correlate",
    .run = run_correlate,
    .operand = "ATLAS",
    .synopsis = "which genes of an atlas follow a brain map, with spatial nulls: `DIR/correlations.csv`, "
                "`nulls.h5`, `report.html` (see Correlating a brain map)",
    .help = "Resamples MAP onto the atlas grid (trilinear; nearest voxel for integer maps) and correlates it\n"
            "(Pearson) with every gene over blocks of about --resolution mm (the observed r and the nulls'\n"
            "alike), or over region means with --parcellation. p_spatial comes from N variogram-matched\n"
            "surrogate maps (Burt et al. 2020), with --parcellation also from Moran spectral randomisation\n"
            "(p_moran); q_spatial is Benjamini-Hochberg over genes. --gene-set tests a set's mean r against\n"
            "random sets of the same size and against the spatial nulls (Fulcher et al. 2021). Writes\n"
            "DIR/correlations.csv (gene,r,p_naive,p_spatial,q_spatial, sorted by p_spatial), nulls.h5,\n"
            "gene_sets.csv and report.html. Seeded; identical at any rank count.",
    .opts = OPTS,
};

/* bench_sd_lattice.c - how far the render's lattice SD (uncertainty.h: the
 * smooth part q computed on every STEP-th voxel and interpolated trilinearly)
 * is from the exact SD (gi_method_predict_sd with q = NULL), on a random
 * subset of in-mask voxels, for each step given; and the time of each.
 *
 * The method is render.method of CONFIG (kriging or regression_kriging),
 * fitted on every sample as a render does. Only the lattice points the chosen
 * voxels need (their cells' corners) are computed, so a 1 mm mask costs
 * seconds; the values are those a render would interpolate (q is exact at
 * each lattice point, whichever batch computes it).
 *
 * usage: bench_sd_lattice CONFIG.yaml N_VOXELS STEP...
 *   e.g. bench_sd_lattice configs/atlas.yaml 4000 2 3 4 --set render.method=regression_kriging
 * prints per step: max and RMS of |sd_lattice - sd_exact| / sd_exact over the
 * voxels and genes, and the seconds of the exact SD and of the corners' q.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include "geneinr/anatomy.h"
#include "geneinr/config.h"
#include "geneinr/dataset.h"
#include "geneinr/method.h"
#include "geneinr/nifti.h"
#include "geneinr/render_plan.h"
#include "geneinr/uncertainty.h"

static unsigned long long next(unsigned long long *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s >> 33;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    if (argc < 4) {
        fprintf(stderr, "usage: bench_sd_lattice CONFIG.yaml N_VOXELS STEP... [--set key=value ...]\n");
        return 2;
    }
    const char *sets[32];
    int n_sets = 0, steps[16], n_steps = 0;
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--set") == 0 && i + 1 < argc && n_sets < 31)
            sets[n_sets++] = argv[++i];
        else if (n_steps < 16)
            steps[n_steps++] = atoi(argv[i]);
    }
    sets[n_sets] = NULL;
    gi_err err;
    gi_config c;
    if (gi_config_load(&c, argv[1], sets, n_sets, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    int nv = atoi(argv[2]);
    gi_volume mask;
    if (gi_volume_read(&mask, c.render.mask, 1, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    gi_config all = c;
    all.train.val_mode = GI_VAL_NONE;
    all.data.prior = GI_PRIOR_NONE;
    gi_dataset d;
    if (gi_dataset_build(&d, &all, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    gi_anatomy anat;
    int have_anat = 0;
    if (c.data.anatomy[0]) {
        if (gi_anatomy_load(&anat, c.data.anatomy, d.label_values, d.n_labels, &err) != 0) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        have_anat = 1;
    }
    const gi_samples *sm = &d.s;
    gi_fit_data fd = {.n = sm->n, .n_genes = sm->n_genes, .mni = sm->mni, .y = d.y, .donor = sm->donor,
                      .n_donors = sm->n_donors, .donor_names = sm->donor_names, .gene_names = sm->gene_names,
                      .label = d.label, .n_labels = d.n_labels};
    gi_method_opts o;
    gi_method_opts_from_config(&o, &c);
    double t0 = MPI_Wtime();
    gi_method *m = gi_method_fit(c.render.method, &o, &fd, &err);
    if (!m || !gi_method_has_sd(m)) {
        fprintf(stderr, "%s\n", m ? "the method has no SD" : err.msg);
        return 1;
    }
    printf("%s fitted on %d samples x %d genes in %.1f s; grid %dx%dx%d\n", GI_METHOD_NAMES[c.render.method], sm->n,
           sm->n_genes, MPI_Wtime() - t0, mask.nx, mask.ny, mask.nz);

    /* N random in-mask voxels (a fixed seed). */
    long inside = 0, nvox = (long)mask.nx * mask.ny * mask.nz;
    for (long q = 0; q < nvox; q++)
        inside += gi_render_in_mask(mask.data[q]);
    int *vox = malloc(sizeof(int) * 3 * (size_t)nv), *lab = malloc(sizeof(int) * (size_t)nv);
    float *pts = malloc(sizeof(float) * 3 * (size_t)nv);
    unsigned long long seed = 12345;
    for (int i = 0; i < nv; i++) {
        long q;
        do
            q = (long)(next(&seed) % (unsigned long long)nvox);
        while (!gi_render_in_mask(mask.data[q]));
        vox[3 * i] = (int)(q % mask.nx);
        vox[3 * i + 1] = (int)(q / mask.nx % mask.ny);
        vox[3 * i + 2] = (int)(q / ((long)mask.nx * mask.ny));
        double mm[3];
        gi_affine_apply(mask.affine, vox[3 * i], vox[3 * i + 1], vox[3 * i + 2], mm);
        for (int k = 0; k < 3; k++)
            pts[3 * i + k] = (float)mm[k];
        lab[i] = have_anat ? gi_anatomy_index_at(&anat, mm[0], mm[1], mm[2]) : 0;
    }
    int G = sm->n_genes;
    float *exact = malloc(sizeof(float) * (size_t)nv * G), *approx = malloc(sizeof(float) * (size_t)nv * G);
    int W = gi_method_sd_width(m);   /* values per point of the smooth part */
    float *q = malloc(sizeof(float) * (size_t)nv * (size_t)W);
    t0 = MPI_Wtime();
    if (gi_method_predict_sd(m, nv, pts, have_anat ? lab : NULL, NULL, 0, G, exact, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    double t_exact = MPI_Wtime() - t0;
    printf("%ld in-mask voxels; %d sampled; exact SD %.2f s (%.0f voxels/s)\n", inside, nv, t_exact, nv / t_exact);
    printf("| step (voxels) | lattice points for the whole mask | max rel. error | RMS rel. error | q of the sampled corners, s |\n");
    for (int si = 0; si < n_steps; si++) {
        gi_sd_lattice L;
        if (gi_sd_lattice_init(&L, &mask, steps[si], gi_method_sd_width(m), &err) != 0) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        long needed = 0, total = (long)L.n[0] * L.n[1] * L.n[2];
        for (long p = 0; p < total; p++)
            needed += L.need[p];
        /* the corners of the sampled voxels only */
        size_t n0 = (size_t)L.n[0], n1 = (size_t)L.n[1];
        unsigned char *want = calloc((size_t)total, 1);
        for (int i = 0; i < nv; i++) {
            size_t a = (size_t)((vox[3 * i] - L.o[0]) / L.step), b = (size_t)((vox[3 * i + 1] - L.o[1]) / L.step),
                   cc = (size_t)((vox[3 * i + 2] - L.o[2]) / L.step);
            for (size_t dc = 0; dc < 2; dc++)
                for (size_t db = 0; db < 2; db++)
                    for (size_t da = 0; da < 2; da++)
                        want[((cc + dc) * n1 + b + db) * n0 + a + da] = 1;
        }
        long nw = 0;
        for (long p = 0; p < total; p++)
            nw += want[p];
        float *cp = malloc(sizeof(float) * 3 * (size_t)nw), *cq = malloc(sizeof(float) * (size_t)nw * (size_t)W);
        long *ci = malloc(sizeof(long) * (size_t)nw);
        long k = 0;
        for (long p = 0; p < total; p++) {
            if (!want[p])
                continue;
            double mm[3];
            gi_affine_apply(L.affine, L.o[0] + (double)(p % (long)n0) * L.step,
                            L.o[1] + (double)(p / (long)n0 % (long)n1) * L.step,
                            L.o[2] + (double)(p / (long)(n0 * n1)) * L.step, mm);
            for (int j = 0; j < 3; j++)
                cp[3 * k + j] = (float)mm[j];
            ci[k++] = p;
        }
        t0 = MPI_Wtime();
        if (gi_method_sd_smooth(m, (int)nw, cp, cq, &err) != 0) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        double t_q = MPI_Wtime() - t0;
        for (long i = 0; i < nw; i++)
            memcpy(L.q + (size_t)ci[i] * W, cq + (size_t)i * W, sizeof(float) * (size_t)W);
        gi_sd_lattice_at(&L, nv, vox, q);
        if (gi_method_predict_sd(m, nv, pts, have_anat ? lab : NULL, q, 0, G, approx, &err) != 0) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        double mx = 0, ss = 0;
        long n = 0;
        for (long i = 0; i < (long)nv * G; i++) {
            if (!(exact[i] > 0))
                continue;
            double r = fabs((double)approx[i] - exact[i]) / exact[i];
            mx = r > mx ? r : mx;
            ss += r * r;
            n++;
        }
        printf("| %d | %ld of %ld | %.2e | %.2e | %.2f (%ld corners) |\n", steps[si], needed, total, mx,
               n ? sqrt(ss / n) : 0, t_q, nw);
        free(cp);
        free(cq);
        free(ci);
        free(want);
        gi_sd_lattice_free(&L);
    }
    gi_method_free(m);
    MPI_Finalize();
    return 0;
}

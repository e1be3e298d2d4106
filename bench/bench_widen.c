/* bench_widen.c - a whole-transcriptome sample table from a phantom's: the same
 * samples (positions, donors, annotations) with G genes, gene j a noisy copy
 * of the phantom's gene j mod g0 (value + 0.3 * its std * N(0, 1), a pure
 * function of (j, sample)), named <gene>_<copy>. The values keep the phantom's
 * spatial structure, so training and rendering see realistic work per gene.
 *
 * usage: bench_widen IN.csv OUT.csv GENES      (tools/bench_transcriptome.sh)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "geneinr/rng.h"
#include "geneinr/samples.h"

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: bench_widen IN.csv OUT.csv GENES\n");
        return 2;
    }
    int G = atoi(argv[3]);
    gi_samples s;
    gi_err err;
    if (G < 1 || gi_samples_read_csv(&s, argv[1], &err) != 0) {
        fprintf(stderr, "bench_widen: %s\n", G < 1 ? "GENES must be positive" : err.msg);
        return 1;
    }
    int g0 = s.n_genes;
    double *sd = calloc((size_t)g0, sizeof *sd);
    for (int g = 0; g < g0; g++) {
        double m = 0, m2 = 0;
        int c = 0;
        for (int i = 0; i < s.n; i++) {
            float v = s.values[(size_t)i * g0 + g];
            if (!isnan(v)) {
                m += v;
                m2 += (double)v * v;
                c++;
            }
        }
        sd[g] = c > 1 ? sqrt(fmax(0, (m2 - m * m / c) / (c - 1))) : 1;
    }
    float *wide = malloc(sizeof(float) * (size_t)s.n * G);
    char **names = malloc(sizeof(char *) * (size_t)G);
    if (!wide || !names) {
        fprintf(stderr, "bench_widen: out of memory\n");
        return 1;
    }
    for (int j = 0; j < G; j++) {
        int g = j % g0;
        names[j] = malloc(strlen(s.gene_names[g]) + 16);
        sprintf(names[j], "%s_%d", s.gene_names[g], j / g0);
        for (int i = 0; i < s.n; i++) {
            float v = s.values[(size_t)i * g0 + g];
            wide[(size_t)i * G + j] = isnan(v) || j < g0 ? v
                : (float)(v + 0.3 * sd[g] * gi_rng_normal(77, 9000 + (uint64_t)j, (uint64_t)i));
        }
    }
    char **old_names = s.gene_names;
    float *old_values = s.values;
    s.gene_names = names;
    s.values = wide;
    s.n_genes = G;
    int rc = gi_samples_write_csv_decimals(&s, argv[2], 5, &err);
    if (rc != 0)
        fprintf(stderr, "bench_widen: %s\n", err.msg);
    s.gene_names = old_names;
    s.values = old_values;
    s.n_genes = g0;
    for (int j = 0; j < G; j++)
        free(names[j]);
    free(names);
    free(wide);
    free(sd);
    gi_samples_free(&s);
    return rc != 0;
}

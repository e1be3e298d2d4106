/* gene_select.c - the trunk's genes of a whole-transcriptome run (gene_select.h). */
#include "geneinr/gene_select.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "geneinr/config.h" /* GI_PATH_MAX */
#include "geneinr/samples.h"

typedef struct gene_var {
    double var;
    int g;
} gene_var;

/* Larger variance first; ties to the earlier column (a total order: the same choice everywhere). */
static int by_variance(const void *a, const void *b)
{
    const gene_var *x = a, *y = b;
    if (x->var != y->var)
        return x->var > y->var ? -1 : 1;
    return (x->g > y->g) - (x->g < y->g);
}

static int by_column(const void *a, const void *b)
{
    const gene_var *x = a, *y = b;
    return (x->g > y->g) - (x->g < y->g);
}

int gi_select_trunk_genes(const char *samples, const char *genes_path, int n, const char *out_path, int *n_total,
                          gi_err *err)
{
    gi_samples s;
    if (gi_samples_read_csv_genes(&s, samples, genes_path, err) != 0)
        return -1;
    int G = s.n_genes, rc = 0;
    *n_total = G;
    gene_var *v = malloc(sizeof *v * (size_t)(G > 0 ? G : 1));
    if (!v) {
        gi_samples_free(&s);
        return gi_fail(err, "out of memory");
    }
    if (n >= G)
        rc = gi_fail(err, "data.trunk_genes %d: %s has %d genes, so none would be extended; set data.trunk_genes "
                     "below %d, or 0 to train on every gene", n, samples, G, G);
    for (int g = 0; rc == 0 && g < G; g++) {
        /* Welford: the tables have thousands of samples and values far from 0 */
        double mean = 0, m2 = 0;
        long k = 0;
        for (int i = 0; i < s.n; i++) {
            float x = s.values[(size_t)i * G + g];
            if (isnan(x))
                continue;
            k++;
            double d = x - mean;
            mean += d / k;
            m2 += d * (x - mean);
        }
        v[g] = (gene_var){k > 1 ? m2 / (k - 1) : 0, g};
    }
    if (rc == 0) {
        qsort(v, (size_t)G, sizeof *v, by_variance);
        qsort(v, (size_t)n, sizeof *v, by_column);
        char tmp[GI_PATH_MAX + 8];
        snprintf(tmp, sizeof tmp, "%s.tmp", out_path);
        FILE *f = fopen(tmp, "w");
        if (!f)
            rc = gi_fail(err, "cannot write %s: %s", tmp, strerror(errno));
        for (int k = 0; rc == 0 && k < n; k++)
            if (fprintf(f, "%s\n", s.gene_names[v[k].g]) < 0)
                rc = gi_fail(err, "cannot write %s", tmp);
        if (f && fclose(f) != 0 && rc == 0)
            rc = gi_fail(err, "cannot write %s", tmp);
        if (rc == 0 && rename(tmp, out_path) != 0)
            rc = gi_fail(err, "cannot write %s: %s", out_path, strerror(errno));
    }
    free(v);
    gi_samples_free(&s);
    return rc;
}

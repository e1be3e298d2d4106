/* prepare.c - the AHBA donor folders -> the sample table (see prepare.h).
 *
 * Phases, in the order of gi_prepare_run: probes (Probes.csv + reannotation),
 * samples per donor (SampleAnnot, Ontology, coordinates, mirroring, mismatch
 * drop), the two matrices of every donor read in parallel, intensity filter,
 * probe selection, normalisation, output. Each phase is a function over the
 * plain `prep` struct; memory for the big arrays is owned by prep and freed
 * by prep_free on every path.
 *
 * What must stay true (abagen's results depend on it):
 *  - donors in numeric order; samples of a donor in SampleAnnot order, then
 *    the left->right mirror copies, then the right->left ones; output rows
 *    in that order (train's validation split is a function of the row index,
 *    which norm_train_only reproduces);
 *  - probes in ascending probe_id; genes in byte order of their symbols; ties
 *    in probe selection go to the lowest probe_id;
 *  - the across-gene normalisation of a sample runs over every gene that
 *    survives selection, whatever prepare.genes lists.
 * Expression is held as float (the text has at most ~7 significant digits
 * in the Allen release); every statistic is computed in double.
 */
#include "geneinr/prepare.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "geneinr/ahba.h"
#include "geneinr/csv.h"
#include "geneinr/genelist.h"
#include "geneinr/label_match.h"
#include "geneinr/grow.h"
#include "geneinr/rng.h"
#include "geneinr/samples.h"


#include "prep.h"

/* ---------------------------------------------------------------- run */

static int write_report(const prep *P, const char *path, const gi_genelist *list,
                        const unsigned char *listed_found, int n_out, int n_rows, const gi_match_summary *match,
                        double secs, gi_err *err)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return gi_fail(err, "cannot create %s: %s", path, strerror(errno));
    const gi_config *c = P->c;
    fprintf(f, "{\n  \"data_dir\": ");
    prep_json_str(f, c->prepare.data_dir);
    fprintf(f, ",\n  \"coordinates\": ");
    prep_json_str(f, c->prepare.coordinates);
    fprintf(f, ",\n  \"reannotation\": ");
    prep_json_str(f, c->prepare.reannotation);
    fprintf(f, ",\n  \"probe_selection\": \"%s\",\n  \"ibf_threshold\": %g,\n  \"lr_mirror\": \"%s\",\n"
               "  \"norm_train_only\": %s,\n",
            GI_PROBE_SEL_NAMES[c->prepare.probe_selection], c->prepare.ibf_threshold,
            GI_LR_MIRROR_NAMES[c->prepare.lr_mirror],
            c->prepare.norm_train_only ? "true" : "false");
    fprintf(f, "  \"donors\": [\n");
    for (int d = 0; d < P->n_donors; d++) {
        const donor *D = &P->dn[d];
        fprintf(f, "    {\"id\": %ld, \"name\": ", D->d.id);
        prep_json_str(f, D->d.name);
        fprintf(f, ", \"samples_in_file\": %d, \"mirror_copies\": %d, "
                   "\"mirror_copies_without_structure\": %d, \"dropped_hemisphere_mismatch\": %d, "
                   "\"kept\": %d}%s\n",
                D->n_file, D->n_mirrored, D->n_mirror_unmatched, D->n_mismatch, D->n,
                d + 1 < P->n_donors ? "," : "");
    }
    fprintf(f, "  ],\n  \"samples\": %d,\n", n_rows);
    fprintf(f, "  \"probes\": {\"in_file\": %d, \"with_entrez_id\": %d, \"passed_intensity_filter\": %d},\n",
            P->n_probes_file, P->n_valid, P->n_ibf);
    fprintf(f, "  \"genes\": {\"after_filter\": %d, \"selected\": %d, \"written\": %d", P->n_genes,
            P->n_sel, n_out);
    if (list) {
        fprintf(f, ", \"list\": ");
        prep_json_str(f, list->path);
        fprintf(f, ", \"listed\": %d, \"missing\": [", list->n);
        for (int i = 0, first = 1; i < list->n; i++)
            if (!listed_found[i]) {
                fprintf(f, "%s", first ? "" : ", ");
                prep_json_str(f, list->names[i]);
                first = 0;
            }
        fprintf(f, "]");
    }
    fprintf(f, "}");
    if (match) {   /* with data.anatomy: how these samples meet its labels (label_match.h) */
        fprintf(f, ",\n  \"anatomy_match\": ");
        gi_match_summary_json(f, match);
    }
    fprintf(f, ",\n  \"seconds\": %.2f\n}\n", secs);
    if (fclose(f) != 0)
        return gi_fail(err, "writing %s: %s", path, strerror(errno));
    return 0;
}

static int gene_in_list(char *const *sorted, int n, const char *name)
{
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(sorted[mid], name);
        if (c == 0)
            return 1;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return 0;
}

/* The donors of prepare.data_dir, in numeric order, into P->dn. */
static int find_donors(prep *P, gi_err *err)
{
    const gi_config *c = P->c;
    gi_ahba_donor *found = NULL;
    int n_found = 0;
    if (gi_ahba_find_donors(c->prepare.data_dir, &found, &n_found, err) != 0)
        return -1;
    P->dn = calloc((size_t)n_found, sizeof *P->dn);
    if (!P->dn) {
        gi_ahba_free_donors(found, n_found);
        return gi_fail(err, "out of memory");
    }
    for (int d = 0; d < n_found; d++)
        P->dn[d].d = found[d];   /* takes the dir strings */
    P->n_donors = n_found;
    free(found);
    if (P->log) {
        fprintf(P->log, "prepare: %d donor%s in %s:", P->n_donors, P->n_donors == 1 ? "" : "s",
                c->prepare.data_dir);
        for (int d = 0; d < P->n_donors; d++)
            fprintf(P->log, " %ld", P->dn[d].d.id);
        fprintf(P->log, "\n");
    }
    return 0;
}

/* Phases 1 to 4: probes, the samples of each donor, the matrices and the
 * intensity filter, one probe per gene. */
static int read_and_select(prep *P, gi_err *err)
{
    const gi_config *c = P->c;
    FILE *log = P->log;
    coords C = {0};
    /* 1. probes */
    int rc = prep_read_probes(P, err);
    if (rc == 0 && c->prepare.reannotation[0])
        rc = prep_reannotate(P, c->prepare.reannotation, err);
    if (rc == 0)
        rc = prep_index_valid_probes(P, err);
    if (rc == 0 && log)
        fprintf(log, "probes: %d in Probes.csv, %d with a gene symbol and an Entrez id (%s)\n",
                P->n_probes_file, P->n_valid, c->prepare.reannotation[0] ? "reannotated" : "Probes.csv's own");

    /* 2. samples */
    if (rc == 0 && c->prepare.coordinates[0])
        rc = prep_read_coords(&C, c->prepare.coordinates, err);
    for (int d = 0; rc == 0 && d < P->n_donors; d++)
        rc = prep_read_samples(P, &P->dn[d], &C, err);
    prep_coords_free(&C);
    if (rc == 0 && log)
        for (int d = 0; d < P->n_donors; d++) {
            const donor *D = &P->dn[d];
            fprintf(log, "donor %ld (%s): %d samples in SampleAnnot.csv, %d mirror copies, %d dropped "
                         "(hemisphere contradicts x), %d kept\n",
                    D->d.id, D->d.name, D->n_file, D->n_mirrored, D->n_mismatch, D->n);
        }

    /* 3. the matrices, then the intensity filter */
    if (rc == 0) {
        double t1 = prep_now_s();
        rc = prep_read_matrices(P, err);
        if (rc == 0 && log)
            fprintf(log, "read the matrices of %d donors in %.1f s (%d threads)\n", P->n_donors,
                    prep_now_s() - t1, P->threads);
    }
    if (rc == 0)
        rc = prep_intensity_filter(P, err);
    if (rc == 0)
        rc = prep_group_genes(P, err);
    if (rc == 0 && log)
        fprintf(log, "intensity filter (>= %g): %d of %d probes kept, %d genes\n",
                c->prepare.ibf_threshold, P->n_ibf, P->n_valid, P->n_genes);

    /* 4. one probe per gene */
    if (rc == 0) {
        double t1 = prep_now_s();
        rc = prep_select_probes(P, err);
        if (rc == 0 && log)
            fprintf(log, "probe selection: %d genes (%.1f s)\n", P->n_sel, prep_now_s() - t1);
    }
    return rc;
}

/* The columns written: every selected gene, or those of prepare.genes. */
typedef struct out_genes {
    int G;                        /* selected genes */
    int *sel_gene;                /* [G] gene index of each selected column */
    int n_out;
    int *out_gene;                /* [n_out] selected column of each output column */
    unsigned char *listed_found;  /* [list->n] the listed gene is in the data */
    char **sorted_list;           /* [list->n] the list in byte order */
    int n_rows;                   /* kept samples of all donors */
} out_genes;

static void out_genes_free(out_genes *o)
{
    free(o->sel_gene);
    free(o->out_gene);
    free(o->listed_found);
    free(o->sorted_list);
}

static int choose_genes(const prep *P, const gi_genelist *list, out_genes *o, gi_err *err)
{
    int G = o->G = P->n_sel;
    o->out_gene = malloc((size_t)G * sizeof *o->out_gene);
    if (list->n) {
        o->listed_found = calloc((size_t)list->n, 1);
        o->sorted_list = malloc((size_t)list->n * sizeof *o->sorted_list);
    }
    if (!o->out_gene || (list->n && (!o->listed_found || !o->sorted_list)))
        return gi_fail(err, "out of memory");
    if (!(o->sel_gene = malloc((size_t)G * sizeof *o->sel_gene)))
        return gi_fail(err, "out of memory");
    for (int g = 0, k = 0; g < P->n_genes; g++)
        if (P->gene_kept[g])
            o->sel_gene[k++] = g;
    if (list->n) {
        memcpy(o->sorted_list, list->names, (size_t)list->n * sizeof *o->sorted_list);
        qsort(o->sorted_list, (size_t)list->n, sizeof *o->sorted_list, prep_cmp_str);
    }
    for (int k = 0; k < G; k++)
        if (!list->n || gene_in_list(o->sorted_list, list->n, P->genes[o->sel_gene[k]]))
            o->out_gene[o->n_out++] = k;
    for (int i = 0; i < list->n; i++)
        for (int k = 0; k < o->n_out && !o->listed_found[i]; k++)
            o->listed_found[i] = strcmp(list->names[i], P->genes[o->sel_gene[o->out_gene[k]]]) == 0;
    if (o->n_out == 0)
        return gi_fail(err, "prepare.genes: none of the %d genes of %s is among the %d genes "
                       "of the data", list->n, list->path, G);
    for (int d = 0; d < P->n_donors; d++)
        o->n_rows += P->dn[d].n;
    return 0;
}

/* The output table, its names filled in; rows come with each donor. */
static int output_table(const prep *P, const out_genes *o, gi_samples *out, gi_err *err)
{
    int n_rows = o->n_rows, n_out = o->n_out;
    out->n = n_rows;
    out->n_genes = n_out;
    out->n_donors = P->n_donors;
    out->n_annot = 4;
    out->well_ids = calloc((size_t)n_rows, sizeof *out->well_ids);
    out->donor = malloc((size_t)n_rows * sizeof *out->donor);
    out->donor_names = calloc((size_t)P->n_donors, sizeof *out->donor_names);
    out->mni = malloc((size_t)n_rows * 3 * sizeof *out->mni);
    out->gene_names = calloc((size_t)n_out, sizeof *out->gene_names);
    out->values = malloc((size_t)n_rows * (size_t)n_out * sizeof *out->values);
    out->annot_names = calloc(4, sizeof *out->annot_names);
    out->annot = calloc((size_t)n_rows * 4, sizeof *out->annot);
    if (!out->well_ids || !out->donor || !out->donor_names || !out->mni || !out->gene_names ||
        !out->values || !out->annot_names || !out->annot)
        return gi_fail(err, "out of memory for the output table");
    static const char *const AN[4] = {"structure_id", "structure_acronym", "class", "hemisphere"};
    for (int a = 0; a < 4; a++)
        if (!(out->annot_names[a] = strdup(AN[a])))
            return gi_fail(err, "out of memory");
    for (int k = 0; k < n_out; k++)
        if (!(out->gene_names[k] = strdup(P->genes[o->sel_gene[o->out_gene[k]]])))
            return gi_fail(err, "out of memory");
    for (int d = 0; d < P->n_donors; d++)
        if (!(out->donor_names[d] = strdup(P->dn[d].d.name)))
            return gi_fail(err, "out of memory");
    return 0;
}

/* The donor's selected genes, gene-major ([G][n]): contiguous copies of the
 * chosen probe rows, or the mean of the gene's probes. */
static void gene_rows(const prep *P, const donor *D, const out_genes *o, double *XT)
{
    for (int k = 0; k < o->G; k++) {
        int g = o->sel_gene[k];
        double *dst = XT + (size_t)k * D->n;
        if (P->chosen[g] >= 0) {
            const float *row = D->expr + (size_t)P->chosen[g] * (size_t)D->n;
            for (int s = 0; s < D->n; s++)
                dst[s] = row[s];
        } else {   /* mean of the gene's probes */
            for (int s = 0; s < D->n; s++)
                dst[s] = 0;
            for (int i = 0; i < P->gene_count[g]; i++) {
                const float *row = D->expr + (size_t)P->order[P->gene_first[g] + i] * (size_t)D->n;
                for (int s = 0; s < D->n; s++)
                    dst[s] += row[s];
            }
            for (int s = 0; s < D->n; s++)
                dst[s] /= P->gene_count[g];
        }
    }
}

/* fit[s] = 1 for the donor's samples the normalisation is fitted on: with
 * prepare.norm_train_only the training samples of train.validation (a
 * function of the output row, as train's split is), else all. */
static int fit_mask(const gi_config *c, const donor *D, int row0, unsigned char *fit)
{
    int n_fit = 0;
    for (int s = 0; s < D->n; s++) {
        int r = row0 + s, v = 0;
        if (c->prepare.norm_train_only) {
            if (c->train.val_mode == GI_VAL_FRACTION)
                v = gi_rng_uniform(c->train.seed, GI_STREAM_SPLIT, (uint64_t)r) < c->train.val_fraction;
            else if (c->train.val_mode == GI_VAL_DONOR)
                v = gi_ahba_donor_name(c->train.val_donor)
                        ? strcmp(gi_ahba_donor_name(c->train.val_donor), D->d.name) == 0
                        : strcmp(c->train.val_donor, D->d.name) == 0;
        }
        fit[s] = (unsigned char)!v;
        n_fit += !v;
    }
    return n_fit;
}

/* The donor's rows of the output: sample columns, then the normalised values.
 * A gene with any NaN in this donor is dropped for the donor (abagen's
 * dropna); output columns in blocks of 16 so each row is written a cache line
 * at a time. X: [G][n], gene-major. */
static int write_rows(const prep *P, int d, int row0, const out_genes *o, const double *X, gi_samples *out,
                      gi_err *err)
{
    const donor *D = &P->dn[d];
    const int n = D->n, n_out = o->n_out;
    for (int s = 0; s < n; s++) {
        const sample *S = &D->s[s];
        int r = row0 + s;
        char sid[32];
        snprintf(sid, sizeof sid, "%ld", S->sid);
        out->donor[r] = d;
        for (int k = 0; k < 3; k++)
            out->mni[3 * (size_t)r + k] = (float)S->xyz[k];
        char hemi[2] = {S->ont->hemi, 0};
        char **an = out->annot + (size_t)r * 4;
        if (!(out->well_ids[r] = strdup(S->well)) || !(an[0] = strdup(sid)) ||
            !(an[1] = strdup(S->ont->acronym)) || !(an[2] = strdup(S->ont->cls)) || !(an[3] = strdup(hemi)))
            return gi_fail(err, "out of memory");
    }
    for (int j0 = 0; j0 < n_out; j0 += 16) {
        int j1 = j0 + 16 < n_out ? j0 + 16 : n_out;
        unsigned char bad[16] = {0};
        for (int j = j0; j < j1; j++) {
            const double *col = X + (size_t)o->out_gene[j] * n;
            for (int s = 0; s < n && !bad[j - j0]; s++)
                bad[j - j0] = isnan(col[s]);
        }
        for (int s = 0; s < n; s++) {
            float *dst = out->values + (size_t)(row0 + s) * n_out;
            for (int j = j0; j < j1; j++)
                dst[j] = bad[j - j0] ? NAN : (float)X[(size_t)o->out_gene[j] * n + s];
        }
    }
    return 0;
}

/* 5. Normalisation of donor d (rows row0 ..): across genes per sample, then
 * within the donor per gene, into the output table. */
static int normalise_donor(prep *P, int d, int row0, const out_genes *o, gi_samples *out, gi_err *err)
{
    const gi_config *c = P->c;
    donor *D = &P->dn[d];
    const int G = o->G;
    /* gene-major first ([G][n], contiguous copies of the probe rows),
     * then sample-major for the across-gene step */
    double *XT = malloc((size_t)D->n * (size_t)G * sizeof *XT);
    double *X = malloc((size_t)D->n * (size_t)G * sizeof *X);
    unsigned char *fit = malloc((size_t)D->n);
    if (!XT || !X || !fit) {
        free(XT);
        free(X);
        free(fit);
        return gi_fail(err, "out of memory for donor %s: %d samples x %d genes", D->d.name, D->n, G);
    }
    gene_rows(P, D, o, XT);
    prep_transpose(XT, X, G, D->n);
    free(D->expr);   /* the donor's probes are no longer needed */
    D->expr = NULL;
    int n_fit = fit_mask(c, D, row0, fit);
    /* A donor with no training sample (the held-out donor of train.validation:
     * donor) is fitted on all of its own samples: the within-donor
     * normalisation never mixes donors, so nothing of it reaches training. */
    norm_ctx nc = {P, D, X, G, c->prepare.norm_train_only && n_fit > 0 ? fit : NULL, 0};
    atomic_init(&nc.oom, 0);
    prep_parallel_for(P->threads, D->n, prep_srs_samples_range, &nc);
    /* Genes are columns of X: make them rows again for the within-donor step. */
    prep_transpose(X, XT, D->n, G);
    free(X);
    X = XT;
    nc.X = X;
    prep_parallel_for(P->threads, G, prep_srs_genes_range, &nc);
    int rc = 0;
    if (atomic_load(&nc.oom))
        rc = gi_fail(err, "out of memory while normalising donor %s", D->d.name);
    if (rc == 0)
        rc = write_rows(P, d, row0, o, X, out, err);
    free(X);
    free(fit);
    return rc;
}

/* 6. samples.csv and report.json, and the closing log line. */
static int write_outputs(const prep *P, const char *out_dir, const gi_genelist *list, const out_genes *o,
                         const gi_samples *out, double t0, gi_err *err)
{
    FILE *log = P->log;
    char path[GI_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/samples.csv", out_dir);
    /* abagen's values lie in [0, 1]: 7 decimals are 1e-7, far inside its 1e-4 */
    if (gi_samples_write_csv_decimals(out, path, 7, err) != 0)
        return -1;
    /* With data.anatomy in the config: match the prepared samples to its
     * labels as training will (data.anatomy_tolerance, data.anatomy_labels). */
    gi_match_summary match;
    int have_match = 0;
    if (P->c->data.anatomy[0]) {
        gi_anatomy a;
        gi_label_match lm;
        int rc = gi_anatomy_load(&a, P->c->data.anatomy, NULL, 0, err);
        if (rc == 0) {
            rc = gi_label_match_samples(&lm, &a, out, P->c, err);
            gi_anatomy_free(&a);
        }
        if (rc != 0)
            return -1;
        match = lm.sum;
        have_match = 1;
        gi_label_match_free(&lm);
        if (log)
            gi_match_summary_print(log, &match, "anatomy: ");
    }
    snprintf(path, sizeof path, "%s/report.json", out_dir);
    if (write_report(P, path, list->n ? list : NULL, o->listed_found, o->n_out, o->n_rows, have_match ? &match : NULL,
                     prep_now_s() - t0, err) != 0)
        return -1;
    if (!log)
        return 0;
    fprintf(log, "wrote %s/samples.csv: %d samples x %d genes", out_dir, o->n_rows, o->n_out);
    if (list->n) {
        int missing = 0;
        for (int i = 0; i < list->n; i++)
            missing += !o->listed_found[i];
        fprintf(log, " (%d of the %d listed in %s", list->n - missing, list->n, list->path);
        if (missing) {
            fprintf(log, "; missing:");
            for (int i = 0, shown = 0; i < list->n; i++)
                if (!o->listed_found[i] && shown++ < 20)
                    fprintf(log, " %s", list->names[i]);
            if (missing > 20)
                fprintf(log, " ...");
        }
        fprintf(log, ")");
    }
    fprintf(log, "; report.json; %.1f s in all\n", prep_now_s() - t0);
    return 0;
}

int gi_prepare_run(const gi_config *c, const char *out_dir, FILE *log, gi_err *err)
{
    double t0 = prep_now_s();
    prep P = {.c = c, .log = log};
    gi_samples out = {0};
    gi_genelist list = {0};
    out_genes o = {0};
    P.threads = c->prepare.threads;
    if (P.threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        P.threads = n > 0 ? (int)n : 1;
    }
    if (!c->prepare.data_dir[0])
        return gi_fail(err, "%s: prepare.data_dir is not set (the folder holding the AHBA "
                       "normalized_microarray_donor<ID>/ folders)", c->source[0] ? c->source : "config");
    if (c->prepare.genes[0] && gi_genelist_read(&list, c->prepare.genes, err) != 0)
        return gi_fail_prefix(err, "prepare.genes: ");
    int rc = find_donors(&P, err);
    if (rc == 0)
        rc = read_and_select(&P, err);
    if (rc == 0)
        rc = choose_genes(&P, &list, &o, err);
    if (rc == 0)
        rc = output_table(&P, &o, &out, err);
    double t_norm = prep_now_s();
    for (int d = 0, row0 = 0; rc == 0 && d < P.n_donors; row0 += P.dn[d].n, d++)
        rc = normalise_donor(&P, d, row0, &o, &out, err);
    if (rc == 0 && log)
        fprintf(log, "normalised (scaled robust sigmoid across genes, then within donors%s) in %.1f s\n",
                c->prepare.norm_train_only ? ", fitted on training samples" : "", prep_now_s() - t_norm);
    if (rc == 0)
        rc = write_outputs(&P, out_dir, &list, &o, &out, t0, err);
    out_genes_free(&o);
    gi_samples_free(&out);
    gi_genelist_free(&list);
    prep_free(&P);
    return rc;
}

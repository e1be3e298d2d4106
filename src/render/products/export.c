/* export.c - 4-D NIfTI, genes.tsv, dataset_description.json and previews of a
 * finished atlas (see export.h).
 *
 * Everything here reads the finished atlas.h5 back (every rank with the serial
 * reader), so it works the same after `render` and for `geneinr preview` on
 * any atlas. Genes are dealt round-robin to ranks for the 4-D file's
 * compression (see write_4d) and for the previews. Failures are agreed across
 * ranks before the next step, as everywhere.
 */
#include "geneinr/export.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "geneinr/atlas.h"
#include "geneinr/dist.h"
#include "geneinr/enum_names.h"
#include "geneinr/files.h"
#include "geneinr/manifest.h"
#include "geneinr/names.h"
#include "geneinr/preview.h"
#include "geneinr/version.h"

#define BIDS_VERSION "1.9.0"

void gi_export_background(const gi_config *c, float *vol, size_t n)
{
    if (c->render.background != GI_BACKGROUND_ZERO)
        return;
    for (size_t q = 0; q < n; q++)
        if (isnan(vol[q]))
            vol[q] = 0;
}

/* JSON string body (no quotes) of text. */
static void json_string(FILE *f, const char *text)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", f);
        else if (*p == '\t')
            fputs("\\t", f);
        else if (*p == '\r')
            fputs("\\r", f);
        else if (*p < 32)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

/* Write through PATH.tmp and rename, so a file at PATH is whole. */
typedef struct out_text {
    FILE *f;
    char path[4200], tmp[4300];
} out_text;

static int text_open(out_text *o, const char *dir, const char *name, gi_err *err)
{
    snprintf(o->path, sizeof o->path, "%s/%s", dir, name);
    snprintf(o->tmp, sizeof o->tmp, "%s.tmp", o->path);
    o->f = fopen(o->tmp, "w");
    if (!o->f)
        return gi_fail(err, "cannot create %s: %s", o->tmp, strerror(errno));
    return 0;
}

static int text_close(out_text *o, gi_err *err)
{
    int bad = ferror(o->f);
    if (fclose(o->f) != 0 || bad) {
        gi_remove_partial(o->tmp);
        return gi_fail(err, "cannot write %s", o->tmp);
    }
    if (rename(o->tmp, o->path) != 0) {
        int e = errno;
        gi_remove_partial(o->tmp);
        return gi_fail(err, "cannot rename %s to %s: %s", o->tmp, o->path, strerror(e));
    }
    return 0;
}

static int write_description(const gi_config *c, const char *out_dir, const gi_atlas *a, gi_err *err)
{
    out_text o;
    if (text_open(&o, out_dir, "dataset_description.json", err) != 0)
        return -1;
    FILE *f = o.f;
    char name[1400];
    snprintf(name, sizeof name, "geneinr gene expression atlas: %d genes, %s (%s)", a->n_genes,
             a->rendered_for ? a->rendered_for : "average", out_dir);
    fputs("{\n  \"Name\": ", f);
    json_string(f, name);
    fputs(",\n  \"BIDSVersion\": \"" BIDS_VERSION "\",\n  \"DatasetType\": \"derivative\",\n", f);
    fputs("  \"GeneratedBy\": [\n    {\n      \"Name\": \"geneinr\",\n      \"Version\": \"" GENEINR_VERSION "\",\n", f);
    fputs("      \"Description\": \"Voxel-level gene expression maps rendered from one conditional implicit "
          "neural representation trained on tissue samples in MNI space\",\n      \"Config\": ", f);
    json_string(f, a->config_yaml ? a->config_yaml : "");
    fputs("\n    }\n  ],\n  \"SourceDatasets\": [\n    {\n      \"URL\": ", f);
    char url[GI_PATH_MAX + 16];
    snprintf(url, sizeof url, "file:%s", c->data.samples);
    json_string(f, url);
    fputs(",\n      \"Description\": \"the sample table (tissue samples x genes, MNI mm)\"\n    }\n  ],\n", f);
    fputs(a->dtype == GI_DTYPE_UINT16
              ? "  \"GeneinrFiles\": {\n    \"atlas.h5\": \"HDF5 atlas, /expression[gene][k][j][i] uint16 codes: value = "
                "offset[gene] + scale[gene] * code (attributes of /expression), code 0 = NaN outside the mask\""
              : "  \"GeneinrFiles\": {\n    \"atlas.h5\": \"HDF5 atlas, /expression[gene][k][j][i], NaN outside the mask\"",
          f);
    if (c->render.nifti & GI_NIFTI_4D)
        fputs(",\n    \"expression.nii.gz\": \"4-D NIfTI, one volume per gene in the order of genes.tsv\",\n"
              "    \"genes.tsv\": \"index (0-based volume) and gene name\"", f);
    if (c->render.nifti & GI_NIFTI_3D)
        fputs(a->dtype == GI_DTYPE_UINT16 ? ",\n    \"nifti/<gene>.nii.gz\": \"one 3-D NIfTI per gene, uint16 with its own "
                                            "scl_slope/scl_inter (outside the mask: code 0 = scl_inter)\""
                                          : ",\n    \"nifti/<gene>.nii.gz\": \"one 3-D NIfTI per gene\"", f);
    if (a->has_uncertainty) {
        fputs(",\n    \"atlas.h5:/uncertainty\": \"predictive SD per gene and voxel, as /expression\"", f);
        if (c->render.nifti & GI_NIFTI_4D)
            fputs(",\n    \"uncertainty.nii.gz\": \"4-D NIfTI, the SD of each gene in the order of genes.tsv\"", f);
        if (c->render.nifti & GI_NIFTI_3D)
            fputs(",\n    \"nifti/<gene>_sd.nii.gz\": \"the SD of each gene, 3-D\"", f);
    }
    if (a->has_distance && c->render.nifti != GI_NIFTI_NONE)
        fputs(",\n    \"distance.nii.gz\": \"mm from each voxel to the nearest sample\"", f);
    if (c->render.preview_genes > 0)
        fputs(",\n    \"preview/<gene>.png\": \"orthogonal-slice previews\"", f);
    if (c->render.report)
        fputs(",\n    \"report.html\": \"the run report\"", f);
    fprintf(f, "\n  },\n  \"GeneinrBackground\": \"%s\"\n}\n",
            c->render.background == GI_BACKGROUND_ZERO ? "zero" : "nan");
    return text_close(&o, err);
}

static int write_genes_tsv(const char *out_dir, const gi_atlas *a, gi_err *err)
{
    out_text o;
    if (text_open(&o, out_dir, "genes.tsv", err) != 0)
        return -1;
    fputs("index\tgene\n", o.f);
    for (int g = 0; g < a->n_genes; g++)
        fprintf(o.f, "%d\t%s\n", g, a->genes[g]);
    return text_close(&o, err);
}

/* OUT/.STEM.partNNNNNN.gz: gene g's gzip member (g = -1: the header) of
 * OUT/STEM.nii.gz. */
static void part_path(char *buf, size_t n, const char *out_dir, const char *stem, int g)
{
    if (g < 0)
        snprintf(buf, n, "%s/.%s.header.gz", out_dir, stem);
    else
        snprintf(buf, n, "%s/.%s.part%06d.gz", out_dir, stem, g);
}

/* len bytes as one complete gzip member in path. Deflate level 1: on a 1 mm
 * map (29 MB of floats, NaN outside the mask) it was 30% faster than the
 * default level 6 for a 3% larger member (gzip -1 vs -6, 5.49 vs 5.31 MB);
 * float mantissas hardly compress at any level. */
static int gzip_member(const char *path, const void *data, size_t len, gi_err *err)
{
    errno = 0;
    gzFile gz = gzopen(path, "wb1");
    if (!gz)
        return gi_fail(err, "cannot create %s: %s", path, errno ? strerror(errno) : "out of memory");
    const unsigned char *p = data;
    int ok = 1;
    while (ok && len > 0) {
        unsigned step = len > (1u << 30) ? (1u << 30) : (unsigned)len;
        ok = gzwrite(gz, p, step) == (int)step;
        p += step;
        len -= step;
    }
    int zrc = gzclose(gz);
    if (!ok || zrc != Z_OK) {
        gi_remove_partial(path);
        return gi_fail(err, "writing %s: %s", path, errno ? strerror(errno) : "gzip write error");
    }
    return 0;
}

static int append_file(FILE *out, const char *path, gi_err *err)
{
    enum { BUF = 1 << 20 };
    FILE *in = fopen(path, "rb");
    if (!in)
        return gi_fail(err, "cannot read %s: %s", path, strerror(errno));
    char *buf = malloc(BUF);
    size_t n;
    int rc = buf ? 0 : gi_fail(err, "out of memory");
    while (rc == 0 && (n = fread(buf, 1, BUF, in)) > 0)
        if (fwrite(buf, 1, n, out) != n)
            rc = gi_fail(err, "writing: %s", strerror(errno));
    if (rc == 0 && ferror(in))
        rc = gi_fail(err, "cannot read %s", path);
    free(buf);
    fclose(in);
    return rc;
}

/* OUT/expression.nii.gz (sd 0, with genes.tsv) or OUT/uncertainty.nii.gz
 * (sd 1: /uncertainty, the same gene order): the header and each gene
 * compressed as separate gzip members - gene g by rank g mod size, in
 * parallel - then joined by rank 0 in gene order. Concatenated gzip members
 * are one valid gzip stream (RFC 1952; zlib's gzread, Python's gzip, nibabel
 * and FSL read it whole), so the compression, the slow part, scales with the
 * ranks. Collective. */
static int write_4d(const gi_config *c, MPI_Comm comm, const char *out_dir, const char *atlas_path,
                    const gi_volume *mask, int sd, gi_err *err)
{
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    const char *stem = sd ? "uncertainty" : "expression";
    char path[GI_PATH_MAX + 32], tmp[GI_PATH_MAX + 48], part[GI_PATH_MAX + 48];
    snprintf(path, sizeof path, "%s/%s.nii.gz", out_dir, stem);
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp.nii.gz", out_dir, stem);
    gi_atlas a;
    int rc = gi_atlas_open(&a, atlas_path, err), opened = rc == 0;
    int G = opened ? a.n_genes : 0;
    size_t n = rc == 0 ? (size_t)a.nx * a.ny * a.nz : 0;
    float *vol = rc == 0 ? malloc(sizeof(float) * n) : NULL;
    if (rc == 0 && !vol)
        rc = gi_fail(err, "out of memory for one %dx%dx%d map", a.nx, a.ny, a.nz);
    static const char *const FOUR_D[] = {"expression.nii.gz", "genes.tsv"}, *const SD_4D[] = {"uncertainty.nii.gz"};
    const char *const *files = sd ? SD_4D : FOUR_D;
    int n_files = sd ? 1 : 2;
    if (rc == 0 && rank == 0)
        rc = gi_manifest_claim_in(out_dir, files, n_files, "render", err);
    if (rc == 0 && rank == 0) {
        unsigned char head[GI_NIFTI_HEADER_MAX];
        size_t hlen;
        char desc[80];
        snprintf(desc, sizeof desc, "geneinr %d genes%s (%s), genes.tsv", G, sd ? " SD" : "",
                 a.rendered_for ? a.rendered_for : "average");
        part_path(part, sizeof part, out_dir, stem, -1);
        rc = gi_volume_4d_header(mask, G, path, desc, head, &hlen, err);
        if (rc == 0)
            rc = gzip_member(part, head, hlen, err);
    }
    for (int g = rank; rc == 0 && g < G; g += size) {
        rc = sd ? gi_atlas_read_sd(&a, g, vol, err) : gi_atlas_read_gene(&a, g, vol, err);
        if (rc == 0) {
            gi_export_background(c, vol, n);
            part_path(part, sizeof part, out_dir, stem, g);
            rc = gzip_member(part, vol, sizeof(float) * n, err);
        }
    }
    free(vol);
    if (opened)
        gi_atlas_close(&a);
    MPI_Allreduce(MPI_IN_PLACE, &G, 1, MPI_INT, MPI_MAX, comm);
    rc = gi_dist_agree(comm, rc, err);
    if (rank == 0) {
        if (rc == 0) {
            FILE *out = fopen(tmp, "wb");
            if (!out)
                rc = gi_fail(err, "cannot create %s: %s", tmp, strerror(errno));
            for (int g = -1; rc == 0 && g < G; g++) {
                part_path(part, sizeof part, out_dir, stem, g);
                rc = append_file(out, part, err);
            }
            if (out && (fclose(out) != 0) && rc == 0)
                rc = gi_fail(err, "cannot write %s: %s", tmp, strerror(errno));
            if (rc == 0 && rename(tmp, path) != 0)
                rc = gi_fail(err, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
            if (rc != 0)
                gi_remove_partial(tmp);
            if (rc == 0 && !sd && gi_atlas_open(&a, atlas_path, err) == 0) {
                rc = write_genes_tsv(out_dir, &a, err);
                gi_atlas_close(&a);
            } else if (rc == 0 && !sd) {
                rc = -1;
            }
            if (rc == 0)
                rc = gi_manifest_commit_in(out_dir, files, n_files, err);
        }
        for (int g = -1; g < G; g++) {
            part_path(part, sizeof part, out_dir, stem, g);
            gi_remove_partial(part);
        }
    }
    return gi_dist_agree(comm, rc, err);
}

/* OUT/README.md: what the folder is and how the usual tools open it (BIDS
 * wants a README beside dataset_description.json). */
static int write_readme(const gi_config *c, const char *out_dir, const gi_atlas *a, gi_err *err)
{
    out_text o;
    if (text_open(&o, out_dir, "README.md", err) != 0)
        return -1;
    FILE *f = o.f;
    fprintf(f, "# geneinr gene expression atlas\n\n%d genes rendered for the %s on the grid of %s by geneinr %s.\n"
               "Values are in the units of the sample table (%s); %s outside the mask in the NIfTI files, NaN in "
               "atlas.h5.\n\n", a->n_genes, a->rendered_for && strcmp(a->rendered_for, "average") ? a->rendered_for
               : "donor average", c->render.mask, GENEINR_VERSION, c->data.samples,
            c->render.background == GI_BACKGROUND_ZERO ? "0" : "NaN");
    if (a->dtype == GI_DTYPE_UINT16)
        fputs("- `atlas.h5`: all genes, `/expression[gene][k][j][i]` as uint16 codes (render.dtype uint16); gene i in "
              "h5py: `e = h5py.File(\"atlas.h5\")[\"expression\"]; q = e[i]; "
              "v = np.where(q == 0, np.nan, e.attrs[\"offset\"][i] + e.attrs[\"scale\"][i] * q)`, within "
              "`e.attrs[\"scale\"][i] / 2` of the float32 render. In `nifti/GENE.nii.gz` the same codes with "
              "scl_slope/scl_inter (nibabel applies them; outside the mask code 0 reads as scl_inter).\n", f);
    else
        fputs("- `atlas.h5`: all genes, `/expression[gene][k][j][i]`; h5py: "
              "`h5py.File(\"atlas.h5\")[\"expression\"][i]`\n", f);
    if (c->render.nifti & GI_NIFTI_4D)
        fputs("- `expression.nii.gz`: 4-D, one volume per gene in the order of `genes.tsv`.\n"
              "  nilearn: `nilearn.image.index_img(\"expression.nii.gz\", i)` is gene i (0-based, genes.tsv);\n"
              "  FSLeyes: `fsleyes expression.nii.gz`, the volume slider steps through the genes.\n", f);
    if (c->render.nifti & GI_NIFTI_3D)
        fputs("- `nifti/GENE.nii.gz`: one 3-D map per gene (`nilearn.image.load_img`, `fsleyes nifti/GENE.nii.gz`).\n", f);
    if (a->has_uncertainty) {
        fputs("- `atlas.h5` `/uncertainty[gene][k][j][i]`: the predictive SD of each map, in its units "
              "(h5py: `h5py.File(\"atlas.h5\")[\"uncertainty\"][i]`).\n", f);
        if (c->render.nifti & GI_NIFTI_4D)
            fputs("- `uncertainty.nii.gz`: 4-D, the SD of gene i as volume i (genes.tsv).\n", f);
        if (c->render.nifti & GI_NIFTI_3D)
            fputs("- `nifti/GENE_sd.nii.gz`: the SD of each gene, 3-D.\n", f);
    }
    if (a->has_distance && c->render.nifti != GI_NIFTI_NONE)
        fputs("- `distance.nii.gz`: millimetres from each voxel to the nearest sample (atlas.h5 `/distance`).\n", f);
    if (c->render.preview_genes > 0)
        fputs("- `preview/GENE.png`: axial, coronal and sagittal slices of each gene.\n", f);
    if (c->render.report)
        fputs("- `report.html`: the run report (open in any browser, offline).\n", f);
    fputs("- `dataset_description.json`: BIDS derivative description (GeneratedBy holds the config).\n", f);
    return text_close(&o, err);
}

/* Rank 0: the files for other tools. */
static int write_files(const gi_config *c, const char *out_dir, const char *atlas_path, gi_err *err)
{
    gi_atlas a;
    if (gi_atlas_open(&a, atlas_path, err) != 0)
        return -1;
    static const char *const FILES[] = {"dataset_description.json", "README.md"};
    int rc = gi_manifest_claim_in(out_dir, FILES, 2, "render", err);
    if (rc == 0)
        rc = write_description(c, out_dir, &a, err);
    if (rc == 0)
        rc = write_readme(c, out_dir, &a, err);
    if (rc == 0)
        rc = gi_manifest_commit_in(out_dir, FILES, 2, err);
    /* The 4-D file and its genes.tsv are replaced together (write_4d), or
     * removed: either would describe earlier weights. Only if geneinr wrote
     * them (manifest.h). */
    if (rc == 0 && gi_manifest_remove_in(out_dir, "genes.tsv", NULL, NULL, err) < 0)
        rc = -1;
    if (rc == 0 && !(c->render.nifti & GI_NIFTI_4D) &&
        gi_manifest_remove_in(out_dir, "expression.nii.gz", NULL, NULL, err) < 0)
        rc = -1;
    /* likewise the SD and distance files this render does not make */
    if (rc == 0 && !((c->render.nifti & GI_NIFTI_4D) && a.has_uncertainty) &&
        gi_manifest_remove_in(out_dir, "uncertainty.nii.gz", NULL, NULL, err) < 0)
        rc = -1;
    if (rc == 0 && !(c->render.nifti != GI_NIFTI_NONE && a.has_distance) &&
        gi_manifest_remove_in(out_dir, "distance.nii.gz", NULL, NULL, err) < 0)
        rc = -1;
    gi_atlas_close(&a);
    return rc;
}

/* The manifest names (prefix + <file>.png) of the previews gi_preview_atlas
 * writes: the named genes, else the first max genes of the atlas. */
static int preview_names(const char *atlas_path, const char *prefix, const char *const *genes, int n_genes, int max,
                         char ***names, int *n, gi_err *err)
{
    *names = NULL;
    *n = 0;
    gi_atlas a;
    int have = !genes;
    if (have && gi_atlas_open(&a, atlas_path, err) != 0)
        return -1;
    int count = genes ? n_genes : (a.n_genes < max ? a.n_genes : max);
    char **v = calloc((size_t)count + 1, sizeof *v);
    int rc = v ? 0 : gi_fail(err, "out of memory");
    for (int i = 0; rc == 0 && i < count; i++) {
        char file[256], name[600];
        gi_gene_file_name(genes ? genes[i] : a.genes[i], file, sizeof file);
        snprintf(name, sizeof name, "%s%s.png", prefix, file);
        if (!(v[i] = strdup(name)))
            rc = gi_fail(err, "out of memory");
    }
    if (have)
        gi_atlas_close(&a);
    *names = v;
    *n = count;
    return rc;
}

static void free_names(char **names, int n)
{
    for (int i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
}

/* Previews into root/prefix per the config, genes shared among ranks; root's
 * manifest (manifest.h) lists them, and only previews it lists are replaced.
 * Collective. */
static int previews(const gi_config *c, MPI_Comm comm, const char *atlas_path, const char *root, const char *prefix,
                    const char *const *genes, int n_genes, const double *at, int *n_total, gi_err *err)
{
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    char dir[GI_PATH_MAX + 300];
    snprintf(dir, sizeof dir, "%s/%s", root, prefix);
    char **names = NULL;
    int n_names = 0, rc = 0;
    if (rank == 0) {
        rc = gi_make_dirs(dir, err);
        if (rc == 0)
            rc = preview_names(atlas_path, prefix, genes, n_genes, c->render.preview_genes, &names, &n_names, err);
        if (rc == 0)   /* sd/<gene>.png, coverage/distance.png (preview.h) */
            rc = gi_preview_add_names(atlas_path, prefix, genes, n_genes, c->render.preview_genes, &names, &n_names, err);
        if (rc == 0 && gi_manifest_remove_in(root, prefix, ".png", NULL, err) < 0)
            rc = -1;
        if (rc == 0)
            rc = gi_manifest_claim_in(root, (const char *const *)names, n_names, "preview", err);
    }
    if (gi_dist_agree(comm, rc, err) != 0) {
        free_names(names, n_names);
        return -1;
    }
    double point[3];
    if (!at && c->render.preview_at[0] && gi_parse_mni_point(c->render.preview_at, point) == 0)
        at = point;
    const char *base = strrchr(c->data.samples, '/');
    char units[GI_PATH_MAX + 16];
    snprintf(units, sizeof units, "units of %s", base ? base + 1 : c->data.samples[0] ? c->data.samples : "the samples");
    /* Sample dots only when the table is still where training read it. */
    const char *samples = c->render.preview_samples && c->data.samples[0] && access(c->data.samples, R_OK) == 0
                              ? c->data.samples : NULL;
    gi_preview_opts o = {
        .genes = genes, .n_genes = n_genes, .max_genes = c->render.preview_genes, .at = at,
        .samples = samples, .radiological = c->render.preview_orientation == GI_RADIOLOGICAL, .units = units,
    };
    int mine = 0;
    rc = gi_preview_atlas(atlas_path, dir, &o, rank, size, &mine, err);
    rc = gi_dist_agree(comm, rc, err);
    if (rc == 0 && rank == 0)
        rc = gi_manifest_commit_in(root, (const char *const *)names, n_names, err);
    free_names(names, n_names);
    if (gi_dist_agree(comm, rc, err) != 0)
        return -1;
    MPI_Reduce(&mine, n_total, 1, MPI_INT, MPI_SUM, 0, comm);
    return 0;
}

/* Rank 0: OUT/distance.nii.gz from the atlas's /distance (*written 1), or
 * nothing for an atlas without one. */
static int write_distance(const gi_config *c, const char *out_dir, const char *atlas_path, const gi_volume *mask,
                          int *written, gi_err *err)
{
    *written = 0;
    gi_atlas a;
    if (gi_atlas_open(&a, atlas_path, err) != 0)
        return -1;
    if (!a.has_distance) {
        gi_atlas_close(&a);
        return 0;
    }
    static const char *const FILE_[] = {"distance.nii.gz"};
    size_t n = (size_t)a.nx * a.ny * a.nz;
    float *vol = malloc(sizeof(float) * n);
    char path[GI_PATH_MAX + 32], tmp[GI_PATH_MAX + 48];
    snprintf(path, sizeof path, "%s/distance.nii.gz", out_dir);
    snprintf(tmp, sizeof tmp, "%s/.distance.tmp.nii.gz", out_dir);
    int rc = vol ? gi_manifest_claim_in(out_dir, FILE_, 1, "render", err) : gi_fail(err, "out of memory");
    if (rc == 0)
        rc = gi_atlas_read_distance(&a, vol, err);
    if (rc == 0) {
        gi_export_background(c, vol, n);
        rc = gi_volume_write_like(mask, vol, tmp, "geneinr mm to the nearest sample", err);
    }
    if (rc == 0 && rename(tmp, path) != 0) {
        rc = gi_fail(err, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        gi_remove_partial(tmp);
    }
    if (rc == 0)
        rc = gi_manifest_commit_in(out_dir, FILE_, 1, err);
    *written = rc == 0;
    free(vol);
    gi_atlas_close(&a);
    return rc;
}

int gi_export_after_render(const gi_config *c, MPI_Comm comm, const char *out_dir, const char *atlas_path,
                           const gi_volume *mask, gi_err *err)
{
    int rank;
    MPI_Comm_rank(comm, &rank);
    double t0 = MPI_Wtime();
    if (gi_dist_agree(comm, rank == 0 ? write_files(c, out_dir, atlas_path, err) : 0, err) != 0)
        return -1;
    if ((c->render.nifti & GI_NIFTI_4D) && write_4d(c, comm, out_dir, atlas_path, mask, 0, err) != 0)
        return -1;
    if ((c->render.nifti & GI_NIFTI_4D) && c->render.uncertainty &&
        write_4d(c, comm, out_dir, atlas_path, mask, 1, err) != 0)
        return -1;
    int with_distance = 0;
    if (c->render.nifti != GI_NIFTI_NONE &&
        gi_dist_agree(comm, rank == 0 ? write_distance(c, out_dir, atlas_path, mask, &with_distance, err) : 0,
                      err) != 0)
        return -1;
    double t1 = MPI_Wtime();
    if (rank == 0 && (c->render.nifti & GI_NIFTI_4D)) {
        printf("render: 4-D NIfTI %s/expression.nii.gz%s (genes in %s/genes.tsv), %.1f s\n", out_dir,
               c->render.uncertainty ? " and uncertainty.nii.gz" : "", out_dir, t1 - t0);
        fflush(stdout);
    }
    if (rank == 0 && with_distance) {
        printf("render: distance to the nearest sample in %s/distance.nii.gz\n", out_dir);
        fflush(stdout);
    }
    char dir[GI_PATH_MAX + 16];
    snprintf(dir, sizeof dir, "%s/preview", out_dir);
    int n = 0;
    if (c->render.preview_genes > 0) {
        if (previews(c, comm, atlas_path, out_dir, "preview/", NULL, 0, NULL, &n, err) != 0)
            return -1;
        if (rank == 0) {
            printf("render: previews %s/<gene>.png (%d genes), %.1f s\n", dir, n, MPI_Wtime() - t1);
            fflush(stdout);
        }
    } else if (rank == 0) {
        gi_err ignored;
        gi_manifest_remove_in(out_dir, "preview/", ".png", NULL, &ignored);  /* no stale previews beside a new atlas */
    }
    return 0;
}

void gi_export_remove_derived(const char *out_dir)
{
    static const char *const FILES[] = {"expression.nii.gz", "genes.tsv", "uncertainty.nii.gz", "distance.nii.gz",
                                        "dataset_description.json", "README.md"};
    gi_err ignored;
    for (size_t i = 0; i < sizeof FILES / sizeof FILES[0]; i++)
        gi_manifest_remove_in(out_dir, FILES[i], NULL, NULL, &ignored);   /* only what geneinr wrote (manifest.h) */
    gi_manifest_remove_in(out_dir, "preview/", ".png", NULL, &ignored);
}

int gi_export_preview_command(MPI_Comm comm, const char *atlas_path, const char *genes_csv, const char *at_text,
                              const char *out_dir, gi_err *err)
{
    int rank;
    MPI_Comm_rank(comm, &rank);
    /* The atlas's own config: where its samples are and how it wants previews. */
    gi_config c;
    gi_atlas a;
    int rc = gi_atlas_open(&a, atlas_path, err);
    if (rc == 0) {
        if (!a.config_yaml || gi_config_load_text(&c, a.config_yaml, atlas_path, NULL) != 0)
            gi_config_defaults(&c);
        gi_atlas_close(&a);
    }
    if (gi_dist_agree(comm, rc, err) != 0)
        return -1;
    double at[3];
    if (at_text && gi_parse_mni_point(at_text, at) != 0)
        return gi_fail(err, "--at '%s' is not x,y,z (three numbers, MNI mm)", at_text);
    char *list = genes_csv ? strdup(genes_csv) : NULL;
    const char *names[4096];
    int n_names = 0;
    if (list)
        for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            while (*t == ' ')
                t++;
            if (*t && n_names < 4096)
                names[n_names++] = t;
        }
    if (genes_csv && n_names == 0) {
        free(list);
        return gi_fail(err, "--genes '%s' names no gene (a comma-separated list, e.g. --genes APOE,TREM2)", genes_csv);
    }
    /* The manifest (manifest.h) of the folder the previews belong to: the
     * atlas's run folder for <atlas folder>/preview, else --out DIR itself. */
    char root[GI_PATH_MAX + 16];
    const char *prefix = "";
    if (out_dir) {
        snprintf(root, sizeof root, "%s", out_dir);
    } else {
        const char *slash = strrchr(atlas_path, '/');
        snprintf(root, sizeof root, "%.*s", slash ? (int)(slash - atlas_path) : 1, slash ? atlas_path : ".");
        prefix = "preview/";
    }
    if (c.render.preview_genes == 0)
        c.render.preview_genes = 24;
    double t0 = MPI_Wtime();
    int n = 0;
    rc = previews(&c, comm, atlas_path, root, prefix, list ? names : NULL, n_names, at_text ? at : NULL, &n, err);
    free(list);
    if (rc == 0 && rank == 0)
        printf("preview: %d PNGs in %s/%s (%.1f s)\n", n, root, prefix, MPI_Wtime() - t0);
    return rc;
}

int gi_export_check_gene_names(const char *const *genes, int n_genes, const char *out_dir, gi_err *err)
{
    char why[160], q[72], where[GI_PATH_MAX + 64];
    for (int g = 0; g < n_genes; g++)
        if (gi_name_check(genes[g], why, sizeof why) != 0) {
            gi_name_quote(genes[g], q, sizeof q);
            return gi_fail(err, "gene %d '%s' %s (gene names become file names in %s; names.h)", g + 1, q, why,
                           out_dir);
        }
    snprintf(where, sizeof where, "the maps of %s", out_dir);
    return gi_names_check_files(genes, n_genes, where, NULL, err);
}

/* The SD maps' names (nifti/<gene>_sd.nii.gz) must not be a gene's map
 * name either (a gene called X_sd beside a gene X): checked with the genes'
 * own rules (names.h), ignoring case. Local. */
static int check_sd_names(const char *const *genes, int n_genes, const char *out_dir, gi_err *err)
{
    char **all = calloc(2 * (size_t)n_genes + 1, sizeof *all);
    int rc = all ? 0 : gi_fail(err, "out of memory");
    for (int g = 0; rc == 0 && g < n_genes; g++) {
        size_t len = strlen(genes[g]) + 4;
        all[g] = strdup(genes[g]);
        all[n_genes + g] = malloc(len);
        if (!all[g] || !all[n_genes + g])
            rc = gi_fail(err, "out of memory");
        else
            snprintf(all[n_genes + g], len, "%s_sd", genes[g]);
    }
    char where[GI_PATH_MAX + 96];
    snprintf(where, sizeof where, "the maps and SD maps (GENE_sd) of %s", out_dir);
    if (rc == 0)
        rc = gi_names_check_files((const char *const *)all, 2 * n_genes, where, NULL, err);
    for (int i = 0; all && i < 2 * n_genes; i++)
        free(all[i]);
    free(all);
    return rc;
}

/* out_dir's output names of a render of c (manifest.h) into *names[*n]
 * (malloc'd): atlas.h5, nifti/<gene>.nii.gz (+ nifti/<gene>_sd.nii.gz with
 * render.uncertainty), expression.nii.gz + genes.tsv (+ uncertainty.nii.gz),
 * distance.nii.gz (with any NIfTI), dataset_description.json, README.md,
 * preview/<gene>.png (the first render.preview_genes genes, or every gene
 * when all_previews: before training the checkpoint's gene order is not
 * known yet), report.html. maps_only: the nifti/ names alone. */
static int output_names(const gi_config *c, const char *const *genes, int n_genes, int all_previews, int maps_only,
                        char ***names, int *n, gi_err *err)
{
    int np = c->render.preview_genes > 0 && !maps_only
                 ? (all_previews || c->render.preview_genes > n_genes ? n_genes : c->render.preview_genes)
                 : 0;
    int cap = 12 + 2 * n_genes + np;
    char **v = calloc((size_t)cap, sizeof *v);
    if (!v)
        return gi_fail(err, "out of memory");
    int k = 0;
    if (!maps_only) {
        v[k++] = strdup("atlas.h5");
        v[k++] = strdup("dataset_description.json");
        v[k++] = strdup("README.md");
        if (c->render.nifti & GI_NIFTI_4D) {
            v[k++] = strdup("expression.nii.gz");
            v[k++] = strdup("genes.tsv");
            if (c->render.uncertainty)
                v[k++] = strdup("uncertainty.nii.gz");
        }
        if (c->render.nifti != GI_NIFTI_NONE)
            v[k++] = strdup("distance.nii.gz");
        if (c->render.report)
            v[k++] = strdup("report.html");
    }
    char file[256], name[300];
    for (int g = 0; (c->render.nifti & GI_NIFTI_3D) && g < n_genes; g++) {
        gi_gene_file_name(genes[g], file, sizeof file);
        snprintf(name, sizeof name, "nifti/%s.nii.gz", file);
        v[k++] = strdup(name);
        if (c->render.uncertainty) {
            snprintf(name, sizeof name, "nifti/%s_sd.nii.gz", file);
            v[k++] = strdup(name);
        }
    }
    for (int g = 0; g < np; g++) {
        gi_gene_file_name(genes[g], file, sizeof file);
        snprintf(name, sizeof name, "preview/%s.png", file);
        v[k++] = strdup(name);
    }
    *names = v;
    *n = k;
    for (int i = 0; i < k; i++)
        if (!v[i])
            return gi_fail(err, "out of memory");
    return 0;
}

int gi_export_check_outputs(const gi_config *c, const char *out_dir, const char *const *genes, int n_genes,
                            int all_previews, const char *checkpoint, gi_err *err)
{
    if (gi_export_check_gene_names(genes, n_genes, out_dir, err) != 0 ||
        (c->render.uncertainty && (c->render.nifti & GI_NIFTI_3D) && check_sd_names(genes, n_genes, out_dir, err) != 0))
        return -1;
    char **names = NULL;
    int n = 0;
    int rc = output_names(c, genes, n_genes, all_previews, 0, &names, &n, err);
    if (rc == 0)
        rc = gi_manifest_check_free_in(out_dir, (const char *const *)names, n, "render", err);
    /* No input may be an output: a render would replace or remove it (a
     * mask kept as OUT/nifti/X.nii.gz with a gene X, the sample table as
     * OUT/genes.tsv). Compared by device and inode, so links and other
     * spellings of a path are caught. */
    const char *const keys[] = {"data.samples", "data.anatomy", "data.anatomy_labels", "data.genes", "render.mask",
                                "the checkpoint", "the config"};
    const char *const inputs[] = {c->data.samples, c->data.anatomy, c->data.anatomy_labels, c->data.genes,
                                  c->render.mask, checkpoint ? checkpoint : "", c->source};
    static const char *const TRAIN_OUT[] = {"train_log.csv", "anatomy_match.json", "run.json"};
    for (size_t k = 0; rc == 0 && k < sizeof inputs / sizeof inputs[0]; k++) {
        struct stat si, so;
        if (!inputs[k][0] || stat(inputs[k], &si) != 0)
            continue;
        char path[GI_PATH_MAX + 320];
        for (int i = 0; rc == 0 && i < n + 3; i++) {
            snprintf(path, sizeof path, "%s/%s", out_dir, i < n ? names[i] : TRAIN_OUT[i - n]);
            if (stat(path, &so) == 0 && so.st_dev == si.st_dev && so.st_ino == si.st_ino)
                rc = gi_fail(err, "%s %s is %s, an output of this run: geneinr would replace or remove it; keep "
                             "inputs outside the run folder's output names (copy it elsewhere)", keys[k], inputs[k],
                             path);
        }
    }
    free_names(names, n);
    return rc;
}

/* Rank 0: create OUT/nifti, remove the maps of an earlier render, refuse
 * genes whose file names collide. */
static int prepare_gene_dir(const char *out_dir, const char *dir, const gi_atlas *a, gi_err *err)
{
    if (gi_export_check_gene_names((const char *const *)a->genes, a->n_genes, out_dir, err) != 0 ||
        (a->has_uncertainty && check_sd_names((const char *const *)a->genes, a->n_genes, out_dir, err) != 0))
        return -1;
    if (gi_make_dirs(dir, err) != 0 || gi_manifest_remove_in(out_dir, "nifti/", ".nii.gz", NULL, err) < 0)
        return -1;
    char **names = NULL;
    int n = 0;
    gi_config maps;   /* the nifti/ names alone */
    memset(&maps, 0, sizeof maps);
    maps.render.nifti = GI_NIFTI_3D;
    maps.render.uncertainty = a->has_uncertainty;
    int rc = output_names(&maps, (const char *const *)a->genes, a->n_genes, 0, 1, &names, &n, err);
    if (rc == 0)
        rc = gi_manifest_claim_in(out_dir, (const char *const *)names, n, "render", err);
    free_names(names, n);
    return rc;
}

/* Rank 0, after every rank wrote its maps: record them. */
static int commit_gene_maps(const char *out_dir, const gi_atlas *a, gi_err *err)
{
    char **names = NULL;
    int n = 0;
    gi_config maps;
    memset(&maps, 0, sizeof maps);
    maps.render.nifti = GI_NIFTI_3D;
    maps.render.uncertainty = a->has_uncertainty;
    int rc = output_names(&maps, (const char *const *)a->genes, a->n_genes, 0, 1, &names, &n, err);
    if (rc == 0)
        rc = gi_manifest_commit_in(out_dir, (const char *const *)names, n, err);
    free_names(names, n);
    return rc;
}

int gi_export_gene_maps(const gi_config *c, MPI_Comm comm, const char *out_dir, const char *atlas_path,
                        const gi_volume *mask, const char *what, gi_err *err)
{
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    char dir[GI_PATH_MAX + 16];
    snprintf(dir, sizeof dir, "%s/nifti", out_dir);
    gi_atlas a;
    int rc = gi_atlas_open(&a, atlas_path, err), opened = rc == 0;
    if (rc == 0 && rank == 0)
        rc = prepare_gene_dir(out_dir, dir, &a, err);
    if (gi_dist_agree(comm, rc, err) != 0) {
        if (opened)
            gi_atlas_close(&a);
        return -1;
    }
    size_t nvox = (size_t)a.nx * a.ny * a.nz;
    float *vol = malloc(sizeof(float) * nvox);
    uint16_t *codes = a.dtype == GI_DTYPE_UINT16 ? malloc(sizeof *codes * nvox) : NULL;
    if (!vol || (a.dtype == GI_DTYPE_UINT16 && !codes))
        rc = gi_fail(err, "out of memory for one %dx%dx%d map", a.nx, a.ny, a.nz);
    /* Gene g's map, then (with /uncertainty) its SD as <gene>_sd. */
    for (int job = rank; rc == 0 && job < a.n_genes * (a.has_uncertainty ? 2 : 1); job += size) {
        int g = job % a.n_genes, sd = job >= a.n_genes;
        char name[256], path[GI_PATH_MAX + 300], tmp[GI_PATH_MAX + 320], desc[80];
        gi_gene_file_name(a.genes[g], name, sizeof name);
        snprintf(path, sizeof path, "%s/%s%s.nii.gz", dir, name, sd ? "_sd" : "");
        snprintf(tmp, sizeof tmp, "%s/.%s%s.tmp.nii.gz", dir, name, sd ? "_sd" : "");
        snprintf(desc, sizeof desc, "geneinr %s%s (%s)", a.genes[g], sd ? " SD" : "", what);
        if (!sd && a.dtype == GI_DTYPE_UINT16) {
            /* The atlas's codes as they are, its scale and offset as
             * scl_slope/scl_inter (nibabel applies them): code 0, outside
             * the mask, reads as scl_inter, whatever render.background (an
             * integer image holds no NaN; docs/CONFIG.md render.dtype). */
            double sc, off;
            rc = gi_atlas_read_codes(&a, g, codes, &sc, &off, err);
            if (rc != 0 || gi_volume_write_like_u16(mask, codes, sc, off, tmp, desc, err) != 0)
                rc = -1;
        } else {
            rc = sd ? gi_atlas_read_sd(&a, g, vol, err) : gi_atlas_read_gene(&a, g, vol, err);
            if (rc == 0)
                gi_export_background(c, vol, nvox);   /* render.background */
            if (rc != 0 || gi_volume_write_like(mask, vol, tmp, desc, err) != 0)
                rc = -1;
        }
        if (rc == 0 && rename(tmp, path) != 0)
            rc = gi_fail(err, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    }
    free(vol);
    free(codes);
    rc = gi_dist_agree(comm, rc, err);
    if (rc == 0 && rank == 0)
        rc = commit_gene_maps(out_dir, &a, err);
    gi_atlas_close(&a);
    return gi_dist_agree(comm, rc, err);
}

/* config.c - the run configuration: schema table, YAML loading, --set
 * overrides, validation, reference and effective-config dump.
 *
 * Design. Every option is one row of KEYS[] below: its dotted key, type,
 * place in gi_config (offsetof), default (as YAML text), bounds and meaning.
 * Nothing else in this file knows a key by name except the cross-field rules
 * in validate_with(); defaults, parsing, range checks, the Markdown reference
 * and gi_config_to_yaml all walk the table, so they cannot disagree.
 *
 * Loading. libyaml's event parser reads the file; nested mappings are joined
 * into dotted keys ("train: {lr: 1}" and "train.lr: 1" are the same key), so
 * the only structure is section -> key -> scalar. Each scalar is converted by
 * set_value(), the single place that knows the value syntax, which is shared
 * by the file, --set overrides (whose value is also run through libyaml so
 * quoting works the same) and the defaults. The first error stops the load;
 * every message starts with where it happened: "file:line" or "--set k=v".
 *
 * Invariants:
 * - Keys of one section are contiguous in KEYS[] (to_yaml writes each section
 *   once; the round-trip test would fail on a duplicate section otherwise).
 * - Enum names are listed in the order of their C enum values (0, 1, ...).
 * - A failed load leaves *c untouched: all work happens on a private copy.
 * - gi_config_defaults() zeroes the whole struct first and string values are
 *   zero-padded to their buffer size, so two loaded configs with the same
 *   values compare equal with memcmp (padding included).
 */
#include "geneinr/config.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#include "geneinr/method_kind.h"

/* ---------------------------------------------------------------- schema */

enum key_type { T_INT, T_UINT64, T_FLOAT, T_BOOL, T_STRING, T_ENUM };

static const char *const TYPE_NAMES[] = { "int", "uint64", "float", "bool", "string", "enum" };

typedef struct key_spec {
    const char *key;            /* dotted: "section.name" */
    enum key_type type;
    size_t offset;              /* offsetof(gi_config, ...) */
    size_t size;                /* buffer size for T_STRING (incl. NUL), else 0 */
    const char *def;            /* default, as YAML scalar text */
    double min, max;            /* bounds for T_INT / T_FLOAT */
    unsigned char min_open, max_open; /* 1 = bound excluded */
    const char *const *names;   /* T_ENUM: allowed names, NULL-terminated, index = value */
    const char *meaning;        /* one line for the reference */
} key_spec;

/* Older spellings an enum key still accepts: render.nifti was a boolean, so
 * every YAML boolean keeps its meaning (true = one 3-D file per gene). The
 * canonical name is what the effective config and checkpoints record. */
static const struct { const char *key, *alias, *name; } ENUM_ALIASES[] = {
    {"render.nifti", "true", "3d"}, {"render.nifti", "yes", "3d"}, {"render.nifti", "on", "3d"},
    {"render.nifti", "1", "3d"}, {"render.nifti", "false", "none"}, {"render.nifti", "no", "none"},
    {"render.nifti", "off", "none"}, {"render.nifti", "0", "none"},
};

/* The field macros check the C type of the member at compile time (_Generic
 * has no association for a wrong type), so a table row cannot write an int
 * into a float. */
#define MEMBER(f) (((gi_config *)0)->f)
#define OFF_INT(f) _Generic(MEMBER(f), int: offsetof(gi_config, f))
#define OFF_FLOAT(f) _Generic(MEMBER(f), float: offsetof(gi_config, f))
#define OFF_U64(f) _Generic(MEMBER(f), uint64_t: offsetof(gi_config, f))
#define OFF_STR(f) _Generic(MEMBER(f), char *: offsetof(gi_config, f))

#define INT(k, f, d, lo, hi, m) { k, T_INT, OFF_INT(f), 0, d, lo, hi, 0, 0, NULL, m }
#define FLOAT(k, f, d, lo, lo_open, hi, hi_open, m) \
    { k, T_FLOAT, OFF_FLOAT(f), 0, d, lo, hi, lo_open, hi_open, NULL, m }
#define U64(k, f, d, m) { k, T_UINT64, OFF_U64(f), 0, d, 0, 0, 0, 0, NULL, m }
#define BOOL(k, f, d, m) { k, T_BOOL, OFF_INT(f), 0, d, 0, 1, 0, 0, NULL, m }
#define STR(k, f, d, m) { k, T_STRING, OFF_STR(f), sizeof MEMBER(f), d, 0, 0, 0, 0, NULL, m }
#define ENUM(k, f, d, names, m) { k, T_ENUM, OFF_INT(f), 0, d, 0, 0, 0, 0, names, m }

#define OPEN 1
#define CLOSED 0

/* One KEYS row per model setting (model_settings.h). */
#define MODEL_ROW(kind, f, d, lo, lo_open, hi, hi_open, names, m) MODEL_ROW_##kind(f, d, lo, lo_open, hi, hi_open, names, m),
#define MODEL_ROW_INT(f, d, lo, lo_open, hi, hi_open, names, m) INT("model." #f, model.f, d, lo, hi, m)
#define MODEL_ROW_FLOAT(f, d, lo, lo_open, hi, hi_open, names, m) FLOAT("model." #f, model.f, d, lo, lo_open, hi, hi_open, m)
#define MODEL_ROW_ENUM(f, d, lo, lo_open, hi, hi_open, names, m) ENUM("model." #f, model.f, d, names, m)

static const key_spec KEYS[] = {
    STR("data.samples", data.samples, "", "sample table CSV (required to train)"),
    STR("data.anatomy", data.anatomy, "", "anatomical label NIfTI fed to the network; \"\" = none"),
    FLOAT("data.anatomy_tolerance", data.anatomy_tolerance, "0", 0, CLOSED, 50, CLOSED,
          "how far (mm) a sample may reach for its anatomy label: a sample whose own voxel (nearest voxel centre) is unlabelled, outside the image or of a label data.anatomy_labels forbids takes the label of the nearest allowed labelled voxel centre within this distance (Euclidean mm through the image affine; ties: nearest label centroid, then lowest label value), else label 0; 0 = the sample's own voxel only. Unlike abagen (1 mm rings, most frequent label) the single nearest voxel decides. Render voxels always keep their own label; needs data.anatomy"),
    FLOAT("data.max_outside", data.max_outside, "0.5", 0, CLOSED, 1, CLOSED,
          "the largest fraction of samples that may fall outside render.mask (nearest voxel zero or off the grid) or get no data.anatomy label (after label matching with data.anatomy_tolerance); above it, when that image also lies away from the samples (over a quarter of its voxels 15 mm or more from every sample), train, run, eval and sweep refuse to start, since a mask or label image on another grid or affine (identity instead of MNI) leaves most samples outside; above half of it they warn (a region-of-interest mask or a partial parcellation, which lie among the samples, get a note or a warning only); 1 = never refuse. The real AHBA coordinates leave about 9% of samples unlabelled on the Desikan-Killiany image at tolerance 5 mm and 42% at 0 mm (a warning)"),
    STR("data.anatomy_labels", data.anatomy_labels, "",
        "abagen label table CSV (id,label,hemisphere,structure) describing data.anatomy's labels (\"auto\": the .csv of the same name beside the data.anatomy image, as abagen ships atlas-desikankilliany.nii.gz + .csv and the phantoms write anatomy.nii.gz + anatomy.csv, none if it is absent): when the sample table has class and hemisphere columns (prepare writes them) a sample may take only labels of its own structure class, and of its hemisphere unless the label's hemisphere is B (abagen's rule), at any tolerance; samples with an empty class or hemisphere are unconstrained; \"\" = no constraint; needs data.anatomy"),
    ENUM("data.prior", data.prior, "none", GI_PRIOR_NAMES,
         "baseline the INR refines: it learns the residual over this method's prediction (fitted on the training samples), and renders prior + network; regression_kriging needs data.anatomy"),
    BOOL("data.prior_donor_effect", data.prior_donor_effect, "false",
         "the prior's covariance includes a donor random effect (per-donor offsets, fitted by ML) that its donor-average prediction leaves out"),
    BOOL("data.prior_label_similarity", data.prior_label_similarity, "false",
         "regression_kriging prior: the label effects of two labels are correlated by the similarity of their mean gene profiles in the training samples (shrunk for labels with few samples), by a weight fitted by ML: a label sparsely sampled or held out borrows from labels that express alike (e.g. cortical regions)"),
    INT("data.prior_crossfit", data.prior_crossfit, "0", 0, 100,
        "cross-fitting of the prior: K >= 2 splits the training samples into K folds and the network learns the residual over each sample's out-of-fold prior prediction (fits on the other K-1 folds, the full fit's hyperparameters), i.e. the prior's held-out error; 0 = in-sample residuals; needs data.prior"),
    BOOL("data.prior_refit", data.prior_refit, "false",
         "for prediction (render, eval) the prior is refitted on every sample of data.samples, validation samples included, with the hyperparameters training fitted (kept in the checkpoint: one factorisation; checkpoints from before they were kept are refitted by ML); training and its validation keep the fit on the training samples; needs data.prior"),
    STR("data.genes", data.genes, "", "gene list file (one symbol a line): exactly these columns of data.samples are genes, other non-annotation columns are ignored; \"\" = every non-annotation column is a gene"),
    INT("data.trunk_genes", data.trunk_genes, "0", 0, 1e7,
        "whole transcriptome from one trunk (train and run): the network is trained on the N genes of the table with the largest variance across samples (OUT/trunk/: genes.txt, checkpoint.h5), then every other gene gets its readout row by geneinr extend (ridge on the frozen trunk, its prior with the training's hyperparameters) into OUT/checkpoint.h5, which run renders; OUT/config.yaml reads the table in the extended model's gene order (data.genes: OUT/genes.txt); needs model.gene_mode factorized and train.ensemble 1; 0 = train on every gene"),

    GI_MODEL_SETTINGS(MODEL_ROW)

    INT("train.steps", train.steps, "2000", 1, 1e9, "optimizer steps (the most; validation may stop earlier)"),
    INT("train.batch_size", train.batch_size, "0", 0, 1e9, "units per step: samples (factorized) or measured (sample, gene) pairs (concat); 0 = full batch"),
    ENUM("train.optimizer", train.optimizer, "adamw", GI_OPTIMIZER_NAMES, "optimizer (adamw = decoupled weight decay)"),
    FLOAT("train.lr", train.lr, "1e-3", 0, OPEN, 10, CLOSED, "peak learning rate"),
    FLOAT("train.weight_decay", train.weight_decay, "0", 0, CLOSED, 10, CLOSED, "weight decay"),
    FLOAT("train.beta1", train.beta1, "0.9", 0, CLOSED, 1, OPEN, "Adam first-moment decay"),
    FLOAT("train.beta2", train.beta2, "0.999", 0, CLOSED, 1, OPEN, "Adam second-moment decay"),
    FLOAT("train.eps", train.eps, "1e-8", 0, OPEN, 1, CLOSED, "Adam denominator epsilon"),
    ENUM("train.schedule", train.schedule, "cosine", GI_SCHEDULE_NAMES, "learning-rate schedule after warm-up"),
    INT("train.warmup_steps", train.warmup_steps, "50", 0, 1e9, "linear warm-up from 0 over this many steps"),
    FLOAT("train.min_lr", train.min_lr, "1e-5", 0, CLOSED, 10, CLOSED, "floor of the cosine schedule; at most train.lr"),
    INT("train.step_every", train.step_every, "1000", 1, 1e9, "step schedule: steps between decays"),
    FLOAT("train.step_gamma", train.step_gamma, "0.5", 0, OPEN, 1, CLOSED, "step schedule: factor applied at each decay"),
    FLOAT("train.clip_norm", train.clip_norm, "0", 0, CLOSED, 1e6, CLOSED, "global gradient-norm clip; 0 = off"),
    ENUM("train.validation", train.val_mode, "fraction", GI_VAL_MODE_NAMES,
         "held-out set: none, a random fraction of samples, or one donor"),
    FLOAT("train.val_fraction", train.val_fraction, "0.1", 0, OPEN, 1, OPEN, "share of samples held out (validation: fraction)"),
    STR("train.val_donor", train.val_donor, "", "donor held out (validation: donor)"),
    INT("train.val_every", train.val_every, "50", 1, 1e9, "steps between validation scores"),
    INT("train.patience", train.patience, "0", 0, 1e9, "validations without improvement before stopping; 0 = never stop early"),
    INT("train.checkpoint_every", train.checkpoint_every, "0", 0, 1e9, "steps between checkpoints; 0 = only at the end"),
    INT("train.log_every", train.log_every, "100", 1, 1e9, "steps between progress lines"),
    U64("train.seed", train.seed, "1", "seed of the counter-based random generator"),
    INT("train.ensemble", train.ensemble, "1", 1, 64,
        "networks trained with seeds train.seed, train.seed+1, ... (validation split, initialisation and batches); "
        "the rendered and evaluated map is their mean; member k+1 (k >= 1) is trained into OUT/ensemble/k"),
    BOOL("train.val_average", train.val_average, "false",
         "score validation samples with the donor-average prediction (what render and eval use) instead of their own donor's embedding"),
    ENUM("train.resume", train.resume, "off", GI_RESUME_NAMES,
         "auto: continue from OUT/checkpoint.h5 when it exists, else start fresh (requeued jobs); off: start fresh unless --resume"),

    STR("render.mask", render.mask, "", "mask NIfTI defining the output grid (required to render)"),
    INT("render.batch_voxels", render.batch_voxels, "16384", 1, 16777216, "voxels evaluated per batch"),
    STR("render.donor", render.donor, "average", "\"average\" or a donor name"),
    ENUM("render.nifti", render.nifti, "none", GI_NIFTI_NAMES,
         "NIfTI export: none, 3d = OUT/nifti/GENE.nii.gz, 4d = OUT/expression.nii.gz (one volume per gene, "
         "OUT/genes.tsv in atlas order), both; true/false (older boolean) mean 3d/none"),
    INT("render.buffer_mb", render.buffer_mb, "256", 1, 65536, "bound on the output buffers per rank, MiB: z-slices of all genes per write, or of a group of genes when one slice of all genes does not fit"),
    INT("render.compress", render.compress, "1", 0, 9, "HDF5 deflate level for /expression; 0 = none"),
    INT("render.chunk_genes", render.chunk_genes, "0", 0, 1000000, "genes per HDF5 chunk of /expression (one z-slice of that many genes); 0 = automatic: 1 while genes x slices <= 20,000 chunks, else the fewest that keep the chunk count there (docs/BENCHMARKS.md \"Atlas chunk layout\")"),
    ENUM("render.background", render.background, "nan", GI_BACKGROUND_NAMES,
         "NIfTI value outside the mask: nan, or zero for tools whose means and resampling choke on NaN "
         "(the atlas always keeps NaN)"),
    ENUM("render.dtype", render.dtype, "float32", GI_DTYPE_NAMES,
         "how atlas.h5 /expression and the 3-D NIfTI maps store values: float32, or uint16 (half the bytes) with "
         "each gene's own scale and offset: value = offset + scale * code, code 1..65535 inside the mask, code 0 = "
         "NaN (outside the mask); scale = (max - min) / 65534 over the gene's in-mask voxels, so a value is within "
         "scale / 2 (+ float rounding) of its float32 render. HDF5: /expression attributes scale and offset "
         "(per gene); NIfTI: scl_slope/scl_inter per file, where code 0 (outside the mask) reads as scl_inter whatever render.background (an integer image holds no NaN). A render whose slab does not fit render.buffer_mb "
         "predicts twice (the range first). Not with render.nifti 4d/both (one slope cannot serve all genes); "
         "/uncertainty stays float32"),
    INT("render.preview_genes", render.preview_genes, "24", 0, 1000000,
        "PNG previews OUT/preview/GENE.png for the first N genes of the atlas; 0 = none"),
    STR("render.preview_at", render.preview_at, "",
        "\"x,y,z\" in MNI mm where the three preview slices cross; \"\" = the centre of the mask"),
    BOOL("render.preview_samples", render.preview_samples, "true",
         "mark the training samples within 2 mm of each preview slice (red dots)"),
    ENUM("render.preview_orientation", render.preview_orientation, "neurological", GI_ORIENTATION_NAMES,
         "left-right convention of the previews: neurological (subject's left on the left) or radiological"),
    BOOL("render.report", render.report, "true",
         "write OUT/report.html (run, data, training curve, accuracy, previews) after render"),

    ENUM("render.method", render.method, "inr", GI_METHOD_NAMES,
         "what to render: the trained model (inr) or a baseline fitted on all samples (nearest, idw, kriging, regression_kriging)"),
    BOOL("render.uncertainty", render.uncertainty, "false",
         "also write the map's predictive SD per gene and voxel: atlas.h5 /uncertainty (and with render.nifti "
         "OUT/uncertainty.nii.gz and/or OUT/nifti/GENE_sd.nii.gz); for a method with an SD only (kriging, "
         "regression_kriging, inr with data.prior or train.ensemble > 1): refused for nearest, idw, kriging with "
         "baseline.per_gene and a single network without data.prior. /distance (mm to the nearest sample) and the "
         "samples are written in any case"),
    INT("render.uncertainty_step", render.uncertainty_step, "3", 1, 64,
        "render.uncertainty: the SD's costly smooth part (the kriging variance r'A^-1 r, O(samples^2) per point) is "
        "computed exactly on a lattice of every Nth voxel of the mask's grid in x, y and z, and interpolated "
        "trilinearly to the voxels between (1 = exact at every voxel; docs/BENCHMARKS.md \"Uncertainty render "
        "cost\" has the error and cost per step)"),
    INT("render.prior_step", render.prior_step, "2", 1, 64,
        "data.prior's Gaussian-process part (sum over samples of covariance x weight, O(samples) per voxel and gene) "
        "is computed on a lattice of every Nth voxel of the mask's grid in x, y and z and interpolated trilinearly "
        "to the voxels between; the prior's mean and label effects stay exact per voxel. 1 = exact at every voxel "
        "(the atlases before issue 31). Renders only: eval, training and geneinr predict use the exact prior. "
        "docs/ACCURACY.md \"The prior on a lattice\" has the difference from the exact prior"),

    INT("baseline.idw_k", baseline.idw_k, "10", 1, 1000, "idw: nearest samples averaged with weights 1/d (abagen: 10)"),
    ENUM("baseline.covariance", baseline.covariance, "exponential", GI_COVARIANCE_NAMES,
         "kriging covariance model (plus a nugget): exponential, Matern 3/2 or Matern 5/2"),
    BOOL("baseline.per_gene", baseline.per_gene, "false",
         "kriging: fit range and nugget per gene (one Cholesky per gene) instead of shared by all genes"),
    INT("baseline.fit_samples", baseline.fit_samples, "1200", 0, 1e7,
        "kriging: samples (seeded subsample) in the maximum-likelihood fit; 0 = all. Prediction uses all"),
    FLOAT("baseline.label_shrink", baseline.label_shrink, "0", 0, CLOSED, 1e6, CLOSED,
          "regression kriging: 0 = labels enter only as a random effect in the covariance (fitted by ML with the field, BLUP-shrunk); > 0 = also remove fixed label means shrunk with this pseudo-count first"),

    ENUM("eval.split", eval.split, "kfold", GI_SPLIT_NAMES,
         "held-out partition: random folds of samples, leave one donor out, or spatial blocks"),
    INT("eval.folds", eval.folds, "5", 2, 1000, "folds (kfold, block); donor uses one fold per donor"),
    FLOAT("eval.block_mm", eval.block_mm, "20", 0, OPEN, 1000, CLOSED, "edge of the spatial blocks, mm (block)"),
    STR("eval.methods", eval.methods, "", "comma-separated methods to compare; \"\" = all that apply (regression_kriging needs data.anatomy)"),
    U64("eval.seed", eval.seed, "1", "seed of the fold assignment"),
    INT("eval.new_genes", eval.new_genes, "0", 0, 1e7,
        "new-gene mode: K > 0 genes (drawn with eval.seed) are held out of a second INR's training in every fold and extended onto its trunk (geneinr extend) from the fold's training samples: method inr_extended, and summary.csv scores every method on those K genes only; needs inr and model.gene_mode factorized; 0 = off"),
    INT("eval.groups", eval.groups, "0", 0, 1e6,
        "MPI: rank groups evaluating folds side by side (the INR trains data-parallel within a group); 0 = one per fold, at most one per rank"),

    STR("run.out", run.out, "", "run folder; \"\" = runs/NAME, NAME = the config file name without extension"),
    INT("run.threads", run.threads, "1", 0, 1024, "OpenBLAS threads per rank; 0 = the node's cores / its ranks. Results are identical for any rank count only at a fixed value (OpenBLAS sums differently with more threads), hence 1: run one rank per core"),

    STR("prepare.data_dir", prepare.data_dir, "", "`geneinr prepare`: folder holding the AHBA normalized_microarray_donor<ID>/ folders (required to prepare)"),
    STR("prepare.coordinates", prepare.coordinates, "", "corrected MNI coordinates table (well_id,corrected_mni_x,corrected_mni_y,corrected_mni_z); \"\" = SampleAnnot's mni_x/y/z"),
    STR("prepare.reannotation", prepare.reannotation, "", "probe reannotation table (probe_name,gene_symbol,entrez_id,...); \"\" = Probes.csv's own symbols"),
    STR("prepare.genes", prepare.genes, "", "gene list file (one symbol a line) selecting the output columns; the normalisation still runs over every gene; \"\" = every gene"),
    ENUM("prepare.probe_selection", prepare.probe_selection, "diff_stability", GI_PROBE_SEL_NAMES,
         "one probe per gene: most differentially stable across donors, largest mean, largest variance, or the mean of the gene's probes"),
    FLOAT("prepare.ibf_threshold", prepare.ibf_threshold, "0.5", 0, CLOSED, 1, CLOSED,
          "intensity-based filter: keep probes above background in at least this share of kept samples"),
    ENUM("prepare.lr_mirror", prepare.lr_mirror, "none", GI_LR_MIRROR_NAMES,
         "copy samples across x = 0 (leftright: left to right, rightleft, bidirectional), as abagen's lr_mirror"),
    BOOL("prepare.norm_train_only", prepare.norm_train_only, "false",
         "fit the within-donor normalisation on the training samples of train.validation only (abagen, the default, lets held-out samples into it)"),
    STR("prepare.out", prepare.out, "", "output folder of `geneinr prepare` (samples.csv, report.json); \"\" = prepared/NAME, NAME = the config file name without extension"),
    INT("prepare.threads", prepare.threads, "0", 0, 1024, "threads reading donor files and computing; 0 = the node's cores"),
};

enum { N_KEYS = sizeof KEYS / sizeof KEYS[0] };

/* --------------------------------------------------------------- helpers */

/* Where each key got its value, for messages about cross-field rules. */
typedef struct load_ctx {
    const char *name;           /* file name (or text name) for messages */
    int line[N_KEYS];           /* 1-based line in the file, 0 = not set there */
    const char *set[N_KEYS];    /* the --set text that set it last, or NULL */
    int section_line[N_KEYS];   /* indexed by the first key of a section */
} load_ctx;

/* Length of the section part of a key ("train" in "train.lr"). */
static size_t section_len(const char *key)
{
    const char *dot = strchr(key, '.');
    return dot ? (size_t)(dot - key) : strlen(key);
}

static const char *name_part(const char *key)
{
    const char *dot = strchr(key, '.');
    return dot ? dot + 1 : key;
}

static int find_key(const char *key)
{
    for (int i = 0; i < N_KEYS; i++)
        if (strcmp(KEYS[i].key, key) == 0) return i;
    return -1;
}

/* Index of the first key of section sec[0..len), or -1. */
static int find_section(const char *sec, size_t len)
{
    for (int i = 0; i < N_KEYS; i++)
        if (section_len(KEYS[i].key) == len && strncmp(KEYS[i].key, sec, len) == 0) return i;
    return -1;
}

static int is_section_start(int i)
{
    return i == 0 || section_len(KEYS[i].key) != section_len(KEYS[i - 1].key) ||
           strncmp(KEYS[i].key, KEYS[i - 1].key, section_len(KEYS[i].key)) != 0;
}

static void *field(gi_config *c, const key_spec *k) { return (char *)c + k->offset; }
static const void *cfield(const gi_config *c, const key_spec *k) { return (const char *)c + k->offset; }

/* Optimal-string-alignment edit distance (a transposition counts 1), for
 * "did you mean". Strings longer than 63 bytes are never close. */
static int edit_distance(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    if (n > 63 || m > 63) return 1000;
    int d[64][64];
    for (size_t i = 0; i <= n; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= m; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= n; i++) {
        for (size_t j = 1; j <= m; j++) {
            int cost = a[i - 1] != b[j - 1];
            int best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < best) best = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[n][m];
}

/* How many edits still count as a typo of a word of this length. */
static int typo_budget(size_t len) { return len <= 3 ? 1 : len <= 8 ? 2 : 3; }

/* Append to a fixed buffer, silently truncating. */
static void append(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void append(char *buf, size_t size, const char *fmt, ...)
{
    size_t used = strlen(buf);
    if (used + 1 >= size) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + used, size - used, fmt, ap);
    va_end(ap);
}

static void list_sections(char *hint, size_t size)
{
    append(hint, size, "sections: ");
    for (int i = 0, first = 1; i < N_KEYS; i++) {
        if (!is_section_start(i)) continue;
        append(hint, size, "%s%.*s", first ? "" : ", ", (int)section_len(KEYS[i].key), KEYS[i].key);
        first = 0;
    }
}

static void list_section_keys(char *hint, size_t size, int sec)
{
    size_t len = section_len(KEYS[sec].key);
    append(hint, size, "%.*s keys: ", (int)len, KEYS[sec].key);
    for (int i = sec; i < N_KEYS && (i == sec || !is_section_start(i)); i++)
        append(hint, size, "%s%s", i == sec ? "" : ", ", name_part(KEYS[i].key));
}

/* The hint after "unknown key 'x'": a close known key, or what exists. */
static void unknown_key_hint(const char *key, char *hint, size_t size)
{
    hint[0] = '\0';
    size_t slen = section_len(key);
    const char *name = key[slen] == '.' ? key + slen + 1 : NULL;
    int sec = find_section(key, slen);

    if (!name) {
        /* A bare word at the top: a key put outside its section, or a
         * misspelt section. */
        for (int i = 0; i < N_KEYS; i++)
            if (strcmp(name_part(KEYS[i].key), key) == 0) {
                append(hint, size, "did you mean '%s'?", KEYS[i].key);
                return;
            }
        int best = -1, best_d = 1000;
        for (int i = 0; i < N_KEYS; i++) {
            if (!is_section_start(i)) continue;
            char s[64];
            snprintf(s, sizeof s, "%.*s", (int)section_len(KEYS[i].key), KEYS[i].key);
            int d = edit_distance(key, s);
            if (d < best_d) best_d = d, best = i;
        }
        if (best >= 0 && best_d <= typo_budget(strlen(key)))
            append(hint, size, "did you mean '%.*s'?", (int)section_len(KEYS[best].key), KEYS[best].key);
        else
            list_sections(hint, size);
        return;
    }

    if (sec >= 0) {
        int best = -1, best_d = 1000;
        for (int i = sec; i < N_KEYS && (i == sec || !is_section_start(i)); i++) {
            int d = edit_distance(name, name_part(KEYS[i].key));
            if (d < best_d) best_d = d, best = i;
        }
        if (best >= 0 && best_d <= typo_budget(strlen(name))) {
            append(hint, size, "did you mean '%s'?", KEYS[best].key);
            return;
        }
    } else {
        /* Misspelt section: try the closest one with the same key name. */
        char s[64];
        snprintf(s, sizeof s, "%.*s", (int)(slen < 63 ? slen : 63), key);
        for (int i = 0; i < N_KEYS; i++) {
            if (strcmp(name_part(KEYS[i].key), name) != 0) continue;
            char ks[64];
            snprintf(ks, sizeof ks, "%.*s", (int)section_len(KEYS[i].key), KEYS[i].key);
            if (slen < 63 && edit_distance(s, ks) <= typo_budget(slen)) {
                append(hint, size, "did you mean '%s'?", KEYS[i].key);
                return;
            }
        }
    }
    /* Right name, wrong section ("model.lr")? */
    for (int i = 0; i < N_KEYS; i++)
        if (strcmp(name_part(KEYS[i].key), name) == 0) {
            append(hint, size, "did you mean '%s'?", KEYS[i].key);
            return;
        }
    if (sec >= 0)
        list_section_keys(hint, size, sec);
    else
        list_sections(hint, size);
}

static int fail_unknown(gi_err *err, const char *where, const char *key)
{
    char hint[1024];
    unknown_key_hint(key, hint, sizeof hint);
    return gi_fail(err, "%s: unknown key '%s' (%s)", where, key, hint);
}

/* A value as shown in a message: at most 60 bytes, one line. */
static const char *shown(const char *text, char *buf, size_t size)
{
    size_t n = 0;
    for (const char *p = text; *p && n + 4 < size && n < 60; p++)
        buf[n++] = (*p == '\n' || *p == '\r' || *p == '\t') ? ' ' : *p;
    buf[n] = '\0';
    if (strlen(text) > n) snprintf(buf + n, size - n, "...");
    return buf;
}

static void format_bounds(const key_spec *k, char *buf, size_t size)
{
    if (k->type == T_INT)
        snprintf(buf, size, "[%.0f, %.0f]", k->min, k->max);
    else
        snprintf(buf, size, "%c%.15g, %.15g%c", k->min_open ? '(' : '[', k->min, k->max, k->max_open ? ')' : ']');
}

static int in_bounds(const key_spec *k, double v)
{
    if (k->min_open ? !(v > k->min) : !(v >= k->min)) return 0;
    if (k->max_open ? !(v < k->max) : !(v <= k->max)) return 0;
    return 1;
}

static void list_names(const char *const *names, char *buf, size_t size)
{
    buf[0] = '\0';
    for (int i = 0; names[i]; i++) append(buf, size, "%s%s", i ? ", " : "", names[i]);
}

/* ------------------------------------------------------- value conversion */

/* YAML's null in plain style ("", ~, null): an empty string value. */
static int is_plain_null(const char *text, int plain)
{
    return plain && (text[0] == '\0' || strcmp(text, "~") == 0 || strcmp(text, "null") == 0 ||
                     strcmp(text, "Null") == 0 || strcmp(text, "NULL") == 0);
}

static int looks_non_finite(const char *t)
{
    if (*t == '+' || *t == '-') t++;
    if (*t == '.') t++;
    return strcasecmp(t, "inf") == 0 || strcasecmp(t, "infinity") == 0 || strcasecmp(t, "nan") == 0;
}

static int is_integer_syntax(const char *t, int allow_minus)
{
    if (*t == '+' || (allow_minus && *t == '-')) t++;
    if (!*t) return 0;
    for (; *t; t++)
        if (!isdigit((unsigned char)*t)) return 0;
    return 1;
}

/* Convert one scalar and store it in c. text is NUL-terminated and len is
 * its length as libyaml saw it (they differ if the value contains "\0");
 * plain says whether it was unquoted (only then is it a YAML null). */
static int set_value(gi_config *c, int idx, const char *text, size_t len, int plain, const char *where,
                     gi_err *err)
{
    const key_spec *k = &KEYS[idx];
    char show[80];
    if (strlen(text) != len) return gi_fail(err, "%s: %s: the value contains a NUL byte", where, k->key);

    switch (k->type) {
    case T_STRING: {
        if (is_plain_null(text, plain)) text = "", len = 0;
        if (len >= k->size)
            return gi_fail(err, "%s: %s: the value is %zu bytes long, at most %zu are allowed", where, k->key, len,
                           k->size - 1);
        /* Zero the whole buffer so equal configs are equal bytes. */
        memset(field(c, k), 0, k->size);
        memcpy(field(c, k), text, len);
        return 0;
    }
    case T_BOOL: {
        static const char *const yes[] = { "true", "yes", "on", "1" };
        static const char *const no[] = { "false", "no", "off", "0" };
        for (int i = 0; i < 4; i++) {
            if (strcasecmp(text, yes[i]) == 0) return *(int *)field(c, k) = 1, 0;
            if (strcasecmp(text, no[i]) == 0) return *(int *)field(c, k) = 0, 0;
        }
        return gi_fail(err, "%s: %s: expected true or false (also yes/no, on/off, 1/0), got '%s'", where, k->key,
                       shown(text, show, sizeof show));
    }
    case T_ENUM: {
        for (size_t a = 0; a < sizeof ENUM_ALIASES / sizeof ENUM_ALIASES[0]; a++)
            if (strcmp(ENUM_ALIASES[a].key, k->key) == 0 && strcasecmp(ENUM_ALIASES[a].alias, text) == 0)
                text = ENUM_ALIASES[a].name;
        for (int i = 0; k->names[i]; i++)
            if (strcmp(text, k->names[i]) == 0) return *(int *)field(c, k) = i, 0;
        char names[256];
        list_names(k->names, names, sizeof names);
        if (!text[0]) return gi_fail(err, "%s: %s: missing value; expected one of %s", where, k->key, names);
        return gi_fail(err, "%s: %s: '%s' is not one of %s", where, k->key, shown(text, show, sizeof show), names);
    }
    case T_INT: {
        char bounds[64];
        format_bounds(k, bounds, sizeof bounds);
        if (!is_integer_syntax(text, 1))
            return gi_fail(err, "%s: %s: expected a whole number in %s, got '%s'", where, k->key, bounds,
                           shown(text, show, sizeof show));
        errno = 0;
        long long v = strtoll(text, NULL, 10);
        if (errno == ERANGE || !in_bounds(k, (double)v))
            return gi_fail(err, "%s: %s: %s is out of range %s", where, k->key, shown(text, show, sizeof show),
                           bounds);
        *(int *)field(c, k) = (int)v;
        return 0;
    }
    case T_UINT64: {
        if (!is_integer_syntax(text, 0))
            return gi_fail(err, "%s: %s: expected a non-negative whole number, got '%s'", where, k->key,
                           shown(text, show, sizeof show));
        errno = 0;
        unsigned long long v = strtoull(text, NULL, 10);
        if (errno == ERANGE)
            return gi_fail(err, "%s: %s: %s is out of range [0, %" PRIu64 "]", where, k->key,
                           shown(text, show, sizeof show), UINT64_MAX);
        *(uint64_t *)field(c, k) = (uint64_t)v;
        return 0;
    }
    case T_FLOAT: {
        char bounds[64];
        format_bounds(k, bounds, sizeof bounds);
        if (looks_non_finite(text))
            return gi_fail(err, "%s: %s: expected a finite number in %s, got '%s'", where, k->key, bounds,
                           shown(text, show, sizeof show));
        /* Decimal notation only: strtod alone would also take hex floats,
         * "inf" and "nan". */
        int digits = 0, ok = text[0] != '\0';
        for (const char *p = text; *p; p++) {
            if (isdigit((unsigned char)*p)) digits = 1;
            else if (!strchr("+-.eE", *p)) ok = 0;
        }
        char *end = NULL;
        errno = 0;
        double v = ok && digits ? strtod(text, &end) : 0;
        if (!ok || !digits || !end || *end)
            return gi_fail(err, "%s: %s: expected a number in %s, got '%s'", where, k->key, bounds,
                           shown(text, show, sizeof show));
        /* Check the value as it will be stored: 1e-50 becomes 0 in a float. */
        float f = (float)v;
        if (!isfinite(v) || fabs(v) > FLT_MAX || !in_bounds(k, (double)f))
            return gi_fail(err, "%s: %s: %s is out of range %s", where, k->key, shown(text, show, sizeof show),
                           bounds);
        *(float *)field(c, k) = f;
        return 0;
    }
    }
    return gi_fail(err, "%s: %s: internal error: unknown key type", where, k->key);
}

/* --------------------------------------------------------------- defaults */

void gi_config_defaults(gi_config *c)
{
    memset(c, 0, sizeof *c);
    /* The defaults go through the same conversion as user values, so a bad
     * default in the table shows up as a test failure (defaults must
     * validate), not as a silently different value. */
    for (int i = 0; i < N_KEYS; i++)
        set_value(c, i, KEYS[i].def, strlen(KEYS[i].def), 1, "default", NULL);
}

/* ------------------------------------------------------------- validation */

/* "file:line", "--set k=v" or, if unknown, the file (or "config"). */
static void where_key(const gi_config *c, const load_ctx *ctx, int idx, char *buf, size_t size)
{
    if (ctx && idx >= 0 && ctx->set[idx])
        snprintf(buf, size, "--set %s", ctx->set[idx]);
    else if (ctx && idx >= 0 && ctx->line[idx] > 0)
        snprintf(buf, size, "%s:%d", ctx->name, ctx->line[idx]);
    else if (ctx && ctx->name && ctx->name[0])
        snprintf(buf, size, "%s", ctx->name);
    else
        snprintf(buf, size, "%s", c->source[0] ? c->source : "config");
}

/* Location for a rule involving keys a and b: whichever was set by the user
 * (the later of the two if both were). */
static void where_pair(const gi_config *c, const load_ctx *ctx, int a, int b, char *buf, size_t size)
{
    int pick = a;
    if (ctx) {
        int a_known = ctx->set[a] || ctx->line[a] > 0, b_known = ctx->set[b] || ctx->line[b] > 0;
        if (!a_known && b_known) pick = b;
        else if (a_known && b_known && !ctx->set[a] && (ctx->set[b] || ctx->line[b] > ctx->line[a])) pick = b;
    }
    where_key(c, ctx, pick, buf, size);
}

static int validate_with(const gi_config *c, const load_ctx *ctx, gi_err *err)
{
    char where[1200];

    /* Each field on its own: a struct filled by code, not by load, gets the
     * same checks as a loaded one. */
    for (int i = 0; i < N_KEYS; i++) {
        const key_spec *k = &KEYS[i];
        const void *p = cfield(c, k);
        char bounds[64];
        where_key(c, ctx, i, where, sizeof where);
        switch (k->type) {
        case T_INT:
            if (!in_bounds(k, *(const int *)p)) {
                format_bounds(k, bounds, sizeof bounds);
                return gi_fail(err, "%s: %s: %d is out of range %s", where, k->key, *(const int *)p, bounds);
            }
            break;
        case T_FLOAT: {
            float v = *(const float *)p;
            if (!isfinite(v) || !in_bounds(k, v)) {
                format_bounds(k, bounds, sizeof bounds);
                return gi_fail(err, "%s: %s: %g is out of range %s", where, k->key, (double)v, bounds);
            }
            break;
        }
        case T_BOOL:
            if (*(const int *)p != 0 && *(const int *)p != 1)
                return gi_fail(err, "%s: %s: %d is not a boolean (0 or 1)", where, k->key, *(const int *)p);
            break;
        case T_ENUM: {
            int v = *(const int *)p, n = 0;
            while (k->names[n]) n++;
            if (v < 0 || v >= n) {
                char names[256];
                list_names(k->names, names, sizeof names);
                return gi_fail(err, "%s: %s: %d is not one of %s", where, k->key, v, names);
            }
            break;
        }
        case T_STRING:
            if (!memchr(p, '\0', k->size))
                return gi_fail(err, "%s: %s: the value does not fit in %zu bytes", where, k->key, k->size - 1);
            break;
        case T_UINT64:
            break;
        }
    }

    /* Rules between keys. */
    int i_lr = find_key("train.lr"), i_min = find_key("train.min_lr");
    if (c->train.min_lr > c->train.lr) {
        where_pair(c, ctx, i_min, i_lr, where, sizeof where);
        return gi_fail(err, "%s: train.min_lr (%g) must not exceed train.lr (%g)", where, (double)c->train.min_lr,
                       (double)c->train.lr);
    }
    int i_val = find_key("train.validation"), i_donor = find_key("train.val_donor");
    if (c->train.val_mode == GI_VAL_DONOR && c->train.val_donor[0] == '\0') {
        where_pair(c, ctx, i_val, i_donor, where, sizeof where);
        return gi_fail(err, "%s: train.validation is 'donor' but train.val_donor is empty; name the donor to hold out",
                       where);
    }
    int i_rd = find_key("render.donor");
    if (c->render.donor[0] == '\0') {
        where_pair(c, ctx, i_rd, i_rd, where, sizeof where);
        return gi_fail(err, "%s: render.donor is empty; use \"average\" or a donor name", where);
    }
    int i_pr = find_key("data.prior"), i_an = find_key("data.anatomy");
    if (c->data.prior == GI_PRIOR_RK && !c->data.anatomy[0]) {
        where_pair(c, ctx, i_pr, i_an, where, sizeof where);
        return gi_fail(err, "%s: data.prior regression_kriging needs data.anatomy (a label image)", where);
    }
    int i_at = find_key("data.anatomy_tolerance"), i_al = find_key("data.anatomy_labels");
    int labels_set = c->data.anatomy_labels[0] && strcmp(c->data.anatomy_labels, "auto") != 0;
    if (!c->data.anatomy[0] && (c->data.anatomy_tolerance > 0 || labels_set)) {
        where_pair(c, ctx, c->data.anatomy_tolerance > 0 ? i_at : i_al, i_an, where, sizeof where);
        return gi_fail(err, "%s: %s has no effect without data.anatomy (the label image samples are matched to)",
                       where, c->data.anatomy_tolerance > 0 ? "data.anatomy_tolerance" : "data.anatomy_labels");
    }
    int i_cf = find_key("data.prior_crossfit"), i_rf = find_key("data.prior_refit");
    if (c->data.prior_crossfit == 1) {
        where_pair(c, ctx, i_cf, i_cf, where, sizeof where);
        return gi_fail(err, "%s: data.prior_crossfit: 1 fold leaves nothing to fit on; use 0 (off) or K >= 2 folds",
                       where);
    }
    if (c->data.prior == GI_PRIOR_NONE && (c->data.prior_crossfit > 0 || c->data.prior_refit)) {
        where_pair(c, ctx, c->data.prior_crossfit > 0 ? i_cf : i_rf, i_pr, where, sizeof where);
        return gi_fail(err, "%s: %s has no effect without data.prior (set data.prior: regression_kriging or kriging)",
                       where, c->data.prior_crossfit > 0 ? "data.prior_crossfit" : "data.prior_refit");
    }
    int i_ls = find_key("data.prior_label_similarity");
    if (c->data.prior_label_similarity && c->data.prior != GI_PRIOR_RK) {
        where_pair(c, ctx, i_ls, i_pr, where, sizeof where);
        return gi_fail(err, "%s: data.prior_label_similarity needs data.prior: regression_kriging (it correlates the "
                       "prior's label effects)", where);
    }
    int i_em = find_key("eval.methods");
    for (const char *p = c->eval.methods; *p;) {
        size_t len = strcspn(p, ",");
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(len < 63 ? len : 63), p);
        char *b = name, *e = name + strlen(name);
        while (*b == ' ') b++;
        while (e > b && e[-1] == ' ') *--e = 0;
        if (gi_method_parse(b) < 0) {
            where_pair(c, ctx, i_em, i_em, where, sizeof where);
            return gi_fail(err, "%s: eval.methods: '%s' is not a method (allowed: inr, nearest, idw, kriging, "
                           "regression_kriging, comma-separated)", where, b);
        }
        p += len;
        if (*p == ',') p++;
    }
    /* render.uncertainty with a method that has no SD (method.h): refused
     * here, before a `run` trains for nothing; the render checks the fitted
     * method itself too (gi_method_has_sd), which decides. */
    int i_un = find_key("render.uncertainty");
    if (c->render.uncertainty) {
        int m = c->render.method, other = -1;
        const char *why = NULL;
        if (m == GI_METHOD_NEAREST || m == GI_METHOD_IDW) {
            why = "has no predictive SD (methods with one: kriging, regression_kriging, and inr with data.prior or "
                  "train.ensemble > 1)";
            other = find_key("render.method");
        } else if ((m == GI_METHOD_KRIGING || m == GI_METHOD_RK) && c->baseline.per_gene) {
            why = "has no predictive SD with baseline.per_gene: true (one factor per gene would have to be kept)";
            other = find_key("baseline.per_gene");
        } else if (m == GI_METHOD_INR && c->data.prior == GI_PRIOR_NONE && c->train.ensemble == 1) {
            why = "has no predictive SD as a single network without data.prior (set data.prior or train.ensemble > 1)";
            other = find_key("data.prior");
        }
        if (why) {
            where_pair(c, ctx, i_un, other, where, sizeof where);
            return gi_fail(err, "%s: render.uncertainty: render.method %s %s; or set render.uncertainty: false", where,
                           GI_METHOD_NAMES[m], why);
        }
    }
    /* uint16 scales each gene by its own range; a 4-D NIfTI has one
     * scl_slope/scl_inter for all its volumes, which would widen every gene's
     * error to the widest gene's range: refused rather than written loosely. */
    if (c->render.dtype == GI_DTYPE_UINT16 && (c->render.nifti & GI_NIFTI_4D)) {
        where_pair(c, ctx, find_key("render.dtype"), find_key("render.nifti"), where, sizeof where);
        return gi_fail(err, "%s: render.dtype uint16 with render.nifti %s: a 4-D NIfTI has one scl_slope for all "
                       "genes, but uint16 scales each gene by its own range; use render.nifti 3d (one file per "
                       "gene, each with its own slope) or none, or render.dtype float32", where,
                       GI_NIFTI_NAMES[c->render.nifti]);
    }
    if (c->render.preview_at[0] && gi_parse_mni_point(c->render.preview_at, NULL) != 0) {
        where_key(c, ctx, find_key("render.preview_at"), where, sizeof where);
        return gi_fail(err, "%s: render.preview_at: '%s' is not \"x,y,z\" (three finite numbers, MNI mm, "
                       "within +-500), or \"\" for the centre of the mask", where, c->render.preview_at);
    }
    return 0;
}

int gi_parse_mni_point(const char *text, double out[3])
{
    double v[3];
    const char *p = text;
    for (int d = 0; d < 3; d++) {
        char *end;
        errno = 0;
        v[d] = strtod(p, &end);
        if (end == p || errno || !isfinite(v[d]) || fabs(v[d]) > 500) return -1;
        while (*end == ' ') end++;
        if (d < 2 && *end != ',') return -1;
        if (d == 2 && *end != '\0') return -1;
        p = end + 1;
    }
    if (out) memcpy(out, v, sizeof v);
    return 0;
}

int gi_config_validate(const gi_config *c, gi_err *err)
{
    return validate_with(c, NULL, err);
}

/* ------------------------------------------------------------ YAML input */

typedef struct parse_state {
    yaml_parser_t parser;
    const char *name;
    gi_config *c;
    load_ctx *ctx;
    gi_err *err;
} parse_state;

static int line_of(const yaml_event_t *ev) { return (int)ev->start_mark.line + 1; }

static int fail_syntax(parse_state *ps)
{
    yaml_parser_t *p = &ps->parser;
    const char *problem = p->problem ? p->problem : "unknown error";
    if (p->error == YAML_READER_ERROR)
        return gi_fail(ps->err, "%s: YAML error at byte %zu: %s", ps->name, p->problem_offset, problem);
    if (p->error == YAML_MEMORY_ERROR) return gi_fail(ps->err, "%s: out of memory while parsing YAML", ps->name);
    if (p->context)
        return gi_fail(ps->err, "%s:%d: YAML syntax error: %s (%s started at line %d)", ps->name,
                       (int)p->problem_mark.line + 1, problem, p->context, (int)p->context_mark.line + 1);
    return gi_fail(ps->err, "%s:%d: YAML syntax error: %s", ps->name, (int)p->problem_mark.line + 1, problem);
}

static int next_event(parse_state *ps, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&ps->parser, ev)) return fail_syntax(ps);
    return 0;
}

static const char *node_kind(const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_MAPPING_START_EVENT: return "a mapping";
    case YAML_SEQUENCE_START_EVENT: return "a list";
    case YAML_ALIAS_EVENT: return "an alias";
    default: return "a value";
    }
}

/* A scalar for key idx, read from the file. */
static int file_scalar(parse_state *ps, int idx, int key_line, const yaml_event_t *val)
{
    char where[1200];
    load_ctx *ctx = ps->ctx;
    if (ctx->line[idx] > 0) {
        snprintf(where, sizeof where, "%s:%d", ps->name, key_line);
        return gi_fail(ps->err, "%s: duplicate key '%s' (first set at line %d)", where, KEYS[idx].key, ctx->line[idx]);
    }
    snprintf(where, sizeof where, "%s:%d", ps->name, line_of(val));
    if (set_value(ps->c, idx, (const char *)val->data.scalar.value, val->data.scalar.length,
                  val->data.scalar.style == YAML_PLAIN_SCALAR_STYLE, where, ps->err))
        return -1;
    ctx->line[idx] = key_line;
    return 0;
}

/* Body of a mapping whose MAPPING_START was consumed; prefix is the dotted
 * path of the mapping ("" at the top). Depth is bounded: a mapping is only
 * entered below a known section name, and sections hold only scalars. */
static int parse_mapping(parse_state *ps, const char *prefix)
{
    for (;;) {
        yaml_event_t kev, vev;
        char where[1200];
        if (next_event(ps, &kev)) return -1;
        if (kev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&kev);
            return 0;
        }
        int key_line = line_of(&kev);
        snprintf(where, sizeof where, "%s:%d", ps->name, key_line);
        if (kev.type != YAML_SCALAR_EVENT) {
            const char *kind = node_kind(&kev);
            yaml_event_delete(&kev);
            return gi_fail(ps->err, "%s: a key must be a plain name, not %s", where, kind);
        }
        char key[256];
        int n = snprintf(key, sizeof key, "%s%s%s", prefix, prefix[0] ? "." : "", (const char *)kev.data.scalar.value);
        int truncated = n < 0 || (size_t)n >= sizeof key || strlen((const char *)kev.data.scalar.value) !=
                                                                  kev.data.scalar.length;
        yaml_event_delete(&kev);

        int idx = truncated ? -1 : find_key(key);
        int sec = (truncated || strchr(key, '.')) ? -1 : find_section(key, strlen(key));
        if (next_event(ps, &vev)) return -1;

        int rc = 0;
        if (idx < 0 && sec < 0) {
            rc = fail_unknown(ps->err, where, key);
        } else if (vev.type == YAML_ALIAS_EVENT) {
            rc = gi_fail(ps->err, "%s: %s: YAML aliases (*name) are not supported here", where, key);
        } else if (idx >= 0) {
            if (vev.type == YAML_SCALAR_EVENT)
                rc = file_scalar(ps, idx, key_line, &vev);
            else
                rc = gi_fail(ps->err, "%s: %s: expected a single value, got %s", where, key, node_kind(&vev));
        } else { /* a section */
            if (ps->ctx->section_line[sec] > 0) {
                rc = gi_fail(ps->err, "%s: duplicate section '%s' (first at line %d)", where, key,
                             ps->ctx->section_line[sec]);
            } else if (vev.type == YAML_MAPPING_START_EVENT) {
                ps->ctx->section_line[sec] = key_line;
                rc = parse_mapping(ps, key);
            } else if (vev.type == YAML_SCALAR_EVENT &&
                       is_plain_null((const char *)vev.data.scalar.value,
                                     vev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE)) {
                ps->ctx->section_line[sec] = key_line; /* "train:" with every key commented out */
            } else {
                char show[80];
                if (vev.type == YAML_SCALAR_EVENT)
                    rc = gi_fail(ps->err, "%s: %s: expected a mapping of %s keys, got '%s'", where, key, key,
                                 shown((const char *)vev.data.scalar.value, show, sizeof show));
                else
                    rc = gi_fail(ps->err, "%s: %s: expected a mapping of %s keys, got %s", where, key, key,
                                 node_kind(&vev));
            }
        }
        yaml_event_delete(&vev);
        if (rc) return rc;
    }
}

/* Parse a whole YAML text (one document, a mapping at the top; an empty
 * stream or an empty document means "all defaults"). */
static int parse_text(parse_state *ps, const char *text)
{
    yaml_event_t ev;
    int rc = 0;
    yaml_parser_set_input_string(&ps->parser, (const unsigned char *)text, strlen(text));

    if (next_event(ps, &ev)) return -1; /* STREAM_START */
    yaml_event_delete(&ev);
    if (next_event(ps, &ev)) return -1;
    if (ev.type == YAML_STREAM_END_EVENT) { /* empty file, or only comments */
        yaml_event_delete(&ev);
        return 0;
    }
    yaml_event_delete(&ev); /* DOCUMENT_START */

    if (next_event(ps, &ev)) return -1;
    int line = line_of(&ev);
    if (ev.type == YAML_MAPPING_START_EVENT) {
        rc = parse_mapping(ps, "");
    } else if (!(ev.type == YAML_SCALAR_EVENT &&
                 is_plain_null((const char *)ev.data.scalar.value, ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE))) {
        char sections[256] = "";
        list_sections(sections, sizeof sections);
        rc = gi_fail(ps->err, "%s:%d: the top level must be a mapping of sections (%s), got %s", ps->name, line,
                     sections, node_kind(&ev));
    }
    yaml_event_delete(&ev);
    if (rc) return rc;

    if (next_event(ps, &ev)) return -1; /* DOCUMENT_END */
    yaml_event_delete(&ev);
    if (next_event(ps, &ev)) return -1;
    if (ev.type != YAML_STREAM_END_EVENT)
        rc = gi_fail(ps->err, "%s:%d: only one YAML document is allowed", ps->name, line_of(&ev));
    yaml_event_delete(&ev);
    return rc;
}

static int parse_yaml(gi_config *c, load_ctx *ctx, const char *text, const char *name, gi_err *err)
{
    parse_state ps = { .name = name, .c = c, .ctx = ctx, .err = err };
    if (!yaml_parser_initialize(&ps.parser)) return gi_fail(err, "%s: cannot initialise the YAML parser", name);
    int rc = parse_text(&ps, text);
    yaml_parser_delete(&ps.parser);
    return rc;
}

/* ------------------------------------------------------------ overrides */

/* The value of a --set, read as one YAML scalar so that quoting behaves as
 * in a file. Returns the event (caller deletes) or -1. */
static int override_scalar(const char *value, const char *where, yaml_event_t *out, int *empty, gi_err *err)
{
    yaml_parser_t p;
    yaml_event_t ev;
    int rc = 0, stage = 0;
    *empty = 0;
    if (!yaml_parser_initialize(&p)) return gi_fail(err, "%s: cannot initialise the YAML parser", where);
    yaml_parser_set_input_string(&p, (const unsigned char *)value, strlen(value));
    /* Expect STREAM_START, [DOCUMENT_START, SCALAR, DOCUMENT_END], STREAM_END. */
    for (;;) {
        if (!yaml_parser_parse(&p, &ev)) {
            rc = gi_fail(err, "%s: not a valid YAML value: %s", where, p.problem ? p.problem : "syntax error");
            break;
        }
        yaml_event_type_t t = ev.type;
        if (t == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&ev);
            if (stage == 0) *empty = 1;
            break;
        }
        if (t == YAML_SCALAR_EVENT && stage == 0) {
            *out = ev; /* ownership moves to the caller */
            stage = 1;
            continue;
        }
        if (t == YAML_MAPPING_START_EVENT || t == YAML_SEQUENCE_START_EVENT || t == YAML_ALIAS_EVENT ||
            t == YAML_SCALAR_EVENT || (t == YAML_DOCUMENT_START_EVENT && stage == 1)) {
            rc = gi_fail(err, "%s: expected a single value, got %s%s", where,
                         t == YAML_SCALAR_EVENT || t == YAML_DOCUMENT_START_EVENT ? "several" : node_kind(&ev),
                         t == YAML_MAPPING_START_EVENT ? " (quote a value that contains ': ')" : "");
            yaml_event_delete(&ev);
            break;
        }
        yaml_event_delete(&ev);
    }
    if (rc && stage == 1) yaml_event_delete(out);
    if (!rc && stage == 0) *empty = 1;
    yaml_parser_delete(&p);
    return rc;
}

static int apply_override(gi_config *c, load_ctx *ctx, const char *ov, gi_err *err)
{
    char where[1200];
    snprintf(where, sizeof where, "--set %s", ov);
    const char *eq = strchr(ov, '=');
    if (!eq) return gi_fail(err, "%s: expected key=value (for example --set train.lr=0.001)", where);
    if (eq == ov) return gi_fail(err, "%s: the key before '=' is empty (for example --set train.lr=0.001)", where);

    char key[256];
    size_t klen = (size_t)(eq - ov);
    if (klen >= sizeof key) return gi_fail(err, "%s: unknown key (too long)", where);
    memcpy(key, ov, klen);
    key[klen] = '\0';
    int idx = find_key(key);
    if (idx < 0) {
        int sec = strchr(key, '.') ? -1 : find_section(key, klen);
        if (sec >= 0) {
            char hint[1024] = "";
            list_section_keys(hint, sizeof hint, sec);
            return gi_fail(err, "%s: '%s' is a section, set one of its keys (%s)", where, key, hint);
        }
        return fail_unknown(err, where, key);
    }

    yaml_event_t ev;
    int empty;
    if (override_scalar(eq + 1, where, &ev, &empty, err)) return -1;
    int rc;
    if (empty) {
        rc = set_value(c, idx, "", 0, 1, where, err);
    } else {
        rc = set_value(c, idx, (const char *)ev.data.scalar.value, ev.data.scalar.length,
                       ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE, where, err);
        yaml_event_delete(&ev);
    }
    if (rc) return rc;
    ctx->set[idx] = ov;
    return 0;
}

/* ---------------------------------------------------------------- loading */

static char *read_file(const char *path, gi_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        gi_fail(err, "%s: cannot open config: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (len + 1 >= cap) {
            char *grown = realloc(buf, cap * 2);
            if (!grown) break;
            buf = grown, cap *= 2;
        }
        size_t got = fread(buf + len, 1, cap - 1 - len, f);
        len += got;
        if (got == 0) break;
    }
    if (!buf || ferror(f) || len + 1 >= cap) {
        int e = errno;
        if (buf && ferror(f))
            gi_fail(err, "%s: cannot read config: %s", path, strerror(e));
        else
            gi_fail(err, "%s: out of memory reading config", path);
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    buf[len] = '\0';
    if (strlen(buf) != len) {
        gi_fail(err, "%s: contains a NUL byte; not a YAML text file", path);
        free(buf);
        return NULL;
    }
    return buf;
}

/* Defaults, then text (if any), then overrides, then validation, all on a
 * private copy that is copied to *c only on success. */
static int load_common(gi_config *c, const char *text, const char *name, const char *source,
                       const char *const *overrides, int n_overrides, gi_err *err)
{
    gi_config *tmp = malloc(sizeof *tmp);
    load_ctx *ctx = calloc(1, sizeof *ctx);
    int rc = -1;
    if (!tmp || !ctx) {
        gi_fail(err, "%s: out of memory", name);
        goto done;
    }
    gi_config_defaults(tmp);
    ctx->name = name;
    if (strlen(source) >= sizeof tmp->source) {
        gi_fail(err, "%.200s...: config file name is longer than %zu bytes", source, sizeof tmp->source - 1);
        goto done;
    }
    strcpy(tmp->source, source);
    if (text && parse_yaml(tmp, ctx, text, name, err)) goto done;
    for (int i = 0; i < n_overrides; i++)
        if (apply_override(tmp, ctx, overrides[i], err)) goto done;
    if (validate_with(tmp, ctx, err)) goto done;
    memcpy(c, tmp, sizeof *c);
    rc = 0;
done:
    free(tmp);
    free(ctx);
    return rc;
}

int gi_config_load(gi_config *c, const char *path, const char *const *overrides, int n_overrides, gi_err *err)
{
    if (n_overrides > 0 && !overrides) return gi_fail(err, "config: %d overrides but no list", n_overrides);
    if (!path) return load_common(c, NULL, "config", "", overrides, n_overrides, err);
    char *text = read_file(path, err);
    if (!text) return -1;
    int rc = load_common(c, text, path, path, overrides, n_overrides, err);
    free(text);
    return rc;
}

int gi_config_load_text(gi_config *c, const char *text, const char *name, gi_err *err)
{
    if (!text) return gi_fail(err, "%s: no config text", name ? name : "config");
    return load_common(c, text, name ? name : "config text", name ? name : "", NULL, 0, err);
}

/* ----------------------------------------------------------------- output */

/* Shortest decimal that reads back (strtod then float) to the same float;
 * 9 significant digits always do. Whole numbers below 1e9 are written
 * without an exponent ("30", not "3e+01"). */
static void format_float(float v, char *buf, size_t size)
{
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, size, "%.*g", prec, (double)v);
        if ((float)strtod(buf, NULL) == v) break;
    }
    const char *e = strchr(buf, 'e');
    if (e) {
        int exp10 = atoi(e + 1);
        if (exp10 >= 0 && exp10 < 9) snprintf(buf, size, "%.*g", exp10 + 1, (double)v);
    }
}

/* Double-quoted YAML string. Bytes >= 0x80 pass through: values that came
 * through libyaml are valid UTF-8 already. Written by hand because libyaml's
 * emitter would also impose its document markers and layout on the dump. */
static void write_quoted(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p == '\n') fputs("\\n", f);
        else if (*p == '\t') fputs("\\t", f);
        else if (*p < 0x20 || *p == 0x7f) fprintf(f, "\\x%02x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

/* The value of key k in c as YAML text (strings quoted). */
static void write_value(FILE *f, const gi_config *c, const key_spec *k)
{
    const void *p = cfield(c, k);
    char buf[64];
    switch (k->type) {
    case T_INT: fprintf(f, "%d", *(const int *)p); break;
    case T_UINT64: fprintf(f, "%" PRIu64, *(const uint64_t *)p); break;
    case T_FLOAT: format_float(*(const float *)p, buf, sizeof buf), fputs(buf, f); break;
    case T_BOOL: fputs(*(const int *)p ? "true" : "false", f); break;
    case T_STRING: write_quoted(f, (const char *)p); break;
    case T_ENUM: {
        int v = *(const int *)p, n = 0;
        while (k->names[n]) n++;
        if (v >= 0 && v < n) fputs(k->names[v], f);
        else fprintf(f, "%d", v); /* invalid; reloading will say so */
        break;
    }
    }
}

char *gi_config_to_yaml(const gi_config *c)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    fputs("# geneinr effective configuration\n", f);
    for (int i = 0; i < N_KEYS; i++) {
        const key_spec *k = &KEYS[i];
        if (is_section_start(i)) fprintf(f, "%.*s:\n", (int)section_len(k->key), k->key);
        fprintf(f, "  %s: ", name_part(k->key));
        write_value(f, c, k);
        fputc('\n', f);
    }
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* The value of k in c as text into buf (truncated to size). */
static void value_text(const gi_config *c, const key_spec *k, char *buf, size_t size)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    buf[0] = '\0';
    if (!f)
        return;
    write_value(f, c, k);
    if (fclose(f) == 0)
        snprintf(buf, size, "%s", text);
    free(text);
}

int gi_config_diff(const gi_config *a, const gi_config *b, const char *prefix, gi_config_diff_fn fn, void *ctx)
{
    int n = 0;
    for (int i = 0; i < N_KEYS; i++) {
        const key_spec *k = &KEYS[i];
        if (prefix && strncmp(k->key, prefix, strlen(prefix)) != 0)
            continue;
        char va[GI_PATH_MAX + 64], vb[GI_PATH_MAX + 64];
        value_text(a, k, va, sizeof va);
        value_text(b, k, vb, sizeof vb);
        if (strcmp(va, vb) != 0) {
            n++;
            if (fn)
                fn(k->key, va, vb, ctx);
        }
    }
    return n;
}

/* A Markdown table cell: '|' would end the cell. */
static void write_cell(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '|') fputc('\\', f);
        fputc(*s, f);
    }
}

void gi_config_print_reference(FILE *f)
{
    gi_config def;
    gi_config_defaults(&def);
    fputs("| key | type | default | allowed | meaning |\n", f);
    fputs("|---|---|---|---|---|\n", f);
    for (int i = 0; i < N_KEYS; i++) {
        const key_spec *k = &KEYS[i];
        char allowed[256];
        switch (k->type) {
        case T_INT:
        case T_FLOAT: format_bounds(k, allowed, sizeof allowed); break;
        case T_UINT64: snprintf(allowed, sizeof allowed, "[0, %" PRIu64 "]", UINT64_MAX); break;
        case T_BOOL: snprintf(allowed, sizeof allowed, "true, false"); break;
        case T_STRING: snprintf(allowed, sizeof allowed, "text, at most %zu bytes", k->size - 1); break;
        case T_ENUM: list_names(k->names, allowed, sizeof allowed); break;
        }
        fprintf(f, "| `%s` | %s | `", k->key, TYPE_NAMES[k->type]);
        write_value(f, &def, k);
        fputs("` | ", f);
        write_cell(f, allowed);
        fputs(" | ", f);
        write_cell(f, k->meaning);
        fputs(" |\n", f);
    }
}

/* ------------------------------------------------------------ key lookup */

const char *gi_config_key_type(const char *key)
{
    int i = key ? find_key(key) : -1;
    return i < 0 ? NULL : TYPE_NAMES[KEYS[i].type];
}

int gi_config_check_override(const char *override, gi_err *err)
{
    gi_config *tmp = malloc(sizeof *tmp);
    load_ctx *ctx = calloc(1, sizeof *ctx);
    int rc = -1;
    if (!tmp || !ctx) {
        gi_fail(err, "out of memory");
    } else {
        gi_config_defaults(tmp);
        ctx->name = "config";
        rc = apply_override(tmp, ctx, override, err);
    }
    free(tmp);
    free(ctx);
    return rc;
}

/* phantom_ahba.c - the phantom written as the Allen Institute publishes AHBA
 * (see gi_phantom_write_ahba in phantom.h), so that `geneinr prepare` can be
 * tested end to end without the real 4 GB download.
 *
 * What the files exercise, each on purpose:
 *  - several probes per gene with different stability: a "good" probe
 *    (strong signal, little noise), a "weak" one (little signal, much noise),
 *    an "absent" one (mostly below background in PACall, removed by the
 *    intensity filter) and one without an Entrez id (removed by the
 *    annotation step); their order of probe ids varies by gene, so the
 *    selection cannot simply take the first;
 *  - filler genes, so that the across-gene normalisation of each sample runs
 *    over a realistic spread of genes (and, with n_probes = 58,692, the size
 *    of the real release);
 *  - about 2% of samples annotated with the structure of the other
 *    hemisphere (dropped by the hemisphere check);
 *  - quoted names holding commas; SampleAnnot's mni_x/y/z off the corrected
 *    coordinates by a donor shift and per-sample jitter, as in the release;
 *    Probes.csv symbols that the reannotation table corrects.
 * Values are deterministic in the seed. Each donor's two matrices are
 * written by one thread, with a hand-written fixed-point formatter (printf
 * would dominate the time at full size).
 */
#include "geneinr/files.h"
#include "geneinr/phantom.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "geneinr/ahba.h"
#include "geneinr/csv.h"
#include "geneinr/genelist.h"
#include "geneinr/grow.h"
#include "geneinr/rng.h"
#include "geneinr/samples.h"

enum { K_GOOD, K_WEAK, K_ABSENT, K_NOENTREZ };
static const double KIND_BASE[4] = {7.0, 5.5, 2.5, 4.0};
static const double KIND_GAIN[4] = {1.0, 0.35, 0.3, 0.0};
static const double KIND_NOISE[4] = {0.25, 0.6, 0.4, 0.5};
static const double KIND_PA[4] = {0.97, 0.85, 0.15, 0.6};

enum {
    ST_AHBA_U = GI_STREAM_PHANTOM + 40,   /* uniforms: kinds, mismatches, slabs, present calls */
    ST_AHBA_N = GI_STREAM_PHANTOM + 41,   /* normals: probe noise, donor effects, jitter */
};

#define N_PHANTOM_LABELS 14
#define FILLERS_SMALL 60
#define MISMATCH_SHARE 0.02

typedef struct aprobe {
    long id;
    char name[48];
    char symbol[32];         /* the symbol the reannotation table gives */
    char own_symbol[32];     /* Probes.csv's (sometimes stale) */
    long entrez;             /* <= 0: none */
    int gene;                /* < n_genes: phantom gene; else filler gene index + n_genes */
    int kind;
    double base, gain;
} aprobe;

typedef struct structure {
    long id;
    char acronym[16];
    char name[96];
    char hemi;               /* 'L', 'R', 0 = none */
    long parent;
    char path[96];
} structure;

typedef struct asample {
    int donor;
    char well[24];
    double xyz[3];           /* corrected (true) MNI */
    double raw[3];           /* SampleAnnot's mni */
    int sidx;                /* index into structures */
} asample;

typedef struct filler { double k[2][3], phase[2], amp2; } filler;

typedef struct writer_ctx {
    const char *dir;
    const gi_phantom_spec *spec;
    aprobe *probes;
    int n_probes;
    asample *smp;
    long n_smp;
    const double *truth;     /* [n_smp][n_genes] */
    const filler *fill;
    int n_genes;
    long donor_ids[6];
    int donor_first[7];
    atomic_int next;
    atomic_int failed;
    pthread_mutex_t lock;
    gi_err err;
} writer_ctx;

/* ---- text output ----------------------------------------------------------- */

/* v with 6 decimals (|v| < 1e9), without printf. Returns the length. */
static int fmt_fixed6(char *out, double v)
{
    char *p = out;
    if (v < 0) {
        *p++ = '-';
        v = -v;
    }
    uint64_t scaled = (uint64_t)(v * 1e6 + 0.5);
    uint64_t ip = scaled / 1000000, fp = scaled % 1000000;
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + ip % 10);
        ip /= 10;
    } while (ip);
    while (n)
        *p++ = tmp[--n];
    *p++ = '.';
    for (int d = 5; d >= 0; d--) {
        p[d] = (char)('0' + fp % 10);
        fp /= 10;
    }
    p += 6;
    return (int)(p - out);
}

/* A CSV text field, always quoted as the Allen files quote strings. */
static void put_quoted(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static FILE *open_out(const char *dir, const char *name, gi_err *err)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        gi_fail(err, "cannot create %s: %s", path, strerror(errno));
    return f;
}

static int close_out(FILE *f, const char *dir, const char *name, gi_err *err)
{
    int bad = ferror(f);
    if (fclose(f) != 0 || bad)
        return gi_fail(err, "writing %s/%s: %s", dir, name, strerror(errno));
    return 0;
}

/* ---- anatomy: the ontology of the phantom's labels --------------------------- */

/* Regions of the phantom, each split into parts and sides. */
static const struct region {
    int label_l, label_r;    /* phantom labels of the left and right side */
    int parts;
    const char *acr, *name;
    const char *path;        /* class path of the parent (abagen's class ids on it) */
    long parent;
    const char *slab;
} REGIONS[] = {
    {1, 2, 6, "CTX", "cortex of the phantom, part", "/4005/4006/4007/4008/", 4008, "CX"},
    {3, 4, 1, "WM", "white matter, cerebral", "/4005/9218/", 9218, "CX"},
    {5, 6, 1, "TH", "thalamus, dorsal", "/4005/4006/4007/4391/", 4391, "SC"},
    {7, 8, 1, "Cd", "caudate nucleus, head", "/4005/4006/4007/4275/", 4275, "SC"},
    {9, 10, 1, "Pu", "putamen, lateral", "/4005/4006/4007/4275/", 4275, "SC"},
    {11, 12, 2, "CbH", "cerebellar hemisphere, lobule", "/4005/4006/4833/4696/", 4696, "CB"},
    {13, 13, 2, "Pons", "pons, basal part", "/4005/4006/4833/9131/", 9131, "BS"},
};
#define N_REGIONS ((int)(sizeof REGIONS / sizeof REGIONS[0]))

static const struct { long id, parent; const char *acr, *name, *path; } TREE[] = {
    {4005, 0, "Br", "brain", "/4005/"},
    {4006, 4005, "GM", "gray matter", "/4005/4006/"},
    {4007, 4006, "Tel", "telencephalon", "/4005/4006/4007/"},
    {4008, 4007, "Cx", "cerebral cortex", "/4005/4006/4007/4008/"},
    {4275, 4007, "CN", "cerebral nuclei", "/4005/4006/4007/4275/"},
    {4391, 4006, "DiE", "diencephalon", "/4005/4006/4007/4391/"},
    {4833, 4006, "MET", "metencephalon", "/4005/4006/4833/"},
    {4696, 4833, "Cb", "cerebellum", "/4005/4006/4833/4696/"},
    {9131, 4833, "P", "pons", "/4005/4006/4833/9131/"},
    {9218, 4005, "WM", "white matter", "/4005/9218/"},
};
#define N_TREE ((int)(sizeof TREE / sizeof TREE[0]))

static int n_structures(void)
{
    int n = 0;
    for (int r = 0; r < N_REGIONS; r++)
        n += 2 * REGIONS[r].parts;
    return n;
}

static void make_structures(structure *st)
{
    int k = 0;
    for (int r = 0; r < N_REGIONS; r++)
        for (int p = 0; p < REGIONS[r].parts; p++)
            for (int side = 0; side < 2; side++, k++) {
                structure *s = &st[k];
                s->id = 12000 + 20 * r + 2 * p + side;
                snprintf(s->acronym, sizeof s->acronym, "%s-%d", REGIONS[r].acr, p + 1);
                snprintf(s->name, sizeof s->name, "%s %d, %s", REGIONS[r].name, p + 1,
                         side ? "right" : "left");
                s->hemi = side ? 'R' : 'L';
                s->parent = REGIONS[r].parent;
                snprintf(s->path, sizeof s->path, "%s%ld/", REGIONS[r].path, s->id);
            }
}

/* Structure index of a point with phantom label lab: region, part, side. */
static int structure_of(int lab, const double *x)
{
    int k = 0;
    for (int r = 0; r < N_REGIONS; r++) {
        if (lab == REGIONS[r].label_l || lab == REGIONS[r].label_r) {
            int part = 0;
            if (REGIONS[r].parts == 6)
                part = (x[1] < -40 ? 0 : x[1] < 10 ? 1 : 2) * 2 + (x[2] >= 20);
            else if (REGIONS[r].parts == 2)
                part = x[2] < -40;
            return k + 2 * part + (x[0] > 0);
        }
        k += 2 * REGIONS[r].parts;
    }
    return x[0] > 0;   /* not reached for labels 1..13: cortex part 1 */
}

static int write_ontology(const char *ddir, const structure *st, int n_st, gi_err *err)
{
    FILE *f = open_out(ddir, "Ontology.csv", err);
    if (!f)
        return -1;
    fprintf(f, "\"id\",\"acronym\",\"name\",\"parent_structure_id\",\"hemisphere\",\"graph_order\","
               "\"structure_id_path\",\"color_hex_triplet\"\n");
    int order = 1;
    for (int i = 0; i < N_TREE; i++, order++) {
        fprintf(f, "%ld,", TREE[i].id);
        put_quoted(f, TREE[i].acr);
        fputc(',', f);
        put_quoted(f, TREE[i].name);
        if (TREE[i].parent)
            fprintf(f, ",%ld,,%d,", TREE[i].parent, order);
        else
            fprintf(f, ",,,%d,", order);
        put_quoted(f, TREE[i].path);
        fprintf(f, ",\"F0F0F0\"\n");
    }
    for (int i = 0; i < n_st; i++, order++) {
        fprintf(f, "%ld,", st[i].id);
        put_quoted(f, st[i].acronym);
        fputc(',', f);
        put_quoted(f, st[i].name);
        fprintf(f, ",%ld,\"%c\",%d,", st[i].parent, st[i].hemi, order);
        put_quoted(f, st[i].path);
        fprintf(f, ",\"%02X%02X%02X\"\n", (int)(st[i].id * 37 % 256), (int)(st[i].id * 91 % 256),
                (int)(st[i].id * 13 % 256));
    }
    return close_out(f, ddir, "Ontology.csv", err);
}

/* ---- probes ------------------------------------------------------------------ */

typedef struct real_probe { char *name, *symbol, *entrez; } real_probe;
typedef struct real_table { real_probe *v; int n; } real_table;

static void real_free(real_table *t)
{
    for (int i = 0; i < t->n; i++) {
        free(t->v[i].name);
        free(t->v[i].symbol);
        free(t->v[i].entrez);
    }
    free(t->v);
    memset(t, 0, sizeof *t);
}

static int read_real_probes(real_table *t, const char *path, gi_err *err)
{
    memset(t, 0, sizeof *t);
    gi_csv *r = gi_csv_open(path, err);
    if (!r)
        return -1;
    char **f;
    int nf, rc, ix[3] = {-1, -1, -1};
    size_t cap = 0;
    rc = gi_csv_next(r, &f, &nf, err);
    static const char *const cols[3] = {"probe_name", "gene_symbol", "entrez_id"};
    for (int k = 0; rc == 1 && k < 3; k++)
        for (int i = 0; i < nf; i++)
            if (!strcmp(f[i], cols[k]))
                ix[k] = i;
    if (rc == 1 && (ix[0] < 0 || ix[1] < 0 || ix[2] < 0))
        rc = gi_fail(err, "%s: needs probe_name, gene_symbol and entrez_id", path);
    while (rc == 1 && (rc = gi_csv_next(r, &f, &nf, err)) == 1) {
        if (nf <= ix[0] || nf <= ix[1] || nf <= ix[2])
            continue;
        if (GI_GROW(t->v, cap, (size_t)t->n + 1)) {
            rc = gi_fail(err, "out of memory");
            break;
        }
        real_probe *q = &t->v[t->n++];
        q->name = strdup(f[ix[0]]);
        q->symbol = strdup(f[ix[1]]);
        q->entrez = strdup(f[ix[2]]);
    }
    gi_csv_close(r);
    if (rc < 0) {
        real_free(t);
        return -1;
    }
    return 0;
}

static double urand(uint64_t seed, uint64_t c) { return gi_rng_uniform(seed, ST_AHBA_U, c); }
static double nrand(uint64_t seed, uint64_t c) { return gi_rng_normal(seed, ST_AHBA_N, c); }

/* Probe list: phantom genes first, then fillers, in ascending probe id. */
static int make_probes(aprobe **out, int *n_out, int *n_fillers, const gi_phantom_spec *spec,
                       const gi_phantom_ahba_spec *a, const real_table *real, char gene_sym[][32],
                       gi_err *err)
{
    int ng = spec->n_genes;
    int total = a->n_probes > 0 ? a->n_probes : 4 * ng + 2 * FILLERS_SMALL;
    if (total < 4 * ng + 3)
        return gi_fail(err, "phantom: --ahba-probes %d is too few for %d genes (at least %d)", total,
                       ng, 4 * ng + 3);
    aprobe *p = calloc((size_t)total, sizeof *p);
    if (!p)
        return gi_fail(err, "phantom: out of memory for %d probes", total);
    uint64_t seed = spec->seed;
    int n = 0, real_pos = 0;
    /* phantom genes: 4 probes, kinds in a per-gene order */
    static const int ORDERS[4][4] = {
        {K_WEAK, K_GOOD, K_ABSENT, K_NOENTREZ}, {K_GOOD, K_ABSENT, K_WEAK, K_NOENTREZ},
        {K_ABSENT, K_NOENTREZ, K_WEAK, K_GOOD}, {K_NOENTREZ, K_WEAK, K_GOOD, K_ABSENT},
    };
    for (int g = 0; g < ng; g++) {
        for (int j = 0; j < 4; j++, n++) {
            aprobe *q = &p[n];
            q->gene = g;
            q->kind = ORDERS[g % 4][j];
            snprintf(q->symbol, sizeof q->symbol, "%s", gene_sym[g]);
            q->entrez = q->kind == K_NOENTREZ ? 0 : 100000 + g;
            snprintf(q->name, sizeof q->name, "A_23_P%06d", 100000 + n);
        }
    }
    /* real names: give each phantom-gene probe a distinct real name */
    if (real)
        for (int g = 0; g < ng; g++) {
            int k = 0;
            for (int i = 0; i < real->n; i++) {
                if (strcmp(real->v[i].symbol, gene_sym[g]) || !strcmp(real->v[i].entrez, "NaN"))
                    continue;
                /* next probe of the gene with an Entrez id and no real name yet */
                while (k < 4 && (p[4 * g + k].kind == K_NOENTREZ))
                    k++;
                if (k >= 4)
                    break;
                snprintf(p[4 * g + k].name, sizeof p[4 * g + k].name, "%s", real->v[i].name);
                p[4 * g + k].entrez = strtol(real->v[i].entrez, NULL, 10);
                k++;
            }
            for (; k < 4; k++)   /* no real probe left: a name the table lacks (dropped) */
                if (p[4 * g + k].kind != K_NOENTREZ)
                    snprintf(p[4 * g + k].name, sizeof p[4 * g + k].name, "CUST_%d_PI41626", 900000 + 4 * g + k);
        }
    /* fillers: groups of up to 3 probes; with a reference, real rows in
     * table order (a group = a run of rows of one symbol) */
    int f = 0;
    const char *prev = NULL;
    int in_group = 0;
    while (n < total) {
        aprobe *q = &p[n];
        if (real) {
            const real_probe *rp = NULL;
            for (int tries = 0; tries < real->n && !rp; tries++) {
                const real_probe *c = &real->v[real_pos++ % real->n];
                int mine = strlen(c->name) >= sizeof q->name || strlen(c->symbol) >= sizeof q->symbol;
                for (int g = 0; g < ng && !mine; g++)
                    mine = !strcmp(c->symbol, gene_sym[g]);
                if (!mine)
                    rp = c;
            }
            if (!rp)
                return free(p), gi_fail(err, "phantom: the reference probe table is empty");
            if (prev && (strcmp(prev, rp->symbol) != 0 || in_group >= 3)) {
                f++;
                in_group = 0;
            }
            prev = rp->symbol;
            snprintf(q->name, sizeof q->name, "%s", rp->name);
            snprintf(q->symbol, sizeof q->symbol, "%s", rp->symbol);
            q->gene = ng + f;
            int na = !strcmp(rp->entrez, "NaN") || !rp->entrez[0];
            double u = urand(seed, 7000000 + (uint64_t)n);
            q->kind = na ? K_NOENTREZ : in_group == 0 ? K_GOOD : u < 0.6 ? K_WEAK : K_ABSENT;
            q->entrez = na ? 0 : strtol(rp->entrez, NULL, 10);
            in_group++;
            n++;
            continue;
        }
        int group = 3;
        if (total - n < group)
            group = total - n;
        for (int j = 0; j < group; j++, n++) {
            q = &p[n];
            q->gene = ng + f;
            double u = urand(seed, 7000000 + (uint64_t)n);
            q->kind = j == 0 ? K_GOOD : u < 0.45 ? K_NOENTREZ : u < 0.75 ? K_WEAK : K_ABSENT;
            snprintf(q->name, sizeof q->name, "%s_%d", j == 2 ? "CUST" : "A_24_P", 200000 + n);
            snprintf(q->symbol, sizeof q->symbol, "F%05d", f + 1);
            q->entrez = q->kind == K_NOENTREZ ? 0 : 500000 + f;
        }
        f++;
    }
    if (real)
        f++;
    /* ids ascending with gaps; levels; Probes.csv's own symbols (5% stale) */
    long id = 1058685;
    for (int i = 0; i < n; i++) {
        aprobe *q = &p[i];
        id += 1 + (long)(40 * urand(seed, 8000000 + (uint64_t)i));
        q->id = id;
        q->base = KIND_BASE[q->kind] + 0.3 * nrand(seed, 8000000 + (uint64_t)i);
        q->gain = KIND_GAIN[q->kind] * (1.0 + 0.1 * nrand(seed, 9000000 + (uint64_t)i));
        if (urand(seed, 9000000 + (uint64_t)i) < 0.05)
            snprintf(q->own_symbol, sizeof q->own_symbol, "LOC%ld", 600000 + q->id % 100000);
        else
            snprintf(q->own_symbol, sizeof q->own_symbol, "%s", q->symbol);
    }
    *out = p;
    *n_out = n;
    *n_fillers = f;
    return 0;
}

static int write_probes(const char *ddir, const aprobe *p, int n, gi_err *err)
{
    FILE *f = open_out(ddir, "Probes.csv", err);
    if (!f)
        return -1;
    fprintf(f, "\"probe_id\",\"probe_name\",\"gene_id\",\"gene_symbol\",\"gene_name\",\"entrez_id\","
               "\"chromosome\"\n");
    for (int i = 0; i < n; i++) {
        char gname[96];
        snprintf(gname, sizeof gname, "%s protein, family %c, member %d", p[i].own_symbol,
                 'A' + p[i].gene % 26, 1 + p[i].gene % 9);
        fprintf(f, "%ld,", p[i].id);
        put_quoted(f, p[i].name);
        fprintf(f, ",%d,", 1000 + p[i].gene);
        put_quoted(f, p[i].own_symbol);
        fputc(',', f);
        put_quoted(f, gname);
        if (p[i].entrez > 0)
            fprintf(f, ",%ld,", p[i].entrez);
        else
            fprintf(f, ",,");
        fprintf(f, "\"%d\"\n", 1 + p[i].gene % 22);
    }
    return close_out(f, ddir, "Probes.csv", err);
}

/* ---- the two matrices of one donor -------------------------------------------- */

static double signal_of(const writer_ctx *w, const aprobe *q, long i, int d)
{
    uint64_t seed = w->spec->seed;
    double z;
    if (q->gene < w->n_genes) {
        z = (w->truth[(size_t)i * w->n_genes + q->gene] - 0.5) / 0.1;
        double off = 0.2 * nrand(seed, 10000000 + (uint64_t)d * 100000 + (uint64_t)q->gene);
        double scale = 1.0 + 0.1 * nrand(seed, 11000000 + (uint64_t)d * 100000 + (uint64_t)q->gene);
        z = off + scale * z;
    } else {
        const filler *fl = &w->fill[q->gene - w->n_genes];
        const double *x = w->smp[i].xyz;
        z = sin(fl->k[0][0] * x[0] + fl->k[0][1] * x[1] + fl->k[0][2] * x[2] + fl->phase[0]) +
            fl->amp2 * sin(fl->k[1][0] * x[0] + fl->k[1][1] * x[1] + fl->k[1][2] * x[2] + fl->phase[1]);
    }
    return z;
}

static int write_donor(writer_ctx *w, int d, gi_err *err)
{
    char ddir[2048];
    snprintf(ddir, sizeof ddir, "%s/normalized_microarray_donor%ld", w->dir, w->donor_ids[d]);
    if (gi_make_dirs(ddir, err) != 0 || write_probes(ddir, w->probes, w->n_probes, err) != 0)
        return -1;
    int n_st = n_structures();
    structure *st = malloc((size_t)n_st * sizeof *st);
    if (!st)
        return gi_fail(err, "out of memory");
    make_structures(st);
    int rc = write_ontology(ddir, st, n_st, err);
    int lo = w->donor_first[d], hi = w->donor_first[d + 1], ns = hi - lo;
    uint64_t seed = w->spec->seed;
    FILE *f = rc == 0 ? open_out(ddir, "SampleAnnot.csv", err) : NULL;
    if (rc == 0 && !f)
        rc = -1;
    if (f) {
        fprintf(f, "\"structure_id\",\"slab_num\",\"well_id\",\"slab_type\",\"structure_acronym\","
                   "\"structure_name\",\"polygon_id\",\"mri_voxel_x\",\"mri_voxel_y\",\"mri_voxel_z\","
                   "\"mni_x\",\"mni_y\",\"mni_z\"\n");
        for (int i = lo; i < hi; i++) {
            const asample *s = &w->smp[i];
            const structure *S = &st[s->sidx];
            int r = 0;
            for (int k = 0, acc = 0; k < N_REGIONS; k++) {
                if (s->sidx < acc + 2 * REGIONS[k].parts) {
                    r = k;
                    break;
                }
                acc += 2 * REGIONS[k].parts;
            }
            fprintf(f, "%ld,%d,%s,\"%s\",", S->id, 1 + (int)(40 * urand(seed, 12000000 + (uint64_t)i)),
                    s->well, REGIONS[r].slab);
            put_quoted(f, S->acronym);
            fputc(',', f);
            put_quoted(f, S->name);
            fprintf(f, ",%ld,%d,%d,%d,%.1f,%.1f,%.1f\n", 900000 + (long)i * 7,
                    (int)(128 - s->raw[0]), (int)(128 + s->raw[1]), (int)(100 + s->raw[2]),
                    s->raw[0], s->raw[1], s->raw[2]);
        }
        if (close_out(f, ddir, "SampleAnnot.csv", err) != 0)
            rc = -1;
    }
    free(st);
    if (rc != 0)
        return -1;
    FILE *fe = open_out(ddir, "MicroarrayExpression.csv", err);
    FILE *fp = fe ? open_out(ddir, "PACall.csv", err) : NULL;
    char *le = malloc((size_t)ns * 16 + 64), *lp = malloc((size_t)ns * 2 + 64);
    if (!fe || !fp || !le || !lp) {
        if (fe)
            fclose(fe);
        if (fp)
            fclose(fp);
        free(le);
        free(lp);
        return fe && fp ? gi_fail(err, "out of memory") : -1;
    }
    setvbuf(fe, NULL, _IOFBF, 1 << 20);
    setvbuf(fp, NULL, _IOFBF, 1 << 20);
    for (int k = 0; k < w->n_probes; k++) {
        const aprobe *q = &w->probes[k];
        int ne = snprintf(le, 32, "%ld", q->id), np = ne;
        memcpy(lp, le, (size_t)ne);
        for (int i = lo; i < hi; i++) {
            uint64_t c = ((uint64_t)k << 22) | (uint64_t)i;
            double v = q->base + q->gain * signal_of(w, q, i, d) + KIND_NOISE[q->kind] * nrand(seed, c);
            le[ne++] = ',';
            ne += fmt_fixed6(le + ne, v);
            lp[np++] = ',';
            lp[np++] = urand(seed, c) < KIND_PA[q->kind] ? '1' : '0';
        }
        le[ne++] = '\n';
        lp[np++] = '\n';
        if (fwrite(le, 1, (size_t)ne, fe) != (size_t)ne || fwrite(lp, 1, (size_t)np, fp) != (size_t)np)
            break;
    }
    free(le);
    free(lp);
    rc = close_out(fe, ddir, "MicroarrayExpression.csv", err);
    if (close_out(fp, ddir, "PACall.csv", rc ? NULL : err) != 0)
        rc = -1;
    return rc;
}

static void *writer_thread(void *arg)
{
    writer_ctx *w = arg;
    for (;;) {
        int d = atomic_fetch_add(&w->next, 1);
        if (d >= 6 || atomic_load(&w->failed))
            break;
        gi_err err = {{0}};
        if (write_donor(w, d, &err) != 0) {
            pthread_mutex_lock(&w->lock);
            if (!atomic_load(&w->failed))
                w->err = err;
            atomic_store(&w->failed, 1);
            pthread_mutex_unlock(&w->lock);
        }
    }
    return NULL;
}

/* ---- the whole release ------------------------------------------------------- */

static int has_annot(const gi_samples *s, const char *name)
{
    for (int a = 0; a < s->n_annot; a++)
        if (!strcmp(s->annot_names[a], name))
            return 1;
    return 0;
}

/* The tissue location of each sample of a realistic phantom, from
 * sample_tissue.csv beside its samples.csv, into xyz[n][3]. */
static int read_tissue(const char *samples_csv, const gi_samples *ps, double *xyz, gi_err *err)
{
    char path[2048];
    const char *slash = strrchr(samples_csv, '/');
    int len = slash ? (int)(slash - samples_csv) : 1;
    snprintf(path, sizeof path, "%.*s/sample_tissue.csv", len, slash ? samples_csv : ".");
    gi_csv *r = gi_csv_open(path, err);
    if (!r)
        return gi_fail_prefix(err, "a realistic phantom needs its sample_tissue.csv");
    char **f;
    int nf, rc = 0;
    long i = 0;
    if (gi_csv_next(r, &f, &nf, err) != 1)
        rc = gi_fail(err, "%s: no header", path);
    while (rc == 0 && (rc = gi_csv_next(r, &f, &nf, err)) == 1) {
        rc = 0;
        if (i >= ps->n || nf < 4 || strcmp(f[0], ps->well_ids[i]) != 0) {
            rc = gi_fail(err, "%s:%ld: not the samples of %s", path, i + 2, samples_csv);
            break;
        }
        for (int k = 0; k < 3; k++)
            xyz[3 * i + k] = strtod(f[1 + k], NULL);
        i++;
    }
    gi_csv_close(r);
    if (rc < 0)
        return -1;
    if (i != ps->n)
        return gi_fail(err, "%s: %ld rows, %s has %d samples", path, i, samples_csv, ps->n);
    return 0;
}


/* With --reference: real well ids and corrected coordinates for the n samples,
 * the real probe table, and the AD gene list's symbols for the phantom genes. */
static int read_reference(const char *ref, asample *smp, long n, real_table *real, gi_genelist *ad,
                          char (*gene_sym)[32], int ng, gi_err *err)
{
    char path[2048];
    int rc = 0;
    snprintf(path, sizeof path, "%s/corrected_mni_coordinates.csv.gz", ref);
    gi_csv *r = gi_csv_open(path, err);
    char **f;
    int nf;
    long i = 0;
    if (!r)
        rc = -1;
    else if (gi_csv_next(r, &f, &nf, err) != 1)
        rc = gi_fail(err, "%s: no header", path);
    while (rc == 0 && i < n && gi_csv_next(r, &f, &nf, err) == 1 && nf >= 4) {
        snprintf(smp[i].well, sizeof smp[i].well, "%s", f[0]);
        for (int k = 0; k < 3; k++)
            smp[i].xyz[k] = strtod(f[1 + k], NULL);
        i++;
    }
    gi_csv_close(r);
    if (rc == 0 && i < n)
        rc = gi_fail(err, "%s: %ld rows, the phantom has %ld samples", path, i, n);
    snprintf(path, sizeof path, "%s/reannotated.csv.gz", ref);
    if (rc == 0)
        rc = read_real_probes(real, path, err);
    snprintf(path, sizeof path, "%s/genes-ad99.txt", ref);
    if (rc == 0 && gi_genelist_read(ad, path, err) == 0) {
        for (int g = 0; g < ng && g < ad->n; g++)
            snprintf(gene_sym[g], sizeof gene_sym[g], "%s", ad->names[g]);
    }
    return rc;
}

/* The filler genes' two plane waves each (40-120 mm) and their amplitude. */
static void make_fillers(filler *fill, int n_fill, uint64_t seed)
{
    for (int f = 0; f < n_fill; f++) {
        for (int t = 0; t < 2; t++) {
            double len = 2 * M_PI / (40.0 + 80.0 * urand(seed, 16000000 + (uint64_t)f * 8 + (uint64_t)t));
            double v[3], norm = 0;
            for (int k = 0; k < 3; k++)
                v[k] = nrand(seed, 16000000 + (uint64_t)f * 8 + (uint64_t)t * 3 + (uint64_t)k), norm += v[k] * v[k];
            norm = sqrt(norm) + 1e-12;
            for (int k = 0; k < 3; k++)
                fill[f].k[t][k] = len * v[k] / norm;
            fill[f].phase[t] = 2 * M_PI * urand(seed, 17000000 + (uint64_t)f * 2 + (uint64_t)t);
        }
        fill[f].amp2 = 0.5 * urand(seed, 18000000 + (uint64_t)f);
    }
}

/* abagen-layout companion tables (when there is no real reference):
 * corrected_mni_coordinates.csv and reannotated.csv. */
static int write_companions(const char *dir, const asample *smp, long n, const aprobe *probes, int n_probes,
                            gi_err *err)
{
    int rc = 0;
    FILE *f = open_out(dir, "corrected_mni_coordinates.csv", err);
    if (!f)
        rc = -1;
    else {
        fprintf(f, "well_id,corrected_mni_x,corrected_mni_y,corrected_mni_z\n");
        for (long i = 0; i < n; i++)
            fprintf(f, "%s,%.17g,%.17g,%.17g\n", smp[i].well, smp[i].xyz[0], smp[i].xyz[1], smp[i].xyz[2]);
        rc = close_out(f, dir, "corrected_mni_coordinates.csv", err);
    }
    f = rc == 0 ? open_out(dir, "reannotated.csv", err) : NULL;
    if (rc == 0 && !f)
        rc = -1;
    if (f) {
        fprintf(f, "probe_name,gene_symbol,entrez_id,allen_entrez_id,compare\n");
        for (int i = 0; i < n_probes; i++) {
            if (probes[i].entrez > 0)
                fprintf(f, "%s,%s,%ld,%ld,1\n", probes[i].name, probes[i].symbol, probes[i].entrez,
                        probes[i].entrez);
            else
                fprintf(f, "%s,%s,NaN,,0\n", probes[i].name, probes[i].symbol);
        }
        rc = close_out(f, dir, "reannotated.csv", err);
    }
    return rc;
}

/* README.txt of the AHBA folders. */
static int write_readme_ahba(const char *dir, const gi_phantom_ahba_spec *a, const gi_samples *ps,
                             const char (*gene_sym)[32], int ng, long n, int n_probes, int n_fill, gi_err *err)
{
    FILE *f = open_out(dir, "README.txt", err);
    if (f) {
        fprintf(f, "The phantom written as the Allen Institute publishes AHBA (geneinr phantom --ahba).\n\n"
                   "normalized_microarray_donor<ID>/  MicroarrayExpression.csv, PACall.csv (no header;\n"
                   "    probe_id then one value per sample), Probes.csv, SampleAnnot.csv, Ontology.csv\n"
                   "%s\n"
                   "%ld samples, %d probes: 4 per phantom gene (a good, a weak, an absent one failing the\n"
                   "presence calls, one without an Entrez id, in a per-gene order) and %d filler genes.\n"
                   "About %.0f%% of samples carry the structure of the other hemisphere (dropped by prepare).\n"
                   "Phantom genes and their symbols here:\n",
                a->reference ? "Real well ids, corrected coordinates, symbols and probe names from the reference\n"
                               "folder; use its corrected_mni_coordinates.csv.gz and reannotated.csv.gz."
                             : "corrected_mni_coordinates.csv, reannotated.csv: the companion tables in abagen's layout.",
                n, n_probes, n_fill, 100 * MISMATCH_SHARE);
        for (int g = 0; g < ng; g++)
            fprintf(f, "  %s = %s\n", ps->gene_names[g], gene_sym[g]);
        return close_out(f, dir, "README.txt", err);
    }
    return -1;
}

int gi_phantom_write_ahba(const char *dir, const gi_phantom_spec *spec, const gi_phantom_ahba_spec *a,
                          gi_err *err)
{
    int ng = spec->n_genes, rc = 0;
    uint64_t seed = spec->seed;
    gi_samples ps = {0};
    real_table real = {0};
    gi_genelist ad = {0};
    aprobe *probes = NULL;
    asample *smp = NULL;
    double *truth = NULL, *xyz = NULL;
    int *labels = NULL;
    filler *fill = NULL;
    char (*gene_sym)[32] = calloc((size_t)ng, sizeof *gene_sym);
    int n_probes = 0, n_fill = 0;
    long n = 0;
    if (!gene_sym)
        return gi_fail(err, "out of memory");
    if (gi_make_dirs(dir, err) != 0 || gi_samples_read_csv(&ps, a->samples_csv, err) != 0) {
        free(gene_sym);
        return -1;
    }
    n = ps.n;
    smp = calloc((size_t)n, sizeof *smp);
    xyz = malloc((size_t)n * 3 * sizeof *xyz);
    labels = malloc((size_t)n * sizeof *labels);
    truth = malloc((size_t)n * ng * sizeof *truth);
    if (!smp || !xyz || !labels || !truth)
        rc = gi_fail(err, "out of memory");
    for (int g = 0; g < ng; g++)
        snprintf(gene_sym[g], sizeof gene_sym[g], "%s", ps.gene_names[g]);
    /* Locations and well ids: the phantom's, or the real ones. */
    if (rc == 0 && a->reference) {
        rc = read_reference(a->reference, smp, n, &real, &ad, gene_sym, ng, err);
    } else if (rc == 0) {
        for (long i = 0; i < n; i++) {
            snprintf(smp[i].well, sizeof smp[i].well, "%s", ps.well_ids[i]);
            for (int k = 0; k < 3; k++)
                smp[i].xyz[k] = ps.mni[3 * i + k];
        }
    }
    writer_ctx w = {.dir = dir, .spec = spec, .n_genes = ng};
    if (rc == 0) {
        if (ps.n_donors != 6)
            rc = gi_fail(err, "%s: %d donors, the AHBA release has 6", a->samples_csv, ps.n_donors);
        for (int d = 0; rc == 0 && d < 6; d++) {
            w.donor_ids[d] = gi_ahba_donor_id(ps.donor_names[d]);
            if (w.donor_ids[d] < 0)
                rc = gi_fail(err, "%s: donor '%s' is not an AHBA donor", a->samples_csv, ps.donor_names[d]);
        }
        /* samples of a donor are contiguous in the phantom's table */
        for (long i = 1; rc == 0 && i < n; i++)
            if (ps.donor[i] < ps.donor[i - 1])
                rc = gi_fail(err, "%s: donors are not contiguous", a->samples_csv);
    }
    if (rc == 0) {
        for (int d = 0, i = 0; d <= 6; d++) {
            while (i < n && ps.donor[i] < d)
                i++;
            w.donor_first[d] = d == 6 ? (int)n : i;
        }
        for (long i = 0; i < n; i++) {
            smp[i].donor = ps.donor[i];
            if (smp[i].xyz[0] == 0)
                smp[i].xyz[0] = 1e-3;   /* the release has no sample on x = 0 */
            memcpy(xyz + 3 * i, smp[i].xyz, sizeof smp[i].xyz);
        }
        /* A realistic phantom (class column): the values and structures are
         * the tissue's (sample_tissue.csv), the coordinates stay where
         * registration put them. */
        if (!a->reference && has_annot(&ps, "class"))
            rc = read_tissue(a->samples_csv, &ps, xyz, err);
        if (rc == 0)
            rc = gi_phantom_truth_at(spec, n, xyz, truth, labels, err);
    }
    if (rc == 0) {
        for (long i = 0; i < n; i++) {
            asample *s = &smp[i];
            s->sidx = structure_of(labels[i], xyz + 3 * i);
            if (urand(seed, 13000000 + (uint64_t)i) < MISMATCH_SHARE)
                s->sidx ^= 1;   /* the other side's structure: contradicts x */
            for (int k = 0; k < 3; k++)
                s->raw[k] = s->xyz[k] + 1.5 * nrand(seed, 14000000 + (uint64_t)s->donor * 4 + (uint64_t)k) +
                            0.8 * nrand(seed, 15000000 + (uint64_t)i * 4 + (uint64_t)k);
        }
        rc = make_probes(&probes, &n_probes, &n_fill, spec, a, a->reference ? &real : NULL, gene_sym, err);
    }
    if (rc == 0 && !(fill = malloc((size_t)(n_fill ? n_fill : 1) * sizeof *fill)))
        rc = gi_fail(err, "out of memory");
    if (rc == 0)
        make_fillers(fill, n_fill, seed);
    /* abagen-layout companion tables, when there is no real reference */
    if (rc == 0 && !a->reference)
        rc = write_companions(dir, smp, n, probes, n_probes, err);
    if (rc == 0) {
        w.probes = probes;
        w.n_probes = n_probes;
        w.smp = smp;
        w.n_smp = n;
        w.truth = truth;
        w.fill = fill;
        atomic_init(&w.next, 0);
        atomic_init(&w.failed, 0);
        pthread_mutex_init(&w.lock, NULL);
        int nt = a->threads > 0 ? a->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
        if (nt < 1)
            nt = 1;
        if (nt > 6)
            nt = 6;
        pthread_t th[6];
        int started = 0;
        for (int t = 1; t < nt; t++)
            if (pthread_create(&th[started], NULL, writer_thread, &w) == 0)
                started++;
        writer_thread(&w);
        for (int t = 0; t < started; t++)
            pthread_join(th[t], NULL);
        pthread_mutex_destroy(&w.lock);
        if (atomic_load(&w.failed)) {
            *err = w.err;
            rc = -1;
        }
    }
    if (rc == 0)
        rc = write_readme_ahba(dir, a, &ps, (const char (*)[32])gene_sym, ng, n, n_probes, n_fill, err);
    free(gene_sym);
    free(probes);
    free(smp);
    free(xyz);
    free(labels);
    free(truth);
    free(fill);
    real_free(&real);
    gi_genelist_free(&ad);
    gi_samples_free(&ps);
    return rc;
}

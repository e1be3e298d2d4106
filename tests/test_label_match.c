/* test_label_match.c - sample -> label matching on hand-built grids (label_match.h). */
#include "check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "geneinr/label_match.h"
#include "geneinr/rng.h"

/* An anatomy in memory: nx^3 voxels of 0, affine A (row-major 4x4). */
static void grid(gi_anatomy *a, int n, const double A[16])
{
    memset(a, 0, sizeof *a);
    a->vol.nx = a->vol.ny = a->vol.nz = n;
    memcpy(a->vol.affine, A, sizeof(double) * 16);
    a->vol.data = calloc((size_t)n * n * n, sizeof(float));
    gi_affine_invert(A, a->inv);
}

static void put(gi_anatomy *a, int i, int j, int k, int value)
{
    a->vol.data[((size_t)k * a->vol.ny + j) * a->vol.nx + i] = (float)value;
}

/* The label list from the image (as gi_anatomy_load derives it). */
static void finish(gi_anatomy *a)
{
    int seen[1001] = {0}, n = 1;
    size_t nv = (size_t)a->vol.nx * a->vol.ny * a->vol.nz;
    for (size_t v = 0; v < nv; v++)
        seen[(int)a->vol.data[v]] = 1;
    a->values = malloc(sizeof(int) * 1001);
    a->values[0] = 0;
    for (int l = 1; l <= 1000; l++)
        if (seen[l])
            a->values[n++] = l;
    a->n_labels = n;
}

static void free_anat(gi_anatomy *a)
{
    free(a->vol.data);
    free(a->values);
}

static const double IDENTITY[16] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1};

/* One point matched; returns the label value (0 = none), how and distance. */
static int match1(const gi_anatomy *a, double x, double y, double z, const char *cls, const char *hemi,
                  const gi_label_table *t, double tol, int *how, float *dist)
{
    float p[3] = {(float)x, (float)y, (float)z};
    const char *cl[1] = {cls}, *he[1] = {hemi};
    gi_label_match m;
    gi_err err;
    if (gi_label_match_points(&m, a, 1, p, cls ? cl : NULL, cls ? he : NULL, t, tol, &err) != 0) {
        printf("# %s\n", err.msg);
        return -1;
    }
    int v = a->values[m.label[0]];
    if (how) *how = m.how[0];
    if (dist) *dist = m.dist_mm[0];
    gi_label_match_free(&m);
    return v;
}

static void test_distance(void)
{
    gi_anatomy a;
    grid(&a, 20, IDENTITY);
    for (int i = 5; i <= 7; i++)
        for (int j = 5; j <= 7; j++)
            for (int k = 5; k <= 7; k++)
                put(&a, i, j, k, 10);
    finish(&a);
    int how;
    float d;
    CHECK(match1(&a, 6, 6, 6, NULL, NULL, NULL, 2, &how, &d) == 10 && how == GI_MATCH_VOXEL && d == 0,
          "a sample in its own labelled voxel takes that label (by voxel)");
    int v = match1(&a, 4, 6, 6, NULL, NULL, NULL, 2, &how, &d);
    CHECKF(v == 10 && how == GI_MATCH_DISTANCE && fabsf(d - 1) < 1e-5f, "a sample 1 mm outside a label matches it "
           "(tolerance 2)", "label %d how %d distance %g", v, how, d);
    v = match1(&a, 3.7, 6, 6, NULL, NULL, NULL, 2, &how, &d);
    CHECKF(v == 10 && fabsf(d - 1.3f) < 1e-5f, "distance is to the voxel centre, from the sample's point",
           "label %d distance %g", v, d);
    v = match1(&a, 1, 6, 6, NULL, NULL, NULL, 2, &how, &d);
    CHECKF(v == 0 && how == GI_MATCH_NONE && isnan(d), "a sample 4 mm away is beyond a 2 mm tolerance",
           "label %d how %d", v, how);
    CHECK(match1(&a, 1, 6, 6, NULL, NULL, NULL, 4, &how, &d) == 10 && fabsf(d - 4) < 1e-5f,
          "... and within a 4 mm one (the boundary counts)");
    CHECK(match1(&a, 4, 6, 6, NULL, NULL, NULL, 0, &how, NULL) == 0 && how == GI_MATCH_NONE,
          "tolerance 0: an unlabelled voxel stays unmatched");
    CHECK(match1(&a, 6, 6, -3, NULL, NULL, NULL, 9, &how, &d) == 10 && fabsf(d - 8) < 1e-5f,
          "a sample outside the image reaches in (8 mm, tolerance 9)");
    CHECK(match1(&a, 6, 6, -3, NULL, NULL, NULL, 7.9, &how, NULL) == 0, "... but not beyond the tolerance");

    /* Tolerance 0 is the voxel rule exactly, at random points in and around the image. */
    int same = 1;
    for (int q = 0; q < 2000 && same; q++) {
        float p[3];
        for (int d3 = 0; d3 < 3; d3++)
            p[d3] = (float)(gi_rng_uniform(7, 1, (uint64_t)(3 * q + d3)) * 24 - 2);
        gi_label_match m;
        gi_err err;
        same = gi_label_match_points(&m, &a, 1, p, NULL, NULL, NULL, 0, &err) == 0 &&
               m.label[0] == gi_anatomy_index_at(&a, p[0], p[1], p[2]) &&
               m.how[0] == (m.label[0] ? GI_MATCH_VOXEL : GI_MATCH_NONE);
        gi_label_match_free(&m);
    }
    CHECK(same, "tolerance 0 without a label table = gi_anatomy_index_at (today's voxel rule) at 2000 points");
    free_anat(&a);
}

static void test_ties(void)
{
    gi_anatomy a;
    grid(&a, 20, IDENTITY);
    /* 50 two voxels to the left, 60 one voxel to the right: both 1 mm from
     * (3, 15, 10); 60's centroid is nearer, so 60 wins despite its higher value. */
    put(&a, 1, 15, 10, 50);
    put(&a, 2, 15, 10, 50);
    put(&a, 4, 15, 10, 60);
    /* 70 and 80 single voxels either side of (16, 15, 10): same centroid distance: the lower value. */
    put(&a, 15, 15, 10, 80);
    put(&a, 17, 15, 10, 70);
    finish(&a);
    int v1 = match1(&a, 3, 15, 10, NULL, NULL, NULL, 2, NULL, NULL);
    int v2 = match1(&a, 16, 15, 10, NULL, NULL, NULL, 2, NULL, NULL);
    CHECKF(v1 == 60, "tie at equal distance: the label whose centroid is nearest", "got %d", v1);
    CHECKF(v2 == 70, "tie at equal distance and centroid distance: the lowest label value", "got %d", v2);
    int again = 1;
    for (int r = 0; r < 5; r++)
        again &= match1(&a, 3, 15, 10, NULL, NULL, NULL, 2, NULL, NULL) == 60 &&
                 match1(&a, 16, 15, 10, NULL, NULL, NULL, 2, NULL, NULL) == 70;
    CHECK(again, "ties resolve the same way every time");
    free_anat(&a);
}

static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

static void test_class(void)
{
    char path[512];
    const char *tmp = getenv("TESTTMP") ? getenv("TESTTMP") : "/tmp";
    snprintf(path, sizeof path, "%s/labels_%d.csv", tmp, (int)getpid());
    write_text(path, "id,label,hemisphere,structure\n10,ctxL,L,cortex\n20,ctxR,R,cortex\n"
                     "30,stem,B,subcortex/brainstem\n40,putL,L,subcortex/brainstem\n99,unused,B,other\n");
    gi_label_table t;
    gi_err err;
    CHECKF(gi_label_table_read(&t, path, &err) == 0 && t.n == 5 && t.hemi[2] == 'B' &&
           strcmp(t.structure[3], "subcortex/brainstem") == 0, "an abagen label table reads", "%s", err.msg);
    gi_anatomy a;
    grid(&a, 20, IDENTITY);
    for (int j = 5; j <= 7; j++)
        put(&a, 7, j, 6, 10);   /* left cortex, 2 mm from (9, 6, 6) */
    put(&a, 10, 6, 6, 20);      /* right cortex, 1 mm */
    put(&a, 9, 6, 7, 30);       /* brainstem (B), 1 mm */
    put(&a, 9, 5, 6, 40);       /* left subcortex, 1 mm */
    finish(&a);
    int how;
    float d;
    int v = match1(&a, 9, 6, 6, "cortex", "L", &t, 3, &how, &d);
    CHECKF(v == 10 && fabsf(d - 2) < 1e-5f, "a left cortical sample takes the left cortical label, not the nearer "
           "right cortical or subcortical ones", "got %d at %g mm", v, d);
    v = match1(&a, 9, 6, 6, NULL, NULL, NULL, 3, NULL, NULL);
    CHECKF(v == 20 || v == 30 || v == 40, "without the class rule the nearest label wins", "got %d", v);
    CHECK(match1(&a, 10, 6, 6, "cortex", "L", &t, 0, &how, NULL) == 0 && how == GI_MATCH_NONE,
          "tolerance 0: a left cortical sample in a right cortical voxel is unmatched");
    v = match1(&a, 10, 6, 6, "cortex", "L", &t, 3, &how, &d);
    CHECKF(v == 10 && how == GI_MATCH_DISTANCE && fabsf(d - 3) < 1e-5f,
           "... and with tolerance 3 reaches the left cortical label 3 mm away", "got %d at %g", v, d);
    CHECK(match1(&a, 9, 6, 6, "subcortex/brainstem", "R", &t, 1.5, NULL, NULL) == 30,
          "a bilateral (B) label is compared on structure only");
    CHECK(match1(&a, 9, 6, 6, "subcortex/brainstem", "L", &t, 1.5, NULL, NULL) != 20,
          "a subcortical sample never takes a cortical label");
    CHECK(match1(&a, 10, 6, 6, "", "", &t, 0, NULL, NULL) == 20, "a sample without class is unconstrained");
    CHECK(match1(&a, 10, 6, 6, "cortex", "R", &t, 0, &how, NULL) == 20 && how == GI_MATCH_VOXEL,
          "a right cortical sample in its right cortical voxel keeps it");
    {
        float p[6] = {9, 6, 6, 10, 6, 6};
        const char *cl[2] = {"cortex", ""}, *he[2] = {"L", ""};
        gi_label_match m;
        int rc = gi_label_match_points(&m, &a, 2, p, cl, he, &t, 3, &err);
        CHECKF(rc == 0 && m.sum.constrained == 1 && m.sum.by_voxel == 1 && m.sum.by_distance == 1 &&
               m.sum.none == 0 && m.sum.table_unused == 1 && m.sum.class_rule == 1,
               "the summary counts by voxel, by distance, constrained, table ids not in the image",
               "rc %d constrained %d voxel %d distance %d unused %d", rc, m.sum.constrained, m.sum.by_voxel,
               m.sum.by_distance, m.sum.table_unused);
        if (rc == 0)
            gi_label_match_free(&m);
    }
    gi_label_table_free(&t);

    /* An image label missing from the table is an error. */
    write_text(path, "id,label,hemisphere,structure\n10,ctxL,L,cortex\n20,ctxR,R,cortex\n");
    CHECK(gi_label_table_read(&t, path, &err) == 0, "a table without some image labels reads");
    {
        float p[3] = {9, 6, 6};
        const char *cl[1] = {"cortex"}, *he[1] = {"L"};
        gi_label_match m;
        int rc = gi_label_match_points(&m, &a, 1, p, cl, he, &t, 3, &err);
        CHECKF(rc != 0 && strstr(err.msg, "label 30") && strstr(err.msg, "not in the label table"),
               "... but matching with it names the image label it lacks", "%s", err.msg);
    }
    gi_label_table_free(&t);
    free_anat(&a);

    /* Bad tables: file:line messages. */
    static const struct { const char *text, *want, *name; } BAD[] = {
        {"id,label,structure\n1,a,cortex\n", ":1:", "a table without a hemisphere column"},
        {"id,label,hemisphere,structure\n1,a,L,cortex\n1,b,R,cortex\n", ":3: id 1 appears twice", "a duplicate id"},
        {"id,label,hemisphere,structure\n1,a,X,cortex\n", ":2: hemisphere 'X'", "a bad hemisphere"},
        {"id,label,hemisphere,structure\nfoo,a,L,cortex\n", ":2: id 'foo'", "a non-numeric id"},
    };
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        write_text(path, BAD[i].text);
        int rc = gi_label_table_read(&t, path, &err);
        char name[128];
        snprintf(name, sizeof name, "error: %s (file:line)", BAD[i].name);
        CHECKF(rc != 0 && strstr(err.msg, BAD[i].want), name, "rc %d: %s", rc, rc ? err.msg : "");
    }
    remove(path);
}

static void test_affine(void)
{
    /* LAS, 2 mm voxels: x = -2 i + 38, y = 2 j - 20, z = 2 k - 20. */
    static const double LAS[16] = {-2, 0, 0, 38, 0, 2, 0, -20, 0, 0, 2, -20, 0, 0, 0, 1};
    gi_anatomy a;
    grid(&a, 20, LAS);
    put(&a, 5, 5, 5, 7);   /* centre (28, -10, -10) mm */
    finish(&a);
    int how;
    float d;
    CHECK(match1(&a, 28, -10, -10, NULL, NULL, NULL, 0, &how, NULL) == 7 && how == GI_MATCH_VOXEL,
          "LAS 2 mm: the voxel's centre is in it");
    CHECK(match1(&a, 28.9, -9.1, -10.9, NULL, NULL, NULL, 0, NULL, NULL) == 7, "LAS 2 mm: so is a point 0.9 mm off");
    int v = match1(&a, 28, -10, -13, NULL, NULL, NULL, 3.5, &how, &d);
    CHECKF(v == 7 && how == GI_MATCH_DISTANCE && fabsf(d - 3) < 1e-5f, "LAS 2 mm: a point 3 mm away matches "
           "at 3 mm (distance in mm, not voxels)", "label %d distance %g", v, d);
    CHECK(match1(&a, 28, -10, -13, NULL, NULL, NULL, 2.9, NULL, NULL) == 0, "LAS 2 mm: ... not within 2.9 mm");
    v = match1(&a, 24, -10, -10, NULL, NULL, NULL, 4, &how, &d);
    CHECKF(v == 7 && fabsf(d - 4) < 1e-5f, "LAS 2 mm: along the flipped x axis too", "label %d distance %g", v, d);
    free_anat(&a);
}

static void test_speed(void)
{
    /* 3,702 samples at 5 mm on a 1 mm grid (a DK-sized image, 150^3) with
     * sparse labels, so most samples search their whole box. */
    gi_anatomy a;
    grid(&a, 150, IDENTITY);
    for (int k = 0; k < 150; k += 9)
        for (int j = 0; j < 150; j += 9)
            for (int i = 0; i < 150; i += 9)
                put(&a, i, j, k, 1 + (i + j + k) % 80);
    finish(&a);
    int n = 3702;
    float *p = malloc(sizeof(float) * 3 * n);
    for (int q = 0; q < 3 * n; q++)
        p[q] = (float)(gi_rng_uniform(3, 2, (uint64_t)q) * 160 - 5);
    gi_label_match m;
    gi_err err;
    clock_t t0 = clock();
    int rc = gi_label_match_points(&m, &a, n, p, NULL, NULL, NULL, 5, &err);
    double sec = (double)(clock() - t0) / CLOCKS_PER_SEC;
    CHECKF(rc == 0 && sec < 1.0, "3,702 samples at 5 mm on a 150^3 1 mm grid in under a second", "%.2f s", sec);
    printf("# %.3f s: %d by voxel, %d by distance, %d not at all\n", sec, m.sum.by_voxel, m.sum.by_distance,
           m.sum.none);
    /* Brute force check of a few against every voxel. */
    int ok = 1;
    for (int q = 0; q < n && ok; q += 97) {
        double best = INFINITY;
        for (int k = 0; k < 150; k += 9)
            for (int j = 0; j < 150; j += 9)
                for (int i = 0; i < 150; i += 9) {
                    double d = sqrt((i - p[3 * q]) * (i - p[3 * q]) + (j - p[3 * q + 1]) * (j - p[3 * q + 1]) +
                                    (k - p[3 * q + 2]) * (k - p[3 * q + 2]));
                    if (d < best)
                        best = d;
                }
        if (m.how[q] == GI_MATCH_VOXEL)
            ok = best <= 0.87;
        else if (best <= 5)
            ok = m.how[q] == GI_MATCH_DISTANCE && fabs(m.dist_mm[q] - best) < 1e-4;
        else
            ok = m.how[q] == GI_MATCH_NONE;
    }
    CHECK(ok, "the box search finds the same nearest distance as a search over every voxel");
    if (rc == 0)
        gi_label_match_free(&m);
    free(p);
    free_anat(&a);
}

/* data.anatomy_labels: "auto" finds the CSV beside the image (abagen's and the phantoms' naming), or none. */
static void test_table_path(void)
{
    const char *tmp = getenv("TESTTMP") ? getenv("TESTTMP") : "/tmp";
    gi_config c;
    memset(&c, 0, sizeof c);
    char img[GI_PATH_MAX], csv[GI_PATH_MAX], out[GI_PATH_MAX];
    snprintf(img, sizeof img, "%s/tp_atlas-dk.nii.gz", tmp);
    snprintf(csv, sizeof csv, "%s/tp_atlas-dk.csv", tmp);
    remove(csv);
    snprintf(c.data.anatomy, sizeof c.data.anatomy, "%s", img);
    snprintf(c.data.anatomy_labels, sizeof c.data.anatomy_labels, "auto");
    CHECK(gi_label_table_path(&c, out, sizeof out) == 0 && out[0] == 0, "auto without a CSV beside the image: no table");
    FILE *f = fopen(csv, "w");
    if (f) {
        fputs("id,label,hemisphere,structure\n1,a,L,cortex\n", f);
        fclose(f);
    }
    CHECK(gi_label_table_path(&c, out, sizeof out) == 1 && strcmp(out, csv) == 0,
          "auto finds NAME.csv beside NAME.nii.gz");
    snprintf(c.data.anatomy, sizeof c.data.anatomy, "%s/tp_atlas-dk.nii", tmp);
    CHECK(gi_label_table_path(&c, out, sizeof out) == 1 && strcmp(out, csv) == 0, "... and beside NAME.nii");
    snprintf(c.data.anatomy_labels, sizeof c.data.anatomy_labels, "/some/table.csv");
    CHECK(gi_label_table_path(&c, out, sizeof out) == 1 && strcmp(out, "/some/table.csv") == 0,
          "a path is taken as it is");
    c.data.anatomy_labels[0] = 0;
    CHECK(gi_label_table_path(&c, out, sizeof out) == 0, "\"\" = no table");
    remove(csv);
}

int main(void)
{
    test_distance();
    test_ties();
    test_class();
    test_affine();
    test_speed();
    test_table_path();
    return check_summary();
}

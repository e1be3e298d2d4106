/* test_prepare.c - the pieces of `geneinr prepare` that are easiest to get
 * subtly wrong: the scaled robust sigmoid (against numpy's numbers), the
 * matrix reader's number parsing (exactly strtod's, quoted fields, CRLF, a
 * missing last line end, errors with file:line), gene lists and the AHBA
 * donor names. The whole pipeline is checked against the numpy reference in
 * tests/it_prepare.sh. */
#include "check.h"
#include "geneinr/ahba.h"
#include "geneinr/genelist.h"
#include "geneinr/prepare.h"
#include "geneinr/rng.h"
#include "../src/prepare/prep.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[1024];

static const char *put(const char *name, const char *text)
{
    static char path[8][1200];
    static int slot;
    char *p = path[slot++ % 8];
    snprintf(p, sizeof path[0], "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (!f) {
        perror(p);
        exit(2);
    }
    fputs(text, f);
    fclose(f);
    return p;
}

static void test_srs(void)
{
    /* numpy: median, np.percentile (linear), logistic, min-max */
    double v[8] = {3, 1, 4, 1, 5, 9, 2, 6}, tmp[8];
    static const double want[8] = {0.28509607156831523, 0.0, 0.44087131933786633, 0.0,
                                   0.5910519274458027, 1.0, 0.1349154634603789, 0.7259673909061815};
    gi_srs(v, 8, NULL, tmp);
    double worst = 0;
    for (int i = 0; i < 8; i++)
        worst = fmax(worst, fabs(v[i] - want[i]));
    CHECKF(worst < 1e-12, "srs equals numpy's (ties, even count, linear quartiles)", "off by %g", worst);

    double w[8] = {3, 1, 4, 1, 5, 9, 2, 6};
    static const unsigned char fit[8] = {1, 1, 1, 1, 0, 0, 1, 1};
    static const double want_fit[8] = {0.4620673425883495, 0.0, 0.6849402514980012, 0.0,
                                       0.8668683676814344, 1.1824986252517984, 0.22287290890965133, 1.0};
    gi_srs(w, 8, fit, tmp);
    worst = 0;
    for (int i = 0; i < 8; i++)
        worst = fmax(worst, fabs(w[i] - want_fit[i]));
    CHECKF(worst < 1e-12, "srs fitted on a subset applies to all (held-out values may leave [0, 1])",
           "off by %g", worst);

    double c[4] = {2, 2, 2, 2};
    gi_srs(c, 4, NULL, tmp);
    CHECK(isnan(c[0]) && isnan(c[3]), "srs of a constant vector is NaN (abagen drops the gene)");
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* numpy's linear percentile from a sorted copy. */
static double pct_sorted(const double *s, int n, double q)
{
    double h = (n - 1) * q;
    int lo = (int)floor(h);
    return lo + 1 < n ? s[lo] + (s[lo + 1] - s[lo]) * (h - lo) : s[lo];
}

static void test_srs_sizes(void)
{
    /* Every length 2..200, with ties: SRS from quartiles by selection equals
     * SRS from a full sort. */
    double worst = 0;
    int bad_n = 0;
    for (int n = 2; n <= 200; n++) {
        double v[200], w[200], sorted[200], tmp[200];
        for (int i = 0; i < n; i++)
            v[i] = w[i] = floor(gi_rng_uniform(9, (uint64_t)n, (uint64_t)i) * (n % 7 + 3));
        memcpy(sorted, v, sizeof v);
        qsort(sorted, (size_t)n, sizeof *sorted, cmp_d);
        double med = pct_sorted(sorted, n, 0.5), q1 = pct_sorted(sorted, n, 0.25), q3 = pct_sorted(sorted, n, 0.75);
        double sd = (q3 - q1) / 1.3489795003921634, lo = INFINITY, hi = -INFINITY;
        for (int i = 0; i < n; i++) {
            w[i] = 1 / (1 + exp(-(w[i] - med) / sd));
            lo = fmin(lo, w[i]), hi = fmax(hi, w[i]);
        }
        gi_srs(v, n, NULL, tmp);
        for (int i = 0; i < n; i++) {
            double want = (w[i] - lo) / (hi - lo);
            double d = isnan(want) && isnan(v[i]) ? 0 : fabs(v[i] - want);
            if (!(d <= worst))
                worst = d, bad_n = n;
        }
    }
    CHECKF(worst < 1e-12, "srs by selection equals srs by sorting for lengths 2..200 with ties",
           "off by %g at length %d", worst, bad_n);
}

typedef struct rows { int n; double sum; char last[64]; double v[8]; } rows;

static int on_row(void *ctx, long line, const char *probe, const double *v, int n, gi_err *err)
{
    (void)line, (void)err;
    rows *r = ctx;
    r->n++;
    snprintf(r->last, sizeof r->last, "%s", probe);
    for (int i = 0; i < n && i < 8; i++)
        r->v[i] = v[i], r->sum += v[i];
    return 0;
}

static int on_row_exact(void *ctx, long line, const char *probe, const double *v, int n, gi_err *err)
{
    (void)line, (void)probe;
    const double *want = ctx;
    for (int i = 0; i < n; i++)
        if (v[i] != want[i])
            return gi_fail(err, "value %d: %.17g, strtod %.17g", i, v[i], want[i]);
    return 0;
}

static void test_matrix(void)
{
    gi_err err = {{0}};
    rows r = {0};
    const char *p = put("m1.csv", "1058685,2.5,-0.125,1e-3\r\n\"1058686\",\"3\",4.75,1E2\n\n1058687,0,0.0,-7");
    long nrows = 0;
    int rc = gi_ahba_read_matrix(p, 3, on_row, &r, &nrows, NULL, &err);
    CHECKF(rc == 0 && nrows == 3 && r.n == 3 && !strcmp(r.last, "1058687") && r.v[2] == -7 &&
               fabs(r.sum - (2.5 - 0.125 + 1e-3 + 3 + 4.75 + 100 + 0 + 0 - 7)) < 1e-12,
           "matrix rows: CRLF, quoted fields, blank lines, exponents, no final line end",
           "rc %d rows %ld sum %.17g: %s", rc, nrows, r.sum, err.msg);

    /* Exactly strtod's double for many random decimals (the fast path and its fallback). */
    enum { N = 2000 };
    static double want[N];
    static char line[N * 32 + 64];
    char *q = line + sprintf(line, "1");
    for (int i = 0; i < N; i++) {
        double x = (gi_rng_uniform(5, 1, (uint64_t)i) - 0.3) * pow(10, (int)(gi_rng_uniform(5, 2, (uint64_t)i) * 30) - 12);
        int digits = 1 + (int)(gi_rng_uniform(5, 3, (uint64_t)i) * 20);
        char num[40];
        snprintf(num, sizeof num, i % 3 ? "%.*g" : "%.*f", i % 3 ? digits : digits % 12, x);
        want[i] = strtod(num, NULL);
        q += sprintf(q, ",%s", num);
    }
    sprintf(q, "\n");
    p = put("m2.csv", line);
    rc = gi_ahba_read_matrix(p, N, on_row_exact, want, NULL, NULL, &err);
    CHECKF(rc == 0, "numbers parse to exactly strtod's double (2,000 random decimals)", "%s", err.msg);

    p = put("m3.csv", "1,2,3\n2,4\n");
    rc = gi_ahba_read_matrix(p, 2, on_row, &r, NULL, NULL, &err);
    CHECKF(rc != 0 && strstr(err.msg, "m3.csv:2: row has 1 values but SampleAnnot.csv lists 2 samples"),
           "a short row is an error naming file:line", "%s", err.msg);
    p = put("m4.csv", "1,2,x3\n");
    rc = gi_ahba_read_matrix(p, 2, on_row, &r, NULL, NULL, &err);
    CHECKF(rc != 0 && strstr(err.msg, "m4.csv:1: field 3 ('x3') is not a number"),
           "text in a matrix is an error naming file:line and field", "%s", err.msg);
    /* Non-finite values (issue 27): NaN once spun the rank-tie loop of the
     * default probe selection, and the mean selection left a donor empty. */
    static const char *const bad[] = {"nan", "NaN", "-inf", "inf", "infinity", "1e999", "-4e38"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[128], want[160];
        snprintf(text, sizeof text, "1058685,1.5,2\n\"1058686\",3,%s\n", bad[i]);
        p = put("m6.csv", text);
        rc = gi_ahba_read_matrix(p, 2, on_row, &r, NULL, NULL, &err);
        snprintf(want, sizeof want, "m6.csv:2: field 3 ('%s') is not a finite number (probe 1058686, sample column 2)",
                 bad[i]);
        CHECKF(rc != 0 && strstr(err.msg, want), "a non-finite matrix value is refused naming file:line, probe and sample",
               "'%s': %s", bad[i], err.msg);
    }
    p = put("m7.csv", "1058685,1.5,,2\n");
    rc = gi_ahba_read_matrix(p, 3, on_row, &r, NULL, NULL, &err);
    CHECKF(rc != 0 && strstr(err.msg, "m7.csv:1: field 3 ('') is not a number (probe 1058685, sample column 2)"),
           "an empty matrix cell is refused naming the probe and sample", "%s", err.msg);
    p = put("m8.csv", "1058685;1.5;2\n");
    rc = gi_ahba_read_matrix(p, 2, on_row, &r, NULL, NULL, &err);
    CHECKF(rc != 0 && strstr(err.msg, "m8.csv:1:") && strstr(err.msg, "looks ';'-delimited"),
           "a ';'-delimited matrix is named as such", "%s", err.msg);
    p = put("m9.csv", "1058685\t1.5\t2\n");
    rc = gi_ahba_read_matrix(p, 2, on_row, &r, NULL, NULL, &err);
    CHECKF(rc != 0 && strstr(err.msg, "looks tab-delimited"), "a tab-delimited matrix is named as such", "%s", err.msg);
    p = put("m5.csv", "");
    rc = gi_ahba_read_matrix(p, 2, on_row, &r, NULL, NULL, &err);
    CHECKF(rc != 0 && strstr(err.msg, "no rows"), "an empty matrix is an error", "%s", err.msg);
}

static void test_genelist_and_donors(void)
{
    gi_err err = {{0}};
    gi_genelist l;
    const char *p = put("g1.txt", "# AD genes\nAPOE\n  TREM2 \r\n\nBIN1\n");
    int rc = gi_genelist_read(&l, p, &err);
    CHECKF(rc == 0 && l.n == 3 && !strcmp(l.names[1], "TREM2") && l.lines[2] == 5 &&
               gi_genelist_find(&l, "BIN1") == 2 && gi_genelist_find(&l, "CLU") == -1,
           "gene list: comments, blanks, CRLF and spaces", "%s", err.msg);
    if (rc == 0)
        gi_genelist_free(&l);
    p = put("g2.txt", "APOE\nBIN1\nAPOE\n");
    rc = gi_genelist_read(&l, p, &err);
    CHECKF(rc != 0 && strstr(err.msg, "g2.txt:3: gene 'APOE' is listed twice (also at line 1)"),
           "a gene listed twice is an error naming both lines", "%s", err.msg);
    p = put("g3.txt", "# nothing\n");
    rc = gi_genelist_read(&l, p, &err);
    CHECKF(rc != 0 && strstr(err.msg, "empty"), "an empty gene list is an error", "%s", err.msg);

    CHECK(!strcmp(gi_ahba_donor_name("9861"), "H0351.2001") &&
              !strcmp(gi_ahba_donor_name("H0351.1016"), "H0351.1016") &&
              gi_ahba_donor_id("H0351.1009") == 12876 && gi_ahba_donor_name("1234") == NULL,
          "AHBA donors by number and by name");

    gi_ahba_donor *d;
    int n;
    rc = gi_ahba_find_donors(dir, &d, &n, &err);
    CHECKF(rc != 0 && strstr(err.msg, "holds no normalized_microarray_donor"),
           "a data folder without donor folders is an error saying what it needs", "%s", err.msg);
    char sub[1200];
    snprintf(sub, sizeof sub, "%s/normalized_microarray_donor15697", dir);
    mkdir(sub, 0777);
    snprintf(sub, sizeof sub, "%s/normalized_microarray_donor9861", dir);
    mkdir(sub, 0777);
    rc = gi_ahba_find_donors(dir, &d, &n, &err);
    CHECKF(rc == 0 && n == 2 && d[0].id == 9861 && !strcmp(d[1].name, "H0351.1016"),
           "donor folders in numeric order (9861 before 15697)", "%s", err.msg);
    if (rc == 0)
        gi_ahba_free_donors(d, n);

    /* Links (issue 27): to a folder fine; dangling or a loop an error, never skipped. */
    char link[1200], target[1200];
    snprintf(link, sizeof link, "%s/normalized_microarray_donor10021", dir);
    snprintf(target, sizeof target, "%s/normalized_microarray_donor9861", dir);
    int lrc = symlink(target, link);
    rc = gi_ahba_find_donors(dir, &d, &n, &err);
    CHECKF(lrc == 0 && rc == 0 && n == 3 && d[1].id == 10021, "a symbolic link to a donor folder is a donor",
           "%s", err.msg);
    if (rc == 0)
        gi_ahba_free_donors(d, n);
    unlink(link);
    snprintf(target, sizeof target, "%s/no-such-folder", dir);
    lrc = symlink(target, link);
    rc = gi_ahba_find_donors(dir, &d, &n, &err);
    CHECKF(lrc == 0 && rc != 0 && strstr(err.msg, "normalized_microarray_donor10021: a dangling symbolic link"),
           "a dangling donor link is an error naming it", "%s", err.msg);
    unlink(link);
    lrc = symlink(link, link);   /* a loop of one */
    rc = gi_ahba_find_donors(dir, &d, &n, &err);
    CHECKF(lrc == 0 && rc != 0 && strstr(err.msg, "normalized_microarray_donor10021: a symbolic link loop"),
           "a donor link loop is an error naming it", "%s", err.msg);
    unlink(link);
    FILE *f = fopen(link, "w");
    if (f)
        fclose(f);
    rc = gi_ahba_find_donors(dir, &d, &n, &err);
    CHECKF(rc != 0 && strstr(err.msg, "normalized_microarray_donor10021 is not a folder"),
           "a file named like a donor folder is an error", "%s", err.msg);
    unlink(link);
}

/* The rank-tie loop of differential stability ends for any values (issue 27). */
static void test_subset_ranks(void)
{
    /* x sorted by perm with NaN last (the comparator's total order) */
    double x[5] = {2, NAN, 1, 2, NAN};
    uint16_t perm[5] = {2, 0, 3, 1, 4};
    int pos[5] = {0, 1, 2, 3, 4};
    double rk[5] = {0};
    prep_subset_ranks(x, perm, 5, pos, rk);
    CHECKF(rk[2] == 1 && rk[0] == 2.5 && rk[3] == 2.5 && rk[1] == 4 && rk[4] == 5,
           "subset ranks: ties share their mean rank, each NaN ranks alone (and the loop ends)",
           "%g %g %g %g %g", rk[0], rk[1], rk[2], rk[3], rk[4]);
    int pos2[5] = {-1, 0, 1, -1, 2};
    prep_subset_ranks(x, perm, 5, pos2, rk);
    CHECKF(rk[1] == 1 && rk[0] == 2 && rk[2] == 3, "subset ranks of a subset (members only)",
           "%g %g %g", rk[0], rk[1], rk[2]);
}

int main(void)
{
    const char *base = getenv("TESTTMP");
    snprintf(dir, sizeof dir, "%s/test_prepare.XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(dir)) {
        perror(dir);
        return 2;
    }
    test_srs();
    test_srs_sizes();
    test_matrix();
    test_genelist_and_donors();
    test_subset_ranks();
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return check_summary();
}

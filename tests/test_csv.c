/* test_csv.c - the CSV reader and writer (csv.c), the sample table (samples.c)
 * and the point tables of `geneinr predict` (points.c).
 *
 * Every input is written to a private temporary folder ($TESTTMP if set,
 * else /tmp) so the test needs no files of its own.
 */
#include "check.h"
#include "geneinr/csv.h"
#include "geneinr/points.h"
#include "geneinr/samples.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

static char tmpdir[1024];

static const char *tmp_path(const char *name)
{
    static char buf[8][1200];
    static int slot;
    char *p = buf[slot++ % 8];
    snprintf(p, sizeof buf[0], "%s/%s", tmpdir, name);
    return p;
}

static void write_file(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(2);
    }
    fwrite(text, 1, len, f);
    fclose(f);
}

static const char *put(const char *name, const char *text)
{
    const char *p = tmp_path(name);
    write_file(p, text, strlen(text));
    return p;
}

/* Read a whole CSV into a flat "f1|f2;f1|f2;" description with the start
 * line of each record ("@3:a|b;"), or "ERR:<message>". */
static char *describe(const char *path)
{
    static char out[4096];
    gi_err err = {{0}};
    out[0] = 0;
    gi_csv *r = gi_csv_open(path, &err);
    if (!r) {
        snprintf(out, sizeof out, "ERR:%s", err.msg);
        return out;
    }
    char **f;
    int n, rc;
    size_t len = 0;
    while ((rc = gi_csv_next(r, &f, &n, &err)) == 1) {
        len += (size_t)snprintf(out + len, sizeof out - len, "@%ld:", gi_csv_line(r));
        for (int i = 0; i < n; i++)
            len += (size_t)snprintf(out + len, sizeof out - len, "%s%s", i ? "|" : "", f[i]);
        len += (size_t)snprintf(out + len, sizeof out - len, ";");
    }
    if (rc < 0)
        snprintf(out, sizeof out, "ERR:%s", err.msg);
    gi_csv_close(r);
    return out;
}

static void expect(const char *name, const char *path, const char *want)
{
    const char *got = describe(path);
    CHECKF(strcmp(got, want) == 0, name, "got \"%s\", want \"%s\"", got, want);
}

static void expect_error(const char *name, const char *path, const char *fragment)
{
    const char *got = describe(path);
    CHECKF(strncmp(got, "ERR:", 4) == 0 && strstr(got, fragment), name,
           "got \"%s\", want an error containing \"%s\"", got, fragment);
}

static void test_csv_reader(void)
{
    expect("csv: plain records", put("a.csv", "a,b,c\n1,2,3\n"), "@1:a|b|c;@2:1|2|3;");
    expect("csv: no final newline", put("b.csv", "a,b\n1,2"), "@1:a|b;@2:1|2;");
    expect("csv: empty fields", put("c.csv", ",a,,\n"), "@1:|a||;");
    expect("csv: quoted field with commas", put("d.csv", "x,\"a, b, c\",y\n"),
           "@1:x|a, b, c|y;");
    expect("csv: escaped quotes", put("e.csv", "\"he said \"\"hi\"\"\",\"\"\"\"\n"),
           "@1:he said \"hi\"|\";");
    expect("csv: empty quoted field", put("f.csv", "\"\",a\n"), "@1:|a;");
    expect("csv: embedded newline keeps line numbers",
           put("g.csv", "h1,h2\n\"line one\nline two\",x\nnext,row\n\"a\r\nb\",c\nlast,1\n"),
           "@1:h1|h2;@2:line one\nline two|x;@4:next|row;@5:a\r\nb|c;@7:last|1;");
    expect("csv: CRLF line ends", put("h.csv", "a,b\r\n1,2\r\n\"q\",3\r\n"),
           "@1:a|b;@2:1|2;@3:q|3;");
    expect("csv: lone CR line ends", put("i.csv", "a,b\r1,2\r"), "@1:a|b;@2:1|2;");
    expect("csv: BOM skipped", put("j.csv", "\xEF\xBB\xBFwell_id,x\n1,2\n"),
           "@1:well_id|x;@2:1|2;");
    expect("csv: blank lines skipped", put("k.csv", "\n\na,b\n\n\r\n1,2\n\n"),
           "@3:a|b;@6:1|2;");
    expect("csv: empty file", put("l.csv", ""), "");
    expect("csv: BOM only", put("m.csv", "\xEF\xBB\xBF"), "");

    /* A record longer than the 128 KiB input block and a field longer than
     * any fixed buffer. */
    {
        size_t n = 300000;
        char *big = malloc(n + 16);
        memcpy(big, "k,\"", 3);
        for (size_t i = 0; i < n; i++)
            big[3 + i] = (char)('a' + i % 26);
        memcpy(big + 3 + n, "\",z\n", 5);
        const char *p = tmp_path("big.csv");
        write_file(p, big, strlen(big));
        gi_err err = {{0}};
        gi_csv *r = gi_csv_open(p, &err);
        char **f;
        int nf = 0;
        int rc = r ? gi_csv_next(r, &f, &nf, &err) : -1;
        CHECKF(rc == 1 && nf == 3 && strlen(f[1]) == n && f[1][n - 1] == big[3 + n - 1] &&
               strcmp(f[2], "z") == 0, "csv: 300 kB field", "rc=%d nf=%d", rc, nf);
        gi_csv_close(r);
        free(big);
    }

    /* gzip input, written with zlib; with a BOM and CRLF inside. */
    {
        const char *p = tmp_path("z.csv.gz");
        gzFile gz = gzopen(p, "wb");
        const char *text = "\xEF\xBB\xBF" "a,b\r\n\"x,y\",\"multi\nline\"\r\n3,4\r\n";
        gzwrite(gz, text, (unsigned)strlen(text));
        gzclose(gz);
        expect("csv: gzip input", p, "@1:a|b;@2:x,y|multi\nline;@4:3|4;");

        /* The same file cut short must be an error, not a silent short read. */
        FILE *f = fopen(p, "rb");
        char buf[256];
        size_t len = fread(buf, 1, sizeof buf, f);
        fclose(f);
        write_file(tmp_path("cut.csv.gz"), buf, len - 6);
        expect_error("csv: truncated gzip is an error", tmp_path("cut.csv.gz"), "truncated");
    }

    expect_error("csv: unterminated quote names its line",
                 put("u.csv", "a,b\n1,2\n3,\"open\nstill open\n"), "u.csv:3: unterminated quoted field");
    expect_error("csv: stray quote in unquoted field", put("s.csv", "a,b\nx,ab\"c\n"),
                 "s.csv:2: stray quote");
    expect_error("csv: text after closing quote", put("t.csv", "a\n\"x\"y,1\n"),
                 "t.csv:2: unexpected character after closing quote");
    expect_error("csv: missing file", tmp_path("does-not-exist.csv"),
                 "does-not-exist.csv");

    /* Another delimiter (issue 27): said so by the one reader, for every table. */
    expect_error("csv: a ';'-delimited file is named as such", put("sc.csv", "well_id;donor;mni_x\nw;d;1\n"),
                 "sc.csv:1: the first row is not comma-separated but holds ';': the file looks ';'-delimited");
    expect_error("csv: a tab-delimited file is named as such", put("tb.csv", "\n\"well_id\"\tdonor\n"),
                 "tb.csv:2: the first row is not comma-separated but holds TABs: the file looks tab-delimited");
    expect_error("csv: a quoted ';'-delimited header is named as such", put("sq.csv", "\"well_id\";\"donor\"\n"),
                 "sq.csv:1: the first row is not comma-separated but holds ';'");
    expect("csv: ';' inside a comma-separated header is fine", put("ok.csv", "a;b,c\n1,2\n"), "@1:a;b|c;@2:1|2;");
    expect("csv: ';' in a later one-field row is fine", put("ok2.csv", "a\nx;y\n"), "@1:a;@2:x;y;");
    {
        gi_table t;
        gi_err err = {{0}};
        int rc = gi_table_open(&t, put("st.csv", "well_id;donor;mni_x;mni_y;mni_z;G1\n"), &err);
        CHECKF(rc != 0 && strstr(err.msg, "looks ';'-delimited") && strstr(err.msg, "reads comma-separated files"),
               "table: a ';'-delimited header is named, not a missing column", "%s", err.msg);
        gi_samples s;
        rc = gi_samples_read_csv(&s, put("st2.csv", "well_id\tdonor\tmni_x\tmni_y\tmni_z\tG1\nw\td\t1\t2\t3\t4\n"),
                                 &err);
        CHECKF(rc != 0 && strstr(err.msg, "st2.csv:1:") && strstr(err.msg, "looks tab-delimited"),
               "samples: a tab-delimited table is named, not a missing column", "%s", err.msg);
    }
}

/* ---- samples ------------------------------------------------------------------ */

static void test_samples_read(void)
{
    const char *p = put("s1.csv",
        "donor,mni_z,well_id,structure_acronym,mni_x,GENE_A,mni_y,hemisphere,\"GENE,B\",GENE_C\n"
        "H0351.2002,-10.5,w1,\"STG, left\",-50.25,1.5,3,L,,2\n"
        "H0351.2001,0,w2,CA1,12,NaN,-4e1,R,7,nan\n"
        "H0351.2002,1e-3,w3,,0,NA,0.125,L,N/A,-3.25\n"
        "\n"
        "H0351.2009,7,\"w\n4\",Pu,1,0,2,R,1e10,0\n");
    gi_samples s;
    gi_err err = {{0}};
    int rc = gi_samples_read_csv(&s, p, &err);
    CHECKF(rc == 0, "samples: read a small table", "%s", err.msg);
    if (rc)
        return;
    CHECK(s.n == 4 && s.n_genes == 3 && s.n_annot == 2 && s.n_donors == 3, "samples: counts");
    CHECK(strcmp(s.gene_names[0], "GENE_A") == 0 && strcmp(s.gene_names[1], "GENE,B") == 0 &&
          strcmp(s.gene_names[2], "GENE_C") == 0, "samples: gene names in column order");
    CHECK(strcmp(s.annot_names[0], "structure_acronym") == 0 &&
          strcmp(s.annot_names[1], "hemisphere") == 0, "samples: annotation names");
    CHECK(strcmp(s.annot[0 * 2 + 0], "STG, left") == 0 && strcmp(s.annot[2 * 2 + 0], "") == 0 &&
          strcmp(s.annot[3 * 2 + 1], "R") == 0, "samples: annotation text");
    CHECK(strcmp(s.well_ids[0], "w1") == 0 && strcmp(s.well_ids[3], "w\n4") == 0,
          "samples: well ids");
    CHECK(s.mni[0] == -50.25f && s.mni[1] == 3.0f && s.mni[2] == -10.5f &&
          s.mni[3] == 12.0f && s.mni[4] == -40.0f && s.mni[5] == 0.0f &&
          s.mni[8] == 1e-3f, "samples: coordinates as x, y, z");
    CHECK(strcmp(s.donor_names[0], "H0351.2002") == 0 &&
          strcmp(s.donor_names[1], "H0351.2001") == 0 &&
          strcmp(s.donor_names[2], "H0351.2009") == 0, "samples: donors in order of appearance");
    CHECK(s.donor[0] == 0 && s.donor[1] == 1 && s.donor[2] == 0 && s.donor[3] == 2,
          "samples: donor indices");
    CHECK(gi_samples_donor_index(&s, "H0351.2001") == 1 &&
          gi_samples_donor_index(&s, "H0351.9999") == -1, "samples: donor_index");
    const float *v = s.values;
    CHECK(v[0] == 1.5f && isnan(v[1]) && v[2] == 2.0f && isnan(v[3]) && v[4] == 7.0f &&
          isnan(v[5]) && isnan(v[6]) && isnan(v[7]) && v[8] == -3.25f && v[10] == 1e10f,
          "samples: values and NaN spellings");
    CHECKF(gi_samples_n_measured(&s) == 7, "samples: n_measured", "got %ld",
           gi_samples_n_measured(&s));
    gi_samples_free(&s);
    gi_samples_free(&s);   /* freeing twice is harmless: the struct was zeroed */
    CHECK(s.n == 0 && s.values == NULL, "samples: free zeroes the struct");

    /* The table written by gzip is read the same way. */
    const char *gzp = tmp_path("s1.csv.gz");
    gzFile gz = gzopen(gzp, "wb");
    const char *text = "well_id,donor,mni_x,mni_y,mni_z,G\r\na,d,1,2,3,4\r\n";
    gzwrite(gz, text, (unsigned)strlen(text));
    gzclose(gz);
    rc = gi_samples_read_csv(&s, gzp, &err);
    CHECKF(rc == 0 && s.n == 1 && s.values[0] == 4.0f, "samples: gzip table", "%s", err.msg);
    gi_samples_free(&s);
}

static void expect_samples_error(const char *name, const char *file, const char *text,
                                 const char *fragment)
{
    gi_samples s;
    gi_err err = {{0}};
    const char *p = put(file, text);
    int rc = gi_samples_read_csv(&s, p, &err);
    CHECKF(rc == -1 && strstr(err.msg, fragment) && s.n == 0 && s.values == NULL, name,
           "rc=%d, message \"%s\", want \"%s\"", rc, err.msg, fragment);
    gi_samples_free(&s);
}

static void test_samples_errors(void)
{
    /* Free is safe on a zeroed struct and leaves it zeroed, so a second free
     * (every error path frees) is safe too; and on a table that was read. */
    static const gi_samples zeroed;
    gi_samples zero = {0};
    gi_samples_free(&zero);
    gi_samples_free(&zero);
    CHECK(memcmp(&zero, &zeroed, sizeof zero) == 0, "samples: free on a zeroed struct leaves it zeroed");
    gi_samples read;
    gi_err err = {{0}};
    int rc = gi_samples_read_csv(&read, put("z.csv", "well_id,donor,mni_x,mni_y,mni_z,G\nw,d,1,2,3,4\n"), &err);
    gi_samples_free(&read);
    CHECKF(rc == 0 && memcmp(&read, &zeroed, sizeof read) == 0, "samples: free of a read table zeroes it", "%s",
           err.msg);

    expect_samples_error("samples: the donor name 'average' is reserved (render.donor: average)", "e0.csv",
                         "well_id,donor,mni_x,mni_y,mni_z,G\nw,d,1,2,3,4\nw2,average,1,2,3,5\n",
                         "e0.csv:3: column 'donor': the name 'average' is reserved");
    expect_samples_error("samples: missing required column", "e1.csv",
                         "well_id,donor,mni_x,mni_z,G\nw,d,1,2,3\n",
                         "e1.csv:1: missing required column 'mni_y'");
    expect_samples_error("samples: bad number names line and column", "samples.csv",
                         "well_id,donor,mni_x,mni_y,mni_z,G\nw,d,1,2,3,4\nw2,d,1,abc,3,4\n",
                         "samples.csv:3: column 'mni_y': 'abc' is not a number");
    expect_samples_error("samples: bad gene value", "e2.csv",
                         "well_id,donor,mni_x,mni_y,mni_z,G1,G2\nw,d,1,2,3,4,5x\n",
                         "e2.csv:2: column 'G2': '5x' is not a number");
    expect_samples_error("samples: padded number rejected", "e3.csv",
                         "well_id,donor,mni_x,mni_y,mni_z,G1\nw,d,1,2,3, 4\n",
                         "e3.csv:2: column 'G1': ' 4' is not a number");
    expect_samples_error("samples: infinite value rejected", "e4.csv",
                         "well_id,donor,mni_x,mni_y,mni_z,G1\nw,d,1,2,3,inf\n",
                         "e4.csv:2: column 'G1': 'inf' is not a finite number");
    expect_samples_error("samples: value beyond float range", "e5.csv",
                         "well_id,donor,mni_x,mni_y,mni_z,G1\nw,d,1,2,3,1e300\n",
                         "e5.csv:2: column 'G1': '1e300' is beyond the range of a float");
    expect_samples_error("samples: NaN coordinate rejected", "e6.csv",
                         "well_id,donor,mni_x,mni_y,mni_z,G1\nw,d,1,NaN,3,1\n",
                         "e6.csv:2: column 'mni_y': 'NaN' is not a finite number");
    expect_samples_error("samples: empty coordinate rejected", "e7.csv",
                         "well_id,donor,mni_x,mni_y,mni_z,G1\nw,d,,2,3,1\n",
                         "e7.csv:2: column 'mni_x': empty");
    expect_samples_error("samples: ragged row", "e8.csv",
                         "well_id,donor,mni_x,mni_y,mni_z,G1,G2\nw,d,1,2,3,1,2\n"
                         "\"multi\nline\",d,1,2,3,1,2\nw3,d,1,2,3,1\n",
                         "e8.csv:5: row has 6 fields but the header has 7");
    expect_samples_error("samples: duplicate gene", "e9.csv",
                         "well_id,donor,mni_x,mni_y,mni_z,APOE,G2,APOE\nw,d,1,2,3,1,2,3\n",
                         "e9.csv:1: duplicate gene 'APOE' (columns 6 and 8)");
    expect_samples_error("samples: duplicate column", "e10.csv",
                         "well_id,donor,mni_x,mni_y,mni_z,mni_x,G\nw,d,1,2,3,1,2\n",
                         "e10.csv:1: duplicate column 'mni_x'");
    expect_samples_error("samples: no genes", "e11.csv",
                         "well_id,donor,mni_x,mni_y,mni_z,hemisphere\nw,d,1,2,3,L\n",
                         "e11.csv:1: no gene columns");
    expect_samples_error("samples: no samples", "e12.csv",
                         "well_id,donor,mni_x,mni_y,mni_z,G\n\n", "e12.csv: no samples");
    expect_samples_error("samples: empty file", "e13.csv", "", "e13.csv: empty file");
    expect_samples_error("samples: CSV error passes through", "e14.csv",
                         "well_id,donor,mni_x,mni_y,mni_z,G\nw,d,1,2,3,\"4\n",
                         "e14.csv:2: unterminated quoted field");
    expect_samples_error("samples: error after many rows frees everything", "e15.csv",
                         "well_id,donor,mni_x,mni_y,mni_z,hemisphere,G\n"
                         "w1,d1,1,2,3,L,1\nw2,d2,1,2,3,R,2\nw3,d1,1,2,3,L,x\n",
                         "e15.csv:4: column 'G': 'x' is not a number");
    {
        gi_samples s;
        gi_err err = {{0}};
        int rc = gi_samples_read_csv(&s, tmp_path("missing.csv"), &err);
        CHECKF(rc == -1 && strstr(err.msg, "missing.csv"), "samples: missing file",
               "%s", err.msg);
        gi_samples_free(&s);
    }
}

/* Exact float equality, NaN equal to NaN. */
static int same_float(float a, float b)
{
    return (isnan(a) && isnan(b)) || a == b;
}

static int same_tables(const gi_samples *a, const gi_samples *b)
{
    if (a->n != b->n || a->n_genes != b->n_genes || a->n_donors != b->n_donors ||
        a->n_annot != b->n_annot)
        return 0;
    for (int i = 0; i < a->n; i++) {
        if (strcmp(a->well_ids[i], b->well_ids[i]) ||
            strcmp(a->donor_names[a->donor[i]], b->donor_names[b->donor[i]]))
            return 0;
        for (int k = 0; k < 3; k++)
            if (a->mni[3 * i + k] != b->mni[3 * i + k])
                return 0;
        for (int g = 0; g < a->n_genes; g++)
            if (!same_float(a->values[i * a->n_genes + g], b->values[i * b->n_genes + g]))
                return 0;
        for (int c = 0; c < a->n_annot; c++)
            if (strcmp(a->annot[i * a->n_annot + c], b->annot[i * b->n_annot + c]))
                return 0;
    }
    for (int g = 0; g < a->n_genes; g++)
        if (strcmp(a->gene_names[g], b->gene_names[g]))
            return 0;
    for (int c = 0; c < a->n_annot; c++)
        if (strcmp(a->annot_names[c], b->annot_names[c]))
            return 0;
    return 1;
}

static void test_samples_round_trip(void)
{
    /* Build a table by hand with awkward text and floats that need all nine
     * significant digits, then write it (plain and gzip) and read it back. */
    enum { N = 50, G = 7, A = 2 };
    gi_samples s = {0};
    s.n = N;
    s.n_genes = G;
    s.n_annot = A;
    s.n_donors = 3;
    s.well_ids = calloc(N, sizeof(char *));
    s.donor = calloc(N, sizeof(int));
    s.donor_names = calloc(3, sizeof(char *));
    s.mni = calloc(3 * N, sizeof(float));
    s.gene_names = calloc(G, sizeof(char *));
    s.values = calloc((size_t)N * G, sizeof(float));
    s.annot_names = calloc(A, sizeof(char *));
    s.annot = calloc((size_t)N * A, sizeof(char *));
    s.donor_names[0] = strdup("H0351.2001");
    s.donor_names[1] = strdup("donor, \"two\"");
    s.donor_names[2] = strdup("d3");
    const char *genes[G] = {"APOE", "GENE,COMMA", "Q\"UOTE", "MAPT", "A B", "x1", "LAST"};
    for (int g = 0; g < G; g++)
        s.gene_names[g] = strdup(genes[g]);
    s.annot_names[0] = strdup("structure_name");
    s.annot_names[1] = strdup("slab_num");
    uint32_t state = 12345;
    for (int i = 0; i < N; i++) {
        char buf[64];
        snprintf(buf, sizeof buf, i % 7 == 3 ? "well\n%d" : "%d", 1000 + i);
        s.well_ids[i] = strdup(buf);
        s.donor[i] = (i * 7) % 3;
        for (int k = 0; k < 3; k++) {
            state = state * 1664525u + 1013904223u;
            s.mni[3 * i + k] = ((float)(state >> 8) / 16777216.0f - 0.5f) * 180.0f;
        }
        for (int g = 0; g < G; g++) {
            state = state * 1664525u + 1013904223u;
            float x = ((float)(state >> 8) / 16777216.0f) * 20.0f - 10.0f;
            if (g == 3)
                x *= 1e-30f;              /* tiny */
            if (g == 4)
                x *= 1e30f;               /* huge */
            if ((i + g) % 11 == 0)
                x = NAN;
            s.values[i * G + g] = x;
        }
        snprintf(buf, sizeof buf, i % 5 == 0 ? "" : "region \"%d\", left", i);
        s.annot[i * A] = strdup(buf);
        snprintf(buf, sizeof buf, "%d", i % 4);
        s.annot[i * A + 1] = strdup(buf);
    }
    const char *paths[2] = {tmp_path("rt.csv"), tmp_path("rt.csv.gz")};
    for (int t = 0; t < 2; t++) {
        gi_err err = {{0}};
        char name[80];
        int rc = gi_samples_write_csv(&s, paths[t], &err);
        snprintf(name, sizeof name, "samples: write %s", t ? "gzip" : "plain");
        CHECKF(rc == 0, name, "%s", err.msg);
        gi_samples back;
        rc = gi_samples_read_csv(&back, paths[t], &err);
        snprintf(name, sizeof name, "samples: %s round trip is exact", t ? "gzip" : "plain");
        CHECKF(rc == 0 && same_tables(&s, &back), name, "rc=%d %s", rc, err.msg);
        gi_samples_free(&back);
    }
    {
        /* A .gz file must really be gzip, a plain one must not. */
        FILE *f = fopen(paths[1], "rb");
        int b0 = fgetc(f), b1 = fgetc(f);
        fclose(f);
        f = fopen(paths[0], "rb");
        char head[16] = {0};
        size_t got = fread(head, 1, 15, f);
        fclose(f);
        CHECK(b0 == 0x1f && b1 == 0x8b && got == 15 &&
              strncmp(head, "well_id,donor,m", 15) == 0, "samples: gzip vs plain output");
    }
    {
        gi_err err = {{0}};
        int rc = gi_samples_write_csv(&s, "/nonexistent-dir/x.csv", &err);
        CHECKF(rc == -1 && strstr(err.msg, "/nonexistent-dir/x.csv"),
               "samples: write to a missing folder fails", "%s", err.msg);
        if (access("/dev/full", W_OK) == 0) {
            /* A full disk is noticed (at the latest when the file is closed). */
            rc = gi_samples_write_csv(&s, "/dev/full", &err);
            CHECKF(rc == -1 && strstr(err.msg, "/dev/full") && access("/dev/full", F_OK) == 0,
                   "samples: write to a full disk fails", "%s", err.msg);
        } else {
            SKIP("samples: write to a full disk fails", "no /dev/full");
        }
        free(s.annot_names[1]);
        s.annot_names[1] = strdup("my_notes");
        rc = gi_samples_write_csv(&s, tmp_path("bad.csv"), &err);
        CHECKF(rc == -1 && strstr(err.msg, "'my_notes'"),
               "samples: unknown annotation name refused", "%s", err.msg);
    }
    gi_samples_free(&s);
}

/* gi_csv_put_field: what the reader gives back is exactly what was written. */
static void test_csv_put_field(void)
{
    static const char *const F[] = {"plain", "a,b", "say \"hi\"", "two\nlines", "cr\r", "", " spaced ",
                                    "\xEF\xBB\xBF" "bom", "\"", "é,ü"};
    int n = (int)(sizeof F / sizeof F[0]);
    const char *path = tmp_path("put.csv");
    FILE *f = fopen(path, "w");
    for (int r = 0; r < 2; r++) {
        for (int i = 0; i < n; i++) {
            if (i)
                fputc(',', f);
            gi_csv_put_field(f, F[(i + r) % n]);
        }
        fputc('\n', f);
    }
    fclose(f);
    gi_err err = {{0}};
    gi_csv *c = gi_csv_open(path, &err);
    char **fields;
    int nf, same = c != NULL;
    for (int r = 0; same && r < 2; r++) {
        same = gi_csv_next(c, &fields, &nf, &err) == 1 && nf == n;
        for (int i = 0; same && i < n; i++)
            same = strcmp(fields[i], F[(i + r) % n]) == 0;
    }
    CHECK(same && gi_csv_next(c, &fields, &nf, &err) == 0, "csv: put_field round-trips commas, quotes, line ends, a "
          "leading BOM, empty and UTF-8 fields");
    gi_csv_close(c);
}

/* Point tables: columns kept, coordinates parsed, the output written through .tmp. */
static void test_points(void)
{
    gi_err err = {{0}};
    gi_points p;
    const char *in = tmp_path("points.csv");
    const char *text = "id,\"note, here\",z,x,y\nA,\"a \"\"q\"\"\",-10.5,20,3e1\nB,,0,-90,+1\n";
    write_file(in, text, strlen(text));
    int rc = gi_points_read(&p, in, &err);
    CHECKF(rc == 0 && p.n == 2 && p.n_cols == 5 && p.xyz[0] == 3 && p.xyz[1] == 4 && p.xyz[2] == 2,
           "points: two rows of five columns, x y z found by name", "%s", err.msg);
    if (rc != 0)
        return;
    CHECK(p.mm[0] == 20 && p.mm[1] == 30 && p.mm[2] == -10.5 && p.mm[3] == -90 && p.mm[4] == 1 && p.mm[5] == 0,
          "points: MNI mm as doubles, in x y z order");
    CHECK(strcmp(p.cols[1], "note, here") == 0 && strcmp(p.cells[1], "a \"q\"") == 0 &&
          strcmp(p.cells[5 + 1], "") == 0 && strcmp(p.cells[5 + 4], "+1") == 0,
          "points: header and fields kept as text");
    static const char *const CLASH[] = {"in_mask", "x"};
    CHECK(gi_points_check_free(&p, CLASH, 1, "the in_mask column", &err) == 0 &&
          gi_points_check_free(&p, CLASH, 2, "a gene", &err) == -1 && strstr(err.msg, "points.csv:1: column 'x'"),
          "points: a column with an added column's name is refused");
    const char *out = tmp_path("values.csv");
    gi_points_out o;
    static const char *const EXTRA[] = {"in_mask", "G,1", "G2"};
    rc = gi_points_out_open(&o, out, &p, EXTRA, 3, &err);
    float v0[2] = {0.1f, NAN}, v1[2] = {-3.0f, 1e-20f};
    if (rc == 0) {
        gi_points_out_row(&o, &p, 0, 1, v0, 2);
        gi_points_out_row(&o, &p, 1, 0, v1, 2);
        CHECK(access(out, F_OK) != 0, "points: nothing at the output's name before the commit");
        rc = gi_points_out_commit(&o, &err);
    }
    char buf[512] = "";
    FILE *f = fopen(out, "r");
    size_t len = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[len] = 0;
    CHECKF(rc == 0 && strcmp(buf, "id,\"note, here\",z,x,y,in_mask,\"G,1\",G2\n"
                                  "A,\"a \"\"q\"\"\",-10.5,20,3e1,1,0.100000001,\n"
                                  "B,,0,-90,+1,0,-3,9.99999968e-21\n") == 0,
           "points: the output holds the fields, in_mask and the values (%.9g, NaN empty)", "got:\n%s", buf);
    CHECK(access(tmp_path("values.csv.tmp"), F_OK) != 0, "points: the .tmp is gone after the commit");
    const char *out2 = tmp_path("aborted.csv");
    if (gi_points_out_open(&o, out2, &p, EXTRA, 1, &err) == 0)
        gi_points_out_abort(&o);
    CHECK(access(out2, F_OK) != 0 && access(tmp_path("aborted.csv.tmp"), F_OK) != 0,
          "points: an aborted table leaves no file");
    gi_points_free(&p);

    const char *mni = tmp_path("mni.csv");
    const char *mtext = "well_id,mni_x,mni_y,mni_z,x\nw,1,2,3,4\n";
    write_file(mni, mtext, strlen(mtext));
    rc = gi_points_read(&p, mni, &err);
    CHECKF(rc == 0 && p.mm[0] == 1 && p.mm[1] == 2 && p.mm[2] == 3 && p.n_cols == 5,
           "points: mni_x, mni_y, mni_z when x, y, z are not all there", "%s", err.msg);
    if (rc == 0)
        gi_points_free(&p);
}

int main(void)
{
    const char *base = getenv("TESTTMP");
    snprintf(tmpdir, sizeof tmpdir, "%s/test_csv.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror(tmpdir);
        return 2;
    }
    test_csv_reader();
    test_samples_read();
    test_samples_errors();
    test_samples_round_trip();
    test_csv_put_field();
    test_points();
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return check_summary();
}

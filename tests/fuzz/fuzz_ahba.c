/* fuzz_ahba.c - libFuzzer target: the AHBA folder reader (`geneinr prepare`,
 * gi_prepare_run) on arbitrary donor files.
 *
 * The input is cut at each line "=====" into up to five sections, which
 * become, in this order, Probes.csv, SampleAnnot.csv, Ontology.csv,
 * MicroarrayExpression.csv and PACall.csv of a donor folder (a missing
 * section: the file is absent). The same files are written to two donor
 * folders (9861, 10021), so the default probe selection (differential
 * stability, which compares donors) runs too; the input's length mod 4 picks
 * the probe selection. Then the real pipeline runs into a scratch output
 * folder. Any input must give 0, or -1 with a message: never a crash, a
 * hang, a leak or UB. Seeds: tests/fuzz/corpus/ahba (a tiny phantom donor).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "geneinr/config.h"
#include "geneinr/prepare.h"

static char root[64];
static char donor_dir[2][128];
static char out_dir[128];
static const char *const FILES[5] = {"Probes.csv", "SampleAnnot.csv", "Ontology.csv",
                                     "MicroarrayExpression.csv", "PACall.csv"};

static void rm_all(void)
{
    char p[256];
    for (int d = 0; d < 2; d++) {
        for (int k = 0; k < 5; k++) {
            snprintf(p, sizeof p, "%s/%s", donor_dir[d], FILES[k]);
            unlink(p);
        }
        rmdir(donor_dir[d]);
    }
    snprintf(p, sizeof p, "%s/samples.csv", out_dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/report.json", out_dir);
    unlink(p);
    rmdir(out_dir);
    rmdir(root);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(root, sizeof root, "/tmp/geneinr-fuzz-ahba-XXXXXX");
    if (!mkdtemp(root))
        abort();
    snprintf(donor_dir[0], sizeof donor_dir[0], "%s/normalized_microarray_donor9861", root);
    snprintf(donor_dir[1], sizeof donor_dir[1], "%s/normalized_microarray_donor10021", root);
    snprintf(out_dir, sizeof out_dir, "%s/out", root);
    if (mkdir(donor_dir[0], 0700) || mkdir(donor_dir[1], 0700) || mkdir(out_dir, 0700))
        abort();
    atexit(rm_all);
    return 0;
}

static void write_file(const char *dir, const char *name, const uint8_t *p, size_t n)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(p, 1, n, f) != n) || fclose(f) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char SEP[] = "=====\n";
    const size_t seplen = sizeof SEP - 1;
    const uint8_t *p = data, *end = data + size;
    int k = 0;
    for (; k < 5; k++) {
        /* the section runs to the next separator line or the end */
        const uint8_t *q = p;
        while (q < end && !((q == data || q[-1] == '\n') && (size_t)(end - q) >= seplen &&
                            memcmp(q, SEP, seplen) == 0))
            q++;
        for (int d = 0; d < 2; d++)
            write_file(donor_dir[d], FILES[k], p, (size_t)(q - p));
        if (q >= end) {
            k++;
            break;
        }
        p = q + seplen;
    }
    for (; k < 5; k++)  /* sections the input lacks: the file is absent */
        for (int d = 0; d < 2; d++) {
            char path[256];
            snprintf(path, sizeof path, "%s/%s", donor_dir[d], FILES[k]);
            unlink(path);
        }

    gi_config c;
    gi_config_defaults(&c);
    snprintf(c.prepare.data_dir, sizeof c.prepare.data_dir, "%s", root);
    c.prepare.threads = 1;
    c.prepare.probe_selection = (int)(size % 4);
    gi_err err;
    err.msg[0] = '\0';
    if (gi_prepare_run(&c, out_dir, NULL, &err) != 0 && !err.msg[0])
        abort(); /* a failure without a message */
    return 0;
}

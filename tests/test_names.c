/* test_names.c - the gene and donor name rules (names.c), the output
 * manifest (manifest.c) and exact label images (nifti.c).
 *
 * Files go to a private temporary folder ($TESTTMP if set, else /tmp).
 */
#include "check.h"
#include "geneinr/manifest.h"
#include "geneinr/names.h"
#include "geneinr/samples.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[1024];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static int ok_name(const char *name)
{
    char why[160];
    return gi_name_check(name, why, sizeof why) == 0;
}

static void test_rules(void)
{
    char why[160];
    CHECK(ok_name("APOE"), "a plain symbol is allowed");
    CHECK(ok_name("HLA-DRB1") && ok_name("C4A/C4B") && ok_name("MT-CO1.1"), "hyphens, slashes and dots are allowed");
    CHECK(ok_name("G\xc3\xa8ne") && ok_name("\xe2\x88\x86" "F508"), "UTF-8 letters are allowed");
    CHECK(!ok_name(""), "an empty name is refused");
    CHECK(gi_name_check("A\tB", why, sizeof why) != 0 && strstr(why, "TAB"), "a TAB is refused, named");
    CHECK(gi_name_check("A\nB", why, sizeof why) != 0 && strstr(why, "line feed"), "a line feed is refused, named");
    CHECK(!ok_name("A\rB") && !ok_name("A\x7f") && !ok_name("A\xc2\x85"), "CR, DEL and C1 controls are refused");
    CHECK(gi_name_check("A\xff", why, sizeof why) != 0 && strstr(why, "UTF-8"), "a stray byte is not UTF-8");
    CHECK(!ok_name("\xc0\xaf") && !ok_name("\xed\xa0\x80") && !ok_name("\xf4\x90\x80\x80") && !ok_name("\xe2\x88"),
          "overlong forms, surrogates, code points past U+10FFFF and cut sequences are refused");
    char longest[GI_GENE_NAME_MAX + 2];
    memset(longest, 'L', sizeof longest);
    longest[GI_GENE_NAME_MAX] = '\0';
    CHECK(ok_name(longest), "a name of exactly the limit is allowed");
    longest[GI_GENE_NAME_MAX] = 'L';
    longest[GI_GENE_NAME_MAX + 1] = '\0';
    CHECK(gi_name_check(longest, why, sizeof why) != 0 && strstr(why, "101 bytes"), "one byte more is refused");
    char q[32];
    gi_name_quote("A\tB\xff", q, sizeof q);
    CHECK(strcmp(q, "A\\x09B\\xFF") == 0, "a quoted name shows control and invalid bytes as \\xNN");
    gi_name_quote(longest, q, sizeof q);
    CHECK(strlen(q) < sizeof q && strcmp(q + strlen(q) - 3, "...") == 0, "a long quoted name is cut with ...");
}

static void test_file_clashes(void)
{
    gi_err err;
    const char *slash[] = {"APOE", "A/B", "TREM2", "A_B"};
    int cols[] = {6, 7, 8, 9};
    CHECK(gi_names_check_files(slash, 4, "t.csv:1", cols, &err) != 0 && strstr(err.msg, "'A/B' (column 7)") &&
          strstr(err.msg, "'A_B' (column 9)") && strstr(err.msg, "t.csv:1"),
          "'A/B' and 'A_B' share a file name: both named, with file:line and columns");
    const char *cased[] = {"ab", "AB"};
    CHECK(gi_names_check_files(cased, 2, "t.csv:1", NULL, &err) != 0, "'ab' and 'AB' clash (case-insensitive)");
    const char *other[] = {" x", "_x", ".y", "_y", "a:b", "a_b"};
    CHECK(gi_names_check_files(other, 2, "w", NULL, &err) != 0 && gi_names_check_files(other + 2, 2, "w", NULL, &err) != 0
          && gi_names_check_files(other + 4, 2, "w", NULL, &err) != 0, "spaces, a leading dot and colons clash too");
    const char *fine[] = {"APOE", "APP", "MAPT", "G\xc3\xa8ne"};
    CHECK(gi_names_check_files(fine, 4, "w", NULL, &err) == 0, "distinct names pass");
}

static void test_table(void)
{
    char path[1200];
    gi_err err;
    gi_samples s;
    snprintf(path, sizeof path, "%s/names_tab.csv", tmpdir);
    write_file(path, "well_id,donor,mni_x,mni_y,mni_z,\"A\tB\",C\n1,D1,0,0,0,1,2\n");
    CHECK(gi_samples_read_csv(&s, path, &err) != 0 && strstr(err.msg, ":1: column 6") && strstr(err.msg, "TAB"),
          "a sample table with a TAB in a gene name is refused at its header, file:line and column");
    write_file(path, "well_id,donor,mni_x,mni_y,mni_z,ab,AB\n1,D1,0,0,0,1,2\n");
    CHECK(gi_samples_read_csv(&s, path, &err) != 0 && strstr(err.msg, "'ab' (column 6) and 'AB' (column 7)"),
          "a sample table with genes 'ab' and 'AB' is refused");
    write_file(path, "well_id,donor,mni_x,mni_y,mni_z,G\n1,\"D\n1\",0,0,0,1\n");
    CHECK(gi_samples_read_csv(&s, path, &err) != 0 && strstr(err.msg, "donor name"),
          "a donor name with a line feed is refused");
    write_file(path, "well_id,donor,mni_x,mni_y,mni_z,G1,G\xc3\xa8ne\n1,D1,0,0,0,1,2\n");
    char **names = NULL;
    int n = 0;
    int rc = gi_samples_read_gene_names(path, NULL, &names, &n, &err);
    CHECK(rc == 0 && n == 2 && strcmp(names[1], "G\xc3\xa8ne") == 0, "the header-only reader gives the gene names");
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static void test_manifest(void)
{
    char dir[1200], path[1400];
    gi_err err;
    snprintf(dir, sizeof dir, "%s/manifest_run", tmpdir);
    mkdir(dir, 0777);
    snprintf(path, sizeof path, "%s/nifti", dir);
    mkdir(path, 0777);
    gi_manifest m;
    CHECK(gi_manifest_load(&m, dir, &err) == 0 && !m.found && m.n == 0, "a folder without a manifest owns nothing");
    snprintf(path, sizeof path, "%s/nifti/mask.nii.gz", dir);
    write_file(path, "the user's mask");
    snprintf(path, sizeof path, "%s/atlas.h5", dir);
    write_file(path, "an atlas");
    const char *names[] = {"atlas.h5", "nifti/A.nii.gz"};
    CHECK(gi_manifest_claim(&m, names, 2, "render", &err) != 0 && strstr(err.msg, "atlas.h5") &&
          strstr(err.msg, "no " GI_MANIFEST_NAME), "a file at an output name without a manifest is refused");
    unlink(path);
    CHECK(gi_manifest_claim(&m, names, 2, "render", &err) == 0 && m.n == 2 && m.e[0].pending,
          "free names are claimed (pending)");
    write_file(path, "the atlas geneinr wrote");
    CHECK(gi_manifest_owner(&m, "atlas.h5") == GI_OWN_OURS, "a pending name's file is geneinr's");
    snprintf(path, sizeof path, "%s/nifti/A.nii.gz", dir);
    write_file(path, "map A");
    CHECK(gi_manifest_commit(&m, names, 2, &err) == 0 && !m.e[0].pending && !m.e[1].pending, "written files recorded");
    gi_manifest_free(&m);
    CHECK(gi_manifest_load(&m, dir, &err) == 0 && m.found && m.n == 2, "the manifest reads back");
    CHECK(gi_manifest_owner(&m, "nifti/mask.nii.gz") == GI_OWN_FOREIGN, "an unlisted file is the user's");
    CHECK(gi_manifest_owner(&m, "nifti/A.nii.gz") == GI_OWN_OURS, "a listed unchanged file is geneinr's");
    /* Same size and content, another mtime (a copy): still geneinr's. */
    struct timespec ts[2] = {{1000000, 0}, {1000000, 0}};
    utimensat(AT_FDCWD, path, ts, 0);
    CHECK(gi_manifest_owner(&m, "nifti/A.nii.gz") == GI_OWN_OURS, "a copy (new mtime, same content) is geneinr's");
    write_file(path, "map B");   /* same size, other content */
    CHECK(gi_manifest_owner(&m, "nifti/A.nii.gz") == GI_OWN_CHANGED, "a changed file is the user's");
    int kept = 0;
    char example[1400];
    int removed = gi_manifest_remove(&m, NULL, NULL, &kept, example, sizeof example, &err);
    snprintf(path, sizeof path, "%s/atlas.h5", dir);
    int atlas_gone = access(path, F_OK) != 0;
    snprintf(path, sizeof path, "%s/nifti/A.nii.gz", dir);
    int changed_kept = access(path, F_OK) == 0;
    snprintf(path, sizeof path, "%s/nifti/mask.nii.gz", dir);
    CHECKF(removed == 1 && kept == 1 && atlas_gone && changed_kept && access(path, F_OK) == 0 && m.n == 0,
           "removal takes only unchanged listed files", "removed %d kept %d", removed, kept);
    gi_manifest_free(&m);
    const char *bad[] = {"a\nb"};
    CHECK(gi_manifest_load(&m, dir, &err) == 0 && gi_manifest_claim(&m, bad, 1, "render", &err) != 0,
          "a name with a line break cannot be recorded");
    gi_manifest_free(&m);
    snprintf(path, sizeof path, "%s/" GI_MANIFEST_NAME, dir);
    write_file(path, "# x\ngarbage\n");
    CHECK(gi_manifest_load(&m, dir, &err) != 0 && strstr(err.msg, ":2: damaged"), "a damaged manifest is an error");
}

int main(void)
{
    const char *base = getenv("TESTTMP");
    snprintf(tmpdir, sizeof tmpdir, "%s/test_names.XXXXXX", base && base[0] ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        printf("not ok - cannot make a temporary folder\n");
        return 1;
    }
    test_rules();
    test_file_clashes();
    test_table();
    test_manifest();
    return check_summary();
}

/* cmd_phantom.c - `geneinr phantom --out DIR`: the synthetic dataset with a known truth (phantom.h).
 * Serial work on rank 0; the other ranks wait for the agreed status. */
#include "geneinr/cmd.h"
#include "geneinr/error.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "geneinr/dist.h"
#include "geneinr/config.h"
#include "geneinr/files.h"
#include "geneinr/phantom.h"

#define DEFAULT_REFERENCE "../shared/data"

/* What a phantom writes into DIR (gi_phantom_write, gi_phantom_write_dk), and
 * with --ahba the folder gi_phantom_write_ahba writes into. */
static const char *const OUTPUTS[] = {"samples.csv", "mask.nii.gz", "anatomy.nii.gz", "truth.h5", "README.txt",
                                      "anatomy.csv", "sample_tissue.csv"};

/* Without --force, refuse a DIR holding any of them: a phantom must never
 * silently replace a samples.csv (or anything else) that is already there. */
static int check_overwrite(const gi_cmd_args *a, gi_err *err)
{
    if (a->force)
        return 0;
    char found[512] = "";
    size_t n_found = 0;
    for (size_t i = 0; i <= sizeof OUTPUTS / sizeof OUTPUTS[0]; i++) {
        const char *name = i < sizeof OUTPUTS / sizeof OUTPUTS[0] ? OUTPUTS[i] : a->ahba ? "ahba" : NULL;
        char path[GI_PATH_MAX + 32];
        struct stat st;
        if (!name)
            continue;
        snprintf(path, sizeof path, "%s/%s", a->out, name);
        if (lstat(path, &st) != 0)
            continue;
        size_t len = strlen(found);
        snprintf(found + len, sizeof found - len, "%s%s%s", n_found ? ", " : "", name,
                 S_ISDIR(st.st_mode) ? "/" : "");
        n_found++;
    }
    if (n_found == 0)
        return 0;
    return gi_fail(err, "phantom --out %s: the folder already holds %s, which a phantom would overwrite; choose "
                   "another folder, or pass --force to overwrite", a->out, found);
}

/* Rank 0: the phantom, then with --ahba its samples as AHBA donor folders. */
static int write_phantom(const gi_cmd_args *a, const gi_phantom_spec *s, gi_err *err)
{
    if (check_overwrite(a, err) != 0)
        return -1;
    double t0 = MPI_Wtime();
    int rc = a->dk ? gi_phantom_write_dk(a->out, s, a->reference_dir ? a->reference_dir : DEFAULT_REFERENCE, err)
                   : gi_phantom_write(a->out, s, err);
    if (rc == 0)
        printf("phantom: wrote %s%s (seed %llu, %d genes, %d mm grid) in %.1f s\n", a->out,
               a->dk ? " on the real DK grid at the AHBA sample locations" : "", (unsigned long long)s->seed,
               s->n_genes, s->grid_step, MPI_Wtime() - t0);
    if (rc != 0 || !a->ahba)
        return rc;
    char dir[GI_PATH_MAX + 16], csv[GI_PATH_MAX + 16];
    snprintf(dir, sizeof dir, "%s/ahba", a->out);
    snprintf(csv, sizeof csv, "%s/samples.csv", a->out);
    gi_phantom_ahba_spec as = {csv, a->reference_dir, a->ahba_probes > 0 ? (int)a->ahba_probes : 0, 0};
    double t1 = MPI_Wtime();
    rc = gi_phantom_write_ahba(dir, s, &as, err);
    if (rc == 0)
        printf("phantom: wrote the AHBA-format donor folders in %s%s in %.1f s\n", dir,
               a->reference_dir ? " (real well ids, coordinates and probe names)" : "", MPI_Wtime() - t1);
    return rc;
}

static int run_phantom(const gi_cmd_ctx *x, const gi_cmd_args *a)
{
    gi_err err = {{0}};
    gi_phantom_spec s;
    gi_phantom_defaults(&s);
    if (a->seed >= 0)
        s.seed = (uint64_t)a->seed;
    if (a->genes >= 0)
        s.n_genes = (int)a->genes;
    if (a->grid >= 0)
        s.grid_step = (int)a->grid;
    if (a->sample_truth >= 0)
        s.sample_truth = (int)a->sample_truth;
    int rc = x->rank == 0 ? write_phantom(a, &s, &err) : 0;
    return gi_cmd_status(x, gi_dist_agree(x->comm, rc, &err), &err);
}

static const gi_cmd_opt OPTS[] = {
    GI_OPT_S_REQ("--out", out, "DIR", "folder to write (created)"),
    GI_OPT_L("--seed", seed, "N", 0, LONG_MAX, "random seed of the phantom (default: the embedded phantom's)"),
    GI_OPT_L("--genes", genes, "G", 1, 1000, "number of genes"),
    GI_OPT_L("--grid", grid, "1|2", 1, 2, "voxel size of the grid in mm"),
    GI_OPT_F("--ahba", ahba, "also write DIR/ahba/, the samples as AHBA donor folders (input of `prepare`)"),
    GI_OPT_L("--ahba-probes", ahba_probes, "N", 1, 10000000, "(--ahba) probes in all"),
    GI_OPT_S("--reference", reference_dir, "DIR",
             "folder of real AHBA tables (e.g. " DEFAULT_REFERENCE "): real well ids, coordinates, probe names"),
    GI_OPT_F("--force", force, "overwrite the files of an earlier phantom in DIR (refused without it)"),
    GI_OPT_F("--dk", dk, "on the real Desikan-Killiany grid at the real AHBA sample coordinates (--reference)"),
    GI_OPT_C("--sample-truth", sample_truth, "tissue|voxel", GI_PHANTOM_TRUTH_NAMES,
             "how a sample meets the anatomy: tissue (default) = grey matter cut from a structure, its coordinate "
             "that tissue + registration error (it may miss every label), its value the truth at the tissue; "
             "voxel = the phantoms before issue 25"),
    GI_OPT_END,
};

const gi_cmd gi_cmd_phantom = {
    .name = "phantom",
    .run = run_phantom,
    .synopsis = "writes the synthetic dataset with a known truth (the embedded default data)",
    .help = "Writes DIR/samples.csv, mask.nii.gz, anatomy.nii.gz, truth.h5 and README.txt: a synthetic brain\n"
            "whose true expression maps are known, sampled like the AHBA. --ahba also writes DIR/ahba/, the\n"
            "samples as AHBA donor folders; --reference DIR takes real well ids, coordinates and probe names\n"
            "from a folder of real tables. --dk builds it on the real Desikan-Killiany grid at the real AHBA\n"
            "sample coordinates (from --reference, default " DEFAULT_REFERENCE "), with tissue-class effects\n"
            "and gradients. By default (--sample-truth tissue) samples are realistic: a piece of grey matter\n"
            "whose written coordinate carries registration error; samples.csv then has class and hemisphere\n"
            "columns, and DIR also holds anatomy.csv (the label table) and sample_tissue.csv (each sample's\n"
            "hidden tissue location, for analysis only). A DIR that already holds any of these files is\n"
            "refused unless --force is given.",
    .opts = OPTS,
};

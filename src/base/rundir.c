/* rundir.c - removal of stale rendered outputs (see rundir.h; the lock: runlock.c). */
#include "geneinr/rundir.h"
#include "geneinr/manifest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Files in OUT/sub ending in suffix that the manifest does not list (the
 * user's: left alone), counted; the first named in example. */
static int count_foreign(const gi_manifest *m, const char *sub, const char *suffix, char *example, size_t n)
{
    char dir[sizeof m->dir + 64];
    snprintf(dir, sizeof dir, "%s/%s", m->dir, sub);
    DIR *dh = opendir(dir);
    if (!dh)
        return 0;
    int count = 0;
    struct dirent *e;
    char name[1200];
    while ((e = readdir(dh))) {
        size_t len = strlen(e->d_name), sl = strlen(suffix);
        if (e->d_name[0] == '.' || len <= sl || strcmp(e->d_name + len - sl, suffix) != 0)
            continue;
        snprintf(name, sizeof name, "%s/%s", sub, e->d_name);
        if (gi_manifest_owner(m, name) == GI_OWN_FOREIGN && !count++ && example[0] == '\0')
            snprintf(example, n, "%s/%s", m->dir, name);
    }
    closedir(dh);
    return count;
}

/* What a removal takes: every listed render but report.html (rebuilt when
 * the command ends: after a training it tells the maps are gone) and, when
 * keep_atlas (*ctx), atlas.h5. */
static int is_stale(const char *name, void *ctx)
{
    return strcmp(name, "report.html") != 0 && !(*(const int *)ctx && strcmp(name, "atlas.h5") == 0);
}

int gi_rundir_remove_renders(const char *out_dir, int keep_atlas, gi_err *err)
{
    /* Only what geneinr wrote and nobody changed since (manifest.h): a
     * user's mask in OUT/nifti/ or their file at OUT/expression.nii.gz is
     * never an output of earlier weights. The manifest lists the rendered
     * products only, so every listed file is one (atlas.h5 aside when kept). */
    gi_manifest m;
    if (gi_manifest_load(&m, out_dir, err) != 0)
        return -1;
    int kept = 0;
    char example[sizeof m.dir + 1200] = "";
    /* What earlier geneinrs removed here, counted before the removal (which
     * unlists changed files): the per-gene folders' maps and the rendered
     * files at the top (a user's mask.nii.gz beside them is no output name
     * and not worth a word). */
    static const char *const TOP[] = {"atlas.h5", "expression.nii.gz", "genes.tsv"};
    int foreign = count_foreign(&m, "nifti", ".nii.gz", example, sizeof example) +
                  count_foreign(&m, "preview", ".png", example, sizeof example);
    for (size_t i = keep_atlas ? 1 : 0; i < sizeof TOP / sizeof TOP[0]; i++)
        if (gi_manifest_owner(&m, TOP[i]) == GI_OWN_FOREIGN && !foreign++ && !example[0])
            snprintf(example, sizeof example, "%s/%s", out_dir, TOP[i]);
    char changed[sizeof example] = "";
    int removed = gi_manifest_remove(&m, is_stale, &keep_atlas, &kept, changed, sizeof changed, err);
    if (removed >= 0 && kept + foreign > 0 && !keep_atlas) {
        /* Said once, by rank 0 (the only caller), when training starts (a
         * render refuses such files at its output names before it gets
         * here): the rule is not silent. */
        printf("note: left %d file%s in %s alone that geneinr did not write%s (e.g. %s); it removes only files "
               "listed in %s/" GI_MANIFEST_NAME "\n", kept + foreign, kept + foreign > 1 ? "s" : "", out_dir,
               kept ? " or that changed since it wrote them" : "", kept ? changed : example, out_dir);
        fflush(stdout);
    }
    gi_manifest_free(&m);
    return removed;
}

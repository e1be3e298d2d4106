/* rundir.c - removal of stale rendered outputs (see rundir.h; the lock: runlock.c). */
#include "geneinr/rundir.h"

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

static int remove_file(const char *path, int *count, gi_err *err)
{
    if (unlink(path) == 0) {
        ++*count;
        return 0;
    }
    if (errno == ENOENT)
        return 0;
    return gi_fail(err, "cannot remove %s (an output of earlier weights): %s", path, strerror(errno));
}

/* Files in dir ending in suffix. */
static int remove_in(const char *dir, const char *suffix, int *count, gi_err *err)
{
    DIR *dh = opendir(dir);
    if (!dh)
        return errno == ENOENT ? 0 : gi_fail(err, "cannot read %s: %s", dir, strerror(errno));
    struct dirent *e;
    size_t sl = strlen(suffix);
    int rc = 0;
    char path[2400];
    while (rc == 0 && (e = readdir(dh))) {
        size_t n = strlen(e->d_name);
        if (n > sl && strcmp(e->d_name + n - sl, suffix) == 0) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            rc = remove_file(path, count, err);
        }
    }
    closedir(dh);
    return rc;
}

int gi_rundir_remove_renders(const char *out_dir, int keep_atlas, gi_err *err)
{
    char path[2100];
    int count = 0;
    static const char *const files[] = { "expression.nii.gz", "genes.tsv" };
    if (!keep_atlas) {
        snprintf(path, sizeof path, "%s/atlas.h5", out_dir);
        if (remove_file(path, &count, err))
            return -1;
    }
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", out_dir, files[i]);
        if (remove_file(path, &count, err))
            return -1;
    }
    snprintf(path, sizeof path, "%s/nifti", out_dir);
    if (remove_in(path, ".nii.gz", &count, err))
        return -1;
    snprintf(path, sizeof path, "%s/preview", out_dir);
    if (remove_in(path, ".png", &count, err))
        return -1;
    return count;
}

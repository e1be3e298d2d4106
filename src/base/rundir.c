/* rundir.c - run-folder lock and removal of stale rendered outputs (see rundir.h). */
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

#define LOCK_NAME ".geneinr.lock"

/* Create the lock file exclusively; 0 on success, errno otherwise. */
static int create_lock(const char *path, const char *host)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0)
        return errno;
    char text[512];
    int n = snprintf(text, sizeof text, "%s %ld %ld\n", host, (long)getpid(), (long)time(NULL));
    int e = write(fd, text, (size_t)n) == n ? 0 : errno ? errno : EIO;
    if (close(fd) != 0 && !e)
        e = errno;
    if (e)
        unlink(path);
    return e;
}

int gi_rundir_lock_take(gi_rundir_lock *lk, const char *out_dir, char *note, size_t note_size, gi_err *err)
{
    lk->path[0] = '\0';
    if (note && note_size)
        note[0] = '\0';
    char path[sizeof lk->path], host[256] = "";
    if (snprintf(path, sizeof path, "%s/" LOCK_NAME, out_dir) >= (int)sizeof path)
        return gi_fail(err, "run folder path too long: %s", out_dir);
    gethostname(host, sizeof host - 1);
    for (int attempt = 0; attempt < 3; attempt++) {
        int e = create_lock(path, host);
        if (e == 0) {
            snprintf(lk->path, sizeof lk->path, "%s", path);
            return 0;
        }
        if (e != EEXIST)
            return gi_fail(err, "cannot create %s: %s (is the run folder writable?)", path, strerror(e));
        /* Someone holds it, or held it. */
        char owner[256] = "";
        long pid = 0, since = 0;
        FILE *f = fopen(path, "r");
        int fields = f ? fscanf(f, "%255s %ld %ld", owner, &pid, &since) : 0;
        if (f)
            fclose(f);
        if (fields < 2) {
            /* Being written this instant, or damaged: look again shortly. */
            if (attempt < 2) {
                usleep(200000);
                continue;
            }
            return gi_fail(err, "%s exists but does not say who holds it; if no geneinr job uses %s, remove "
                           "the file", path, out_dir);
        }
        int alive = pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
        if (strcmp(owner, host) != 0 || alive) {
            char when[64] = "?";
            time_t t = (time_t)since;
            struct tm tmv;
            if (since > 0 && localtime_r(&t, &tmv))
                strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tmv);
            if (strcmp(owner, host) != 0)
                return gi_fail(err, "run folder %s is locked by process %ld on host %s (since %s); another job "
                               "may be writing it. Use another --out, or if that job is gone, remove %s",
                               out_dir, pid, owner, when, path);
            return gi_fail(err, "run folder %s is in use by process %ld on this host (since %s); wait for it "
                           "to finish or use another --out", out_dir, pid, when);
        }
        /* A dead process on this host: take the lock over. Removing and
         * creating again (O_EXCL) keeps two newcomers from both winning. */
        if (unlink(path) != 0 && errno != ENOENT)
            return gi_fail(err, "cannot remove the stale lock %s: %s", path, strerror(errno));
        if (note && note_size)
            snprintf(note, note_size, "note: took over the lock of %s from process %ld, which is no longer running",
                     out_dir, pid);
    }
    return gi_fail(err, "cannot take the lock %s (other jobs keep taking it)", path);
}

void gi_rundir_lock_release(gi_rundir_lock *lk)
{
    if (lk && lk->path[0]) {
        unlink(lk->path);
        lk->path[0] = '\0';
    }
}

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

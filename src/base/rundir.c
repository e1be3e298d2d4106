/* rundir.c - run-folder lock and removal of stale rendered outputs (see rundir.h). */
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

/* runlock.c - the run-folder lock with a renewed lease (see runlock.h). */
#include "geneinr/runlock.h"

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

int gi_runlock_lease(gi_err *err)
{
    const char *v = getenv("GENEINR_LOCK_LEASE");
    if (!v || !*v)
        return GI_RUNLOCK_LEASE_DEFAULT;
    char *end;
    errno = 0;
    long s = strtol(v, &end, 10);
    if (errno || *end || s < 2 || s > 604800)
        return gi_fail(err, "GENEINR_LOCK_LEASE=%s: not a whole number of seconds in 2 .. 604800 (how long a run-folder "
                       "lock from another host stays valid without renewal; default %d)", v,
                       GI_RUNLOCK_LEASE_DEFAULT);
    return (int)s;
}

int gi_runlock_pid_alive(long pid)
{
    if (pid <= 0 || (kill((pid_t)pid, 0) != 0 && errno != EPERM))
        return 0;
    /* kill() succeeds on a zombie: it is dead but its parent has not reaped
     * it (in a container without an init nobody may ever do so). */
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 1; /* no /proc: trust kill() */
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces or ')' */
    if (!p || p[1] != ' ')
        return 1;
    return !(p[2] == 'Z' || p[2] == 'X' || p[2] == 'x');
}

/* Create the lock file exclusively with line; 0 or errno. */
static int create_lock(const char *path, const char *line)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0)
        return errno;
    size_t n = strlen(line);
    int e = write(fd, line, n) == (ssize_t)n ? 0 : errno ? errno : EIO;
    if (close(fd) != 0 && !e)
        e = errno;
    if (e)
        unlink(path);
    return e;
}

/* The whole (short) file into buf; 0 when unreadable. */
static size_t read_small(const char *path, char *buf, size_t n)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        buf[0] = '\0';
        return 0;
    }
    size_t k = fread(buf, 1, n - 1, f);
    fclose(f);
    buf[k] = '\0';
    return k;
}

static void field(const char *line, const char *key, char *out, size_t n)
{
    const char *p = strstr(line, key);
    snprintf(out, n, "%s", "-");
    if (p)
        snprintf(out, n, "%.*s", (int)strcspn(p + strlen(key), " \n"), p + strlen(key));
}

static void *renew_main(void *arg)
{
    gi_rundir_lock *lk = arg;
    pthread_mutex_lock(&lk->mu);
    while (!lk->quit) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += lk->every;
        while (!lk->quit && pthread_cond_timedwait(&lk->cv, &lk->mu, &until) != ETIMEDOUT) {
        }
        if (lk->quit)
            break;
        /* mtime = now is the renewal; a lock that vanished is not recreated
         * (someone removed it by hand or took it over). */
        /* A lock missing for a moment (a newcomer checking it renames it
         * aside, then puts it back) must not end the renewals: keep trying. */
        (void)utimensat(AT_FDCWD, lk->path, NULL, 0);
    }
    pthread_mutex_unlock(&lk->mu);
    return NULL;
}

static int start_renewal(gi_rundir_lock *lk, int lease, gi_err *err)
{
    lk->every = lease / 4 < 1 ? 1 : lease / 4 > 60 ? 60 : lease / 4;
    lk->quit = 0;
    pthread_mutex_init(&lk->mu, NULL);
    pthread_cond_init(&lk->cv, NULL);
    /* Signals stay with the main thread (stop.h). */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int e = pthread_create(&lk->thread, NULL, renew_main, lk);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e != 0) {
        pthread_cond_destroy(&lk->cv);
        pthread_mutex_destroy(&lk->mu);
        return gi_fail(err, "cannot start the thread that renews %s: %s", lk->path, strerror(e));
    }
    lk->renewing = 1;
    return 0;
}

static const char *when_text(long since, char *buf, size_t n)
{
    time_t t = (time_t)since;
    struct tm tmv;
    snprintf(buf, n, "?");
    if (since > 0 && localtime_r(&t, &tmv))
        strftime(buf, n, "%Y-%m-%d %H:%M:%S", &tmv);
    return buf;
}

int gi_rundir_lock_take(gi_rundir_lock *lk, const char *dir, char *note, size_t note_size, gi_err *err)
{
    memset(lk, 0, sizeof *lk);
    if (note && note_size)
        note[0] = '\0';
    int lease = gi_runlock_lease(err);
    if (lease < 0)
        return -1;
    char path[sizeof lk->path], host[256] = "";
    if (snprintf(path, sizeof path, "%s/" LOCK_NAME, dir) >= (int)sizeof path)
        return gi_fail(err, "run folder path too long: %s", dir);
    gethostname(host, sizeof host - 1);
    const char *job = getenv("SLURM_JOB_ID"), *task = getenv("SLURM_ARRAY_TASK_ID");
    job = job && *job && !strchr(job, ' ') ? job : "-";
    task = task && *task && !strchr(task, ' ') ? task : "-";
    /* SLURM_RESTART_COUNT tells a requeued run (higher count) from another
     * step of the same allocation (same count), which shares the job id. */
    const char *rs = getenv("SLURM_RESTART_COUNT");
    long restart = rs && *rs ? strtol(rs, NULL, 10) : 0;
    char line[sizeof lk->line];
    snprintf(line, sizeof line, "%s %ld %ld job=%.60s task=%.30s restart=%ld\n", host, (long)getpid(),
             (long)time(NULL), job, task, restart);
    for (int attempt = 0; attempt < 4; attempt++) {
        int e = create_lock(path, line);
        if (e == 0) {
            snprintf(lk->path, sizeof lk->path, "%s", path);
            snprintf(lk->line, sizeof lk->line, "%s", line);
            if (start_renewal(lk, lease, err) != 0) {
                unlink(path);
                lk->path[0] = '\0';
                return -1;
            }
            return 0;
        }
        if (e != EEXIST)
            return gi_fail(err, "cannot create %s: %s (is the folder writable?)", path, strerror(e));
        /* Someone holds it, or held it. */
        char text[sizeof lk->line], owner[256] = "", ojob[64], otask[32], when[64];
        long pid = 0, since = 0;
        struct stat sb;
        read_small(path, text, sizeof text);
        int fields = sscanf(text, "%255s %ld %ld", owner, &pid, &since);
        if (fields < 2 || stat(path, &sb) != 0) {
            /* Being written this instant, or damaged: look again shortly. */
            if (attempt < 3) {
                usleep(200000);
                continue;
            }
            return gi_fail(err, "%s exists but does not say who holds it; if no geneinr job uses %s, remove "
                           "the file", path, dir);
        }
        field(text, "job=", ojob, sizeof ojob);
        field(text, "task=", otask, sizeof otask);
        char orestart[32];
        field(text, "restart=", orestart, sizeof orestart);
        long olds = strcmp(orestart, "-") != 0 ? strtol(orestart, NULL, 10) : 0;
        char jobs[128] = "";
        if (strcmp(ojob, "-") != 0)
            snprintf(jobs, sizeof jobs, ", SLURM job %s%s%s", ojob, strcmp(otask, "-") ? " task " : "",
                     strcmp(otask, "-") ? otask : "");
        long age = (long)(time(NULL) - sb.st_mtime);
        char why[700];
        if (strcmp(owner, host) == 0) {
            if (gi_runlock_pid_alive(pid)) {
                gi_fail(err, "%s is in use by process %ld on this host%s (since %s); wait for it to finish or use "
                        "another --out", dir, pid, jobs, when_text(since, when, sizeof when));
                return GI_RUNLOCK_BUSY;
            }
            snprintf(why, sizeof why, "which is no longer running");
        } else if (strcmp(job, "-") != 0 && strcmp(ojob, job) == 0 && olds < restart) {
            snprintf(why, sizeof why, "on host %s: an earlier run of this SLURM job %s (requeued: restart %ld, now "
                     "%ld)", owner, job, olds, restart);
        } else if (age > lease) {
            snprintf(why, sizeof why, "on host %s%s, whose lease was not renewed for %ld s (lease %d s, "
                     "GENEINR_LOCK_LEASE)", owner, jobs, age, lease);
        } else {
            gi_fail(err, "%s is locked by process %ld on host %s%s (since %s, renewed %ld s ago); another job may be "
                    "writing it. Use another --out; if that job is gone, the lock is taken over once it has not been "
                    "renewed for %d s (GENEINR_LOCK_LEASE), or remove %s by hand", dir, pid, owner, jobs,
                    when_text(since, when, sizeof when), age < 0 ? 0 : age, lease, path);
            return GI_RUNLOCK_BUSY;
        }
        /* Take it over: rename the stale file away (of two newcomers only one
         * moves it), and put back what we moved if it was not what we judged
         * (another newcomer's fresh lock). */
        char aside[sizeof lk->path + 48], moved[sizeof lk->line];
        snprintf(aside, sizeof aside, "%s.stale.%ld", path, (long)getpid());
        if (rename(path, aside) != 0) {
            if (errno == ENOENT)
                continue;
            return gi_fail(err, "cannot remove the stale lock %s: %s", path, strerror(errno));
        }
        read_small(aside, moved, sizeof moved);
        if (strcmp(moved, text) != 0) {
            if (link(aside, path) != 0 && errno != EEXIST) {
                unlink(aside);
                return gi_fail(err, "cannot restore the lock %s: %s", path, strerror(errno));
            }
            unlink(aside);
            continue;
        }
        unlink(aside);
        if (note && note_size)
            snprintf(note, note_size, "note: took over the lock of %s from process %ld %s", dir, pid, why);
    }
    return gi_fail(err, "cannot take the lock %s (other jobs keep taking it)", path);
}

void gi_rundir_lock_release(gi_rundir_lock *lk)
{
    if (!lk || !lk->path[0])
        return;
    if (lk->renewing) {
        pthread_mutex_lock(&lk->mu);
        lk->quit = 1;
        pthread_cond_signal(&lk->cv);
        pthread_mutex_unlock(&lk->mu);
        pthread_join(lk->thread, NULL);
        pthread_cond_destroy(&lk->cv);
        pthread_mutex_destroy(&lk->mu);
        lk->renewing = 0;
    }
    /* Only our own: a job that stalled past its lease may have lost the
     * folder to another, whose lock must stay. */
    char text[sizeof lk->line];
    read_small(lk->path, text, sizeof text);
    if (strcmp(text, lk->line) == 0)
        unlink(lk->path);
    lk->path[0] = '\0';
}

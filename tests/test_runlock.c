/* test_runlock.c - the run-folder lock (runlock.h): zombie holders, leases,
 * SLURM job ids, renewal, release of our own lock only. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "geneinr/runlock.h"

static char dir[256], lockp[300], host[256];

static void write_lock(const char *who, long pid, const char *job, long age)
{
    FILE *f = fopen(lockp, "w");
    fprintf(f, "%s %ld %ld job=%s task=-\n", who, pid, (long)time(NULL) - age, job);
    fclose(f);
    struct timespec t[2] = {{time(NULL) - age, 0}, {time(NULL) - age, 0}};
    utimensat(AT_FDCWD, lockp, t, 0);
}

static void test_zombie(void)
{
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    usleep(100000); /* it has exited; not reaped yet: a zombie */
    CHECK(kill(child, 0) == 0, "kill(pid, 0) takes a zombie for alive");
    CHECK(!gi_runlock_pid_alive(child), "gi_runlock_pid_alive: a zombie is dead");
    CHECK(gi_runlock_pid_alive(getpid()), "gi_runlock_pid_alive: this process lives");
    write_lock(host, child, "-", 0);
    gi_rundir_lock lk;
    char note[1500];
    gi_err err = {{0}};
    int rc = gi_rundir_lock_take(&lk, dir, note, sizeof note, &err);
    CHECKF(rc == 0 && strstr(note, "no longer running"), "the lock of a zombie is taken over with a note",
           "rc %d, note '%s', err '%s'", rc, note, err.msg);
    gi_rundir_lock_release(&lk);
    waitpid(child, NULL, 0);
    CHECK(access(lockp, F_OK) != 0, "release removes the lock");
}

static void test_lease(void)
{
    gi_rundir_lock lk;
    char note[1500];
    gi_err err = {{0}};
    write_lock("other.host", 4242, "-", 60);
    int rc = gi_rundir_lock_take(&lk, dir, note, sizeof note, &err);
    CHECKF(rc == GI_RUNLOCK_BUSY && strstr(err.msg, "other.host"), "another host's lock renewed a minute ago is busy",
           "rc %d: %s", rc, err.msg);
    setenv("GENEINR_LOCK_LEASE", "30", 1);
    rc = gi_rundir_lock_take(&lk, dir, note, sizeof note, &err);
    CHECKF(rc == 0 && strstr(note, "not renewed"), "... and stale with a 30 s lease", "rc %d: %s %s", rc, note,
           err.msg);
    gi_rundir_lock_release(&lk);
    setenv("GENEINR_LOCK_LEASE", "1", 1);
    CHECK(gi_runlock_lease(&err) < 0 && strstr(err.msg, "GENEINR_LOCK_LEASE=1"), "a lease under 2 s is refused");
    setenv("GENEINR_LOCK_LEASE", "10x", 1);
    CHECK(gi_runlock_lease(&err) < 0, "a lease that is not a number is refused");
    unsetenv("GENEINR_LOCK_LEASE");
    CHECK(gi_runlock_lease(&err) == GI_RUNLOCK_LEASE_DEFAULT, "the default lease");
}

static void test_slurm(void)
{
    gi_rundir_lock lk;
    char note[1500];
    gi_err err = {{0}};
    write_lock("other.node", 4242, "555", 0);
    setenv("SLURM_JOB_ID", "556", 1);
    int rc = gi_rundir_lock_take(&lk, dir, note, sizeof note, &err);
    CHECKF(rc == GI_RUNLOCK_BUSY && strstr(err.msg, "SLURM job 555"), "another job's fresh lock on another node is busy",
           "rc %d: %s", rc, err.msg);
    setenv("SLURM_JOB_ID", "555", 1);
    rc = gi_rundir_lock_take(&lk, dir, note, sizeof note, &err);
    CHECKF(rc == GI_RUNLOCK_BUSY, "a fresh lock of another step of our own job (same restart count) is busy",
           "rc %d: %s", rc, note);
    setenv("SLURM_RESTART_COUNT", "1", 1);
    rc = gi_rundir_lock_take(&lk, dir, note, sizeof note, &err);
    CHECKF(rc == 0 && strstr(note, "earlier run of this SLURM job 555"), "our own job's lock from another node is "
           "taken over (requeue: a higher SLURM_RESTART_COUNT)", "rc %d: %s %s", rc, note, err.msg);
    char text[600] = "";
    FILE *f = fopen(lockp, "r");
    if (f) {
        if (!fgets(text, sizeof text, f))
            text[0] = '\0';
        fclose(f);
    }
    CHECKF(strstr(text, "job=555") && strstr(text, "restart=1"), "the lock records SLURM_JOB_ID and SLURM_RESTART_COUNT",
           "'%s'", text);
    /* Someone else's lock now (we lost it): release must leave it. */
    write_lock("other.node", 9999, "777", 0);
    gi_rundir_lock_release(&lk);
    CHECK(access(lockp, F_OK) == 0, "release leaves a lock that is no longer ours");
    unlink(lockp);
    unsetenv("SLURM_JOB_ID");
    unsetenv("SLURM_RESTART_COUNT");
}

static void test_busy_and_renewal(void)
{
    gi_rundir_lock a, b;
    char note[1500];
    gi_err err = {{0}};
    setenv("GENEINR_LOCK_LEASE", "4", 1); /* renewed every second */
    int rc = gi_rundir_lock_take(&a, dir, note, sizeof note, &err);
    CHECKF(rc == 0, "take a free lock", "%s", err.msg);
    CHECK(gi_rundir_lock_take(&b, dir, note, sizeof note, &err) == GI_RUNLOCK_BUSY &&
              strstr(err.msg, "in use by process"), "a second take while held is busy");
    struct timespec old[2] = {{time(NULL) - 100, 0}, {time(NULL) - 100, 0}};
    utimensat(AT_FDCWD, lockp, old, 0);
    struct stat sb;
    int renewed = 0;
    for (int i = 0; i < 40 && !renewed; i++) {
        usleep(100000);
        renewed = stat(lockp, &sb) == 0 && sb.st_mtime > time(NULL) - 10;
    }
    CHECK(renewed, "the holder renews the lease (mtime) in the background");
    gi_rundir_lock_release(&a);
    gi_rundir_lock_release(&a);
    CHECK(access(lockp, F_OK) != 0, "release is idempotent and removes the lock");
    unsetenv("GENEINR_LOCK_LEASE");
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/test_runlock.%ld", (long)getpid());
    mkdir(dir, 0777);
    snprintf(lockp, sizeof lockp, "%s/.geneinr.lock", dir);
    gethostname(host, sizeof host - 1);
    unsetenv("SLURM_JOB_ID");
    unsetenv("GENEINR_LOCK_LEASE");
    test_zombie();
    test_lease();
    test_slurm();
    test_busy_and_renewal();
    unlink(lockp);
    rmdir(dir);
    return check_summary();
}

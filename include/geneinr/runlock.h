/* runlock.h - the run-folder lock: one job at a time in a folder.
 *
 * Every command that writes into a folder it owns holds DIR/.geneinr.lock
 * while it works: train, render and run (the run folder), eval (its output
 * folder), prepare (its --out folder), and sweep, which holds the lock of
 * each trial folder while a group trains it (a per-trial claim: the sweeps of
 * a job array, or several `geneinr sweep`s, share one sweep folder and each
 * takes the trials no one holds) and of OUT/best while rendering it.
 *
 * The file is created with O_EXCL and holds one line,
 *     HOST PID START job=SLURM_JOB_ID task=SLURM_ARRAY_TASK_ID
 * (job/task "-" outside SLURM; readers of the first three fields still work).
 * While it is held, a thread of the holder renews it: it sets the file's
 * mtime to now every lease/4 seconds (at most every 60 s), so the lease is
 * renewed through every long phase (training, prior fit, render, eval folds)
 * without those loops having to know.
 *
 * A newcomer finding the file decides:
 *  - same host: the holder is alive if its PID exists and is not a zombie
 *    (state Z/X in /proc/PID/stat: dead but not reaped, common in containers
 *    without an init); alive -> refused (busy), dead -> taken over with a note;
 *  - another host, and the lock names our own SLURM_JOB_ID: an earlier run of
 *    this very job (requeued onto another node after a node failure) -> taken
 *    over with a note;
 *  - another host, lease not renewed for GENEINR_LOCK_LEASE seconds (default
 *    600 = 10 min; 2 .. 604800) -> stale, taken over with a note;
 *  - otherwise refused (busy), saying who holds it and when it goes stale.
 * A takeover renames the stale file away (atomic: of two newcomers only one
 * can), checks that what it moved is the lock it judged, then creates its own
 * with O_EXCL. Release removes the file only while it is still ours.
 *
 * Rank 0 alone takes and releases; callers agree the result across ranks.
 */
#ifndef GENEINR_RUNLOCK_H
#define GENEINR_RUNLOCK_H

#include <pthread.h>
#include <stddef.h>

#include "geneinr/error.h"

/* gi_rundir_lock_take's return when a live job holds the folder (err says who). */
#define GI_RUNLOCK_BUSY 1

/* Default lease of a lock from another host, seconds (GENEINR_LOCK_LEASE overrides). */
#define GI_RUNLOCK_LEASE_DEFAULT 600

typedef struct gi_rundir_lock {
    char path[1100];         /* "" when not held */
    char line[600];          /* what we wrote: released only while the file still says it */
    int renewing;            /* the renewal thread runs */
    int quit;                /* tells it to end (under mu) */
    int every;               /* seconds between renewals */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} gi_rundir_lock;

/* Take DIR/.geneinr.lock (DIR must exist) and start renewing it. Returns 0
 * when held, GI_RUNLOCK_BUSY when a live job holds it, -1 on another error
 * (both with err). note (may be NULL) receives a line to print when a stale
 * lock was taken over ("" otherwise). lk must stay where it is until released
 * (the renewal thread points at it). */
int gi_rundir_lock_take(gi_rundir_lock *lk, const char *dir, char *note, size_t note_size, gi_err *err);

/* Stop renewing and remove the lock if held and still ours (idempotent; a
 * zeroed struct is not held). */
void gi_rundir_lock_release(gi_rundir_lock *lk);

/* The lease in seconds: GENEINR_LOCK_LEASE, else the default; -1 with err
 * when the variable is set to something else than an integer in range. */
int gi_runlock_lease(gi_err *err);

/* Is process pid on this host alive? A zombie (state Z or X) is not. */
int gi_runlock_pid_alive(long pid);

#endif

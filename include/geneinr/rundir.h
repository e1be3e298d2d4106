/* rundir.h - the run folder: one job at a time, and no outputs of other weights.
 *
 * Lock. `train`, `render` and `run` hold OUT/.geneinr.lock while they work: a
 * file created with O_EXCL holding "host pid start-time". A second job on the
 * same folder is refused with who holds it, instead of both writing the same
 * files. A lock left by a process that died (kill -9, node crash) on this host
 * is taken over with a note; one from another host is refused (we cannot tell
 * whether that process lives), with how to remove it by hand. The lock is
 * removed when the command ends, on success or error.
 *
 * Stale outputs. New weights make every rendered file of the folder stale:
 * gi_rundir_remove_renders deletes them (atlas.h5 unless keep_atlas, the
 * per-gene NIfTIs in nifti/, expression.nii.gz and genes.tsv, previews in
 * preview/, the BIDS files; report.html is rebuilt when the command ends),
 * so a folder never shows maps of two different trainings side by side.
 * Only files that OUT/.geneinr-manifest lists as geneinr's and that are
 * unchanged since (manifest.h) are removed; a user's file is left alone,
 * with one note when training starts. Training calls it with keep_atlas = 0;
 * rendering at its start with keep_atlas = 1 (the new atlas replaces the old
 * one atomically at the end).
 *
 * Rank 0 alone does both; callers agree the result across ranks.
 */
#ifndef GENEINR_RUNDIR_H
#define GENEINR_RUNDIR_H

#include <stddef.h>

#include "geneinr/error.h"

typedef struct gi_rundir_lock {
    char path[1100];         /* "" when not held */
} gi_rundir_lock;

/* Take OUT/.geneinr.lock. note (may be NULL) receives a line to print when
 * a stale lock was taken over ("" otherwise). */
int gi_rundir_lock_take(gi_rundir_lock *lk, const char *out_dir, char *note, size_t note_size, gi_err *err);

/* Remove the lock if held (idempotent). */
void gi_rundir_lock_release(gi_rundir_lock *lk);

/* Delete rendered outputs in out_dir (see above); returns how many files
 * were removed, or -1 with err when one could not be removed. */
int gi_rundir_remove_renders(const char *out_dir, int keep_atlas, gi_err *err);

#endif

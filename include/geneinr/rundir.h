/* rundir.h - the run folder: one job at a time, and no outputs of other weights.
 *
 * Lock. Every command that writes a folder holds OUT/.geneinr.lock while it
 * works (runlock.h: who holds it, zombies, other hosts, leases, SLURM jobs).
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
#include "geneinr/runlock.h" /* the lock (gi_rundir_lock_take / _release) */

/* Delete rendered outputs in out_dir (see above); returns how many files
 * were removed, or -1 with err when one could not be removed. */
int gi_rundir_remove_renders(const char *out_dir, int keep_atlas, gi_err *err);

#endif

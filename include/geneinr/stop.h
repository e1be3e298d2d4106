/* stop.h - a graceful stop on SIGTERM, SIGINT or SIGUSR1 (time limits, requeue, Ctrl-C).
 *
 * The command layer installs the handler around its long work (train, run,
 * render, eval, sweep: gi_stop_install) and removes it after
 * (gi_stop_uninstall); the handler only records that a signal came. Training asks gi_stop_pending() at every step boundary and
 * agrees across its ranks (a signal may reach the ranks at different moments,
 * or only some of them), so every rank checkpoints the same step and leaves
 * together; render asks between batches of voxels (a stop is agreed as its
 * rounds' errors are: the atlas.h5.tmp is removed), eval at the boundaries of
 * methods and folds (finished folds are kept in OUT/folds/N/result.bin and a
 * rerun resumes); the command then exits with GI_EXIT_REQUEUE, which job scripts
 * take as "requeue me" (the scripts in jobs/). Outside the installed window the
 * signals keep their default action (terminate), so a render or an info is
 * never left running after being asked to stop.
 *
 * The flag is the process's one piece of global state: a signal handler can
 * reach nothing else.
 */
#ifndef GENEINR_STOP_H
#define GENEINR_STOP_H

/* Exit status of a command stopped by a signal after checkpointing:
 * EX_TEMPFAIL of sysexits.h, "temporary failure, try again". */
#define GI_EXIT_REQUEUE 75

void gi_stop_install(void);
void gi_stop_uninstall(void);

/* Non-zero once SIGTERM, SIGINT or SIGUSR1 arrived while installed (stays set). */
int gi_stop_pending(void);

/* The signal number that arrived, 0 if none. */
int gi_stop_signal(void);

/* Its name for messages ("SIGTERM", "SIGINT", "SIGUSR1"; "" if none). */
const char *gi_stop_signal_name(void);
const char *gi_stop_name_of(int sig);   /* the same for a signal number (e.g. one agreed across ranks) */

#endif

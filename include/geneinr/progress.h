/* progress.h - progress lines for long phases (the prior's fit, render,
 * eval's folds), in the format of training's "step ... ETA" lines.
 *
 * A phase prints nothing for its first GI_PROGRESS_EVERY seconds; then at
 * most one line every GI_PROGRESS_EVERY seconds,
 *     "prior fit: 3/12 genes  8s elapsed  ETA 24s"
 * (without a total: "prior fit: 40 likelihood evaluations  8s elapsed"), and
 * at its end, if it took GI_PROGRESS_QUIET seconds or more, one line with its
 * time: "prior fit: done in 23s". So short runs (the tests, small phantoms)
 * print what they printed before, and logs get a line per 5 s at most.
 * Only MPI_COMM_WORLD rank 0 prints (every rank runs the same phases), or
 * the rank that does the work alone (gi_progress_begin_here); a phase whose
 * `what` is NULL is silent.
 */
#ifndef GENEINR_PROGRESS_H
#define GENEINR_PROGRESS_H

#include <stddef.h>

#define GI_PROGRESS_EVERY 5.0
#define GI_PROGRESS_QUIET 2.0

typedef struct gi_progress {
    char what[96];           /* the line's prefix ("" = silent) */
    const char *unit;        /* what is counted ("genes", "slabs") */
    long total;              /* units in all; 0 = unknown (no ETA) */
    long done;
    double t0, last;         /* monotonic seconds */
    double every;            /* seconds between lines: GI_PROGRESS_EVERY, or the
                              * environment's GENEINR_PROGRESS_EVERY (0 = every
                              * unit and always the final line: for tests) */
    int approx;              /* total is an estimate (an optimiser's typical count): "~" */
    int on;                  /* prints (rank 0 and a name) */
} gi_progress;

/* Start a phase; what NULL = silent. */
void gi_progress_begin(gi_progress *p, const char *what, const char *unit, long total);
/* The same, printing on this rank whatever its number: for work that one
 * rank does alone (eval's baselines, dealt to the ranks of a group). */
void gi_progress_begin_here(gi_progress *p, const char *what, const char *unit, long total);
/* Set (or change) the expected total once it is known; approx 1 = an
 * estimate, shown as "~N" with an "~" ETA. NULL p: nothing. */
void gi_progress_expect(gi_progress *p, long total, int approx);
/* done units so far: prints when GI_PROGRESS_EVERY seconds have passed since the last line. */
void gi_progress_step(gi_progress *p, long done);
/* End of the phase: its time, if it was long. */
void gi_progress_end(gi_progress *p);

/* A duration as training prints it: "45s", "3m07s", "2h05m", "?" when unknown. */
void gi_fmt_duration(double s, char *buf, size_t n);

#endif

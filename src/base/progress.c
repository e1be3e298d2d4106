/* progress.c - progress lines for long phases (see progress.h). */
#include "geneinr/progress.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int world_rank0(void)
{
    int up = 0, fin = 0, rank = 0;
    MPI_Initialized(&up);
    MPI_Finalized(&fin);
    if (up && !fin)
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    return rank == 0;
}

void gi_fmt_duration(double s, char *buf, size_t n)
{
    if (!(s >= 0) || s > 1e8)
        snprintf(buf, n, "?");
    else if (s < 60)
        snprintf(buf, n, "%.0fs", s);
    else if (s < 3600)
        snprintf(buf, n, "%dm%02ds", (int)s / 60, (int)s % 60);
    else
        snprintf(buf, n, "%dh%02dm", (int)s / 3600, ((int)s % 3600) / 60);
}

void gi_progress_begin(gi_progress *p, const char *what, const char *unit, long total)
{
    memset(p, 0, sizeof *p);
    if (what)
        snprintf(p->what, sizeof p->what, "%s", what);
    p->unit = unit ? unit : "";
    p->total = total > 0 ? total : 0;
    p->t0 = p->last = now();
    p->on = what && what[0] && world_rank0();
    /* GENEINR_PROGRESS_EVERY=S: a line every S seconds instead (the tests use 0). */
    const char *e = getenv("GENEINR_PROGRESS_EVERY");
    char *end = NULL;
    double every = e && e[0] ? strtod(e, &end) : -1;
    p->every = end && *end == '\0' && every >= 0 && every <= 3600 ? every : GI_PROGRESS_EVERY;
}

void gi_progress_begin_here(gi_progress *p, const char *what, const char *unit, long total)
{
    gi_progress_begin(p, what, unit, total);
    p->on = what && what[0];
}

void gi_progress_expect(gi_progress *p, long total, int approx)
{
    if (!p)
        return;
    p->total = total > 0 ? total : 0;
    p->approx = approx;
}

void gi_progress_step(gi_progress *p, long done)
{
    p->done = done;
    if (!p->on)
        return;
    double t = now();
    if (t - p->last < p->every)
        return;
    p->last = t;
    char el[32], eta[32];
    gi_fmt_duration(t - p->t0, el, sizeof el);
    if (p->total > 0 && done > 0) {
        const char *a = p->approx ? "~" : "";
        if (done < p->total)
            gi_fmt_duration((t - p->t0) * (double)(p->total - done) / (double)done, eta, sizeof eta);
        else
            snprintf(eta, sizeof eta, "?");
        printf("%s: %ld/%s%ld %s  %s elapsed  ETA %s%s\n", p->what, done, a, p->total, p->unit, el,
               done < p->total ? a : "", eta);
    } else {
        printf("%s: %ld %s  %s elapsed\n", p->what, done, p->unit, el);
    }
    fflush(stdout);
}

void gi_progress_end(gi_progress *p)
{
    if (!p->on)
        return;
    double t = now() - p->t0;
    if (t >= (p->every < GI_PROGRESS_QUIET ? p->every : GI_PROGRESS_QUIET)) {
        char el[32];
        gi_fmt_duration(t, el, sizeof el);
        printf("%s: done in %s\n", p->what, el);
        fflush(stdout);
    }
    p->on = 0;
}

/* cmd_common.c - what every command file shares: the usage error and the
 * exit status of a command (cmd.h). Apart from cli.c, which lists the
 * commands, so that the command files and the table do not call each other
 * in a circle. */
#include "geneinr/cmd.h"
#include "geneinr/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "geneinr/dist.h"
#include "geneinr/runlock.h"
#include "geneinr/stop.h"

int gi_cmd_usage_error(const gi_cmd_ctx *x, const char *cmd, const char *fmt, ...)
{
    if (x->rank == 0) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "geneinr: ");
        vfprintf(stderr, fmt, ap);
        fprintf(stderr, "\nRun 'geneinr %s%s--help' for usage.\n", cmd ? cmd : "", cmd ? " " : "");
        va_end(ap);
    }
    return GI_EXIT_USAGE;
}

int gi_cmd_status(const gi_cmd_ctx *x, int rc, const gi_err *err)
{
    if (rc != 0 && x->rank == 0)
        fprintf(stderr, "geneinr: error: %s\n", err->msg);
    return rc != 0 ? 1 : 0;
}

int gi_cmd_lock(const gi_cmd_ctx *x, const char *dir, gi_rundir_lock *lk, gi_err *err)
{
    char note[1400] = "";
    memset(lk, 0, sizeof *lk);
    int rc = x->rank == 0 ? gi_rundir_lock_take(lk, dir, note, sizeof note, err) : 0;
    if (rc == 0 && note[0]) {
        printf("%s\n", note);
        fflush(stdout);
    }
    if (gi_dist_agree(x->comm, rc, err) != 0) {
        gi_rundir_lock_release(lk);
        return -1;
    }
    return 0;
}

int gi_cmd_stop_agreed(const gi_cmd_ctx *x)
{
    int mine = gi_stop_pending(), any = 0;
    MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, x->comm);
    return any;
}

int gi_cmd_stopped(const gi_cmd_ctx *x, const char *what, const char *resume)
{
    /* The signal some rank got (rank 0 may have got none). */
    int mine = gi_stop_signal(), sig_no = 0;
    MPI_Allreduce(&mine, &sig_no, 1, MPI_INT, MPI_MAX, x->comm);
    if (x->rank == 0) {
        const char *sig = gi_stop_name_of(sig_no);
        fprintf(stderr, "geneinr: %s stopped by %s; %s (exit %d)\n", what, sig[0] ? sig : "a stop signal", resume,
                GI_EXIT_REQUEUE);
        fflush(stderr);
    }
    return GI_EXIT_REQUEUE;
}

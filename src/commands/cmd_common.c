/* cmd_common.c - what every command file shares: the usage error and the
 * exit status of a command (cmd.h). Apart from cli.c, which lists the
 * commands, so that the command files and the table do not call each other
 * in a circle. */
#include "geneinr/cmd.h"
#include "geneinr/error.h"

#include <stdarg.h>
#include <stdio.h>

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

/* error.c - gi_err formatting helpers (see error.h). */
#include "geneinr/error.h"

#include <stdio.h>
#include <string.h>

int gi_fail(gi_err *err, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int gi_fail_prefix(gi_err *err, const char *fmt, ...)
{
    if (err) {
        char prefix[1024];
        char old[sizeof err->msg];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(prefix, sizeof prefix, fmt, ap);
        va_end(ap);
        memcpy(old, err->msg, sizeof old);
        snprintf(err->msg, sizeof err->msg, "%s: %s", prefix, old);
    }
    return -1;
}

/* check.h - the unit-test convention shared by every tests/test_*.c.
 *
 * Each test binary prints one line per check: "ok - name", "not ok - name:
 * why" or "skip - name: why"; tests/run.sh counts them. A binary exits
 * non-zero if any check failed. Usage:
 *
 *   static void test_x(void) { CHECK(1 + 1 == 2, "arithmetic"); }
 *   int main(void) { test_x(); return check_summary(); }
 */
#ifndef GENEINR_TEST_CHECK_H
#define GENEINR_TEST_CHECK_H

#include <stdio.h>
#include <stdarg.h>

static int check_failures_;

static inline void check_report_(int ok, const char *name, const char *fmt, ...)
{
    if (ok) {
        printf("ok - %s\n", name);
    } else {
        va_list ap;
        printf("not ok - %s: ", name);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
        check_failures_++;
    }
    fflush(stdout);
}

/* CHECK(cond, name): a check that names itself; CHECKF adds a printf-style
 * explanation shown when it fails. */
#define CHECK(cond, name) check_report_((cond) ? 1 : 0, (name), "%s (%s:%d)", #cond, __FILE__, __LINE__)
#define CHECKF(cond, name, ...) check_report_((cond) ? 1 : 0, (name), __VA_ARGS__)
#define SKIP(name, why) (printf("skip - %s: %s\n", (name), (why)), fflush(stdout))

static inline int check_summary(void) { return check_failures_ ? 1 : 0; }

#endif

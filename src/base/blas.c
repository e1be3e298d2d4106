/* blas.c - OpenBLAS kernel selection (see blas.h). */
#include "geneinr/blas.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *openblas_get_corename(void);

const char *gi_blas_core(void)
{
    const char *name = openblas_get_corename();
    return name ? name : "unknown";
}

static int core_is(const char *core, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(core, *list) == 0)
            return 1;
    return 0;
}

const char *gi_blas_better_core(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    static const char *const avx512_cores[] = {"SkylakeX", "Cooperlake", "SapphireRapids", NULL};
    /* AVX2 kernels or better (the Zen kernels are the Haswell ones tuned for AMD). */
    static const char *const avx2_cores[] = {"Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids", NULL};
    const char *core = gi_blas_core();
    __builtin_cpu_init();
    /* __builtin_cpu_supports also checks that the OS saves the AVX-512 / AVX state. */
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512cd"))
        return core_is(core, avx512_cores) ? NULL : "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return core_is(core, avx2_cores) ? NULL : "Haswell";
#endif
    return NULL;
}

void gi_blas_use_best_core(char **argv)
{
    if (getenv("OPENBLAS_CORETYPE"))
        return;
    const char *want = gi_blas_better_core();
    if (!want || setenv("OPENBLAS_CORETYPE", want, 1) != 0)
        return;
    execv("/proc/self/exe", argv);
    /* exec failed: keep running on the kernels OpenBLAS chose */
    unsetenv("OPENBLAS_CORETYPE");
}

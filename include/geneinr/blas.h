/* blas.h - which OpenBLAS kernels this process runs.
 *
 * Debian's OpenBLAS is built with DYNAMIC_ARCH: at load time it picks kernels
 * for the CPU it recognises. A CPU newer than the library (OpenBLAS 0.3.21
 * does not know Sapphire Rapids) falls back to the generic "Prescott" SSE3
 * kernels, about 6x slower for sgemm than the AVX-512 ("SkylakeX") kernels
 * that the same CPU runs perfectly well. The choice is made in OpenBLAS's
 * library constructor, before main, and can only be changed through the
 * OPENBLAS_CORETYPE environment variable - so the process restarts itself
 * once with the variable set.
 */
#ifndef GENEINR_BLAS_H
#define GENEINR_BLAS_H

/* The OpenBLAS kernel family a CPU like this one should use ("SkylakeX",
 * "Haswell"), or NULL when OpenBLAS's own choice is as good. */
const char *gi_blas_better_core(void);

/* Call first in main, before MPI_Init and before any thread exists. If
 * OPENBLAS_CORETYPE is unset and OpenBLAS fell back to slower kernels than
 * the CPU supports, set OPENBLAS_CORETYPE and re-execute the program with the
 * same arguments (the process keeps its pid, so mpirun/srun see no change).
 * Returns only when no restart was needed or the restart failed (then the
 * program simply runs on the slower kernels). An explicit OPENBLAS_CORETYPE,
 * including an empty one, is always respected. */
void gi_blas_use_best_core(char **argv);

/* The kernel family OpenBLAS is running ("SkylakeX", "Prescott", ...). */
const char *gi_blas_core(void);

#endif

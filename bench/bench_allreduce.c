/* bench_allreduce.c - MPI_Allreduce (sum of doubles, in place, as train.c
 * reduces its gradient accumulator) for the byte sizes given, on all ranks;
 * prints size, median and minimum time of 20 repeats, and the bandwidth the
 * median implies for a ring (2 (P-1)/P x bytes per rank). Also the same
 * buffer in 8 buckets of non-blocking MPI_Iallreduce, waited together (what
 * a bucketed allreduce costs when nothing overlaps it).
 *
 * usage: mpirun -np P bench_allreduce BYTES...
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (rank == 0)
        printf("%-6s %12s %12s %12s %14s %16s\n", "ranks", "bytes", "median_ms", "min_ms", "ring_GB_per_s",
               "8_buckets_ms");
    for (int a = 1; a < argc; a++) {
        long bytes = atol(argv[a]);
        long n = bytes / 8 > 0 ? bytes / 8 : 1;
        double *buf = malloc(sizeof(double) * (size_t)n);
        for (long i = 0; i < n; i++)
            buf[i] = 1e-9 * (double)(i % 1000);
        enum { REPS = 20 };
        double t[REPS], tb[REPS];
        MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD); /* warm-up */
        for (int r = 0; r < REPS; r++) {
            MPI_Barrier(MPI_COMM_WORLD);
            double t0 = MPI_Wtime();
            MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
            t[r] = MPI_Wtime() - t0;
            MPI_Barrier(MPI_COMM_WORLD);
            t0 = MPI_Wtime();
            MPI_Request req[8];
            for (int b = 0; b < 8; b++) {
                long lo = n * b / 8, hi = n * (b + 1) / 8;
                MPI_Iallreduce(MPI_IN_PLACE, buf + lo, (int)(hi - lo), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD, &req[b]);
            }
            MPI_Waitall(8, req, MPI_STATUSES_IGNORE);
            tb[r] = MPI_Wtime() - t0;
        }
        /* The slowest rank's time is the collective's time. */
        MPI_Allreduce(MPI_IN_PLACE, t, REPS, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        MPI_Allreduce(MPI_IN_PLACE, tb, REPS, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        qsort(t, REPS, sizeof t[0], cmp);
        qsort(tb, REPS, sizeof tb[0], cmp);
        double med = t[REPS / 2], ring = size > 1 ? 2.0 * (size - 1) / size * (double)n * 8 / med / 1e9 : 0;
        if (rank == 0)
            printf("%-6d %12ld %12.3f %12.3f %14.2f %16.3f\n", size, n * 8, 1e3 * med, 1e3 * t[0], ring,
                   1e3 * tb[REPS / 2]);
        free(buf);
    }
    MPI_Finalize();
    return 0;
}

/* dist.c - collective error agreement and balanced slab partition (see dist.h). */
#include "geneinr/dist.h"

#include <string.h>

int gi_dist_agree(MPI_Comm comm, int status, gi_err *err)
{
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    /* Lowest failing rank, or size when all succeeded. */
    int mine = status == 0 ? size : rank, first;
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm);
    if (first == size)
        return 0;
    char msg[sizeof err->msg];
    if (rank == first)
        memcpy(msg, err ? err->msg : "unknown error", err ? sizeof msg : 14);
    MPI_Bcast(msg, (int)sizeof msg, MPI_CHAR, first, comm);
    msg[sizeof msg - 1] = '\0';
    if (first > 0)
        return gi_fail(err, "rank %d: %s", first, msg);
    return gi_fail(err, "%s", msg);
}

void gi_slab_partition(const long *count, int nz, int nparts, int *begin)
{
    long total = 0;
    for (int z = 0; z < nz; z++)
        total += count[z];
    begin[0] = 0;
    int z = 0;
    long cum = 0;
    for (int p = 1; p < nparts; p++) {
        /* Advance until this part's cumulative target is reached; a slice goes
         * to the earlier part when that leaves the cumulative count closer to
         * the target. */
        double target = (double)total * p / nparts;
        while (z < nz && cum + count[z] <= target) {
            cum += count[z];
            z++;
        }
        if (z < nz && count[z] > 0 && (target - cum) > (cum + count[z] - target)) {
            cum += count[z];
            z++;
        }
        begin[p] = z;
    }
    begin[nparts] = nz;
}

void gi_share(long n, int p, int nparts, long *lo, long *hi)
{
    *lo = n * p / nparts;
    *hi = n * (p + 1) / nparts;
}

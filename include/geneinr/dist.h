/* dist.h - MPI helpers: collective error agreement and the slab partition.
 *
 * Rule: before any rank enters the next collective, all ranks agree whether
 * the previous phase succeeded (gi_dist_agree). A failure on one rank becomes
 * the same failure, with the same message, on every rank, so nobody waits
 * forever in a collective that a failed rank will never join.
 */
#ifndef GENEINR_DIST_H
#define GENEINR_DIST_H

#include <mpi.h>

#include "geneinr/error.h"

/* status: 0 ok, -1 failed locally (message in err). Returns 0 if every rank
 * succeeded; otherwise -1 on every rank, with err holding the message of the
 * lowest failing rank (prefixed "rank N: " when N > 0). */
int gi_dist_agree(MPI_Comm comm, int status, gi_err *err);

/* Split nz z-slices into nparts contiguous slabs with about equal numbers of
 * in-mask voxels (count[z] = in-mask voxels of slice z): part p owns slices
 * [begin[p], begin[p + 1]); begin has nparts + 1 entries, begin[0] = 0,
 * begin[nparts] = nz. Slabs may be empty when nparts exceeds the slices that
 * hold voxels. */
void gi_slab_partition(const long *count, int nz, int nparts, int *begin);

/* Contiguous share [*lo, *hi) of n items for part p of nparts. */
void gi_share(long n, int p, int nparts, long *lo, long *hi);

#endif

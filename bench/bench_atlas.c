/* bench_atlas.c - the parallel HDF5 atlas write on its own (atlas.h): create,
 * write every slice of every gene in gene groups, finish; prints the time of
 * each phase, the chunk layout and the file size. The values are a smooth
 * field plus noise in the low mantissa bits (about as compressible as a
 * rendered map) inside an ellipsoid covering ~21% of the grid (the brain's
 * share of the 2 mm MNI box), NaN outside.
 *
 * usage: mpirun -np P bench_atlas GENES NX NY NZ CHUNK_GENES GROUP COMPRESS PATH
 *   CHUNK_GENES 0 = automatic (gi_atlas_chunk_genes); GROUP genes per write
 *   (one z-slice of GROUP genes per rank and write, as a render with gene groups).
 *   e.g. the 2 mm grid x 15,600 genes: bench_atlas 15600 91 109 91 0 2552 1 /tmp/a.h5
 */
#include "geneinr/atlas.h"
#include "geneinr/dist.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int inside(int x, int y, int z, int nx, int ny, int nz)
{
    double u = (x - nx / 2.0) / (0.38 * nx), v = (y - ny / 2.0) / (0.42 * ny), w = (z - nz / 2.0) / (0.40 * nz);
    return u * u + v * v + w * w <= 1.0;
}

static float value(int g, int x, int y, int z)
{
    uint32_t h = (uint32_t)g * 2654435761u ^ (uint32_t)(x * 73856093) ^ (uint32_t)(y * 19349663) ^ (uint32_t)(z * 83492791);
    h ^= h >> 13;
    h *= 0x5bd1e995u;
    h ^= h >> 15;
    return (float)(5.0 + sin(0.11 * x + 0.3 * g) * cos(0.07 * y) + 0.5 * sin(0.09 * z + 0.01 * g) +
                   1e-3 * (double)(h & 0xffff) / 65536.0);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (argc != 9) {
        if (rank == 0)
            fprintf(stderr, "usage: bench_atlas GENES NX NY NZ CHUNK_GENES GROUP COMPRESS PATH\n");
        MPI_Finalize();
        return 2;
    }
    int G = atoi(argv[1]), nx = atoi(argv[2]), ny = atoi(argv[3]), nz = atoi(argv[4]);
    int cg = atoi(argv[5]), group = atoi(argv[6]), compress = atoi(argv[7]);
    const char *path = argv[8];
    if (G < 1 || nx < 1 || ny < 1 || nz < 1 || cg < 0 || group < 1 || compress < 0) {
        if (rank == 0)
            fprintf(stderr, "bench_atlas: bad arguments\n");
        MPI_Finalize();
        return 2;
    }
    char **genes = malloc(sizeof(char *) * (size_t)G);
    for (int g = 0; g < G; g++) {
        genes[g] = malloc(16);
        snprintf(genes[g], 16, "G%05d", g);
    }
    const char *donors[1] = { "D1" };
    gi_atlas_info info = {
        .n_genes = G, .genes = (const char *const *)genes, .n_donors = 1, .donors = donors,
        .nx = nx, .ny = ny, .nz = nz, .kind = "atlas", .compress = compress,
        .every_slice_written = 1, .chunk_genes = cg,
    };
    double affine[16] = { -2, 0, 0, 90, 0, 2, 0, -126, 0, 0, 2, -72, 0, 0, 0, 1 };
    memcpy(info.affine, affine, sizeof affine);

    /* Slabs balanced by in-mask voxels, as a render cuts them. */
    long *count = calloc((size_t)nz, sizeof(long)), total = 0;
    int *begin = malloc(sizeof(int) * ((size_t)size + 1));
    for (int z = 0; z < nz; z++)
        for (int y = 0; y < ny; y++)
            for (int x = 0; x < nx; x++)
                count[z] += inside(x, y, z, nx, ny, nz);
    for (int z = 0; z < nz; z++)
        total += count[z];
    gi_slab_partition(count, nz, size, begin);
    int z_lo = begin[rank], z_hi = begin[rank + 1], mine = z_hi - z_lo, rounds;
    MPI_Allreduce(&mine, &rounds, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    int chunk_genes = gi_atlas_chunk_genes(&info);
    if (rank == 0)
        printf("bench_atlas: %d genes x %dx%dx%d (%ld in-mask voxels), %d ranks, deflate %d; chunk %d genes x 1 slice "
               "(%.2f MB), %lld chunks; writes of 1 slice x %d genes\n", G, nx, ny, nz, total, size, compress,
               chunk_genes, (double)chunk_genes * nx * ny * 4 / 1048576.0,
               (long long)((G + chunk_genes - 1) / chunk_genes) * nz, group);

    size_t plane = (size_t)nx * ny;
    float *buf = malloc(sizeof(float) * plane * (size_t)group);
    unsigned char *mbuf = malloc(plane);
    gi_err err = { "" };
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    gi_atlas_writer *w = gi_atlas_create(MPI_COMM_WORLD, path, &info, &err);
    double t_create = MPI_Wtime() - t0, t_fill = 0, t_write = 0;
    int rc = w ? 0 : -1;
    for (int g0 = 0; rc == 0 && g0 < G; g0 += group) {
        int ng = G - g0 < group ? G - g0 : group;
        for (int r = 0; rc == 0 && r < rounds; r++) {
            int z = z_lo + r, n = z < z_hi ? 1 : 0;
            double tf = MPI_Wtime();
            if (n)
                for (int j = 0; j < ng; j++)
                    for (int y = 0; y < ny; y++)
                        for (int x = 0; x < nx; x++) {
                            int in = inside(x, y, z, nx, ny, nz);
                            buf[(size_t)j * plane + (size_t)y * nx + x] = in ? value(g0 + j, x, y, z) : NAN;
                            if (j == 0)
                                mbuf[(size_t)y * nx + x] = (unsigned char)in;
                        }
            double tw = MPI_Wtime();
            t_fill += tw - tf;
            rc = gi_atlas_write_genes(w, g0, ng, n ? z : 0, n, buf, g0 == 0 ? mbuf : NULL, &err);
            t_write += MPI_Wtime() - tw;
            if (rc != 0 && rank == 0)
                printf("bench_atlas: the write of genes %d..%d, round %d failed\n", g0, g0 + ng - 1, r);
        }
    }
    double tf0 = MPI_Wtime();
    if (w)
        rc = rc == 0 ? gi_atlas_finish(w, &err) : (gi_atlas_abort(w), -1);
    double t_finish = MPI_Wtime() - tf0, t_all = MPI_Wtime() - t0;
    if (rank == 0) {
        struct stat st;
        if (rc != 0)
            printf("bench_atlas: FAILED: %s\n", err.msg);
        else if (stat(path, &st) == 0)
            printf("bench_atlas: create %.2f s, writes %.2f s (values made in %.2f s), finish %.2f s, all %.2f s; "
                   "file %.1f MB (%.1f%% of the dense %.1f MB)\n", t_create, t_write, t_fill, t_finish, t_all,
                   st.st_size / 1048576.0, 100.0 * st.st_size / ((double)plane * nz * G * 4),
                   (double)plane * nz * G * 4 / 1048576.0);
    }
    free(buf);
    free(mbuf);
    for (int g = 0; g < G; g++)
        free(genes[g]);
    free(genes);
    free(count);
    free(begin);
    MPI_Finalize();
    return rc == 0 ? 0 : 1;
}

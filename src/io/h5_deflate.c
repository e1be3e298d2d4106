/* h5_deflate.c - HDF5's deflate filter compresses through libdeflate.
 *
 * Why: deflate level 1 was 46% of the CPU of a 1 mm render (docs/BENCHMARKS.md);
 * libdeflate writes the same format (zlib streams, RFC 1950) several times
 * faster than zlib. Files stay plain deflate (filter ID 1, its one parameter
 * the level), which any HDF5 reader - h5py, h5dump, MATLAB - inflates with
 * zlib; only the compressed bytes differ from zlib's, never the values.
 *
 * How: HDF5 will not let a program replace a predefined filter (H5Zregister
 * refuses IDs below 256: "unable to modify predefined filters"), and its
 * deflate filter compresses each chunk with one call of zlib's compress2().
 * This file defines compress2 in the program: the dynamic linker binds
 * libhdf5's undefined, unversioned compress2 to the executable's definition
 * first (ELF symbol interposition), so every chunk HDF5 deflates in this
 * process goes through libdeflate. Inflating (reading) stays zlib's.
 *
 * What must stay true: compress2's contract (zlib.h), for any caller:
 *   - *destLen in: the room at dest; out: the bytes written; Z_OK, or
 *     Z_BUF_ERROR when the stream does not fit (HDF5 then stores the chunk
 *     unfiltered: deflate is an optional filter), Z_STREAM_ERROR for a bad level.
 *   - level Z_DEFAULT_COMPRESSION means 6; levels 0-9 as zlib's. Anything
 *     libdeflate does not cover (level 0, no memory) goes to zlib's own compress2.
 *   - safe to call from several threads at once (the compressor cache below).
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>

#include <libdeflate.h>
#include <zlib.h>

typedef int (*compress2_fn)(Bytef *, uLongf *, const Bytef *, uLong, int);

/* zlib's compress2, the next definition after ours. */
static int zlib_compress2(Bytef *dest, uLongf *destLen, const Bytef *source, uLong sourceLen, int level)
{
    compress2_fn next = (compress2_fn)dlsym(RTLD_NEXT, "compress2");
    return next ? next(dest, destLen, source, sourceLen, level) : Z_MEM_ERROR;
}

/* One compressor per level, kept for the life of the process. A compressor is
 * several hundred KB that libdeflate allocates and sets up; allocated afresh
 * for each chunk, as this file first did, its pages were faulted in (and
 * zeroed by the kernel) again for every chunk: 13% of a 1 mm render's CPU went
 * to page faults, most of them here (perf, docs/BENCHMARKS.md). The cache is
 * process-wide state, which geneinr otherwise avoids; it lives here for the
 * reason the interposition does: HDF5's filter gives no place to keep it. A thread
 * that finds it in use compresses with a compressor of its own. Compressing
 * is deterministic, so the bytes are the same either way. */
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct libdeflate_compressor *cache[10];

int compress2(Bytef *dest, uLongf *destLen, const Bytef *source, uLong sourceLen, int level)
{
    if (level == Z_DEFAULT_COMPRESSION)
        level = 6;
    if (level < 0 || level > 9)
        return Z_STREAM_ERROR;
    if (level == 0)
        return zlib_compress2(dest, destLen, source, sourceLen, level);
    /* libdeflate's level 1 is its odd one out: on rendered maps (shuffled
     * floats, NaN outside the brain) its level 2 is both faster (338 vs 263
     * MB/s of CPU on mixed slices, 785 vs 379 MB/s on all-NaN ones) and
     * smaller (25.4% vs 25.7%); zlib's level 1 gave 166 / 820 MB/s, 26.6%
     * (docs/BENCHMARKS.md). So level 1, the render's default, asks for 2. */
    int lv = level == 1 ? 2 : level;
    struct libdeflate_compressor *c = NULL;
    int cached = pthread_mutex_trylock(&cache_lock) == 0;
    if (cached) {
        if (!cache[lv])
            cache[lv] = libdeflate_alloc_compressor(lv);
        c = cache[lv];
    } else {
        c = libdeflate_alloc_compressor(lv); /* another thread holds the cached one */
    }
    if (!c) {
        if (cached)
            pthread_mutex_unlock(&cache_lock);
        return zlib_compress2(dest, destLen, source, sourceLen, level);
    }
    size_t n = libdeflate_zlib_compress(c, source, sourceLen, dest, *destLen);
    if (cached)
        pthread_mutex_unlock(&cache_lock);
    else
        libdeflate_free_compressor(c);
    if (n == 0)
        return Z_BUF_ERROR;
    *destLen = (uLongf)n;
    return Z_OK;
}

/* h5_deflate.c - HDF5's deflate filter compresses through ISA-L (level 1) and
 * libdeflate (levels 2-9).
 *
 * Why: deflate level 1 was 46% of the CPU of a 1 mm render with zlib
 * (docs/BENCHMARKS.md). libdeflate writes the same format (zlib streams,
 * RFC 1950) 1.7x faster than zlib; ISA-L's igzip level 1 (Intel's
 * Intelligent Storage Acceleration library, Debian's libisal) 4x faster
 * than libdeflate again on rendered maps, at zlib level 1's size. Files stay
 * plain deflate (filter ID 1, its one parameter the level), which any HDF5
 * reader - h5py, h5dump, MATLAB - inflates with zlib; only the compressed
 * bytes differ from zlib's, never the values.
 *
 * How: HDF5 will not let a program replace a predefined filter (H5Zregister
 * refuses IDs below 256: "unable to modify predefined filters"), and its
 * deflate filter compresses each chunk with one call of zlib's compress2().
 * This file defines compress2 in the program: the dynamic linker binds
 * libhdf5's undefined, unversioned compress2 to the executable's definition
 * first (ELF symbol interposition), so every chunk HDF5 deflates in this
 * process goes through ISA-L or libdeflate. Inflating (reading) stays zlib's.
 *
 * What must stay true: compress2's contract (zlib.h), for any caller:
 *   - *destLen in: the room at dest; out: the bytes written; Z_OK, or
 *     Z_BUF_ERROR when the stream does not fit (HDF5 then stores the chunk
 *     unfiltered: deflate is an optional filter), Z_STREAM_ERROR for a bad level.
 *   - level Z_DEFAULT_COMPRESSION means 6; levels 0-9 as zlib's. Anything
 *     the two libraries do not cover (level 0, no memory) goes to zlib's own
 *     compress2.
 *   - safe to call from several threads at once (the cache below).
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>

#include <isa-l/igzip_lib.h>
#include <libdeflate.h>
#include <zlib.h>

typedef int (*compress2_fn)(Bytef *, uLongf *, const Bytef *, uLong, int);

/* zlib's compress2, the next definition after ours. */
static int zlib_compress2(Bytef *dest, uLongf *destLen, const Bytef *source, uLong sourceLen, int level)
{
    compress2_fn next = (compress2_fn)dlsym(RTLD_NEXT, "compress2");
    return next ? next(dest, destLen, source, sourceLen, level) : Z_MEM_ERROR;
}

/* ISA-L's state for level 1: the stream (with its ~100 KB history) and the
 * level's hash/token buffer. */
typedef struct isal_state {
    struct isal_zstream s;
    unsigned char level_buf[ISAL_DEF_LVL1_DEFAULT];
} isal_state;

/* One compressor per level, kept for the life of the process. A compressor is
 * a few hundred KB that the library allocates and sets up; allocated afresh
 * for each chunk, as this file first did, its pages were faulted in (and
 * zeroed by the kernel) again for every chunk: 13% of a 1 mm render's CPU went
 * to page faults, most of them here (perf, docs/BENCHMARKS.md). The cache is
 * process-wide state, which geneinr otherwise avoids; it lives here for the
 * reason the interposition does: HDF5's filter gives no place to keep it. A
 * thread that finds it in use compresses with state of its own. Compressing
 * is deterministic, so the bytes are the same either way. */
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct libdeflate_compressor *cache[10];
static isal_state *cache_isal;

/* Level 1: ISA-L igzip level 1. On shuffled 1 mm maps (CPU time, one core):
 * 1,157 MB/s to 14.2% of the input, against libdeflate level 2's 277 MB/s to
 * 13.4% and zlib level 1's ~130 MB/s to 14.2% (docs/BENCHMARKS.md): the
 * render's default level is its cheapest, at zlib level 1's size. Returns the
 * bytes written, 0 when the stream does not fit. */
static size_t isal_level1(isal_state *st, const Bytef *source, uLong sourceLen, Bytef *dest, uLongf room)
{
    struct isal_zstream *s = &st->s;
    isal_deflate_stateless_init(s);
    s->level = 1;
    s->level_buf = st->level_buf;
    s->level_buf_size = sizeof st->level_buf;
    s->gzip_flag = IGZIP_ZLIB;
    s->next_in = (uint8_t *)source;
    s->avail_in = (uint32_t)sourceLen;
    s->next_out = dest;
    s->avail_out = (uint32_t)room;
    s->end_of_stream = 1;
    s->flush = NO_FLUSH;
    return isal_deflate_stateless(s) == COMP_OK ? s->total_out : 0;
}

int compress2(Bytef *dest, uLongf *destLen, const Bytef *source, uLong sourceLen, int level)
{
    if (level == Z_DEFAULT_COMPRESSION)
        level = 6;
    if (level < 0 || level > 9)
        return Z_STREAM_ERROR;
    /* ISA-L counts in 32 bits */
    if (level == 0 || (level == 1 && (sourceLen > UINT32_MAX || *destLen > UINT32_MAX)))
        return zlib_compress2(dest, destLen, source, sourceLen, level);
    int cached = pthread_mutex_trylock(&cache_lock) == 0;
    size_t n = 0;
    int have = 0;
    if (level == 1) {
        isal_state *st = cached ? cache_isal : NULL;
        if (!st && (st = calloc(1, sizeof *st)) != NULL && cached)
            cache_isal = st;
        if (st) {
            have = 1;
            n = isal_level1(st, source, sourceLen, dest, *destLen);
            if (!cached)
                free(st);
        }
    } else {
        struct libdeflate_compressor *c = cached ? cache[level] : NULL;
        if (!c && (c = libdeflate_alloc_compressor(level)) != NULL && cached)
            cache[level] = c;
        if (c) {
            have = 1;
            n = libdeflate_zlib_compress(c, source, sourceLen, dest, *destLen);
            if (!cached)
                libdeflate_free_compressor(c);
        }
    }
    if (cached)
        pthread_mutex_unlock(&cache_lock);
    if (!have)
        return zlib_compress2(dest, destLen, source, sourceLen, level);
    if (n == 0)
        return Z_BUF_ERROR;
    *destLen = (uLongf)n;
    return Z_OK;
}

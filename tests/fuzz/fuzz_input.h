/* fuzz_input.h - shared by the libFuzzer targets: the readers under test take
 * a path, so each input is written to one private temporary file first.
 * LLVMFuzzerInitialize creates it (with the suffix the reader dispatches on);
 * the file is reused for every input and removed at exit. */
#ifndef GENEINR_FUZZ_INPUT_H
#define GENEINR_FUZZ_INPUT_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char fuzz_path[64];

static void fuzz_remove(void) { unlink(fuzz_path); }

static void fuzz_make_file(const char *suffix)
{
    snprintf(fuzz_path, sizeof fuzz_path, "/tmp/geneinr-fuzz-XXXXXX%s", suffix);
    int fd = mkstemps(fuzz_path, (int)strlen(suffix));
    if (fd < 0) {
        perror("mkstemps");
        abort();
    }
    close(fd);
    atexit(fuzz_remove);
}

static const char *fuzz_write(const uint8_t *data, size_t size)
{
    FILE *f = fopen(fuzz_path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        abort();
    return fuzz_path;
}

#endif

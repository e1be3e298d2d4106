/* fuzz_csv.c - libFuzzer target: the sample table reader (CSV, plain or
 * gzip) on arbitrary bytes. */
#include <stdint.h>

#include "fuzz_input.h"
#include "geneinr/samples.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_make_file(".csv");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gi_samples s;
    gi_err err;
    err.msg[0] = '\0';
    if (gi_samples_read_csv(&s, fuzz_write(data, size), &err) == 0)
        gi_samples_free(&s);
    else if (!err.msg[0])
        abort();
    return 0;
}

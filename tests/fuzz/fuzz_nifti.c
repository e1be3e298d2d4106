/* fuzz_nifti.c - libFuzzer target: the NIfTI reader (through niftilib) on
 * arbitrary bytes, header and data. */
#include <stdint.h>

#include "fuzz_input.h"
#include "geneinr/nifti.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_make_file(".nii");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gi_volume v;
    gi_err err;
    err.msg[0] = '\0';
    if (gi_volume_read(&v, fuzz_write(data, size), 1, &err) == 0)
        gi_volume_free(&v);
    else if (!err.msg[0])
        abort();
    return 0;
}

/* fuzz_checkpoint.c - libFuzzer target: the checkpoint loader on arbitrary
 * bytes (mostly mutations of a real checkpoint from the seed corpus). HDF5
 * itself is not instrumented; what is checked is our use of it and what we
 * do with the values it returns. */
#include <stdint.h>

#include <mpi.h>

#include "fuzz_input.h"
#include "geneinr/checkpoint.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    MPI_Init(argc, argv); /* parallel HDF5 expects MPI to be up */
    fuzz_make_file(".h5");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gi_state st;
    gi_err err;
    err.msg[0] = '\0';
    if (gi_checkpoint_load(&st, fuzz_write(data, size), &err) == 0)
        gi_state_free(&st);
    else if (!err.msg[0])
        abort();
    return 0;
}

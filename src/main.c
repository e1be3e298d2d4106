/* main.c - geneinr entry point: the command line is handled in cli.c. */
#include "geneinr/blas.h"
#include "geneinr/cli.h"

int main(int argc, char **argv)
{
    /* Before MPI_Init and any thread: may restart the process once (blas.h). */
    gi_blas_use_best_core(argv);
    return gi_cli_main(argc, argv);
}

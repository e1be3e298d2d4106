/* main.c - geneinr entry point: the command line is handled in cli.c. */
#include "geneinr/cli.h"

int main(int argc, char **argv)
{
    return gi_cli_main(argc, argv);
}

/* cli.h - the command layer: parses arguments, runs a command, maps errors to exit codes.
 *
 * Exit codes: 0 success, 1 the command failed (bad input, I/O error; the
 * message is printed by rank 0 as "geneinr: error: ..."), 2 usage error.
 */
#ifndef GENEINR_CLI_H
#define GENEINR_CLI_H

int gi_cli_main(int argc, char **argv);

#endif

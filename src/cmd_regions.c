#include "geneinr/cmd.h"
int gi_cmd_regions(MPI_Comm comm, const char *atlas, const char *parcellation, const char *labels, const char *out,
                   gi_err *err)
{
    (void)comm; (void)atlas; (void)parcellation; (void)labels; (void)out;
    return gi_fail(err, "regions: not yet");
}

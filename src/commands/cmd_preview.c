/* cmd_preview.c - `geneinr preview ATLAS`: PNG slices of genes of any atlas (export.h). */
#include "geneinr/cmd.h"
#include "geneinr/error.h"

#include "geneinr/config.h"
#include "geneinr/export.h"

static int run_preview(const gi_cmd_ctx *x, const gi_cmd_args *a)
{
    gi_err err = {{0}};
    double at[3];
    if (a->at && gi_parse_mni_point(a->at, at) != 0)   /* a malformed option, before the atlas is read */
        return gi_cmd_usage_error(x, "preview", "--at '%s' is not x,y,z (three numbers, MNI mm)", a->at);
    return gi_cmd_status(x, gi_export_preview_command(x->comm, a->operand, a->gene_list, a->at, a->out, &err), &err);
}

static const gi_cmd_opt OPTS[] = {
    GI_OPT_S("--genes", gene_list, "a,b", "genes to draw (default: the first render.preview_genes of the atlas)"),
    GI_OPT_S("--at", at, "x,y,z", "MNI mm point the slices pass through (--at=-20,0,10 for a leading '-')"),
    GI_OPT_S("--out", out, "DIR", "folder of the PNG files (default: preview/ beside the atlas)"),
    GI_OPT_END,
};

const gi_cmd gi_cmd_preview = {
    .name = "preview",
    .run = run_preview,
    .operand = "ATLAS",
    .synopsis = "PNG slices of genes of any atlas (default: the first `render.preview_genes`, into `preview/` "
                "beside it)",
    .help = "Draws axial, coronal and sagittal slices of the given genes of ATLAS as PNG files, with a colour\n"
            "bar in the atlas's units.",
    .opts = OPTS,
};

/* cmd_config.c - `geneinr config [CONFIG]`: the effective config, validated, or the key reference (config.h). */
#include "geneinr/cmd.h"
#include "geneinr/error.h"

#include <stdio.h>
#include <stdlib.h>

#include "geneinr/config.h"

static int run_config(const gi_cmd_ctx *x, const gi_cmd_args *a)
{
    if (a->reference) {
        if (x->rank == 0)
            gi_config_print_reference(stdout);
        return 0;
    }
    gi_config c;
    gi_err err = {{0}};
    int rc = gi_config_load(&c, a->operand, a->sets, a->n_sets, &err);
    if (rc == 0 && x->rank == 0) {
        char *yaml = gi_config_to_yaml(&c);
        fputs(yaml, stdout);
        free(yaml);
    }
    return gi_cmd_status(x, rc, &err);
}

static const gi_cmd_opt OPTS[] = {
    GI_OPT_SETS,
    GI_OPT_F("--reference", reference, "print the reference of every key (Markdown, docs/CONFIG.md) instead"),
    GI_OPT_END,
};

const gi_cmd gi_cmd_config = {
    .name = "config",
    .run = run_config,
    .operand = "CONFIG",
    .operand_optional = 1,
    .synopsis = "prints the validated effective config, or the key reference",
    .help = "Loads CONFIG (or the defaults) with the --set overrides, validates it as train would, and prints\n"
            "the effective config as YAML: every key, defaults included.",
    .opts = OPTS,
};

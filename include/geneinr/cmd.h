/* cmd.h - the command table: one row per command, one file per command.
 *
 * Each command file (src/commands/cmd_<name>.c) defines its row: the name,
 * the function that runs it, the operand it takes, a one-line synopsis, a
 * paragraph of help, and its options as {flag, kind, where the value goes}.
 * cli.c lists the rows once (gi_cmd_table) and everything that used to be
 * kept in step by hand comes from them: the global --help, each
 * `geneinr CMD --help`, the option parser and its unknown-option check, the
 * usage errors (exit 2), the dispatch, and the README's command table
 * (`geneinr --help-markdown`, tools/gen_commands_md.sh, tests/it_cli.sh).
 */
#ifndef GENEINR_CMD_H
#define GENEINR_CMD_H

#include <stddef.h>

#include <mpi.h>

/* Only a pointer to it crosses this interface (C11 allows the typedef again). */
typedef struct gi_err gi_err;

#define GI_CMD_MAX_SETS 256
#define GI_CMD_MAX_LIST 64

/* The values of a repeatable option (GI_OPT_LIST), in order. */
typedef struct gi_cmd_list {
    const char *v[GI_CMD_MAX_LIST];
    int n;
} gi_cmd_list;

/* Exit status of a usage error (a wrong command line), as opposed to 1, a
 * command that failed on its input. */
#define GI_EXIT_USAGE 2

/* Where the options of every command land. A value option not given keeps
 * NULL (strings) or -1 (numbers, choices); a flag not given is 0. */
typedef struct gi_cmd_args {
    const char *operand;                /* CONFIG, FILE, ATLAS, RUN_DIR, SWEEP.yaml */
    const char *out;
    const char *sets[GI_CMD_MAX_SETS];  /* --set k=v, in order */
    int n_sets;
    int resume, force, nifti, reference, ahba, dk, collect, retry_failed;
    const char *resume_from, *checkpoint;
    const char *truth, *samples, *json;
    const char *parcellation, *labels, *tolerance;  /* regions --tolerance MM (parsed by the command) */
    const char *gene_list, *at;         /* preview --genes a,b --at x,y,z */
    const char *reference_dir;          /* phantom --reference DIR */
    const char *points;                 /* predict --points P.csv */
    long stride, seed, genes, grid, trial, ahba_probes;
    long sample_truth;                  /* phantom --sample-truth: GI_PHANTOM_TRUTH_* */
    const char *map;                    /* correlate --map */
    gi_cmd_list gene_sets;              /* correlate --gene-set (repeatable) */
    long nulls, resolution, top;        /* correlate */
} gi_cmd_args;

/* The process a command runs in: every command runs under MPI (a plain
 * `geneinr ...` is a one-rank job); argv is kept for run.json. */
typedef struct gi_cmd_ctx {
    MPI_Comm comm;
    int rank, size;
    int argc;
    char **argv;
} gi_cmd_ctx;

typedef enum gi_opt_kind {
    GI_OPT_FLAG,     /* --resume: int field set to 1 */
    GI_OPT_STRING,   /* --out DIR: const char * field */
    GI_OPT_LONG,     /* --seed N: long field, checked against [min, max] */
    GI_OPT_SET,      /* --set K=V: appended to sets[] (repeatable) */
    GI_OPT_CHOICE,   /* --sample-truth voxel: long field set to the name's index in names[] */
    GI_OPT_LIST,     /* --gene-set FILE: appended to a gi_cmd_list field (repeatable) */
} gi_opt_kind;

typedef struct gi_cmd_opt {
    const char *flag;      /* "--out" (also accepted as --out=VALUE) */
    gi_opt_kind kind;
    size_t where;          /* offsetof(gi_cmd_args, field) */
    const char *value;     /* value's name in the help ("DIR"); NULL for a flag */
    long min, max;         /* GI_OPT_LONG */
    const char *const *names; /* GI_OPT_CHOICE: the allowed values, NULL-terminated (an enum's name table) */
    int required;          /* the command cannot run without it (usage error) */
    const char *help;      /* one line for `geneinr CMD --help` */
} gi_cmd_opt;

typedef struct gi_cmd {
    const char *name;
    /* Returns the exit status: 0, 1 (failed; rank 0 printed the error),
     * GI_EXIT_USAGE, or GI_EXIT_REQUEUE (stop.h). Every rank returns the same. */
    int (*run)(const gi_cmd_ctx *x, const gi_cmd_args *a);
    const char *operand;   /* "CONFIG"; NULL = takes none */
    int operand_optional;  /* config: CONFIG may be left out */
    const char *synopsis;  /* what it does, one line (global help, README) */
    const char *help;      /* what it does, in full (`geneinr CMD --help`) */
    const gi_cmd_opt *opts; /* ends with a row whose flag is NULL */
} gi_cmd;

/* Option rows, spelled alike in every command file. */
#define GI_OPT_F(flag, field, help) {flag, GI_OPT_FLAG, offsetof(gi_cmd_args, field), NULL, 0, 0, NULL, 0, help}
#define GI_OPT_S(flag, field, value, help) \
    {flag, GI_OPT_STRING, offsetof(gi_cmd_args, field), value, 0, 0, NULL, 0, help}
#define GI_OPT_S_REQ(flag, field, value, help) \
    {flag, GI_OPT_STRING, offsetof(gi_cmd_args, field), value, 0, 0, NULL, 1, help}
#define GI_OPT_L(flag, field, value, lo, hi, help) \
    {flag, GI_OPT_LONG, offsetof(gi_cmd_args, field), value, lo, hi, NULL, 0, help}
/* value: how the help spells the choices, e.g. "tissue|voxel" */
#define GI_OPT_C(flag, field, value, names, help) \
    {flag, GI_OPT_CHOICE, offsetof(gi_cmd_args, field), value, 0, 0, names, 0, help}
#define GI_OPT_LIST_S(flag, field, value, help) \
    {flag, GI_OPT_LIST, offsetof(gi_cmd_args, field), value, 0, 0, NULL, 0, help}
#define GI_OPT_SETS {"--set", GI_OPT_SET, offsetof(gi_cmd_args, sets), "KEY=VALUE", 0, 0, NULL, 0, \
                     "override a config key, e.g. --set train.steps=500 (repeatable)"}
#define GI_OPT_END {NULL, GI_OPT_FLAG, 0, NULL, 0, 0, NULL, 0, NULL}

/* The rows, one per command file. */
extern const gi_cmd gi_cmd_phantom, gi_cmd_prepare, gi_cmd_train, gi_cmd_render, gi_cmd_run, gi_cmd_info,
    gi_cmd_score, gi_cmd_eval, gi_cmd_regions, gi_cmd_config, gi_cmd_preview, gi_cmd_report, gi_cmd_sweep,
    gi_cmd_predict, gi_cmd_correlate, gi_cmd_extend;

/* The table (cli.c), in the order of the help; NULL-terminated. */
extern const gi_cmd *const gi_cmd_table[];

/* Prints "geneinr: <message>" and the pointer to CMD --help on rank 0;
 * returns GI_EXIT_USAGE. (cmd_common.c, as gi_cmd_status) */
int gi_cmd_usage_error(const gi_cmd_ctx *x, const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Exit status of a command whose work returned rc (0 or -1 with err agreed
 * across the ranks): 0, or 1 after rank 0 printed "geneinr: error: ...". */
int gi_cmd_status(const gi_cmd_ctx *x, int rc, const gi_err *err);

/* Rank 0 takes DIR/.geneinr.lock (runlock.h), prints the note of a
 * takeover; agreed across the ranks (0 or -1 with err). Release with
 * gi_rundir_lock_release on every rank (a no-op where not held). */
typedef struct gi_rundir_lock gi_rundir_lock;
int gi_cmd_lock(const gi_cmd_ctx *x, const char *dir, gi_rundir_lock *lk, gi_err *err);

/* Has any rank been asked to stop (stop.h)? Collective. */
int gi_cmd_stop_agreed(const gi_cmd_ctx *x);

/* Collective: rank 0 prints "geneinr: WHAT stopped by SIGTERM; RESUME (exit 75)"
 * naming the signal any rank got; returns GI_EXIT_REQUEUE (stop.h). */
int gi_cmd_stopped(const gi_cmd_ctx *x, const char *what, const char *resume);

/* OpenBLAS threads per rank: run.threads, or the node's cores shared by the
 * ranks on that node (cmd_run.c; render and predict alike). Collective. */
struct gi_config;
void gi_cmd_set_threads(const gi_cmd_ctx *x, const struct gi_config *c);

/* A checkpoint is used with the prior it was trained over (data.prior and
 * its settings in ckpt's config equal c's), else -1 saying which differs.
 * Rank 0 reads; agreed across the ranks. (cmd_run.c; render and predict) */
int gi_cmd_check_prior_matches(const gi_cmd_ctx *x, const struct gi_config *c, const char *ckpt, gi_err *err);

/* train, render and run (cmd_run.c): the stages of one run folder. */
int gi_cmd_train_render(const gi_cmd_ctx *x, const gi_cmd_args *a, int do_train, int do_render);

/* The options train, render and run share (cmd_run.c), so their help agrees. */
#define GI_OPT_RUN_OUT GI_OPT_S("--out", out, "DIR", "run folder (default: run.out, else runs/<config name>)")
#define GI_OPT_RUN_RESUME GI_OPT_F("--resume", resume, "continue from OUT/checkpoint.h5")
#define GI_OPT_RUN_RESUME_FROM GI_OPT_S("--resume-from", resume_from, "FILE", "continue from FILE")
#define GI_OPT_RUN_FORCE GI_OPT_F("--force", force, "resume even though training settings changed (recorded)")
#define GI_OPT_RUN_NIFTI \
    GI_OPT_F("--nifti", nifti, "also write OUT/nifti/<gene>.nii.gz (= --set render.nifti=3d)")

#endif

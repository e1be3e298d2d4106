/* cli.c - the command line: the command table, the option parser, the help
 * texts and the dispatch, all read from the rows of cmd.h (one per command,
 * each in its own file src/commands/cmd_<name>.c).
 *
 * Every command runs under MPI (a plain `geneinr ...` is a one-rank job).
 * Every rank parses the same argv, so a usage error is found by all of them
 * and they all exit 2 without a collective; rank 0 alone prints.
 */
#include "geneinr/cli.h"

#include <errno.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "geneinr/cmd.h"
#include "geneinr/version.h"

const gi_cmd *const gi_cmd_table[] = {
    &gi_cmd_phantom, &gi_cmd_prepare, &gi_cmd_train, &gi_cmd_render, &gi_cmd_run, &gi_cmd_info,
    &gi_cmd_predict, &gi_cmd_extend, &gi_cmd_score, &gi_cmd_eval, &gi_cmd_regions, &gi_cmd_config, &gi_cmd_preview,
    &gi_cmd_report, &gi_cmd_sweep, &gi_cmd_correlate, NULL,
};

static const char *HEADER =
    "geneinr " GENEINR_VERSION " - voxel-level whole-brain gene expression maps from sparse tissue samples\n"
    "with one conditional implicit neural representation, trained data-parallel over MPI.\n"
    "\n"
    "usage: geneinr COMMAND [options]      (run under mpirun/srun for several ranks)\n";

static const char *FOOTER =
    "Run 'geneinr COMMAND --help' for a command's options; --version prints the version.\n"
    "Exit status: 0 success, 1 the command failed (the message names the file, line or key),\n"
    "2 usage error, 75 training was stopped by SIGTERM/SIGUSR1 after checkpointing.\n"
    "Config reference: docs/CONFIG.md or `geneinr config --reference`.\n";

/* ------------------------------------------------------------- help texts */

/* "train CONFIG [--out DIR] [--set KEY=VALUE]... [--resume]": the usage line
 * made from the row, so it cannot miss an option. */
static void usage_line(const gi_cmd *c, char *buf, size_t size)
{
    size_t n = (size_t)snprintf(buf, size, "%s", c->name);
    if (c->operand && n < size)
        n += (size_t)snprintf(buf + n, size - n, c->operand_optional ? " [%s]" : " %s", c->operand);
    for (const gi_cmd_opt *o = c->opts; o->flag && n < size; o++) {
        const char *l = o->required ? "" : "[", *r = o->required ? "" : "]";
        if (o->value)
            n += (size_t)snprintf(buf + n, size - n, " %s%s %s%s%s", l, o->flag, o->value, r,
                                  o->kind == GI_OPT_SET || o->kind == GI_OPT_LIST ? "..." : "");
        else
            n += (size_t)snprintf(buf + n, size - n, " %s%s%s", l, o->flag, r);
    }
}

/* A synopsis without its Markdown code quotes (they are for the README), and a newline. */
static void print_plain(FILE *f, const char *text)
{
    for (const char *p = text; *p; p++)
        if (*p != '`')
            fputc(*p, f);
    fputc('\n', f);
}

static void print_global_help(FILE *f)
{
    char line[1024];
    fputs(HEADER, f);
    fputs("\ncommands:\n", f);
    for (int i = 0; gi_cmd_table[i]; i++) {
        usage_line(gi_cmd_table[i], line, sizeof line);
        fprintf(f, "  %s\n      ", line);
        print_plain(f, gi_cmd_table[i]->synopsis);
    }
    fputc('\n', f);
    fputs(FOOTER, f);
}

static void print_command_help(FILE *f, const gi_cmd *c)
{
    char line[1024];
    usage_line(c, line, sizeof line);
    fprintf(f, "usage: geneinr %s\n\n", line);
    print_plain(f, c->synopsis);
    fprintf(f, "\n%s\n", c->help);
    if (c->opts[0].flag)
        fputs("\noptions:\n", f);
    for (const gi_cmd_opt *o = c->opts; o->flag; o++) {
        char left[64];
        snprintf(left, sizeof left, "%s%s%s", o->flag, o->value ? " " : "", o->value ? o->value : "");
        fprintf(f, "  %-22s %s%s\n", left, o->help, o->required ? " (required)" : "");
    }
    fputs("  --help                 this text\n", f);
}

/* The README's command table (tools/gen_commands_md.sh; tests/it_cli.sh
 * checks that the README holds exactly this). */
static void print_markdown(FILE *f)
{
    char line[1024];
    fputs("| command | what it does |\n|---|---|\n", f);
    for (int i = 0; gi_cmd_table[i]; i++) {
        usage_line(gi_cmd_table[i], line, sizeof line);
        fputs("| `geneinr ", f);
        for (const char *p = line; *p; p++)
            fputs(*p == '|' ? "\\|" : (char[]){*p, 0}, f);
        fprintf(f, "` | %s |\n", gi_cmd_table[i]->synopsis);
    }
}

/* ------------------------------------------------------------------ parse */

static const gi_cmd *find_command(const char *name)
{
    for (int i = 0; gi_cmd_table[i]; i++)
        if (!strcmp(gi_cmd_table[i]->name, name))
            return gi_cmd_table[i];
    return NULL;
}

/* The row of flag s ("--out" or "--out=VALUE"); *inline_value gets VALUE. */
static const gi_cmd_opt *find_option(const gi_cmd *c, const char *s, const char **inline_value)
{
    size_t len = strcspn(s, "=");
    for (const gi_cmd_opt *o = c->opts; o->flag; o++)
        if (strlen(o->flag) == len && !strncmp(o->flag, s, len)) {
            *inline_value = s[len] == '=' ? s + len + 1 : NULL;
            return o;
        }
    return NULL;
}

static int store_value(const gi_cmd_ctx *x, const gi_cmd *c, const gi_cmd_opt *o, const char *v, gi_cmd_args *a)
{
    char *field = (char *)a + o->where;
    if (o->kind == GI_OPT_STRING) {
        *(const char **)field = v;
    } else if (o->kind == GI_OPT_SET) {
        if (a->n_sets == GI_CMD_MAX_SETS)
            return gi_cmd_usage_error(x, c->name, "too many --set options (at most %d)", GI_CMD_MAX_SETS);
        a->sets[a->n_sets++] = v;
    } else if (o->kind == GI_OPT_LIST) {
        gi_cmd_list *l = (gi_cmd_list *)field;
        if (l->n == GI_CMD_MAX_LIST)
            return gi_cmd_usage_error(x, c->name, "too many %s options (at most %d)", o->flag, GI_CMD_MAX_LIST);
        l->v[l->n++] = v;
    } else if (o->kind == GI_OPT_CHOICE) {
        long k = 0;
        while (o->names[k] && strcmp(o->names[k], v) != 0)
            k++;
        if (!o->names[k]) {
            char list[256] = "";   /* "a, b or c" */
            for (int i = 0; o->names[i]; i++) {
                const char *sep = i == 0 ? "" : o->names[i + 1] ? ", " : " or ";
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", sep, o->names[i]);
            }
            return gi_cmd_usage_error(x, c->name, "%s must be %s, got '%s'", o->flag, list, v);
        }
        *(long *)field = k;
    } else {
        char *end;
        errno = 0;
        long n = strtol(v, &end, 10);
        if (errno || end == v || *end || n < o->min || n > o->max)
            return gi_cmd_usage_error(x, c->name, "%s needs an integer in %ld..%ld, got '%s'", o->flag, o->min,
                                      o->max, v);
        *(long *)field = n;
    }
    return 0;
}

/* argv[2..] of command c into a. Returns 0, or GI_EXIT_USAGE after printing
 * what is wrong: an option c does not take, a missing or bad value, a second
 * operand, a missing operand or required option. */
static int parse_args(const gi_cmd_ctx *x, const gi_cmd *c, int argc, char **argv, gi_cmd_args *a)
{
    for (int i = 2; i < argc; i++) {
        const char *s = argv[i];
        if (s[0] == '-' && s[1] == '-') {
            const char *v = NULL;
            const gi_cmd_opt *o = find_option(c, s, &v);
            if (!o)
                return gi_cmd_usage_error(x, c->name, "%s does not take %.*s", c->name, (int)strcspn(s, "="), s);
            if (o->kind == GI_OPT_FLAG) {
                if (v)
                    return gi_cmd_usage_error(x, c->name, "%s takes no value", o->flag);
                *(int *)((char *)a + o->where) = 1;
                continue;
            }
            if (!v) {   /* the next word, whatever it looks like: --at -20,0,10 */
                if (i + 1 >= argc)
                    return gi_cmd_usage_error(x, c->name, "option %s needs a value", s);
                v = argv[++i];
            }
            int rc = store_value(x, c, o, v, a);
            if (rc != 0)
                return rc;
        } else if (!c->operand) {
            return gi_cmd_usage_error(x, c->name, "%s takes no argument, got '%s'", c->name, s);
        } else if (a->operand) {
            return gi_cmd_usage_error(x, c->name, "unexpected argument '%s'", s);
        } else {
            a->operand = s;
        }
    }
    if (c->operand && !c->operand_optional && !a->operand)
        return gi_cmd_usage_error(x, c->name, "%s needs %s", c->name, c->operand);
    for (const gi_cmd_opt *o = c->opts; o->flag; o++)
        if (o->required && !*(const char **)((const char *)a + o->where))
            return gi_cmd_usage_error(x, c->name, "%s needs %s %s", c->name, o->flag, o->value);
    return 0;
}

/* Nothing given: NULL strings, 0 flags, -1 numbers and choices. */
static void args_init(const gi_cmd *c, gi_cmd_args *a)
{
    memset(a, 0, sizeof *a);
    for (const gi_cmd_opt *o = c->opts; o->flag; o++)
        if (o->kind == GI_OPT_LONG || o->kind == GI_OPT_CHOICE)
            *(long *)((char *)a + o->where) = -1;
}

/* --help anywhere after the command asks for its help (not an option value:
 * `--out --help` is rare enough to read as a request for help). */
static int wants_help(int argc, char **argv)
{
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return 1;
    return 0;
}

static int dispatch(const gi_cmd_ctx *x, int argc, char **argv)
{
    const char *name = argc > 1 ? argv[1] : NULL;
    if (!name) {
        if (x->rank == 0)
            print_global_help(stderr);
        return GI_EXIT_USAGE;
    }
    if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
        const gi_cmd *c = argc > 2 ? find_command(argv[2]) : NULL;   /* geneinr help CMD */
        if (argc > 2 && !c)
            return gi_cmd_usage_error(x, NULL, "unknown command '%s'", argv[2]);
        if (x->rank == 0)
            c ? print_command_help(stdout, c) : print_global_help(stdout);
        return 0;
    }
    if (!strcmp(name, "--help-markdown")) {
        if (x->rank == 0)
            print_markdown(stdout);
        return 0;
    }
    if (!strcmp(name, "--version") || !strcmp(name, "version")) {
        if (x->rank == 0)
            printf("geneinr %s\n", GENEINR_VERSION);
        return 0;
    }
    const gi_cmd *c = find_command(name);
    if (!c)
        return gi_cmd_usage_error(x, NULL, "unknown command '%s'", name);
    if (wants_help(argc, argv)) {
        if (x->rank == 0)
            print_command_help(stdout, c);
        return 0;
    }
    gi_cmd_args a;
    args_init(c, &a);
    int rc = parse_args(x, c, argc, argv, &a);
    return rc != 0 ? rc : c->run(x, &a);
}

int gi_cli_main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    gi_cmd_ctx x = {MPI_COMM_WORLD, 0, 1, argc, argv};
    MPI_Comm_rank(x.comm, &x.rank);
    MPI_Comm_size(x.comm, &x.size);
    int rc = dispatch(&x, argc, argv);
    fflush(stdout);
    MPI_Finalize();
    return rc;
}

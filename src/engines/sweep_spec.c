/* sweep_spec.c - the sweep file: parsing, validation, trial expansion (see sweep.h).
 *
 * The file is read with libyaml's document API (a small tree with line marks).
 * Each swept key becomes a column; the trial table values[t][k] is expanded
 * once here, so the runner, --collect and the change check all read the same
 * text. Validation goes through gi_config_load with the value as a --set
 * override: the config module stays the one place that knows what a key
 * accepts, and its "--set key=value" location is rewritten to the sweep
 * file's line.
 */
#include "geneinr/sweep.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "geneinr/files.h"
#include "geneinr/rng.h"

#define MAX_TRIALS 100000
#define MAX_KEYS 64

enum dist { D_GRID, D_UNIFORM, D_LOG_UNIFORM, D_CHOICE };

/* One swept key while parsing. */
typedef struct axis {
    char key[256];
    int line;                   /* line of the key */
    enum dist dist;
    int n;                      /* number of values (grid, choice) or 2 (a range) */
    char **text;                /* [n] value text as a --set value */
    int *vline;                 /* [n] line of each value */
} axis;

typedef struct parse {
    const char *path;
    gi_sweep *s;
    int *set_line;              /* [n_set] */
    axis ax[MAX_KEYS];
    int n_ax;
    long random_trials;         /* 0 = no random section */
    uint64_t random_seed;
    gi_err *err;
} parse;

static int line(const yaml_node_t *n) { return (int)n->start_mark.line + 1; }

static const char *kind(const yaml_node_t *n)
{
    return n->type == YAML_MAPPING_NODE ? "a mapping" : n->type == YAML_SEQUENCE_NODE ? "a list" : "a value";
}

static const char *scalar(const yaml_node_t *n) { return (const char *)n->data.scalar.value; }

/* A scalar as the value part of a --set: plain text as it is, quoted text
 * re-quoted so that the config's YAML reading gives back the same string. */
static char *value_text(const yaml_node_t *n)
{
    const char *v = scalar(n);
    if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
        return strdup(v);
    char *out = malloc(2 * strlen(v) + 3), *p = out;
    if (!out)
        return NULL;
    *p++ = '"';
    for (; *v; v++) {
        if (*v == '"' || *v == '\\')
            *p++ = '\\';
        *p++ = *v;
    }
    *p++ = '"';
    *p = '\0';
    return out;
}

static int add_set(parse *ps, const char *key, const yaml_node_t *val)
{
    gi_sweep *s = ps->s;
    char *v = value_text(val);
    char **set = realloc(s->set, sizeof *set * ((size_t)s->n_set + 1));
    int *sl = set ? realloc(ps->set_line, sizeof *sl * ((size_t)s->n_set + 1)) : NULL;
    if (set)
        s->set = set;
    if (sl)
        ps->set_line = sl;
    size_t len = strlen(key) + (v ? strlen(v) : 0) + 2;
    char *kv = v && set && sl ? malloc(len) : NULL;
    if (!kv) {
        free(v);
        return gi_fail(ps->err, "%s: out of memory", ps->path);
    }
    snprintf(kv, len, "%s=%s", key, v);
    free(v);
    s->set[s->n_set] = kv;
    ps->set_line[s->n_set++] = line(val);
    return 0;
}

static const yaml_node_t *node(yaml_document_t *d, yaml_node_item_t i) { return yaml_document_get_node(d, i); }

static int join_key(parse *ps, char *out, const char *prefix, const yaml_node_t *k)
{
    if (k->type != YAML_SCALAR_NODE)
        return gi_fail(ps->err, "%s:%d: a key must be a plain name, not %s", ps->path, line(k), kind(k));
    if (snprintf(out, 256, "%s%s%s", prefix, prefix[0] ? "." : "", scalar(k)) >= 256)
        return gi_fail(ps->err, "%s:%d: key too long", ps->path, line(k));
    return 0;
}

/* set: {key: value} with dotted keys or nested sections. */
static int parse_set(parse *ps, yaml_document_t *d, const yaml_node_t *m, const char *prefix)
{
    if (m->type == YAML_SCALAR_NODE && !scalar(m)[0])
        return 0; /* "set:" with everything commented out */
    if (m->type != YAML_MAPPING_NODE)
        return gi_fail(ps->err, "%s:%d: set: expected a mapping of config keys to values, got %s", ps->path, line(m),
                       kind(m));
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = node(d, p->key), *v = node(d, p->value);
        char key[256];
        if (join_key(ps, key, prefix, k) != 0)
            return -1;
        int rc = v->type == YAML_MAPPING_NODE ? parse_set(ps, d, v, key)
                 : v->type == YAML_SCALAR_NODE ? add_set(ps, key, v)
                 : gi_fail(ps->err, "%s:%d: set: %s: expected a single value, got a list (lists belong in grid:)",
                           ps->path, line(v), key);
        if (rc != 0)
            return -1;
    }
    return 0;
}

static axis *new_axis(parse *ps, const char *key, const yaml_node_t *k)
{
    for (int i = 0; i < ps->n_ax; i++)
        if (strcmp(ps->ax[i].key, key) == 0) {
            gi_fail(ps->err, "%s:%d: %s is swept twice (first at line %d)", ps->path, line(k), key, ps->ax[i].line);
            return NULL;
        }
    if (ps->n_ax == MAX_KEYS) {
        gi_fail(ps->err, "%s:%d: more than %d swept keys", ps->path, line(k), MAX_KEYS);
        return NULL;
    }
    axis *a = &ps->ax[ps->n_ax++];
    memset(a, 0, sizeof *a);
    snprintf(a->key, sizeof a->key, "%s", key);
    a->line = line(k);
    return a;
}

/* The items of a YAML list as axis values. */
static int axis_values(parse *ps, yaml_document_t *d, axis *a, const yaml_node_t *seq, const char *what)
{
    int n = (int)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    if (n < 1)
        return gi_fail(ps->err, "%s:%d: %s: %s needs at least one value", ps->path, line(seq), a->key, what);
    a->text = calloc((size_t)n, sizeof *a->text);
    a->vline = calloc((size_t)n, sizeof *a->vline);
    if (!a->text || !a->vline)
        return gi_fail(ps->err, "%s: out of memory", ps->path);
    a->n = n;
    for (int i = 0; i < n; i++) {
        const yaml_node_t *v = node(d, seq->data.sequence.items.start[i]);
        if (v->type != YAML_SCALAR_NODE)
            return gi_fail(ps->err, "%s:%d: %s: each value must be a single value, got %s", ps->path, line(v),
                           a->key, kind(v));
        a->vline[i] = line(v);
        if (!(a->text[i] = value_text(v)))
            return gi_fail(ps->err, "%s: out of memory", ps->path);
    }
    return 0;
}

/* grid: {key: [values]} with dotted keys or nested sections. */
static int parse_grid(parse *ps, yaml_document_t *d, const yaml_node_t *m, const char *prefix)
{
    if (m->type != YAML_MAPPING_NODE)
        return gi_fail(ps->err, "%s:%d: grid: expected a mapping of config keys to lists of values, got %s",
                       ps->path, line(m), kind(m));
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = node(d, p->key), *v = node(d, p->value);
        char key[256];
        if (join_key(ps, key, prefix, k) != 0)
            return -1;
        if (v->type == YAML_MAPPING_NODE) {
            if (parse_grid(ps, d, v, key) != 0)
                return -1;
            continue;
        }
        if (v->type != YAML_SEQUENCE_NODE)
            return gi_fail(ps->err, "%s:%d: grid: %s: expected a list of values such as [64, 128], got '%s'",
                           ps->path, line(v), key, scalar(v));
        axis *a = new_axis(ps, key, k);
        if (!a)
            return -1;
        a->dist = D_GRID;
        if (axis_values(ps, d, a, v, "a grid key") != 0)
            return -1;
    }
    return 0;
}

static int is_dist_name(const char *s)
{
    return !strcmp(s, "uniform") || !strcmp(s, "log_uniform") || !strcmp(s, "choice");
}

/* One key of random.space: {uniform: [a, b]} | {log_uniform: [a, b]} | {choice: [...]}. */
static int parse_dist(parse *ps, yaml_document_t *d, const char *key, const yaml_node_t *k, const yaml_node_t *m)
{
    if (m->data.mapping.pairs.top - m->data.mapping.pairs.start != 1)
        return gi_fail(ps->err, "%s:%d: random.space: %s: give exactly one of uniform: [a, b], log_uniform: [a, b] "
                       "or choice: [values]", ps->path, line(m), key);
    const yaml_node_t *dk = node(d, m->data.mapping.pairs.start->key), *dv = node(d, m->data.mapping.pairs.start->value);
    const char *name = dk->type == YAML_SCALAR_NODE ? scalar(dk) : "";
    axis *a = new_axis(ps, key, k);
    if (!a)
        return -1;
    a->dist = !strcmp(name, "uniform") ? D_UNIFORM : !strcmp(name, "log_uniform") ? D_LOG_UNIFORM : D_CHOICE;
    if (dv->type != YAML_SEQUENCE_NODE)
        return gi_fail(ps->err, "%s:%d: random.space: %s: %s needs a list, e.g. %s", ps->path, line(dv), key, name,
                       a->dist == D_CHOICE ? "[4, 8]" : "[0.0001, 1]");
    if (axis_values(ps, d, a, dv, name) != 0)
        return -1;
    if (a->dist == D_CHOICE)
        return 0;
    const char *type = gi_config_key_type(key);
    if (type && strcmp(type, "int") != 0 && strcmp(type, "float") != 0)
        return gi_fail(ps->err, "%s:%d: random.space: %s is a %s key; %s needs a number key (use choice: [...])",
                       ps->path, line(dk), key, type, name);
    if (a->n != 2)
        return gi_fail(ps->err, "%s:%d: random.space: %s: %s needs two numbers [low, high], got %d", ps->path,
                       line(dv), key, name, a->n);
    double lo, hi;
    char *e1, *e2;
    lo = strtod(a->text[0], &e1);
    hi = strtod(a->text[1], &e2);
    if (*e1 || *e2 || !isfinite(lo) || !isfinite(hi) || !(lo <= hi))
        return gi_fail(ps->err, "%s:%d: random.space: %s: %s needs two finite numbers low <= high, got [%s, %s]",
                       ps->path, line(dv), key, name, a->text[0], a->text[1]);
    if (a->dist == D_LOG_UNIFORM && !(lo > 0))
        return gi_fail(ps->err, "%s:%d: random.space: %s: log_uniform needs low > 0, got %s", ps->path, line(dv),
                       key, a->text[0]);
    return 0;
}

static int parse_space(parse *ps, yaml_document_t *d, const yaml_node_t *m, const char *prefix)
{
    if (m->type != YAML_MAPPING_NODE)
        return gi_fail(ps->err, "%s:%d: random.space: expected a mapping of config keys to distributions, got %s",
                       ps->path, line(m), kind(m));
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = node(d, p->key), *v = node(d, p->value);
        char key[256];
        if (join_key(ps, key, prefix, k) != 0)
            return -1;
        if (v->type != YAML_MAPPING_NODE)
            return gi_fail(ps->err, "%s:%d: random.space: %s: expected {uniform: [a, b]}, {log_uniform: [a, b]} or "
                           "{choice: [values]}", ps->path, line(v), key);
        const yaml_node_t *first = v->data.mapping.pairs.start < v->data.mapping.pairs.top
                                       ? node(d, v->data.mapping.pairs.start->key) : NULL;
        int rc = first && first->type == YAML_SCALAR_NODE && is_dist_name(scalar(first))
                     ? parse_dist(ps, d, key, k, v)
                     : parse_space(ps, d, v, key);
        if (rc != 0)
            return -1;
    }
    return 0;
}

static int parse_long_node(parse *ps, const yaml_node_t *v, const char *what, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long x = v->type == YAML_SCALAR_NODE ? strtol(scalar(v), &end, 10) : 0;
    if (v->type != YAML_SCALAR_NODE || errno || end == scalar(v) || *end || x < lo || x > hi)
        return gi_fail(ps->err, "%s:%d: %s: expected a whole number in [%ld, %ld], got %s", ps->path, line(v), what,
                       lo, hi, v->type == YAML_SCALAR_NODE ? scalar(v) : kind(v));
    *out = x;
    return 0;
}

static int parse_random(parse *ps, yaml_document_t *d, const yaml_node_t *m)
{
    if (m->type != YAML_MAPPING_NODE)
        return gi_fail(ps->err, "%s:%d: random: expected a mapping with trials, seed and space", ps->path, line(m));
    const yaml_node_t *space = NULL;
    ps->random_seed = 1;
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = node(d, p->key), *v = node(d, p->value);
        const char *name = k->type == YAML_SCALAR_NODE ? scalar(k) : "";
        long x;
        if (!strcmp(name, "trials")) {
            if (parse_long_node(ps, v, "random.trials", 1, MAX_TRIALS, &x) != 0)
                return -1;
            ps->random_trials = x;
        } else if (!strcmp(name, "seed")) {
            if (parse_long_node(ps, v, "random.seed", 0, 2147483647L, &x) != 0)
                return -1;
            ps->random_seed = (uint64_t)x;
        } else if (!strcmp(name, "space")) {
            space = v;
        } else {
            return gi_fail(ps->err, "%s:%d: random: unknown key '%s' (random keys: trials, seed, space)", ps->path,
                           line(k), name);
        }
    }
    if (!ps->random_trials)
        return gi_fail(ps->err, "%s:%d: random: trials is missing (how many random trials)", ps->path, line(m));
    if (!space)
        return gi_fail(ps->err, "%s:%d: random: space is missing (the keys to draw and their distributions)",
                       ps->path, line(m));
    return parse_space(ps, d, space, "");
}

/* The top level: base, set, ranks_per_trial, grid, random, render_best. */
static int parse_doc(parse *ps, yaml_document_t *d)
{
    gi_sweep *s = ps->s;
    const yaml_node_t *root = yaml_document_get_root_node(d);
    if (!root)
        return gi_fail(ps->err, "%s: empty sweep file (it needs at least base: CONFIG)", ps->path);
    if (root->type != YAML_MAPPING_NODE)
        return gi_fail(ps->err, "%s:%d: the top level must be a mapping (base, set, ranks_per_trial, grid, random, "
                       "render_best)", ps->path, line(root));
    static const char *const TOP[] = {"base", "set", "ranks_per_trial", "grid", "random", "render_best", NULL};
    int seen[6] = {0};
    s->ranks_per_trial = 1;
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
        const yaml_node_t *k = node(d, p->key), *v = node(d, p->value);
        const char *name = k->type == YAML_SCALAR_NODE ? scalar(k) : "";
        int which = -1;
        for (int i = 0; TOP[i]; i++)
            if (!strcmp(name, TOP[i]))
                which = i;
        if (which < 0) {
            const char *hint = strchr(name, '.') ? " (config keys go under set:, grid: or random.space:)" : "";
            return gi_fail(ps->err, "%s:%d: unknown key '%s'%s; a sweep file has base, set, ranks_per_trial, grid, "
                           "random, render_best", ps->path, line(k), name, hint);
        }
        if (seen[which])
            return gi_fail(ps->err, "%s:%d: duplicate key '%s' (first at line %d)", ps->path, line(k), name,
                           seen[which]);
        seen[which] = line(k);
        int rc = 0;
        long x;
        switch (which) {
        case 0:
            if (v->type != YAML_SCALAR_NODE || !scalar(v)[0])
                rc = gi_fail(ps->err, "%s:%d: base: expected the path of a run config, e.g. configs/demo.yaml",
                             ps->path, line(v));
            else if (snprintf(s->base, sizeof s->base, "%s", scalar(v)) >= (int)sizeof s->base)
                rc = gi_fail(ps->err, "%s:%d: base: path too long", ps->path, line(v));
            break;
        case 1: rc = parse_set(ps, d, v, ""); break;
        case 2:
            rc = parse_long_node(ps, v, "ranks_per_trial", 1, 1048576, &x);
            s->ranks_per_trial = (int)x;
            break;
        case 3: rc = parse_grid(ps, d, v, ""); break;
        case 4: rc = parse_random(ps, d, v); break;
        case 5: {
            const char *t = v->type == YAML_SCALAR_NODE ? scalar(v) : "";
            if (!strcmp(t, "true") || !strcmp(t, "yes"))
                s->render_best = 1;
            else if (!strcmp(t, "false") || !strcmp(t, "no"))
                s->render_best = 0;
            else
                rc = gi_fail(ps->err, "%s:%d: render_best: expected true or false, got %s", ps->path, line(v),
                             v->type == YAML_SCALAR_NODE ? t : kind(v));
            break;
        }
        }
        if (rc != 0)
            return -1;
    }
    if (!s->base[0])
        return gi_fail(ps->err, "%s: base: is missing (the run config every trial starts from)", ps->path);
    return 0;
}

/* Rewrite a config error about one of our overrides ("--set k=v: ...") to
 * the sweep file's line. */
static int config_error(parse *ps, const char *ov, int at, gi_err *err)
{
    char tmp[sizeof err->msg];
    size_t n = strlen(ov);
    if (!strncmp(err->msg, "--set ", 6) && !strncmp(err->msg + 6, ov, n) && !strncmp(err->msg + 6 + n, ": ", 2))
        snprintf(tmp, sizeof tmp, "%.400s:%d: %.1500s", ps->path, at, err->msg + 8 + n);
    else
        snprintf(tmp, sizeof tmp, "%.400s:%d: %.1500s", ps->path, at, err->msg);
    return gi_fail(err, "%s", tmp);
}

/* The base config must load on its own; every `set` value and every swept
 * value is checked alone, as --set checks it. Rules between keys are left to
 * each trial's whole config (a combination that breaks one fails that trial). */
static int validate(parse *ps)
{
    gi_sweep *s = ps->s;
    gi_config *c = malloc(sizeof *c);
    if (!c)
        return gi_fail(ps->err, "out of memory");
    int rc = gi_config_load(c, s->base, NULL, 0, ps->err);
    free(c);
    if (rc != 0)
        return gi_fail_prefix(ps->err, "%s: base", ps->path);
    for (int i = 0; i < s->n_set; i++)
        if (gi_config_check_override(s->set[i], ps->err) != 0)
            return config_error(ps, s->set[i], ps->set_line[i], ps->err);
    for (int a = 0; a < ps->n_ax; a++) {
        axis *x = &ps->ax[a];
        for (int i = 0; i < x->n; i++) {
            char kv[512];
            snprintf(kv, sizeof kv, "%s=%s", x->key, x->text[i]);
            if (gi_config_check_override(kv, ps->err) != 0)
                return config_error(ps, kv, x->vline[i], ps->err);
        }
    }
    return 0;
}

/* Value text of a draw u in [0, 1) from a range axis. */
static void draw_text(const axis *x, double u, char *buf, size_t n)
{
    double lo = strtod(x->text[0], NULL), hi = strtod(x->text[1], NULL);
    const char *type = gi_config_key_type(x->key);
    int integer = type && !strcmp(type, "int");
    double v;
    if (x->dist == D_UNIFORM && integer) {
        double a = ceil(lo), b = floor(hi);
        v = a + floor(u * (b - a + 1));
        if (v > b)
            v = b;
    } else if (x->dist == D_UNIFORM) {
        v = lo + u * (hi - lo);
    } else {
        v = exp(log(lo) + u * (log(hi) - log(lo)));
        if (integer)
            v = fmin(fmax(round(v), ceil(lo)), floor(hi));
    }
    if (integer)
        snprintf(buf, n, "%.0f", v);
    else
        snprintf(buf, n, "%.6g", v);
}

static int expand(parse *ps)
{
    gi_sweep *s = ps->s;
    long n_grid = 1;
    for (int a = 0; a < ps->n_ax; a++)
        if (ps->ax[a].dist == D_GRID) {
            n_grid *= ps->ax[a].n;
            if (n_grid > MAX_TRIALS)
                return gi_fail(ps->err, "%s: the grid has more than %d combinations", ps->path, MAX_TRIALS);
        }
    int has_random = ps->random_trials > 0;
    long n_rand = has_random ? ps->random_trials : 1;
    if (n_grid * n_rand > MAX_TRIALS)
        return gi_fail(ps->err, "%s: %ld trials (grid %ld x random %ld); at most %d", ps->path, n_grid * n_rand,
                       n_grid, n_rand, MAX_TRIALS);
    int has_random_keys = 0;
    for (int a = 0; a < ps->n_ax; a++)
        has_random_keys |= ps->ax[a].dist != D_GRID;
    if (has_random && !has_random_keys)
        return gi_fail(ps->err, "%s: random: space has no keys", ps->path);
    s->n_trials = (int)(n_grid * n_rand);
    s->n_keys = ps->n_ax;
    s->keys = calloc((size_t)s->n_keys + 1, sizeof *s->keys);
    s->values = calloc((size_t)s->n_trials * s->n_keys + 1, sizeof *s->values);
    if (!s->keys || !s->values)
        return gi_fail(ps->err, "out of memory for %d trials", s->n_trials);
    /* Columns: grid keys first, then random keys, each in file order. */
    int col = 0, order[MAX_KEYS];
    for (int pass = 0; pass < 2; pass++)
        for (int a = 0; a < ps->n_ax; a++)
            if ((ps->ax[a].dist == D_GRID) == (pass == 0))
                order[col++] = a;
    for (int c = 0; c < s->n_keys; c++)
        if (!(s->keys[c] = strdup(ps->ax[order[c]].key)))
            return gi_fail(ps->err, "out of memory");
    for (int t = 0; t < s->n_trials; t++) {
        long r = t / n_grid, g = t % n_grid;
        /* Grid index: the last grid key varies fastest. */
        for (int c = s->n_keys - 1; c >= 0; c--) {
            const axis *x = &ps->ax[order[c]];
            if (x->dist != D_GRID)
                continue;
            s->values[(size_t)t * s->n_keys + c] = strdup(x->text[g % x->n]);
            g /= x->n;
        }
        for (int c = 0; c < s->n_keys; c++) {
            int a = order[c];
            const axis *x = &ps->ax[a];
            if (x->dist == D_GRID)
                continue;
            /* The stream is the key's position among all axes, so a draw depends
             * on (seed, key, trial) only. */
            uint64_t stream = GI_STREAM_SWEEP + (uint64_t)a;
            char buf[64];
            if (x->dist == D_CHOICE) {
                uint64_t i = gi_rng_below(ps->random_seed, stream, (uint64_t)r, (uint64_t)x->n);
                snprintf(buf, sizeof buf, "%s", "");
                s->values[(size_t)t * s->n_keys + c] = strdup(x->text[i]);
            } else {
                draw_text(x, gi_rng_uniform(ps->random_seed, stream, (uint64_t)r), buf, sizeof buf);
                s->values[(size_t)t * s->n_keys + c] = strdup(buf);
            }
        }
        for (int c = 0; c < s->n_keys; c++)
            if (!s->values[(size_t)t * s->n_keys + c])
                return gi_fail(ps->err, "out of memory");
    }
    return 0;
}

int gi_sweep_load(gi_sweep *s, const char *path, gi_err *err)
{
    memset(s, 0, sizeof *s);
    parse ps;
    memset(&ps, 0, sizeof ps);
    ps.path = path;
    ps.s = s;
    ps.err = err;
    if (snprintf(s->path, sizeof s->path, "%s", path) >= (int)sizeof s->path)
        return gi_fail(err, "sweep file path too long");
    char *text = gi_read_file(path, 0, NULL, err);
    if (!text)
        return gi_fail_prefix(err, "sweep file");
    yaml_parser_t p;
    yaml_document_t d;
    int rc = 0;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_string(&p, (const unsigned char *)text, strlen(text));
    if (!yaml_parser_load(&p, &d)) {
        rc = gi_fail(err, "%s:%d: not valid YAML: %s", path, (int)p.problem_mark.line + 1,
                     p.problem ? p.problem : "syntax error");
    } else {
        rc = parse_doc(&ps, &d);
        yaml_document_delete(&d);
    }
    yaml_parser_delete(&p);
    free(text);
    if (rc == 0)
        rc = validate(&ps);
    if (rc == 0)
        rc = expand(&ps);
    for (int a = 0; a < ps.n_ax; a++) {
        for (int i = 0; i < ps.ax[a].n; i++)
            free(ps.ax[a].text ? ps.ax[a].text[i] : NULL);
        free(ps.ax[a].text);
        free(ps.ax[a].vline);
    }
    free(ps.set_line);
    if (rc != 0)
        gi_sweep_free(s);
    return rc;
}

void gi_sweep_free(gi_sweep *s)
{
    for (int i = 0; i < s->n_set; i++)
        free(s->set[i]);
    free(s->set);
    for (int k = 0; k < s->n_keys; k++)
        free(s->keys[k]);
    free(s->keys);
    if (s->values)
        for (size_t i = 0; i < (size_t)s->n_trials * s->n_keys; i++)
            free(s->values[i]);
    free(s->values);
    char path[GI_PATH_MAX];
    memcpy(path, s->path, sizeof path);
    memset(s, 0, sizeof *s);
    memcpy(s->path, path, sizeof path);
}

char **gi_sweep_overrides(const gi_sweep *s, int t, int *n)
{
    int total = s->n_set + s->n_keys;
    char **ov = calloc((size_t)total + 1, sizeof *ov);
    if (!ov)
        return NULL;
    for (int i = 0; i < s->n_set; i++)
        if (!(ov[i] = strdup(s->set[i])))
            goto oom;
    for (int k = 0; k < s->n_keys; k++) {
        const char *v = s->values[(size_t)t * s->n_keys + k];
        size_t len = strlen(s->keys[k]) + strlen(v) + 2;
        if (!(ov[s->n_set + k] = malloc(len)))
            goto oom;
        snprintf(ov[s->n_set + k], len, "%s=%s", s->keys[k], v);
    }
    *n = total;
    return ov;
oom:
    gi_sweep_free_overrides(ov);
    return NULL;
}

void gi_sweep_free_overrides(char **ov)
{
    for (char **p = ov; p && *p; p++)
        free(*p);
    free(ov);
}

/* model_spec.c - what the GI_MODEL_SETTINGS list generates outside
 * config.c and checkpoint.c: config -> spec, and naming spec differences. */
#include "geneinr/model.h"

#include <stdio.h>
#include <string.h>

#include "geneinr/config.h"

void gi_model_spec_from_config(gi_model_spec *s, const gi_config *c, int n_genes, int n_donors, int n_labels)
{
    memset(s, 0, sizeof *s);
#define COPY(kind, field, ...) s->field = c->model.field;
    GI_MODEL_SETTINGS(COPY)
#undef COPY
    s->n_genes = n_genes;
    s->n_donors = n_donors;
    s->n_labels = n_labels;
}

static void add(char *buf, size_t size, int *n, const char *what)
{
    size_t used = strlen(buf);
    if (used + 1 < size)
        snprintf(buf + used, size - used, "%s%s", *n ? ", " : "", what);
    ++*n;
}

int gi_model_spec_diff(const gi_model_spec *a, const gi_model_spec *b, char *buf, size_t size)
{
    int n = 0;
    if (size)
        buf[0] = '\0';
#define CMP(kind, field, ...) \
    if (a->field != b->field) \
        add(buf, size, &n, "model." #field);
    GI_MODEL_SETTINGS(CMP)
#undef CMP
    if (a->n_genes != b->n_genes)
        add(buf, size, &n, "number of genes");
    if (a->n_donors != b->n_donors)
        add(buf, size, &n, "number of donors");
    if (a->n_labels != b->n_labels)
        add(buf, size, &n, "anatomy labels");
    return n;
}

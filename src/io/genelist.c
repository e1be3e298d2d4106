/* genelist.c - gene list files (see genelist.h). */
#include "geneinr/genelist.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "geneinr/grow.h"

int gi_genelist_read(gi_genelist *l, const char *path, gi_err *err)
{
    memset(l, 0, sizeof *l);
    errno = 0;
    gzFile gz = gzopen(path, "rb");
    if (!gz)
        return gi_fail(err, "cannot open gene list %s: %s", path,
                       errno ? strerror(errno) : "out of memory");
    size_t cap = 0, cap_lines = 0;
    int rc = 0;
    long line = 0;
    char buf[4096];
    l->path = strdup(path);
    while (rc == 0 && gzgets(gz, buf, sizeof buf)) {
        line++;
        size_t len = strlen(buf);
        if (len == sizeof buf - 1 && buf[len - 1] != '\n') {
            rc = gi_fail(err, "%s:%ld: line too long for a gene symbol", path, line);
            break;
        }
        char *s = buf, *e = buf + len;
        while (s < e && isspace((unsigned char)*s))
            s++;
        while (e > s && isspace((unsigned char)e[-1]))
            e--;
        *e = 0;
        if (!*s || *s == '#')
            continue;
        int dup = gi_genelist_find(l, s);
        if (dup >= 0) {
            rc = gi_fail(err, "%s:%ld: gene '%s' is listed twice (also at line %ld)", path,
                         line, s, l->lines[dup]);
            break;
        }
        if (GI_GROW(l->names, cap, (size_t)l->n + 1) || GI_GROW(l->lines, cap_lines, (size_t)l->n + 1)) {
            rc = gi_fail(err, "%s: out of memory", path);
            break;
        }
        if (!(l->names[l->n] = strdup(s))) {
            rc = gi_fail(err, "%s: out of memory", path);
            break;
        }
        l->lines[l->n++] = line;
    }
    int zerr = Z_OK;
    gzerror(gz, &zerr);
    if (rc == 0 && zerr != Z_OK && zerr != Z_STREAM_END)
        rc = gi_fail(err, "%s:%ld: read error", path, line);
    gzclose(gz);
    if (rc == 0 && l->n == 0)
        rc = gi_fail(err, "%s: the gene list is empty (one symbol a line)", path);
    if (rc)
        gi_genelist_free(l);
    return rc;
}

int gi_genelist_find(const gi_genelist *l, const char *name)
{
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->names[i], name) == 0)
            return i;
    return -1;
}

void gi_genelist_free(gi_genelist *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->names[i]);
    free(l->names);
    free(l->lines);
    free(l->path);
    memset(l, 0, sizeof *l);
}

/* files.c - file-name and file-system helpers (see files.h). */
#include "geneinr/files.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

char *gi_read_file(const char *path, size_t max, size_t *len, gi_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        gi_fail(err, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t n = 0, cap = 0;
    int bad = 0;
    for (;;) {
        if (n + 65536 + 1 > cap) {
            size_t c = cap ? cap * 2 : 131072;
            char *nb = realloc(buf, c);
            if (!nb) {
                bad = 1;
                break;
            }
            buf = nb, cap = c;
        }
        size_t got = fread(buf + n, 1, 65536, f);
        n += got;
        if (max && n > max) {
            free(buf);
            fclose(f);
            gi_fail(err, "%s: larger than %zu bytes", path, max);
            return NULL;
        }
        if (got < 65536)
            break;
    }
    bad |= ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        gi_fail(err, "%s: cannot read", path);
        return NULL;
    }
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

int gi_ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

void gi_remove_partial(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
        remove(path);
}

void gi_gene_file_name(const char *gene, char *out, size_t n)
{
    snprintf(out, n, "%s", gene);
    for (char *p = out; *p; p++)
        if (*p == '/' || *p == '\\' || *p == ' ' || *p == ':' || (*p == '.' && p == out))
            *p = '_';
}

int gi_make_dirs(const char *path, gi_err *err)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return gi_fail(err, "path too long: %s", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return gi_fail(err, "cannot create folder %s: %s", buf, strerror(errno));
            *p = c;
            if (!c)
                break;
        }
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return gi_fail(err, "%s exists and is not a folder", path);
    return 0;
}

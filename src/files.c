/* files.c - file-name and file-system helpers (see files.h). */
#include "geneinr/files.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

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

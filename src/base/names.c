/* names.c - gene and donor name rules (see names.h). */
#include "geneinr/names.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "geneinr/files.h"

/* Length of the UTF-8 sequence at p and its code point, or 0 when invalid. */
static int utf8_next(const unsigned char *p, unsigned *cp)
{
    unsigned c = p[0];
    int len;
    unsigned min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xE0) == 0xC0) {
        len = 2, min = 0x80, c &= 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, min = 0x800, c &= 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4, min = 0x10000, c &= 0x07;
    } else {
        return 0;
    }
    for (int k = 1; k < len; k++) {
        if ((p[k] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (p[k] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return len;
}

int gi_name_check(const char *name, char *why, size_t why_size)
{
    size_t n = strlen(name);
    if (n == 0) {
        snprintf(why, why_size, "is empty");
        return -1;
    }
    if (n > GI_GENE_NAME_MAX) {
        snprintf(why, why_size, "is %zu bytes long; at most %d are allowed (it becomes file names)", n, GI_GENE_NAME_MAX);
        return -1;
    }
    const unsigned char *p = (const unsigned char *)name;
    for (size_t i = 0; i < n;) {
        unsigned cp;
        int len = utf8_next(p + i, &cp);
        if (len == 0) {
            snprintf(why, why_size, "is not valid UTF-8 (byte 0x%02X at byte %zu)", p[i], i + 1);
            return -1;
        }
        if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F)) {
            snprintf(why, why_size, "holds a control character (%s) at byte %zu",
                     cp == '\t' ? "TAB" : cp == '\n' ? "line feed" : cp == '\r' ? "carriage return" : "U+00XX",
                     i + 1);
            if (cp != '\t' && cp != '\n' && cp != '\r') {
                char *u = strstr(why, "U+00XX");
                if (u) {
                    char hex[3];
                    snprintf(hex, sizeof hex, "%02X", cp);
                    u[4] = hex[0], u[5] = hex[1];
                }
            }
            return -1;
        }
        i += (size_t)len;
    }
    return 0;
}

void gi_name_quote(const char *name, char *out, size_t out_size)
{
    size_t w = 0;
    if (!out_size)
        return;
    for (const unsigned char *p = (const unsigned char *)name; *p && w + 5 < out_size; p++) {
        if (*p < 0x20 || *p == 0x7F || *p >= 0x80) {
            /* Valid UTF-8 above U+009F is shown as it is. */
            unsigned cp;
            int len = *p >= 0x80 ? utf8_next(p, &cp) : 0;
            if (len > 0 && cp > 0x9F && w + (size_t)len < out_size - 1) {
                memcpy(out + w, p, (size_t)len);
                w += (size_t)len;
                p += len - 1;
                continue;
            }
            w += (size_t)snprintf(out + w, out_size - w, "\\x%02X", *p);
        } else {
            out[w++] = (char)*p;
        }
    }
    out[w < out_size ? w : out_size - 1] = '\0';
    if (strlen(name) > w && out_size > 8 && w >= 3) {   /* cut: say so */
        size_t e = w < out_size - 4 ? w : out_size - 4;
        while (e > 0 && ((unsigned char)out[e] & 0xC0) == 0x80)
            e--;   /* not inside a UTF-8 sequence */
        memcpy(out + e, "...", 4);
    }
}

typedef struct keyed {
    char key[256];
    int i;
} keyed;

static int by_key(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    int d = strcmp(x->key, y->key);
    return d ? d : x->i - y->i;
}

int gi_names_check_files(const char *const *names, int n, const char *where, const int *cols, gi_err *err)
{
    /* Sorted once: 15,600 genes are no pairwise loop. */
    keyed *k = malloc(sizeof *k * (size_t)(n > 0 ? n : 1));
    if (!k)
        return gi_fail(err, "%s: out of memory for %d names", where, n);
    for (int i = 0; i < n; i++) {
        gi_gene_file_name(names[i], k[i].key, sizeof k[i].key);
        for (char *p = k[i].key; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        k[i].i = i;
    }
    qsort(k, (size_t)n, sizeof *k, by_key);
    int rc = 0;
    for (int i = 1; rc == 0 && i < n; i++)
        if (strcmp(k[i - 1].key, k[i].key) == 0) {
            int a = k[i - 1].i, b = k[i].i;
            char qa[200], qb[200], fa[256];
            gi_name_quote(names[a], qa, sizeof qa);
            gi_name_quote(names[b], qb, sizeof qb);
            gi_gene_file_name(names[a], fa, sizeof fa);
            char ca[32] = "", cb[32] = "";
            if (cols) {
                snprintf(ca, sizeof ca, " (column %d)", cols[a]);
                snprintf(cb, sizeof cb, " (column %d)", cols[b]);
            }
            rc = gi_fail(err, "%s: genes '%s'%s and '%s'%s would share the output file name %s (nifti/%s.nii.gz, "
                         "preview/%s.png; names are compared as files: '/', '\\', ' ', ':' and a leading '.' become "
                         "'_', and case is ignored, as on case-insensitive file systems); rename one",
                         where, qa, ca, qb, cb, fa, fa, fa);
        }
    free(k);
    return rc;
}

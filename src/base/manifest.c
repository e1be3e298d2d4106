/* manifest.c - the list of files geneinr wrote into a folder (see manifest.h).
 *
 * Invariant: the manifest never lists a name whose file geneinr did not
 * write or was not about to write (pending). Removal therefore can only
 * delete a file that geneinr made and nobody changed since.
 */
#include "geneinr/manifest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEADER "# geneinr output manifest 1: SIZE MTIME_NS FINGERPRINT NAME (relative to this folder). Written by " \
               "geneinr: it removes or replaces only the files listed here."
#define FP_BYTES 4096

static int by_name(const void *a, const void *b)
{
    return strcmp(((const gi_manifest_entry *)a)->name, ((const gi_manifest_entry *)b)->name);
}

static gi_manifest_entry *find(const gi_manifest *m, const char *name)
{
    if (m->n == 0)
        return NULL;
    gi_manifest_entry key = {.name = (char *)name};
    return bsearch(&key, m->e, (size_t)m->n, sizeof *m->e, by_name);
}

static gi_manifest_entry *find_sorted(const gi_manifest *m, int n, const char *name)
{
    if (n == 0)
        return NULL;
    gi_manifest_entry key = {.name = (char *)name};
    return bsearch(&key, m->e, (size_t)n, sizeof *m->e, by_name);
}

static void path_of(const gi_manifest *m, const char *name, char *buf, size_t n)
{
    snprintf(buf, n, "%s/%s", m->dir, name);
}

unsigned long long gi_manifest_fingerprint(const char *path, long long size)
{
    unsigned long long h = 1469598103934665603ULL;   /* FNV-1a 64 */
    for (int b = 0; b < 8; b++) {
        h ^= (unsigned char)((unsigned long long)size >> (8 * b));
        h *= 1099511628211ULL;
    }
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    unsigned char buf[FP_BYTES];
    off_t at[2] = {0, size > FP_BYTES ? (off_t)(size - FP_BYTES) : 0};
    for (int part = 0; part < (size > FP_BYTES ? 2 : 1); part++) {
        ssize_t got = pread(fd, buf, sizeof buf, at[part]);
        for (ssize_t q = 0; q < got; q++) {
            h ^= buf[q];
            h *= 1099511628211ULL;
        }
    }
    close(fd);
    return h;
}

void gi_manifest_free(gi_manifest *m)
{
    for (int i = 0; i < m->n; i++)
        free(m->e[i].name);
    free(m->e);
    m->e = NULL;
    m->n = m->cap = 0;
}

static int add(gi_manifest *m, const char *name, gi_err *err)
{
    if (m->n == m->cap) {
        int cap = m->cap ? 2 * m->cap : 64;
        gi_manifest_entry *e = realloc(m->e, sizeof *e * (size_t)cap);
        if (!e)
            return gi_fail(err, "out of memory for the output manifest of %s", m->dir);
        m->e = e;
        m->cap = cap;
    }
    gi_manifest_entry *e = &m->e[m->n];
    memset(e, 0, sizeof *e);
    if (!(e->name = strdup(name)))
        return gi_fail(err, "out of memory for the output manifest of %s", m->dir);
    e->size = e->mtime_ns = -1;
    e->pending = 1;
    m->n++;
    return 0;
}

int gi_manifest_load(gi_manifest *m, const char *dir, gi_err *err)
{
    memset(m, 0, sizeof *m);
    if (snprintf(m->dir, sizeof m->dir, "%s", dir) >= (int)sizeof m->dir)
        return gi_fail(err, "folder path too long: %s", dir);
    char path[sizeof m->dir + 32];
    snprintf(path, sizeof path, "%s/" GI_MANIFEST_NAME, dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? 0 : gi_fail(err, "cannot read %s: %s", path, strerror(errno));
    m->found = 1;
    char line[8192];
    long ln = 0;
    int rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        ln++;
        size_t len = strlen(line);
        if (len && line[len - 1] == '\n')
            line[--len] = '\0';
        if (line[0] == '#' || line[0] == '\0')
            continue;
        char s_size[32], s_mtime[32], s_fp[32];
        int at = 0;
        if (sscanf(line, "%31s %31s %31s %n", s_size, s_mtime, s_fp, &at) != 3 || !line[at]) {
            rc = gi_fail(err, "%s:%ld: damaged line (expected SIZE MTIME_NS FINGERPRINT NAME); remove the file "
                         "only if you know which files of %s geneinr wrote", path, ln, dir);
            break;
        }
        if ((rc = add(m, line + at, err)) != 0)
            break;
        gi_manifest_entry *e = &m->e[m->n - 1];
        if (strcmp(s_size, "-") != 0) {
            e->size = strtoll(s_size, NULL, 10);
            e->mtime_ns = strtoll(s_mtime, NULL, 10);
            e->fp = strtoull(s_fp, NULL, 16);
            e->pending = 0;
        }
    }
    fclose(f);
    if (rc != 0) {
        gi_manifest_free(m);
        return -1;
    }
    if (m->n > 1)
        qsort(m->e, (size_t)m->n, sizeof *m->e, by_name);
    return 0;
}

int gi_manifest_save(const gi_manifest *m, gi_err *err)
{
    char path[sizeof m->dir + 32], tmp[sizeof m->dir + 40];
    snprintf(path, sizeof path, "%s/" GI_MANIFEST_NAME, m->dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return gi_fail(err, "cannot create %s: %s", tmp, strerror(errno));
    fprintf(f, "%s\n", HEADER);
    for (int i = 0; i < m->n; i++) {
        const gi_manifest_entry *e = &m->e[i];
        if (e->pending)
            fprintf(f, "- - - %s\n", e->name);
        else
            fprintf(f, "%lld %lld %016llx %s\n", e->size, e->mtime_ns, e->fp, e->name);
    }
    int bad = ferror(f);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0)
        bad = 1;
    if (fclose(f) != 0 || bad) {
        unlink(tmp);
        return gi_fail(err, "cannot write %s (disk full?)", tmp);
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return gi_fail(err, "cannot rename %s to %s: %s", tmp, path, strerror(e));
    }
    return 0;
}

/* The owner of name, whose entry is e (NULL: not listed). */
static int entry_owner(const gi_manifest *m, const char *name, const gi_manifest_entry *e)
{
    char path[sizeof m->dir + 1100];
    path_of(m, name, path, sizeof path);
    struct stat st;
    if (lstat(path, &st) != 0)
        return GI_OWN_ABSENT;
    if (!S_ISREG(st.st_mode))
        return GI_OWN_FOREIGN;
    if (!e)
        return GI_OWN_FOREIGN;
    if (e->pending)
        return GI_OWN_OURS;
    if (e->size != (long long)st.st_size)
        return GI_OWN_CHANGED;
    long long mt = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
    if (mt == e->mtime_ns)
        return GI_OWN_OURS;
    return gi_manifest_fingerprint(path, e->size) == e->fp ? GI_OWN_OURS : GI_OWN_CHANGED;
}

int gi_manifest_owner(const gi_manifest *m, const char *name)
{
    return entry_owner(m, name, find(m, name));
}

int gi_manifest_check_free(const gi_manifest *m, const char *const *names, int n, const char *what, gi_err *err)
{
    int bad = 0, first = -1, first_kind = 0;
    for (int i = 0; i < n; i++) {
        int o = gi_manifest_owner(m, names[i]);
        if (o == GI_OWN_CHANGED || o == GI_OWN_FOREIGN) {
            if (!bad++) {
                first = i;
                first_kind = o;
            }
        }
    }
    if (!bad)
        return 0;
    char more[64] = "";
    if (bad > 1)
        snprintf(more, sizeof more, " (and %d more output name%s)", bad - 1, bad > 2 ? "s" : "");
    const char *why = first_kind == GI_OWN_CHANGED ? "was changed since geneinr wrote it"
                      : !m->found ? "is not a file geneinr recorded: the folder has no " GI_MANIFEST_NAME
                                    " (made by hand or by a geneinr before output manifests)"
                                  : "is not a file geneinr wrote (not in " GI_MANIFEST_NAME ")";
    return gi_fail(err, "%s/%s%s %s; %s would write an output there and never overwrites a file it did not write. "
                   "Move it away (if it is an output of an earlier geneinr, delete it), or use another --out",
                   m->dir, names[first], more, why, what);
}

int gi_manifest_claim(gi_manifest *m, const char *const *names, int n, const char *what, gi_err *err)
{
    if (gi_manifest_check_free(m, names, n, what, err) != 0)
        return -1;
    int added = 0, sorted_n = m->n;
    for (int i = 0; i < n; i++) {
        if (strchr(names[i], '\n') || !names[i][0])
            return gi_fail(err, "output name '%s' cannot be recorded (empty or holds a line break)", names[i]);
        /* find() sees the sorted part only: new names are appended and
         * sorted once below; a name given twice is added twice and the
         * twin dropped after the sort. */
        if (find_sorted(m, sorted_n, names[i]))
            continue;   /* ours already: replaced in place */
        if (add(m, names[i], err) != 0)
            return -1;
        added++;
    }
    if (added && m->n > 1)
        qsort(m->e, (size_t)m->n, sizeof *m->e, by_name);
    /* Duplicates in names (one output named twice) leave twin entries: drop them. */
    int w = 0;
    for (int i = 0; i < m->n; i++) {
        if (w > 0 && strcmp(m->e[w - 1].name, m->e[i].name) == 0) {
            free(m->e[i].name);
            continue;
        }
        m->e[w++] = m->e[i];
    }
    m->n = w;
    return gi_manifest_save(m, err);
}

/* Drop entry i (keeps the order). */
static void drop(gi_manifest *m, int i)
{
    free(m->e[i].name);
    memmove(&m->e[i], &m->e[i + 1], sizeof *m->e * (size_t)(m->n - i - 1));
    m->n--;
}

int gi_manifest_commit(gi_manifest *m, const char *const *names, int n, gi_err *err)
{
    for (int i = 0; i < n; i++) {
        gi_manifest_entry *e = find(m, names[i]);
        if (!e)
            continue;   /* never claimed: not ours to record */
        char path[sizeof m->dir + 1100];
        path_of(m, names[i], path, sizeof path);
        struct stat st;
        if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
            drop(m, (int)(e - m->e));
            continue;
        }
        e->size = (long long)st.st_size;
        e->mtime_ns = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
        e->fp = gi_manifest_fingerprint(path, e->size);
        e->pending = 0;
    }
    return gi_manifest_save(m, err);
}

int gi_manifest_remove(gi_manifest *m, int (*select)(const char *name, void *ctx), void *ctx, int *kept,
                       char *kept_example, size_t example_size, gi_err *err)
{
    int removed = 0, left = 0, rc = 0, w = 0;
    if (kept_example && example_size)
        kept_example[0] = '\0';
    /* Compacted in place (w: entries kept), one pass: 15,600 maps are no
     * quadratic list surgery. */
    for (int i = 0; i < m->n; i++) {
        gi_manifest_entry *e = &m->e[i];
        if (rc != 0 || (select && !select(e->name, ctx))) {
            m->e[w++] = *e;
            continue;
        }
        int o = entry_owner(m, e->name, e);   /* not find(): the list is being compacted */
        if (o == GI_OWN_OURS) {
            char path[sizeof m->dir + 1100];
            path_of(m, e->name, path, sizeof path);
            if (unlink(path) != 0 && errno != ENOENT) {
                rc = gi_fail(err, "cannot remove %s (an output of earlier weights): %s", path, strerror(errno));
                m->e[w++] = *e;
                continue;
            }
            removed++;
        } else if (o != GI_OWN_ABSENT) {
            if (!left++ && kept_example && example_size)
                snprintf(kept_example, example_size, "%s/%s", m->dir, e->name);
        }
        free(e->name);   /* removed, vanished, or the user's now: unlisted */
    }
    int dirty = m->n != w;   /* nothing unlisted: no file written (a member folder stays empty) */
    m->n = w;
    if (kept)
        *kept = left;
    if (dirty && gi_manifest_save(m, rc == 0 ? err : NULL) != 0 && rc == 0)
        rc = -1;
    return rc == 0 ? removed : -1;
}

int gi_manifest_claim_in(const char *dir, const char *const *names, int n, const char *what, gi_err *err)
{
    gi_manifest m;
    if (gi_manifest_load(&m, dir, err) != 0)
        return -1;
    int rc = gi_manifest_claim(&m, names, n, what, err);
    gi_manifest_free(&m);
    return rc;
}

int gi_manifest_commit_in(const char *dir, const char *const *names, int n, gi_err *err)
{
    gi_manifest m;
    if (gi_manifest_load(&m, dir, err) != 0)
        return -1;
    int rc = gi_manifest_commit(&m, names, n, err);
    gi_manifest_free(&m);
    return rc;
}

int gi_manifest_check_free_in(const char *dir, const char *const *names, int n, const char *what, gi_err *err)
{
    gi_manifest m;
    if (gi_manifest_load(&m, dir, err) != 0)
        return -1;
    int rc = gi_manifest_check_free(&m, names, n, what, err);
    gi_manifest_free(&m);
    return rc;
}

typedef struct affix {
    const char *prefix, *suffix;
} affix;

static int has_affix(const char *name, void *ctx)
{
    const affix *a = ctx;
    size_t n = strlen(name);
    if (a->prefix && strncmp(name, a->prefix, strlen(a->prefix)) != 0)
        return 0;
    return !a->suffix || (n >= strlen(a->suffix) && strcmp(name + n - strlen(a->suffix), a->suffix) == 0);
}

int gi_manifest_remove_in(const char *dir, const char *prefix, const char *suffix, int *kept, gi_err *err)
{
    gi_manifest m;
    if (gi_manifest_load(&m, dir, err) != 0)
        return -1;
    affix a = {prefix, suffix};
    int rc = m.n ? gi_manifest_remove(&m, has_affix, &a, kept, NULL, 0, err) : 0;
    if (!m.n && kept)
        *kept = 0;
    gi_manifest_free(&m);
    return rc;
}

/* ahba.c - reading the AHBA donor folders (see ahba.h). */
#include "geneinr/ahba.h"

#include <dirent.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "geneinr/grow.h"
/* The six donors of the release: numeric id and specimen name (facts of the
 * release, also in abagen's donor_info.csv). */
static const struct { const char *id, *name; } DONORS[] = {
    {"9861", "H0351.2001"},  {"10021", "H0351.2002"}, {"12876", "H0351.1009"},
    {"14380", "H0351.1012"}, {"15496", "H0351.1015"}, {"15697", "H0351.1016"},
};

const char *gi_ahba_donor_name(const char *id_or_name)
{
    for (size_t i = 0; i < sizeof DONORS / sizeof DONORS[0]; i++)
        if (strcmp(id_or_name, DONORS[i].id) == 0 || strcmp(id_or_name, DONORS[i].name) == 0)
            return DONORS[i].name;
    return NULL;
}

long gi_ahba_donor_id(const char *id_or_name)
{
    for (size_t i = 0; i < sizeof DONORS / sizeof DONORS[0]; i++)
        if (strcmp(id_or_name, DONORS[i].id) == 0 || strcmp(id_or_name, DONORS[i].name) == 0)
            return strtol(DONORS[i].id, NULL, 10);
    return -1;
}

/* ---- donor folders ---------------------------------------------------------- */

static int cmp_donor(const void *a, const void *b)
{
    const gi_ahba_donor *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

int gi_ahba_find_donors(const char *data_dir, gi_ahba_donor **donors, int *n, gi_err *err)
{
    *donors = NULL;
    *n = 0;
    errno = 0;
    DIR *d = opendir(data_dir);
    if (!d)
        return gi_fail(err, "prepare.data_dir: cannot open %s: %s", data_dir, strerror(errno));
    static const char prefix[] = "normalized_microarray_donor";
    gi_ahba_donor *v = NULL;
    int cnt = 0, rc = 0;
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, prefix, sizeof prefix - 1) != 0)
            continue;
        const char *num = e->d_name + sizeof prefix - 1;
        char *end;
        errno = 0;
        long id = strtol(num, &end, 10);
        if (!*num || *end || errno || id <= 0)
            continue;
        size_t len = strlen(data_dir) + strlen(e->d_name) + 2;
        char *dir = malloc(len);
        if (!dir) {
            rc = gi_fail(err, "out of memory");
            break;
        }
        snprintf(dir, len, "%s/%s", data_dir, e->d_name);
        /* A name of the donor pattern that is no folder (a dangling link, a
         * symlink loop, a file) is an error, never skipped: skipping it would
         * prepare one donor fewer without a word. A link to a folder is fine. */
        struct stat st;
        if (stat(dir, &st) != 0) {
            int e2 = errno;
            struct stat lst;
            int dangling = e2 == ENOENT && lstat(dir, &lst) == 0 && S_ISLNK(lst.st_mode);
            rc = gi_fail(err, "prepare.data_dir: %s: %s%s", dir,
                         dangling ? "a dangling symbolic link (its target does not exist)"
                         : e2 == ELOOP ? "a symbolic link loop (too many levels of symbolic links)"
                                       : strerror(e2),
                         "; a donor folder must be a folder (or a link to one)");
            free(dir);
            break;
        }
        if (!S_ISDIR(st.st_mode)) {
            rc = gi_fail(err, "prepare.data_dir: %s is not a folder; a donor folder must be a folder "
                         "(or a link to one)", dir);
            free(dir);
            break;
        }
        if (GI_GROW(v, cap, (size_t)cnt + 1)) {
            free(dir);
            rc = gi_fail(err, "out of memory");
            break;
        }
        v[cnt].id = id;
        v[cnt].dir = dir;
        char idtext[32];
        snprintf(idtext, sizeof idtext, "%ld", id);
        const char *name = gi_ahba_donor_name(idtext);
        snprintf(v[cnt].name, sizeof v[cnt].name, "%s", name ? name : idtext);
        cnt++;
    }
    closedir(d);
    if (rc == 0 && cnt == 0)
        rc = gi_fail(err, "prepare.data_dir: %s holds no normalized_microarray_donor<ID> "
                     "folders (the AHBA download, unpacked)", data_dir);
    if (rc) {
        gi_ahba_free_donors(v, cnt);
        return -1;
    }
    qsort(v, (size_t)cnt, sizeof *v, cmp_donor);
    *donors = v;
    *n = cnt;
    return 0;
}

void gi_ahba_free_donors(gi_ahba_donor *donors, int n)
{
    for (int i = 0; donors && i < n; i++)
        free(donors[i].dir);
    free(donors);
}

/* ---- matrices ----------------------------------------------------------------- */

/* Exact powers of ten: with a mantissa below 2^53 one multiplication or
 * division by one of these is correctly rounded (Clinger's fast path), so
 * the result equals strtod's. */
static const double POW10[23] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/* Parse a decimal number in [p, end) exactly; 0 on success. */
static int parse_number(const char *p, const char *end, double *out)
{
    const char *s = p;
    if (s < end && *s == '"' && end - s >= 2 && end[-1] == '"')
        s++, end--;
    const char *start = s;
    int neg = 0;
    if (s < end && (*s == '-' || *s == '+'))
        neg = *s++ == '-';
    uint64_t m = 0;
    int digits = 0, exp10 = 0, any = 0;
    while (s < end && (unsigned)(*s - '0') < 10) {
        if (digits < 19) {
            m = m * 10 + (uint64_t)(*s - '0');
            if (m)
                digits++;
        } else {
            exp10++;
        }
        s++;
        any = 1;
    }
    if (s < end && *s == '.') {
        s++;
        while (s < end && (unsigned)(*s - '0') < 10) {
            if (digits < 19) {
                m = m * 10 + (uint64_t)(*s - '0');
                if (m)
                    digits++;
                exp10--;
            }
            s++;
            any = 1;
        }
    }
    if (!any)
        goto slow;
    if (s < end && (*s == 'e' || *s == 'E')) {
        s++;
        int eneg = 0, e = 0, edig = 0;
        if (s < end && (*s == '-' || *s == '+'))
            eneg = *s++ == '-';
        while (s < end && (unsigned)(*s - '0') < 10 && e < 100000)
            e = e * 10 + (*s++ - '0'), edig = 1;
        if (!edig)
            goto slow;
        exp10 += eneg ? -e : e;
    }
    if (s != end)
        goto slow;
    if (m < (1ULL << 53) && exp10 >= -22 && exp10 <= 22) {
        double v = (double)m;
        v = exp10 < 0 ? v / POW10[-exp10] : v * POW10[exp10];
        *out = neg ? -v : v;
        return 0;
    }
slow:;
    /* Rare: long mantissas, big exponents, nan/inf spellings. */
    char tmp[128];
    size_t len = (size_t)(end - start);
    if (len == 0 || len >= sizeof tmp)
        return -1;
    memcpy(tmp, start, len);
    tmp[len] = 0;
    char *e;
    double v = strtod(tmp, &e);
    if (*e || e == tmp)
        return -1;
    *out = v;
    return 0;
}

#define MATRIX_BLOCK (8u << 20)

int gi_ahba_read_matrix(const char *path, int n_cols, gi_ahba_row_fn fn, void *ctx,
                        long *rows, double *bytes, gi_err *err)
{
    errno = 0;
    gzFile gz = gzopen(path, "rb");
    if (!gz)
        return gi_fail(err, "cannot open %s: %s", path, errno ? strerror(errno) : "out of memory");
    gzbuffer(gz, 1u << 20);
    char *buf = malloc(MATRIX_BLOCK + 1);
    double *vals = malloc(((size_t)n_cols + 1) * sizeof *vals);
    char probe[256];
    int rc = 0;
    long line = 0, nrows = 0;
    double total = 0;
    size_t have = 0;
    int eof = 0;
    if (!buf || !vals) {
        rc = gi_fail(err, "%s: out of memory", path);
        eof = 1;
    }
    while (rc == 0) {
        if (!eof && have < MATRIX_BLOCK) {
            int got = gzread(gz, buf + have, (unsigned)(MATRIX_BLOCK - have));
            if (got < 0) {
                int zerr;
                const char *msg = gzerror(gz, &zerr);
                rc = gi_fail(err, "%s:%ld: read error: %s", path, line + 1,
                             zerr == Z_ERRNO ? strerror(errno) : msg);
                break;
            }
            if (got == 0)
                eof = 1;
            have += (size_t)got;
            total += got;
        }
        if (have == 0)
            break;
        /* Parse every complete line; at the end of the file the last line
         * may lack its line end. */
        char *p = buf, *limit = buf + have;
        for (;;) {
            char *nl = memchr(p, '\n', (size_t)(limit - p));
            if (!nl) {
                if (!eof || p == limit)
                    break;
                nl = limit;
            }
            line++;
            char *le = nl;
            if (le > p && le[-1] == '\r')
                le--;
            if (le == p) {   /* blank line */
                p = nl < limit ? nl + 1 : limit;
                continue;
            }
            char *f = p;
            char *c = memchr(f, ',', (size_t)(le - f));
            if (!c && n_cols > 0 && (memchr(f, ';', (size_t)(le - f)) || memchr(f, '\t', (size_t)(le - f)))) {
                int semi = memchr(f, ';', (size_t)(le - f)) != NULL;
                rc = gi_fail(err, "%s:%ld: the row holds no comma but %s: the file looks %s-delimited, and "
                             "geneinr reads comma-separated files (save it as CSV with ',' between fields)",
                             path, line, semi ? "';'" : "TABs", semi ? "';'" : "tab");
                break;
            }
            char *fe = c ? c : le;
            size_t plen = (size_t)(fe - f);
            if (plen >= 2 && f[0] == '"' && fe[-1] == '"')
                f++, plen -= 2;
            if (plen == 0 || plen >= sizeof probe) {
                rc = gi_fail(err, "%s:%ld: the first field must be a probe id", path, line);
                break;
            }
            memcpy(probe, f, plen);
            probe[plen] = 0;
            int k = 0;
            while (c && rc == 0) {
                char *q = c + 1;
                c = memchr(q, ',', (size_t)(le - q));
                char *qe = c ? c : le;
                if (k == n_cols) {
                    k++;
                    break;
                }
                if (parse_number(q, qe, &vals[k]) != 0) {
                    int w = (int)(qe - q) > 40 ? 40 : (int)(qe - q);
                    rc = gi_fail(err, "%s:%ld: field %d ('%.*s') is not a number (probe %s, sample column %d)",
                                 path, line, k + 2, w, q, probe, k + 1);
                    break;
                }
                /* NaN, inf and values beyond float range (the matrices are
                 * held as float) are refused here: the Allen files never
                 * hold them, and downstream ranks, means and quartiles have
                 * no meaning for them (a NaN once spun the rank-tie loop). */
                if (!(fabs(vals[k]) <= FLT_MAX)) {
                    int w = (int)(qe - q) > 40 ? 40 : (int)(qe - q);
                    rc = gi_fail(err, "%s:%ld: field %d ('%.*s') is not a finite number (probe %s, sample "
                                 "column %d); the AHBA matrices hold finite values only", path, line, k + 2, w, q,
                                 probe, k + 1);
                    break;
                }
                k++;
            }
            if (rc)
                break;
            if (k != n_cols) {
                /* Count the fields for the message. */
                long nf = 1;
                for (char *q = p; q < le; q++)
                    nf += *q == ',';
                rc = gi_fail(err, "%s:%ld: row has %ld values but SampleAnnot.csv lists %d "
                             "samples (a probe id, then one value per sample)", path, line,
                             nf - 1, n_cols);
                break;
            }
            nrows++;
            if (fn(ctx, line, probe, vals, n_cols, err) != 0) {
                rc = -1;
                break;
            }
            p = nl < limit ? nl + 1 : limit;
            if (p >= limit)
                break;
        }
        if (rc)
            break;
        size_t used = (size_t)(p - buf);
        if (used == 0 && have >= MATRIX_BLOCK) {
            rc = gi_fail(err, "%s:%ld: a row longer than %u MiB", path, line + 1,
                         MATRIX_BLOCK >> 20);
            break;
        }
        memmove(buf, p, have - used);
        have -= used;
        if (eof && have == 0)
            break;
        if (eof && used == 0)
            break;
    }
    if (rc == 0) {
        int zerr = Z_OK;
        gzerror(gz, &zerr);
        if (zerr != Z_OK && zerr != Z_STREAM_END)
            rc = gi_fail(err, "%s: read error (truncated gzip file?)", path);
    }
    gzclose(gz);
    free(buf);
    free(vals);
    if (rc == 0 && nrows == 0)
        rc = gi_fail(err, "%s: no rows", path);
    if (rows)
        *rows = nrows;
    if (bytes)
        *bytes = total;
    return rc;
}

/* csv.c - streaming RFC 4180 reader over zlib (see csv.h).
 *
 * Why by hand: zlib gives us transparent gzip, but no well-kept C library
 * reads RFC 4180 (quoted newlines, "" escapes) with line numbers for error
 * messages, and the state machine is small.
 *
 * Design: bytes come from gzread into a fixed input block; one record at a
 * time is assembled into `rec`, a growable byte buffer holding every field of
 * the record, each followed by a NUL. Field starts are kept as offsets while
 * the record grows (rec may move on realloc) and turned into the `fields`
 * pointer array only when the record is complete. Nothing has a fixed size
 * limit; memory is bounded by the longest record, not by the file.
 *
 * Line numbers: `line` is the 1-based line of the next unread byte; a line
 * ends at LF, CRLF or a lone CR. `rec_line` is the line where the record last
 * returned starts, which is what error messages from callers should cite.
 */
#include "geneinr/csv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define CSV_BLOCK (1 << 17)   /* gzread block: 128 KiB */
#define CSV_EOF (-1)          /* csv_getc: end of file */
#define CSV_ERR (-2)          /* csv_getc: read error, message in err */

struct gi_csv {
    gzFile gz;
    char *path;
    unsigned char *in;        /* [CSV_BLOCK] input block */
    int in_len, in_pos;
    int eof;                  /* gzread returned 0 (or an error was reported) */
    long line;                /* line of the next unread byte */
    long rec_line;            /* line where the last returned record starts */
    char *rec;                /* field bytes, NUL-separated */
    size_t rec_len, rec_cap;
    size_t *starts;           /* [n] offsets of field starts in rec */
    char **fields;            /* [n] pointers into rec, rebuilt per record */
    int n_cap;
    long n_rec;               /* records returned so far */
};

/* A ';'- or tab-delimited file read as CSV has a first row of one field
 * holding the separators (or a quoted field followed by one): say so, instead
 * of letting the caller report a missing column. Every table of the project
 * comes through here, so all of them get the same message. */
static int wrong_delimiter(const gi_csv *r, int ch, gi_err *err)
{
    return gi_fail(err, "%s:%ld: the first row is not comma-separated but holds %s: the file looks "
                   "%s-delimited, and geneinr reads comma-separated files (save it as CSV with ',' "
                   "between fields)", r->path, r->rec_line, ch == ';' ? "';'" : "TABs",
                   ch == ';' ? "';'" : "tab");
}

/* Refill the input block. Returns 1 if bytes are available, 0 at the end of
 * the file, -1 on a read error (message in err). */
static int csv_fill(gi_csv *r, gi_err *err)
{
    if (r->eof)
        return 0;
    int got = gzread(r->gz, r->in, CSV_BLOCK);
    if (got < 0) {
        int zerr = 0;
        const char *msg = gzerror(r->gz, &zerr);
        r->eof = 1;
        return gi_fail(err, "%s:%ld: read error: %s", r->path, r->line,
                       zerr == Z_ERRNO ? strerror(errno) : msg);
    }
    if (got == 0) {
        int zerr = 0;
        gzerror(r->gz, &zerr);
        r->eof = 1;
        /* Z_BUF_ERROR at end of input: the gzip stream stopped mid-way. */
        if (zerr == Z_BUF_ERROR)
            return gi_fail(err, "%s:%ld: truncated gzip file", r->path, r->line);
        if (zerr != Z_OK)
            return gi_fail(err, "%s:%ld: read error: %s", r->path, r->line,
                           gzerror(r->gz, &zerr));
        return 0;
    }
    r->in_len = got;
    r->in_pos = 0;
    return 1;
}

/* Next byte (0..255), CSV_EOF at end of file, or CSV_ERR on error. */
static inline int csv_getc(gi_csv *r, gi_err *err)
{
    if (r->in_pos >= r->in_len) {
        int rc = csv_fill(r, err);
        if (rc <= 0)
            return rc < 0 ? CSV_ERR : CSV_EOF;
    }
    return r->in[r->in_pos++];
}

/* Look at the next byte without consuming it (same returns as csv_getc). */
static inline int csv_peek(gi_csv *r, gi_err *err)
{
    if (r->in_pos >= r->in_len) {
        int rc = csv_fill(r, err);
        if (rc <= 0)
            return rc < 0 ? CSV_ERR : CSV_EOF;
    }
    return r->in[r->in_pos];
}

static int rec_grow(gi_csv *r, size_t need, gi_err *err)
{
    if (need <= r->rec_cap)
        return 0;
    size_t cap = r->rec_cap ? r->rec_cap : 256;
    while (cap < need)
        cap *= 2;
    char *p = realloc(r->rec, cap);
    if (!p)
        return gi_fail(err, "%s:%ld: out of memory for a %zu-byte record", r->path,
                       r->rec_line, need);
    r->rec = p;
    r->rec_cap = cap;
    return 0;
}

static inline int rec_put(gi_csv *r, int c, gi_err *err)
{
    if (r->rec_len + 1 > r->rec_cap && rec_grow(r, r->rec_len + 1, err))
        return -1;
    r->rec[r->rec_len++] = (char)c;
    return 0;
}

/* Start field number n (0-based) at the current end of rec. */
static int field_start(gi_csv *r, int n, gi_err *err)
{
    if (n >= r->n_cap) {
        int cap = r->n_cap ? 2 * r->n_cap : 64;
        size_t *s = realloc(r->starts, (size_t)cap * sizeof *s);
        if (!s)
            return gi_fail(err, "%s:%ld: out of memory", r->path, r->rec_line);
        r->starts = s;
        char **f = realloc(r->fields, (size_t)cap * sizeof *f);
        if (!f)
            return gi_fail(err, "%s:%ld: out of memory", r->path, r->rec_line);
        r->fields = f;
        r->n_cap = cap;
    }
    r->starts[n] = r->rec_len;
    return 0;
}

gi_csv *gi_csv_open(const char *path, gi_err *err)
{
    gi_csv *r = calloc(1, sizeof *r);
    if (!r) {
        gi_fail(err, "%s: out of memory", path);
        return NULL;
    }
    r->path = strdup(path);
    r->in = malloc(CSV_BLOCK);
    if (!r->path || !r->in) {
        gi_fail(err, "%s: out of memory", path);
        gi_csv_close(r);
        return NULL;
    }
    errno = 0;
    r->gz = gzopen(path, "rb");
    if (!r->gz) {
        gi_fail(err, "cannot open %s: %s", path, errno ? strerror(errno) : "out of memory");
        gi_csv_close(r);
        return NULL;
    }
    r->line = 1;
    /* Skip a UTF-8 byte-order mark (EF BB BF) at the very start. */
    int rc = csv_fill(r, err);
    if (rc < 0) {
        gi_csv_close(r);
        return NULL;
    }
    if (r->in_len >= 3 && r->in[0] == 0xEF && r->in[1] == 0xBB && r->in[2] == 0xBF)
        r->in_pos = 3;
    return r;
}

/* Consume a line end whose first byte c ('\r' or '\n') was just read. */
static int eat_newline(gi_csv *r, int c, gi_err *err)
{
    if (c == '\r') {
        int d = csv_peek(r, err);
        if (d == CSV_ERR)
            return -1;
        if (d == '\n')
            r->in_pos++;
    }
    r->line++;
    return 0;
}

int gi_csv_next(gi_csv *r, char ***fields, int *n_fields, gi_err *err)
{
    for (;;) {
        int n = 0;           /* fields completed so far */
        int any = 0;         /* the record has at least one byte or a quote */
        r->rec_len = 0;
        r->rec_line = r->line;
        if (field_start(r, 0, err))
            return -1;
        for (;;) {
            int c = csv_getc(r, err);
            if (c == CSV_ERR)
                return -1;
            if (c == '"') {
                /* Quoted field: only allowed at the start of a field. */
                if (r->rec_len != r->starts[n])
                    return gi_fail(err, "%s:%ld: stray quote inside an unquoted field "
                                   "(field %d)", r->path, r->line, n + 1);
                long open_line = r->line;
                any = 1;
                for (;;) {
                    c = csv_getc(r, err);
                    if (c == CSV_ERR)
                        return -1;
                    if (c == CSV_EOF)
                        return gi_fail(err, "%s:%ld: unterminated quoted field (field %d)",
                                       r->path, open_line, n + 1);
                    if (c == '"') {
                        int d = csv_peek(r, err);
                        if (d == CSV_ERR)
                            return -1;
                        if (d != '"')
                            break;       /* closing quote */
                        r->in_pos++;     /* "" is one quote */
                    } else if (c == '\n') {
                        r->line++;
                    } else if (c == '\r') {
                        int d = csv_peek(r, err);
                        if (d == CSV_ERR)
                            return -1;
                        if (d != '\n')
                            r->line++;   /* lone CR; CRLF counts at the LF */
                    } else if (c == 0) {
                        return gi_fail(err, "%s:%ld: NUL byte in field %d", r->path,
                                       r->line, n + 1);
                    }
                    if (rec_put(r, c, err))
                        return -1;
                }
                /* After the closing quote: a separator, a line end or the end of file. */
                c = csv_getc(r, err);
                if (c == CSV_ERR)
                    return -1;
                if ((c == ';' || c == '\t') && r->n_rec == 0 && n == 0)
                    return wrong_delimiter(r, c, err);
                if (c != ',' && c != '\n' && c != '\r' && c != CSV_EOF)
                    return gi_fail(err, "%s:%ld: unexpected character after closing quote "
                                   "(field %d)", r->path, r->line, n + 1);
            }
            if (c == ',') {
                any = 1;
                if (rec_put(r, 0, err) || field_start(r, ++n, err))
                    return -1;
            } else if (c == '\n' || c == '\r' || c == CSV_EOF) {
                if (c != CSV_EOF && eat_newline(r, c, err))
                    return -1;
                if (!any && r->rec_len == 0) {
                    if (c == CSV_EOF)
                        return 0;        /* end of file */
                    break;               /* blank line: read the next one */
                }
                if (rec_put(r, 0, err))
                    return -1;
                n++;
                for (int i = 0; i < n; i++)
                    r->fields[i] = r->rec + r->starts[i];
                if (r->n_rec++ == 0 && n == 1) {
                    const char *semi = strchr(r->fields[0], ';'), *tab = strchr(r->fields[0], '\t');
                    if (semi || tab)
                        return wrong_delimiter(r, semi && (!tab || semi < tab) ? ';' : '\t', err);
                }
                *fields = r->fields;
                *n_fields = n;
                return 1;
            } else if (c == 0) {
                return gi_fail(err, "%s:%ld: NUL byte in field %d", r->path, r->line, n + 1);
            } else if (rec_put(r, c, err)) {
                return -1;
            }
        }
    }
}

long gi_csv_line(const gi_csv *r)
{
    return r->rec_line;
}

const char *gi_csv_path(const gi_csv *r)
{
    return r->path;
}

void gi_csv_close(gi_csv *r)
{
    if (!r)
        return;
    if (r->gz)
        gzclose(r->gz);
    free(r->path);
    free(r->in);
    free(r->rec);
    free(r->starts);
    free(r->fields);
    free(r);
}

int gi_table_open(gi_table *t, const char *path, gi_err *err)
{
    memset(t, 0, sizeof *t);
    t->path = path;
    if (!(t->csv = gi_csv_open(path, err)))
        return -1;
    int rc = gi_csv_next(t->csv, &t->f, &t->n_cols, err);
    if (rc == 1) {
        t->line = gi_csv_line(t->csv);
        return 0;
    }
    if (rc == 0)
        gi_fail(err, "%s: empty file (no header row)", path);
    gi_table_close(t);
    return -1;
}

int gi_table_columns(gi_table *t, const char *const *names, int n, int *idx, gi_err *err)
{
    for (int k = 0; k < n; k++) {
        idx[k] = -1;
        for (int i = 0; i < t->n_cols; i++)
            if (strcmp(t->f[i], names[k]) == 0)
                idx[k] = i;
        if (idx[k] < 0)
            return gi_fail(err, "%s:%ld: missing column '%s'", t->path, t->line, names[k]);
    }
    return 0;
}

int gi_table_next(gi_table *t, gi_err *err)
{
    int nf;
    int rc = gi_csv_next(t->csv, &t->f, &nf, err);
    if (rc != 1)
        return rc;
    t->line = gi_csv_line(t->csv);
    if (nf != t->n_cols)
        return gi_fail(err, "%s:%ld: row has %d fields but the header has %d", t->path, t->line, nf, t->n_cols);
    return 1;
}

void gi_table_close(gi_table *t)
{
    gi_csv_close(t->csv);
    t->csv = NULL;
}

void gi_csv_put_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\r\n") && strncmp(s, "\xEF\xBB\xBF", 3) != 0) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

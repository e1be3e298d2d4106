/* strbuf.h - a growing text buffer with printf appends, for files built in
 * memory and then written in one go (CSV tables, HTML reports). */
#ifndef GENEINR_STRBUF_H
#define GENEINR_STRBUF_H

#include <stddef.h>

typedef struct gi_strbuf {
    char *s;                 /* NUL-terminated text, NULL while empty */
    size_t n, cap;
    int oom;                 /* an append ran out of memory: the text is incomplete */
} gi_strbuf;

/* Appends printf-formatted text (capacity doubles, from 64 KiB). */
void gi_strbuf_add(gi_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends t with HTML's special characters (< > & ") escaped. */
void gi_strbuf_html(gi_strbuf *b, const char *t);

#endif

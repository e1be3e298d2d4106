/* strbuf.c - the growing text buffer (strbuf.h). */
#include "geneinr/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void gi_strbuf_add(gi_strbuf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->n;
        int w = b->s ? vsnprintf(b->s + b->n, room, fmt, ap) : -1;
        va_end(ap);
        if (w >= 0 && (size_t)w < room) {
            b->n += (size_t)w;
            return;
        }
        size_t cap = b->cap ? 2 * b->cap + (size_t)(w > 0 ? w : 0) : 65536;
        char *t = realloc(b->s, cap);
        if (!t) {
            b->oom = 1;
            return;
        }
        b->s = t;
        b->cap = cap;
    }
}

void gi_strbuf_html(gi_strbuf *b, const char *t)
{
    for (; *t; t++) {
        if (*t == '<')
            gi_strbuf_add(b, "&lt;");
        else if (*t == '>')
            gi_strbuf_add(b, "&gt;");
        else if (*t == '&')
            gi_strbuf_add(b, "&amp;");
        else if (*t == '"')
            gi_strbuf_add(b, "&quot;");
        else
            gi_strbuf_add(b, "%c", *t);
    }
}

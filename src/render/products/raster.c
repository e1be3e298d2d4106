/* raster.c - RGB canvas, bitmap text and PNG output through libpng (see raster.h). */
#include "geneinr/raster.h"

#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "geneinr/files.h"

int gi_image_new(gi_image *im, int w, int h, gi_rgb bg, gi_err *err)
{
    memset(im, 0, sizeof *im);
    if (w < 1 || h < 1 || w > 20000 || h > 20000)
        return gi_fail(err, "image size %d x %d is out of range", w, h);
    im->px = malloc(sizeof(gi_rgb) * (size_t)w * h);
    if (!im->px)
        return gi_fail(err, "out of memory for a %d x %d image", w, h);
    im->w = w;
    im->h = h;
    for (size_t q = 0; q < (size_t)w * h; q++)
        im->px[q] = bg;
    return 0;
}

void gi_image_free(gi_image *im)
{
    free(im->px);
    memset(im, 0, sizeof *im);
}

void gi_image_set(gi_image *im, int x, int y, gi_rgb c)
{
    if (x >= 0 && y >= 0 && x < im->w && y < im->h)
        im->px[(size_t)y * im->w + x] = c;
}

void gi_image_fill(gi_image *im, int x, int y, int w, int h, gi_rgb c)
{
    for (int yy = y; yy < y + h; yy++)
        for (int xx = x; xx < x + w; xx++)
            gi_image_set(im, xx, yy, c);
}

void gi_image_disc(gi_image *im, int cx, int cy, int radius, gi_rgb c)
{
    for (int dy = -radius; dy <= radius; dy++)
        for (int dx = -radius; dx <= radius; dx++)
            if (dx * dx + dy * dy <= radius * radius + radius)
                gi_image_set(im, cx + dx, cy + dy, c);
}

int gi_text_width(int scale, const char *text)
{
    int n = (int)strlen(text);
    return n ? (6 * n - 1) * scale : 0;
}

int gi_image_text(gi_image *im, int x, int y, int scale, gi_rgb c, const char *text)
{
    static const char *const BOX = "##### #...# #...# #...# #...# #...# #####";
    int x0 = x;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++, x += 6 * scale) {
        const char *g = gi_font_glyph(*p);
        if (!g)
            g = BOX;
        for (int row = 0; row < 7; row++)
            for (int col = 0; col < 5; col++)
                if (g[row * 6 + col] == '#')
                    gi_image_fill(im, x + col * scale, y + row * scale, scale, scale, c);
    }
    return x - x0;
}

/* libpng reports errors by longjmp; the message is kept for gi_err. */
typedef struct png_ctx {
    jmp_buf jmp;
    char msg[256];
} png_ctx;

static void on_png_error(png_structp png, png_const_charp msg)
{
    png_ctx *pc = png_get_error_ptr(png);
    snprintf(pc->msg, sizeof pc->msg, "%s", msg);
    longjmp(pc->jmp, 1);
}

static void on_png_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

int gi_image_write_png(const gi_image *im, const char *path, const char *const *keys,
                       const char *const *values, int n_text, gi_err *err)
{
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return gi_fail(err, "path too long: %s", path);
    FILE *volatile f = fopen(tmp, "wb");
    if (!f)
        return gi_fail(err, "cannot create %s: %s", tmp, strerror(errno));
    png_ctx pc = {.msg = ""};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &pc, on_png_error, on_png_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    png_text *volatile text = NULL;
    if (!png || !info) {
        png_destroy_write_struct(png ? &png : NULL, NULL);
        fclose(f);
        gi_remove_partial(tmp);
        return gi_fail(err, "writing %s: libpng could not start (out of memory)", path);
    }
    if (setjmp(pc.jmp)) {
        png_destroy_write_struct(&png, &info);
        free(text);
        fclose(f);
        gi_remove_partial(tmp);
        return gi_fail(err, "writing %s: %s", path, pc.msg[0] ? pc.msg : "libpng error");
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)im->w, (png_uint_32)im->h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (n_text > 0) {
        text = calloc((size_t)n_text, sizeof *text);
        if (!text)
            png_error(png, "out of memory");
        for (int i = 0; i < n_text; i++) {
            text[i].compression = PNG_TEXT_COMPRESSION_NONE;
            text[i].key = (char *)keys[i];
            text[i].text = (char *)values[i];
        }
        png_set_text(png, info, text, n_text);
    }
    png_write_info(png, info);
    for (int y = 0; y < im->h; y++)
        png_write_row(png, (png_const_bytep)(im->px + (size_t)y * im->w));
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    free(text);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        gi_remove_partial(tmp);
        return gi_fail(err, "writing %s: %s", path, strerror(errno ? errno : EIO));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        gi_remove_partial(tmp);
        return gi_fail(err, "cannot rename %s to %s: %s", tmp, path, strerror(e));
    }
    return 0;
}

/* raster.h - a small RGB canvas: rectangles, pixels, bitmap text, PNG out.
 *
 * Just enough drawing for the previews (preview.h): no anti-aliasing, no
 * fonts beyond the built-in 5x7 bitmap (font.c), integer pixel coordinates
 * with (0, 0) at the top left. PNG encoding is libpng's.
 */
#ifndef GENEINR_RASTER_H
#define GENEINR_RASTER_H

#include "geneinr/error.h"

typedef struct gi_rgb {
    unsigned char r, g, b;
} gi_rgb;

typedef struct gi_image {
    int w, h;
    gi_rgb *px;              /* [h][w], row-major */
} gi_image;

/* A w x h canvas filled with bg; -1 on out of memory. */
int gi_image_new(gi_image *im, int w, int h, gi_rgb bg, gi_err *err);
void gi_image_free(gi_image *im);

/* Pixels outside the canvas are ignored (clipped). */
void gi_image_set(gi_image *im, int x, int y, gi_rgb c);
void gi_image_fill(gi_image *im, int x, int y, int w, int h, gi_rgb c);
void gi_image_disc(gi_image *im, int cx, int cy, int radius, gi_rgb c);

/* Text in the built-in 5x7 font, each font pixel drawn as scale x scale;
 * (x, y) is the top left of the first glyph. A glyph advances 6 * scale
 * pixels and is 7 * scale tall. Characters outside printable ASCII are drawn
 * as a box. Returns the width drawn. */
int gi_image_text(gi_image *im, int x, int y, int scale, gi_rgb c, const char *text);
int gi_text_width(int scale, const char *text);

/* Write an 8-bit RGB PNG (written as PATH.tmp, renamed when complete), with
 * tEXt chunks: keys[i] = values[i], n_text of them (may be 0). */
int gi_image_write_png(const gi_image *im, const char *path, const char *const *keys,
                       const char *const *values, int n_text, gi_err *err);

/* The 5x7 glyph of c: 7 rows of 5 characters ('#' = ink) separated by spaces,
 * or NULL when the font has none (font.c). */
const char *gi_font_glyph(int c);

#endif

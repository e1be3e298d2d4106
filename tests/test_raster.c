/* test_raster.c - the drawing layer of the previews: font data, viridis,
 * PNG output read back with libpng, and its failure paths; the 4-D NIfTI
 * header. */
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "geneinr/nifti.h"
#include "geneinr/preview.h"
#include "geneinr/raster.h"

static char tmpdir[512];

static void test_font(void)
{
    int all = 1, bad = 0;
    for (int c = 32; c <= 126; c++) {
        const char *g = gi_font_glyph(c);
        int ok = g && strlen(g) == 41;
        for (int r = 0; ok && r < 7; r++)
            for (int k = 0; k < 5; k++)
                ok &= g[r * 6 + k] == '#' || g[r * 6 + k] == '.';
        for (int r = 0; ok && r < 6; r++)
            ok &= g[r * 6 + 5] == ' ';
        if (!ok && all)
            bad = c;
        all &= ok;
    }
    CHECKF(all, "font: every printable ASCII glyph is 7 rows of 5 cells", "glyph '%c'", bad);
    int distinct = 1;
    for (int a = 33; a <= 126; a++)
        for (int b = a + 1; b <= 126; b++)
            if (strcmp(gi_font_glyph(a), gi_font_glyph(b)) == 0)
                distinct = 0;
    CHECK(distinct, "font: no two visible glyphs are the same");
    CHECK(gi_font_glyph(31) == NULL && gi_font_glyph(127) == NULL && gi_font_glyph(200) == NULL,
          "font: nothing outside printable ASCII (drawn as a box)");
    CHECK(gi_text_width(2, "G01") == (6 * 3 - 1) * 2 && gi_text_width(1, "") == 0, "text width: 6 px a glyph, less the last gap");
}

static void test_viridis(void)
{
    unsigned char lo[3], mid[3], hi[3], below[3];
    gi_viridis(0, lo);
    gi_viridis(0.5, mid);
    gi_viridis(1, hi);
    gi_viridis(-3, below);
    /* matplotlib: #440154, #21918c, #fde725 */
    int close = abs(lo[0] - 68) <= 4 && abs(lo[1] - 1) <= 4 && abs(lo[2] - 84) <= 4 && abs(mid[0] - 33) <= 4 &&
                abs(mid[1] - 145) <= 4 && abs(mid[2] - 140) <= 4 && abs(hi[0] - 253) <= 4 && abs(hi[1] - 231) <= 4 &&
                abs(hi[2] - 37) <= 4;
    CHECKF(close, "viridis within 4/255 of matplotlib at 0, 0.5, 1", "(%d,%d,%d) (%d,%d,%d) (%d,%d,%d)", lo[0], lo[1],
           lo[2], mid[0], mid[1], mid[2], hi[0], hi[1], hi[2]);
    CHECK(memcmp(below, lo, 3) == 0, "viridis clamps below 0");
    /* perceptually ordered: luminance rises monotonically */
    double last = -1;
    int mono = 1;
    for (int i = 0; i <= 255; i++) {
        unsigned char c[3];
        gi_viridis(i / 255.0, c);
        double y = 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
        mono &= y >= last - 0.5;
        last = y;
    }
    CHECK(mono, "viridis: luminance increases from 0 to 1");
}

static void test_png(void)
{
    gi_image im;
    gi_err err;
    CHECK(gi_image_new(&im, 0, 5, (gi_rgb){0, 0, 0}, &err) == -1 && strstr(err.msg, "out of range"),
          "image: a zero width is refused");
    if (gi_image_new(&im, 40, 20, (gi_rgb){255, 255, 255}, &err) != 0) {
        CHECKF(0, "image: 40x20", "%s", err.msg);
        return;
    }
    gi_image_fill(&im, 2, 3, 4, 5, (gi_rgb){10, 20, 30});
    gi_image_set(&im, -1, 100, (gi_rgb){1, 1, 1}); /* clipped, no crash */
    int w = gi_image_text(&im, 10, 2, 1, (gi_rgb){0, 0, 0}, "L\x01");
    CHECK(w == 12, "text: advances 6 px per glyph (unknown characters drawn as a box)");
    char path[600];
    snprintf(path, sizeof path, "%s/t.png", tmpdir);
    const char *keys[] = {"geneinr:preview"}, *vals[] = {"{\"x\": 1}"};
    int rc = gi_image_write_png(&im, path, keys, vals, 1, &err);
    CHECKF(rc == 0, "PNG written", "%s", err.msg);

    png_image rd;
    memset(&rd, 0, sizeof rd);
    rd.version = PNG_IMAGE_VERSION;
    int ok = png_image_begin_read_from_file(&rd, path);
    unsigned char *px = NULL;
    if (ok) {
        rd.format = PNG_FORMAT_RGB;
        px = malloc(PNG_IMAGE_SIZE(rd));
        ok = px && png_image_finish_read(&rd, NULL, px, 0, NULL);
    }
    CHECKF(ok && rd.width == 40 && rd.height == 20, "PNG reads back with libpng at 40x20", "%s", rd.message);
    if (ok) {
        const unsigned char *a = px + (4 * 40 + 3) * 3, *b = px + (0 * 40 + 0) * 3, *ink = px + (2 * 40 + 10) * 3;
        CHECK(a[0] == 10 && a[1] == 20 && a[2] == 30 && b[0] == 255 && ink[0] == 0,
              "PNG pixels: the filled rectangle, the background and the text's first ink");
    }
    free(px);
    png_image_free(&rd);
    FILE *f = fopen(path, "rb");
    char buf[4096] = {0};
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f)
        fclose(f);
    CHECK(memmem(buf, n, "tEXtgeneinr:preview", 19) != NULL, "PNG carries the text chunk");
    char tmp[700];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK(access(tmp, F_OK) != 0, "no .tmp file left");

    rc = gi_image_write_png(&im, "/nonexistent-dir/x.png", NULL, NULL, 0, &err);
    CHECKF(rc == -1 && strstr(err.msg, "/nonexistent-dir/x.png.tmp"), "PNG into a missing folder: error names the file",
           "%s", err.msg);
    if (access("/dev/full", W_OK) == 0) {
        /* /dev/full as the folder is not possible; a full disk is simulated by writing through a symlink */
        char link[700];
        snprintf(link, sizeof link, "%s/full.png.tmp", tmpdir);
        if (symlink("/dev/full", link) == 0) {
            snprintf(path, sizeof path, "%s/full.png", tmpdir);
            rc = gi_image_write_png(&im, path, NULL, NULL, 0, &err);
            CHECKF(rc == -1 && access(path, F_OK) != 0, "PNG onto a full device fails and leaves no PNG", "rc %d %s", rc,
                   err.msg);
            unlink(link);
        }
    }
    unlink(path);
    gi_image_free(&im);
}

static void test_4d_header(void)
{
    /* A small geometry, written as 3-D and read back, gives the 4-D header. */
    double A[16] = {-2, 0, 0, 90, 0, 2, 0, -126, 0, 0, 2, -72, 0, 0, 0, 1};
    float vol[4 * 3 * 2];
    for (int q = 0; q < 24; q++)
        vol[q] = (float)q;
    char path[600];
    snprintf(path, sizeof path, "%s/geom.nii.gz", tmpdir);
    gi_err err;
    gi_volume v;
    if (gi_volume_write_new(4, 3, 2, A, 4, vol, 0, path, &err) != 0 || gi_volume_read(&v, path, 0, &err) != 0) {
        CHECKF(0, "4-D header: geometry", "%s", err.msg);
        return;
    }
    unsigned char head[GI_NIFTI_HEADER_MAX];
    size_t len = 0;
    int rc = gi_volume_4d_header(&v, 7, path, "test", head, &len, &err);
    short dim[8];
    memcpy(dim, head + 40, sizeof dim);
    float pixdim4;
    memcpy(&pixdim4, head + 76 + 16, 4);
    CHECKF(rc == 0 && len == 352 && dim[0] == 4 && dim[1] == 4 && dim[2] == 3 && dim[3] == 2 && dim[4] == 7 &&
               pixdim4 == 1 && memcmp(head + 344, "n+1", 4) == 0,
           "4-D header: NIfTI-1, dims 4x3x2x7, 352 bytes to the first voxel", "rc %d len %zu dim %d %d %d %d %d: %s",
           rc, len, dim[0], dim[1], dim[2], dim[3], dim[4], err.msg);
    CHECK(gi_volume_4d_header(&v, 0, path, NULL, head, &len, &err) == -1, "4-D header: zero volumes refused");
    gi_volume_free(&v);
    unlink(path);
}

int main(void)
{
    const char *t = getenv("TESTTMP");
    snprintf(tmpdir, sizeof tmpdir, "%s/raster-XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(tmpdir)) {
        printf("not ok - temp dir\n");
        return 1;
    }
    test_font();
    test_viridis();
    test_png();
    test_4d_header();
    rmdir(tmpdir);
    return check_summary();
}

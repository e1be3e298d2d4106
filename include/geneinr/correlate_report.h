/* correlate_report.h - DIR/report.html of `geneinr correlate` and its figures.
 *
 * One page, no JavaScript, no network: the settings, the user's map (three
 * slices, as `geneinr preview` draws genes: figures/map.png), the top genes'
 * maps (figures/genes/<gene>.png), their null distributions
 * (figures/null_<gene>.png: histogram of the null r with the observed r
 * marked in red), the variogram fit (figures/variogram.png: the map's
 * smoothed variogram, the surrogates' median and 5th-95th percentiles), the
 * table of the top genes and the gene sets. Figures are files beside the page
 * (relative links). Files are owned through the folder's manifest; the
 * figures of an earlier run in DIR that are ours are removed first.
 */
#ifndef GENEINR_CORRELATE_REPORT_H
#define GENEINR_CORRELATE_REPORT_H

#include "geneinr/error.h"

typedef struct gi_corr_report {
    const char *dir, *atlas_path, *map_path;
    const char *settings_html;      /* a <ul> of the settings (already escaped) */
    /* the map on the atlas grid, for its preview */
    int nx, ny, nz;
    const double *affine;           /* [16] */
    const unsigned char *mask;      /* [nz][ny][nx] atlas mask */
    const float *map_vol;           /* [nz][ny][nx], NaN without a value */
    /* genes in the order of correlations.csv */
    int n_genes;
    const char *const *genes;
    const double *r, *p_naive, *p_spatial, *q;
    int n_top;                      /* the first n_top are drawn */
    const double *r_null_top;       /* [n_top][n_nulls] */
    long n_nulls;
    /* variograms */
    int nh;
    const double *vh, *vmap, *vnull; /* [nh], [nh], [n_nulls][nh] */
    const char *sets_html;          /* a table of the gene sets, or NULL */
} gi_corr_report;

int gi_corr_report_write(const gi_corr_report *r, gi_err *err);

#endif

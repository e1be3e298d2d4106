/* names.h - the rules a gene (or donor) name must follow, checked when the
 * sample table is read, before any work starts.
 *
 * A gene name becomes a column of genes.tsv, a string of the UTF-8 /genes
 * dataset of checkpoints and atlases, text of report.html, and the file
 * names OUT/nifti/<name>.nii.gz and OUT/preview/<name>.png (through
 * gi_gene_file_name: '/', '\\', ' ', ':' and a leading '.' become '_').
 * So a name must be:
 *   - non-empty, valid UTF-8 (no overlong forms, surrogates or code points
 *     past U+10FFFF): HDF5 stores it as UTF-8 and browsers show it;
 *   - free of control characters (U+0000-U+001F, U+007F, U+0080-U+009F): a
 *     TAB or line break tears genes.tsv and the manifest;
 *   - at most GI_GENE_NAME_MAX (100) bytes: the longest file made from it,
 *     ".<name>.tmp.nii.gz", is then 116 bytes, within NAME_MAX (255) and
 *     within eCryptfs's 143; the longest HGNC symbols are about 25 bytes;
 *   - for genes, unique as a file name ignoring ASCII case: 'A/B' and 'A_B'
 *     map to one file, and 'ab' and 'AB' are one file on case-insensitive
 *     file systems (macOS, Windows shares).
 */
#ifndef GENEINR_NAMES_H
#define GENEINR_NAMES_H

#include <stddef.h>

#include "geneinr/error.h"

#define GI_GENE_NAME_MAX 100

/* 0 when name follows the rules above; else -1 with why ("holds a TAB at
 * byte 3") in why. */
int gi_name_check(const char *name, char *why, size_t why_size);

/* name printable in a message: control and invalid bytes as \xNN, cut at
 * about out_size bytes. */
void gi_name_quote(const char *name, char *out, size_t out_size);

/* -1 with both names when two of names[n] share a file name ignoring ASCII
 * case. where: the message's start ("samples.csv:1"); cols (may be NULL):
 * each name's column number, named in the message. */
int gi_names_check_files(const char *const *names, int n, const char *where, const int *cols, gi_err *err);

#endif

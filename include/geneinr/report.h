/* report.h - OUT/report.html: one self-contained page about a run.
 *
 * What was run (OUT/run.json: command, version, ranks, host, start, wall
 * time, peak memory; the effective config), the data (samples per donor,
 * genes, missing values, from the sample table the config names), the
 * training curve (train and validation loss from OUT/train_log.csv as inline
 * SVG, the best validation step marked), the accuracy (every eval summary:
 * OUT/summary.csv and OUT/eval-SPLIT/summary.csv (eval's default folders); OUT/score.json from `geneinr
 * score --json`; else the validation figures of the log), the outputs with
 * how to open them, and the previews (OUT/preview/<gene>.png, inline as
 * base64 data URIs). No network, no JavaScript: it opens from a USB stick.
 * Everything is read from files, so `geneinr report RUN_DIR` rebuilds the
 * same page at any time; a missing part is said to be missing, not an error.
 */
#ifndef GENEINR_REPORT_H
#define GENEINR_REPORT_H

#include "geneinr/error.h"

/* What the command that just finished cost: written to OUT/run.json. */
typedef struct gi_run_record {
    const char *command_line;   /* the argv, space-joined */
    int ranks;
    double wall_seconds;
    double peak_mb;             /* largest peak RSS of any rank */
    int threads;                /* OpenBLAS threads per rank */
} gi_run_record;

int gi_report_record_run(const char *run_dir, const gi_run_record *r, gi_err *err);

/* Write RUN_DIR/report.html (through a .tmp file and a rename). */
int gi_report_write(const char *run_dir, gi_err *err);

/* After `geneinr eval` wrote EVAL_DIR/summary.csv: rebuild the report of the
 * run folder it belongs to (EVAL_DIR's parent, eval's default runs/NAME/eval-SPLIT,
 * when that holds a config.yaml, train_log.csv or atlas.h5), else write one in
 * EVAL_DIR itself. Prints the report's path. */
int gi_report_after_eval(const char *eval_dir, gi_err *err);

/* Before the eval's work: -1 when that report.html is a user's file
 * (manifest.h), which gi_report_after_eval would refuse to replace. */
int gi_report_check_after_eval(const char *eval_dir, gi_err *err);

#endif

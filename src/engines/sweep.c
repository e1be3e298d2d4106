/* sweep.c - the sweep runner: groups of ranks, dynamic hand-out, trial folders.
 *
 * Layout of a sweep folder OUT:
 *   OUT/sweep.yaml              copy of the sweep file of the last invocation
 *   OUT/trials/NNN/             one normal run folder per trial (NNN = trial number, 3+ digits):
 *       trial.yaml              the trial's overrides and effective config, written when it starts
 *       status.yaml             status (running | ok | failed), best_val, best_step, steps, seconds, error
 *       config.yaml checkpoint.h5 train_log.csv   as `geneinr train` writes them
 *       log.txt                 the trial's console output
 *   OUT/results.csv             trial,status,best_val,best_step,seconds,<swept keys...>
 *   OUT/best/                   the best trial rendered (render_best: true)
 *
 * Parallel design. MPI_COMM_WORLD splits into P / ranks_per_trial groups of
 * consecutive ranks. The trials still to run are listed once (world rank 0
 * reads the folders and broadcasts the list); a shared counter in an MPI
 * window on world rank 0 hands them out: a group's leader takes the next
 * index with an atomic MPI_Fetch_and_op when its group is free, so fast groups
 * take more trials and no rank coordinates. A trial trains on its group's
 * communicator exactly as `mpirun -np ranks_per_trial geneinr train` would
 * (same config text, same rank count: the same bytes). Failures stay inside
 * their group: the group agrees, marks the trial failed and takes the next.
 *
 * Files. status.yaml and results.csv are written to a temporary name and
 * renamed, so a reader never sees half a file; results.csv is rebuilt from
 * every trial's status.yaml under an flock on OUT/.results.lock, so groups
 * (and the concurrent tasks of a job array) never lose each other's rows.
 *
 * Claims. A trial folder is a run folder: the group that trains a trial holds
 * its lock (runlock.h) for the whole trial. Several sweeps may share one
 * folder (the tasks of a job array, or two `geneinr sweep`s started on
 * different nodes to spread the work): each takes only trials that no live
 * job holds and skips the others, so no trial is trained twice at once; a
 * claim left by a dead job (or an expired lease) is taken over. OUT/best is
 * claimed the same way while it is rendered.
 *
 * Resuming. A rerun refuses a sweep file that would change an existing trial
 * (its trial.yaml differs from what the file now gives), skips trials that are
 * ok, continues running ones from their checkpoint (bit-identical when
 * train.checkpoint_every saved one, or after a stop signal), and reruns failed
 * ones only with --retry-failed (from scratch).
 */
#include "geneinr/files.h"
#include "geneinr/sweep.h"

#include <cblas.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "geneinr/dataset.h"
#include "geneinr/dist.h"
#include "geneinr/ensemble.h"
#include "geneinr/geometry.h"
#include "geneinr/prior.h" /* gi_train, gi_ensemble_train: training over data.prior */
#include "geneinr/render.h"
#include "geneinr/runlock.h"
#include "geneinr/stop.h"
#include "geneinr/train.h"

enum state { S_NONE = 0, S_RUNNING, S_OK, S_FAILED };
static const char *const STATE_NAMES[] = {"", "running", "ok", "failed"};

typedef struct trial_status {
    int state;
    double best_val;            /* NAN if none */
    long best_step, steps;
    double seconds;             /* training wall time, summed over resumed legs */
    char error[600];
} trial_status;

typedef struct sweep_run {
    const gi_sweep *s;
    const gi_sweep_opts *o;
    char out[GI_PATH_MAX];
    int width;                  /* digits of a trial folder name */
} sweep_run;

/* ------------------------------------------------------------ files */

static void trial_dir(const sweep_run *r, int t, char *buf, size_t n)
{
    snprintf(buf, n, "%s/trials/%0*d", r->out, r->width, t);
}

/* Write text to path through path.tmp.PID and rename. */
static int write_atomic(const char *path, const char *text, gi_err *err)
{
    char tmp[GI_PATH_MAX + 64];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    int bad = !f || fputs(text, f) < 0;
    if (f && fclose(f) != 0)
        bad = 1;
    if (bad || rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        return gi_fail(err, "cannot write %s: %s", path, strerror(e));
    }
    return 0;
}

/* The whole file, or NULL when it cannot be read (missing: not written yet). */
static char *slurp(const char *path)
{
    gi_err ignored;
    return gi_read_file(path, 0, NULL, &ignored);
}

static void read_status(const char *dir, trial_status *st)
{
    memset(st, 0, sizeof *st);
    st->best_val = NAN;
    char path[GI_PATH_MAX + 32], line[800];
    snprintf(path, sizeof path, "%s/status.yaml", dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        /* A folder whose trial.yaml exists but no status yet: it had started. */
        snprintf(path, sizeof path, "%s/trial.yaml", dir);
        st->state = access(path, F_OK) == 0 ? S_RUNNING : S_NONE;
        return;
    }
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *v = strchr(line, ':');
        if (!v)
            continue;
        *v++ = '\0';
        v += strspn(v, " ");
        if (!strcmp(line, "status")) {
            for (int s = S_RUNNING; s <= S_FAILED; s++)
                if (!strcmp(v, STATE_NAMES[s]))
                    st->state = s;
        } else if (!strcmp(line, "best_val")) {
            st->best_val = *v ? strtod(v, NULL) : NAN;
        } else if (!strcmp(line, "best_step")) {
            st->best_step = atol(v);
        } else if (!strcmp(line, "steps")) {
            st->steps = atol(v);
        } else if (!strcmp(line, "seconds")) {
            st->seconds = strtod(v, NULL);
        } else if (!strcmp(line, "error")) {
            snprintf(st->error, sizeof st->error, "%s", v);
        }
    }
    fclose(f);
    if (st->state == S_NONE)
        st->state = S_RUNNING;
}

static int write_status(const char *dir, const trial_status *st, gi_err *err)
{
    char path[GI_PATH_MAX + 32], text[1200], val[40] = "";
    snprintf(path, sizeof path, "%s/status.yaml", dir);
    if (isfinite(st->best_val))
        snprintf(val, sizeof val, "%.9g", st->best_val);
    char error[sizeof st->error];
    snprintf(error, sizeof error, "%s", st->error);
    for (char *p = error; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    snprintf(text, sizeof text, "status: %s\nbest_val: %s\nbest_step: %ld\nsteps: %ld\nseconds: %.3f\nerror: %s\n",
             STATE_NAMES[st->state], val, st->best_step, st->steps, st->seconds, error);
    return write_atomic(path, text, err);
}

/* The record that identifies a trial: its overrides and the effective
 * config they give (or why they give none). run.out and train.resume say
 * where and how it runs, not what it computes, so they are left out. */
static char *trial_record(const gi_sweep *s, int t)
{
    int n;
    char **ov = gi_sweep_overrides(s, t, &n);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = ov ? open_memstream(&buf, &len) : NULL;
    if (!f) {
        gi_sweep_free_overrides(ov);
        return NULL;
    }
    fprintf(f, "# geneinr sweep trial %d of %s\n# base: %s\n# overrides:\n", t, s->path, s->base);
    for (int i = 0; i < n; i++)
        fprintf(f, "#   %s\n", ov[i]);
    gi_config c;
    gi_err err = {{0}};
    if (gi_config_load(&c, s->base, (const char *const *)ov, n, &err) != 0) {
        fprintf(f, "# invalid: %s\n", err.msg);
    } else {
        memset(c.run.out, 0, sizeof c.run.out);
        c.train.resume = GI_RESUME_OFF;
        memset(c.source, 0, sizeof c.source);
        char *y = gi_config_to_yaml(&c);
        fputs(y ? y : "", f);
        free(y);
    }
    fclose(f);
    gi_sweep_free_overrides(ov);
    return buf;
}

/* The record without its first line (which names the sweep file's path: a
 * moved sweep file is the same sweep). */
static const char *record_body(const char *rec)
{
    const char *nl = strchr(rec, '\n');
    return nl ? nl + 1 : rec;
}

/* World rank 0: refuse a sweep file that would change existing trials. */
static int check_unchanged(const sweep_run *r, gi_err *err)
{
    const gi_sweep *s = r->s;
    char dir[GI_PATH_MAX + 64], path[GI_PATH_MAX + 400];
    snprintf(dir, sizeof dir, "%s/trials", r->out);
    DIR *dh = opendir(dir);
    if (!dh)
        return 0; /* a new sweep */
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(dh))) {
        char *end;
        long t = strtol(e->d_name, &end, 10);
        if (e->d_name[0] < '0' || e->d_name[0] > '9' || *end)
            continue;
        snprintf(path, sizeof path, "%s/%s/trial.yaml", dir, e->d_name);
        char *have = slurp(path);
        if (!have)
            continue;
        if (t >= s->n_trials) {
            rc = gi_fail(err, "%s: %s/%s exists but the sweep file now defines %d trial%s (trials 0..%d): it would "
                         "change the existing sweep; use another --out, or restore the sweep file", s->path, dir,
                         e->d_name, s->n_trials, s->n_trials == 1 ? "" : "s", s->n_trials - 1);
        } else {
            char *want = trial_record(s, (int)t);
            if (!want) {
                rc = gi_fail(err, "out of memory");
            } else if (strcmp(record_body(have), record_body(want)) != 0) {
                /* Name the first line that differs. */
                const char *a = record_body(have), *b = record_body(want);
                int ln = 2;
                while (*a && *b) {
                    size_t la = strcspn(a, "\n"), lb = strcspn(b, "\n");
                    if (la != lb || strncmp(a, b, la) != 0)
                        break;
                    a += la + (a[la] == '\n');
                    b += lb + (b[lb] == '\n');
                    ln++;
                }
                rc = gi_fail(err, "%s: would change trial %ld, which has already run in %s/%s: its trial.yaml line %d "
                             "says '%.*s', the sweep file now gives '%.*s'; use another --out for a changed sweep, "
                             "or restore the sweep file", s->path, t, dir, e->d_name, ln, (int)strcspn(a, "\n"), a,
                             (int)strcspn(b, "\n"), b);
            }
            free(want);
        }
        free(have);
    }
    closedir(dh);
    return rc;
}

static void csv_field(FILE *f, const char *v)
{
    if (!strpbrk(v, ",\"\n")) {
        fputs(v, f);
        return;
    }
    fputc('"', f);
    for (; *v; v++) {
        if (*v == '"')
            fputc('"', f);
        fputc(*v, f);
    }
    fputc('"', f);
}

/* Rebuild OUT/results.csv from the trial folders, under the results lock.
 * Returns the best ok trial by validation (-1 if none) in *best. */
static int update_results(const sweep_run *r, int *best, gi_err *err)
{
    const gi_sweep *s = r->s;
    char lock[GI_PATH_MAX + 32], path[GI_PATH_MAX + 32], dir[GI_PATH_MAX + 64];
    snprintf(lock, sizeof lock, "%s/.results.lock", r->out);
    snprintf(path, sizeof path, "%s/results.csv", r->out);
    int fd = open(lock, O_RDWR | O_CREAT, 0666);
    if (fd < 0)
        return gi_fail(err, "cannot open %s: %s", lock, strerror(errno));
    flock(fd, LOCK_EX);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    fputs("trial,status,best_val,best_step,seconds", f);
    for (int k = 0; k < s->n_keys; k++) {
        fputc(',', f);
        csv_field(f, s->keys[k]);
    }
    fputc('\n', f);
    int b = -1;
    double bv = INFINITY;
    for (int t = 0; t < s->n_trials; t++) {
        trial_dir(r, t, dir, sizeof dir);
        trial_status st;
        read_status(dir, &st);
        if (st.state == S_NONE)
            continue;
        fprintf(f, "%d,%s,", t, STATE_NAMES[st.state]);
        if (st.state == S_OK && isfinite(st.best_val))
            fprintf(f, "%.9g,%ld", st.best_val, st.best_step);
        else
            fputc(',', f);
        fprintf(f, ",%.1f", st.seconds);
        for (int k = 0; k < s->n_keys; k++) {
            fputc(',', f);
            csv_field(f, s->values[(size_t)t * s->n_keys + k]);
        }
        fputc('\n', f);
        if (st.state == S_OK && isfinite(st.best_val) && st.best_val < bv) {
            bv = st.best_val;
            b = t;
        }
    }
    fclose(f);
    int rc = buf ? write_atomic(path, buf, err) : gi_fail(err, "out of memory");
    free(buf);
    flock(fd, LOCK_UN);
    close(fd);
    if (best)
        *best = b;
    return rc;
}

/* ---------------------------------------------------------- one trial */

/* OpenBLAS threads of a trial: run.threads, or the node's cores shared by
 * the ranks of the whole job on that node (as `geneinr train` does). */
static void set_threads(const gi_config *c, int node_ranks)
{
    int threads = c->run.threads;
    if (threads <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        threads = (int)(cores / (node_ranks > 0 ? node_ranks : 1));
        if (threads < 1)
            threads = 1;
    }
    openblas_set_num_threads(threads);
}

static void overrides_line(const gi_sweep *s, int t, char *buf, size_t n)
{
    buf[0] = '\0';
    for (int k = 0; k < s->n_keys; k++) {
        size_t used = strlen(buf);
        snprintf(buf + used, n - used, "%s%s=%s", k ? " " : "", s->keys[k], s->values[(size_t)t * s->n_keys + k]);
    }
    if (!s->n_keys)
        snprintf(buf, n, "(no swept keys)");
}

/* Run trial t on comm (a group). Returns 0 ok, 1 failed (recorded), 2
 * interrupted by a stop signal, -1 when the trial folder itself cannot be
 * written (agreed across the group). */
static int run_trial(const sweep_run *r, int t, MPI_Comm comm, int node_ranks, int group)
{
    const gi_sweep *s = r->s;
    int rank;
    MPI_Comm_rank(comm, &rank);
    char dir[GI_PATH_MAX + 64], path[GI_PATH_MAX + 96], ovs[2048];
    trial_dir(r, t, dir, sizeof dir);
    overrides_line(s, t, ovs, sizeof ovs);
    gi_err err = {{0}};
    trial_status st;
    int rc = 0, fresh = 1;
    double before = 0;

    /* Set-up on the leader: folder, record, status "running". */
    if (rank == 0) {
        read_status(dir, &st);
        if (st.state == S_FAILED) {
            /* --retry-failed starts over: the old checkpoint led to the failure. */
            snprintf(path, sizeof path, "%s/checkpoint.h5", dir);
            remove(path);
            snprintf(path, sizeof path, "%s/train_log.csv", dir);
            remove(path);
            st.seconds = 0;
        }
        before = st.seconds;
        snprintf(path, sizeof path, "%s/checkpoint.h5", dir);
        fresh = access(path, R_OK) != 0;
        char *rec = trial_record(s, t);
        rc = gi_make_dirs(dir, &err);
        snprintf(path, sizeof path, "%s/trial.yaml", dir);
        if (rc == 0)
            rc = rec ? write_atomic(path, rec, &err) : gi_fail(&err, "out of memory");
        free(rec);
        trial_status run = {.state = S_RUNNING, .best_val = NAN, .seconds = before};
        if (rc == 0)
            rc = write_status(dir, &run, &err);
        if (rc == 0)
            rc = update_results(r, NULL, &err);
        printf("sweep: trial %d %s on group %d: %s\n", t, fresh ? "starts" : "resumes", group, ovs);
        fflush(stdout);
    }
    if (gi_dist_agree(comm, rc, &err) != 0) {
        if (rank == 0)
            fprintf(stderr, "geneinr: sweep: trial %d: %s\n", t, err.msg);
        return -1;
    }
    MPI_Bcast(&fresh, 1, MPI_INT, 0, comm);

    /* Compute: the trial's config, then training as `geneinr train` does it. */
    int n;
    char **ov = gi_sweep_overrides(s, t, &n);
    gi_config c;
    rc = ov ? gi_config_load(&c, s->base, (const char *const *)ov, n, &err) : gi_fail(&err, "out of memory");
    gi_sweep_free_overrides(ov);
    if (rc == 0 && snprintf(c.run.out, sizeof c.run.out, "%.*s", (int)sizeof c.run.out - 1, dir) >= (int)sizeof c.run.out - 1)
        rc = gi_fail(&err, "trial folder path too long");
    rc = gi_dist_agree(comm, rc, &err);
    gi_train_result tr;
    memset(&tr, 0, sizeof tr);
    double t0 = MPI_Wtime();
    if (rc == 0) {
        set_threads(&c, node_ranks);
        /* The leader's console output goes to the trial's log.txt. */
        int saved = -1;
        if (rank == 0) {
            snprintf(path, sizeof path, "%s/log.txt", dir);
            int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0666);
            fflush(stdout);
            if (fd >= 0) {
                saved = dup(1);
                dup2(fd, 1);
                close(fd);
            }
        }
        snprintf(path, sizeof path, "%s/checkpoint.h5", dir);
        if (fresh && rank == 0)
            gi_ensemble_clear(dir);
        rc = gi_train(&c, comm, dir, fresh ? NULL : path, &tr, &err);
        /* An ensemble trial trains its other members too (so that the trial folder renders as
         * configured); it is scored by its first member's validation (the members' splits differ). */
        if (rc == 0 && !tr.interrupted && gi_ensemble_size(&c) > 1) {
            gi_train_result more;
            rc = gi_ensemble_train(&c, comm, dir, 1, !fresh, 0, &more, &err);
            tr.interrupted = more.interrupted;
        }
        if (rank == 0 && rc != 0)
            printf("geneinr: error: %s\n", err.msg);
        fflush(stdout);
        if (saved >= 0) {
            dup2(saved, 1);
            close(saved);
        }
    }
    double secs = MPI_Wtime() - t0;

    /* Report: status.yaml, config.yaml, results.csv. */
    int outcome = rc != 0 ? 1 : tr.interrupted ? 2 : 0;
    if (rank == 0) {
        gi_err werr = {{0}};
        trial_status done = {.best_val = NAN, .seconds = before + secs};
        int wrc = 0;
        if (outcome == 0) {
            done.state = S_OK;
            done.best_val = tr.best_val;
            done.best_step = tr.best_step;
            done.steps = tr.steps;
            char *y = gi_config_to_yaml(&c);
            snprintf(path, sizeof path, "%s/config.yaml", dir);
            wrc = y ? write_atomic(path, y, &werr) : gi_fail(&werr, "out of memory");
            free(y);
        } else if (outcome == 1) {
            done.state = S_FAILED;
            snprintf(done.error, sizeof done.error, "%.590s", err.msg);
        } else {
            done.state = S_RUNNING;
            done.steps = tr.steps;
        }
        if (wrc == 0)
            wrc = write_status(dir, &done, &werr);
        if (wrc == 0)
            wrc = update_results(r, NULL, &werr);
        if (wrc != 0)
            fprintf(stderr, "geneinr: sweep: trial %d: %s\n", t, werr.msg);
        if (outcome == 0 && isfinite(tr.best_val))
            printf("sweep: trial %d ok: best val %.5f at step %ld, %ld steps, %.1f s\n", t, tr.best_val,
                   tr.best_step, tr.steps, secs);
        else if (outcome == 0)
            printf("sweep: trial %d ok: %ld steps, %.1f s (no validation)\n", t, tr.steps, secs);
        else if (outcome == 1)
            printf("sweep: trial %d FAILED: %s (see %s/log.txt)\n", t, err.msg, dir);
        else
            printf("sweep: trial %d stopped by a signal at step %ld; checkpoint kept, a rerun resumes it\n", t,
                   tr.steps);
        fflush(stdout);
    }
    return outcome;
}

/* ------------------------------------------------------------ the sweep */

/* Which trials still need work, in order (world rank 0 decides, all get it). */
static int pending_trials(const sweep_run *r, MPI_Comm world, int **list, int *n, int *n_ok, int *n_failed)
{
    int rank;
    MPI_Comm_rank(world, &rank);
    int T = r->s->n_trials, cnt = 0, counts[2] = {0, 0};
    int *l = malloc(sizeof(int) * (size_t)(T + 1));
    if (!l)
        return -1;
    if (rank == 0) {
        char dir[GI_PATH_MAX + 64];
        for (int t = 0; t < T; t++) {
            trial_dir(r, t, dir, sizeof dir);
            trial_status st;
            read_status(dir, &st);
            if (st.state == S_OK)
                counts[0]++;
            else if (st.state == S_FAILED && !r->o->retry_failed)
                counts[1]++;
            else
                l[cnt++] = t;
        }
    }
    MPI_Bcast(&cnt, 1, MPI_INT, 0, world);
    MPI_Bcast(counts, 2, MPI_INT, 0, world);
    MPI_Bcast(l, cnt, MPI_INT, 0, world);
    *list = l;
    *n = cnt;
    *n_ok = counts[0];
    *n_failed = counts[1];
    return 0;
}

/* Rank 0's summary line and OUT/best_trial.txt. */
static void name_best(const sweep_run *r, int best)
{
    const gi_sweep *s = r->s;
    char dir[GI_PATH_MAX + 64], path[GI_PATH_MAX + 32], ovs[2048], text[4096];
    if (best < 0) {
        printf("sweep: no trial has a validation score yet (ok trials with train.validation set)\n");
        return;
    }
    trial_dir(r, best, dir, sizeof dir);
    trial_status st;
    read_status(dir, &st);
    overrides_line(s, best, ovs, sizeof ovs);
    printf("sweep: best trial %d (%s): best val %.5f at step %ld; %s\n", best, dir, st.best_val, st.best_step, ovs);
    snprintf(text, sizeof text, "trial: %d\nfolder: %s\nbest_val: %.9g\nbest_step: %ld\noverrides: %s\n", best, dir,
             st.best_val, st.best_step, ovs);
    snprintf(path, sizeof path, "%s/best_trial.txt", r->out);
    gi_err err;
    if (write_atomic(path, text, &err) != 0)
        fprintf(stderr, "geneinr: sweep: %s\n", err.msg);
}

/* render_best: the best trial's checkpoint rendered into OUT/best/ on all
 * ranks, unless OUT/best already holds a render of that very checkpoint. */
static int render_best(const sweep_run *r, int best, MPI_Comm world, gi_err *err)
{
    const gi_sweep *s = r->s;
    int rank;
    MPI_Comm_rank(world, &rank);
    char dir[GI_PATH_MAX + 64], ckpt[GI_PATH_MAX + 96], bdir[GI_PATH_MAX + 32], stamp[GI_PATH_MAX + 64],
        atlas[GI_PATH_MAX + 64], want[2 * GI_PATH_MAX];
    trial_dir(r, best, dir, sizeof dir);
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.h5", dir);
    snprintf(bdir, sizeof bdir, "%s/best", r->out);
    snprintf(stamp, sizeof stamp, "%s/rendered_from.txt", bdir);
    snprintf(atlas, sizeof atlas, "%s/atlas.h5", bdir);
    struct stat sb;
    int same = 0;
    if (rank == 0 && stat(ckpt, &sb) == 0) {
        snprintf(want, sizeof want, "trial %d\ncheckpoint %s\nsize %lld\nmtime %lld\n", best, ckpt,
                 (long long)sb.st_size, (long long)sb.st_mtime);
        char *have = slurp(stamp);
        same = have && !strcmp(have, want) && access(atlas, R_OK) == 0;
        free(have);
    }
    MPI_Bcast(&same, 1, MPI_INT, 0, world);
    if (same) {
        if (rank == 0)
            printf("sweep: %s already holds trial %d rendered\n", bdir, best);
        return 0;
    }
    int n;
    char **ov = gi_sweep_overrides(s, best, &n);
    gi_config c;
    int rc = ov ? gi_config_load(&c, s->base, (const char *const *)ov, n, err) : gi_fail(err, "out of memory");
    gi_sweep_free_overrides(ov);
    if (rc == 0 && snprintf(c.run.out, sizeof c.run.out, "%.*s", (int)sizeof c.run.out - 1, bdir) >= (int)sizeof c.run.out)
        rc = gi_fail(err, "path too long: %s", bdir);
    gi_rundir_lock lock;
    memset(&lock, 0, sizeof lock);
    int busy = 0;
    if (rc == 0 && rank == 0) {
        rc = gi_make_dirs(bdir, err);
        char note[GI_PATH_MAX + 600] = "";
        if (rc == 0)
            rc = gi_rundir_lock_take(&lock, bdir, note, sizeof note, err);
        if (note[0])
            printf("sweep: %s\n", note);
        if (rc == GI_RUNLOCK_BUSY) {
            printf("sweep: not rendering the best trial: another job renders %s (%s)\n", bdir, err->msg);
            busy = 1;
            rc = 0;
        } else if (rc == 0) {
            remove(stamp);
        }
    }
    MPI_Bcast(&busy, 1, MPI_INT, 0, world);
    if (gi_dist_agree(world, rc, err) != 0 || busy) {
        gi_rundir_lock_release(&lock);
        return busy ? 0 : -1;
    }
    int size;
    MPI_Comm_size(world, &size);
    set_threads(&c, size);
    if (rank == 0) {
        printf("sweep: rendering trial %d into %s on %d rank%s\n", best, bdir, size, size > 1 ? "s" : "");
        fflush(stdout);
    }
    gi_render_result rr;
    if (gi_render(&c, world, bdir, ckpt, &rr, err) != 0) {
        gi_rundir_lock_release(&lock);
        return -1;
    }
    rc = 0;
    if (rank == 0) {
        char cfg[GI_PATH_MAX + 64];
        snprintf(cfg, sizeof cfg, "%s/config.yaml", bdir);
        char *y = gi_config_to_yaml(&c);
        rc = y ? write_atomic(cfg, y, err) : gi_fail(err, "out of memory");
        free(y);
        if (rc == 0)
            rc = write_atomic(stamp, want, err);
    }
    gi_rundir_lock_release(&lock);
    return gi_dist_agree(world, rc, err);
}

/* Claim trial t for the group on comm (its leader takes the trial folder's
 * lock): 0 claimed (release lk after the trial), 1 skipped (held by a live
 * job, or finished meanwhile by one), -1 the folder cannot be written.
 * Agreed across comm. */
static int claim_trial(const sweep_run *r, int t, MPI_Comm comm, gi_rundir_lock *lk)
{
    int rank, rc = 0;
    MPI_Comm_rank(comm, &rank);
    memset(lk, 0, sizeof *lk);
    if (rank == 0) {
        char dir[GI_PATH_MAX + 64], note[GI_PATH_MAX + 600] = "";
        gi_err err = {{0}};
        trial_dir(r, t, dir, sizeof dir);
        rc = gi_make_dirs(dir, &err);
        if (rc == 0)
            rc = gi_rundir_lock_take(lk, dir, note, sizeof note, &err);
        if (note[0])
            printf("sweep: trial %d: %s\n", t, note);
        if (rc == GI_RUNLOCK_BUSY) {
            printf("sweep: trial %d skipped: another job runs it (%s)\n", t, err.msg);
        } else if (rc != 0) {
            fprintf(stderr, "geneinr: sweep: trial %d: %s\n", t, err.msg);
        } else {
            /* Between the list and the claim another job may have finished it. */
            trial_status st;
            read_status(dir, &st);
            if (st.state == S_OK || (st.state == S_FAILED && !r->o->retry_failed)) {
                gi_rundir_lock_release(lk);
                printf("sweep: trial %d skipped: another job has finished it (%s)\n", t, STATE_NAMES[st.state]);
                rc = 1;
            }
        }
        fflush(stdout);
    }
    MPI_Bcast(&rc, 1, MPI_INT, 0, comm);
    return rc;
}

/* Hand trials out to groups until none is left (or a stop signal came).
 * Returns the number of trials that failed in this group's hands, or -1 on
 * an error writing trial folders; *stopped is set when interrupted. */
static int dispatch(const sweep_run *r, MPI_Comm world, const int *pending, int n_pending, int *stopped)
{
    int rank, size, rpt = r->s->ranks_per_trial;
    MPI_Comm_rank(world, &rank);
    MPI_Comm_size(world, &size);
    int group = rank / rpt;
    MPI_Comm comm, node;
    MPI_Comm_split(world, group, rank, &comm);
    int grank, node_ranks;
    MPI_Comm_rank(comm, &grank);
    MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
    MPI_Comm_size(node, &node_ranks);
    MPI_Comm_free(&node);

    /* The shared counter: the next position in pending[], on world rank 0. */
    int *counter = NULL;
    MPI_Win win;
    MPI_Win_allocate(rank == 0 ? (MPI_Aint)sizeof(int) : 0, sizeof(int), MPI_INFO_NULL, world, &counter, &win);
    if (rank == 0) {
        MPI_Win_lock(MPI_LOCK_EXCLUSIVE, 0, 0, win);
        *counter = 0;
        MPI_Win_unlock(0, win);
    }
    MPI_Barrier(world);

    int failed = 0, bad = 0;
    *stopped = 0;
    for (;;) {
        int mine = gi_stop_pending(), any;
        MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, comm);
        if (any) {
            *stopped = 1;
            break;
        }
        int next = 0, one = 1;
        if (grank == 0) {
            MPI_Win_lock(MPI_LOCK_EXCLUSIVE, 0, 0, win);
            MPI_Fetch_and_op(&one, &next, MPI_INT, 0, 0, MPI_SUM, win);
            MPI_Win_unlock(0, win);
        }
        MPI_Bcast(&next, 1, MPI_INT, 0, comm);
        if (next >= n_pending)
            break;
        gi_rundir_lock claim;
        int cl = claim_trial(r, pending[next], comm, &claim);
        if (cl == 1)
            continue;
        int outcome = cl < 0 ? -1 : run_trial(r, pending[next], comm, node_ranks, group);
        gi_rundir_lock_release(&claim);
        if (outcome < 0) {
            bad = 1;
            break;
        }
        failed += outcome == 1;
        if (outcome == 2) {
            *stopped = 1;
            break;
        }
    }
    MPI_Win_free(&win);
    MPI_Comm_free(&comm);
    return bad ? -1 : failed;
}

/* Before any trial: the samples of the first trial's config checked against
 * its render.mask and data.anatomy (geometry.h), so a wrong image fails the
 * sweep once instead of every trial after it has started. Only that: a trial
 * whose own config or data is wrong (a rule between keys, a donor that does
 * not exist) fails as that trial, and a trial whose overrides change these
 * inputs is checked again by its own training. Rank 0. */
static int preflight(const sweep_run *r, gi_err *err)
{
    int n;
    char **ov = gi_sweep_overrides(r->s, 0, &n);
    gi_config c;
    gi_err skip;
    int rc = ov ? gi_config_load(&c, r->s->base, (const char *const *)ov, n, &skip) : -1;
    gi_sweep_free_overrides(ov);
    if (rc != 0 || !c.data.samples[0])
        return 0;
    gi_dataset d;
    if (gi_dataset_build(&d, &c, &skip) != 0)
        return 0;
    gi_geometry g;
    rc = gi_geometry_check(&c, &d.s, d.label ? &d.match : NULL, 1, &g, err);
    if (rc == 0) {
        gi_geometry_warn(stdout, &g, &c, "sweep: ");
        fflush(stdout);
    }
    gi_dataset_free(&d);
    return rc;
}

static int fail_out(int rank, const char *msg)
{
    if (rank == 0)
        fprintf(stderr, "geneinr: error: %s\n", msg);
    return 1;
}

static int sweep_command(const char *path, const gi_sweep_opts *o, MPI_Comm world);

/* The whole command with the stop signals handled (stop.h): a stop during
 * training checkpoints every trial, one during the best trial's render
 * stops it; either way the exit status is GI_EXIT_REQUEUE. */
int gi_sweep_command(const char *path, const gi_sweep_opts *o, MPI_Comm world)
{
    gi_stop_install();
    int status = sweep_command(path, o, world);
    gi_stop_uninstall();
    int mine = gi_stop_signal(), any = 0, rank;
    MPI_Comm_rank(world, &rank);
    MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, world);
    if (any && status != 0) {
        if (rank == 0)
            fprintf(stderr, "geneinr: sweep stopped by %s; rerun the same command to resume: finished trials are "
                    "kept, interrupted ones continue from their checkpoints (exit %d)\n",
                    gi_stop_name_of(any), GI_EXIT_REQUEUE);
        status = GI_EXIT_REQUEUE;
    }
    return status;
}

static int sweep_command(const char *path, const gi_sweep_opts *o, MPI_Comm world)
{
    int rank, size;
    MPI_Comm_rank(world, &rank);
    MPI_Comm_size(world, &size);
    double t0 = MPI_Wtime();
    gi_sweep s;
    gi_err err = {{0}};

    /* Set-up: the sweep file (every rank reads it; all must agree), the folder,
     * the change check. */
    if (gi_dist_agree(world, gi_sweep_load(&s, path, &err), &err) != 0)
        return fail_out(rank, err.msg);
    sweep_run r = {.s = &s, .o = o};
    int rc = 0;
    if (o->out) {
        if (snprintf(r.out, sizeof r.out, "%s", o->out) >= (int)sizeof r.out)
            rc = gi_fail(&err, "--out: path too long");
    } else {
        const char *b = strrchr(path, '/');
        b = b ? b + 1 : path;
        snprintf(r.out, sizeof r.out, "sweeps/%.*s", (int)strcspn(b, "."), b);
    }
    r.width = 3;
    for (int n = s.n_trials - 1; n >= 1000; n /= 10)
        r.width++;
    if (rc == 0 && o->trial >= s.n_trials)
        rc = gi_fail(&err, "--trial %d: %s has %d trial%s (0..%d)", o->trial, path, s.n_trials,
                     s.n_trials == 1 ? "" : "s", s.n_trials - 1);
    if (rc == 0 && o->trial < 0 && !o->collect && size % s.ranks_per_trial != 0)
        rc = gi_fail(&err, "%s: ranks_per_trial is %d but the job has %d rank%s: start it with a multiple of %d ranks "
                     "(e.g. mpirun -np %d), or run one trial per job with --trial K", path, s.ranks_per_trial, size,
                     size == 1 ? "" : "s", s.ranks_per_trial, s.ranks_per_trial * (size / s.ranks_per_trial + 1));
    if (rc == 0 && rank == 0) {
        char trials[GI_PATH_MAX + 16], copy[GI_PATH_MAX + 16];
        snprintf(trials, sizeof trials, "%s/trials", r.out);
        rc = gi_make_dirs(trials, &err);
        if (rc == 0)
            rc = check_unchanged(&r, &err);
        if (rc == 0 && !o->collect && o->trial < 0 && s.n_trials > 0)
            rc = preflight(&r, &err);
        char *text = rc == 0 ? slurp(path) : NULL;
        snprintf(copy, sizeof copy, "%s/sweep.yaml", r.out);
        if (text)
            rc = write_atomic(copy, text, &err);
        free(text);
    }
    if (gi_dist_agree(world, rc, &err) != 0) {
        gi_sweep_free(&s);
        return fail_out(rank, err.msg);
    }

    /* Compute: the trials. */
    int status = 0, stopped = 0, best = -1;
    if (!o->collect) {
        int *pending = NULL, n_pending = 0, n_ok = 0, n_failed = 0;
        if (o->trial >= 0) {
            /* One trial on every rank of this job (a task of a job array). */
            pending_trials(&r, world, &pending, &n_pending, &n_ok, &n_failed);
            int todo = 0;
            for (int i = 0; i < n_pending; i++)
                todo |= pending[i] == o->trial;
            free(pending);
            if (!todo) {
                char dir[GI_PATH_MAX + 64];
                trial_dir(&r, o->trial, dir, sizeof dir);
                trial_status st;
                read_status(dir, &st);
                int was_ok = st.state == S_OK;
                MPI_Bcast(&was_ok, 1, MPI_INT, 0, world);
                if (rank == 0)
                    printf(was_ok ? "sweep: trial %d is already done (%s); nothing to do\n"
                                  : "sweep: trial %d failed before (%s/status.yaml); rerun it with --retry-failed\n",
                           o->trial, dir);
                status = was_ok ? 0 : 1;
            } else {
                if (rank == 0 && size != s.ranks_per_trial)
                    printf("sweep: note: trial %d runs on %d rank%s; ranks_per_trial is %d (results agree to float "
                           "rounding, not bit for bit, across rank counts)\n", o->trial, size, size > 1 ? "s" : "",
                           s.ranks_per_trial);
                int node_ranks;
                MPI_Comm node;
                MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
                MPI_Comm_size(node, &node_ranks);
                MPI_Comm_free(&node);
                gi_rundir_lock claim;
                int cl = claim_trial(&r, o->trial, world, &claim);
                int outcome = cl == 0 ? run_trial(&r, o->trial, world, node_ranks, 0) : cl == 1 ? 3 : -1;
                gi_rundir_lock_release(&claim);
                /* 3: another job holds or has finished it: nothing for this one to do. */
                status = outcome == 0 || outcome == 3 ? 0 : outcome == 2 ? GI_EXIT_REQUEUE : 1;
                stopped = outcome == 2;
            }
        } else {
            pending_trials(&r, world, &pending, &n_pending, &n_ok, &n_failed);
            int groups = size / s.ranks_per_trial;
            if (rank == 0) {
                printf("sweep: %s: %d trial%s (%d done, %d failed before%s, %d to run) on %d group%s of %d rank%s; "
                       "folder %s\n", path, s.n_trials, s.n_trials == 1 ? "" : "s", n_ok, n_failed,
                       n_failed && !o->retry_failed ? ": --retry-failed reruns them" : "", n_pending, groups,
                       groups == 1 ? "" : "s", s.ranks_per_trial, s.ranks_per_trial == 1 ? "" : "s", r.out);
                fflush(stdout);
            }
            int failed = dispatch(&r, world, pending, n_pending, &stopped);
            free(pending);
            int counts[2] = {failed < 0, stopped}, all[2];
            MPI_Allreduce(counts, all, 2, MPI_INT, MPI_MAX, world);
            stopped = all[1];
            status = all[0] ? 1 : stopped ? GI_EXIT_REQUEUE : 0;
        }
    }

    /* Report: results.csv from the folders, the best trial, render_best. */
    rc = rank == 0 ? update_results(&r, &best, &err) : 0;
    if (gi_dist_agree(world, rc, &err) != 0) {
        gi_sweep_free(&s);
        return fail_out(rank, err.msg);
    }
    MPI_Bcast(&best, 1, MPI_INT, 0, world);
    if (rank == 0) {
        int cnt[4] = {0};
        char dir[GI_PATH_MAX + 64];
        for (int t = 0; t < s.n_trials; t++) {
            trial_dir(&r, t, dir, sizeof dir);
            trial_status st;
            read_status(dir, &st);
            cnt[st.state]++;
        }
        printf("sweep: %d ok, %d failed, %d running/interrupted, %d not started; %s/results.csv (%.1f s)\n", cnt[S_OK],
               cnt[S_FAILED], cnt[S_RUNNING], cnt[S_NONE], r.out, MPI_Wtime() - t0);
        name_best(&r, best);
        if (o->trial < 0 && !stopped && cnt[S_OK] == 0 && cnt[S_FAILED] > 0 && status == 0)
            status = 1; /* every trial failed */
        fflush(stdout);
    }
    MPI_Bcast(&status, 1, MPI_INT, 0, world);
    /* A job-array task renders nothing: --collect, after the array, does. */
    if (s.render_best && best >= 0 && !stopped && o->trial < 0) {
        if (render_best(&r, best, world, &err) != 0) {
            gi_sweep_free(&s);
            return fail_out(rank, err.msg);
        }
    }
    gi_sweep_free(&s);
    return status;
}

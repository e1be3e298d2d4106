/* enum_names.h - every enumerated setting, its C values and its names, listed once.
 *
 * Each enum is one X-list of (C constant, name) rows in value order (0, 1,
 * ...). From it come the C enum and the NULL-terminated name table
 * GI_<ENUM>_NAMES (index = value) that the config schema validates and
 * prints, that the command line parses (phantom --sample-truth) and that
 * cli, eval and the renderers print: no other file spells a name.
 * Adding a value is one row here (plus the code that uses it).
 * The interpolation methods have their own list in method_kind.h.
 */
#ifndef GENEINR_ENUM_NAMES_H
#define GENEINR_ENUM_NAMES_H

#define GI_ARCH_LIST(X) X(GI_ARCH_SIREN, "siren") X(GI_ARCH_FOURIER, "fourier")
#define GI_GENE_MODE_LIST(X) X(GI_GENE_CONCAT, "concat") X(GI_GENE_FACTORIZED, "factorized")
#define GI_GENE_CODE_LIST(X) X(GI_CODE_EMBEDDING, "embedding") X(GI_CODE_SPECTRAL, "spectral")
#define GI_OPTIMIZER_LIST(X) X(GI_OPT_ADAM, "adam") X(GI_OPT_ADAMW, "adamw")
#define GI_SCHEDULE_LIST(X) X(GI_SCHED_CONSTANT, "constant") X(GI_SCHED_STEP, "step") X(GI_SCHED_COSINE, "cosine")
#define GI_VAL_MODE_LIST(X) X(GI_VAL_NONE, "none") X(GI_VAL_FRACTION, "fraction") X(GI_VAL_DONOR, "donor")
#define GI_PRIOR_LIST(X) X(GI_PRIOR_NONE, "none") X(GI_PRIOR_KRIGING, "kriging") X(GI_PRIOR_RK, "regression_kriging")
#define GI_SPLIT_LIST(X) X(GI_SPLIT_KFOLD, "kfold") X(GI_SPLIT_DONOR, "donor") X(GI_SPLIT_BLOCK, "block")
#define GI_COVARIANCE_LIST(X) \
    X(GI_COV_EXPONENTIAL, "exponential") X(GI_COV_MATERN32, "matern32") X(GI_COV_MATERN52, "matern52")
/* render.nifti: bit flags, "both" = 3d | 4d (the values are the flags) */
#define GI_NIFTI_LIST(X) X(GI_NIFTI_NONE, "none") X(GI_NIFTI_3D, "3d") X(GI_NIFTI_4D, "4d") X(GI_NIFTI_BOTH, "both")
#define GI_BACKGROUND_LIST(X) X(GI_BACKGROUND_NAN, "nan") X(GI_BACKGROUND_ZERO, "zero")
/* render.dtype: how /expression (and the 3-D NIfTI maps) store values (atlas.h) */
#define GI_DTYPE_LIST(X) X(GI_DTYPE_FLOAT32, "float32") X(GI_DTYPE_UINT16, "uint16")
#define GI_ORIENTATION_LIST(X) X(GI_NEUROLOGICAL, "neurological") X(GI_RADIOLOGICAL, "radiological")
#define GI_RESUME_LIST(X) X(GI_RESUME_OFF, "off") X(GI_RESUME_AUTO, "auto")
#define GI_PROBE_SEL_LIST(X)                                                                          \
    X(GI_PROBE_DIFF_STABILITY, "diff_stability") X(GI_PROBE_MAX_INTENSITY, "max_intensity")         \
    X(GI_PROBE_MAX_VARIANCE, "max_variance") X(GI_PROBE_MEAN, "mean")
/* phantom --sample-truth (phantom.h) */
#define GI_PHANTOM_TRUTH_LIST(X) X(GI_PHANTOM_TRUTH_TISSUE, "tissue") X(GI_PHANTOM_TRUTH_VOXEL, "voxel")
#define GI_LR_MIRROR_LIST(X)                                                                          \
    X(GI_MIRROR_NONE, "none") X(GI_MIRROR_LEFTRIGHT, "leftright") X(GI_MIRROR_RIGHTLEFT, "rightleft") \
    X(GI_MIRROR_BIDIRECTIONAL, "bidirectional")

/* Every list above, as X(list, enum tag, table name). */
#define GI_ENUM_LISTS(X)                                        \
    X(GI_ARCH_LIST, gi_arch, GI_ARCH_NAMES)                     \
    X(GI_GENE_MODE_LIST, gi_gene_mode, GI_GENE_MODE_NAMES)      \
    X(GI_GENE_CODE_LIST, gi_gene_code, GI_GENE_CODE_NAMES)      \
    X(GI_OPTIMIZER_LIST, gi_optimizer, GI_OPTIMIZER_NAMES)      \
    X(GI_SCHEDULE_LIST, gi_schedule, GI_SCHEDULE_NAMES)         \
    X(GI_VAL_MODE_LIST, gi_val_mode, GI_VAL_MODE_NAMES)         \
    X(GI_PRIOR_LIST, gi_prior, GI_PRIOR_NAMES)                  \
    X(GI_SPLIT_LIST, gi_eval_split, GI_SPLIT_NAMES)             \
    X(GI_COVARIANCE_LIST, gi_covariance, GI_COVARIANCE_NAMES)   \
    X(GI_NIFTI_LIST, gi_nifti_mode, GI_NIFTI_NAMES)             \
    X(GI_BACKGROUND_LIST, gi_background, GI_BACKGROUND_NAMES)   \
    X(GI_DTYPE_LIST, gi_dtype, GI_DTYPE_NAMES)                  \
    X(GI_ORIENTATION_LIST, gi_orientation, GI_ORIENTATION_NAMES) \
    X(GI_RESUME_LIST, gi_resume, GI_RESUME_NAMES)               \
    X(GI_PROBE_SEL_LIST, gi_probe_sel, GI_PROBE_SEL_NAMES)      \
    X(GI_LR_MIRROR_LIST, gi_lr_mirror, GI_LR_MIRROR_NAMES)      \
    X(GI_PHANTOM_TRUTH_LIST, gi_phantom_truth, GI_PHANTOM_TRUTH_NAMES)

#define GI_ENUM_VALUE_(id, name) id,
#define GI_ENUM_DECLARE_(list, tag, names) \
    enum tag { list(GI_ENUM_VALUE_) };    \
    extern const char *const names[];
GI_ENUM_LISTS(GI_ENUM_DECLARE_)
#undef GI_ENUM_DECLARE_

#endif

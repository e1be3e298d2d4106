/* method_kind.h - the names of the interpolation methods, one table.
 *
 * Why apart from method.h: the config schema (base layer) validates
 * `render.method`, `data.prior` and `eval.methods` by name, and must not
 * depend on the methods themselves. Adding a method is one row here plus its
 * implementation (method.c's dispatch table is made from the rows).
 */
#ifndef GENEINR_METHOD_KIND_H
#define GENEINR_METHOD_KIND_H

/* X(enum suffix, config name, needs an anatomical label per point, its
 * gi_method_impl in method.h: only method.c expands this column) */
#define GI_METHOD_LIST(X)                                     \
    X(INR, "inr", 0, gi_inr_impl)                             \
    X(NEAREST, "nearest", 0, gi_nearest_impl)                 \
    X(IDW, "idw", 0, gi_idw_impl)                             \
    X(KRIGING, "kriging", 0, gi_kriging_impl)                 \
    X(RK, "regression_kriging", 1, gi_rk_impl) /* regression kriging */

enum gi_method_kind {
#define GI_METHOD_ENUM(id, name, anat, impl) GI_METHOD_##id,
    GI_METHOD_LIST(GI_METHOD_ENUM)
#undef GI_METHOD_ENUM
    GI_METHOD_COUNT
};

/* "inr", "nearest", "idw", "kriging", "regression_kriging" (index = kind), NULL-terminated. */
extern const char *const GI_METHOD_NAMES[];

/* Kind from its name, or -1. */
int gi_method_parse(const char *name);

/* 1 if the method needs an anatomical label per point (regression kriging). */
int gi_method_needs_anatomy(int kind);

#endif

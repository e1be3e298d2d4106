/* method_table.c - the kinds of method.h, each to its implementation: the
 * dispatch of gi_method_fit by kind. It names every implementation, the INR
 * among them, so it stands above them all. */
#include "geneinr/method.h"

static const gi_method_impl *const IMPLS[GI_METHOD_COUNT] = {
#define GI_METHOD_IMPL(id, name, anat, impl) [GI_METHOD_##id] = &impl,
    GI_METHOD_LIST(GI_METHOD_IMPL)
#undef GI_METHOD_IMPL
};

gi_method *gi_method_fit(int kind, const gi_method_opts *o, const gi_fit_data *d, gi_err *err)
{
    if (kind < 0 || kind >= GI_METHOD_COUNT) {
        gi_fail(err, "unknown interpolation method %d", kind);
        return NULL;
    }
    return gi_method_fit_impl(IMPLS[kind], kind, o, d, err);
}

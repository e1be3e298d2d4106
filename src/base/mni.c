/* mni.c - MNI millimetres -> the model's normalised coordinates (mni.h). */
#include "geneinr/mni.h"

void gi_mni_normalise(double x, double y, double z, float out[3])
{
    out[0] = (float)(2.0 * (x - GI_MNI_XMIN) / (GI_MNI_XMAX - GI_MNI_XMIN) - 1.0);
    out[1] = (float)(2.0 * (y - GI_MNI_YMIN) / (GI_MNI_YMAX - GI_MNI_YMIN) - 1.0);
    out[2] = (float)(2.0 * (z - GI_MNI_ZMIN) / (GI_MNI_ZMAX - GI_MNI_ZMIN) - 1.0);
}

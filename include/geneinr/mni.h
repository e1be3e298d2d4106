/* mni.h - the fixed MNI box in which the model's inputs live.
 *
 * Coordinates in millimetres map to [-1, 1]^3 through the MNI152 1 mm grid's
 * extent. The box is fixed, not the data's range, so a model means the same on
 * any grid; it sits at the bottom of the house because the dataset, the model,
 * the methods and the render all normalise the same way.
 */
#ifndef GENEINR_MNI_H
#define GENEINR_MNI_H

#define GI_MNI_XMIN (-90.0)
#define GI_MNI_XMAX 90.0
#define GI_MNI_YMIN (-126.0)
#define GI_MNI_YMAX 90.0
#define GI_MNI_ZMIN (-72.0)
#define GI_MNI_ZMAX 108.0

/* MNI mm -> normalised coordinates. */
void gi_mni_normalise(double x, double y, double z, float out[3]);

#endif

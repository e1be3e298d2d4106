"""atlas_check.py - small checks on atlases and masks shared by the shell tests (h5py, nibabel).

usage: atlas_check.py same-bits A.h5 B.h5    /expression of A and B identical bit for bit
       atlas_check.py slab MASK OUT          MASK cut to its z-slices 38-41 (a quick render)
Exits non-zero with the reason when a check fails.
"""
import sys

import numpy as np


def same_bits(a_path, b_path):
    import h5py
    a = h5py.File(a_path, "r")["expression"][...]
    b = h5py.File(b_path, "r")["expression"][...]
    assert a.shape == b.shape and np.isfinite(a).sum() > 0
    differ = a.view(np.uint32) != b.view(np.uint32)
    assert not differ.any(), "values differ in %d places" % differ.sum()


def slab(mask_path, out_path):
    import nibabel as nib
    m = nib.load(mask_path)
    d = np.asarray(m.dataobj).copy()
    d[:, :, :38] = 0
    d[:, :, 42:] = 0
    assert d.sum() > 1000
    nib.save(nib.Nifti1Image(d, m.affine, m.header), out_path)


if __name__ == "__main__":
    {"same-bits": same_bits, "slab": slab}[sys.argv[1]](*sys.argv[2:])

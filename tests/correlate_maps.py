#!/usr/bin/python3
"""Brain maps for tests/it_correlate.sh and the false-positive measurement.

usage: correlate_maps.py TRUTH.h5 OUT.nii.gz [--gene G] [--noise S] [--fwhm MM] [--seed N] [--affine-shift]
  Without --gene: a smooth random map (white noise smoothed by a Gaussian of FWHM mm, FFT), z-scored in the mask.
  With --gene G (a gene name of TRUTH.h5): the gene's truth plus S times such smooth noise (each z-scored).
  The map is written on the truth's grid and affine, NaN outside the mask.
"""
import sys, argparse
import numpy as np, h5py, nibabel as nib

ap = argparse.ArgumentParser()
ap.add_argument('truth'); ap.add_argument('out')
ap.add_argument('--gene'); ap.add_argument('--noise', type=float, default=1.0)
ap.add_argument('--fwhm', type=float, default=20.0); ap.add_argument('--seed', type=int, default=0)
a = ap.parse_args()
f = h5py.File(a.truth, 'r')
A = f['affine'][()]; mask = f['mask'][()].astype(bool)   # (k, j, i)
genes = [g.decode() if isinstance(g, bytes) else g for g in f['genes'][()]]
vox = float(np.linalg.norm(A[:3, 0]))

def smooth_noise(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(mask.shape)
    sig = a.fwhm / 2.3548 / vox
    freqs = np.meshgrid(*[np.fft.fftfreq(n) for n in mask.shape], indexing='ij')
    k2 = sum(q * q for q in freqs)
    y = np.real(np.fft.ifftn(np.fft.fftn(x) * np.exp(-2 * np.pi ** 2 * sig ** 2 * k2)))
    return y

def z(v):
    return (v - v[mask].mean()) / v[mask].std()

if a.gene:
    g = f['expression'][genes.index(a.gene)].astype(np.float64)
    m = z(g) + a.noise * z(smooth_noise(a.seed))
else:
    m = z(smooth_noise(a.seed))
m[~mask] = np.nan
img = nib.Nifti1Image(np.transpose(m, (2, 1, 0)).astype(np.float32), A)
img.set_sform(A, 4); img.set_qform(A, 4)
nib.save(img, a.out)

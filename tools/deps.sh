#!/bin/sh
# Install the Debian packages geneinr needs (as root), or print the exact
# apt-get line (otherwise). Quiet when everything is present.
#   tools/deps.sh        build and run: compiler, Open MPI, OpenBLAS, parallel HDF5, niftilib, libyaml
#   tools/deps.sh test   also the test suite's cross-checks: numpy, h5py, nibabel, PyTorch; SLURM + munge;
#                        Chromium
PKGS="build-essential pkg-config openmpi-bin libopenmpi-dev libopenblas-dev libhdf5-openmpi-dev
libnifti2-dev libyaml-dev zlib1g-dev
libpng-dev
libsleef-dev
libdeflate-dev
libisal-dev
libxxhash-dev"
[ "$1" = test ] && PKGS="$PKGS python3-numpy python3-h5py python3-nibabel python3-torch"
# the report's browser test (headless)
[ "$1" = test ] && PKGS="$PKGS chromium"
# tests/it_slurm.sh brings up a one-node SLURM (munged, slurmctld, slurmd)
[ "$1" = test ] && PKGS="$PKGS slurm-wlm munge"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
    echo "geneinr: installing missing Debian packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    # Others may be installing at the same time: wait for the dpkg lock rather than fail.
    apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null &&
        apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends $missing >/dev/null || {
        echo "geneinr: apt-get install failed; run: apt-get install -y --no-install-recommends$missing" >&2; exit 1; }
else
    echo "geneinr: missing Debian packages. Run as root:" >&2
    echo "  sudo apt-get install -y --no-install-recommends$missing" >&2
    exit 1
fi

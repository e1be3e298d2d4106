#!/bin/bash
# Benchmark of `geneinr prepare` on full-size synthetic AHBA donor folders:
# six donors, 58,692 probes each, 946/893/363/529/470/501 samples (the real
# release's shape, ~2.3 GB of text), written by `geneinr phantom --ahba
# --ahba-probes 58692` into a temporary folder and removed afterwards.
# Target (issue 14): all six donors in <= 30 s and <= 2 GB on 2 cores.
# usage: tools/bench_prepare.sh [BUILD]   (REPEAT=N runs, default 2)
set -e
BUILD=${1:-build}
G=$BUILD/geneinr
REPEAT=${REPEAT:-2}
D=$(mktemp -d "${TMPDIR:-/tmp}/geneinr-bench-prepare.XXXXXX")
trap 'rm -rf "$D"' EXIT
echo "== prepare: full-size synthetic AHBA folders (geneinr phantom --ahba --ahba-probes 58692; geneinr prepare)"
t0=$(date +%s.%N)
$G phantom --out "$D/ph" --grid 2 --genes 12 --ahba --ahba-probes 58692 | tail -n 1
du -sh "$D/ph/ahba" | awk '{print "donor folders: " $1 " of text"}'
cat > "$D/prepare.yaml" <<YAML
prepare:
  data_dir: $D/ph/ahba
  coordinates: $D/ph/ahba/corrected_mni_coordinates.csv
  reannotation: $D/ph/ahba/reannotated.csv
YAML
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for i in $(seq 1 "$REPEAT"); do
    /usr/bin/time -f "run $i: %e s wall, %U s user + %S s system, peak %M KB" \
        $G prepare "$D/prepare.yaml" --out "$D/out" > "$D/log" 2> "$D/time" || { cat "$D/log" "$D/time"; exit 1; }
    grep -E "^(probes|read the|intensity|probe selection|normalised|wrote)" "$D/log" | sed "s/^/  /"
    tail -n 1 "$D/time" | awk '{ kb = $(NF-1); sub(/peak [0-9]+ KB/, sprintf("peak %.0f MB", kb / 1024)); print }'
done
ls -l "$D/out/samples.csv" | awk '{printf "samples.csv: %.0f MB\n", $5 / 1048576}'
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

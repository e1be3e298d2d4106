#!/bin/bash
# The layers of src/ (src/LAYERS, tools/layers.py): the tree holds to them
# (includes and, from the built objects, calls: none points up, no circle); a
# planted upward include, a planted circle and a file in no layer are each
# refused with a message naming them; and the README's layout table is the
# one generated from the list.
. "$(dirname "$0")/lib.sh" layers
OBJ="$(dirname "$G")/obj"
LAYERS="/usr/bin/python3 tools/layers.py"

if [ -d "$OBJ" ]; then
    check "the tree follows src/LAYERS (includes and calls)" $LAYERS --objs "$OBJ"
else
    check "the tree follows src/LAYERS (includes)" $LAYERS
fi

# A copy of the sources to plant violations in.
plant() { rm -rf "$T/tree"; mkdir -p "$T/tree"; cp -r src include "$T/tree/"; }
refused() { # name, expected text: tools/layers.py on the planted copy fails with it
    if $LAYERS --root "$T/tree" >"$T/last.log" 2>&1; then notok "$1" "accepted"
    elif grep -qF -- "$2" "$T/last.log"; then ok "$1"
    else notok "$1" "$(tail -n 3 "$T/last.log" | tr '\n' ' ')"; fi
}
plant
check "an untouched copy passes" $LAYERS --root "$T/tree"
plant
sed -i '0,/^#include "geneinr\/error.h"/s//#include "geneinr\/error.h"\n#include "geneinr\/render.h"/' "$T/tree/src/base/error.c"
refused "a planted upward include (base -> render) is refused, naming file:line and both layers" \
    "src/base/error.c:3: includes geneinr/render.h (render, layer 8) from base (layer 1): an include pointing up"
plant
echo '#include "geneinr/knn.h"' >> "$T/tree/include/geneinr/kriging.h"
echo '#include "geneinr/kriging.h"' >> "$T/tree/src/methods/knn.c"
refused "a planted include circle within a layer is refused" "include circle: knn <-> kriging"
plant
mkdir -p "$T/tree/src/attic" && cp src/base/rng.c "$T/tree/src/attic/old.c"
refused "a file in no folder of the list is refused" "src/attic/old.c: in no folder of src/LAYERS"

cp README.md "$T/README.md"
tools/gen_layout_md.sh "$T/README.md" >"$T/last.log" 2>&1
if cmp -s README.md "$T/README.md"; then
    ok "the README's layout table is generated from src/LAYERS (tools/gen_layout_md.sh)"
else
    notok "the README's layout table is generated from src/LAYERS" "run tools/gen_layout_md.sh: $(diff README.md "$T/README.md" | head -n 4 | tr '\n' ' ')"
fi

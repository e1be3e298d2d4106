#!/usr/bin/python3
"""layers.py - hold src/ to its layer list (src/LAYERS).

usage: tools/layers.py [--root DIR] [--objs BUILD/obj]   check; exit 1 on a violation
       tools/layers.py [--root DIR] --readme             print the README's layout table

A unit is a source file with its header (src/*/NAME.c + include/geneinr/NAME.h); its
layer is that of the folder holding NAME.c (the longest folder of src/LAYERS that holds
it), or the `header` line that names NAME.h. Checked:
  - every #include "..." of src/ and include/geneinr/ points to the same layer or lower;
  - the include graph between units has no circle;
  - with --objs: every call between units (an undefined symbol of one object that another
    object defines, read by nm) points to the same layer or lower, and the call graph
    between units has no circle either.
Every violation is printed as file:line (or object) with both layers; exit status 1.
"""
import os
import re
import subprocess
import sys


def read_layers(root):
    layers, folders, headers = [], {}, {}
    with open(os.path.join(root, "src/LAYERS")) as f:
        for n, line in enumerate(f, 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            cols = [c.strip() for c in line.split("|")]
            if cols[0] == "layer" and len(cols) == 4:
                name = cols[1]
                if name not in layers:
                    layers.append(name)
                for fo in cols[2].split():
                    folders[fo] = name
            elif cols[0] == "header" and len(cols) == 3:
                for h in cols[2].split():
                    headers[h] = cols[1]
            else:
                sys.exit("src/LAYERS:%d: expected 'layer | name | folders | what' or 'header | layer | names'" % n)
    return layers, folders, headers


def layer_of_path(path, folders):
    best = None
    for fo, name in folders.items():
        if path == fo or path.startswith(fo + "/"):
            if best is None or len(fo) > len(best[0]):
                best = (fo, name)
    return best[1] if best else None


def sources(root):
    out = []
    for d, _, files in os.walk(os.path.join(root, "src")):
        for fn in files:
            if fn.endswith((".c", ".h")):
                out.append(os.path.relpath(os.path.join(d, fn), root))
    inc = os.path.join(root, "include/geneinr")
    for fn in os.listdir(inc):
        if fn.endswith(".h"):
            out.append("include/geneinr/" + fn)
    return sorted(out)


def stem(path):
    return os.path.splitext(os.path.basename(path))[0]


def find_cycles(edges):
    """Strongly connected components of more than one unit (Tarjan), sorted."""
    index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]
    nodes = sorted(set(edges) | {b for bs in edges.values() for b in bs})

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in nodes:
        if v not in index:
            visit(v)
    return sorted(comps)


def main(argv):
    root, objs, readme = ".", None, False
    i = 0
    while i < len(argv):
        if argv[i] == "--root":
            root, i = argv[i + 1], i + 2
        elif argv[i] == "--objs":
            objs, i = argv[i + 1], i + 2
        elif argv[i] == "--readme":
            readme, i = True, i + 1
        else:
            sys.exit(__doc__)
    layers, folders, headers = read_layers(root)
    if readme:
        print("| layer | folder | what lives there |")
        print("|---|---|---|")
        with open(os.path.join(root, "src/LAYERS")) as f:
            for line in f:
                cols = [c.strip() for c in line.split("|")]
                if cols[0] == "layer" and len(cols) == 4:
                    where = ", ".join("`%s%s`" % (fo, "" if fo.endswith(".c") else "/") for fo in cols[2].split())
                    print("| %d %s | %s | %s |" % (layers.index(cols[1]) + 1, cols[1], where, cols[3]))
        return 0

    files = sources(root)
    unit_layer, bad = {}, []
    for p in files:
        if p.startswith("src/") and p.endswith(".c"):
            lay = layer_of_path(p, folders)
            if lay is None:
                bad.append("%s: in no folder of src/LAYERS (add the folder to a layer)" % p)
                continue
            if stem(p) in unit_layer and unit_layer[stem(p)] != lay:
                bad.append("%s: a second %s.c in another layer" % (p, stem(p)))
            unit_layer[stem(p)] = lay
    for h, lay in headers.items():
        unit_layer.setdefault(stem(h), lay)
    rank = {name: k for k, name in enumerate(layers)}

    inc_re = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
    inc_edges = {}
    for p in files:
        u = stem(p)
        lay = unit_layer.get(u)
        if lay is None:
            bad.append("%s: no layer (no src/*/%s.c; name it on a 'header' line of src/LAYERS)" % (p, u))
            continue
        with open(os.path.join(root, p), errors="replace") as f:
            for n, line in enumerate(f, 1):
                m = inc_re.match(line)
                if not m:
                    continue
                v = stem(m.group(1))
                to = unit_layer.get(v)
                if to is None:
                    bad.append("%s:%d: includes %s, which has no layer" % (p, n, m.group(1)))
                    continue
                if rank[to] > rank[lay]:
                    bad.append("%s:%d: includes %s (%s, layer %d) from %s (layer %d): an include pointing up"
                               % (p, n, m.group(1), to, rank[to] + 1, lay, rank[lay] + 1))
                if v != u:
                    inc_edges.setdefault(u, set()).add(v)
    for comp in find_cycles(inc_edges):
        bad.append("include circle: %s" % " <-> ".join(comp))

    n_calls = 0
    if objs:
        defined, undef = {}, {}
        for d, _, fs in os.walk(objs):
            for fn in fs:
                if not fn.endswith(".o"):
                    continue
                path = os.path.join(d, fn)
                # an object of a source that has moved or gone is not part of the house
                if not os.path.exists(os.path.join(root, "src", os.path.relpath(path, objs)[:-2] + ".c")):
                    continue
                out = subprocess.run(["nm", "-P", path], capture_output=True, text=True, check=True).stdout
                u = stem(fn)
                for line in out.splitlines():
                    parts = line.split()
                    if len(parts) < 2:
                        continue
                    sym, kind = parts[0], parts[1]
                    if kind == "U":
                        undef.setdefault(u, set()).add(sym)
                    elif kind in "TDBRC" and kind != "":
                        defined.setdefault(sym, set()).add(u)
        call_edges = {}
        for u, syms in sorted(undef.items()):
            for s in sorted(syms):
                for v in sorted(defined.get(s, ())):
                    if v == u:
                        continue
                    n_calls += 1
                    call_edges.setdefault(u, set()).add(v)
                    lu, lv = unit_layer.get(u), unit_layer.get(v)
                    if lu is None or lv is None:
                        bad.append("%s.o uses %s of %s.o: a unit with no layer" % (u, s, v))
                    elif rank[lv] > rank[lu]:
                        bad.append("%s.o (%s, layer %d) uses %s of %s.o (%s, layer %d): a call pointing up"
                                   % (u, lu, rank[lu] + 1, s, v, lv, rank[lv] + 1))
        for comp in find_cycles(call_edges):
            bad.append("call circle: %s" % " <-> ".join(comp))

    for b in bad:
        print("layers: " + b)
    n_inc = sum(len(v) for v in inc_edges.values())
    if bad:
        print("layers: %d violation%s of src/LAYERS" % (len(bad), "" if len(bad) == 1 else "s"))
        return 1
    print("layers: %d units in %d layers; %d include edges%s between units: none points up, no circle"
          % (len(unit_layer), len(layers), n_inc, " and %d call edges" % n_calls if objs else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

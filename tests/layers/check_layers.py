"""check_layers: the code's layering, checked from the sources and the objects.

1. Includes: a file may include headers of its own folder and of the folders below it in
   LAYERS (what its CMake library links), never of one above or beside it.
2. No circles between files: a file's object depends on another's when it references a symbol
   the other defines (nm), and a header on the headers it includes; neither graph may have a
   cycle. (A folder's internal header, which declares what its files share, is not a module of
   its own: what counts is who calls whom.)
The build's whole-archive links (CMakeLists.txt: ievo_layer_link_check) check the third thing:
each library links with only the libraries it declares.

Usage: check_layers.py SOURCE_DIR BUILD_DIR
"""
import collections
import glob
import os
import re
import subprocess
import sys

# folder -> the folders it may use (its own included), as CMakeLists.txt links them.
LAYERS = {
    "model/base": [],
    "model/core": ["model/base"],
    "model/text": ["model/base"],
    "model/train": ["model/core", "model/base"],
    "worker/common": ["model/base"],
    "worker/wire": ["model/base"],
    "worker/registry": ["worker/common", "worker/wire", "model/base"],
    "worker/data": ["worker/registry", "worker/common", "worker/wire", "model/base"],
    "worker/state": ["worker/data", "worker/common", "worker/wire", "model/text", "model/core", "model/base"],
    "worker/stream": ["worker/state", "worker/registry", "worker/common", "worker/wire", "model/text", "model/core",
                      "model/base"],
    "worker/broker": ["worker/common", "model/base"],
    "worker/cli": ["worker/broker", "worker/stream", "worker/data", "worker/state", "worker/registry", "worker/common",
                   "worker/wire", "model/train", "model/text", "model/core", "model/base"],
}


def sources(src):
    for folder in LAYERS:
        for path in sorted(glob.glob(os.path.join(src, folder, "*.[ch]"))):
            yield folder, path


def check_includes(src):
    where = {}
    for folder, path in sources(src):
        where.setdefault(os.path.basename(path), folder)
    problems = []
    edges = collections.defaultdict(set)
    for folder, path in sources(src):
        for n, line in enumerate(open(path, encoding="utf-8"), 1):
            m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
            if not m:
                continue
            header = os.path.basename(m.group(1))
            other = where.get(header)
            if other is None:
                continue  # generated (schemas.c) or a test's own header
            if other != folder and other not in LAYERS[folder]:
                problems.append(f"{os.path.relpath(path, src)}:{n}: includes {other}/{header}, "
                                f"which {folder} does not link")
            if path.endswith(".h") and header != os.path.basename(path):
                edges[f"{folder}/{os.path.basename(path)}"].add(f"{other}/{header}")
    return problems, edges


def symbol_edges(src, build):
    defs, refs = {}, collections.defaultdict(set)
    for folder in LAYERS:
        lib = folder.replace("/", "_")
        for obj in glob.glob(os.path.join(build, "CMakeFiles", "*.dir", folder, "*.c.o")):
            mod = f"{folder}/{os.path.basename(obj)[:-4]}"
            out = subprocess.run(["nm", "-g", obj], capture_output=True, text=True, check=True).stdout
            for line in out.splitlines():
                p = line.split()
                if len(p) == 3 and p[1] in "TDBRCV":
                    defs[p[2]] = mod
                elif len(p) == 2 and p[0] == "U":
                    refs[mod].add(p[1])
    edges = collections.defaultdict(set)
    for mod, syms in refs.items():
        for s in syms:
            if s in defs and defs[s] != mod:
                edges[mod].add(defs[s])
    return edges, len(set(defs.values()))


def cycles(edges):
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    nodes = set(edges) | {b for v in edges.values() for b in v}
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter[0]; counter[0] += 1
        stack.append(root); on.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]; counter[0] += 1
                    stack.append(w); on.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop(); on.discard(w); comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def main():
    src, build = sys.argv[1], sys.argv[2]
    problems, inc_edges = check_includes(src)
    sym_edges, n_mods = symbol_edges(src, build)
    if n_mods == 0:
        problems.append(f"no object files under {build}: build first")
    for comp in cycles(inc_edges):
        problems.append("headers that include each other in a circle: " + ", ".join(comp))
    for comp in cycles(sym_edges):
        problems.append("files that call each other in a circle: " + ", ".join(comp))
    for p in problems:
        print(p)
    n_files = sum(1 for _ in sources(src))
    print(f"check_layers: {n_files} files in {len(LAYERS)} layers, {n_mods} modules with objects: "
          f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

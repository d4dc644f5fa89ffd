#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""test_client_layers: the files of a static library call one another one way only.

Reads `nm -A ARCHIVE` (what each object file defines and what it leaves undefined), draws an
arrow from each file to every other file of the archive whose global symbols it uses, and
prints every loop of arrows (a strongly connected set of files) with the names on each arrow.
Exits 1 if there is a loop, 0 if the files stand in layers. The objects are the compiler's,
so a call hidden by a macro counts, and a static function does not.

Usage: call_layers.py ARCHIVE...   (checks each archive on its own)
"""
import collections
import subprocess
import sys


def graph(archive):
    out = subprocess.run(["nm", "-A", archive], check=True, capture_output=True,
                         text=True).stdout
    defs, uses = {}, collections.defaultdict(set)
    for line in out.splitlines():
        # "lib.a:file.c.o:0000000000000000 T name" or "lib.a:file.c.o:                 U name"
        head, _, rest = line.rpartition(":")
        obj = head.rpartition(":")[2]
        fields = rest.split()
        if len(fields) == 3 and fields[1] in "TDBRC":
            defs[fields[2]] = obj
            uses[obj]
        elif len(fields) == 2 and fields[0] == "U":
            uses[obj].add(fields[1])
    edges = {f: collections.defaultdict(set) for f in uses}
    for f, names in uses.items():
        for n in names:
            g = defs.get(n)
            if g is not None and g != f:
                edges[f][g].add(n)
    return edges


def loops(edges):
    """Tarjan's strongly connected components, iteratively; only those of 2 files or more."""
    index, low, onstack, stack, found = {}, {}, set(), [], []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        onstack.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    onstack.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                elif w in onstack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                part = []
                while True:
                    w = stack.pop()
                    onstack.discard(w)
                    part.append(w)
                    if w == v:
                        break
                if len(part) > 1:
                    found.append(sorted(part))
    return found


def main(archives):
    if not archives:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    bad = 0
    for archive in archives:
        edges = graph(archive)
        parts = loops(edges)
        print(f"{archive}: {len(edges)} files, {len(parts)} loop(s)")
        for part in parts:
            bad = 1
            print(f"loop of {len(part)} files: {' '.join(part)}")
            members = set(part)
            for f in part:
                for g in sorted(edges[f]):
                    if g in members:
                        print(f"  {f} -> {g}: {', '.join(sorted(edges[f][g]))}")
    return bad


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

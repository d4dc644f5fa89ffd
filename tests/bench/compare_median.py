#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# The median of each cell of several `cairn-bench compare` tables (the same rows in the same
# order, from runs of the same build): prints one table like them, the ratio column recomputed
# from the medians (cairn / the best peer of the row). Usage: compare_median.py RUN1 RUN2 RUN3
import sys, statistics
PEERS = ["cairn", "mosquitto", "mosq+TLS", "NATS", "NATS+TLS"]
def rows(path):
    out = []
    for line in open(path):
        line = line.rstrip("\n")
        if not line.startswith("  ") or len(line) < 47:
            out.append((line, None)); continue
        label, rest = line[2:46], line[46:].split()
        isnum = lambda t: t == "-" or t.replace(".", "", 1).isdigit()
        if len(rest) < 5 or not all(isnum(t) for t in rest[:5]):
            out.append((line, None)); continue
        out.append((label.rstrip(), rest[:5]))
    return out
tables = [rows(p) for p in sys.argv[1:]]
def better(label):
    if "as fast" in label or label.startswith("acknowledged") or label.startswith("drained"):
        return 1
    if "latency" in label or "per message" in label or "RSS" in label:
        return -1
    return 0
for k, (line, cells) in enumerate(tables[0]):
    if cells is None:
        toks = line.split()
        if line.startswith("  ") and toks and toks[-1].isdigit():
            vals = [float(t[k][0].split()[-1]) for t in tables]
            print(line[:len(line) - 12] + "%12.0f" % statistics.median(vals))
        else:
            print(line)
        continue
    med, have = [], []
    for i in range(5):
        vals = [t[k][1][i] for t in tables if t[k][1] is not None and t[k][1][i] != "-"]
        if vals:
            dec = len(vals[0].split(".")[1]) if "." in vals[0] else 0
            med.append(statistics.median(float(v) for v in vals)); have.append(dec)
        else:
            med.append(None); have.append(None)
    cellsout = ["-" if m is None else "%.*f" % (have[i], m) for i, m in enumerate(med)]
    b = better(line)
    ratio = "-"
    peers = [(i, med[i]) for i in range(1, 5) if med[i] is not None]
    if b and med[0] is not None and peers:
        bi, bv = (max if b > 0 else min)(peers, key=lambda p: p[1])
        if bv > 0:
            ratio = "%.2f %s" % (med[0] / bv, PEERS[bi])
    lab = line
    if "all offered" in line:
        offs = [float(t[k][0].split("offered ")[1].split("/")[0]) for t in tables]
        lab = "delivered/s, all offered %.0f/s" % statistics.median(offs)
    print("  %-44s" % lab + "".join(" %10s" % c for c in cellsout) + "  " + ratio)

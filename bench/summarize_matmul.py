#!/usr/bin/env python3
"""Markdown table of a lowbit-bench-matmul CSV run (--benchmark_format=csv): GFLOP/s per
format, mode and N for M = K = 4096, weight GB/s at N = 1, and the ratio to Eigen fp32 at
N = 512 measured in the same run."""
import csv
import sys


def main(path):
    rows = list(csv.reader(open(path)))
    hdr = rows[0]
    gi, wi, bi = hdr.index("GFLOPs"), hdr.index("weight_GBps"), hdr.index("bytes_per_second")
    d = {}
    for r in rows[1:]:
        num = lambda i: float(r[i]) if r[i] else None
        d[r[0].replace("/real_time", "")] = (num(gi), num(wi), num(bi))
    for k, v in d.items():
        if k.startswith("read/"):
            print(f"- `{k}`: {v[2] / 1e9:.1f} GB/s")
    print()
    print("| weights | mode | threads | N=1 DRAM: GFLOP/s (weight GB/s) | N=1 L3 | N=8 | N=32 | N=512 | N=512 / Eigen |")
    print("|---|---|---|---|---|---|---|---|---|")
    formats = []
    for k in d:
        if k.startswith("matmul/"):
            f = k.split("/")[1]
            if f not in formats:
                formats.append(f)
    for t in (1, 2):
        e = {n: d.get(f"eigen_fp32/M4096K4096/N{n}/threads:{t}") for n in (1, 8, 32, 512)}
        if e[512]:
            print(f"| Eigen fp32 | - | {t} | " + " | ".join(f"{e[n][0]:.0f}" if e[n] else "-" for n in (1, 1, 8, 32, 512)) + " | 1.00 |")
        for f in formats:
            modes = []
            for k in d:
                p = k.split("/")
                if k.startswith("matmul/") and p[1] == f and p[2] not in modes:
                    modes.append(p[2])
            for mode in modes:
                cells, last = [], None
                for n, where in ((1, "stream"), (1, "cache"), (8, "stream"), (32, "stream"), (512, "cache")):
                    v = d.get(f"matmul/{f}/{mode}/M4096K4096/N{n}/avx512/{where}/threads:{t}")
                    if v:
                        cells.append(f"{v[0]:.0f} ({v[1]:.1f})" if n == 1 else f"{v[0]:.0f}")
                        last = v[0]
                    else:
                        cells.append("-")
                if last is None and all(c == "-" for c in cells):
                    continue
                ratio = f"{last / e[512][0]:.2f}" if last and e[512] else "-"
                label = "weight-only" if mode == "w" else "x " + mode
                print(f"| {f} | {label} | {t} | " + " | ".join(cells) + f" | {ratio} |")


if __name__ == "__main__":
    main(sys.argv[1])

#!/usr/bin/env python3
"""Turns the JSON of lowbit's benchmarks into the Markdown tables of bench/README.md.

    build/release/bench/lowbit-bench-fake-quant --benchmark_format=json > fq.json
    python3 bench/summarize.py fq.json [--size 64MiB] [--threads 1]

Every ratio is taken within the one run: GB/s of float32 input, that as a share of the
memcpy of the same bytes with the same threads, and the SIMD path against the scalar one.
"""
import json
import sys


def main(path, size_filter=None, threads_filter=None):
    with open(path) as f:
        runs = json.load(f)["benchmarks"]
    gbs = {}
    for r in runs:
        if r.get("error_occurred"):
            continue
        name = r["name"].replace("/real_time", "")
        gbs[name] = r["bytes_per_second"] / 1e9
    rows = []
    for name, v in gbs.items():
        parts = name.split("/")
        if parts[0] == "memcpy" or len(parts) != 5:
            continue
        op, fmt, simd, size, threads = parts
        if size_filter and size != size_filter:
            continue
        if threads_filter and threads != f"threads:{threads_filter}":
            continue
        memcpy = gbs.get(f"memcpy/{size}/{threads}")
        scalar = gbs.get(f"{op}/{fmt}/scalar/{size}/{threads}")
        rows.append((op, fmt, size, threads, simd, v, memcpy, scalar))
    order = {"scalar": 0, "avx2": 1, "avx512": 2}
    rows.sort(key=lambda r: (r[0], r[2] != "64MiB", r[3], r[1], order.get(r[4], 9)))
    print("| operation | format | size | threads | path | GB/s | % of memcpy | x scalar |")
    print("|---|---|---|---|---|---:|---:|---:|")
    for op, fmt, size, threads, simd, v, memcpy, scalar in rows:
        pct = f"{100 * v / memcpy:.0f}%" if memcpy else "-"
        spd = f"{v / scalar:.1f}x" if scalar and simd != "scalar" else "-"
        print(f"| {op} | {fmt} | {size} | {threads.replace('threads:', '')} | {simd} | {v:.2f} | {pct} | {spd} |")
    for size in ("64MiB", "256KiB"):
        for t in ("threads:1", "threads:2"):
            m = gbs.get(f"memcpy/{size}/{t}")
            if m:
                print(f"\nmemcpy {size}, {t.replace('threads:', '')} thread(s): {m:.2f} GB/s", end="")
    print()


if __name__ == "__main__":
    args = sys.argv[1:]
    opts = {"--size": None, "--threads": None}
    files = []
    while args:
        a = args.pop(0)
        if a in opts:
            opts[a] = args.pop(0)
        else:
            files.append(a)
    main(files[0], opts["--size"], opts["--threads"])

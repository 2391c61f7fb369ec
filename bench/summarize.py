#!/usr/bin/env python3
"""Turns the JSON of lowbit-bench-fake-quant into the Markdown table of bench/README.md.

    build/release/bench/lowbit-bench-fake-quant --benchmark_format=json > fq.json
    python3 bench/summarize.py fq.json

Every ratio is taken within the one run: GB/s of float32 input, that as a share of the
memcpy of the same bytes with the same threads, and the SIMD path against the scalar one.
"""
import json
import sys


def main(path):
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
        if parts[0] != "fake_quant":
            continue
        _, fmt, simd, size, threads = parts
        memcpy = gbs.get(f"memcpy/{size}/{threads}")
        scalar = gbs.get(f"fake_quant/{fmt}/scalar/{size}/{threads}")
        rows.append((fmt, size, threads, simd, v, memcpy, scalar))
    order = {"scalar": 0, "avx2": 1, "avx512": 2}
    rows.sort(key=lambda r: (r[1] != "64MiB", r[2], r[0], order.get(r[3], 9)))
    print("| format | size | threads | path | GB/s | % of memcpy | x scalar |")
    print("|---|---|---|---|---:|---:|---:|")
    for fmt, size, threads, simd, v, memcpy, scalar in rows:
        pct = f"{100 * v / memcpy:.0f}%" if memcpy else "-"
        spd = f"{v / scalar:.1f}x" if scalar and simd != "scalar" else "-"
        print(f"| {fmt} | {size} | {threads.replace('threads:', '')} | {simd} | {v:.2f} | {pct} | {spd} |")
    for size in ("64MiB", "256KiB"):
        for t in ("threads:1", "threads:2"):
            m = gbs.get(f"memcpy/{size}/{t}")
            if m:
                print(f"\nmemcpy {size}, {t.replace('threads:', '')} thread(s): {m:.2f} GB/s", end="")
    print()


if __name__ == "__main__":
    main(sys.argv[1])

#!/usr/bin/env bash
# Peak resident memory of `lowbit compare` on a large model: writes a synthetic safetensors
# file of COUNT fp32 tensors of 4096 x 4096 (64 MiB each; 64 of them = 4 GiB), runs compare
# under /usr/bin/time -v and fails if the peak RSS reaches LIMIT_MIB. Not part of CI (it
# writes gigabytes); run it by hand:
#   bench/compare_memory.sh [BUILD_DIR] [COUNT] [LIMIT_MIB]
set -euo pipefail
build=${1:-build/release}
count=${2:-64}
limit=${3:-1024}
tool="$build/tools/lowbit"
[ -x "$tool" ] || { echo "no $tool: build the lowbit-tool target first" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (Debian package: time)" >&2; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
file="$dir/synthetic.safetensors"
# Student-t-like values: one 64 MiB tensor's worth generated once, written COUNT times.
python3 - "$file" "$count" <<'PY'
import json, random, struct, sys
path, count = sys.argv[1], int(sys.argv[2])
rows = cols = 4096
n = rows * cols
rng = random.Random(1)
chunk = struct.pack("<65536f", *[rng.gauss(0.0, 0.02) * (1 + 3 * (i % 97 == 0)) for i in range(65536)])
tensor = chunk * (n // 65536)
header = {f"layer{i}.weight": {"dtype": "F32", "shape": [rows, cols], "data_offsets": [i * n * 4, (i + 1) * n * 4]}
          for i in range(count)}
h = json.dumps(header).encode()
h += b" " * (-len(h) % 8)
with open(path, "wb") as f:
    f.write(struct.pack("<Q", len(h)))
    f.write(h)
    for _ in range(count):
        f.write(tensor)
PY
echo "file: $(du -h "$file" | cut -f1), $count tensors of 4096 x 4096 fp32"
/usr/bin/time -v "$tool" compare "$file" --formats mxfp4,int4_b32_fp16 --output csv > "$dir/out.csv" 2> "$dir/time.txt"
peak_kib=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$dir/time.txt")
wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$dir/time.txt")
echo "peak RSS: $((peak_kib / 1024)) MiB (limit $limit MiB), wall $wall, $(($(wc -l < "$dir/out.csv") - 1)) result rows"
[ $((peak_kib / 1024)) -lt "$limit" ]

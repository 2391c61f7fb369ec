#!/usr/bin/env bash
# Runs every fuzz target for a bounded time from its seed corpus; any finding fails.
#   bash fuzz/run.sh <fuzz build dir> [seconds per target]
# New inputs go to a scratch corpus in the build directory (the seeds stay as generated);
# a finding is written to <build dir>/findings/ and the run stops with its report.
set -euo pipefail
build="${1:?usage: fuzz/run.sh <fuzz build dir> [seconds per target]}"
seconds="${2:-20}"
targets=(fuzz_format_name fuzz_npy fuzz_safetensors fuzz_gguf fuzz_packed_matrix fuzz_fake_quant_simd fuzz_matmul)
mkdir -p "$build/findings"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
for t in "${targets[@]}"; do
  work="$build/corpus/$t"
  mkdir -p "$work"
  echo "== $t: ${seconds}s"
  # -rss_limit_mb: a reader that allocates what a header claims, not what the file holds,
  # is a finding too. -timeout: one input taking over 10 s is a hang.
  rc=0
  "$build/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$build/findings/$t-" "$work" "$build/seeds/$t" >"$build/$t.log" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    cat "$build/$t.log" >&2
    echo "$t: finding (exit $rc), input saved under $build/findings/" >&2
    exit 1
  fi
  grep -E "^(Done|stat::number_of_executed_units|stat::peak_rss_mb)" "$build/$t.log" || true
done

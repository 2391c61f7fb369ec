// Packing throughput: GB/s of float32 weights turned into a PackedMatrix (quantise, then
// bit-pack at the format's real width) and unpacked back to float, for each format, each
// SIMD path, 64 MiB and 256 KiB, 1 and 2 threads, beside memcpy of the same bytes.
//
//   build/release/bench/lowbit-bench-pack --benchmark_filter='^pack/mxfp4/avx512/64MiB'
//
// Case names: pack/<format>/<path>/<size>/threads:<n>, pack_into/..., unpack/... and
// memcpy/<size>/threads:<n>.
#include <benchmark/benchmark.h>
#include <lowbit/lowbit.hpp>

#include "bench_support.hpp"

#include <string>
#include <type_traits>
#include <variant>
#include <vector>

namespace {

using lowbit_bench::input;
using lowbit_bench::set_bytes;
using lowbit_bench::Size;

// pack: a new PackedMatrix per iteration (allocation and page faults included).
// reuse: PackedMatrix::pack_into a matrix kept across iterations, quantising into storage that
// already exists, as an engine re-quantising activations does (and as ggml's quantize_row_*
// into a caller's buffer).
void bench_pack(benchmark::State& st, std::string format, lowbit::SimdPath path, Size size, int threads, bool reuse) {
  if (lowbit_bench::skip_unsupported(st, path)) return;
  const std::int64_t n = size.rows * size.cols;
  const auto w = lowbit::MatrixRef<const float>::row_major(input(n).data(), size.rows, size.cols);
  lowbit::QuantOptions opt;
  opt.threads = threads;
  const lowbit_bench::ForcedPath forced(path);
  std::visit(
      [&](const auto& f) {
        using F = std::decay_t<decltype(f)>;
        if constexpr (lowbit::is_block_format<F>) {
          lowbit::PackedMatrix<F> kept;
          for (auto _ : st) {
            if (reuse) {
              lowbit::PackedMatrix<F>::pack_into(f, w, kept, opt);
              benchmark::DoNotOptimize(&kept);
            } else {
              lowbit::PackedMatrix<F> fresh = lowbit::PackedMatrix<F>::pack(f, w, opt);
              benchmark::DoNotOptimize(&fresh);
            }
            benchmark::ClobberMemory();
          }
        }
      },
      lowbit::Quantizer(format).format());
  set_bytes(st, n);
}

// unpack has no thread option: the default thread count is set for the run.
void bench_unpack(benchmark::State& st, std::string format, lowbit::SimdPath path, Size size, int threads) {
  if (lowbit_bench::skip_unsupported(st, path)) return;
  const std::int64_t n = size.rows * size.cols;
  const auto w = lowbit::MatrixRef<const float>::row_major(input(n).data(), size.rows, size.cols);
  const lowbit::AnyPackedMatrix m = lowbit::AnyPackedMatrix::pack(format, w);
  std::vector<float> y(static_cast<std::size_t>(n));
  const lowbit_bench::ForcedPath forced(path, threads);
  for (auto _ : st) {
    m.unpack(lowbit::MatrixRef<float>::row_major(y.data(), size.rows, size.cols));
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  set_bytes(st, n);
}

int register_all() {
  lowbit_bench::register_cases([](const std::string& tail, const std::string& f, lowbit::SimdPath p, Size size,
                                  int threads) {
    benchmark::RegisterBenchmark(("pack/" + tail).c_str(), bench_pack, f, p, size, threads, false)->UseRealTime();
    benchmark::RegisterBenchmark(("pack_into/" + tail).c_str(), bench_pack, f, p, size, threads, true)->UseRealTime();
    benchmark::RegisterBenchmark(("unpack/" + tail).c_str(), bench_unpack, f, p, size, threads)->UseRealTime();
  });
  return 0;
}

const int registered = register_all();

}  // namespace

BENCHMARK_MAIN();

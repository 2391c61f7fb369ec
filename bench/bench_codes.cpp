// quantize / dequantize throughput: GB/s of float32 data (quantize's input, dequantize's
// output) for each format, each SIMD path, a tensor out of cache (64 MiB) and one in cache
// (256 KiB), on 1 and 2 threads, beside a plain memcpy of the same bytes in the same run.
//
//   build/release/bench/lowbit-bench-codes --benchmark_filter='mxfp4/avx512/64MiB'
//
// Case names: quantize/<format>/<path>/<size>/threads:<n>, dequantize/... and
// memcpy/<size>/threads:<n>.
#include <benchmark/benchmark.h>
#include <lowbit/lowbit.hpp>

#include "bench_support.hpp"

#include <string>
#include <vector>

namespace {

using lowbit_bench::input;
using lowbit_bench::set_bytes;
using lowbit_bench::Size;

void bench_quantize(benchmark::State& st, std::string format, lowbit::SimdPath path, Size size, int threads) {
  if (lowbit_bench::skip_unsupported(st, path)) return;
  const lowbit::Quantizer q(format);
  const std::int64_t n = size.rows * size.cols;
  const auto& x = input(n);
  lowbit::QuantOptions opt;
  opt.threads = threads;
  const lowbit_bench::ForcedPath forced(path);
  // One output tensor for every iteration, as an engine keeps one per activation tensor
  // (quantize() would allocate and page in a fresh code array each time).
  lowbit::QuantizedTensor qt;
  for (auto _ : st) {
    q.quantize_into(lowbit::MatrixRef<const float>::row_major(x.data(), size.rows, size.cols), qt, opt);
    benchmark::DoNotOptimize(qt.codes.data());
    benchmark::ClobberMemory();
  }
  set_bytes(st, n);
}

// dequantize has no thread option: the default thread count is set for the run.
void bench_dequantize(benchmark::State& st, std::string format, lowbit::SimdPath path, Size size, int threads) {
  if (lowbit_bench::skip_unsupported(st, path)) return;
  const lowbit::Quantizer q(format);
  const std::int64_t n = size.rows * size.cols;
  const auto& x = input(n);
  const lowbit::QuantizedTensor qt = q.quantize(lowbit::MatrixRef<const float>::row_major(x.data(), size.rows, size.cols));
  std::vector<float> y(static_cast<std::size_t>(n));
  const lowbit_bench::ForcedPath forced(path, threads);
  for (auto _ : st) {
    q.dequantize(qt, lowbit::MatrixRef<float>::row_major(y.data(), size.rows, size.cols));
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  set_bytes(st, n);
}

int register_all() {
  lowbit_bench::register_cases([](const std::string& tail, const std::string& f, lowbit::SimdPath p, Size size,
                                  int threads) {
    benchmark::RegisterBenchmark(("quantize/" + tail).c_str(), bench_quantize, f, p, size, threads)->UseRealTime();
    benchmark::RegisterBenchmark(("dequantize/" + tail).c_str(), bench_dequantize, f, p, size, threads)->UseRealTime();
  });
  return 0;
}

const int registered = register_all();

}  // namespace

BENCHMARK_MAIN();

// Fake-quant throughput: GB/s of float32 input for each format, each SIMD path, a tensor out
// of cache (64 MiB) and one in cache (256 KiB), on 1 and 2 threads, beside a plain memcpy of
// the same bytes measured in the same run.
//
//   build/release/bench/lowbit-bench-fake-quant --benchmark_filter='mxfp4/avx512/64MiB'
//
// Case names: fake_quant/<format>/<path>/<size>/threads:<n> and memcpy/<size>/threads:<n>.
#include <benchmark/benchmark.h>
#include <lowbit/lowbit.hpp>

#include "bench_support.hpp"

#include <string>
#include <vector>

namespace {

using lowbit_bench::input;
using lowbit_bench::set_bytes;
using lowbit_bench::Size;

void bench_fake_quant(benchmark::State& st, std::string format, lowbit::SimdPath path, Size size, int threads) {
  if (lowbit_bench::skip_unsupported(st, path)) return;
  const lowbit::Quantizer q(format);
  const std::int64_t n = size.rows * size.cols;
  const auto& x = input(n);
  std::vector<float> y(static_cast<std::size_t>(n));
  lowbit::QuantOptions opt;
  opt.threads = threads;
  const lowbit_bench::ForcedPath forced(path);
  for (auto _ : st) {
    q.fake_quant(lowbit::MatrixRef<const float>::row_major(x.data(), size.rows, size.cols),
                 lowbit::MatrixRef<float>::row_major(y.data(), size.rows, size.cols), opt);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  set_bytes(st, n);
}

int register_all() {
  lowbit_bench::register_cases([](const std::string& tail, const std::string& f, lowbit::SimdPath p, Size size,
                                  int threads) {
    benchmark::RegisterBenchmark(("fake_quant/" + tail).c_str(), bench_fake_quant, f, p, size, threads)->UseRealTime();
  });
  return 0;
}

const int registered = register_all();

}  // namespace

BENCHMARK_MAIN();

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

#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

struct Size {
  const char* name;
  std::int64_t rows, cols;  // rows x cols floats
};
constexpr Size kSizes[] = {{"64MiB", 4096, 4096}, {"256KiB", 64, 1024}};

const std::vector<float>& input(std::int64_t n) {
  static std::vector<float> x;
  if (static_cast<std::int64_t>(x.size()) < n) {
    std::mt19937 rng(1);
    std::student_t_distribution<float> t(4.0f);
    x.resize(static_cast<std::size_t>(n));
    for (auto& v : x) v = 0.02f * t(rng);
  }
  return x;
}

void set_bytes(benchmark::State& st, std::int64_t n) {
  st.SetBytesProcessed(st.iterations() * n * static_cast<std::int64_t>(sizeof(float)));
}

void bench_quantize(benchmark::State& st, std::string format, lowbit::SimdPath path, Size size, int threads) {
  if (!lowbit::cpu_supports(path)) {
    st.SkipWithError("CPU lacks this path");
    return;
  }
  const lowbit::Quantizer q(format);
  const std::int64_t n = size.rows * size.cols;
  const auto& x = input(n);
  lowbit::QuantOptions opt;
  opt.threads = threads;
  lowbit::force_simd_path(path);
  // One output tensor for every iteration, as an engine keeps one per activation tensor
  // (quantize() would allocate and page in a fresh code array each time).
  lowbit::QuantizedTensor qt;
  for (auto _ : st) {
    q.quantize_into(lowbit::MatrixRef<const float>::row_major(x.data(), size.rows, size.cols), qt, opt);
    benchmark::DoNotOptimize(qt.codes.data());
    benchmark::ClobberMemory();
  }
  lowbit::clear_forced_simd_path();
  set_bytes(st, n);
}

// dequantize has no thread option: the default thread count is set for the run.
void bench_dequantize(benchmark::State& st, std::string format, lowbit::SimdPath path, Size size, int threads) {
  if (!lowbit::cpu_supports(path)) {
    st.SkipWithError("CPU lacks this path");
    return;
  }
  const lowbit::Quantizer q(format);
  const std::int64_t n = size.rows * size.cols;
  const auto& x = input(n);
  const lowbit::QuantizedTensor qt = q.quantize(lowbit::MatrixRef<const float>::row_major(x.data(), size.rows, size.cols));
  std::vector<float> y(static_cast<std::size_t>(n));
  lowbit::set_num_threads(threads);
  lowbit::force_simd_path(path);
  for (auto _ : st) {
    q.dequantize(qt, lowbit::MatrixRef<float>::row_major(y.data(), size.rows, size.cols));
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  lowbit::clear_forced_simd_path();
  lowbit::set_num_threads(0);
  set_bytes(st, n);
}

void bench_memcpy(benchmark::State& st, Size size, int threads) {
  const std::int64_t n = size.rows * size.cols;
  const auto& x = input(n);
  std::vector<float> y(static_cast<std::size_t>(n));
  for (auto _ : st) {
    lowbit::parallel_for(size.rows, threads, threads, [&](std::int64_t r0, std::int64_t r1) {
      std::memcpy(y.data() + r0 * size.cols, x.data() + r0 * size.cols,
                  static_cast<std::size_t>((r1 - r0) * size.cols) * sizeof(float));
    });
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  set_bytes(st, n);
}

int register_all() {
  const char* formats[] = {"mxfp4",         "mxfp8_e4m3",    "mxfp8_e5m2",     "mxfp6_e2m3", "mxfp6_e3m2",
                           "mxint8",        "bfp8_b16",      "bfp6_b16",       "bfp4_b16",   "int8_b32_fp16",
                           "int4_b32_fp16", "uint4_b32_fp16", "nvfp4",         "fp8_e4m3",   "fp16",
                           "bf16"};
  const lowbit::SimdPath paths[] = {lowbit::SimdPath::Scalar, lowbit::SimdPath::AVX2, lowbit::SimdPath::AVX512};
  for (const Size& size : kSizes)
    for (int threads : {1, 2}) {
      benchmark::RegisterBenchmark(("memcpy/" + std::string(size.name) + "/threads:" + std::to_string(threads)).c_str(),
                                   bench_memcpy, size, threads)
          ->UseRealTime();
      for (const char* f : formats)
        for (lowbit::SimdPath p : paths) {
          const std::string tail = std::string(f) + "/" + std::string(lowbit::to_string(p)) + "/" + size.name +
                                   "/threads:" + std::to_string(threads);
          benchmark::RegisterBenchmark(("quantize/" + tail).c_str(), bench_quantize, std::string(f), p, size, threads)
              ->UseRealTime();
          benchmark::RegisterBenchmark(("dequantize/" + tail).c_str(), bench_dequantize, std::string(f), p, size,
                                       threads)
              ->UseRealTime();
        }
    }
  return 0;
}

const int registered = register_all();

}  // namespace

BENCHMARK_MAIN();

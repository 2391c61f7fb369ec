// Shared by lowbit's benchmark suites: sizes, formats and paths, the input tensor, byte
// counts, and the memcpy baseline measured in the same run.
#pragma once

#include <benchmark/benchmark.h>
#include <lowbit/lowbit.hpp>

#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace lowbit_bench {

struct Size {
  const char* name;
  std::int64_t rows, cols;  // rows x cols floats
};
inline constexpr Size kSizes[] = {{"64MiB", 4096, 4096}, {"256KiB", 64, 1024}};

inline constexpr const char* kFormats[] = {
    "mxfp4",    "mxfp8_e4m3", "mxfp8_e5m2",    "mxfp6_e2m3",    "mxfp6_e3m2",     "mxint8", "bfp8_b16", "bfp6_b16",
    "bfp4_b16", "int8_b32_fp16", "int4_b32_fp16", "uint4_b32_fp16", "nvfp4", "fp8_e4m3", "fp16",    "bf16"};
inline constexpr lowbit::SimdPath kPaths[] = {lowbit::SimdPath::Scalar, lowbit::SimdPath::AVX2,
                                              lowbit::SimdPath::AVX512};

// LLM-like weights: Student-t (4 degrees of freedom) with scale 0.02.
inline const std::vector<float>& input(std::int64_t n) {
  static std::vector<float> x;
  if (static_cast<std::int64_t>(x.size()) < n) {
    std::mt19937 rng(1);
    std::student_t_distribution<float> t(4.0f);
    x.resize(static_cast<std::size_t>(n));
    for (auto& v : x) v = 0.02f * t(rng);
  }
  return x;
}

// Marks the case skipped when this CPU cannot run `path`.
inline bool skip_unsupported(benchmark::State& st, lowbit::SimdPath path) {
  if (lowbit::cpu_supports(path)) return false;
  st.SkipWithError("CPU lacks this path");
  return true;
}

// Forces a SIMD path (and optionally the default thread count) for one case.
struct ForcedPath {
  explicit ForcedPath(lowbit::SimdPath p, int threads = -1) : set_threads(threads >= 0) {
    lowbit::force_simd_path(p);
    if (set_threads) lowbit::set_num_threads(threads);
  }
  ~ForcedPath() {
    lowbit::clear_forced_simd_path();
    if (set_threads) lowbit::set_num_threads(0);
  }
  ForcedPath(const ForcedPath&) = delete;
  ForcedPath& operator=(const ForcedPath&) = delete;
  bool set_threads;
};

inline void set_bytes(benchmark::State& st, std::int64_t n) {
  st.SetBytesProcessed(st.iterations() * n * static_cast<std::int64_t>(sizeof(float)));
}

// The same bytes copied with the same threads: the bandwidth the kernels are held against.
inline void bench_memcpy(benchmark::State& st, Size size, int threads) {
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

// Registers memcpy/<size>/threads:<n>, then calls add(tail, format, path, size, threads) for
// every case, tail = "<format>/<path>/<size>/threads:<n>".
template <class Add>
void register_cases(Add&& add) {
  for (const Size& size : kSizes)
    for (int threads : {1, 2}) {
      benchmark::RegisterBenchmark(("memcpy/" + std::string(size.name) + "/threads:" + std::to_string(threads)).c_str(),
                                   bench_memcpy, size, threads)
          ->UseRealTime();
      for (const char* f : kFormats)
        for (lowbit::SimdPath p : kPaths)
          add(std::string(f) + "/" + std::string(lowbit::to_string(p)) + "/" + size.name + "/threads:" +
                  std::to_string(threads),
              std::string(f), p, size, threads);
    }
}

}  // namespace lowbit_bench

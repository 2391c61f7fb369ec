// The packed matmul: Y[N x M] = X[N x K] * W^T for the panel formats in both modes, against
// Eigen's fp32 GEMM and the machine's read bandwidth measured in the same run.
//
//   matmul/<format>/<mode>/M<m>K<k>/N<n>/<path>/<stream|cache>/threads:<t>
//     mode   w (weight-only, float activations) or the activation format (weight + activation)
//     stream cycles over copies of W, 3x the L3 (sysconf) in all, so W comes from DRAM; cache reuses one
//     path   scalar, avx2, avx512, or avx2_novnni: the AVX2 integer kernel without AVX-VNNI
//   eigen_fp32/M<m>K<k>/N<n>/threads:<t>
//   read/<dram|dram_noprefetch|l3>[_4k]/threads:<t>
//     bytes read per second by AVX-512 loads (AVX2 loads on CPUs without AVX-512), the bandwidth
//     roof: dram with the kernels' software prefetches, dram_noprefetch without (the higher of
//     the two is the roof: a Zen 3 core reads faster without them); _4k: a buffer in 4 KiB
//     pages, else one from the packed weights' allocator (2 MiB pages)
//
// Counters: GFLOPs (2 N M K per call, as a rate) and weight_GBps (bytes of packed W per call).
#include "bench_support.hpp"

#include <Eigen/Core>
#include <lowbit/kernels/target.hpp>

#include <unistd.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

namespace {

using lowbit::MatrixRef;
using lowbit::SimdPath;

// The last-level cache of this machine (sysconf; 32 MiB where it does not say).
std::int64_t l3_bytes() {
  static const std::int64_t bytes = [] {
    const long b = ::sysconf(_SC_LEVEL3_CACHE_SIZE);
    return b > 0 ? static_cast<std::int64_t>(b) : std::int64_t{32} << 20;
  }();
  return bytes;
}
// Bytes of weights a stream case cycles over: 3x the L3 (at least 96 MiB), so that every pass
// reads its matrix from DRAM on any machine, whatever its cache.
std::int64_t stream_bytes() { return std::max<std::int64_t>(96ll << 20, 3 * l3_bytes()); }
// The DRAM read roof's buffer: 4x the L3, at least 512 MiB.
std::int64_t dram_read_bytes() { return std::max<std::int64_t>(512ll << 20, 4 * l3_bytes()); }

struct Shape {
  std::int64_t m, k;
};

const std::vector<float>& weights(std::int64_t n) {
  static std::vector<float> w;
  if (static_cast<std::int64_t>(w.size()) < n) w = std::vector<float>(lowbit_bench::input(n).begin(), lowbit_bench::input(n).begin() + n);
  return w;
}

std::vector<float> activations(std::int64_t n, std::int64_t k) {
  std::vector<float> x(static_cast<std::size_t>(n * k));
  std::mt19937 rng(7);
  std::normal_distribution<float> d(0.0f, 1.0f);
  for (auto& v : x) v = d(rng);
  return x;
}

void set_counters(benchmark::State& st, std::int64_t n, Shape s, double weight_bytes) {
  st.counters["GFLOPs"] = benchmark::Counter(2.0 * static_cast<double>(n * s.m * s.k) * static_cast<double>(st.iterations()) / 1e9,
                                             benchmark::Counter::kIsRate);
  st.counters["weight_GBps"] =
      benchmark::Counter(weight_bytes * static_cast<double>(st.iterations()) / 1e9, benchmark::Counter::kIsRate);
}

template <class F>
void bench_panel(benchmark::State& st, const F& fmt, std::string act, Shape s, std::int64_t n, SimdPath path, bool stream,
                 int threads, bool vnni) {
  if (lowbit_bench::skip_unsupported(st, path)) return;
  if (!vnni && !lowbit::avx_vnni_active()) return st.SkipWithError("this CPU has no AVX-VNNI to turn off");
  lowbit_bench::ForcedPath fp(path);
  lowbit::allow_avx_vnni(vnni);
  const auto& wv = weights(s.m * s.k);
  const auto first = lowbit::PanelMatrix<F>::pack(fmt, MatrixRef<const float>::row_major(wv.data(), s.m, s.k));
  const std::int64_t copies = stream ? std::max<std::int64_t>(1, (stream_bytes() + static_cast<std::int64_t>(first.bytes()) - 1) /
                                                                     static_cast<std::int64_t>(first.bytes()))
                                     : 1;
  std::vector<lowbit::PanelMatrix<F>> ws(static_cast<std::size_t>(copies), first);
  const auto xv = activations(n, s.k);
  std::vector<float> y(static_cast<std::size_t>(n * s.m));
  lowbit::MatmulOptions opt;
  opt.threads = threads;
  if (!act.empty()) opt.activation = lowbit::Quantizer(act);
  std::size_t i = 0;
  for (auto _ : st) {
    lowbit::matmul(MatrixRef<const float>::row_major(xv.data(), n, s.k), ws[i], {}, MatrixRef<float>::row_major(y.data(), n, s.m),
                   opt);
    benchmark::DoNotOptimize(y.data());
    i = (i + 1) % ws.size();
  }
  set_counters(st, n, s, static_cast<double>(first.bytes()));
  lowbit::allow_avx_vnni(true);
}

void bench_eigen(benchmark::State& st, Shape s, std::int64_t n, int threads) {
  using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const auto& wv = weights(s.m * s.k);
  const RowMat w = Eigen::Map<const RowMat>(wv.data(), s.m, s.k);
  const auto xv = activations(n, s.k);
  const RowMat x = Eigen::Map<const RowMat>(xv.data(), n, s.k);
  RowMat y(n, s.m);
  const std::int64_t chunk = (s.m + threads - 1) / threads;
  for (auto _ : st) {
    lowbit::parallel_for(threads, threads, threads, [&](std::int64_t t0, std::int64_t t1) {
      for (std::int64_t t = t0; t < t1; ++t) {
        const std::int64_t r0 = t * chunk, rows = std::min(chunk, s.m - r0);
        y.middleCols(r0, rows).noalias() = x * w.middleRows(r0, rows).transpose();
      }
    });
    benchmark::DoNotOptimize(y.data());
  }
  set_counters(st, n, s, static_cast<double>(s.m * s.k * 4));
}

// PREFETCH: software prefetches 8 KiB ahead into L2, as the kernels stream their weights
// (from DRAM it reads as fast or faster than the hardware's prefetchers alone; from L3 the
// extra instructions only cost).
LOWBIT_TARGET_AVX512_BEGIN
template <bool PREFETCH>
std::uint64_t read_all_avx512(const std::uint8_t* p, std::int64_t bytes) {
  __m512i a = _mm512_setzero_si512(), b = a, c = a, d = a;
  for (std::int64_t i = 0; i + 256 <= bytes; i += 256) {
    if constexpr (PREFETCH)
      for (int line = 0; line < 256; line += 64) _mm_prefetch(reinterpret_cast<const char*>(p + i + line + 8192), _MM_HINT_T1);
    a = _mm512_xor_si512(a, _mm512_load_si512(p + i));
    b = _mm512_xor_si512(b, _mm512_load_si512(p + i + 64));
    c = _mm512_xor_si512(c, _mm512_load_si512(p + i + 128));
    d = _mm512_xor_si512(d, _mm512_load_si512(p + i + 192));
  }
  return static_cast<std::uint64_t>(_mm512_reduce_add_epi64(_mm512_xor_si512(_mm512_xor_si512(a, b), _mm512_xor_si512(c, d))));
}
LOWBIT_TARGET_END

LOWBIT_TARGET_AVX2_BEGIN
template <bool PREFETCH>
std::uint64_t read_all_avx2(const std::uint8_t* p, std::int64_t bytes) {
  __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
  auto at = [&](std::int64_t i) { return _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)); };
  for (std::int64_t i = 0; i + 256 <= bytes; i += 256) {
    if constexpr (PREFETCH)
      for (int line = 0; line < 256; line += 64) _mm_prefetch(reinterpret_cast<const char*>(p + i + line + 8192), _MM_HINT_T1);
    a = _mm256_xor_si256(a, _mm256_xor_si256(at(i), at(i + 32)));
    b = _mm256_xor_si256(b, _mm256_xor_si256(at(i + 64), at(i + 96)));
    c = _mm256_xor_si256(c, _mm256_xor_si256(at(i + 128), at(i + 160)));
    d = _mm256_xor_si256(d, _mm256_xor_si256(at(i + 192), at(i + 224)));
  }
  const __m256i r = _mm256_xor_si256(_mm256_xor_si256(a, b), _mm256_xor_si256(c, d));
  return static_cast<std::uint64_t>(_mm256_extract_epi64(r, 0) ^ _mm256_extract_epi64(r, 3));
}
LOWBIT_TARGET_END

template <bool PREFETCH>
std::uint64_t read_all(const std::uint8_t* p, std::int64_t bytes) {
  return lowbit::cpu_supports(SimdPath::AVX512) ? read_all_avx512<PREFETCH>(p, bytes) : read_all_avx2<PREFETCH>(p, bytes);
}

// huge_pages: the buffer comes from the allocator of the packed weights (2 MiB pages where the
// system gives them); otherwise plain 4 KiB pages, the case of a weight buffer from malloc.
void bench_read(benchmark::State& st, std::int64_t bytes, int threads, bool huge_pages, bool prefetch) {
  if (lowbit_bench::skip_unsupported(st, SimdPath::AVX2)) return;
  using Allocator = lowbit::detail::WeightAllocator<std::uint8_t>;
  std::unique_ptr<std::uint8_t[], void (*)(std::uint8_t*)> plain(nullptr, [](std::uint8_t* p) {
    ::operator delete(p, std::align_val_t{64});
  });
  std::vector<std::uint8_t, Allocator> huge;
  if (huge_pages) huge.assign(static_cast<std::size_t>(bytes), 1);
  else {
    plain.reset(static_cast<std::uint8_t*>(::operator new(static_cast<std::size_t>(bytes), std::align_val_t{64})));
    std::memset(plain.get(), 1, static_cast<std::size_t>(bytes));
  }
  const std::uint8_t* buf = huge_pages ? huge.data() : plain.get();
  const std::int64_t per = bytes / threads / 256 * 256;
  for (auto _ : st) {
    lowbit::parallel_for(threads, threads, threads, [&](std::int64_t t0, std::int64_t t1) {
      for (std::int64_t t = t0; t < t1; ++t)
        benchmark::DoNotOptimize(prefetch ? read_all<true>(buf + t * per, per) : read_all<false>(buf + t * per, per));
    });
  }
  st.SetBytesProcessed(st.iterations() * per * threads);
}

struct Entry {
  const char* weight;
  const char* act;  // paired activation format for the weight + activation mode
};
constexpr Entry kEntries[] = {{"mxfp4", "mxint8"},        {"int4_b32_fp16", "int8_b32_fp16"}, {"nvfp4", "int8_b32_fp16"},
                              {"nf4_b64", "int8_b32_fp16"}, {"bfp4_b16", "bfp8_b16"},        {"mxint8", "mxint8"},
                              {"int8_b32_fp16", "int8_b32_fp16"}, {"bfp8_b16", "bfp8_b16"},     {"mxfp8_e4m3", "mxfp8_e4m3"}, {"mxfp8_e5m2", "mxfp8_e5m2"},
                              {"mxfp6_e2m3", "mxint8"},        {"mxfp6_e3m2", "mxint8"},        {"bfp6_b16", "bfp8_b16"}};

template <class F>
void register_format(const F& f, const Entry& e) {
  const Shape square{4096, 4096}, tall{14336, 4096};
  // path "avx2_novnni": the AVX2 path's integer kernel without AVX-VNNI (vpmaddwd)
  auto reg = [&](std::string act, Shape s, std::int64_t n, SimdPath path, bool stream, int threads, bool vnni = true) {
    const std::string name = std::string("matmul/") + e.weight + "/" + (act.empty() ? "w" : act) + "/M" + std::to_string(s.m) + "K" +
                             std::to_string(s.k) + "/N" + std::to_string(n) + "/" + std::string(to_string(path)) +
                             (vnni ? "" : "_novnni") + "/" + (stream ? "stream" : "cache") + "/threads:" + std::to_string(threads);
    benchmark::RegisterBenchmark(name.c_str(),
                                 [=](benchmark::State& st) { bench_panel(st, f, act, s, n, path, stream, threads, vnni); })
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  };
  for (const std::string& act : {std::string(e.act), std::string()})
    for (int t : {1, 2}) {
      for (std::int64_t n : {1, 8, 32}) reg(act, square, n, SimdPath::AVX512, true, t);
      reg(act, square, 1, SimdPath::AVX512, false, t);
      for (std::int64_t n : {128, 512}) reg(act, square, n, SimdPath::AVX512, false, t);
      reg(act, tall, 1, SimdPath::AVX512, true, t);
      reg(act, tall, 512, SimdPath::AVX512, false, t);
    }
  // AVX2: N = 1 from DRAM (1 and 2 threads) and from cache (the L3 share), N = 32 from cache,
  // N = 512 (prefill) from cache against Eigen's N = 512
  for (int t : {1, 2}) reg(e.act, square, 512, SimdPath::AVX2, false, t);
  for (std::int64_t n : {1, 32}) {
    reg(e.act, square, n, SimdPath::AVX2, n == 1, 1);
    reg(e.act, square, n, SimdPath::AVX2, n == 1, 1, false);
  }
  reg(e.act, square, 1, SimdPath::AVX2, false, 1);
  reg(e.act, square, 1, SimdPath::AVX2, true, 2);
  reg(e.act, square, 1, SimdPath::Scalar, false, 1);
  reg("", square, 1, SimdPath::AVX2, true, 1);
  reg("", square, 1, SimdPath::AVX2, false, 1);
  reg("", square, 32, SimdPath::AVX2, false, 1);
  reg("", square, 1, SimdPath::Scalar, false, 1);
}

const int kRegistered = [] {
  for (const Entry& e : kEntries)
    std::visit(
        [&](const auto& f) {
          using F = std::decay_t<decltype(f)>;
          if constexpr (lowbit::is_block_format<F>) register_format(f, e);
        },
        lowbit::Quantizer(e.weight).format());
  for (int t : {1, 2}) {
    for (Shape s : {Shape{4096, 4096}, Shape{14336, 4096}})
      for (std::int64_t n : {1, 8, 32, 128, 512}) {
        const std::string name = "eigen_fp32/M" + std::to_string(s.m) + "K" + std::to_string(s.k) + "/N" + std::to_string(n) +
                                 "/threads:" + std::to_string(t);
        benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& st) { bench_eigen(st, s, n, t); })
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
      }
    for (const bool huge : {true, false}) {
      const std::string pages = huge ? "" : "_4k";
      benchmark::RegisterBenchmark(("read/dram" + pages + "/threads:" + std::to_string(t)).c_str(),
                                   [=](benchmark::State& st) { bench_read(st, dram_read_bytes(), t, huge, true); })
          ->UseRealTime();
      benchmark::RegisterBenchmark(("read/dram_noprefetch" + pages + "/threads:" + std::to_string(t)).c_str(),
                                   [=](benchmark::State& st) { bench_read(st, dram_read_bytes(), t, huge, false); })
          ->UseRealTime();
      benchmark::RegisterBenchmark(("read/l3" + pages + "/threads:" + std::to_string(t)).c_str(),
                                   [=](benchmark::State& st) { bench_read(st, 8ll << 20, t, huge, false); })
          ->UseRealTime();
    }
  }
  return 0;
}();

}  // namespace

BENCHMARK_MAIN();

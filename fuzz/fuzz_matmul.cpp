// The packed matmul on arbitrary small shapes and values, with W as a PackedMatrix (decoded
// tiles) and, where the format has a panel layout, as a PanelMatrix (panel kernels), against
// matmul_reference (exact dot products rounded once): every output within the float bound
// (K + 8) * 2^-23 * (sum_k |w x| + |bias|). The panel kernels must also give the scalar
// path's bits on every SIMD path.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <span>
#include <type_traits>
#include <variant>
#include <vector>

#include "fuzz_formats.hpp"
#include "fuzz_input.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/gemm/matmul.hpp"
#include "lowbit/kernels/dispatch.hpp"
#include "lowbit/quant/registry.hpp"

namespace {

using lowbit::MatrixRef;

// A finite float from two bytes: a signed 8-bit mantissa times 2^(-8..23) (zero included),
// so sums stay far from overflow and the bound stays meaningful.
float value(lowbit_fuzz::FuzzInput& in) {
  const auto m = static_cast<std::int8_t>(in.byte());
  const int e = in.in_range(-8, 23) - 16;
  return std::ldexp(static_cast<float>(m), e);
}

struct Problem {
  std::int64_t n = 0, m = 0, k = 0;
  std::vector<float> x, w, bias;
  lowbit::MatmulOptions opt;
};

[[noreturn]] void report(const char* what, std::int64_t i, std::int64_t j, double got, double want, double bound) {
  std::fprintf(stderr, "%s: y(%lld, %lld) = %.9g, reference %.9g, bound %.3g\n", what, static_cast<long long>(i),
               static_cast<long long>(j), got, want, bound);
  std::abort();
}

template <class F>
void check(const F& fmt, const Problem& p) {
  const auto x = MatrixRef<const float>::row_major(p.x.data(), p.n, p.k);
  const auto wm = MatrixRef<const float>::row_major(p.w.data(), p.m, p.k);
  const std::span<const float> bias(p.bias);
  const auto packed = lowbit::PackedMatrix<F>::pack(fmt, wm);
  auto output = [&] { return std::vector<float>(static_cast<std::size_t>(p.n * p.m)); };
  auto ref_of = [&](std::vector<float>& y) { return MatrixRef<float>::row_major(y.data(), p.n, p.m); };

  std::vector<float> ref = output();
  lowbit::matmul_reference(x, packed, bias, ref_of(ref), p.opt);

  // The values the reference multiplies: decoded W, and X as the activation format makes it.
  const std::vector<float> wd = packed.unpack();
  std::vector<float> xq = p.x;
  if (p.opt.activation)
    p.opt.activation->fake_quant(x, MatrixRef<float>::row_major(xq.data(), p.n, p.k),
                                 lowbit::detail::activation_quant_options(p.opt));
  auto within_bound = [&](const std::vector<float>& y, const char* what) {
    for (std::int64_t i = 0; i < p.n; ++i)
      for (std::int64_t j = 0; j < p.m; ++j) {
        double mag = p.bias.empty() ? 0.0 : std::fabs(static_cast<double>(p.bias[static_cast<std::size_t>(j)]));
        for (std::int64_t c = 0; c < p.k; ++c)
          mag += std::fabs(static_cast<double>(wd[static_cast<std::size_t>(j * p.k + c)]) *
                           static_cast<double>(xq[static_cast<std::size_t>(i * p.k + c)]));
        const double bound = static_cast<double>(p.k + 8) * std::ldexp(1.0, -23) * mag;
        const double got = y[static_cast<std::size_t>(i * p.m + j)], want = ref[static_cast<std::size_t>(i * p.m + j)];
        if (!(std::fabs(got - want) <= bound)) report(what, i, j, got, want, bound);
      }
  };

  std::vector<float> y = output();
  lowbit::matmul(x, packed, bias, ref_of(y), p.opt);
  within_bound(y, "PackedMatrix matmul");

  if (!lowbit::PanelMatrix<F>::supports(fmt, packed.block(), p.k)) return;
  const auto panels = lowbit::PanelMatrix<F>::from_packed(packed);
  lowbit::force_simd_path(lowbit::SimdPath::Scalar);
  std::vector<float> scalar = output();
  lowbit::matmul(x, panels, bias, ref_of(scalar), p.opt);
  within_bound(scalar, "PanelMatrix matmul (scalar)");
  for (const lowbit::SimdPath path : {lowbit::SimdPath::AVX2, lowbit::SimdPath::AVX512}) {
    if (!lowbit::cpu_supports(path)) continue;
    lowbit::force_simd_path(path);
    std::vector<float> ys = output();
    lowbit::matmul(x, panels, bias, ref_of(ys), p.opt);
    for (std::size_t i = 0; i < ys.size(); ++i)
      if (std::bit_cast<std::uint32_t>(ys[i]) != std::bit_cast<std::uint32_t>(scalar[i]))
        report(path == lowbit::SimdPath::AVX2 ? "PanelMatrix matmul, avx2 vs scalar" : "PanelMatrix matmul, avx512 vs scalar",
               static_cast<std::int64_t>(i) / p.m, static_cast<std::int64_t>(i) % p.m, ys[i], scalar[i], 0.0);
  }
  lowbit::clear_forced_simd_path();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  lowbit_fuzz::FuzzInput in(data, size);
  const lowbit::Quantizer wq(lowbit_fuzz::pick(lowbit_fuzz::kMatmulWeightFormats, in.byte()));
  const char* act = lowbit_fuzz::pick(lowbit_fuzz::kMatmulActivationFormats, in.byte());
  Problem p;
  p.n = in.in_range(1, 5);
  p.m = in.in_range(1, 40);
  p.k = in.in_range(1, 160);
  const bool with_bias = (in.byte() & 1) != 0;
  p.opt.threads = 1;
  if (*act != '\0') p.opt.activation = lowbit::Quantizer(act);
  p.x.resize(static_cast<std::size_t>(p.n * p.k));
  p.w.resize(static_cast<std::size_t>(p.m * p.k));
  for (float& v : p.w) v = value(in);
  for (float& v : p.x) v = value(in);
  if (with_bias) {
    p.bias.resize(static_cast<std::size_t>(p.m));
    for (float& v : p.bias) v = value(in);
  }
  std::visit(
      [&](const auto& f) {
        if constexpr (lowbit::is_block_format<std::decay_t<decltype(f)>>) check(f, p);
      },
      wq.format());
  return 0;
}

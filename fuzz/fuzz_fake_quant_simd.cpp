// Fake-quant of arbitrary float bit patterns on every SIMD path this CPU has, held to the
// scalar path bit for bit (any NaN equals any NaN: payloads are not specified). The input
// picks the format, rounding, seed and shape; the rest are the floats. A NaN that the format
// cannot encode must be refused on every path.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "fuzz_formats.hpp"
#include "fuzz_input.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/kernels/dispatch.hpp"
#include "lowbit/quant/registry.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  lowbit_fuzz::FuzzInput in(data, size);
  const char* name = lowbit_fuzz::pick(lowbit_fuzz::kFakeQuantFormats, in.byte());
  lowbit::QuantOptions opt;
  opt.rounding = static_cast<lowbit::Rounding>(in.in_range(0, 3));
  opt.seed = in.u64();
  opt.threads = 1;
  const std::int64_t rows = in.in_range(1, 4);
  // The floats: the rest of the input, 4 bytes each (at least one value).
  const std::size_t n = std::max<std::size_t>(in.remaining() / 4, 1);
  const std::int64_t cols = std::max<std::int64_t>(static_cast<std::int64_t>(n) / rows, 1);
  std::vector<float> x(static_cast<std::size_t>(rows * cols));
  for (float& v : x) v = std::bit_cast<float>(in.u32());

  const lowbit::Quantizer q(name);
  const auto xin = lowbit::MatrixRef<const float>::row_major(x.data(), rows, cols);
  // A NaN into a format without NaN is refused (lowbit::Error) on every path alike: an empty
  // result stands for the refusal.
  auto run = [&](lowbit::SimdPath p) {
    lowbit::force_simd_path(p);
    std::vector<float> y(x.size());
    try {
      q.fake_quant(xin, lowbit::MatrixRef<float>::row_major(y.data(), rows, cols), opt);
    } catch (const lowbit::Error&) {
      y.clear();
    }
    return y;
  };
  const std::vector<float> ref = run(lowbit::SimdPath::Scalar);
  for (const lowbit::SimdPath p : {lowbit::SimdPath::AVX2, lowbit::SimdPath::AVX512}) {
    if (!lowbit::cpu_supports(p)) continue;
    const std::vector<float> y = run(p);
    if (y.size() != ref.size()) {
      std::fprintf(stderr, "%s: refused on %s but not on scalar, or the other way round\n", name,
                   lowbit::to_string(p).data());
      std::abort();
    }
    for (std::size_t i = 0; i < ref.size(); ++i) {
      if (std::isnan(ref[i]) && std::isnan(y[i])) continue;
      if (std::bit_cast<std::uint32_t>(ref[i]) != std::bit_cast<std::uint32_t>(y[i])) {
        std::fprintf(stderr, "%s, rounding %d: x[%zu] = %a (0x%08x) gives %a on scalar, %a on %s\n", name,
                     static_cast<int>(opt.rounding), i, static_cast<double>(x[i]),
                     std::bit_cast<std::uint32_t>(x[i]), static_cast<double>(ref[i]), static_cast<double>(y[i]),
                     lowbit::to_string(p).data());
        std::abort();
      }
    }
  }
  lowbit::clear_forced_simd_path();
  return 0;
}

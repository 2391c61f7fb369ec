// The format-name parser: any string either names a format or throws lowbit::Error. A name
// that parses must give a usable format: fake-quant runs, and for formats with codes,
// dequantize(quantize(x)) gives fake_quant(x)'s bits.
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/quant/registry.hpp"

namespace {

// Values across the range of every format: zeros, subnormals, normals, huge, Inf and NaN.
std::vector<float> probe_values() {
  std::vector<float> v;
  for (int e = -140; e <= 127; e += 9) {
    v.push_back(std::ldexp(1.375f, e));
    v.push_back(-std::ldexp(1.8125f, e));
  }
  v.push_back(0.0f);
  v.push_back(-0.0f);
  v.push_back(INFINITY);
  v.push_back(-INFINITY);
  v.push_back(NAN);
  while (v.size() % 64 != 0) v.push_back(static_cast<float>(v.size()) * 0.37f - 9.0f);
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 256) return 0;  // names are short; longer inputs only repeat what these cover
  const std::string_view name(reinterpret_cast<const char*>(data), size);
  static const std::vector<float> x = probe_values();
  try {
    const lowbit::Quantizer q(name);
    lowbit::QuantOptions opt;
    opt.threads = 1;
    const auto in = lowbit::MatrixRef<const float>::row_major(x.data(), 2, static_cast<std::int64_t>(x.size() / 2));
    std::vector<float> fq(x.size());
    q.fake_quant(in, lowbit::MatrixRef<float>::row_major(fq.data(), in.rows, in.cols), opt);
    if (!q.info().has_codes) return 0;
    const lowbit::QuantizedTensor qt = q.quantize(in, opt);
    std::vector<float> dq(x.size());
    q.dequantize(qt, lowbit::MatrixRef<float>::row_major(dq.data(), in.rows, in.cols));
    for (std::size_t i = 0; i < x.size(); ++i) {
      if (std::isnan(fq[i]) && std::isnan(dq[i])) continue;
      if (std::bit_cast<std::uint32_t>(fq[i]) != std::bit_cast<std::uint32_t>(dq[i])) std::abort();
    }
  } catch (const lowbit::Error&) {
    // a refused name or value is the documented outcome
  }
  return 0;
}

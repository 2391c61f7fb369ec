// Arbitrary bytes as a packed matrix: the first byte picks the format (fuzz_formats.hpp),
// the rest is what PackedMatrix::serialize would have written. Deserialize accepts it or
// throws lowbit::Error and reads nothing outside the bytes; what it accepts unpacks to the
// values dequantize gives for the same codes, and serializes back to the same matrix.
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <span>
#include <vector>

#include "fuzz_formats.hpp"
#include "fuzz_input.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/pack/any_packed_matrix.hpp"
#include "lowbit/quant/registry.hpp"

namespace {

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::bit_cast<std::uint32_t>(a[i]) != std::bit_cast<std::uint32_t>(b[i]) && !(std::isnan(a[i]) && std::isnan(b[i])))
      return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const char* name = lowbit_fuzz::pick(lowbit_fuzz::kPackedFormats, data[0]);
  const auto bytes = lowbit_fuzz::as_bytes(data + 1, size - 1);
  std::optional<lowbit::AnyPackedMatrix> parsed;
  try {
    parsed = lowbit::AnyPackedMatrix::deserialize(name, bytes);
  } catch (const lowbit::Error&) {
    return 0;
  }
  const lowbit::AnyPackedMatrix& m = *parsed;
  const std::vector<float> w = m.unpack();
  // The same codes through the generic dequantize.
  const lowbit::Quantizer q(name);
  std::vector<float> dq(w.size());
  q.dequantize(m.to_quantized(), lowbit::MatrixRef<float>::row_major(dq.data(), m.rows(), m.cols()));
  if (!same_bits(w, dq)) std::abort();
  // Round trip through bytes.
  const lowbit::AnyPackedMatrix again = lowbit::AnyPackedMatrix::deserialize(name, m.serialize());
  if (!same_bits(w, again.unpack())) std::abort();
  return 0;
}

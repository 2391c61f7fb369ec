// The .npy reader on arbitrary bytes: it parses or throws lowbit::Error, never reads outside
// the input. What parses converts to a float matrix (or is refused with an Error) and
// survives serialize -> parse unchanged.
#include <cstdint>
#include <cstdlib>

#include "fuzz_input.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/io/npy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace npy = lowbit::npy;
  const auto bytes = lowbit_fuzz::as_bytes(data, size);
  npy::NpyArray a;
  try {
    a = npy::parse(bytes, "fuzz.npy");
  } catch (const lowbit::Error&) {
    return 0;
  }
  try {
    const npy::FloatMatrix m = npy::to_float32_matrix(a, "fuzz.npy");
    if (static_cast<std::int64_t>(m.values.size()) != m.rows * m.cols) std::abort();
  } catch (const lowbit::Error&) {
  }
  const npy::NpyArray b = npy::parse(npy::serialize(a, "fuzz.npy"), "fuzz.npy (rewritten)");
  if (b.dtype != a.dtype || b.shape != a.shape || b.fortran_order != a.fortran_order || b.data != a.data) std::abort();
  return 0;
}

// The safetensors reader (and the packed files stored in it) on arbitrary bytes: a file
// opens or throws lowbit::Error; every tensor of one that opens converts to float, and every
// packed tensor loads and unpacks or is refused with an Error.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "fuzz_input.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/io/packed_safetensors.hpp"
#include "lowbit/io/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace st = lowbit::safetensors;
  try {
    const st::File f = st::File::from_bytes(lowbit_fuzz::as_bytes(data, size), "fuzz.safetensors");
    for (const st::TensorView& t : f.tensors()) {
      if (t.data.size() != st::TensorSpec{t.name, t.dtype, t.shape}.bytes()) std::abort();
      const std::vector<float> v = st::to_float(t);
      if (static_cast<std::int64_t>(v.size()) != t.numel()) std::abort();
    }
  } catch (const lowbit::Error&) {
    return 0;
  }
  try {
    const lowbit::packed::PackedFile pf = lowbit::packed::PackedFile::from_bytes(lowbit_fuzz::as_bytes(data, size));
    for (const st::TensorView& t : pf.file().tensors()) {
      if (!pf.format(t.name)) continue;
      try {
        const lowbit::AnyPackedMatrix m = pf.load(t.name);
        const std::vector<float> w = m.unpack();
        if (static_cast<std::int64_t>(w.size()) != m.rows() * m.cols()) std::abort();
      } catch (const lowbit::Error&) {
      }
    }
  } catch (const lowbit::Error&) {
  }
  return 0;
}

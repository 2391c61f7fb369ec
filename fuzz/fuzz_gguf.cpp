// The GGUF reader on arbitrary bytes: a file opens or throws lowbit::Error; every tensor of
// a type lowbit converts (F32, F16, BF16, Q8_0, Q4_0, Q4_1, MXFP4) converts to float.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "fuzz_input.hpp"
#include "lowbit/core/error.hpp"
#include "lowbit/io/gguf.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace gguf = lowbit::gguf;
  try {
    const gguf::File f = gguf::File::from_bytes(lowbit_fuzz::as_bytes(data, size), "fuzz.gguf");
    for (const gguf::TensorInfo& t : f.tensors()) {
      if (!lowbit::ggml::traits(t.type).has_value()) continue;
      const std::vector<float> v = gguf::to_float(t);
      if (v.size() != t.numel()) std::abort();
    }
  } catch (const lowbit::Error&) {
  }
  return 0;
}

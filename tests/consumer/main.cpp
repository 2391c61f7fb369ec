// A user program built against the installed lowbit package.
#include <lowbit/lowbit.hpp>

#include <cstdio>
#include <vector>

int main() {
  std::vector<float> x{0.1f, -2.5f, 3.0f, 7.0f};
  const std::vector<float> y = lowbit::fake_quant(lowbit::MXFP4{}, std::span<const float>(x));
  // block max 7 -> scale 2^(2-2) = 1; 7 saturates to 6, 2.5 ties to 2 (even), 0.1 -> 0
  const bool ok = y[0] == 0.0f && y[1] == -2.0f && y[2] == 3.0f && y[3] == 6.0f;
  std::printf("consumer: %s\n", ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}

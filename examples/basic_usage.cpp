// The smallest useful lowbit program: fake-quantise a vector with a compile-time format and
// with a format chosen by name, then look at the codes and the error.
#include <lowbit/lowbit.hpp>

#include <cstdio>
#include <vector>

int main() {
  std::vector<float> x;
  for (int i = 0; i < 64; ++i) x.push_back(0.05f * static_cast<float>(i - 32) + (i == 7 ? 3.0f : 0.0f));

  // 1. A compile-time format (an alias type): OCP MXFP4, blocks of 32, E8M0 scales.
  const std::vector<float> y = lowbit::fake_quant(lowbit::MXFP4{}, std::span<const float>(x));

  // 2. A format chosen at run time by name, with stochastic rounding.
  const lowbit::Quantizer q("bfp6_b16");
  lowbit::QuantOptions opt;
  opt.rounding = lowbit::Rounding::Stochastic;
  opt.seed = 42;
  const std::vector<float> z = q.fake_quant(std::span<const float>(x), opt);

  // 3. Codes and block scales, then back.
  const auto in = lowbit::MatrixRef<const float>::row_major(x.data(), 1, 64);
  const lowbit::QuantizedTensor qt = lowbit::quantize(lowbit::MXFP4{}, in);
  std::vector<float> back(64);
  lowbit::dequantize(lowbit::MXFP4{}, qt, lowbit::MatrixRef<float>::row_major(back.data(), 1, 64));

  const auto e1 = lowbit::error_stats(in, lowbit::MatrixRef<const float>::row_major(y.data(), 1, 64));
  const auto e2 = lowbit::error_stats(in, lowbit::MatrixRef<const float>::row_major(z.data(), 1, 64));
  std::printf("mxfp4:    %.2f dB SQNR, scale of block 0 = 2^%d\n", e1.sqnr_db, lowbit::E8M0::exponent(qt.headers[0].scale));
  std::printf("bfp6_b16: %.2f dB SQNR (%.2f bits per element)\n", e2.sqnr_db, q.info().bits_per_element);
  return back == y ? 0 : 1;  // dequantize(quantize(x)) is fake_quant(x), bit for bit
}

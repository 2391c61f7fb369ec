// GPTQ on a 4096 x 4096 layer (the size of a 7B model's attention projections): seconds per
// layer from a given Hessian (damping, Cholesky, the column loop with lazy batch updates),
// and the Hessian itself from 2048 calibration inputs, for an integer and an MX format.
//
//   build/release/bench/lowbit-bench-algo
//
// Case names: gptq/<format>/<rows>x<cols>[/act_order], hessian/<n>x<cols>.
#include <benchmark/benchmark.h>
#include <lowbit/algo/gptq.hpp>
#include <lowbit/quant/registry.hpp>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

namespace {

constexpr std::int64_t kDim = 4096;
constexpr std::int64_t kInputs = 2048;

std::vector<float> gaussian(std::int64_t n, unsigned seed, float scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, scale);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (float& e : v) e = g(rng);
  return v;
}

// Inputs with channels of different sizes, as activations have.
const std::vector<float>& inputs() {
  static const std::vector<float> x = [] {
    std::vector<float> v = gaussian(kInputs * kDim, 1, 1.0f);
    for (std::int64_t r = 0; r < kInputs; ++r)
      for (std::int64_t c = 0; c < kDim; ++c) v[static_cast<std::size_t>(r * kDim + c)] *= 0.25f + static_cast<float>(c % 13) * 0.2f;
    return v;
  }();
  return x;
}

const Eigen::MatrixXd& hessian() {
  static const Eigen::MatrixXd h =
      lowbit::algo::input_hessian(lowbit::MatrixRef<const float>::row_major(inputs().data(), kInputs, kDim));
  return h;
}

void bench_gptq(benchmark::State& st, std::string format, bool act_order) {
  const std::vector<float> w = gaussian(kDim * kDim, 2, 0.02f);
  const auto wm = lowbit::MatrixRef<const float>::row_major(w.data(), kDim, kDim);
  const Eigen::MatrixXd& h = hessian();
  lowbit::algo::GptqOptions opt;
  opt.act_order = act_order;
  const lowbit::Quantizer q(format);
  for (auto _ : st) {
    std::visit(
        [&](const auto& f) {
          if constexpr (lowbit::is_block_format<std::decay_t<decltype(f)>>) {
            auto res = lowbit::algo::gptq(f, wm, h, opt);
            benchmark::DoNotOptimize(res.weight.data());
          }
        },
        q.format());
  }
}

void bench_hessian(benchmark::State& st) {
  const auto x = lowbit::MatrixRef<const float>::row_major(inputs().data(), kInputs, kDim);
  for (auto _ : st) {
    Eigen::MatrixXd h = lowbit::algo::input_hessian(x);
    benchmark::DoNotOptimize(h.data());
  }
}

const bool registered = [] {
  const std::string shape = std::to_string(kDim) + "x" + std::to_string(kDim);
  for (const char* f : {"int4_b128_bf16", "mxfp4"})
    benchmark::RegisterBenchmark(("gptq/" + std::string(f) + "/" + shape).c_str(), bench_gptq, std::string(f), false)
        ->Unit(benchmark::kSecond)
        ->Iterations(1);
  benchmark::RegisterBenchmark(("gptq/mxfp4/" + shape + "/act_order").c_str(), bench_gptq, std::string("mxfp4"), true)
      ->Unit(benchmark::kSecond)
      ->Iterations(1);
  benchmark::RegisterBenchmark(("hessian/" + std::to_string(kInputs) + "x" + std::to_string(kDim)).c_str(), bench_hessian)
      ->Unit(benchmark::kSecond)
      ->Iterations(1);
  return true;
}();

}  // namespace

BENCHMARK_MAIN();

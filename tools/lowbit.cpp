// The `lowbit` command-line tool.
//   lowbit formats [--csv]                      every standard format with its bits and range
//   lowbit info                                 the SIMD path and thread count in use
//   lowbit quant --format NAME [--round MODE] [--seed S] [--axis 0|1] [--block B] IN.npy OUT.npy
//                                               fake-quantise a 2-D float .npy (float32 out)
#include <CLI/CLI.hpp>
#include <lowbit/io/npy.hpp>
#include <lowbit/lowbit.hpp>

#include <cstdio>
#include <exception>
#include <string>

namespace {

int list_formats(bool csv) {
  if (csv) std::printf("name,family,bits_per_element,element_bits,scale_bits,block,max,min_normal,min_subnormal\n");
  else
    std::printf("%-18s %-18s %9s %5s %5s %6s %12s %12s %12s\n", "name", "family", "bits/elem", "elem", "scale", "block",
                "max", "min normal", "min subnorm");
  for (const std::string& n : lowbit::standard_format_names()) {
    const lowbit::FormatInfo i = lowbit::Quantizer(n).info();
    const std::string block = i.block_size == lowbit::kPerTensor ? "tensor"
                              : i.block_size == lowbit::kPerChannel ? "row"
                              : i.block_size == 0 ? "-" : std::to_string(i.block_size);
    if (csv)
      std::printf("%s,%s,%.6g,%d,%d,%s,%.9g,%.9g,%.9g\n", i.name.c_str(), i.family.c_str(), i.bits_per_element,
                  i.element_bits, i.scale_bits, block.c_str(), i.max_value, i.min_normal, i.min_subnormal);
    else
      std::printf("%-18s %-18s %9.4g %5d %5d %6s %12.6g %12.6g %12.6g\n", i.name.c_str(), i.family.c_str(),
                  i.bits_per_element, i.element_bits, i.scale_bits, block.c_str(), i.max_value, i.min_normal,
                  i.min_subnormal);
  }
  std::printf("%sother names: %s\n", csv ? "# " : "\n", lowbit::format_grammar().c_str());
  return 0;
}

struct QuantArgs {
  std::string format, round = "even", in, out;
  std::uint64_t seed = 0;
  int axis = 1;
  std::int64_t block = 0;
};

int quant(const QuantArgs& a) {
  const lowbit::Quantizer q(a.format);
  lowbit::npy::FloatMatrix m = lowbit::npy::read_float32_matrix(a.in);
  lowbit::QuantOptions opt;
  opt.rounding = lowbit::parse_rounding(a.round);
  opt.seed = a.seed;
  opt.blocking = lowbit::Blocking::along(a.axis, a.block);
  std::vector<float> out(m.values.size());
  const auto in = lowbit::MatrixRef<const float>::row_major(m.values.data(), m.rows, m.cols);
  const auto outref = lowbit::MatrixRef<float>::row_major(out.data(), m.rows, m.cols);
  q.fake_quant(in, outref, opt);
  lowbit::npy::write_float32(a.out, m.rows, m.cols, out.data());
  const lowbit::ErrorStats e = lowbit::error_stats(in, outref);
  std::printf("%s: %lld x %lld, %.4g bits/element, SQNR %.2f dB, max error %.6g -> %s\n", q.name().c_str(),
              static_cast<long long>(m.rows), static_cast<long long>(m.cols), q.info().bits_per_element, e.sqnr_db,
              e.max_abs_error, a.out.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"lowbit: low-bit number formats for LLM inference"};
  app.require_subcommand(1);

  bool csv = false;
  CLI::App* formats = app.add_subcommand("formats", "List the standard formats: bits per element, range");
  formats->add_flag("--csv", csv, "CSV instead of a table");
  CLI::App* info = app.add_subcommand("info", "Show the SIMD path and thread count lowbit uses here");

  QuantArgs qa;
  CLI::App* qc = app.add_subcommand("quant", "Fake-quantise a 2-D float .npy (quantise, then dequantise)");
  qc->add_option("--format,-f", qa.format, "format name (see `lowbit formats`)")->required();
  qc->add_option("--round", qa.round, "rounding: even (default), away, zero, stochastic")
      ->check(CLI::IsMember({"even", "away", "zero", "stochastic"}));
  qc->add_option("--seed", qa.seed, "seed of stochastic rounding");
  qc->add_option("--axis", qa.axis, "axis the blocks run along (default 1, the last)")->check(CLI::IsMember({0, 1}));
  qc->add_option("--block", qa.block, "block size (default: the format's)")->check(CLI::NonNegativeNumber);
  qc->add_option("IN", qa.in, "input .npy (float32/float16/float64/int8/uint8, 1-D or 2-D)")->required();
  qc->add_option("OUT", qa.out, "output .npy (float32)")->required();

  CLI11_PARSE(app, argc, argv);
  try {
    if (formats->parsed()) return list_formats(csv);
    if (info->parsed()) {
      std::printf("simd path: %s (best on this CPU: %s; set LOWBIT_SIMD=scalar|avx2|avx512 to force)\nthreads: %d\n",
                  std::string(lowbit::to_string(lowbit::active_simd_path())).c_str(),
                  std::string(lowbit::to_string(lowbit::best_simd_path())).c_str(), lowbit::num_threads());
      return 0;
    }
    if (qc->parsed()) return quant(qa);
  } catch (const lowbit::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lowbit: %s\n", e.what());
    return 1;
  }
  return 0;
}

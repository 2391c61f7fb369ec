// The `lowbit` command-line tool.
//   lowbit formats [--csv]                      every standard format with its bits and range
//   lowbit info                                 the SIMD path and thread count in use
//   lowbit quant --format NAME [--round MODE] [--seed S] [--axis 0|1] [--block B] IN.npy OUT.npy
//                                               fake-quantise a 2-D float .npy (float32 out)
//   lowbit inspect FILE                         tensors, dtypes, shapes, sizes and statistics
//   lowbit compare FILE --formats a,b,c [--tensors REGEX] [--output table|md|csv|json] [--plot F.svg]
//                                               what each format costs and loses, tensor by tensor
//   lowbit quantize IN OUT --format NAME [--skip REGEX]
//                                               GGUF (ggml block types) or lowbit packed safetensors
// FILE is a .safetensors file, a sharded model's *.index.json (or its directory), a GGUF file
// or a lowbit packed file. Exit codes: 0 success, 1 bad input, 2 usage error.
#include <CLI/CLI.hpp>
#include <lowbit/io/npy.hpp>
#include <lowbit/lowbit.hpp>
#include <lowbit/quant/saturation.hpp>

#include <lowbit/io/ggml_blocks.hpp>
#include <lowbit/io/gguf.hpp>
#include <lowbit/io/packed_safetensors.hpp>
#include <lowbit/io/safetensors.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cmath>
#include <cstdio>
#include <exception>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

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


// ---- tensor files ---------------------------------------------------------------------------

namespace st = lowbit::safetensors;
namespace gguf = lowbit::gguf;

// One tensor of an input file, whatever the file type.
struct SourceTensor {
  std::string name;
  std::string dtype;                // as the file names it (F32, BF16, Q4_K, nvfp4, ...)
  std::vector<std::int64_t> shape;  // row-major, last axis = row length
  std::uint64_t bytes = 0;
  bool to_float = false;            // lowbit can read it as floats
  std::int64_t numel() const {
    std::int64_t n = 1;
    for (std::int64_t d : shape) n *= d;
    return n;
  }
};

// An input file: a safetensors model (one file or shards), a lowbit packed file or a GGUF.
class Source {
 public:
  explicit Source(const std::string& path) : path_(path) {
    if (is_gguf(path)) {
      gguf_ = std::make_unique<gguf::File>(gguf::File::open(path));
      for (const gguf::TensorInfo& t : gguf_->tensors())
        tensors_.push_back({t.name, gguf::type_name(t.type), t.shape(), t.data.size(), lowbit::ggml::traits(t.type).has_value()});
      kind_ = "GGUF v" + std::to_string(gguf_->version());
      return;
    }
    model_ = std::make_unique<st::Model>(st::Model::open(path));
    const auto& md = model_->metadata();
    const auto f = md.find("format");
    if (model_->files().size() == 1 && f != md.end() && f->second == lowbit::packed::kFileFormat)
      packed_ = std::make_unique<lowbit::packed::PackedFile>(lowbit::packed::PackedFile::open(model_->files()[0].path()));
    for (const auto& e : model_->entries()) {
      const st::TensorView& t = *e.tensor;
      SourceTensor s{t.name, std::string(st::dtype_name(t.dtype)), t.shape, t.data.size(), st::is_float(t.dtype)};
      if (packed_) {
        if (const auto fmt = packed_->format(t.name)) {
          s.dtype = *fmt;
          s.shape = packed_->shape(t.name);
          s.to_float = true;
        }
      }
      tensors_.push_back(std::move(s));
    }
    kind_ = packed_ ? "lowbit packed safetensors"
                    : "safetensors" + (model_->files().size() > 1 ? " (" + std::to_string(model_->files().size()) + " shards)" : "");
  }

  static bool is_gguf(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    char m[4] = {};
    return f.read(m, 4) && std::string(m, 4) == "GGUF";
  }

  const std::string& kind() const { return kind_; }
  const std::vector<SourceTensor>& tensors() const { return tensors_; }
  const gguf::File* gguf_file() const { return gguf_.get(); }
  std::map<std::string, std::string> st_metadata() const { return model_ ? model_->metadata() : std::map<std::string, std::string>{}; }
  std::size_t metadata_count() const { return gguf_ ? gguf_->metadata().size() : st_metadata().size(); }

  // The tensor's values as floats (dequantised when stored quantised).
  std::vector<float> read(std::size_t i) const {
    if (gguf_) return gguf::to_float(gguf_->tensors()[i]);
    const auto& e = model_->entries()[i];
    if (packed_ && packed_->format(e.tensor->name)) return packed_->load(e.tensor->name).unpack();
    return st::to_float(*e.tensor);
  }
  // The raw bytes (copied as they are when a tensor is kept).
  std::span<const std::byte> raw(std::size_t i) const {
    return gguf_ ? gguf_->tensors()[i].data : model_->entries()[i].tensor->data;
  }
  std::uint32_t gguf_type(std::size_t i) const { return gguf_->tensors()[i].type; }
  std::optional<st::Dtype> st_dtype(std::size_t i) const {
    if (gguf_ || (packed_ && packed_->format(tensors_[i].name))) return std::nullopt;
    return model_->entries()[i].tensor->dtype;
  }
  // Streaming: the pages of a processed tensor can go.
  void release(std::size_t i) const {
    if (gguf_) gguf_->release(gguf_->tensors()[i]);
    else model_->release(model_->entries()[i]);
  }

 private:
  std::string path_, kind_;
  std::unique_ptr<gguf::File> gguf_;
  std::unique_ptr<st::Model> model_;
  std::unique_ptr<lowbit::packed::PackedFile> packed_;
  std::vector<SourceTensor> tensors_;
};

// rows x cols view of a shape: every leading axis is a row, the last axis the row.
std::pair<std::int64_t, std::int64_t> matrix_of(const std::vector<std::int64_t>& shape) {
  return lowbit::packed::matrix_shape(shape);
}

std::string human_bytes(double b) {
  const char* unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024.0 && u < 4) { b /= 1024.0; ++u; }
  char s[32];
  std::snprintf(s, sizeof s, u == 0 ? "%.0f %s" : "%.1f %s", b, unit[u]);
  return s;
}

std::string shape_str(const std::vector<std::int64_t>& s) { return st::shape_string(s); }

// Tensors done, bytes/s and time left on a terminal (stderr); silent when not a terminal.
class Progress {
 public:
  Progress(std::size_t total_tensors, double total_bytes)
      : n_(total_tensors), bytes_(total_bytes), on_(::isatty(2) != 0), t0_(std::chrono::steady_clock::now()) {}
  void step(double bytes) {
    ++done_;
    done_bytes_ += bytes;
    if (!on_) return;
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    const double rate = secs > 0 ? done_bytes_ / secs : 0.0;
    const double left = rate > 0 ? (bytes_ - done_bytes_) / rate : 0.0;
    const int width = 30, fill = n_ ? static_cast<int>(width * done_ / n_) : width;
    std::fprintf(stderr, "\r[%s%s] %zu/%zu tensors  %s/s  %ds left   ", std::string(static_cast<std::size_t>(fill), '#').c_str(),
                 std::string(static_cast<std::size_t>(width - fill), '.').c_str(), done_, n_, human_bytes(rate).c_str(),
                 static_cast<int>(left + 0.5));
    if (done_ == n_) std::fprintf(stderr, "\r%*s\r", 90, "");
    std::fflush(stderr);
  }

 private:
  std::size_t n_, done_ = 0;
  double bytes_, done_bytes_ = 0;
  bool on_;
  std::chrono::steady_clock::time_point t0_;
};

// ---- inspect ----------------------------------------------------------------------------------

struct TensorStats {
  double absmax = 0, mean = 0, std = 0, kurtosis = 0;
  double outlier_channels = -1;  // share of input channels (columns) whose absmax is over
                                 // 3x the median column absmax; -1 for 1-D tensors
  std::int64_t nonfinite = 0;
};

TensorStats tensor_stats(const std::vector<float>& v, std::int64_t rows, std::int64_t cols) {
  TensorStats s;
  double sum = 0;
  std::int64_t n = 0;
  for (float x : v)
    if (std::isfinite(x)) { sum += x; ++n; s.absmax = std::max(s.absmax, static_cast<double>(std::fabs(x))); }
  s.nonfinite = static_cast<std::int64_t>(v.size()) - n;
  if (n == 0) return s;
  s.mean = sum / static_cast<double>(n);
  double m2 = 0, m4 = 0;
  for (float x : v)
    if (std::isfinite(x)) {
      const double d = x - s.mean, d2 = d * d;
      m2 += d2;
      m4 += d2 * d2;
    }
  m2 /= static_cast<double>(n);
  m4 /= static_cast<double>(n);
  s.std = std::sqrt(m2);
  s.kurtosis = m2 > 0 ? m4 / (m2 * m2) : 0.0;  // Pearson's: 3 for a Gaussian
  if (rows > 1 && cols > 1) {
    std::vector<double> col(static_cast<std::size_t>(cols), 0.0);
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t c = 0; c < cols; ++c) {
        const float x = v[static_cast<std::size_t>(r * cols + c)];
        if (std::isfinite(x)) col[static_cast<std::size_t>(c)] = std::max(col[static_cast<std::size_t>(c)], static_cast<double>(std::fabs(x)));
      }
    std::vector<double> sorted = col;
    std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(sorted.size() / 2), sorted.end());
    const double median = sorted[sorted.size() / 2];
    std::int64_t out = 0;
    for (double a : col) out += a > 3.0 * median;
    s.outlier_channels = static_cast<double>(out) / static_cast<double>(cols);
  }
  return s;
}

int inspect(const std::string& path) {
  const Source src(path);
  std::uint64_t total_bytes = 0;
  std::int64_t total_elems = 0;
  for (const auto& t : src.tensors()) { total_bytes += t.bytes; total_elems += t.numel(); }
  std::printf("%s: %s, %zu tensors, %lld elements, %s of tensor data, %zu metadata entries\n", path.c_str(),
              src.kind().c_str(), src.tensors().size(), static_cast<long long>(total_elems),
              human_bytes(static_cast<double>(total_bytes)).c_str(), src.metadata_count());
  if (const gguf::File* g = src.gguf_file())
    for (const auto& kv : g->metadata()) std::printf("  %s = %s\n", kv.key.c_str(), kv.value.repr().c_str());
  else
    for (const auto& [k, v] : src.st_metadata()) std::printf("  %s = %s\n", k.c_str(), v.c_str());
  std::printf("%-40s %-14s %-18s %10s %11s %11s %9s %9s\n", "tensor", "dtype", "shape", "size", "absmax", "std",
              "kurtosis", "outl.ch");
  Progress progress(src.tensors().size(), static_cast<double>(total_bytes));
  for (std::size_t i = 0; i < src.tensors().size(); ++i) {
    const SourceTensor& t = src.tensors()[i];
    std::string stats = "          -           -         -         -";
    if (t.to_float) {
      const auto [rows, cols] = matrix_of(t.shape);
      const TensorStats s = tensor_stats(src.read(i), rows, cols);
      char b[128];
      char outl[16] = "-";
      if (s.outlier_channels >= 0) std::snprintf(outl, sizeof outl, "%.2f%%", 100.0 * s.outlier_channels);
      std::snprintf(b, sizeof b, "%11.4g %11.4g %9.3f %9s", s.absmax, s.std, s.kurtosis, outl);
      stats = b;
      if (s.nonfinite) stats += "  (" + std::to_string(s.nonfinite) + " NaN/Inf)";
    }
    std::printf("%-40s %-14s %-18s %10s %s\n", t.name.c_str(), t.dtype.c_str(), shape_str(t.shape).c_str(),
                human_bytes(static_cast<double>(t.bytes)).c_str(), stats.c_str());
    src.release(i);
    progress.step(static_cast<double>(t.bytes));
  }
  return 0;
}

// ---- compare ----------------------------------------------------------------------------------

struct FormatResult {
  double bits = 0, sqnr = 0, mse = 0, max_err = 0;
  double signal = 0, noise = 0;  // sums of x^2 and (x - q)^2, for the weighted summary
  std::int64_t saturated = -1;   // -1: not known (formats without codes)
};

struct TensorResult {
  std::string name;
  std::int64_t elements = 0;
  std::vector<FormatResult> by_format;
};

// Quantises one rows x cols tensor in one format and measures what it loses, including how
// many values were clipped (quant/saturation.hpp).
FormatResult measure(const lowbit::Quantizer& q, const std::vector<float>& x, std::int64_t rows, std::int64_t cols,
                     const lowbit::QuantOptions& opt) {
  FormatResult r;
  const auto in = lowbit::MatrixRef<const float>::row_major(x.data(), rows, cols);
  std::vector<float> y(x.size());
  const auto out = lowbit::MatrixRef<float>::row_major(y.data(), rows, cols);
  std::visit(
      [&](const auto& f) {
        using F = std::decay_t<decltype(f)>;
        if constexpr (lowbit::is_block_format<F>) {
          const lowbit::BlockGrid grid = lowbit::detail::make_grid(f, lowbit::Blocking::along(1, 0), rows, cols);
          const lowbit::Blocking b = grid.blocking();
          const std::int64_t block = b.kind == lowbit::Blocking::Kind::PerTensor ? rows * cols : b.block;
          r.bits = f.bits_per_element(block);
          r.saturated = lowbit::quantization_error(f, in, out, opt).saturated;
        } else {
          r.bits = q.info().bits_per_element;
          q.fake_quant(in, out, opt);
        }
      },
      q.format());
  const lowbit::ErrorStats e = lowbit::error_stats(in, out);
  r.sqnr = e.sqnr_db;
  r.mse = e.mse;
  r.max_err = e.max_abs_error;
  for (std::size_t i = 0; i < x.size(); ++i)
    if (std::isfinite(x[i])) r.signal += static_cast<double>(x[i]) * x[i];
  r.noise = e.mse * static_cast<double>(e.count);
  return r;
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> v;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) v.push_back(item);
  return v;
}

std::regex make_regex(const std::string& pattern, const char* option) {
  try {
    return std::regex(pattern, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    lowbit::detail::fail(option, "bad regular expression '", pattern, "': ", e.what());
  }
}

std::string fmt_num(double v, const char* f = "%.4g") {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char b[40];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

// SQNR (dB) against bits per element, one point per format, the Pareto front (no other
// format has fewer-or-equal bits and a higher-or-equal SQNR) filled and joined.
std::string svg_plot(const std::vector<std::string>& names, const std::vector<FormatResult>& s) {
  const double W = 720, H = 460, L = 70, R = 30, T = 40, B = 60;
  double xmin = 1e300, xmax = -1e300, ymin = 1e300, ymax = -1e300;
  for (const auto& r : s) {
    xmin = std::min(xmin, r.bits);
    xmax = std::max(xmax, r.bits);
    if (std::isfinite(r.sqnr)) { ymin = std::min(ymin, r.sqnr); ymax = std::max(ymax, r.sqnr); }
  }
  if (ymin > ymax) { ymin = 0; ymax = 1; }
  const double ycap = ymax + 0.1 * std::max(1.0, ymax - ymin);  // where "exact" (infinite SQNR) is drawn
  const double x0 = std::floor(xmin) - 0.5, x1 = std::ceil(xmax) + 0.5;
  const double y0 = std::floor(ymin - 0.05 * std::max(1.0, ymax - ymin)), y1 = std::ceil(ycap + 1);
  auto px = [&](double v) { return L + (v - x0) / (x1 - x0) * (W - L - R); };
  auto py = [&](double v) { return H - B - (std::min(v, ycap) - y0) / (y1 - y0) * (H - T - B); };
  auto esc = [](const std::string& t) {
    std::string o;
    for (char c : t) o += c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;" : c == '"' ? "&quot;" : std::string(1, c);
    return o;
  };
  std::vector<bool> front(s.size(), true);
  for (std::size_t i = 0; i < s.size(); ++i)
    for (std::size_t j = 0; j < s.size(); ++j)
      if (i != j && s[j].bits <= s[i].bits && s[j].sqnr >= s[i].sqnr && (s[j].bits < s[i].bits || s[j].sqnr > s[i].sqnr))
        front[i] = false;
  std::ostringstream o;
  o << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H << "\" viewBox=\"0 0 " << W << " " << H
    << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
    << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    << "<text x=\"" << W / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">SQNR against storage, weighted over the selected tensors</text>\n";
  o << "<g stroke=\"#ccc\">\n";
  for (double v = std::ceil(x0); v <= x1; v += 1)
    o << "<line x1=\"" << px(v) << "\" y1=\"" << T << "\" x2=\"" << px(v) << "\" y2=\"" << H - B << "\"/>\n";
  const double ystep = (y1 - y0) > 60 ? 10 : (y1 - y0) > 20 ? 5 : 1;
  for (double v = std::ceil(y0 / ystep) * ystep; v <= y1; v += ystep)
    o << "<line x1=\"" << L << "\" y1=\"" << py(v) << "\" x2=\"" << W - R << "\" y2=\"" << py(v) << "\"/>\n";
  o << "</g>\n<g fill=\"#333\">\n";
  for (double v = std::ceil(x0); v <= x1; v += 1)
    o << "<text x=\"" << px(v) << "\" y=\"" << H - B + 18 << "\" text-anchor=\"middle\">" << v << "</text>\n";
  for (double v = std::ceil(y0 / ystep) * ystep; v <= y1; v += ystep)
    o << "<text x=\"" << L - 8 << "\" y=\"" << py(v) + 4 << "\" text-anchor=\"end\">" << v << "</text>\n";
  o << "<text x=\"" << (L + W - R) / 2 << "\" y=\"" << H - 18 << "\" text-anchor=\"middle\">bits per element</text>\n"
    << "<text transform=\"translate(18," << (T + H - B) / 2 << ") rotate(-90)\" text-anchor=\"middle\">SQNR (dB)</text>\n"
    << "</g>\n";
  o << "<rect x=\"" << L << "\" y=\"" << T << "\" width=\"" << W - L - R << "\" height=\"" << H - T - B
    << "\" fill=\"none\" stroke=\"#333\"/>\n";
  std::vector<std::size_t> fi;
  for (std::size_t i = 0; i < s.size(); ++i)
    if (front[i]) fi.push_back(i);
  std::sort(fi.begin(), fi.end(), [&](std::size_t a, std::size_t b) { return s[a].bits < s[b].bits; });
  o << "<polyline fill=\"none\" stroke=\"#d62728\" stroke-width=\"1.5\" points=\"";
  for (std::size_t i : fi) o << px(s[i].bits) << "," << py(s[i].sqnr) << " ";
  o << "\"/>\n";
  for (std::size_t i = 0; i < s.size(); ++i) {
    const std::string sq = std::isfinite(s[i].sqnr) ? fmt_num(s[i].sqnr, "%.2f") + " dB" : "exact";
    o << "<circle cx=\"" << px(s[i].bits) << "\" cy=\"" << py(s[i].sqnr) << "\" r=\"5\" "
      << (front[i] ? "fill=\"#d62728\" stroke=\"#d62728\"" : "fill=\"white\" stroke=\"#1f77b4\" stroke-width=\"1.5\"")
      << "><title>" << esc(names[i]) << ": " << fmt_num(s[i].bits) << " bits/element, " << sq
      << (front[i] ? " (Pareto front)" : "") << "</title></circle>\n"
      << "<text x=\"" << px(s[i].bits) + 7 << "\" y=\"" << py(s[i].sqnr) - 6 << "\" fill=\"#333\">" << esc(names[i]) << "</text>\n";
  }
  o << "<text x=\"" << W - R << "\" y=\"" << T - 6 << "\" text-anchor=\"end\" fill=\"#d62728\">"
    << "filled: Pareto front (no format has fewer bits and a higher SQNR)</text>\n</svg>\n";
  return o.str();
}

struct CompareArgs {
  std::string file, formats, tensors, output = "table", plot;
  int threads = 0;  // 0: all cores
};

int compare(const CompareArgs& a) {
  const int threads = a.threads;
  const std::vector<std::string> names = split_list(a.formats);
  if (names.empty()) lowbit::detail::fail("--formats", "no format given");
  std::vector<lowbit::Quantizer> qs;
  for (const auto& n : names) qs.emplace_back(n);
  const std::regex select = make_regex(a.tensors.empty() ? ".*" : a.tensors, "--tensors");
  const Source src(a.file);
  std::vector<std::size_t> chosen;
  double total_bytes = 0;
  for (std::size_t i = 0; i < src.tensors().size(); ++i)
    if (src.tensors()[i].to_float && src.tensors()[i].numel() > 0 && std::regex_search(src.tensors()[i].name, select)) {
      chosen.push_back(i);
      total_bytes += static_cast<double>(src.tensors()[i].bytes);
    }
  if (chosen.empty()) lowbit::detail::fail(a.file, "no float tensor matches --tensors '", a.tensors, "'");
  // Tensors run in parallel on up to `threads` workers (each splitting its tensor over the
  // threads left), as long as the tensors in flight fit a memory budget: a worker waits
  // while others hold it, so peak memory stays near the largest tensor times a few.
  const int n_threads = threads > 0 ? threads : lowbit::num_threads();
  const int workers = std::max(1, std::min<int>(n_threads, static_cast<int>(chosen.size())));
  lowbit::QuantOptions opt;
  opt.threads = std::max(1, n_threads / workers);
  constexpr double kBudget = 512.0 * 1024 * 1024;  // bytes of float copies in flight
  std::vector<TensorResult> results(chosen.size());
  Progress progress(chosen.size(), total_bytes);
  std::atomic<std::size_t> next{0};
  std::mutex mu;
  std::condition_variable cv;
  double in_flight = 0;
  std::exception_ptr error;
  auto work = [&] {
    while (true) {
      const std::size_t k = next.fetch_add(1);
      if (k >= chosen.size()) return;
      const std::size_t i = chosen[k];
      const SourceTensor& t = src.tensors()[i];
      const double need = 16.0 * static_cast<double>(t.numel());  // input, output, codes, headers
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return error || in_flight == 0 || in_flight + need <= kBudget; });
        if (error) return;
        in_flight += need;
      }
      try {
        const auto [rows, cols] = matrix_of(t.shape);
        const std::vector<float> x = src.read(i);
        TensorResult tr{t.name, t.numel(), {}};
        for (const auto& q : qs) tr.by_format.push_back(measure(q, x, rows, cols, opt));
        results[k] = std::move(tr);
        src.release(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!error) error = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lock(mu);
        in_flight -= need;
        progress.step(static_cast<double>(t.bytes));
      }
      cv.notify_all();
    }
  };
  std::vector<std::thread> pool;
  for (int w = 1; w < workers; ++w) pool.emplace_back(work);
  work();
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
  // Summary over the model, weighted by element count.
  std::vector<FormatResult> summary(qs.size());
  std::int64_t total = 0;
  for (const auto& tr : results) total += tr.elements;
  for (std::size_t f = 0; f < qs.size(); ++f) {
    FormatResult& s = summary[f];
    s.saturated = 0;
    double w_bits = 0, w_mse = 0;
    for (const auto& tr : results) {
      const FormatResult& r = tr.by_format[f];
      const auto n = static_cast<double>(tr.elements);
      w_bits += r.bits * n;
      w_mse += r.mse * n;
      s.signal += r.signal;
      s.noise += r.noise;
      s.max_err = std::max(s.max_err, r.max_err);
      s.saturated = r.saturated < 0 || s.saturated < 0 ? -1 : s.saturated + r.saturated;
    }
    s.bits = w_bits / static_cast<double>(total);
    s.mse = w_mse / static_cast<double>(total);
    s.sqnr = s.noise == 0 ? std::numeric_limits<double>::infinity() : 10.0 * std::log10(s.signal / s.noise);
  }
  const std::string all = "(all, weighted)";
  auto sat = [](std::int64_t v) { return v < 0 ? std::string("-") : std::to_string(v); };
  if (a.output == "json") {
    nlohmann::ordered_json j;
    j["file"] = a.file;
    j["formats"] = names;
    auto row = [&](const FormatResult& r, const std::string& fmt) {
      nlohmann::ordered_json o;
      o["format"] = fmt;
      o["bits_per_element"] = r.bits;
      o["sqnr_db"] = std::isfinite(r.sqnr) ? nlohmann::ordered_json(r.sqnr) : nlohmann::ordered_json(nullptr);  // null: exact
      o["mse"] = r.mse;
      o["max_abs_error"] = r.max_err;
      o["saturated"] = r.saturated < 0 ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(r.saturated);
      return o;
    };
    j["tensors"] = nlohmann::ordered_json::array();
    for (const auto& tr : results) {
      nlohmann::ordered_json t;
      t["name"] = tr.name;
      t["elements"] = tr.elements;
      t["results"] = nlohmann::ordered_json::array();
      for (std::size_t f = 0; f < qs.size(); ++f) t["results"].push_back(row(tr.by_format[f], names[f]));
      j["tensors"].push_back(t);
    }
    j["summary"] = {{"elements", total}, {"results", nlohmann::ordered_json::array()}};
    for (std::size_t f = 0; f < qs.size(); ++f) j["summary"]["results"].push_back(row(summary[f], names[f]));
    std::printf("%s\n", j.dump(2).c_str());
  } else if (a.output == "csv") {
    std::printf("tensor,elements,format,bits_per_element,sqnr_db,mse,max_abs_error,saturated\n");
    auto line = [&](const std::string& t, std::int64_t n, const std::string& f, const FormatResult& r) {
      std::printf("%s,%lld,%s,%.6g,%s,%.6g,%.6g,%s\n", t.c_str(), static_cast<long long>(n), f.c_str(), r.bits,
                  fmt_num(r.sqnr, "%.6g").c_str(), r.mse, r.max_err, sat(r.saturated).c_str());
    };
    for (const auto& tr : results)
      for (std::size_t f = 0; f < qs.size(); ++f) line(tr.name, tr.elements, names[f], tr.by_format[f]);
    for (std::size_t f = 0; f < qs.size(); ++f) line(all, total, names[f], summary[f]);
  } else {
    const bool md = a.output == "md";
    if (md) std::printf("| tensor | elements | format | bits/element | SQNR (dB) | MSE | max error | saturated |\n|---|---:|---|---:|---:|---:|---:|---:|\n");
    else std::printf("%-40s %12s %-18s %8s %9s %11s %11s %10s\n", "tensor", "elements", "format", "bits/el", "SQNR dB", "MSE", "max error", "saturated");
    auto line = [&](const std::string& t, std::int64_t n, const std::string& f, const FormatResult& r) {
      if (md)
        std::printf("| %s | %lld | %s | %.4g | %s | %.4g | %.4g | %s |\n", t.c_str(), static_cast<long long>(n), f.c_str(), r.bits,
                    fmt_num(r.sqnr, "%.2f").c_str(), r.mse, r.max_err, sat(r.saturated).c_str());
      else
        std::printf("%-40s %12lld %-18s %8.4g %9s %11.4g %11.4g %10s\n", t.c_str(), static_cast<long long>(n), f.c_str(), r.bits,
                    fmt_num(r.sqnr, "%.2f").c_str(), r.mse, r.max_err, sat(r.saturated).c_str());
    };
    for (const auto& tr : results)
      for (std::size_t f = 0; f < qs.size(); ++f) line(tr.name, tr.elements, names[f], tr.by_format[f]);
    for (std::size_t f = 0; f < qs.size(); ++f) line(all, total, names[f], summary[f]);
  }
  if (!a.plot.empty()) {
    std::ofstream o(a.plot);
    o << svg_plot(names, summary);
    o.close();
    if (!o) lowbit::detail::fail(a.plot, "cannot write the plot");
  }
  return 0;
}

// ---- quantize ---------------------------------------------------------------------------------

struct QuantizeArgs {
  std::string in, out, format, skip;
};

bool ends_with(const std::string& s, const std::string& t) { return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0; }

int quantize_file(const QuantizeArgs& a) {
  const lowbit::Quantizer q(a.format);
  if (!q.info().has_codes) lowbit::detail::fail("--format", "format '", a.format, "' is fake-quant only: it has no codes to store");
  const std::optional<lowbit::ggml::Type> gtype = lowbit::ggml::type_for(q);
  const bool to_gguf = gtype && !ends_with(a.out, ".safetensors");
  if (!gtype && ends_with(a.out, ".gguf"))
    lowbit::detail::fail("--format", "format '", a.format,
                         "' has no ggml block type (those are int8_b32_fp16, int4_b32_fp16, uint4_b32_fp16, mxfp4); "
                         "write a .safetensors (lowbit packed) file instead");
  const std::optional<std::regex> skip = a.skip.empty() ? std::nullopt : std::optional<std::regex>(make_regex(a.skip, "--skip"));
  const Source src(a.in);
  // A tensor is quantised when it is float, has rows (2-D or more), is not skipped and, for
  // GGUF, its rows are whole 32-blocks; everything else is kept as it is.
  std::vector<bool> quantise(src.tensors().size());
  double total_bytes = 0;
  std::size_t n_quantised = 0;
  for (std::size_t i = 0; i < src.tensors().size(); ++i) {
    const SourceTensor& t = src.tensors()[i];
    const bool skipped = skip && std::regex_search(t.name, *skip);
    quantise[i] = t.to_float && t.shape.size() >= 2 && t.numel() > 0 && !skipped &&
                  (!to_gguf || t.shape.back() % lowbit::ggml::kBlock == 0);
    n_quantised += quantise[i];
    total_bytes += static_cast<double>(t.bytes);
  }
  Progress progress(src.tensors().size(), total_bytes);
  double out_bytes = 0;
  if (to_gguf) {
    std::vector<gguf::KeyValue> md;
    if (const gguf::File* g = src.gguf_file()) md = g->metadata();
    else
      for (const auto& [k, v] : src.st_metadata()) md.push_back({"safetensors." + k, gguf::Value::of_string(v)});
    auto set = [&](const std::string& k, gguf::Value v) {
      for (auto& kv : md)
        if (kv.key == k) { kv.value = std::move(v); return; }
      md.push_back({k, std::move(v)});
    };
    set("general.quantization_version", gguf::Value::of_u32(2));
    // The file type llama.cpp's own quantiser records for these (llama_ftype in llama.h).
    const std::uint32_t ftype = *gtype == lowbit::ggml::Type::Q8_0   ? 7
                                : *gtype == lowbit::ggml::Type::Q4_0 ? 2
                                : *gtype == lowbit::ggml::Type::Q4_1 ? 3
                                                                     : 38;  // MOSTLY_MXFP4_MOE
    set("general.file_type", gguf::Value::of_u32(ftype));
    set("lowbit.format", gguf::Value::of_string(q.name()));
    std::vector<gguf::TensorSpec> specs;
    for (std::size_t i = 0; i < src.tensors().size(); ++i) {
      const SourceTensor& t = src.tensors()[i];
      std::uint32_t type;
      if (quantise[i]) type = static_cast<std::uint32_t>(*gtype);
      else if (src.gguf_file()) type = src.gguf_type(i);  // copied as it is
      else {
        const auto d = src.st_dtype(i);
        type = d == st::Dtype::F16 ? 1u : d == st::Dtype::BF16 ? 30u : 0u;
        if (!t.to_float) lowbit::detail::fail(a.in, "tensor '", t.name, "' of ", t.dtype, " has no GGUF counterpart");
      }
      specs.push_back({t.name, gguf::ne_of_shape(t.shape), type});
    }
    gguf::Writer w(a.out, md, specs);
    for (std::size_t i = 0; i < src.tensors().size(); ++i) {
      const SourceTensor& t = src.tensors()[i];
      if (quantise[i]) {
        const auto [rows, cols] = matrix_of(t.shape);
        const std::vector<float> x = src.read(i);
        const auto qt = q.quantize(lowbit::MatrixRef<const float>::row_major(x.data(), rows, cols));
        const auto blocks = lowbit::ggml::encode(*gtype, qt, "tensor '" + t.name + "'");
        w.write(blocks);
        out_bytes += static_cast<double>(blocks.size());
      } else if (src.gguf_file()) {
        w.write(src.raw(i));
        out_bytes += static_cast<double>(src.raw(i).size());
      } else {
        const auto d = src.st_dtype(i);
        if (d == st::Dtype::F16 || d == st::Dtype::BF16 || d == st::Dtype::F32) w.write(src.raw(i));
        else w.write(st::encode_floats(st::Dtype::F32, src.read(i)));
        out_bytes += static_cast<double>(specs[i].bytes());
      }
      src.release(i);
      progress.step(static_cast<double>(t.bytes));
    }
    w.finish();
  } else {
    std::vector<lowbit::packed::TensorPlan> plans;
    for (std::size_t i = 0; i < src.tensors().size(); ++i) {
      const SourceTensor& t = src.tensors()[i];
      lowbit::packed::TensorPlan p{t.name, t.shape, quantise[i] ? q.name() : "", st::Dtype::F32};
      if (!quantise[i]) {
        const auto d = src.st_dtype(i);
        if (d) p.keep_dtype = *d;  // safetensors tensors are copied as they are
        else if (!t.to_float) lowbit::detail::fail(a.in, "tensor '", t.name, "' of ", t.dtype, " cannot be stored in safetensors");
      }
      plans.push_back(std::move(p));
    }
    std::map<std::string, std::string> md = src.gguf_file() ? std::map<std::string, std::string>{} : src.st_metadata();
    md.erase("format");
    const auto [specs, meta] = lowbit::packed::plan_file(plans, md);
    st::Writer w(a.out, specs, meta);
    for (std::size_t i = 0; i < src.tensors().size(); ++i) {
      const SourceTensor& t = src.tensors()[i];
      if (quantise[i]) {
        const auto [rows, cols] = matrix_of(t.shape);
        const std::vector<float> x = src.read(i);
        const auto m = lowbit::AnyPackedMatrix::pack(q, lowbit::MatrixRef<const float>::row_major(x.data(), rows, cols));
        w.write(m.serialize());
      } else if (src.st_dtype(i)) {
        w.write(src.raw(i));
      } else {
        w.write_floats(src.read(i));
      }
      out_bytes += static_cast<double>(specs[i].bytes());
      src.release(i);
      progress.step(static_cast<double>(t.bytes));
    }
    w.finish();
  }
  std::printf("%s -> %s (%s): %zu of %zu tensors quantised to %s%s, %s -> %s\n", a.in.c_str(), a.out.c_str(),
              to_gguf ? "GGUF" : "lowbit packed safetensors", n_quantised, src.tensors().size(), q.name().c_str(),
              to_gguf ? (" (" + lowbit::ggml::type_name(static_cast<std::uint32_t>(*gtype)) + ")").c_str() : "",
              human_bytes(total_bytes).c_str(), human_bytes(out_bytes).c_str());
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

  int threads = 0;
  auto add_threads = [&](CLI::App* c) {
    c->add_option("--threads", threads, "threads to use (default: all cores); compare runs tensors in parallel")->check(CLI::NonNegativeNumber);
  };

  std::string inspect_file;
  CLI::App* ic = app.add_subcommand("inspect", "List a model's tensors: dtype, shape, size, absmax, std, kurtosis, outlier channels");
  ic->add_option("FILE", inspect_file, ".safetensors, *.index.json (or its directory), .gguf, or a lowbit packed file")->required();
  ic->footer("kurtosis is Pearson's (3 for a Gaussian); outl.ch is the share of input channels (columns) whose absmax "
             "exceeds 3x the median column absmax");
  add_threads(ic);

  CompareArgs ca;
  CLI::App* cc = app.add_subcommand("compare", "For every tensor and format: bits/element, SQNR, MSE, max error, saturated elements");
  cc->add_option("FILE", ca.file, ".safetensors, *.index.json (or its directory), .gguf, or a lowbit packed file")->required();
  cc->add_option("--formats", ca.formats, "comma-separated format names, e.g. mxfp4,bfp6_b16,int4_b32_fp16")->required();
  cc->add_option("--tensors", ca.tensors, "only tensors whose name matches this regular expression");
  cc->add_option("--output", ca.output, "table (default), md, csv or json")->check(CLI::IsMember({"table", "md", "csv", "json"}));
  cc->add_option("--plot", ca.plot, "also draw SQNR against bits per element into this SVG file");
  add_threads(cc);

  QuantizeArgs za;
  CLI::App* zc = app.add_subcommand("quantize", "Write a model in a format: GGUF for ggml's block types, lowbit packed safetensors otherwise");
  zc->add_option("IN", za.in, "input model (.safetensors, *.index.json or its directory, .gguf)")->required();
  zc->add_option("OUT", za.out, "output file (.gguf, or .safetensors for a packed file)")->required();
  zc->add_option("--format,-f", za.format, "format name (see `lowbit formats`)")->required();
  zc->add_option("--skip", za.skip, "keep tensors whose name matches this regular expression as they are (e.g. 'norm|embed')");
  add_threads(zc);

  // Usage errors exit with 2 (--help with 0), bad input with 1.
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    if (threads > 0) lowbit::set_num_threads(threads);
    if (formats->parsed()) return list_formats(csv);
    if (ic->parsed()) return inspect(inspect_file);
    if (cc->parsed()) {
      ca.threads = threads;
      return compare(ca);
    }
    if (zc->parsed()) return quantize_file(za);
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

// QuantLinear: y = x W^T + b with W [out x in] held packed in a lowbit format, chosen by name
// at run time (QuantLinear::from_name("mxfp4", w)) or by type at compile time
// (QuantLinear::from_format<lowbit::MXFP4>(w)), and the input optionally fake-quantised on
// the fly in an activation format (blocks along the input dimension).
//
// Per-tensor weight formats (fp8_e4m3_pt, int8_pt_fp32, ...) cannot be packed row by row, so
// they are stored as FP8 GEMMs store them: the elements fl32(w / s) packed in the element
// format without a scale, and the one tensor scale s applied to the output. The elements are
// the ones fake_quant produces; only the product's rounding differs (s * sum vs sum of s * w).
//
// A layer may also carry a sparse float side matrix S (the outlier split): y = x' W^T + x S^T + b,
// where x' is x with the side's float input channels zeroed before the activation format sees
// it (those channels reach the output through S alone, in float).
//
// An activation is one token's vector: formats with a per-tensor scale (or NVFP4's tensor
// scale) get one scale per row of x, so a result never depends on how many tokens one call
// carries.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "lowbit/core/error.hpp"
#include "lowbit/core/matrix_ref.hpp"
#include "lowbit/gemm/matmul.hpp"
#include "lowbit/gemm/panel_matrix.hpp"
#include "lowbit/pack/any_packed_matrix.hpp"
#include "lowbit/pack/packed_matrix.hpp"
#include "lowbit/quant/fake_quant.hpp"
#include "lowbit/quant/registry.hpp"

namespace lowbit::nn {

// A sparse [out x in] float matrix, row by row (CSR), and the input channels that skip the
// quantised path.
struct SparseWeights {
  std::int64_t rows = 0, cols = 0;
  std::vector<std::int64_t> row_start;  // rows + 1 offsets into col / value
  std::vector<std::int32_t> col;
  std::vector<float> value;
  std::vector<std::int32_t> float_inputs;

  std::int64_t nonzeros() const { return static_cast<std::int64_t>(value.size()); }

  // The nonzero entries of s.
  static SparseWeights from_dense(MatrixRef<const float> s, std::vector<std::int32_t> float_inputs = {}) {
    s.validate("SparseWeights");
    SparseWeights out;
    out.rows = s.rows;
    out.cols = s.cols;
    out.row_start.reserve(static_cast<std::size_t>(s.rows + 1));
    out.row_start.push_back(0);
    for (std::int64_t r = 0; r < s.rows; ++r) {
      for (std::int64_t c = 0; c < s.cols; ++c)
        if (s(r, c) != 0.0f) {
          out.col.push_back(static_cast<std::int32_t>(c));
          out.value.push_back(s(r, c));
        }
      out.row_start.push_back(static_cast<std::int64_t>(out.value.size()));
    }
    for (const std::int32_t c : float_inputs)
      detail::require(c >= 0 && c < s.cols, "SparseWeights", "float input channel ", c, " is outside ", s.cols, " inputs");
    out.float_inputs = std::move(float_inputs);
    return out;
  }
};

class QuantLinear {
 public:
  QuantLinear() = default;

  // The weight in a format given as a BlockFormat value (named `name` in reports).
  template <class E>
  static QuantLinear from_block_format(const BlockFormat<E>& f, std::string name, MatrixRef<const float> w,
                                       std::span<const float> bias) {
    w.validate("QuantLinear");
    detail::require(bias.empty() || static_cast<std::int64_t>(bias.size()) == w.rows, "QuantLinear", "bias has ",
                    bias.size(), " values for ", w.rows, " outputs");
    QuantLinear l;
    l.weight_name_ = std::move(name);
    l.bias_.assign(bias.begin(), bias.end());
    if (f.block_size != kPerTensor || !f.has_scale()) {
      l.weight_ = PackedMatrix<BlockFormat<E>>::pack(f, w);
      l.make_panels();
      return l;
    }
    detail::require(!f.scale.zero_point && !f.needs_tensor_pass(), "QuantLinear", "format '", l.weight_name_,
                    "': per-tensor scales with a zero point or a second-level scale are not supported for weights");
    // The tensor scale exactly as quantize chooses it, then the scaled elements unscaled.
    QuantOptions whole;
    whole.blocking = Blocking::per_tensor();
    const QuantizedTensor qt = quantize(f, w, whole);
    const float s = qt.headers.empty() ? 1.0f : f.scale_value(qt.headers[0], qt.tensor);
    const float div = s > 0.0f ? s : 1.0f;
    std::vector<float> ws(static_cast<std::size_t>(w.rows * w.cols));
    for (std::int64_t r = 0; r < w.rows; ++r)
      for (std::int64_t c = 0; c < w.cols; ++c) ws[static_cast<std::size_t>(r * w.cols + c)] = s > 0.0f ? w(r, c) / div : 0.0f;
    const BlockFormat<E> elements{f.element, kNoScale, 1};
    l.weight_ = PackedMatrix<BlockFormat<E>>::pack(elements, MatrixRef<const float>::row_major(ws.data(), w.rows, w.cols));
    l.output_scale_ = s > 0.0f ? s : 0.0f;
    l.make_panels();
    return l;
  }

  // A weight already packed (by GPTQ, say); output_scale is the tensor scale of a per-tensor
  // format stored as bare elements.
  template <class E>
  static QuantLinear from_packed(PackedMatrix<BlockFormat<E>> w, std::string name, std::span<const float> bias = {},
                                 std::optional<float> output_scale = {}) {
    detail::require(bias.empty() || static_cast<std::int64_t>(bias.size()) == w.rows(), "QuantLinear", "bias has ",
                    bias.size(), " values for ", w.rows(), " outputs");
    QuantLinear l;
    l.weight_name_ = std::move(name);
    l.bias_.assign(bias.begin(), bias.end());
    l.weight_ = std::move(w);
    l.output_scale_ = output_scale;
    l.make_panels();
    return l;
  }

  // The weight in the format named `weight_format` (any name lowbit::Quantizer accepts that
  // has codes), blocks along the input dimension.
  static QuantLinear from_name(std::string_view weight_format, MatrixRef<const float> w, std::span<const float> bias = {}) {
    const Quantizer q(weight_format);
    return std::visit(
        [&](const auto& f) -> QuantLinear {
          using F = std::decay_t<decltype(f)>;
          if constexpr (is_block_format<F>) return from_block_format(f, q.name(), w, bias);
          else detail::fail("QuantLinear", "format '", q.name(), "' is fake-quant only (it has no codes to pack)");
        },
        q.format());
  }

  // The weight in a format fixed at compile time: a format type such as lowbit::MXFP4.
  template <class FormatType>
  static QuantLinear from_format(MatrixRef<const float> w, std::span<const float> bias = {}, std::string name = "") {
    return from_block_format(FormatType::format, name.empty() ? "compile-time format" : std::move(name), w, bias);
  }

  // Activation format by name; an empty name (or "fp32") leaves the input in float.
  void set_activation_format(std::string_view name) {
    if (name.empty() || name == "fp32") {
      activation_.reset();
      per_row_activation_ = false;
      return;
    }
    activation_.emplace(name);
    per_row_activation_ = std::visit(
        [](const auto& f) {
          if constexpr (is_block_format<std::decay_t<decltype(f)>>) return f.block_size == kPerTensor || f.needs_tensor_pass();
          else return false;
        },
        activation_->format());
  }
  const std::optional<Quantizer>& activation_format() const { return activation_; }

  // Adds the sparse float side matrix (same shape as the weight).
  void set_sparse(SparseWeights s) {
    detail::require(s.rows == out_features() && s.cols == in_features() &&
                        static_cast<std::int64_t>(s.row_start.size()) == s.rows + 1,
                    "QuantLinear", "sparse side matrix is ", s.rows, " x ", s.cols, ", the weight ", out_features(), " x ",
                    in_features());
    sparse_ = std::move(s);
  }
  const std::optional<SparseWeights>& sparse() const { return sparse_; }

  std::int64_t in_features() const { return visit_weight([](const auto& m) { return m.cols(); }); }
  std::int64_t out_features() const { return visit_weight([](const auto& m) { return m.rows(); }); }
  const std::string& weight_format_name() const { return weight_name_; }
  // Stored weight bits per element (block scales included; a per-tensor scale counts 32
  // bits once for the whole matrix).
  double weight_bits_per_element() const {
    const double elems = static_cast<double>(in_features() * out_features());
    const double bits = static_cast<double>(payload_bits_);
    // A side entry costs its fp32 value and a 32-bit column index.
    const double side = sparse_ ? 64.0 * static_cast<double>(sparse_->nonzeros()) : 0.0;
    return elems > 0 ? (bits + side + (output_scale_ ? 32.0 : 0.0)) / elems : 0.0;
  }
  // Bytes the layer holds for its weight: one copy, in the kernels' layout where there is one.
  std::uint64_t weight_bytes() const {
    const std::uint64_t packed = std::visit([](const auto& m) { return m.bytes(); }, weight_);
    return packed + (panels_.index() == 0 ? 0 : visit_weight([](const auto& m) { return m.bytes(); }));
  }
  // The weight as the layer sees it (dequantised, output scale applied).
  std::vector<float> dequantized_weight() const {
    std::vector<float> w = visit_weight([](const auto& m) { return m.unpack(); });
    if (output_scale_)
      for (float& v : w) v *= *output_scale_;
    if (sparse_)
      for (std::int64_t r = 0; r < sparse_->rows; ++r)
        for (std::int64_t k = sparse_->row_start[static_cast<std::size_t>(r)]; k < sparse_->row_start[static_cast<std::size_t>(r + 1)]; ++k)
          w[static_cast<std::size_t>(r * sparse_->cols + sparse_->col[static_cast<std::size_t>(k)])] += sparse_->value[static_cast<std::size_t>(k)];
    return w;
  }

  // y [n x out] = x [n x in] W^T + b.
  void forward(MatrixRef<const float> x, MatrixRef<float> y) const {
    if (!sparse_) return dense_forward(x, y);
    // The float channels leave the quantised path; the side matrix adds them back in float.
    std::vector<float> xq;
    MatrixRef<const float> xd = x;
    if (!sparse_->float_inputs.empty()) {
      xq.resize(static_cast<std::size_t>(x.rows * x.cols));
      for (std::int64_t r = 0; r < x.rows; ++r)
        for (std::int64_t c = 0; c < x.cols; ++c) xq[static_cast<std::size_t>(r * x.cols + c)] = x(r, c);
      for (std::int64_t r = 0; r < x.rows; ++r)
        for (const std::int32_t c : sparse_->float_inputs) xq[static_cast<std::size_t>(r * x.cols + c)] = 0.0f;
      xd = MatrixRef<const float>::row_major(xq.data(), x.rows, x.cols);
    }
    dense_forward(xd, y);
    const SparseWeights& s = *sparse_;
    for (std::int64_t t = 0; t < x.rows; ++t)
      for (std::int64_t o = 0; o < s.rows; ++o) {
        float acc = 0.0f;
        for (std::int64_t k = s.row_start[static_cast<std::size_t>(o)]; k < s.row_start[static_cast<std::size_t>(o + 1)]; ++k)
          acc += x(t, s.col[static_cast<std::size_t>(k)]) * s.value[static_cast<std::size_t>(k)];
        y(t, o) += acc;
      }
  }
  std::vector<float> forward(std::span<const float> x) const {
    std::vector<float> y(static_cast<std::size_t>(out_features()));
    forward(MatrixRef<const float>::from_span(x), MatrixRef<float>::from_span(std::span<float>(y)));
    return y;
  }

 private:
  void dense_forward(MatrixRef<const float> x, MatrixRef<float> y) const {
    detail::require(y.col_stride == 1 || !output_scale_, "QuantLinear", "output rows must be contiguous");
    MatmulOptions opt;
    opt.activation = activation_;
    const std::span<const float> bias = output_scale_ ? std::span<const float>{} : std::span<const float>(bias_);
    if (per_row_activation_) {
      for (std::int64_t r = 0; r < x.rows; ++r)
        product(MatrixRef<const float>{x.data + r * x.row_stride, 1, x.cols, x.row_stride, x.col_stride}, bias,
                MatrixRef<float>{y.data + r * y.row_stride, 1, y.cols, y.row_stride, y.col_stride}, opt);
    } else {
      product(x, bias, y, opt);
    }
    if (output_scale_) {
      const float s = *output_scale_;
      for (std::int64_t r = 0; r < y.rows; ++r)
        for (std::int64_t c = 0; c < y.cols; ++c)
          y(r, c) = y(r, c) * s + (bias_.empty() ? 0.0f : bias_[static_cast<std::size_t>(c)]);
    }
  }

  // Every product of the layer goes through here: the panel kernels where the format has a
  // panel layout, the decoded-tile path of the packed matmul otherwise.
  void product(MatrixRef<const float> x, std::span<const float> bias, MatrixRef<float> y, const MatmulOptions& opt) const {
    if (panels_.index() != 0) {
      std::visit(
          [&](const auto& w) {
            if constexpr (!std::is_same_v<std::decay_t<decltype(w)>, std::monostate>) lowbit::matmul(x, w, bias, y, opt);
          },
          panels_);
      return;
    }
    std::visit([&](const auto& w) { lowbit::matmul(x, w, bias, y, opt); }, weight_);
  }

  // The kernels' layout of the weight, when the format has one. The weight is then held once,
  // as panels (the same bits; reports and unpacking read them), and the packed copy is freed.
  void make_panels() {
    std::visit(
        [&](const auto& w) {
          using F = typename std::decay_t<decltype(w)>::format_type;
          if (PanelMatrix<F>::supports(w.format(), w.block(), w.cols())) panels_ = PanelMatrix<F>::from_packed(w);
        },
        weight_);
    payload_bits_ = std::visit([](const auto& w) { return w.payload_bits(); }, weight_);
    if (panels_.index() != 0) weight_ = AnyPacked{};
  }

  // fn applied to whichever form holds the weight (both have rows, cols, bytes and unpack).
  template <class Fn, class R>
  struct OnPanels {  // (a struct, not a lambda: clang 14 crashes on the lambda form)
    const Fn& fn;
    R operator()(std::monostate) const { return R{}; }
    template <class P>
    R operator()(const P& p) const { return fn(p); }
  };
  template <class Fn>
  auto visit_weight(const Fn& fn) const -> decltype(std::visit(fn, std::declval<const AnyPacked&>())) {
    using R = decltype(std::visit(fn, std::declval<const AnyPacked&>()));
    if (panels_.index() == 0) return std::visit(fn, weight_);
    return std::visit(OnPanels<Fn, R>{fn}, panels_);
  }

  AnyPacked weight_{};
  std::variant<std::monostate, PanelMatrix<MinifloatFormat>, PanelMatrix<FixedPointFormat>, PanelMatrix<CodebookFormat>,
               PanelMatrix<LogFormat>>
      panels_{};
  std::uint64_t payload_bits_ = 0;  // the packed form's (panels pad K for the kernels)
  std::string weight_name_;
  std::vector<float> bias_;
  std::optional<float> output_scale_;  // per-tensor weight formats only
  std::optional<Quantizer> activation_;
  bool per_row_activation_ = false;
  std::optional<SparseWeights> sparse_;
};

}  // namespace lowbit::nn

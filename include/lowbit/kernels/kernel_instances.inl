// Included by fake_quant_simd.hpp inside each instruction set's namespace, after
// fake_quant_body.inl and codes_body.inl, with LOWBIT_KERNEL_V naming that set's vector type.
//
// Separate compilation of the kernels (optional). The quantise and fake-quant kernels are
// compiled per instruction set, format family, rounding mode and code sink: most of the
// compile time of any file that quantises or packs. A project that includes lowbit in many
// files can compile them once: define LOWBIT_SEPARATE_KERNELS in every file (each then
// declares the instances below `extern`), and also LOWBIT_INSTANTIATE_KERNELS in exactly one
// file, which includes lowbit/kernels/fake_quant_simd.hpp and so defines them all. Without
// LOWBIT_SEPARATE_KERNELS the library stays header-only: each file compiles what it uses.
// Quantise and fake-quant exist for the element families of kernels::simd_quantizes; every
// family dequantises.
#if defined(LOWBIT_SEPARATE_KERNELS)
#if defined(LOWBIT_INSTANTIATE_KERNELS)
#define LOWBIT_KERNEL_INSTANCE template
#else
#define LOWBIT_KERNEL_INSTANCE extern template
#endif

#define LOWBIT_QUANTIZE_LINE_INSTANCE(FMT, MODE, SINK)                                                             \
  LOWBIT_KERNEL_INSTANCE bool quantize_line_mode<LOWBIT_KERNEL_V, Rounding::MODE, FMT, SINK<LOWBIT_KERNEL_V>>(   \
      const FMT&, const LineSetup<LOWBIT_KERNEL_V>&, const ElementCodes&, const float*, const SINK<LOWBIT_KERNEL_V>, \
      BlockHeader*, std::int64_t, std::int64_t, std::int64_t, std::uint64_t, std::uint64_t, const TensorParams&);
#define LOWBIT_QUANTIZE_MODE_INSTANCES(FMT, MODE)    \
  LOWBIT_QUANTIZE_LINE_INSTANCE(FMT, MODE, U32Codes) \
  LOWBIT_QUANTIZE_LINE_INSTANCE(FMT, MODE, ByteCodes) \
  LOWBIT_QUANTIZE_LINE_INSTANCE(FMT, MODE, NibbleCodes)
#define LOWBIT_DEQUANTIZE_INSTANCE(FMT)                                                                           \
  LOWBIT_KERNEL_INSTANCE void dequantize_line<LOWBIT_KERNEL_V, FMT>(const FMT&, const ElementCodes&,              \
                                                                    const std::uint32_t*, float*, const BlockHeader*, \
                                                                    std::int64_t, std::int64_t, std::int64_t,     \
                                                                    const TensorParams&);
#define LOWBIT_FORMAT_INSTANCES(FMT)                                                                              \
  LOWBIT_DEQUANTIZE_INSTANCE(FMT)                                                                                 \
  LOWBIT_KERNEL_INSTANCE bool fake_quant_line<LOWBIT_KERNEL_V, FMT>(                                              \
      const FMT&, const ElementRounding&, const float*, float*, std::int64_t, std::int64_t, std::int64_t,        \
      std::uint64_t, Rounding, std::uint64_t, const TensorParams&);                                               \
  LOWBIT_QUANTIZE_MODE_INSTANCES(FMT, NearestEven)                                                                \
  LOWBIT_QUANTIZE_MODE_INSTANCES(FMT, NearestAway)                                                                \
  LOWBIT_QUANTIZE_MODE_INSTANCES(FMT, TowardZero)                                                                 \
  LOWBIT_QUANTIZE_MODE_INSTANCES(FMT, Stochastic)

LOWBIT_FORMAT_INSTANCES(BlockFormat<MinifloatSpec>)
LOWBIT_FORMAT_INSTANCES(BlockFormat<FixedPointSpec>)
LOWBIT_DEQUANTIZE_INSTANCE(BlockFormat<CodebookSpec>)
LOWBIT_DEQUANTIZE_INSTANCE(BlockFormat<LogSpec>)

#undef LOWBIT_FORMAT_INSTANCES
#undef LOWBIT_DEQUANTIZE_INSTANCE
#undef LOWBIT_QUANTIZE_MODE_INSTANCES
#undef LOWBIT_QUANTIZE_LINE_INSTANCE
#undef LOWBIT_KERNEL_INSTANCE
#endif

// The SIMD quantise, fake-quant and dequantise kernels, compiled once for every test
// executable (lowbit/kernels/kernel_instances.inl): the test files are built with
// LOWBIT_SEPARATE_KERNELS and take them from here instead of compiling them again each.
#define LOWBIT_INSTANTIATE_KERNELS
#include "lowbit/kernels/fake_quant_simd.hpp"

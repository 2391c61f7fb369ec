// Compiling a region of code for one instruction set, whatever flags the user built with:
// functions defined between LOWBIT_TARGET_*_BEGIN and LOWBIT_TARGET_END may use that set's
// intrinsics. Callers must check cpu_supports() (kernels/dispatch.hpp) before calling them.
#pragma once

#include <immintrin.h>

// For the few helpers that sit in hot loops but that the compilers' size heuristics keep out
// of line (a call spills the operands they take by array).
#define LOWBIT_ALWAYS_INLINE __attribute__((always_inline)) inline
// The same for a lambda, written after its parameter list.
#define LOWBIT_LAMBDA_INLINE __attribute__((always_inline))

// Unrolls the loop that follows completely (short loops of constant count over vectors held
// in arrays: at -O2 GCC keeps such loops, and the arrays in memory).
#if defined(__clang__)
#define LOWBIT_UNROLL _Pragma("unroll")
#else
#define LOWBIT_UNROLL _Pragma("GCC unroll 64")
#endif

#define LOWBIT_AVX512_FEATURES "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c,bmi2"
#define LOWBIT_AVX2_FEATURES "avx2,fma,f16c,bmi2"

#if defined(__clang__)
#define LOWBIT_TARGET_AVX512_BEGIN \
  _Pragma("clang attribute push(__attribute__((target(\"avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c,bmi2\"))), apply_to = function)")
#define LOWBIT_TARGET_AVX2_BEGIN \
  _Pragma("clang attribute push(__attribute__((target(\"avx2,fma,f16c,bmi2\"))), apply_to = function)")
#define LOWBIT_TARGET_AVX512VNNI_BEGIN \
  _Pragma("clang attribute push(__attribute__((target(\"avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx512vbmi,avx2,fma,f16c,bmi2\"))), apply_to = function)")
#define LOWBIT_TARGET_AVXVNNI_BEGIN \
  _Pragma("clang attribute push(__attribute__((target(\"avx2,fma,f16c,bmi2,avxvnni\"))), apply_to = function)")
#define LOWBIT_TARGET_END _Pragma("clang attribute pop")
#else
// GCC 12's AVX-512 intrinsics initialise their pass-through operand from itself
// (_mm512_undefined_*), which -Wuninitialized reports at every use once inlined into a
// function that gets the target by pragma; the warning is about the header, not our code.
#define LOWBIT_TARGET_AVX512_BEGIN                                                                 \
  _Pragma("GCC push_options") _Pragma("GCC target(\"avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c,bmi2\")") \
      _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wuninitialized\"")        \
          _Pragma("GCC diagnostic ignored \"-Wmaybe-uninitialized\"")
#define LOWBIT_TARGET_AVX512VNNI_BEGIN                                                                          \
  _Pragma("GCC push_options") _Pragma("GCC target(\"avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx512vbmi,avx2,fma,f16c,bmi2\")") \
      _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wuninitialized\"")                   \
          _Pragma("GCC diagnostic ignored \"-Wmaybe-uninitialized\"")
#define LOWBIT_TARGET_AVX2_BEGIN                                               \
  _Pragma("GCC push_options") _Pragma("GCC target(\"avx2,fma,f16c,bmi2\")") \
      _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wuninitialized\"")
#define LOWBIT_TARGET_AVXVNNI_BEGIN                                                    \
  _Pragma("GCC push_options") _Pragma("GCC target(\"avx2,fma,f16c,bmi2,avxvnni\")") \
      _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wuninitialized\"")
#define LOWBIT_TARGET_END _Pragma("GCC diagnostic pop") _Pragma("GCC pop_options")
#endif

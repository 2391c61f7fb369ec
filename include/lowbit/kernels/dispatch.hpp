// Run-time choice of the SIMD path. Kernels are compiled for each instruction set with
// per-function target attributes, so a program built without -march flags still runs the
// best path its CPU supports, and a CPU without AVX2 runs the scalar reference.
//
// Forcing a path (tests, benchmarks): lowbit::force_simd_path(SimdPath::Scalar), or the
// environment variable LOWBIT_SIMD=scalar|avx2|avx512 read once at first use. Forcing a path
// the CPU lacks throws lowbit::Error.
#pragma once

#include <atomic>
#include <cstdlib>
#include <string>
#include <string_view>

#include "lowbit/core/error.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace lowbit {

enum class SimdPath { Scalar = 0, AVX2 = 1, AVX512 = 2 };

inline std::string_view to_string(SimdPath p) {
  switch (p) {
    case SimdPath::Scalar: return "scalar";
    case SimdPath::AVX2: return "avx2";
    case SimdPath::AVX512: return "avx512";
  }
  return "?";
}

inline SimdPath parse_simd_path(std::string_view s) {
  if (s == "scalar") return SimdPath::Scalar;
  if (s == "avx2") return SimdPath::AVX2;
  if (s == "avx512") return SimdPath::AVX512;
  detail::fail("parse_simd_path", "unknown SIMD path '", s, "' (accepted: scalar, avx2, avx512)");
}

#if defined(__x86_64__) || defined(__i386__)
namespace detail {
// F16C from CPUID leaf 1 (clang 14's __builtin_cpu_supports does not know "f16c").
// CPUID is read once: under a hypervisor each CPUID traps and costs microseconds.
inline bool cpu_has_f16c() {
  static const bool has = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    return __get_cpuid(1, &a, &b, &c, &d) != 0 && (c & bit_F16C) != 0;
  }();
  return has;
}
// AVX512-VNNI (vpdpbusd) from CPUID leaf 7, sub-leaf 0, ECX bit 11: the packed matmul's
// integer kernels use it on the AVX-512 path when present,
// and AVX512-VBMI (vpermb, ECX bit 1) for its 6-bit code table: both or neither are used.
inline bool cpu_has_avx512_vnni_vbmi() {
  static const bool has = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    return __get_cpuid_count(7, 0, &a, &b, &c, &d) != 0 && (c & (1u << 11)) != 0 && (c & (1u << 1)) != 0;
  }();
  return has;
}
// AVX-VNNI (VEX-encoded vpdpbusd on 256 bits; CPUID leaf 7, sub-leaf 1, EAX bit 4): the AVX2
// path's integer matmul kernel uses it when present.
inline bool cpu_has_avx_vnni() {
  static const bool has = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    return __get_cpuid_count(7, 1, &a, &b, &c, &d) != 0 && (a & (1u << 4)) != 0;
  }();
  return has;
}
}  // namespace detail
#endif

namespace detail {
inline std::atomic<bool>& avx_vnni_allowed() {
  static std::atomic<bool> allowed{true};
  return allowed;
}
}  // namespace detail

// Whether the AVX2 path's integer matmul kernel may use AVX-VNNI where the CPU has it (default
// true). Tests and benchmarks turn it off to run the plain AVX2 kernel (vpmaddwd) on such CPUs.
inline void allow_avx_vnni(bool allowed) { detail::avx_vnni_allowed().store(allowed); }
inline bool avx_vnni_active() {
#if defined(__x86_64__) || defined(__i386__)
  return detail::avx_vnni_allowed().load() && detail::cpu_has_avx_vnni();
#else
  return false;
#endif
}

// Whether this CPU can run a path.
inline bool cpu_supports(SimdPath p) {
#if defined(__x86_64__) || defined(__i386__)
  switch (p) {
    case SimdPath::Scalar: return true;
    case SimdPath::AVX2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && detail::cpu_has_f16c();
    case SimdPath::AVX512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  }
  return false;
#else
  return p == SimdPath::Scalar;
#endif
}

inline SimdPath best_simd_path() {
  if (cpu_supports(SimdPath::AVX512)) return SimdPath::AVX512;
  if (cpu_supports(SimdPath::AVX2)) return SimdPath::AVX2;
  return SimdPath::Scalar;
}

namespace detail {
inline std::atomic<int>& forced_path() {
  static std::atomic<int> p{[] {
    const char* env = std::getenv("LOWBIT_SIMD");
    if (env == nullptr || *env == '\0') return -1;
    const SimdPath want = parse_simd_path(env);
    require(cpu_supports(want), "LOWBIT_SIMD", "this CPU cannot run the ", to_string(want), " path");
    return static_cast<int>(want);
  }()};
  return p;
}
}  // namespace detail

// Forces a path for every later call (throws if the CPU lacks it).
inline void force_simd_path(SimdPath p) {
  detail::require(cpu_supports(p), "force_simd_path", "this CPU cannot run the ", to_string(p), " path");
  detail::forced_path().store(static_cast<int>(p));
}
// Returns to automatic choice (the environment variable is not read again).
inline void clear_forced_simd_path() { detail::forced_path().store(-1); }

// The path lowbit runs now.
inline SimdPath active_simd_path() {
  const int f = detail::forced_path().load();
  return f >= 0 ? static_cast<SimdPath>(f) : best_simd_path();
}

}  // namespace lowbit

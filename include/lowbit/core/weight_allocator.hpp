// WeightAllocator<T>: the allocator of packed weight storage.
//
// Every buffer starts on a 64-byte cache line. A buffer of 2 MiB or more starts on a 2 MiB
// boundary and, on Linux, is advised for transparent huge pages (madvise MADV_HUGEPAGE)
// before it is first touched. Why: a matrix-vector product streams every weight byte once,
// and with 4 KiB pages a page walk every 4 KiB (two levels of them under a hypervisor) held
// one core's read stream from DRAM to about 19 GB/s on the machine of bench/README.md; the
// same loop over 2 MiB pages read 29 GB/s. The advice only asks: where the kernel has THP
// off ("never") the buffer stays in 4 KiB pages and nothing else changes.
//
// LOWBIT_HUGE_PAGES=0 in the environment turns the advice off (read at each large
// allocation), for systems where huge pages cost more than they give.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace lowbit {

inline constexpr std::size_t kCacheLineBytes = 64;
inline constexpr std::size_t kHugePageBytes = std::size_t{2} << 20;

namespace detail {

// The alignment of an n-byte buffer; deallocation recomputes it from the same n.
constexpr std::size_t weight_alignment(std::size_t bytes) noexcept {
  return bytes >= kHugePageBytes ? kHugePageBytes : kCacheLineBytes;
}

inline bool huge_pages_wanted() noexcept {
  const char* v = std::getenv("LOWBIT_HUGE_PAGES");
  return v == nullptr || std::strcmp(v, "0") != 0;
}

// Advises the whole 2 MiB pages of [p, p + bytes) for huge pages; p is 2 MiB aligned.
inline void advise_huge_pages([[maybe_unused]] void* p, [[maybe_unused]] std::size_t bytes) noexcept {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  const std::size_t whole = bytes / kHugePageBytes * kHugePageBytes;
  if (whole != 0 && huge_pages_wanted()) (void)::madvise(p, whole, MADV_HUGEPAGE);  // advice: failure is harmless
#endif
}

template <class T>
struct WeightAllocator {
  using value_type = T;
  WeightAllocator() = default;
  template <class U>
  WeightAllocator(const WeightAllocator<U>&) noexcept {}

  T* allocate(std::size_t n) {
    const std::size_t bytes = n * sizeof(T);
    const std::size_t align = weight_alignment(bytes);
    void* p = ::operator new(bytes, std::align_val_t{align});
    if (align == kHugePageBytes) advise_huge_pages(p, bytes);
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t n) noexcept {
    ::operator delete(p, std::align_val_t{weight_alignment(n * sizeof(T))});
  }
  template <class U>
  bool operator==(const WeightAllocator<U>&) const noexcept {
    return true;
  }
};

}  // namespace detail
}  // namespace lowbit

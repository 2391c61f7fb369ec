// MappedFile: a whole file mapped read-only into memory (POSIX mmap), unmapped when the
// object goes away. Tensor readers hand out views into the mapping, so a model of tens of
// gigabytes is never copied: the kernel pages in what is touched and drops it under memory
// pressure.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <utility>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lowbit/core/error.hpp"

namespace lowbit::io {

class MappedFile {
 public:
  MappedFile() = default;

  explicit MappedFile(const std::filesystem::path& path) : path_(path.string()) {
    const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) detail::fail(path_, "cannot open for reading: ", std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      const int e = errno;
      ::close(fd);
      detail::fail(path_, "cannot read the file size: ", std::strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd);
      detail::fail(path_, "not a regular file");
    }
    size_ = static_cast<std::size_t>(st.st_size);
    if (size_ > 0) {  // mmap of length 0 is an error; an empty file is an empty view
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        const int e = errno;
        ::close(fd);
        detail::fail(path_, "cannot map ", size_, " bytes: ", std::strerror(e));
      }
      data_ = static_cast<const std::byte*>(p);
    }
    ::close(fd);  // the mapping keeps its own reference to the file
  }

  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  MappedFile(MappedFile&& o) noexcept { swap(o); }
  MappedFile& operator=(MappedFile&& o) noexcept {
    if (this != &o) {
      MappedFile tmp(std::move(o));
      swap(tmp);
    }
    return *this;
  }
  ~MappedFile() {
    if (data_ != nullptr) ::munmap(const_cast<std::byte*>(data_), size_);
  }

  std::span<const std::byte> bytes() const { return {data_, size_}; }
  std::size_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Tells the kernel a range will not be needed again soon, so streaming over a file larger
  // than memory does not keep every page resident.
  void release(std::span<const std::byte> range) const {
    if (range.empty() || data_ == nullptr) return;
    const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    const auto begin = static_cast<std::size_t>(range.data() - data_);
    const std::size_t first = (begin + page - 1) / page * page;  // whole pages inside the range only
    const std::size_t end = begin + range.size();
    if (end <= first || end - first < page) return;
    ::madvise(const_cast<std::byte*>(data_) + first, (end - first) / page * page, MADV_DONTNEED);
  }

 private:
  void swap(MappedFile& o) noexcept {
    std::swap(path_, o.path_);
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
  }

  std::string path_;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace lowbit::io

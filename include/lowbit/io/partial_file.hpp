// PartialFile: the byte sink of lowbit's file writers. Bytes go to PATH.partial; commit()
// renames it to PATH. A writer that fails or is destroyed part way removes PATH.partial, so
// no file that looks complete is ever left behind. Errors name PATH.
#pragma once

#include <cstddef>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <system_error>

#include "lowbit/core/error.hpp"

namespace lowbit::io {

class PartialFile {
 public:
  explicit PartialFile(const std::filesystem::path& path) : path_(path.string()), partial_(path_ + ".partial") {
    out_.open(partial_, std::ios::binary | std::ios::trunc);
    if (!out_) lowbit::detail::fail(path_, "cannot open ", partial_, " for writing");
  }
  PartialFile(const PartialFile&) = delete;
  PartialFile& operator=(const PartialFile&) = delete;
  ~PartialFile() {
    if (committed_) return;
    out_.close();
    std::error_code ec;
    std::filesystem::remove(partial_, ec);
  }

  const std::string& path() const { return path_; }

  void put(std::span<const std::byte> b) {
    out_.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
    if (!out_) lowbit::detail::fail(path_, "write error");
  }

  // Closes and renames PATH.partial to PATH.
  void commit() {
    out_.close();
    if (!out_) lowbit::detail::fail(path_, "write error");
    std::error_code ec;
    std::filesystem::rename(partial_, path_, ec);
    if (ec) lowbit::detail::fail(path_, "cannot rename ", partial_, " to it: ", ec.message());
    committed_ = true;
  }

 private:
  std::string path_, partial_;
  std::ofstream out_;
  bool committed_ = false;
};

}  // namespace lowbit::io

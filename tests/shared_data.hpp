// Locating ../shared (golden vectors, model data) from tests.
//
// LOWBIT_SHARED_DIR is set by CMake to <project root>/../shared. When it is missing, tests
// that need it fail loudly under CI (CI=true) and are skipped, with the reason, elsewhere.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace lowbit_test {

inline std::filesystem::path shared_dir() { return std::filesystem::path(LOWBIT_SHARED_DIR); }

inline bool running_in_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

// Full path of a file under ../shared, e.g. shared_file("goldens/mx/in.npy").
inline std::filesystem::path shared_file(const std::string& rel) { return shared_dir() / rel; }

}  // namespace lowbit_test

// Use at the top of a test that reads ../shared.
#define LOWBIT_REQUIRE_SHARED(rel)                                                                        \
  do {                                                                                                    \
    const auto lowbit_p_ = ::lowbit_test::shared_file(rel);                                               \
    if (!std::filesystem::exists(lowbit_p_)) {                                                            \
      if (::lowbit_test::running_in_ci()) {                                                               \
        FAIL() << "reference file missing: " << lowbit_p_                                                 \
               << " (lowbit's tests read ../shared relative to the project root; CI must provide it)";    \
      } else {                                                                                            \
        GTEST_SKIP() << "reference file missing: " << lowbit_p_ << " (../shared beside the project root)"; \
      }                                                                                                   \
    }                                                                                                     \
  } while (0)

# The two commands of README.md. Each installs what is missing, configures and builds.
#   make demo   build and run the demo (every standard format on a sample weight tensor)
#   make test   build everything with g++ and all but the benchmarks with clang++-14 (warnings
#               are errors) and run the tests, then the sanitizer builds (ASan runs one of the
#               four end-to-end evaluations; the others run in the g++ and clang stages) and a
#               bounded run of every fuzz target
# The parts run alone too: make test-gcc, test-clang, test-asan, test-tsan, fuzz.
.PHONY: deps demo test test-gcc test-clang test-asan test-tsan fuzz clean

# Seconds each fuzz target runs in `make test` (fuzz/README.md: running them longer).
FUZZ_SECONDS ?= 10
# The suites whose code runs on lowbit's thread pool: ThreadSanitizer runs these.
TSAN_TESTS := test_parallel test_fake_quant test_simd_fake_quant test_matmul test_pack

deps:
	@bash scripts/install-deps.sh

demo: deps
	cmake --preset release
	cmake --build --preset release --target lowbit-demo
	./build/release/examples/lowbit-demo

test-gcc: deps
	cmake --preset release
	cmake --build --preset release
	ctest --preset release

test-clang: deps
	cmake --preset clang
	cmake --build --preset clang
	ctest --preset clang

# Every CTest test under AddressSanitizer + UndefinedBehaviorSanitizer, except the qemu-user
# runs (an ASan binary reserves terabytes of shadow address space, which qemu-user cannot map).
test-asan: deps
	cmake --preset asan
	cmake --build --preset asan
	ctest --preset asan

# The threaded suites under ThreadSanitizer; a data race is a test failure.
test-tsan: deps
	cmake --preset tsan
	cmake --build --preset tsan
	@for t in $(TSAN_TESTS); do \
	  echo "== tsan: $$t"; \
	  TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
	    ./build/tsan/tests/$$t --gtest_brief=1 || exit 1; \
	done

# Builds the libFuzzer targets, makes their seed corpora and runs each for FUZZ_SECONDS.
fuzz: deps
	cmake -S fuzz -B build/fuzz -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=clang++-14 \
	  -DLOWBIT_BUILD_FUZZERS=ON -DLOWBIT_WERROR=ON
	cmake --build build/fuzz -j2
	bash fuzz/run.sh build/fuzz $(FUZZ_SECONDS)

test: test-gcc test-clang test-asan test-tsan fuzz

clean:
	rm -rf build

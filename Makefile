# The two commands of README.md. Each installs what is missing, configures and builds.
#   make demo   build and run the demo (every standard format on a sample weight tensor)
#   make test   build everything with g++ and clang++-14 (warnings are errors) and run the tests
.PHONY: deps demo test test-gcc test-clang clean

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

test: test-gcc test-clang

clean:
	rm -rf build

# Convenience wrapper around meson/ninja.
#   make            build (configures ./build on first use)
#   make check      run the test suite (TESTS="suite" to pick)
#   make run        the main job: a VM with the built-in TPM
#   make bench      benchmarks (not part of the tests)
#   make install    install to the configured prefix
BUILD ?= build
MESON_TEST_ARGS ?=

.PHONY: all check run bench install clean deps

all: $(BUILD)/build.ninja
	ninja -C $(BUILD)

$(BUILD)/build.ninja:
	./configure --builddir=$(BUILD)

deps:
	./scripts/install-deps.sh

check: all
	meson test -C $(BUILD) --print-errorlogs $(MESON_TEST_ARGS)

run: all
	./scripts/run-demo.sh $(BUILD)

bench: all
	./scripts/install-deps.sh --bench
	./bench/run-all.sh $(BUILD)

install: all
	meson install -C $(BUILD)

clean:
	rm -rf $(BUILD)

# A thin wrapper around CMake. `make` builds, `make test` builds and runs every test
# (then the whole suite again under ASan + UBSan), `make demo` shows cdp at work,
# `make install` puts cdp on the PATH (PREFIX=/usr/local, DESTDIR for packaging).
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)
PREFIX ?= /usr/local
# rustup installs cargo outside the default PATH; tests run the real cargo.
export PATH := $(HOME)/.cargo/bin:$(PATH)

.PHONY: all deps build install test test-fast test-asan demo clean corpus-note

all: build

deps:
	@bash scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# The binary holds every Lua module and the shipped pipelines: it is all there is to
# install. A configured build is brought up to date as it is configured (its build type
# kept); an absent one is made by `make build`.
install:
	@[ -f $(BUILD)/CMakeCache.txt ] || $(MAKE) --no-print-directory build
	@cmake --build $(BUILD) -j $(JOBS)
	DESTDIR="$(DESTDIR)" cmake --install $(BUILD) --prefix "$(PREFIX)"

# The corpus tests read ../shared/corpus, which CI puts beside its checkout; a clone alone
# leaves them out and says so (.ci/run sets CDP_REQUIRE_CORPUS=1 to make that a failure).
CORPUS ?= $(if $(CDP_CORPUS),$(CDP_CORPUS),$(abspath ../shared/corpus))
corpus-note:
	@[ -d "$(CORPUS)/manifests" ] || echo "make test: corpus tests left out: $(CORPUS) is absent (CI provides it; CDP_CORPUS=DIR runs them)"

test-fast: build corpus-note
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-asan: deps corpus-note
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DASAN=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 LSAN_OPTIONS=print_suppressions=0 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --output-on-failure -j $(JOBS)

test: test-fast test-asan

demo: build
	@bash scripts/demo.sh $(BUILD)/cdp

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)

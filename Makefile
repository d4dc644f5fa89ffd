# SPDX-License-Identifier: MIT
# A thin front for CMake. `make run` and `make test` install what is missing (Debian 12),
# configure, build, and then run the relay or the whole test suite.
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=
DATA       ?= ./cairn-data
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 10
# The valgrind pass runs the normal build's binaries: it is configured exactly like BUILD, and a
# tree of its own cost CI a whole second RelWithDebInfo build (about two minutes on two cores).
VALGRIND_BUILD ?= $(BUILD)
# The tests that start cairn-relay and cairn, each of those processes under valgrind: the
# relay's suites (the HTTPS listener's and private routing's too), the client over the network,
# and of test_it_client the walkthrough (every cairn command opens its store with Argon2id,
# minutes under valgrind). Left out: the load, soak, censorship and crash-loop suites, which
# measure time and would only time out.
VALGRIND_TESTS ?= test_it_relay|test_it_hostile|test_it_crash$$|test_it_client$$|test_client_net|test_it_forward$$|test_it_https_relay
VALGRIND_CLIENT_TESTS ?= test_walkthrough
VALGRIND_OPTS ?= --error-exitcode=97 --leak-check=full --errors-for-leak-kinds=definite,indirect \
	--track-fds=no -q

.PHONY: all deps build build-asan run test test-unit test-asan fuzz fuzz-smoke test-valgrind format clean

all: build

deps:
	@sh scripts/install-deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

# Starts the relay with its embedded defaults (127.0.0.1:7443, ./cairn-data).
run: build
	@sh scripts/run-relay.sh $(BUILD) $(DATA)

# The whole suite twice, a normal build and one under ASan+UBSan, the two passes side by side.
test: build build-asan
	sh scripts/test-both.sh $(BUILD) $(ASAN_BUILD)

test-unit: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

build-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCAIRN_SANITIZE=ON $(CMAKE_ARGS)
	cmake --build $(ASAN_BUILD) -j $(JOBS)

test-asan: build-asan
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j $(JOBS)

# libFuzzer: each target for FUZZ_SECONDS (clang), JOBS targets at once (one core each).
fuzz: deps
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCAIRN_FUZZ=ON
	cmake --build $(FUZZ_BUILD) -j $(JOBS)
	FUZZ_JOBS=$(JOBS) sh scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

# CI's fuzz run: every target briefly, failing on any finding. Builds the fuzz targets only.
fuzz-smoke: deps
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCAIRN_FUZZ=ON $(CMAKE_ARGS)
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_all
	FUZZ_JOBS=$(JOBS) sh scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SMOKE_SECONDS)

# The integration tests with every cairn-relay and cairn they start under valgrind memcheck
# (tests/support/wrapper.h): a leak or invalid access exits 97 and fails the test.
test-valgrind: deps
	cmake -S . -B $(VALGRIND_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS)
	cmake --build $(VALGRIND_BUILD) -j $(JOBS)
	cd $(VALGRIND_BUILD) && CAIRN_TEST_WRAPPER="$$(command -v valgrind) $(VALGRIND_OPTS)" \
		CAIRN_IT_ONLY='$(VALGRIND_CLIENT_TESTS)' ctest --output-on-failure -R '$(VALGRIND_TESTS)'

# Debian packages (contrib/debian) built from this tree into DEB_OUT, without tests.
DEB_OUT ?= build-deb
.PHONY: deb
deb: deps
	JOBS=$(JOBS) sh scripts/make-deb.sh $(DEB_OUT)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)

# geneinr - build, run and test.
#   make          build build/geneinr
#   make run      install missing Debian packages (as root), build, run the demo job
#   make test     install missing packages, build, run the whole test suite
#   make check    the unit tests only (tests/test_*.c): a minute, for the edit-build loop
#   make layers   includes and calls between files follow src/LAYERS (run by make test)
#   make bench    speed and memory benchmarks (figures go to docs/BENCHMARKS.md)
#   make asan     build the suite with AddressSanitizer + UBSan and run it
#   make fuzz     libFuzzer on the config, CSV, NIfTI and checkpoint readers and the AHBA folder reader (FUZZ_SECONDS each)

PKGS    := mpi-c hdf5-openmpi openblas yaml-0.1
PKGS    += libpng
PKGS    += sleef
PKGS    += libdeflate
PKGS    += libisal
PKGS    += libxxhash
CC      := gcc
SAN     ?=
OPT     ?= -O2 -g
# -fopenmp-simd: honour `#pragma omp simd` on the hot element-wise loops (no OpenMP run time);
# -fno-math-errno: sqrt and friends compile to instructions (nothing reads errno after math).
CFLAGS  := $(OPT) -std=c11 -fopenmp-simd -fno-math-errno -D_GNU_SOURCE -Wall -Wextra -Iinclude -I/usr/include/nifti \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null) $(SAN)
LDLIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lnifti2 -lznz -lz -lm $(SAN)
BUILD   ?= build
# prepare and the AHBA phantom writer read/write donor files in threads
CFLAGS  += -pthread
LDLIBS  += -pthread

# src/ is layered in folders, listed lowest first in src/LAYERS (`make layers` holds
# the includes and calls to it); objects mirror the folders under $(BUILD)/obj/.
LIB_SRC := $(wildcard src/*/*.c src/*/*/*.c)
LIB_OBJ := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(LIB_SRC))
TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))
BENCH_SRC := $(wildcard bench/bench_*.c)
BENCH_BIN := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))

.PHONY: all deps run test check layers bench asan fuzz clean
all: $(BUILD)/geneinr

deps:
	@tools/deps.sh

$(BUILD)/obj/%.o: src/%.c $(wildcard include/geneinr/*.h src/*/*.h src/*/*/*.h) | $(BUILD)/obj
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# The SLEEF kernels of each width are compiled for their instruction set and
# called only on CPUs that have it (src/base/vmath.c).
$(BUILD)/obj/base/vmath_avx512.o: CFLAGS += -mavx512f
$(BUILD)/obj/base/vmath_avx.o: CFLAGS += -mavx

$(BUILD)/geneinr: $(BUILD)/obj/main.o $(LIB_OBJ)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/tests/%: tests/%.c tests/check.h $(LIB_OBJ) | $(BUILD)/tests
	$(CC) $(CFLAGS) -Itests $< $(LIB_OBJ) -o $@ $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(LIB_OBJ) | $(BUILD)/bench
	$(CC) $(CFLAGS) $< $(LIB_OBJ) -o $@ $(LDLIBS)

$(BUILD)/obj $(BUILD)/tests $(BUILD)/bench:
	mkdir -p $@

run: deps
	@$(MAKE) --no-print-directory all
	@tools/run_demo.sh

test:
	@tools/deps.sh test
	@$(MAKE) --no-print-directory all $(TEST_BIN)
	@$(MAKE) --no-print-directory layers
	@tests/run.sh $(BUILD)

check:
	@$(MAKE) --no-print-directory all $(TEST_BIN)
	@tests/run.sh $(BUILD) --unit

# Includes and calls between files follow src/LAYERS: none points up, no circle.
layers: $(LIB_OBJ) $(BUILD)/obj/main.o
	@/usr/bin/python3 tools/layers.py --objs $(BUILD)/obj

bench: deps
	@$(MAKE) --no-print-directory all $(BENCH_BIN)
	@tools/bench.sh $(BUILD)

asan:
	@$(MAKE) --no-print-directory BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer" \
	    SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	    build-asan/geneinr $(patsubst $(BUILD)/%,build-asan/%,$(TEST_BIN))
	@ASAN_OPTIONS=detect_leaks=0 tests/run.sh build-asan

FUZZ_SECONDS ?= 600
fuzz:
	@tools/fuzz.sh $(FUZZ_SECONDS)

clean:
	rm -rf build build-asan build-fuzz

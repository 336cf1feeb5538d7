# snapctl -- build, test, fuzz, release.
#
#   make            ./snapctl: static musl binary, stripped (deps built once under build/)
#   make demo       install what is missing, build, run the demo on a file:// store (tests/demo.sh)
#   make test       install what is missing, then make check
#   make check      unit + integration tests on that binary; ends with "N passed, N failed, N skipped"
#                   T=PATTERN runs only the tests whose name contains PATTERN (T=unit: unit tests)
#   make asan       the same suite built with ASan+UBSan (clang, glibc)
#   make tsan       the same suite built with TSan
#   make fuzz       every libFuzzer target for FUZZ_TIME seconds each (default 60)
#   make release    release/snapctl-VERSION-x86_64-linux-musl.tar.gz and release/SHA256SUMS
#   make install    PREFIX=/usr/local DESTDIR= : binary, applet symlinks, man page
#
# VARIANT=release|asan|tsan|fuzz selects the toolchain; objects go to build/$(VARIANT).

VERSION := 0.1.0
VARIANT ?= release
B := build/$(VARIANT)
PREFIX ?= /usr/local
DESTDIR ?=
FUZZ_TIME ?= 60
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

WARN := -Wall -Wextra -Werror -Wformat=2 -Wvla -Wshadow -Wstrict-prototypes -Wno-missing-field-initializers
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE -DSNAPCTL_VERSION='"$(VERSION)"' -Ilib -Icmd -pthread $(WARN)

ifeq ($(VARIANT),release)
  CC := musl-gcc
  DEPS := build/deps-musl
  VCFLAGS := -O2 -g0 -ffunction-sections -fdata-sections -fno-asynchronous-unwind-tables
  VLDFLAGS := -static -s -Wl,--gc-sections
else ifeq ($(VARIANT),asan)
  CC := clang
  DEPS := build/deps-host
  VCFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined -DSNAP_SANITIZED
  VLDFLAGS := -fsanitize=address,undefined
else ifeq ($(VARIANT),tsan)
  CC := clang
  DEPS := build/deps-host
  VCFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=thread -DSNAP_SANITIZED
  VLDFLAGS := -fsanitize=thread
else ifeq ($(VARIANT),fuzz)
  CC := clang
  DEPS := build/deps-host
  VCFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -DSNAP_SANITIZED -DSNAP_FUZZING
  VLDFLAGS := -fsanitize=fuzzer,address,undefined
else
  $(error VARIANT must be release, asan, tsan or fuzz)
endif

CFLAGS_ALL := $(BASE_CFLAGS) -I$(DEPS)/include $(VCFLAGS) $(CFLAGS)
LIBS := -L$(DEPS)/lib -lmbedtls -lmbedx509 -lmbedcrypto -llz4 -lzstd -lz -lpthread

LIB_SRCS := $(sort $(wildcard lib/*/*.c))
CMD_SRCS := $(sort $(wildcard cmd/*.c))
UNIT_SRCS := $(sort $(wildcard tests/unit/*.c))
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz-*.c))
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(B)/%,$(FUZZ_SRCS))

LIB_OBJS := $(patsubst %.c,$(B)/obj/%.o,$(LIB_SRCS))
CMD_OBJS := $(patsubst %.c,$(B)/obj/%.o,$(CMD_SRCS))
UNIT_OBJS := $(patsubst %.c,$(B)/obj/%.o,$(UNIT_SRCS))
APPLETS := $(shell sed -n 's/^APPLET."\([^"]*\)".*/\1/p' cmd/applets.def)

.PHONY: all demo test deps check asan tsan fuzz fuzz-build release install clean distclean variant-bins variant-check
.DEFAULT_GOAL := all

ifeq ($(VARIANT),release)
all: snapctl
snapctl: $(B)/snapctl
	cp $< $@
else ifeq ($(VARIANT),fuzz)
all: $(FUZZ_BINS)
else
all: $(B)/snapctl
endif

$(DEPS)/.stamp: third_party/build-deps.sh third_party/versions.sh
	third_party/build-deps.sh $(CC) $(CURDIR)/$(DEPS)

$(B)/obj/%.o: %.c | $(DEPS)/.stamp
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(B)/snapctl: $(CMD_OBJS) $(LIB_OBJS)
	$(CC) $(VLDFLAGS) -o $@ $^ $(LIBS) $(LDFLAGS)

$(B)/unit-tests: $(UNIT_OBJS) $(LIB_OBJS)
	$(CC) $(VLDFLAGS) -o $@ $^ $(LIBS) $(LDFLAGS)

$(B)/fuzz-%: $(B)/obj/tests/fuzz/fuzz-%.o $(LIB_OBJS)
	$(CC) $(VLDFLAGS) -o $@ $^ $(LIBS) $(LDFLAGS)

deps:
	tests/install-deps.sh test

test: deps
	$(MAKE) check

demo:
	tests/install-deps.sh demo
	$(MAKE) -j$(JOBS) snapctl
	SNAPCTL=$(CURDIR)/snapctl tests/demo.sh

variant-bins: $(B)/snapctl $(B)/unit-tests

variant-check: variant-bins
	SNAPCTL=$(CURDIR)/$(B)/snapctl UNIT_TESTS=$(CURDIR)/$(B)/unit-tests VARIANT=$(VARIANT) tests/run.sh $(T)

check: snapctl
	$(MAKE) -j$(JOBS) VARIANT=release variant-bins
	SNAPCTL=$(CURDIR)/snapctl UNIT_TESTS=$(CURDIR)/build/release/unit-tests VARIANT=release tests/run.sh $(T)

asan:
	$(MAKE) -j$(JOBS) VARIANT=asan variant-bins
	$(MAKE) VARIANT=asan variant-check

tsan:
	$(MAKE) -j$(JOBS) VARIANT=tsan variant-bins
	$(MAKE) VARIANT=tsan variant-check

fuzz-build:
	$(MAKE) -j$(JOBS) VARIANT=fuzz all

fuzz: fuzz-build
	FUZZ_TIME=$(FUZZ_TIME) tests/fuzz/run.sh build/fuzz

release: snapctl
	release/build.sh $(VERSION)

install: snapctl
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0755 snapctl $(DESTDIR)$(PREFIX)/bin/snapctl
	for a in $(APPLETS); do ln -sf snapctl $(DESTDIR)$(PREFIX)/bin/$$a; done
	install -m 0644 docs/snapctl.1 $(DESTDIR)$(PREFIX)/share/man/man1/snapctl.1

clean:
	rm -rf build/release build/asan build/tsan build/fuzz snapctl

distclean:
	rm -rf build snapctl

-include $(LIB_OBJS:.o=.d) $(CMD_OBJS:.o=.d) $(UNIT_OBJS:.o=.d)

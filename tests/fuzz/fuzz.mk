# libFuzzer targets (docs/fuzzing.md). A Makefile fragment: the main
# Makefile includes it, and it also works alone, from the top of the tree:
#
#   make -f tests/fuzz/fuzz.mk fuzz         build build-fuzz/fuzz_<name>
#   make -f tests/fuzz/fuzz.mk fuzz-smoke   run each for FUZZ_TIME seconds
#
# Every variable here starts with FUZZ_ so that none clashes with the main
# Makefile's; the default goal of an including Makefile is left alone.

FUZZ_SAVED_GOAL := $(.DEFAULT_GOAL)
FUZZ_MK         := $(lastword $(MAKEFILE_LIST))

FUZZ_B        ?= build-fuzz
FUZZ_CC       ?= clang-14
# The sanitizers' reports name functions only through llvm-symbolizer, and
# the leak suppressions of the targets match function names: without it, a
# known leak of a library reads as a failure (package llvm-14).
FUZZ_SYMBOLIZER ?= /usr/lib/llvm-14/bin/llvm-symbolizer
FUZZ_TIME     ?= 10
FUZZ_MAX_LEN  ?= 8192
FUZZ_WERROR   ?= 1
# Extra libFuzzer flags for fuzz-smoke (e.g. FUZZ_RUN_FLAGS=-jobs=2).
FUZZ_RUN_FLAGS ?=

FUZZ_TARGETS := json_body bearer jws jwks config roles b64 username audit

# The project code the targets call, built once with the sanitizers into
# one archive: each target takes only the objects it needs from it.
# src/authn/authn.c holds the backend table, so the backends (and their
# libraries) come along for the username and JSON body targets.
FUZZ_SRC := $(wildcard src/util/*.c src/log/*.c src/config/*.c \
            src/token/*.c src/policy/*.c src/ratelimit/*.c src/authn/*.c)

FUZZ_PKGS_CFLAGS := jansson libcrypto libconfig libmicrohttpd
FUZZ_PKGS_LIBS   := jansson libcrypto libconfig ldap lber pam libxcrypt

# The house warnings. The targets are held to them with -Werror; the
# project code is (by gcc, in the main build), and clang's extra findings
# on it are shown here but do not stop the fuzz build.
FUZZ_WARN := -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes \
             -Wmissing-prototypes -Wold-style-definition -Wpointer-arith \
             -Wcast-qual -Wwrite-strings -Wvla -Wundef -Wimplicit-fallthrough
ifeq ($(FUZZ_WERROR),1)
FUZZ_TWARN := -Werror
endif

# Expanded when a rule runs (=, not :=): the packages pkg-config asks
# about may have been installed by this very make run.
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS   = -std=c11 -D_DEFAULT_SOURCE -pthread -g -O1 \
                -fno-omit-frame-pointer -fsanitize=fuzzer-no-link $(FUZZ_SAN) \
                -Isrc -Iinclude $(FUZZ_WARN) -MMD -MP \
                $(shell pkg-config --cflags $(FUZZ_PKGS_CFLAGS) 2>/dev/null)
FUZZ_LDFLAGS := -pthread -fsanitize=fuzzer $(FUZZ_SAN) -Wl,--as-needed
FUZZ_LIBS     = $(shell pkg-config --libs $(FUZZ_PKGS_LIBS) 2>/dev/null)

FUZZ_OBJ  := $(patsubst %.c,$(FUZZ_B)/obj/%.o,$(FUZZ_SRC))
FUZZ_TOBJ := $(patsubst %,$(FUZZ_B)/obj/tests/fuzz/fuzz_%.o,$(FUZZ_TARGETS))
FUZZ_LIB  := $(FUZZ_B)/libfuzzcore.a
FUZZ_BINS := $(patsubst %,$(FUZZ_B)/fuzz_%,$(FUZZ_TARGETS))

.PHONY: fuzz fuzz-smoke

fuzz: $(FUZZ_BINS)

# The Debian packages (clang-14, libclang-rt-14-dev, the -dev packages),
# as the main Makefile installs them; NODEPS=1 skips it there and here.
$(FUZZ_B)/.deps-ok: scripts/install-deps
	@mkdir -p $(@D)
	@if [ "$(NODEPS)" != 1 ]; then scripts/install-deps; fi
	@touch $@

# Static pattern rules: explicit, so no object counts as intermediate.
$(FUZZ_OBJ) $(FUZZ_TOBJ): $(FUZZ_B)/obj/%.o: %.c | $(FUZZ_B)/.deps-ok
	@mkdir -p $(@D)
	@echo "  CC (fuzz) $<"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(FUZZ_TOBJ): FUZZ_CFLAGS += $(FUZZ_TWARN)

$(FUZZ_LIB): $(FUZZ_OBJ)
	@rm -f $@
	@ar rcs $@ $^

$(FUZZ_BINS): $(FUZZ_B)/fuzz_%: $(FUZZ_B)/obj/tests/fuzz/fuzz_%.o $(FUZZ_LIB)
	@echo "  LD (fuzz) $@"
	@$(FUZZ_CC) $(FUZZ_LDFLAGS) -o $@ $< $(FUZZ_LIB) $(FUZZ_LIBS)

# Each target for FUZZ_TIME seconds on a copy of its seed corpus (the
# tree is never written), after every saved crash input of
# tests/data/fuzz/crashes/<name>-* once. Every target runs; the smoke
# fails at the end when any of them crashed, leaked, timed out or tripped
# a sanitizer. Logs: $(FUZZ_B)/fuzz_<name>.log; inputs: $(FUZZ_B)/artifacts/.
fuzz-smoke: fuzz
	@export ASAN_SYMBOLIZER_PATH=$(FUZZ_SYMBOLIZER); \
	mkdir -p $(FUZZ_B)/artifacts; failed=; \
	for t in $(FUZZ_TARGETS); do \
		log=$(FUZZ_B)/fuzz_$$t.log; \
		c=$(FUZZ_B)/corpus/$$t; rm -rf $$c; mkdir -p $$c; \
		cp tests/data/fuzz/$$t/* $$c/; \
		d=; [ -f tests/fuzz/$$t.dict ] && d=-dict=tests/fuzz/$$t.dict; \
		a=-artifact_prefix=$(FUZZ_B)/artifacts/$$t-; \
		set -- $$(ls tests/data/fuzz/crashes/$$t-* 2>/dev/null || true); \
		if [ $$# -gt 0 ]; then \
			echo "== fuzz_$$t: $$# saved crash input(s)"; \
			if ! $(FUZZ_B)/fuzz_$$t $$a "$$@" >$$log 2>&1; then \
				grep -E '^(Running:|==[0-9]+==|SUMMARY| +#[0-9]+ .* in (LLVMFuzzerTestOneInput|[a-z_0-9]+) /)' $$log | head -n 20; \
				echo "fuzz-smoke: fuzz_$$t crashes on a saved input ($$log)"; \
				failed="$$failed $$t"; continue; \
			fi; \
		fi; \
		echo "== fuzz_$$t: $(FUZZ_TIME) s"; \
		if ! $(FUZZ_B)/fuzz_$$t -max_total_time=$(FUZZ_TIME) \
		    -max_len=$(FUZZ_MAX_LEN) -timeout=10 -rss_limit_mb=2048 \
		    -print_final_stats=1 $$d $$a $(FUZZ_RUN_FLAGS) $$c \
		    >$$log 2>&1; then \
			tail -n 60 $$log; \
			echo "fuzz-smoke: fuzz_$$t failed ($$log)"; \
			failed="$$failed $$t"; continue; \
		fi; \
		grep -E '^#[0-9]+[[:space:]]+DONE' $$log || true; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz-smoke: FAILED:$$failed"; exit 1; fi; \
	echo "fuzz-smoke: all $(words $(FUZZ_TARGETS)) targets passed"

-include $(shell find $(FUZZ_B)/obj -name '*.d' 2>/dev/null)

# Alone, "fuzz" is the default goal; included, the includer's stays.
ifneq ($(FUZZ_SAVED_GOAL),)
.DEFAULT_GOAL := $(FUZZ_SAVED_GOAL)
else ifneq ($(firstword $(MAKEFILE_LIST)),$(FUZZ_MK))
.DEFAULT_GOAL :=
endif

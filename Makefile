# emailauth: one non-recursive Makefile. Outputs go under $(B)/.
#
#   make              build into build/
#   make check        install missing Debian packages, build, run every test
#   make asan         the same under ASan+UBSan, in build-asan/
#   make valgrind     the integration suites under valgrind, in build-valgrind/
#   make demo         start a throwaway directory, the daemon and the email API
#   make bench        benchmarks against their baselines (docs/performance.md)
#   make install      PREFIX=/usr/local DESTDIR=
#   make format-check clang-format 14 over src/, include/, tests/, examples/
#   make WERROR=0     for packagers: warnings stay warnings

VERSION   := 0.1.0
B         ?= build
PREFIX    ?= /usr/local
DESTDIR   ?=
WERROR    ?= 1
SAN       ?= 0
NODEPS    ?= 0
PYTHON    := /usr/bin/python3

PKGS      := libmicrohttpd libconfig jansson libcrypto sqlite3 libxcrypt ldap lber libcurl pam hiredis
CC        ?= gcc

WARN      := -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes \
             -Wmissing-prototypes -Wold-style-definition -Wpointer-arith \
             -Wcast-qual -Wwrite-strings -Wvla -Wundef -Wimplicit-fallthrough
ifeq ($(WERROR),1)
WARN      += -Werror
endif
HARDEN    := -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=3 -fstack-protector-strong \
             -fstack-clash-protection -fcf-protection -fPIE
OPT       := -O2 -g
ifeq ($(SAN),1)
OPT       := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
             -fno-sanitize-recover=undefined
HARDEN    := -fstack-protector-strong -fPIE
SANLD     := -fsanitize=address,undefined
endif

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CPPFLAGS  += -Isrc -Iinclude -DEA_VERSION='"$(VERSION)"'
# -fvisibility=hidden everywhere: a program's own function exported under
# the name of a library's (audit_open: libaudit, called by libpam) would
# take that library's calls (docs/pitfalls.md).
CFLAGS    += -std=c11 -D_DEFAULT_SOURCE -pthread $(OPT) $(WARN) $(HARDEN) \
             -fvisibility=hidden $(PKG_CFLAGS) -MMD -MP
LDFLAGS   += -pie -pthread -Wl,-z,relro,-z,now,-z,noexecstack $(SANLD)
LDLIBS    += $(PKG_LIBS)

# The code shared by the daemon, the command line and the guard.
CORE_SRC  := $(wildcard src/util/*.c src/log/*.c src/config/*.c src/http/*.c \
             src/token/*.c src/session/*.c src/policy/*.c src/authn/*.c \
             src/ratelimit/*.c src/guard/*.c)
DAEMON_SRC:= $(wildcard src/daemon/*.c)
CTL_SRC   := $(wildcard src/ctl/*.c)
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
EXAMPLE_SRC := $(wildcard examples/emailapi/*.c)

obj        = $(patsubst %.c,$(B)/obj/%.o,$(1))
CORE_OBJ  := $(call obj,$(CORE_SRC))
DAEMON_OBJ:= $(call obj,$(DAEMON_SRC))
CTL_OBJ   := $(call obj,$(CTL_SRC))
UNIT_BIN  := $(patsubst tests/unit/%.c,$(B)/tests/%,$(UNIT_SRC))
HELPER_BIN:= $(B)/tests/echo_server $(B)/tests/jwt_interop
BENCH_BIN := $(patsubst bench/%.c,$(B)/bench/%,$(wildcard bench/*.c))

# libemailauth: the guard and what it needs, compiled a second time as
# position-independent code with every symbol hidden but the ea_* API.
LIB_SRC   := $(wildcard src/util/*.c src/log/*.c src/token/*.c src/policy/*.c \
             src/ratelimit/*.c src/guard/*.c) src/config/lcfg.c \
             src/http/response.c src/http/request.c
LIB_PIC   := $(patsubst %.c,$(B)/pic/%.o,$(LIB_SRC))
LIB_PKGS  := libmicrohttpd jansson libcrypto libconfig libcurl
LIB_LIBS   = $(shell pkg-config --libs $(LIB_PKGS) 2>/dev/null)
SOVER     := 0
LIBDIR    ?= $(PREFIX)/lib
INCDIR    ?= $(PREFIX)/include
SYSCONFDIR?= /etc

DEPS_STAMP := $(B)/.deps-ok

# make V=1 shows the full command lines.
ifeq ($(V),1)
Q :=
else
Q := @
endif

.PHONY: all check unit integ asan valgrind demo install format format-check clean deps bench
.DELETE_ON_ERROR:
.SECONDARY:

all: $(B)/emailauthd $(B)/emailauthctl $(B)/libemailauth.so $(B)/libemailauth.a \
     $(B)/emailauth.pc $(if $(EXAMPLE_SRC),$(B)/emailapi)

# Installs every Debian package the build, tests and demo need (apt-get as
# root); quick and silent when all are there. NODEPS=1 skips it.
deps:
ifeq ($(NODEPS),0)
	@scripts/install-deps
endif

$(DEPS_STAMP): scripts/install-deps
	@mkdir -p $(@D)
ifeq ($(NODEPS),0)
	@scripts/install-deps
endif
	@touch $@

$(B)/obj/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(B)/pic/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC (pic) $<")
	$(Q)$(CC) $(CPPFLAGS) $(filter-out -fPIE,$(CFLAGS)) -fPIC \
	    -fvisibility=hidden $(shell pkg-config --cflags libcurl) -c -o $@ $<

$(B)/libemailauth.so: $(LIB_PIC)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -shared -Wl,-soname,libemailauth.so.$(SOVER) -Wl,--no-undefined \
	    $(filter-out -pie,$(LDFLAGS)) -o $@ $^ $(LIB_LIBS)

# The static library is one object with only the ea_* symbols global, so
# our internal names cannot clash with an application's.
$(B)/libemailauth.a: $(LIB_PIC)
	@$(if $(Q),echo "  AR      $@")
	$(Q)$(CC) -r -nostdlib -o $(B)/pic/emailauth-all.o $^
	$(Q)objcopy --localize-hidden $(B)/pic/emailauth-all.o
	$(Q)rm -f $@ && ar rcs $@ $(B)/pic/emailauth-all.o

# emailauth.pc for the PREFIX of this make run (install writes its own).
write_pc = printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$(LIBDIR)' 'includedir=$(INCDIR)' '' \
	    'Name: emailauth' \
	    'Description: emailauth guard: verify emailauth tokens in libmicrohttpd services' \
	    'Version: $(VERSION)' \
	    'Requires: libmicrohttpd' \
	    'Requires.private: jansson libcrypto libconfig libcurl' \
	    'Cflags: -I$${includedir}' \
	    'Libs: -L$${libdir} -lemailauth' > $(1)

$(B)/emailauth.pc: Makefile
	@mkdir -p $(@D)
	@$(call write_pc,$@)

# The example email API links the guard like any outside service would:
# through the public header and the static library only.
$(B)/emailapi: $(patsubst %.c,$(B)/obj/%.o,$(EXAMPLE_SRC)) $(B)/libemailauth.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LIB_LIBS) $(shell pkg-config --libs sqlite3)

$(B)/libcore.a: $(CORE_OBJ)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(B)/emailauthctl: $(CTL_OBJ) $(B)/libcore.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/emailauthd: $(DAEMON_OBJ) $(B)/libcore.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/tests/echo_server: $(B)/obj/tests/integ/echo_server.o $(B)/libcore.a
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# libjwt is the independent second implementation in the tests, never in
# the product: 1.10.2 trusts the header's alg (libraries.md §1).
$(B)/tests/jwt_interop: $(B)/obj/tests/integ/jwt_interop.o
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(shell pkg-config --libs libjwt) $(LDLIBS)

$(B)/bench/%: $(B)/obj/bench/%.o $(B)/libcore.a
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/tests/test_%: $(B)/obj/tests/unit/test_%.o $(B)/libcore.a
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(shell pkg-config --libs cmocka)

# Unit tests of daemon parts link those objects too.
$(B)/tests/test_revoked: $(B)/obj/src/daemon/revoked.o

check: deps all $(UNIT_BIN) $(HELPER_BIN)
	@$(MAKE) --no-print-directory B=$(B) SAN=$(SAN) unit integ

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

integ: all $(HELPER_BIN)
	cd tests/integ && EMAILAUTH_BUILD=$(abspath $(B)) EMAILAUTH_SAN=$(SAN) \
	    $(PYTHON) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS) .
	@if [ -f tests/attack/conftest.py ]; then \
	    echo "== attack suite"; \
	    cd tests/attack && EMAILAUTH_BUILD=$(abspath $(B)) EMAILAUTH_SAN=$(SAN) \
	    $(PYTHON) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS) . ; fi

# make bench (docs/performance.md): every benchmark against its baseline,
# on loopback; installs wrk and nginx-light when missing. BENCH_ARGS=--quick
# for a short run.
bench: all $(BENCH_BIN)
ifeq ($(NODEPS),0)
	@scripts/install-deps --bench
endif
	$(PYTHON) bench/run.py --build $(abspath $(B)) $(BENCH_ARGS)

asan:
	@$(MAKE) --no-print-directory B=build-asan SAN=1 check

# The integration and attack suites with every program they start under
# valgrind memcheck, in build-valgrind/ (docs/testing.md).
valgrind:
	@EMAILAUTH_VALGRIND=1 $(MAKE) --no-print-directory B=build-valgrind SAN=0 \
	    deps integ

demo: deps all
	@scripts/demo $(abspath $(B))

install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/share/doc/emailauth \
	    $(DESTDIR)$(SYSCONFDIR)/emailauth
	install -m 0755 $(B)/emailauthd $(DESTDIR)$(PREFIX)/sbin/emailauthd
	install -m 0755 $(B)/emailauthctl $(DESTDIR)$(PREFIX)/sbin/emailauthctl
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCDIR)/emailauth
	install -m 0644 include/emailauth/guard.h $(DESTDIR)$(INCDIR)/emailauth/guard.h
	install -m 0755 $(B)/libemailauth.so $(DESTDIR)$(LIBDIR)/libemailauth.so.$(VERSION)
	ln -sf libemailauth.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libemailauth.so.$(SOVER)
	ln -sf libemailauth.so.$(SOVER) $(DESTDIR)$(LIBDIR)/libemailauth.so
	install -m 0644 $(B)/libemailauth.a $(DESTDIR)$(LIBDIR)/libemailauth.a
	$(call write_pc,$(DESTDIR)$(LIBDIR)/pkgconfig/emailauth.pc)
	install -m 0644 etc/emailauthd.conf $(DESTDIR)$(PREFIX)/share/doc/emailauth/emailauthd.conf.example
	install -m 0644 README.md $(DESTDIR)$(PREFIX)/share/doc/emailauth/README.md

FORMAT_SRC = $(shell find src include tests examples bench -name '*.[ch]' 2>/dev/null)

format:
	clang-format -i $(FORMAT_SRC)

format-check:
	clang-format --dry-run --Werror $(FORMAT_SRC)

clean:
	rm -rf build build-asan build-fuzz

# make fuzz, make fuzz-smoke (docs/fuzzing.md).
include tests/fuzz/fuzz.mk

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)

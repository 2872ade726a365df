# runwarden: one binary, build/runwarden, with its BPF object embedded (skeleton).
#   make          build
#   make demo     install missing packages, build, run the built-in demo job
#   make check    install missing packages, build, run every test (also under ASan/UBSan)
#   make bench    benchmarks (bench/), figures for docs/performance.md
#   make install  PREFIX=/usr/local DESTDIR=
#   make dist     release artifact: build/dist/runwarden-VERSION-linux-ARCH.tar.gz and .sha256

CC      ?= gcc
CLANG   ?= clang
BPFTOOL ?= bpftool
PREFIX  ?= /usr/local
VERSION := $(shell cat VERSION)

B       ?= build
ARCH    := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')
WARN    := -Wall -Wextra -Werror
CFLAGS  ?= -O2 -g
# Source paths in debug info and the BPF object's BTF are relative to the tree, so the same
# sources build the same bytes wherever they are checked out (make dist).
PREFIXMAP := -ffile-prefix-map=$(CURDIR)=.
CFLAGS  += $(PREFIXMAP) -std=gnu11 $(WARN) -D_GNU_SOURCE -DRW_VERSION='"$(VERSION)"' \
	   -DRW_DATADIR='"$(PREFIX)/share/runwarden"' -Isrc -Ibpf -I$(B) \
	   $(shell pkg-config --cflags libpq) $(HS_CFLAGS)
# Hyperscan (libhyperscan-dev, amd64 only in Debian) or its portable fork Vectorscan
# (libvectorscan-dev, the same API and pkg-config name, elsewhere): scripts/deps.sh picks one.
HS_CFLAGS := $(shell pkg-config --cflags libhs 2>/dev/null || echo -I/usr/include/hs)
HS_LIBS   := $(shell pkg-config --libs libhs 2>/dev/null || echo -lhs)
LDLIBS  := -lpthread -lbpf -lelf -lz -ljansson -lyaml -lcrypto -lresolv -lcurl -lgit2 -lsqlite3 -lnghttp2 \
	   $(HS_LIBS)
# The shipped binary (build/runwarden, the release tarball's bin/runwarden) runs on the CI runners
# users have (Ubuntu 22.04/24.04, other distributions), whose libbpf, libgit2, jansson and yaml
# differ from Debian 12's or are absent. So those are linked in statically (libgit2 with its own
# static dependencies), and only what every such system has with the same ABI is left dynamic:
# glibc (2.34 at most), libcrypto.so.3, libcurl.so.4 and libgssapi_krb5.so.2 (libgit2's Negotiate
# auth, which runwarden never uses; libcurl already depends on it). libcrypto stays dynamic
# because libcurl's libssl uses it: two copies of OpenSSL in one process is not a thing to ship.
# libnghttp2.so.14 (HTTP/2 header decoding) stays dynamic for the same reason: libcurl.so.4 loads
# it on every such system, and a static copy would interpose on libcurl's own.
# Hyperscan is C++: it is linked in statically, the C++ runtime it needs (libstdc++.so.6,
# libgcc_s.so.1: on every such system, apt itself needs them) dynamically; a static libstdc++
# would need glibc 2.36 (arc4random).
# tests/e2e/test_dist.py holds the binary to this list.
LDLIBS_SHIP := -Wl,-Bstatic -lbpf -lelf -ljansson -lyaml -lsqlite3 \
	       -lgit2 -lmbedtls -lmbedx509 -lmbedcrypto -lhttp_parser -lssh2 -lpcre2-8 -lz -lhs \
	       -Wl,-Bdynamic -lcrypto -lcurl -l:libnghttp2.so.14 -l:libgssapi_krb5.so.2 -lstdc++ \
	       -lpthread -ldl -lm -lrt -lresolv

SRC     := $(shell find src -name '*.c' | sort)
LIBSRC  := $(filter-out src/main.c,$(SRC))
OBJ     := $(SRC:%.c=$(B)/%.o)
SAN_OBJ := $(SRC:%.c=$(B)/san/%.o)
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
UNIT    := $(patsubst tests/unit/%.c,$(B)/tests/%,$(wildcard tests/unit/test_*.c))
TOOLS   := $(patsubst tests/tools/%.c,$(B)/tools/%,$(wildcard tests/tools/*.c))

# A failed bpftool run must not leave an empty object that looks up to date.
.DELETE_ON_ERROR:

.PHONY: all deps test-deps demo check unit e2e bench install clean format lint dist FORCE
all: $(B)/runwarden

deps:
	@scripts/deps.sh build
test-deps:
	@scripts/deps.sh test

$(B)/vmlinux.h:
	@mkdir -p $(B)
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

$(B)/runwarden.bpf.o: bpf/runwarden.bpf.c $(wildcard bpf/*.h) $(B)/vmlinux.h
	$(CLANG) -g -O2 $(PREFIXMAP) -target bpf -D__TARGET_ARCH_$(ARCH) -Ibpf -I$(B) -Wall -Werror -Wno-gnu-variable-sized-type-not-at-end \
		-c $< -o $@.tmp && $(BPFTOOL) gen object $@ $@.tmp && rm -f $@.tmp

$(B)/runwarden.skel.h: $(B)/runwarden.bpf.o
	$(BPFTOOL) gen skeleton $< name runwarden_bpf > $@

$(B)/%.o: %.c $(wildcard src/*/*.h src/*.h bpf/*.h)
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(CC) $(CFLAGS) -c $< -o $@

$(B)/san/%.o: %.c $(wildcard src/*/*.h src/*.h bpf/*.h)
	@mkdir -p $(dir $@)
	@echo "  CC      $@"
	@$(CC) $(CFLAGS) $(SANFLAGS) -c $< -o $@

# Only the loader embeds the BPF object.
$(B)/src/kernel/loader.o $(B)/san/src/kernel/loader.o: $(B)/runwarden.skel.h

$(B)/runwarden: $(OBJ)
	@echo "  LD      $@"
	@$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS_SHIP)

$(B)/runwarden-san: $(SAN_OBJ)
	@echo "  LD      $@"
	@$(CC) $(CFLAGS) $(SANFLAGS) -o $@ $^ $(LDLIBS)

# Unit tests link every module except main.c, sanitized.
$(B)/tests/%: tests/unit/%.c $(filter-out $(B)/san/src/main.o,$(SAN_OBJ))
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(CFLAGS) $(SANFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

$(B)/tools/%: tests/tools/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(if $(findstring static,$*),-static) $(if $(findstring uring,$*),-luring) -lresolv

unit: $(UNIT)
	@set -e; for t in $(UNIT); do echo "== $$t"; $$t; done

e2e: $(B)/runwarden $(B)/runwarden-san $(TOOLS) dist
	RW_DEB_INSTALL=1 RW=$(CURDIR)/$(B)/runwarden-san TOOLS=$(CURDIR)/$(B)/tools \
		RW_DIST=$(CURDIR)/$(DIST_TGZ) tests/e2e/run.sh

check: test-deps
	$(MAKE) all $(B)/runwarden-san
	$(MAKE) lint
	$(MAKE) unit
	$(MAKE) e2e

demo:
	@scripts/deps.sh demo
	$(MAKE) all
	scripts/demo.sh $(B)/runwarden

bench: $(B)/runwarden $(TOOLS)
	bench/run.sh

install: $(B)/runwarden
	install -D -m 0755 $(B)/runwarden $(DESTDIR)$(PREFIX)/bin/runwarden
	install -D -m 0644 docs/runwarden.1 $(DESTDIR)$(PREFIX)/share/man/man1/runwarden.1
	install -D -m 0644 data/blocklist.txt $(DESTDIR)$(PREFIX)/share/runwarden/blocklist.txt
	install -D -m 0644 deploy/systemd/runwarden-agent.service \
		$(DESTDIR)$(PREFIX)/lib/systemd/system/runwarden-agent.service

# The release artifact the GitHub Action installs (docs/release.md): the binary (debug info
# stripped), man page, block list, systemd unit and the action's root helper, laid out as
# under PREFIX. Reproducible: fixed order, owners, modes and times (SOURCE_DATE_EPOCH,
# default the last commit's time), gzip without a name or time stamp. The .sha256 beside it
# is what scripts/stamp-action.sh pins into the action.
DIST_NAME := runwarden-$(VERSION)-linux-$(shell uname -m)
DIST_TGZ  := $(B)/dist/$(DIST_NAME).tar.gz
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
DIST_FILES := docs/runwarden.1 data/blocklist.txt deploy/systemd/runwarden-agent.service \
	      action/runwarden-action-root
dist: $(DIST_TGZ)
# Rewritten only when the time changes: a new commit rebuilds the tarball, nothing else does.
$(B)/dist/epoch: FORCE
	@mkdir -p $(@D) && echo $(SOURCE_DATE_EPOCH) | cmp -s - $@ || echo $(SOURCE_DATE_EPOCH) > $@
$(DIST_TGZ): $(B)/runwarden $(DIST_FILES) VERSION $(B)/dist/epoch
	@rm -rf $(B)/dist/stage && mkdir -p $(B)/dist/stage
	@d=$(B)/dist/stage/$(DIST_NAME); umask 022; set -e; \
	install -d -m 0755 $$d/bin $$d/share/man/man1 $$d/share/runwarden \
		$$d/lib/systemd/system $$d/libexec/runwarden; \
	strip --strip-debug -o $$d/bin/runwarden $(B)/runwarden; chmod 0755 $$d/bin/runwarden; \
	install -m 0644 docs/runwarden.1 $$d/share/man/man1/runwarden.1; \
	install -m 0644 data/blocklist.txt $$d/share/runwarden/blocklist.txt; \
	install -m 0644 deploy/systemd/runwarden-agent.service $$d/lib/systemd/system/; \
	install -m 0755 action/runwarden-action-root $$d/libexec/runwarden/; \
	echo $(VERSION) > $$d/share/runwarden/VERSION; chmod 0644 $$d/share/runwarden/VERSION; \
	find $$d -exec touch -h -d @$(SOURCE_DATE_EPOCH) {} +
	tar --sort=name --format=gnu --owner=0 --group=0 --numeric-owner \
		--mtime=@$(SOURCE_DATE_EPOCH) -C $(B)/dist/stage -cf - $(DIST_NAME) | gzip -9n > $@.tmp
	@mv $@.tmp $@ && rm -rf $(B)/dist/stage
	cd $(B)/dist && sha256sum $(DIST_NAME).tar.gz > $(DIST_NAME).tar.gz.sha256
	@cat $@.sha256

format:
	clang-format -i $(SRC) $(wildcard src/*/*.h tests/unit/*.c tests/tools/*.c) bpf/*.c bpf/*.h

# jansson's iteration macros are defined for cppcheck, which does not read system headers.
lint:
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
		--suppress=missingIncludeSystem --inline-suppr \
		-D'json_array_foreach(a,i,v)=for(i=0;(v=json_array_get(a,i));i++)' \
		-D'json_object_foreach(o,k,v)=for(k=0;(v=0);)' \
		-Isrc -Ibpf -I$(B) src tests/tools bench fuzz
	clang-format --dry-run --Werror $(SRC) $(wildcard src/*/*.h src/*.h bpf/*.c bpf/*.h)

clean:
	rm -rf $(B)

# libFuzzer harness for the evidence parsers `verify` runs on untrusted files (envelope and
# bundle, base64, statement, event-log chain, PEM keys). Seeds: fuzz/corpus/verify (kept in
# the repo); new finds go to $(B)/fuzz/work. FUZZ_SECONDS=N sets the run time.
FUZZ_SRC := fuzz/fuzz_verify.c $(addprefix src/evidence/,codec.c keys.c dsse.c chain.c statement.c evlog.c outdir.c) \
	    $(addprefix src/common/,strbuf.c jsonw.c strmap.c)
.PHONY: fuzz
$(B)/fuzz/fuzz_verify: $(FUZZ_SRC) $(wildcard src/evidence/*.h src/common/*.h)
	@mkdir -p $(dir $@)
	$(CLANG) -g -O1 -std=gnu11 -D_GNU_SOURCE -Isrc -fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=undefined -o $@ $(FUZZ_SRC) -ljansson -lcrypto
fuzz: $(B)/fuzz/fuzz_verify
	@mkdir -p $(B)/fuzz/work
	cd $(B)/fuzz && ./fuzz_verify -max_total_time=$${FUZZ_SECONDS:-120} -max_len=65536 \
		-rss_limit_mb=2048 -artifact_prefix=$(CURDIR)/fuzz/ work $(CURDIR)/fuzz/corpus/verify

# pylive: build, boot and test. Everything generated or downloaded lives under build/.
# `make run` and `make test` do all the set-up on a fresh Debian 12 machine (as root).

PY        ?= /usr/bin/python3
B         := build
VENV      := $(B)/venv
VPY       := $(VENV)/bin/python
DIST      := $(B)/pylive.dist
NET_DIST  := $(B)/pylive-net.dist
BINARIES  := $(DIST)/pylive $(NET_DIST)/pylive
# (from the environment when set there: `make rpm` lends its caches to the build in build/rpm)
export NUITKA_CACHE_DIR ?= $(CURDIR)/$(B)/cache/nuitka
export CCACHE_DIR       ?= $(CURDIR)/$(B)/cache/ccache

# Debian packages for building, imaging and booting (see README).
# isc-dhcp-client, iputils-arping: what network-legacy needs in the test initramfs without systemd (dracut-network
# itself is unpacked into build/ by qemu/pylive_initrd.py, not installed: it would change every other image);
# nfs-ganesha, nfs-ganesha-vfs: the NFSv4 export the network boot mounts (user space, on 127.0.0.1 and a port of
# its own; tests/qemu/nfsserver.py; they pull in nfs-common, so the network initramfs carries mount.nfs);
# openssl: the test CA and certificates of the HTTPS boots
APT_PACKAGES := python3-dev python3-venv gcc patchelf ccache dracut-core dracut-live udev dmsetup kmod cpio man-db \
	squashfs-tools xorriso e2fsprogs erofs-utils dosfstools qemu-system-x86 zstd isomd5sum shellcheck fdisk \
	isc-dhcp-client iputils-arping nfs-ganesha nfs-ganesha-vfs openssl

# Stdlib pieces pylive never reaches; guarded or lazy imports, so leaving them out is safe
# (measured: ../shared/reference/nuitka-initramfs.md §4). ssl, _ssl and _hashlib are in for network
# images (pylive/net: https; OpenSSL's SHA-256 runs ~9x the built-in _sha256 here, and libcrypto is
# there for ssl anyway).
# pickle, _compat_pickle: only logging's Logger.__reduce__ and tracemalloc import it; tracemalloc: warnings
# imports it under `except Exception`; _strptime, calendar: only strptime(), which pylive never calls.
NOFOLLOW := bz2,_bz2,lzma,_lzma,sqlite3,_sqlite3,decimal,_decimal,_pydecimal,csv,_csv,pydoc,doctest,email,http,xml,xmlrpc,pyexpat,urllib.request,tkinter,curses,distutils,lib2to3,ensurepip,idlelib,venv,tarfile,mailbox,ftplib,smtplib,imaplib,poplib,nntplib,telnetlib,dbm,shelve,lark,pytest,_pytest,pickle,_compat_pickle,tracemalloc,_strptime,calendar

# The initramfs's size (`make bench`; the two lists below are the one place to adjust it). Nuitka's standalone
# mode adds these stdlib modules whether anything imports them or not (build/nuitka-report.xml: "non-excluded
# parts of standard library"); no import in pylive reaches them. tests/unit/test_dist_trim.py fails, naming
# the module, when one becomes reachable (e.g. a new feature imports it): then take it off this list.
STDLIB_UNUSED := __hello__ __phello__ __phello__.spam _markupbase _pyio _sitebuiltins \
	_sysconfigdata__linux_x86_64-linux-gnu _sysconfigdata__x86_64-linux-gnu cgi cgitb chunk cmd code codeop \
	colorsys configparser crypt filecmp fileinput graphlib html html.entities html.parser imghdr imp \
	importlib.resources.simple importlib.simple mailcap mimetypes modulefinder netrc nturl2path pickletools \
	pipes pstats pyclbr quopri rlcompleter sched sndhdr socketserver symtable timeit tomllib \
	tomllib._parser tomllib._re tomllib._types trace uu webbrowser xdrlib
space := $(subst ,, )
commas = $(subst $(space),$(comma),$(strip $(1)))
comma := ,
# Files Nuitka puts into the dist that pylive never loads, removed after the build: the CJK codecs (the
# encodings package is always included, every codec with it; pylive runs with LC_ALL=C and decodes UTF-8).
DIST_UNUSED := _codecs_cn.so _codecs_hk.so _codecs_iso2022.so _codecs_jp.so _codecs_kr.so _codecs_tw.so _multibytecodec.so

# Two builds of the same program (issue 14's size target, the overlay watcher's RAM). $(NET_DIST) has
# everything: it goes into an initramfs with the pylive-net dracut module, and is the host's pylive command.
# $(DIST), the base, goes into every other initramfs. It is built without NET_ONLY: pylive.netsystem (the
# network steps), pylive.net.bench (`pylive bench-fetch`) and all that only they import (pylive.net's
# I/O, pyroute2, ssl with _ssl and libssl), and OpenSSL's hashes (_hashlib, libcrypto: hashlib falls back to Python's own MD5 and SHA). Parsing and planning
# (pylive.net.url, .checksum, pylive.planner.net) stay: `pylive explain` of a network command line works with
# either. The base refuses a network root= or live.updates= in one line (RealSystem.has_network_code: with
# --no-deployment-flag=excluded-module-usage the import fails as Python's own does, ModuleNotFoundError
# naming pylive.netsystem). With them go the stdlib modules Nuitka adds that only the network code's imports
# reach (pyroute2's, followed without the package configuration): BASE_STDLIB_UNUSED. tests/unit/
# test_dist_trim.py checks both lists and what each build holds.
NET_ONLY := pylive.netsystem,pylive.net.bench,_hashlib
BASE_STDLIB_UNUSED := _aix_support _bootsubprocess _compression _osx_support base64 contextvars getopt glob gzip \
	pkgutil platform sre_compile sysconfig
BASE_ONLY_FLAGS := --nofollow-import-to=$(NET_ONLY),$(call commas,$(BASE_STDLIB_UNUSED)) \
	--no-deployment-flag=excluded-module-usage

SOURCES := $(wildcard pylive/*.py pylive/*/*.py) cmdline_grammar/kernel_cmdline.lark nuitka-package.config.yml

.PHONY: help deps venv grammar binary docs dracut-base run test test-unit test-privileged test-qemu lint clean bench \
	readme-options install install-dracut-conf uninstall deb rpm test-package fuzz

help:
	@echo "make run         build everything and boot the demo live ISO in QEMU"
	@echo "make test        install what the tests need and run all tiers (unit, privileged, qemu)"
	@echo "make test-unit   unit tests only (no root, no QEMU)"
	@echo "make binary      the Nuitka standalone dist in $(DIST)"
	@echo "make docs        the man page and the bash completion in $(B)/doc"
	@echo "make install     (after binary and docs) DESTDIR=… PREFIX=/usr; install-dracut-conf switches it on"
	@echo "make deb         the Debian packages (debian/) in $(B)/deb, checked by lintian"
	@echo "make test-package  install the .debs here, build and boot an initramfs with them, purge them"
	@echo "make rpm         the RPM packages (packaging/rpm/pylive.spec) of HEAD in $(B)/rpm, checked by rpmlint"
	@echo "make fuzz        fuzz the parsers for FUZZ_SECONDS (default 600); failing inputs become regression tests"

$(B)/.apt-ok: Makefile
	@mkdir -p $(B)
	@if dpkg-query -W -f='$${Status}\n' $(APT_PACKAGES) 2>/dev/null | grep -vq '^install ok installed$$' \
	   || [ $$(dpkg-query -W -f='$${Status}\n' $(APT_PACKAGES) 2>/dev/null | wc -l) -ne $(words $(APT_PACKAGES)) ]; then \
		echo "+ apt-get install $(APT_PACKAGES)"; \
		policy=; if [ ! -e /usr/sbin/policy-rc.d ]; then policy=/usr/sbin/policy-rc.d; \
		  printf '#!/bin/sh\n# make deps (pylive): no service starts while the test tools are installed\nexit 101\n' \
		    > $$policy && chmod 755 $$policy; fi; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_PACKAGES) >$(B)/apt.log 2>&1; \
		rc=$$?; [ -z "$$policy" ] || rm -f $$policy; \
		[ $$rc = 0 ] || { tail -20 $(B)/apt.log; exit 1; }; \
	fi
	@touch $@
deps: $(B)/.apt-ok

# Package builds (debian/rules, packaging/rpm/pylive.spec) set PACKAGING=1: their build tools come from
# Build-Depends or BuildRequires, and the Makefile installs no apt packages.
$(VENV)/.ok: requirements.txt requirements-dev.txt | $(if $(PACKAGING),,$(B)/.apt-ok)
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q -r requirements-dev.txt
	@touch $@
venv: $(VENV)/.ok

# The lark grammar compiled into a standalone LALR module: the binary needs no lark runtime.
# slim_standalone.py takes lark's heavier imports off its start-up path.
pylive/_cmdline_parser.py: cmdline_grammar/kernel_cmdline.lark cmdline_grammar/slim_standalone.py $(VENV)/.ok
	$(VPY) -m lark.tools.standalone cmdline_grammar/kernel_cmdline.lark -o $(B)/_cmdline_parser.generated.py
	$(VPY) cmdline_grammar/slim_standalone.py $(B)/_cmdline_parser.generated.py $@
grammar: pylive/_cmdline_parser.py

# --lto=no: with LTO every rebuild takes ~4 min (ccache cannot help); without, seconds, same speed.
# -z pack-relative-relocs (DT_RELR; binutils >= 2.38, glibc >= 2.36 at run time, as in Debian 12 and Fedora 37):
# the binary's ~41 000 relative relocations in 20 KB instead of 990 KB (issue 14: 150 KB less in the initramfs).
NUITKA := LDFLAGS="$$LDFLAGS -Wl,-z,pack-relative-relocs" $(VPY) -m nuitka --mode=standalone --lto=no --assume-yes-for-downloads \
	  --python-flag=no_site --python-flag=no_docstrings --python-flag=no_asserts --nofollow-import-to=$(NOFOLLOW),$(call commas,$(STDLIB_UNUSED)) \
	  --user-package-configuration-file=nuitka-package.config.yml

# (the Makefile too: NOFOLLOW, STDLIB_UNUSED and DIST_UNUSED decide what goes into the dist)
# Each build has its own build directory (pylive.build, pylive-net.build) and report; ccache shares the C
# compilation of the modules both have.
NUITKA_PYLIVE = $(NUITKA) --python-flag=-m --noinclude-data-files='lark/grammars/*' --output-dir=$(B) \
	  --output-filename=pylive --output-folder-name=$(1) --report=$(B)/nuitka-report$(2).xml $(3) pylive \
	  > $(B)/nuitka$(2).log 2>&1 || { tail -30 $(B)/nuitka$(2).log; exit 1; }
$(DIST)/pylive: $(SOURCES) pylive/_cmdline_parser.py $(VENV)/.ok Makefile
	$(call NUITKA_PYLIVE,pylive,,$(BASE_ONLY_FLAGS))
	rm -f $(addprefix $(DIST)/,$(DIST_UNUSED))
	@test -x $@ && du -sh $(DIST)
$(NET_DIST)/pylive: $(SOURCES) pylive/_cmdline_parser.py $(VENV)/.ok Makefile
	$(call NUITKA_PYLIVE,pylive-net,-net,)
	rm -f $(addprefix $(NET_DIST)/,$(DIST_UNUSED))
	@test -x $@ && du -sh $(NET_DIST)
binary: $(BINARIES)

# The floor `make bench` compares against: a hello world with the same flags.
$(B)/hello.dist/hello: tests/bench/hello.py nuitka-package.config.yml $(VENV)/.ok
	$(NUITKA) --output-dir=$(B) --output-filename=hello $< > $(B)/nuitka-hello.log 2>&1 \
	  || { tail -30 $(B)/nuitka-hello.log; exit 1; }

# pylive(8) and the bash completion, from the argparse parser, the option table and README (packaging/docgen.py).
MANPAGE    := $(B)/doc/pylive.8
COMPLETION := $(B)/doc/pylive.bash
DOCGEN_INPUTS := packaging/docgen.py pylive/__main__.py pylive/options.py pylive/errors.py pylive/__init__.py README.md
$(MANPAGE): $(DOCGEN_INPUTS) pylive/_cmdline_parser.py $(VENV)/.ok
	@mkdir -p $(@D)
	$(VPY) packaging/docgen.py man README.md > $@.tmp && mv $@.tmp $@
$(COMPLETION): $(DOCGEN_INPUTS) pylive/_cmdline_parser.py $(VENV)/.ok
	@mkdir -p $(@D)
	$(VPY) packaging/docgen.py bash > $@.tmp && mv $@.tmp $@
docs: $(MANPAGE) $(COMPLETION)

# make install DESTDIR=… PREFIX=…: what the packages (debian/, packaging/rpm/) ship. It installs what
# `make binary docs` built (DIST, MANPAGE and COMPLETION can name other files) and builds nothing itself.
PREFIX      ?= /usr
BINDIR      ?= $(PREFIX)/bin
LIBDIR      ?= $(PREFIX)/lib
PKGLIBDIR   := $(LIBDIR)/pylive
# the full dist (the network code): for module pylive-net, and the pylive command on the PATH
NETLIBDIR   := $(LIBDIR)/pylive-net
# dracut reads its modules and drop-in configuration only under /usr/lib/dracut (dracut.pc: dracutdir).
DRACUTDIR   ?= $(PREFIX)/lib/dracut
MANDIR      ?= $(PREFIX)/share/man
DOCDIR      ?= $(PREFIX)/share/doc/pylive
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
MODULE_FILES := $(wildcard dracut-module/90pylive/*)
NET_MODULE_FILES := $(wildcard dracut-module/90pylive-net/*)
CONF_SNIPPET := packaging/dracut/50-pylive.conf
# Every file install and install-dracut-conf write (directories of their own: PKGLIBDIR, the module, DOCDIR).
INSTALLED := $(BINDIR)/pylive $(PKGLIBDIR) $(NETLIBDIR) $(DRACUTDIR)/modules.d/90pylive $(DRACUTDIR)/modules.d/90pylive-net \
	$(DRACUTDIR)/dracut.conf.d/50-pylive.conf \
	$(MANDIR)/man8/pylive.8 $(BASHCOMPDIR)/pylive $(DOCDIR)

install:
	@for f in $(DIST)/pylive $(NET_DIST)/pylive $(MANPAGE) $(COMPLETION); do \
		[ -e "$$f" ] || { echo "make install: $$f is missing: run make binary docs first" >&2; exit 1; }; done
	install -d $(DESTDIR)$(PKGLIBDIR) $(DESTDIR)$(NETLIBDIR) $(DESTDIR)$(BINDIR) \
	  $(DESTDIR)$(DRACUTDIR)/modules.d/90pylive $(DESTDIR)$(DRACUTDIR)/modules.d/90pylive-net \
	  $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(DOCDIR)/examples
	cp -R --preserve=mode $(DIST)/. $(DESTDIR)$(PKGLIBDIR)/
	cp -R --preserve=mode $(NET_DIST)/. $(DESTDIR)$(NETLIBDIR)/
	@# the command on the PATH is the full binary (everything works on the host, with OpenSSL's hashes)
	ln -sfn $$(realpath -m --relative-to=$(BINDIR) $(NETLIBDIR)/pylive) $(DESTDIR)$(BINDIR)/pylive
	install -m 0644 $(MODULE_FILES) $(DESTDIR)$(DRACUTDIR)/modules.d/90pylive/
	install -m 0644 $(NET_MODULE_FILES) $(DESTDIR)$(DRACUTDIR)/modules.d/90pylive-net/
	chmod 0755 $(DESTDIR)$(DRACUTDIR)/modules.d/90pylive/*.sh $(DESTDIR)$(DRACUTDIR)/modules.d/90pylive-net/*.sh
	@# module-setup.sh copies the dists from where this install put them
	sed -i 's|:-/usr/lib/pylive}|:-$(PKGLIBDIR)}|; s|:-/usr/lib/pylive-net}|:-$(NETLIBDIR)}|' \
	  $(DESTDIR)$(DRACUTDIR)/modules.d/90pylive/module-setup.sh $(DESTDIR)$(DRACUTDIR)/modules.d/90pylive-net/module-setup.sh
	grep -qF ':-$(PKGLIBDIR)}' $(DESTDIR)$(DRACUTDIR)/modules.d/90pylive/module-setup.sh
	for m in 90pylive 90pylive-net; do \
		grep -qF ':-$(NETLIBDIR)}' $(DESTDIR)$(DRACUTDIR)/modules.d/$$m/module-setup.sh || exit 1; done
	sed 's|/usr/lib/pylive/|$(PKGLIBDIR)/|; s|/usr/lib/pylive\\-net/|$(subst -,\\-,$(NETLIBDIR))/|' $(MANPAGE) > $(DESTDIR)$(MANDIR)/man8/pylive.8
	chmod 0644 $(DESTDIR)$(MANDIR)/man8/pylive.8
	install -m 0644 $(COMPLETION) $(DESTDIR)$(BASHCOMPDIR)/pylive
	install -m 0644 README.md $(DESTDIR)$(DOCDIR)/
	install -m 0644 $(CONF_SNIPPET) $(DESTDIR)$(DOCDIR)/examples/

# The drop-in that puts pylive into every initramfs dracut builds (package pylive-dracut-conf).
install-dracut-conf:
	install -D -m 0644 $(CONF_SNIPPET) $(DESTDIR)$(DRACUTDIR)/dracut.conf.d/50-pylive.conf

# Removes what install and install-dracut-conf wrote; under a DESTDIR also the directories they made
# there, when empty (outside one, directories such as /usr/share/man/man8 belong to others).
uninstall:
	rm -rf $(addprefix $(DESTDIR),$(INSTALLED))
	@if [ -n "$(DESTDIR)" ]; then \
		for d in $(dir $(INSTALLED)); do \
			while [ "$$d" != / ] && rmdir "$(DESTDIR)$$d" 2>/dev/null; do d=$$(dirname "$$d"); done; \
		done; \
	fi

# The Debian packages, built by dpkg-buildpackage in this tree (debian/rules runs `make binary docs install`),
# then moved from ../ into build/deb and checked by lintian. Its tools: Build-Depends plus DEB_TOOLS.
DEB_TOOLS := dpkg-dev debhelper fakeroot lintian
$(B)/.apt-deb-ok: debian/control
	@mkdir -p $(B)
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEB_TOOLS) \
	  >$(B)/apt-deb.log 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get build-dep -y -qq ./ >>$(B)/apt-deb.log 2>&1 \
	  || { tail -20 $(B)/apt-deb.log; exit 1; }
	@touch $@
deb: $(B)/.apt-deb-ok
	dpkg-buildpackage -us -uc -b > $(B)/deb.log 2>&1 || { tail -30 $(B)/deb.log; exit 1; }
	rm -rf $(B)/deb && mkdir -p $(B)/deb
	mv $$(sed 's|^\([^ ]*\) .*|../\1|' debian/files) \
	  ../pylive_$$(dpkg-parsechangelog -S Version)_$$(dpkg-architecture -qDEB_HOST_ARCH).changes $(B)/deb/
	lintian --info $(B)/deb/*.changes | tee $(B)/deb/lintian.txt
	@ls -l $(B)/deb/*.deb

# The RPM packages, built by rpmbuild from `git archive` of HEAD. --nodeps: on a Debian host rpm's database
# is empty, so it would find none of the BuildRequires (they are Debian packages here).
RPM_VERSION = $(shell sed -n 's/^Version: *//p' packaging/rpm/pylive.spec)
$(B)/.apt-rpm-ok:
	@mkdir -p $(B)
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rpm rpmlint \
	  >$(B)/apt-rpm.log 2>&1 || { tail -20 $(B)/apt-rpm.log; exit 1; }
	@touch $@
rpm: $(B)/.apt-rpm-ok
	rm -rf $(B)/rpm && mkdir -p $(B)/rpm/SOURCES
	git archive --prefix=pylive-$(RPM_VERSION)/ -o $(B)/rpm/SOURCES/pylive-$(RPM_VERSION).tar.gz HEAD
	rpmbuild -bb --nodeps --define "_topdir $(CURDIR)/$(B)/rpm" packaging/rpm/pylive.spec > $(B)/rpm/build.log 2>&1 \
	  || { tail -30 $(B)/rpm/build.log; exit 1; }
	rpmlint -r packaging/rpm/rpmlintrc packaging/rpm/pylive.spec $(B)/rpm/RPMS/*/*.rpm | tee $(B)/rpm/rpmlint.txt
	@ls -l $(B)/rpm/RPMS/*/*.rpm

# A private dracut tree: the system's modules plus ours, so nothing is installed on the host.
dracut-base: $(B)/dracut-base/.ok
$(B)/dracut-base/.ok: | $(B)/.apt-ok
	rm -rf $(B)/dracut-base && mkdir -p $(B)/dracut-base/modules.d
	for f in /usr/lib/dracut/*; do [ "$${f##*/}" = modules.d ] || ln -s $$f $(B)/dracut-base/; done
	for m in /usr/lib/dracut/modules.d/*; do ln -s $$m $(B)/dracut-base/modules.d/; done
	ln -s $(CURDIR)/dracut-module/90pylive $(B)/dracut-base/modules.d/90pylive
	@touch $@

run: $(BINARIES) dracut-base
	$(PY) -m qemu.demo

# Two test processes (pytest-xdist), each file in one of them: two QEMU boots at a time on 2 cores.
# A file stays whole because its boots may chain on one disk image; the longest files go first (tests/conftest.py).
XDIST := -n 2 --dist loadfile --no-loadscope-reorder

test: $(BINARIES) dracut-base
	$(VPY) -m pytest -o addopts="" -m "not package" $(XDIST) tests

test-unit: $(VENV)/.ok pylive/_cmdline_parser.py
	$(VPY) -m pytest tests/unit

# An open-ended fuzzing campaign (tests/unit/fuzzing.py; not part of `make test`, whose unit tests run a
# fixed, seeded budget of the same properties). Each property gets its share of FUZZ_SECONDS with fresh
# random inputs; Hypothesis's database is build/hypothesis, and each failing input, shrunk, is written to
# tests/unit/fuzz_regressions/ (commit it: the unit tests replay it).
FUZZ_SECONDS ?= 600
fuzz: $(VENV)/.ok pylive/_cmdline_parser.py
	HYPOTHESIS_PROFILE=fuzz FUZZ_SECONDS=$(FUZZ_SECONDS) $(VPY) -m pytest -p no:cacheprovider -o addopts="" \
	  $(wildcard tests/unit/test_fuzz_*.py)

test-privileged: $(VENV)/.ok
	$(VPY) -m pytest -m privileged tests/privileged

test-qemu: $(BINARIES) dracut-base
	$(VPY) -m pytest -m qemu $(XDIST) tests/qemu

# Installs the Debian packages on this machine, builds an initramfs with plain dracut and the snippet,
# purges the packages and boots that initramfs in QEMU (tests/package): opt-in, never part of `make test`.
test-package: deb $(VENV)/.ok
	$(VPY) -m pytest -o addopts="" -m package tests/package

lint: $(VENV)/.ok
	shellcheck -s sh $(filter-out %/module-setup.sh,$(wildcard dracut-module/*/*.sh)) qemu/guest/*.sh
	shellcheck -s bash dracut-module/*/module-setup.sh packaging/dracut/50-pylive.conf

clean:
	rm -rf $(B)/pylive.dist $(B)/pylive.build $(B)/pylive-net.dist $(B)/pylive-net.build $(B)/hello.dist $(B)/hello.build $(B)/initrd* \
	  $(B)/_cmdline_parser.generated.py pylive/_cmdline_parser.py $(B)/doc

bench: $(BINARIES) $(B)/hello.dist/hello dracut-base
	$(VPY) tests/bench/startup.py
	$(PY) -m qemu.bench_stage
	$(PY) -m qemu.bench_copy

# README's option table is generated from pylive/options.py; tests/unit/test_readme.py checks it.
readme-options: $(VENV)/.ok
	$(VPY) -c 'import re, pathlib; from pylive.options import markdown_table as t; p = pathlib.Path("README.md"); \
	  p.write_text(re.sub(r"(?s)(<!-- options:begin -->\n).*(<!-- options:end -->)", lambda m: m[1] + t() + m[2], p.read_text()))'

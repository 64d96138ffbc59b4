# pylive: build, boot and test. Everything generated or downloaded lives under build/.
# `make run` and `make test` do all the set-up on a fresh Debian 12 machine (as root).

PY        ?= /usr/bin/python3
B         := build
VENV      := $(B)/venv
VPY       := $(VENV)/bin/python
DIST      := $(B)/pylive.dist
export NUITKA_CACHE_DIR := $(CURDIR)/$(B)/cache/nuitka
export CCACHE_DIR       := $(CURDIR)/$(B)/cache/ccache

# Debian packages for building, imaging and booting (see README).
APT_PACKAGES := python3-dev python3-venv gcc patchelf ccache dracut-core dracut-live udev dmsetup kmod cpio \
	squashfs-tools xorriso e2fsprogs erofs-utils dosfstools qemu-system-x86 zstd isomd5sum shellcheck fdisk

# Stdlib pieces pylive never reaches; guarded or lazy imports, so leaving them out is safe
# (measured: ../shared/reference/nuitka-initramfs.md §4).
NOFOLLOW := ssl,_ssl,_hashlib,bz2,_bz2,lzma,_lzma,sqlite3,_sqlite3,decimal,_decimal,_pydecimal,csv,_csv,pydoc,doctest,email,http,xml,xmlrpc,pyexpat,urllib.request,tkinter,curses,distutils,lib2to3,ensurepip,idlelib,venv,tarfile,mailbox,ftplib,smtplib,imaplib,poplib,nntplib,telnetlib,dbm,shelve,lark,pytest,_pytest

SOURCES := $(wildcard pylive/*.py pylive/linux/*.py pylive/planner/*.py pylive/health/*.py) cmdline_grammar/kernel_cmdline.lark nuitka-package.config.yml

.PHONY: help deps venv grammar binary dracut-base run test test-unit test-privileged test-qemu lint clean bench readme-options fuzz

help:
	@echo "make run         build everything and boot the demo live ISO in QEMU"
	@echo "make test        install what the tests need and run all tiers (unit, privileged, qemu)"
	@echo "make test-unit   unit tests only (no root, no QEMU)"
	@echo "make binary      the Nuitka standalone dist in $(DIST)"
	@echo "make fuzz        fuzz the parsers for FUZZ_SECONDS (default 600); failing inputs become regression tests"

$(B)/.apt-ok: Makefile
	@mkdir -p $(B)
	@if dpkg-query -W -f='$${Status}\n' $(APT_PACKAGES) 2>/dev/null | grep -vq '^install ok installed$$' \
	   || [ $$(dpkg-query -W -f='$${Status}\n' $(APT_PACKAGES) 2>/dev/null | wc -l) -ne $(words $(APT_PACKAGES)) ]; then \
		echo "+ apt-get install $(APT_PACKAGES)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_PACKAGES) >$(B)/apt.log 2>&1 \
		  || { tail -20 $(B)/apt.log; exit 1; }; \
	fi
	@touch $@
deps: $(B)/.apt-ok

$(VENV)/.ok: requirements.txt requirements-dev.txt | $(B)/.apt-ok
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
NUITKA := $(VPY) -m nuitka --mode=standalone --lto=no --assume-yes-for-downloads \
	  --python-flag=no_site --python-flag=no_docstrings --python-flag=no_asserts --nofollow-import-to=$(NOFOLLOW) \
	  --user-package-configuration-file=nuitka-package.config.yml

$(DIST)/pylive: $(SOURCES) pylive/_cmdline_parser.py $(VENV)/.ok
	$(NUITKA) --python-flag=-m --noinclude-data-files='lark/grammars/*' \
	  --output-dir=$(B) --output-filename=pylive --report=$(B)/nuitka-report.xml pylive > $(B)/nuitka.log 2>&1 \
	  || { tail -30 $(B)/nuitka.log; exit 1; }
	@test -x $@ && du -sh $(DIST)
binary: $(DIST)/pylive

# The floor `make bench` compares against: a hello world with the same flags.
$(B)/hello.dist/hello: tests/bench/hello.py nuitka-package.config.yml $(VENV)/.ok
	$(NUITKA) --output-dir=$(B) --output-filename=hello $< > $(B)/nuitka-hello.log 2>&1 \
	  || { tail -30 $(B)/nuitka-hello.log; exit 1; }

# A private dracut tree: the system's modules plus ours, so nothing is installed on the host.
dracut-base: $(B)/dracut-base/.ok
$(B)/dracut-base/.ok: | $(B)/.apt-ok
	rm -rf $(B)/dracut-base && mkdir -p $(B)/dracut-base/modules.d
	for f in /usr/lib/dracut/*; do [ "$${f##*/}" = modules.d ] || ln -s $$f $(B)/dracut-base/; done
	for m in /usr/lib/dracut/modules.d/*; do ln -s $$m $(B)/dracut-base/modules.d/; done
	ln -s $(CURDIR)/dracut-module/90pylive $(B)/dracut-base/modules.d/90pylive
	@touch $@

run: $(DIST)/pylive dracut-base
	$(PY) -m qemu.demo

# Two test processes (pytest-xdist), each file in one of them: two QEMU boots at a time on 2 cores.
# A file stays whole because its boots may chain on one disk image.
XDIST := -n 2 --dist loadfile

test: $(DIST)/pylive dracut-base
	$(VPY) -m pytest -o addopts="" $(XDIST) tests

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

test-qemu: $(DIST)/pylive dracut-base
	$(VPY) -m pytest -m qemu $(XDIST) tests/qemu

lint: $(VENV)/.ok
	shellcheck -s sh $(filter-out %/module-setup.sh,$(wildcard dracut-module/90pylive/*.sh)) qemu/guest/*.sh
	shellcheck -s bash dracut-module/90pylive/module-setup.sh

clean:
	rm -rf $(B)/pylive.dist $(B)/pylive.build $(B)/hello.dist $(B)/hello.build $(B)/initrd* \
	  $(B)/_cmdline_parser.generated.py pylive/_cmdline_parser.py

bench: $(DIST)/pylive $(B)/hello.dist/hello dracut-base
	$(VPY) tests/bench/startup.py
	$(PY) -m qemu.bench_copy

# README's option table is generated from pylive/options.py; tests/unit/test_readme.py checks it.
readme-options: $(VENV)/.ok
	$(VPY) -c 'import re, pathlib; from pylive.options import markdown_table as t; p = pathlib.Path("README.md"); \
	  p.write_text(re.sub(r"(?s)(<!-- options:begin -->\n).*(<!-- options:end -->)", lambda m: m[1] + t() + m[2], p.read_text()))'

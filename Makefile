# SPDX-License-Identifier: GPL-2.0
#
# dm-cmk top-level Makefile.
#
#   make [all]          module for the default kernel (Debian 6.1), agent,
#                       kselftests
#   make modules-all    module for every installed Debian kernel, no warnings
#   make deps           install the Debian packages we need (idempotent)
#   make lint           checkpatch --strict, kernel-doc, sparse, W=1 builds
#   make guest-test     run the kselftests in QEMU (KVER=<kver>|all)
#   make debug-test     the kselftests on the debug kernel (KASAN, lockdep,
#                       kmemleak, ...; built once into /var/cache/dm-cmk by
#                       scripts/debug-kernel.sh, ~25 min of 2 cores cold)
#   make debug-integration  every integration test (agent + kernel) on the
#                       debug kernel (~11 min; make check runs them all)
#   make debug-fault    the fault tests on the debug kernel (dm-flakey,
#                       dm-dust, failslab, fail_page_alloc, a failing
#                       crypto driver; ~30 min; make check sweeps the
#                       allocations in 16 steps, not 160)
#   make debug-hibernate  a real hibernation image (test_resume, swap on a
#                       virtio disk) on the debug kernel holds no key
#   make debug-harness  show the debug run fails on each kind of report
#   make check          all of the above but debug-hibernate and
#                       debug-harness; ends with "N passed, N failed"
#   make fuzz           every libFuzzer target in tests/fuzz for FUZZ_SECONDS
#                       (20) each; exec/s, coverage, crash inputs
#                       (Documentation/fuzzing.rst)
#   make kfuzz          the kernel fuzzer in a QEMU guest for FUZZ_MINUTES
#                       (2) on KVER (default: Debian 6.12); KFUZZ_SEED=N
#                       repeats a run (Documentation/fuzzing.rst)
#   make crash          crash consistency of the header writes: every prefix
#                       of their dm-log-writes log replayed (tests/crash/
#                       run.sh), then CRASH_POINTS (20) power cuts during
#                       KEK rotation under I/O (tests/crash/powercut.sh;
#                       CRASH_SEED=N repeats the delays; make check runs 2)
#   make mutate         deliberate one-line mutations (tests/mutate/
#                       mutations.txt), each built in a scratch copy and run
#                       through its suite: caught / survived per mutation
#                       (MUTATE_ONLY="name ..." runs those; not in check)
#   make bench          dm-cmk vs dm-crypt/linear/the cipher in QEMU (not a
#                       test; BENCH_QUICK=1, BENCH_RUNS=N, KVER=<kver>|all)
#   make bench-storage  cmkctl seal/unseal of 16 MiB vs openssl speed and the
#                       JavaScript ESDK; PostgreSQL archiving sealed vs cp
#                       (not a test; Documentation/storage.rst)
#   make fleet          1,000 real agents (--no-kernel) against moto behind a
#                       KMS quota: load, throttles, time-to-wipe; report and
#                       charts in build/fleet (Documentation/fleet.rst)
#   make install        agent, units, module, docs, man pages (DESTDIR=,
#                       PREFIX=/usr, INSTALL_MODULE=updates|dkms|none; see
#                       Documentation/deployment.rst): for developers
#   make deb            the Debian packages dm-cmk-dkms and cmk-agent in
#                       build/deb/, then lintian (DEB_VERSION_SUFFIX=+x
#                       builds a newer version of the same tree)
#   make version        the version, from debian/changelog
#
# KVER=<kver> picks the kernel (default: the installed Debian 6.1);
# KDIR=<dir> overrides its build tree.  Kernels are discovered from
# /boot/vmlinuz-* that have /lib/modules/<kver>/build; the host's running
# kernel is never used.

TOP := $(CURDIR)
BUILD := $(TOP)/build

# Debian kernels with headers, oldest first.
KVERS := $(shell scripts/kvers.sh)

ifdef KDIR
KVER ?= $(shell cat $(KDIR)/include/config/kernel.release 2>/dev/null)
endif
KVER ?= $(firstword $(filter 6.1.%,$(KVERS)) $(KVERS))
KDIR ?= /lib/modules/$(KVER)/build

# Headers borrowed from Debian's linux-source-6.1 at build time.
KSRC := $(BUILD)/ksrc/linux-source-6.1
KSFT_INC := $(KSRC)/tools/testing/selftests
TESTMGR_H := $(KSRC)/crypto/testmgr.h
KSFT_OUT := $(BUILD)/tests/kselftest

HAVE_AGENT := $(wildcard agent/Makefile)
HAVE_KSFT := $(wildcard tests/kselftest/Makefile)

.PHONY: all module modules-all agent kselftest ksrc deps lint guest-test \
	check clean help bench bench-storage fleet install fuzz kfuzz man deb \
	version demo-storage mutate crash \
	debug-kernel debug-module debug-test debug-integration debug-fault debug-harness \
	debug-hibernate

all: module $(if $(HAVE_AGENT),agent) $(if $(HAVE_KSFT),kselftest)

module:
	@test -n "$(KVER)" || { echo "no Debian kernel headers found: run 'make deps'"; exit 1; }
	scripts/kbuild.sh --kdir $(KDIR) $(KVER)
	@echo "  built $(BUILD)/kmod/$(KVER)/kernel/dm-cmk.ko"

modules-all:
	@test -n "$(KVERS)" || { echo "no Debian kernel headers found: run 'make deps'"; exit 1; }
	@set -e; for k in $(KVERS); do \
		echo "  KBUILD  $$k"; \
		scripts/kbuild.sh --werror $$k; \
	done

agent:
	$(MAKE) -C agent all

# ksrc.sh keeps its own stamp (~10 s the first time, instant after).
ksrc:
	@scripts/ksrc.sh $(BUILD)/ksrc

kselftest: ksrc
	$(MAKE) -C tests/kselftest KSFT_INC=$(KSFT_INC) TESTMGR_H=$(TESTMGR_H) \
		O=$(KSFT_OUT)

deps:
	scripts/deps.sh

lint:
	scripts/lint.sh

# KVER=all (the default) runs every installed Debian kernel in turn.
guest-test: modules-all $(if $(HAVE_KSFT),kselftest)
	scripts/qemu/run-all.sh $(if $(filter command line,$(origin KVER)),$(KVER),all)

# The debug kernel (cached) and the module for it, warning-free.
debug-kernel:
	scripts/debug-kernel.sh

debug-module: debug-kernel
	@d=$$(scripts/debug-kernel.sh --print-dir) && \
		scripts/kbuild.sh --werror --kdir $$d/build $$(cat $$d/release)

debug-test: debug-module $(if $(HAVE_KSFT),kselftest)
	scripts/qemu/run-guest.sh --kver debug

debug-integration: debug-module
	$(MAKE) -C agent all
	tests/integration/run.sh --kver debug

# Section 3 of issue 14: backing-device errors and failed allocations.
debug-fault: debug-module $(if $(HAVE_KSFT),kselftest)
	tests/debug-kernel/fault.sh --kver debug

# A real hibernation image, written to swap and restored (test_resume).
debug-hibernate: debug-module $(if $(HAVE_KSFT),kselftest)
	tests/debug-kernel/hibernate.sh --kver debug

# The harness itself: a test-only module makes each kind of report and
# the run must fail on each.
debug-harness: debug-kernel
	tests/debug-kernel/harness_selftest.sh

check:
	scripts/check.sh

FUZZ_SECONDS ?= 20
fuzz:
	$(MAKE) -C agent fuzz FUZZ_SECONDS=$(FUZZ_SECONDS)

# The kernel fuzzer (tests/kselftest/kfuzz.sh): the module for every
# kernel, the fuzzer, then FUZZ_MINUTES of fuzzing in a guest.
FUZZ_MINUTES ?= 2
kfuzz: modules-all kselftest $(if $(filter debug,$(KVER)),debug-module)
	tests/kselftest/kfuzz.sh --minutes $(FUZZ_MINUTES) \
		$(if $(filter command line,$(origin KVER)),--kver $(KVER)) \
		$(if $(KFUZZ_SEED),--seed $(KFUZZ_SEED))

CRASH_POINTS ?= 20
crash: modules-all agent
	tests/crash/run.sh $(if $(filter command line,$(origin KVER)),--kver $(KVER))
	tests/crash/powercut.sh --points $(CRASH_POINTS) \
		$(if $(filter command line,$(origin KVER)),--kver $(KVER)) \
		$(if $(CRASH_SEED),--seed $(CRASH_SEED))

# Do the tests guard their promises?  Each mutation in tests/mutate/
# mutations.txt is applied to a scratch copy of the tree, built and run
# through its suite (kernel ones: the module for KVER, default the Debian
# 6.12, in a QEMU guest).  Slow (minutes per kernel mutation): not part of
# 'make check'.
mutate:
	scripts/mutate.sh $(if $(filter command line,$(origin KVER)),--kver $(KVER))

# Timings, not tests: never part of 'make check'.  See
# Documentation/benchmarks.rst.
bench:
	KVER=$(if $(filter command line,$(origin KVER)),$(KVER),$${KVER:-}) scripts/bench/bench.sh

# 1,000 agents, about 20 minutes (Documentation/fleet.rst); make check
# runs the short version.
fleet:
	tests/fleet/run.sh --full

# Storage: cmkctl seal/unseal of a 16 MiB object vs openssl speed and the
# JavaScript ESDK; PostgreSQL's archive throughput, sealed vs cp (timings
# only).
bench-storage:
	$(MAKE) -C agent all && tests/storage/esdk_bench.sh && \
		tests/storage/postgres_archive_bench.sh

demo: deps
	$(MAKE) all && scripts/demo.sh $(if $(filter command line,$(origin KVER)),--kver $(KVER))

# The storage story on the host (no QEMU): PostgreSQL 15 archiving sealed
# WAL through the agent's key socket, PITR, revoke, break-glass; < 1 min.
demo-storage: deps
	$(MAKE) -C agent all && scripts/demo-storage.sh

integration-test: all
	tests/integration/run.sh --kver $(KVER)

# ---- install ----------------------------------------------------------------
# DESTDIR is a staging root (an image, a package); PREFIX the program prefix.
# INSTALL_MODULE=updates: the module built for KVER into
#   /lib/modules/KVER/updates/ (then depmod);
# dkms: the module's source into /usr/src/dm-cmk-VERSION with dkms.conf
#   (then "dkms install dm-cmk/VERSION" builds it for every kernel);
# none: no module.
DESTDIR ?=
PREFIX ?= /usr
SBINDIR ?= $(PREFIX)/sbin
LIBEXECDIR ?= $(PREFIX)/libexec
UNITDIR ?= $(PREFIX)/lib/systemd/system
DOCDIR ?= $(PREFIX)/share/doc/dm-cmk
MANDIR ?= $(PREFIX)/share/man
INSTALL_MODULE ?= updates
# The one place the version is written: the top entry of debian/changelog
# (its upstream part; the package is native, so that is all of it).
# dkms.conf says #MODULE_VERSION#, filled in below and by dh_dkms.
VERSION := $(shell awk 'NR == 1 { gsub(/[()]/, "", $$2); sub(/-[^-]*$$/, "", $$2); print $$2; exit }' debian/changelog)
INSTALL ?= install
MAN := $(BUILD)/man/cmk-agent.8 $(BUILD)/man/cmkctl.8

version:
	@echo $(VERSION)

# Man pages from the reStructuredText references (rst2man: python3-docutils).
man: $(MAN)

$(BUILD)/man/%.8: Documentation/%.rst
	@mkdir -p $(@D)
	rst2man --exit-status=2 $< $@

# Packages: scripts/deb.sh builds a copy of the tree with
# dpkg-buildpackage (debian/rules runs "make install" below), then lintian.
deb:
	scripts/deb.sh $(if $(DEB_VERSION_SUFFIX),--suffix $(DEB_VERSION_SUFFIX)) \
		$(if $(DEBDIR),--out $(DEBDIR))

install: $(if $(filter updates,$(INSTALL_MODULE)),module) agent man
	$(INSTALL) -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(LIBEXECDIR)/dm-cmk \
		$(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(MANDIR)/man8
	$(INSTALL) -m 0755 agent/build/cmk-agent agent/build/cmkctl $(DESTDIR)$(SBINDIR)/
	$(INSTALL) -m 0644 $(MAN) $(DESTDIR)$(MANDIR)/man8/
	$(INSTALL) -m 0755 scripts/systemd/cmk-ephemeral $(DESTDIR)$(LIBEXECDIR)/dm-cmk/
	# PostgreSQL's archive_command, restore_command and the base backup
	# helpers: run by PostgreSQL or an operator with their full path
	# (storage.rst), next to the library they source; bash by its path.
	$(INSTALL) -d $(DESTDIR)$(LIBEXECDIR)/dm-cmk/pg
	for f in cmk-wal-archive cmk-wal-restore cmk-pg-basebackup cmk-pg-restore-backup \
		cmk-pg-temp-tablespace; do \
		sed '1s|^#!/usr/bin/env bash$$|#!/bin/bash|' scripts/pg/$$f \
			>$(DESTDIR)$(LIBEXECDIR)/dm-cmk/pg/$$f && \
		chmod 0755 $(DESTDIR)$(LIBEXECDIR)/dm-cmk/pg/$$f || exit 1; \
	done
	$(INSTALL) -m 0644 scripts/pg/cmk-pg-lib.sh $(DESTDIR)$(LIBEXECDIR)/dm-cmk/pg/
	for u in cmk-agent.service cmk-ephemeral@.service; do \
		sed -e 's|/usr/sbin/|$(SBINDIR)/|g' -e 's|/usr/libexec/|$(LIBEXECDIR)/|g' \
			-e 's|/usr/share/doc/dm-cmk/|$(DOCDIR)/|g' \
			scripts/systemd/$$u >$(DESTDIR)$(UNITDIR)/$$u && \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$$u || exit 1; \
	done
	$(INSTALL) -m 0644 README.md Documentation/*.rst $(DESTDIR)$(DOCDIR)/
	$(INSTALL) -m 0644 scripts/cloud-init/cloud-config.yaml scripts/cloud-init/agent.conf \
		scripts/cloud-init/ephemeral.conf scripts/systemd/database-drop-in.conf \
		$(DESTDIR)$(DOCDIR)/examples/
ifeq ($(INSTALL_MODULE),updates)
	$(INSTALL) -d $(DESTDIR)/lib/modules/$(KVER)/updates
	$(INSTALL) -m 0644 $(BUILD)/kmod/$(KVER)/kernel/dm-cmk.ko \
		$(DESTDIR)/lib/modules/$(KVER)/updates/
	@if [ -z "$(DESTDIR)" ] || [ -f $(DESTDIR)/lib/modules/$(KVER)/modules.order ]; then \
		echo "  DEPMOD  $(KVER)"; depmod $(if $(DESTDIR),-b $(DESTDIR)) $(KVER); \
	else \
		echo "  (no kernel $(KVER) under $(DESTDIR): run depmod $(KVER) on the target)"; \
	fi
else ifeq ($(INSTALL_MODULE),dkms)
	$(INSTALL) -d $(DESTDIR)/usr/src/dm-cmk-$(VERSION)/kernel \
		$(DESTDIR)/usr/src/dm-cmk-$(VERSION)/include/uapi/linux
	$(INSTALL) -m 0644 Kbuild $(DESTDIR)/usr/src/dm-cmk-$(VERSION)/
	sed 's/#MODULE_VERSION#/$(VERSION)/' dkms.conf >$(DESTDIR)/usr/src/dm-cmk-$(VERSION)/dkms.conf
	chmod 0644 $(DESTDIR)/usr/src/dm-cmk-$(VERSION)/dkms.conf
	$(INSTALL) -m 0644 kernel/Kbuild kernel/*.c kernel/*.h \
		$(DESTDIR)/usr/src/dm-cmk-$(VERSION)/kernel/
	$(INSTALL) -m 0644 include/uapi/linux/dm-cmk.h \
		$(DESTDIR)/usr/src/dm-cmk-$(VERSION)/include/uapi/linux/
else ifneq ($(INSTALL_MODULE),none)
	$(error INSTALL_MODULE must be updates, dkms or none)
endif

clean:
	rm -rf $(BUILD)
	$(if $(HAVE_AGENT),-$(MAKE) -C agent clean)
	$(if $(HAVE_KSFT),-$(MAKE) -C tests/kselftest clean O=$(KSFT_OUT))

help:
	@sed -n '3,/^$$/p' Makefile | sed '$$d; s/^# \{0,1\}//'

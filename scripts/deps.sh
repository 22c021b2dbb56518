#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Install every Debian 12 package dm-cmk needs to build, lint and test.
# Idempotent: when everything is present it returns at once (one
# dpkg-query), otherwise it runs apt-get update + install for the missing
# packages only.  Must run as root (or have nothing to install).
set -euo pipefail

pkgs=(
	# toolchain and kernel builds (6.1 and 6.12 images + headers; the 6.12
	# headers pull in pahole for module BTF)
	build-essential pkg-config kmod
	linux-image-amd64 linux-headers-amd64
	linux-image-6.12-amd64 linux-headers-6.12-amd64
	# checkpatch.pl, kernel-doc, kselftest_harness.h, crypto/testmgr.h
	linux-source-6.1 xz-utils perl
	sparse shellcheck
	# Documentation/*.rst syntax (scripts/lint.sh)
	python3-docutils
	# QEMU guest runner: initramfs from host files; qemu-img for the
	# snapshot disk and python3 for the QMP client of run-guest.sh
	# --savevm-restore (tests/kselftest/vmfork.sh)
	qemu-system-x86 qemu-utils python3 busybox-static dmsetup fio cpio gzip zstd
	# guest tools (run-guest.sh --tool): capsh for the capability tests
	libcap2-bin
	# make demo and the integration tests: mkfs.ext4 in the guest
	e2fsprogs
	# guest -> host TCP forwarding (run-guest.sh --net-fwd)
	netcat-openbsd
	# agent
	libdevmapper-dev libssl-dev libcurl4-openssl-dev libnl-genl-3-dev
	libmnl-dev libjson-c-dev libsystemd-dev
	# make bench: charts, and perf for the in-guest profiles;
	# tests/storage/esdk_io.sh: strace
	gnuplot-nox linux-perf strace
	# agent unit tests; the libFuzzer targets (make fuzz)
	libcmocka-dev clang
	# the debug kernel (scripts/debug-kernel.sh, issue 14)
	linux-source-6.12 flex bison bc libelf-dev
	# tests/kms (a TLS certificate for the custom CA bundle test)
	openssl
	# tests/kms: Azure SDK for Python (conformance of the Key Vault
	# emulator), PyKMIP server and client, SoftHSM2 + pkcs11-tool, the
	# PKCS#11 header from p11-kit
	python3-azure python3-pykmip softhsm2 opensc libp11-kit-dev
	# tests/boot: a real Debian guest image, the module through DKMS
	debootstrap dkms genisoimage
	# make deb: the Debian packages (dh-dkms: dh_dkms; rst2man for the
	# man pages is python3-docutils above) and lintian on them
	debhelper dh-dkms dpkg-dev lintian
	# tests/deb: the audit log's logrotate configuration, rotated
	logrotate
	# make bench and tests/kselftest/pressure.sh: memory pressure
	stress-ng
	# tests/storage: the AWS Encryption SDK for JavaScript, the peer of
	# cmkctl seal/unseal, comes from npm (tests/storage/lib.sh); GNU time
	# measures peak memory
	nodejs time
	# tests/storage/postgres_*.sh: PostgreSQL 15 (initdb, pg_ctl, pgbench,
	# pg_basebackup) archiving through scripts/pg; the tests run their own
	# servers under a temporary directory, never the system cluster
	postgresql-15
)
# NodeSource's nodejs ships npm; Debian's nodejs needs the npm package.
command -v npm >/dev/null 2>&1 || pkgs+=(npm)

missing=()
# dpkg-query prints one line per known package; anything not "installed"
# (or unknown to dpkg, which makes it print to stderr) is missing.
status=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${pkgs[@]}" 2>/dev/null || true)
for p in "${pkgs[@]}"; do
	if ! grep -qx "$p installed" <<<"$status"; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

echo "deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages and not root; run as root: apt-get install ${missing[*]}" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null

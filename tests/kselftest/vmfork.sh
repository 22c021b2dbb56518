#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The VM fork test (sleep_vmfork, issue 12 section 3) on one kernel, in a
# guest of its own: 512 MiB, a vmgenid device, and a qcow2 scratch disk to
# hold the snapshot.  run-guest.sh --savevm-restore stops the guest when
# the test prints "### savevm vmfork", saves the snapshot (QMP, HMP
# savevm), ends that QEMU and boots a second one from the snapshot
# (-loadvm) with a new VM generation ID; the restored kernel sees the
# fork.  QEMU 7.2 refuses to change the generation ID of a running guest,
# so a restore is how a clone is made here.
#
# Usage: tests/kselftest/vmfork.sh [--kver KVER]
#
# KVER defaults to the installed Debian 6.1 kernel.  Output: the guest
# runner's TAP ("6.1:sleep_vmfork.wipes_keys", "6.1:guest_savevm_restore",
# ...), results in build/results/vmfork-KVER/.  Needs qemu-img
# (qemu-utils) and the tests built ("make kselftest").
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
cd "$top" || exit 1

kver=
while [ $# -gt 0 ]; do
	case $1 in
	--kver) kver=$2; shift 2 ;;
	*) echo "vmfork: unknown argument $1" >&2; exit 2 ;;
	esac
done
if [ -z "$kver" ]; then
	kver=$(scripts/kvers.sh --default)
fi
short=$(echo "$kver" | cut -d. -f1-2)

test_bin=$top/build/tests/kselftest-special/sleep_vmfork
if [ ! -x "$test_bin" ]; then
	echo "not ok 1 $short:sleep_vmfork_built # $test_bin missing: run 'make kselftest'"
	echo "1..1"
	exit 1
fi
if ! command -v qemu-img >/dev/null; then
	echo "not ok 1 $short:sleep_vmfork_qemu_img # qemu-img not found: run 'make deps' (qemu-utils)"
	echo "1..1"
	exit 1
fi

out=$top/build/results/vmfork-$kver
mkdir -p "$out"
disk=$out/snapshot.qcow2
rm -f "$disk"
# Only the snapshot lives here (the guest's RAM state, ~100 MB).
qemu-img create -q -f qcow2 "$disk" 16M

scripts/qemu/run-guest.sh --kver "$kver" --out "$out" --mem 512 \
	--timeout "${GUEST_TIMEOUT:-600}" --test-timeout 480 \
	--disk "$disk" --vmgenid "$(cat /proc/sys/kernel/random/uuid)" \
	--savevm-restore "$test_bin"
rc=$?
rm -f "$disk"
exit $rc

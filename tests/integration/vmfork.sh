#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The agent's VM fork tests (tests/integration/vmfork/*), each in a guest
# of its own (a guest is cloned once): cmk-agent and the integration helpers
# as run.sh puts them, plus a vmgenid device and a qcow2 scratch disk for
# the snapshot.  When a test prints "### savevm vmfork", run-guest.sh
# --savevm-restore snapshots the guest and boots a second QEMU from it with
# a new VM generation ID (the way tests/kselftest/vmfork.sh clones the
# kernel's own test).
#
# Usage: tests/integration/vmfork.sh [--kver KVER] [TEST...]
#
# KVER defaults to the installed Debian 6.1 kernel; TEST defaults to every
# test in tests/integration/vmfork/.  Output: the guest runners' TAP,
# results in build/results/agent-vmfork-KVER/TEST/.  Needs a built
# cmk-agent and qemu-img (qemu-utils).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
cd "$top"

kver=
tests=()
while [ $# -gt 0 ]; do
	case $1 in
	--kver) kver=$2; shift 2 ;;
	-*) echo "vmfork: unknown argument $1" >&2; exit 2 ;;
	*) tests+=("$(realpath "$1")"); shift ;;
	esac
done
if [ ${#tests[@]} -eq 0 ]; then
	for t in "$here"/vmfork/agent_*; do
		[ -x "$t" ] && tests+=("$t")
	done
fi
if [ -z "$kver" ]; then
	kver=$(scripts/kvers.sh --default)
fi
short=$(echo "$kver" | cut -d. -f1-2)

agent=$top/agent/build/cmk-agent
cmkctl=$top/agent/build/cmkctl
if [ ! -x "$agent" ] || [ ! -x "$cmkctl" ]; then
	echo "not ok 1 $short:agent_sleep_vmfork_built # agent/build/cmk-agent not built yet"
	echo "1..1"
	exit 1
fi
if ! command -v qemu-img >/dev/null; then
	echo "not ok 1 $short:agent_sleep_vmfork_qemu_img # qemu-img not found: run 'make deps' (qemu-utils)"
	echo "1..1"
	exit 1
fi

make -s -C tests/integration O="$top/build/tests/integration" >&2
helpers=$top/build/tests/integration
# The QMP socket's path must stay short (108 bytes): not in the results.
qdir=$(mktemp -d /tmp/cmk-vmfork.XXXXXX)
trap 'rm -rf "$qdir"' EXIT
rc=0
for t in "${tests[@]}"; do
	out=$top/build/results/agent-vmfork-$kver/$(basename "$t")
	mkdir -p "$out"
	disk=$out/snapshot.qcow2
	rm -f "$disk"
	qemu-img create -q -f qcow2 "$disk" 16M
	scripts/qemu/run-guest.sh --kver "$kver" --out "$out" --mem 512 \
		--timeout "${GUEST_TIMEOUT:-600}" --test-timeout 480 \
		--disk "$disk" --vmgenid "$(cat /proc/sys/kernel/random/uuid)" \
		--savevm-restore --qmp "$qdir/qmp.sock" \
		--add "$agent:/usr/sbin/cmk-agent" \
		--add "$cmkctl:/usr/sbin/cmkctl" \
		--add "$helpers/cmk-oracle:/usr/bin/cmk-oracle" \
		--add "$here/lib.sh:/usr/lib/cmk-test/lib.sh" \
		"$t" || rc=1
done
exit $rc

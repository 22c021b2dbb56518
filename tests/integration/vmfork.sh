#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The agent's VM fork test (tests/integration/vmfork/*) in a guest of its
# own: cmk-agent and the integration helpers as run.sh puts them, plus a
# vmgenid device and a qcow2 scratch disk for the snapshot.  When the test
# prints "### savevm vmfork", run-guest.sh --savevm-restore snapshots the
# guest and boots a second QEMU from it with a new VM generation ID (the
# way tests/kselftest/vmfork.sh clones the kernel's own test).
#
# Usage: tests/integration/vmfork.sh [--kver KVER]
#
# KVER defaults to the installed Debian 6.1 kernel.  Output: the guest
# runner's TAP, results in build/results/agent-vmfork-KVER/.  Needs a built
# cmk-agent and qemu-img (qemu-utils).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
cd "$top"

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

agent=$top/agent/build/cmk-agent
cmkctl=$top/agent/build/cmkctl
if [ ! -x "$agent" ] || [ ! -x "$cmkctl" ]; then
	echo "not ok 1 $short:agent_vmfork_built # agent/build/cmk-agent not built yet"
	echo "1..1"
	exit 1
fi
if ! command -v qemu-img >/dev/null; then
	echo "not ok 1 $short:agent_vmfork_qemu_img # qemu-img not found: run 'make deps' (qemu-utils)"
	echo "1..1"
	exit 1
fi

make -s -C tests/integration O="$top/build/tests/integration" >&2
helpers=$top/build/tests/integration
out=$top/build/results/agent-vmfork-$kver
mkdir -p "$out"
disk=$out/snapshot.qcow2
rm -f "$disk"
qemu-img create -q -f qcow2 "$disk" 16M

exec scripts/qemu/run-guest.sh --kver "$kver" --out "$out" --mem 512 \
	--timeout "${GUEST_TIMEOUT:-600}" --test-timeout 480 \
	--disk "$disk" --vmgenid "$(cat /proc/sys/kernel/random/uuid)" \
	--savevm-restore \
	--add "$agent:/usr/sbin/cmk-agent" \
	--add "$cmkctl:/usr/sbin/cmkctl" \
	--add "$helpers/cmk-oracle:/usr/bin/cmk-oracle" \
	--add "$here/lib.sh:/usr/lib/cmk-test/lib.sh" \
	"$here"/vmfork/agent_*

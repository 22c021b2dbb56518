#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Run the guest integration tests (tests/integration/agent_*) in one QEMU
# guest: cmk-agent, cmkctl, the test helpers, mkfs.ext4 and the ext4
# module go into the initramfs next to the usual guest contents.
#
# Usage: tests/integration/run.sh [--kver KVER] [TEST...]
#
# KVER defaults to the installed Debian 6.1 kernel ("debug": the debug
# kernel of scripts/debug-kernel.sh).  Output: TAP (the guest
# runner's, names prefixed "6.1:<test>:"), results in
# build/results/integration-KVER/.  Without a built cmk-agent the tests
# cannot run: one "# SKIP" line says so, which neither passes nor fails.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
cd "$top"

kver=
tests=()
while [ $# -gt 0 ]; do
	case $1 in
	--kver) kver=$2; shift 2 ;;
	-*) echo "integration: unknown option $1" >&2; exit 2 ;;
	*) tests+=("$1"); shift ;;
	esac
done
if [ -z "$kver" ]; then
	kver=$(scripts/kvers.sh --default)
fi
if [ ${#tests[@]} -eq 0 ]; then
	for t in "$here"/agent_*; do
		[ -x "$t" ] && tests+=("$t")
	done
fi

agent=$top/agent/build/cmk-agent
cmkctl=$top/agent/build/cmkctl
if [ ! -x "$agent" ] || [ ! -x "$cmkctl" ]; then
	echo "ok 1 integration_tests # SKIP agent/build/cmk-agent not built yet"
	echo "1..1"
	exit 0
fi

make -s -C "$here" O="$top/build/tests/integration" >&2
helpers=$top/build/tests/integration
mkfs=$(command -v mkfs.ext4 || echo /sbin/mkfs.ext4)

# The debug kernel (--kver debug, scripts/debug-kernel.sh) is several times
# slower under TCG.
if [ "$kver" = debug ]; then
	bounds=(--timeout "${GUEST_TIMEOUT:-5400}" --test-timeout 1200)
else
	bounds=(--timeout "${GUEST_TIMEOUT:-900}" --test-timeout 300)
fi
args=(--kver "$kver" --out "$top/build/results/integration-$kver" "${bounds[@]}"
	--module ext4 --fio
	--add "$agent:/usr/sbin/cmk-agent"
	--add "$cmkctl:/usr/sbin/cmkctl"
	--add "$helpers/cmk-oracle:/usr/bin/cmk-oracle"
	--add "$helpers/allowcore.so:/usr/lib/cmk-test/allowcore.so"
	--add "$here/lib.sh:/usr/lib/cmk-test/lib.sh"
	--add "$mkfs:/sbin/mkfs.ext4")
[ -f /etc/mke2fs.conf ] && args+=(--add /etc/mke2fs.conf)
# agent_io_memory_pressure runs stress-ng next to the I/O (skips without).
stress=$(command -v stress-ng || true)
[ -n "$stress" ] && args+=(--add "$stress:/usr/bin/stress-ng")
exec scripts/qemu/run-guest.sh "${args[@]}" "${tests[@]}"

#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Crash consistency of the header writes (issue 14, section 4), part 1:
# tests/crash/crash_replay in a QEMU guest with dm-log-writes under the
# backing device; every prefix of the write log of cmkctl format, kek
# rotate and the ephemeral re-key is replayed and checked.
#
# Usage: tests/crash/run.sh [--kver KVER]
#
# KVER defaults to the installed Debian 6.12 kernel (its module set has
# dm-log-writes; "debug" is the debug kernel, which has it too).  Needs
# make -C agent all and the module for KVER.  Output: the guest runner's
# TAP (names contain "crash"), results in build/results/crash-KVER/; the
# wall time is printed.  CMKCTL=PATH tests another cmkctl build.
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
kver=
while [ $# -gt 0 ]; do
	case $1 in
	--kver) kver=$2; shift 2 ;;
	*) echo "crash: unknown argument $1" >&2; exit 2 ;;
	esac
done
[ -n "$kver" ] || kver=$("$top/scripts/kvers.sh" | grep -m 1 '^6\.12\.' || true)
[ -n "$kver" ] || kver=$("$top/scripts/kvers.sh" --default)
cmkctl=${CMKCTL:-$top/agent/build/cmkctl}
if [ ! -x "$cmkctl" ]; then
	echo "not ok 1 crash_replay_built # run 'make -C agent all'"
	echo "1..1"
	exit 1
fi
out=$top/build/tests/crash
mkdir -p "$out"
cc -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 \
	-o "$out/cmk-lwreplay" "$top/tests/crash/lwreplay.c" || exit 1
start=$(date +%s)
res=$top/build/results/crash-$kver
# A guest that dies before the test begins (under TCG on a loaded host the
# kernel's jitter-entropy self-test can trip the soft-lockup watchdog at
# boot) is booted once more; its first run's TAP is then not printed.
for try in 1 2; do
	"$top/scripts/qemu/run-guest.sh" --kver "$kver" --out "$res" \
		--timeout "${GUEST_TIMEOUT:-1500}" --test-timeout 1200 \
		--module dm-log-writes \
		--add "$cmkctl:/usr/sbin/cmkctl" \
		--add "$out/cmk-lwreplay:/usr/bin/cmk-lwreplay" \
		"$top/tests/crash/crash_replay" >"$out/replay.tap"
	rc=$?
	[ "$try" = 2 ] || grep -q '^### begin crash_replay' "$res/results.log" && break
	echo "# the guest died before the test began: $(grep -m 1 -E 'BUG:|panic' "$res/console.log" | cut -c 1-120); booting again"
done
cat "$out/replay.tap"
# The counts per operation (the guest's own "#" lines).
grep -E '^# (format|rotate|rekey|crash_replay):' \
	"$res/results.log" 2>/dev/null
echo "# crash_replay on $kver: $(($(date +%s) - start)) s wall"
exit $rc

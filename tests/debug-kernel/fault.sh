#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The fault tests (issue 14, section 3) in a guest of their own:
# fault_backing (dm-flakey and dm-dust below dm-cmk) and fault_alloc
# (failslab and fail_page_alloc aimed at dm-cmk's text).
#
# Usage: tests/debug-kernel/fault.sh [--kver KVER]
#
# KVER defaults to "debug", the debug kernel of scripts/debug-kernel.sh
# (build it and its module first: make debug-module); there a WARN, KASAN,
# lockdep or UBSAN report or a dm-cmk leak after the run (kmemleak) fails
# it.  On a stock kernel fault_alloc skips (no fault-injection knobs) and so
# does the dm-dust case.  Needs make kselftest.  Output: the guest runner's
# TAP, results in build/results/fault-KVER/; the wall time is printed.
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
kver=debug
while [ $# -gt 0 ]; do
	case $1 in
	--kver) kver=$2; shift 2 ;;
	*) echo "fault: unknown argument $1" >&2; exit 2 ;;
	esac
done
bins=("$top"/build/tests/kselftest-fault/fault_*)
if [ ! -x "${bins[0]}" ]; then
	echo "not ok 1 fault_tests_built # run 'make kselftest'"
	echo "1..1"
	exit 1
fi
start=$(date +%s)
"$top/scripts/qemu/run-guest.sh" --kver "$kver" --out "$top/build/results/fault-$kver" \
	--module dm-dust "${bins[@]}"
rc=$?
echo "# fault tests on $kver: $(($(date +%s) - start)) s wall"
exit $rc

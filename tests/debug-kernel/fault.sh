#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The fault tests (issue 14, section 3) in a guest of their own:
# fault_backing (dm-flakey and dm-dust below dm-cmk), fault_alloc
# (failslab and fail_page_alloc aimed at dm-cmk's text) and fault_crypto
# (the crypto driver failing requests: the test-only module
# tests/debug-kernel/cryptfault/, built here for the debug kernel and put
# in the guest as /cmk_cryptfault.ko).
#
# Usage: tests/debug-kernel/fault.sh [--kver KVER] [--steps N] [TEST...]
#
# TEST: names of fault tests to run (default all), e.g. fault_crypto.
# --steps N: fault_alloc's sweeps take N steps each instead of 160
# (cmk.fault_steps=N on the guest's command line; make check: 16).
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
bins=()
append=()
while [ $# -gt 0 ]; do
	case $1 in
	--kver) kver=$2; shift 2 ;;
	--steps)
		if ! [[ $2 =~ ^[1-9][0-9]{0,2}$ ]] || [ "$2" -gt 160 ]; then
			echo "fault: --steps wants a number from 1 to 160, not '$2'" >&2
			exit 2
		fi
		append=(--append "cmk.fault_steps=$2"); shift 2 ;;
	fault_*) bins+=("$top/build/tests/kselftest-fault/$1"); shift ;;
	*) echo "fault: unknown argument $1" >&2; exit 2 ;;
	esac
done
[ ${#bins[@]} -gt 0 ] || bins=("$top"/build/tests/kselftest-fault/fault_*)
if [ ! -x "${bins[0]}" ]; then
	echo "not ok 1 fault_tests_built # run 'make kselftest'"
	echo "1..1"
	exit 1
fi
# The crypto hook, only for the debug kernel (elsewhere fault_crypto skips).
extra=()
if [ "$kver" = debug ]; then
	mod=$top/build/tests/cryptfault
	dbg=$("$top/scripts/debug-kernel.sh" --print-dir) || {
		echo "not ok 1 fault_debug_kernel_built # run scripts/debug-kernel.sh"
		echo "1..1"
		exit 1
	}
	mkdir -p "$mod"
	cp -p "$top"/tests/debug-kernel/cryptfault/{cmk_cryptfault.c,Kbuild} "$mod/"
	if ! make -C "$dbg/build" M="$mod" W=1 modules >"$mod/build.log" 2>&1 ||
		grep -q 'warning:' "$mod/build.log"; then
		tail -n 20 "$mod/build.log" >&2
		echo "not ok 1 fault_cryptfault_module_built # see $mod/build.log"
		echo "1..1"
		exit 1
	fi
	extra+=(--add "$mod/cmk_cryptfault.ko:/cmk_cryptfault.ko")
fi
start=$(date +%s)
"$top/scripts/qemu/run-guest.sh" --kver "$kver" --out "$top/build/results/fault-$kver" \
	--module dm-dust "${extra[@]}" "${append[@]}" "${bins[@]}"
rc=$?
echo "# fault tests on $kver: $(($(date +%s) - start)) s wall"
exit $rc

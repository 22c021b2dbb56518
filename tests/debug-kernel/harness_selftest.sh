#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The debug-kernel harness fails a run on every kind of report it promises
# to catch (issue 14): a WARN, KASAN, UBSAN, a hung task, lockdep and a
# kmemleak leak through the crypto API dm-cmk uses.
#
# Usage: tests/debug-kernel/harness_selftest.sh
#
# Builds the test-only module cmk_splat (tests/debug-kernel/splat/) for the
# debug kernel and boots one guest that loads it once per kind
# (tests/debug-kernel/debug_splat).  Oracle: scripts/qemu/run-guest.sh's
# own verdict and results, not this script's judgement of the log: the run
# must FAIL, guest_no_kernel_splat and guest_kmemleak_dm_cmk must be "not
# ok", and DIR/splats.txt (the runner's list of the splats that failed it)
# must hold each kind's report.  Output: TAP, names debug_harness_*.
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
out=$top/build/results/debug-harness
mod=$top/build/tests/debug-splat
n=0
fail=0
tap() {	# tap ok|not-ok NAME [DIAGNOSTIC]
	n=$((n + 1))
	if [ "$1" = ok ]; then echo "ok $n $2"; else echo "not ok $n $2${3:+ # $3}"; fail=1; fi
}

dbg=$("$top/scripts/debug-kernel.sh" --print-dir) || {
	echo "not ok 1 debug_harness_kernel_built # run scripts/debug-kernel.sh"
	echo "1..1"
	exit 1
}
mkdir -p "$mod" "$out"
cp -p "$top/tests/debug-kernel/splat/cmk_splat.c" "$top/tests/debug-kernel/splat/Kbuild" "$mod/"
if ! make -C "$dbg/build" M="$mod" modules >"$mod/build.log" 2>&1; then
	tail -n 20 "$mod/build.log" >&2
	echo "not ok 1 debug_harness_module_built # see $mod/build.log"
	echo "1..1"
	exit 1
fi

start=$(date +%s)
"$top/scripts/qemu/run-guest.sh" --kver debug --out "$out" --test-timeout 300 \
	--timeout 1800 --add "$mod/cmk_splat.ko:/cmk_splat.ko" \
	"$top/tests/debug-kernel/debug_splat" >"$out/run.tap" 2>&1
rc=$?
echo "# guest run: rc=$rc, $(($(date +%s) - start)) s wall (TAP in $out/run.tap)"

check() {	# check NAME DIAGNOSTIC COMMAND...: ok when COMMAND succeeds
	local name=$1 diag=$2
	shift 2
	if "$@" >/dev/null 2>&1; then tap ok "$name"; else tap not-ok "$name" "$diag"; fi
}
check debug_harness_run_fails "run-guest.sh passed a run full of reports" \
	test "$rc" -ne 0
check debug_harness_splat_result_fails "guest_no_kernel_splat not failed" \
	grep -q "^not ok .*:guest_no_kernel_splat" "$out/run.tap"
check debug_harness_fails_on_kmemleak "guest_kmemleak_dm_cmk not failed" \
	grep -q "^not ok .*:guest_kmemleak_dm_cmk" "$out/run.tap"
check debug_harness_kmemleak_names_the_crypto_tfm \
	"no crypto_ backtrace in kmemleak-dm-cmk.txt" \
	grep -q "crypto_" "$out/kmemleak-dm-cmk.txt"

# kind and the report line run-guest.sh must have counted for it
while read -r kind re; do
	check "debug_harness_fails_on_$kind" "no /$re/ in $out/splats.txt" \
		grep -E "^\[debug_splat\] .*($re)" "$out/splats.txt"
done <<'KINDS'
warn WARNING: .*cmk_splat|cmk_splat: deliberate warning
kasan BUG: KASAN: slab-out-of-bounds
ubsan UBSAN: shift-out-of-bounds
hung blocked for more than
lockdep possible circular locking dependency
KINDS
echo "1..$n"
exit $fail

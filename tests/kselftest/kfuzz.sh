#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The dm-cmk kernel fuzzer (kfuzz.c) on one kernel, in a guest of its own.
#
# Usage: tests/kselftest/kfuzz.sh [--kver KVER] [--seconds S | --minutes M]
#                                 [--seed N]
#        tests/kselftest/kfuzz.sh [--kver KVER] --replay FILE [--no-minimize]
#
# KVER defaults to the Debian 6.12 kernel (else the default kernel); S to
# 120.  A run prints its seed; --seed N repeats a run's sequence of
# operations.  --replay FILE runs the operations listed in FILE (lines
# "op <n> <sub-seed>", as written by a failed run) and, when they fail,
# minimizes them (delta debugging, in the guest) and prints the shortest
# sequence.  A replay boots the guest with panic_on_warn=0, so that a
# WARNING is a finding to minimize instead of a dead guest.
#
# Output: the guest runner's TAP ("6.12:kfuzz:kernel_fuzz_no_kernel_splat",
# ..., guest_no_kernel_splat, ...), results in build/results/kfuzz-KVER/.
# When the run fails, the operations it ran (from the guest's kernel log,
# which survives a panic) are saved to build/results/kfuzz-KVER/ops.txt,
# the shortest sequence the guest found (if it could minimize) to
# shortest.txt, and the command that replays them is printed.  Needs the module and the
# tests built (make modules-all kselftest).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
cd "$top" || exit 1

kver=
seconds=120
seed=
replay=
minimize=1
while [ $# -gt 0 ]; do
	case $1 in
	--kver) kver=$2; shift 2 ;;
	--seconds) seconds=$2; shift 2 ;;
	--minutes) seconds=$(($2 * 60)); shift 2 ;;
	--seed) seed=$2; shift 2 ;;
	--replay) replay=$(realpath "$2"); shift 2 ;;
	--no-minimize) minimize=0; shift ;;
	*) echo "kfuzz: unknown argument $1" >&2; exit 2 ;;
	esac
done
if [ -z "$kver" ]; then
	kver=$(scripts/kvers.sh | grep '^6\.12\.' | head -n 1)
	[ -n "$kver" ] || kver=$(scripts/kvers.sh --default)
fi
short=$(echo "$kver" | cut -d. -f1-2)
bin=$top/build/tests/kselftest-kfuzz/kfuzz
if [ ! -x "$bin" ]; then
	echo "not ok 1 $short:kernel_fuzz_built # $bin missing: run 'make kselftest'"
	echo "1..1"
	exit 1
fi

out=$top/build/results/kfuzz-$kver
mkdir -p "$out"
# printk.devkmsg=on: every operation goes to the kernel log, unthrottled.
append="printk.devkmsg=on cmk.kfuzz_seconds=$seconds"
[ -n "$seed" ] && append+=" cmk.kfuzz_seed=$seed"
args=(--kver "$kver" --out "$out")
if [ -n "$replay" ]; then
	cp "$replay" "$out/replay.txt"
	args+=(--add "$out/replay.txt:/kfuzz.ops")
	append+=" cmk.kfuzz_replay=/kfuzz.ops cmk.kfuzz_minimize=$minimize"
	append+=" panic_on_warn=0"
fi
guest_s=$seconds
# a replay's minimizer: up to 10 minutes of trials more
[ -n "$replay" ] && guest_s=$((seconds + 900))
# The fuzzer's own watchdog reports a hang after 120 s; the guest's
# bounds leave room for it, the final module unload and a slow TCG boot.
args+=(--test-timeout $((guest_s + 600)) --timeout $((guest_s + 900))
	--append "$append")
scripts/qemu/run-guest.sh "${args[@]}" "$bin"
rc=$?
# The seed, operations per minute and I/O counts, from the guest.
# The seed, operations per minute, I/O counts and a finding's shortest
# sequence (kept in shortest.txt), from the guest.
awk '/^# kfuzz: / { short = /shortest sequence/; print; next }
     /^#   op / && short { print }' "$out/results.log" 2>/dev/null | head -n 200
awk '/^# kfuzz: / { short = /shortest sequence/
		    if (short && match($0, /generator [0-9]+/))
			    print substr($0, RSTART, RLENGTH)
		    next }
     /^#   op / && short { sub(/^#   /, ""); print }' "$out/results.log" \
	>"$out/shortest.txt" 2>/dev/null

if [ "$rc" != 0 ]; then
	grep -o -e 'kfuzz: seed [0-9]* generator [0-9]*' \
		-e 'kfuzz: op [0-9]* [0-9a-f]*.*' "$out/console.log" 2>/dev/null |
		sed 's/^kfuzz: //' >"$out/ops.txt"
	s=$(sed -n 's/.*kfuzz: seed \([0-9]*\).*/\1/p' "$out/console.log" | head -n 1)
	echo "# kfuzz: FAILED with seed ${s:-?} on $kver; $(grep -c '^op ' "$out/ops.txt") operations in $out/ops.txt"
	echo "# kfuzz: the last ones before the failure:"
	tail -n 5 "$out/ops.txt" | sed 's/^/#   /'
	[ -n "$replay" ] ||
		echo "# kfuzz: rerun: tests/kselftest/kfuzz.sh --kver $kver --seed ${s:-?} --seconds $seconds"
	if [ -s "$out/shortest.txt" ]; then
		echo "# kfuzz: shortest sequence: $out/shortest.txt (replay it with --replay)"
	else
		echo "# kfuzz: minimize: tests/kselftest/kfuzz.sh --kver $kver --replay $out/ops.txt"
	fi
fi
exit $rc

#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Crash consistency of the header writes (issue 14, section 4), part 2: a
# power cut during cmkctl kek rotate under I/O.  Boots a QEMU guest
# (tests/crash/crash_powercut) POINTS + 1 times on the same two disks; in
# each of the first POINTS boots it waits for the guest's
# "### crash-window" (the device open, writes running, rotations starting
# back to back) and kills QEMU with SIGKILL after a seeded random delay;
# the next boot checks that the device is not lost (it opens, its data
# reads back with its checksum, its header is at a KEK version the envelope
# holds, an interrupted rotation resumes).  The last boot only checks.
#
# Usage: tests/crash/powercut.sh [--kver KVER] [--points N] [--seed S]
#                                [--max-delay-ms MS]
#
# POINTS (default CRASH_POINTS or 2: make check runs a few; make crash
# CRASH_POINTS=20 runs the issue's 20), SEED (default CRASH_SEED or the
# time; printed, so a run can be repeated: the delays repeat, the guest's
# timing under TCG does not exactly), MAX_DELAY_MS (default 6000: the
# delay is uniform in 0..MS after the window opens).  KVER defaults to the
# Debian 6.12 kernel.  Output: TAP (names contain "crash_powercut"), the
# seed, each point's delay and where the cut landed, the cost per point.
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
kver=
points=${CRASH_POINTS:-2}
seed=${CRASH_SEED:-$(date +%s)}
max_delay=6000
while [ $# -gt 0 ]; do
	case $1 in
	--kver) kver=$2; shift 2 ;;
	--points) points=$2; shift 2 ;;
	--seed) seed=$2; shift 2 ;;
	--max-delay-ms) max_delay=$2; shift 2 ;;
	*) echo "powercut: unknown argument $1" >&2; exit 2 ;;
	esac
done
[ -n "$kver" ] || kver=$("$top/scripts/kvers.sh" | grep -m 1 '^6\.12\.' || true)
[ -n "$kver" ] || kver=$("$top/scripts/kvers.sh" --default)
cmkctl=$top/agent/build/cmkctl
n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n $1"; }
nok() {
	n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n $1"
	shift
	for l in "$@"; do echo "#   $l"; done
}
if [ ! -x "$cmkctl" ]; then
	nok crash_powercut_built "run 'make -C agent all'"
	echo "1..$n"
	exit 1
fi
mkfs=$(command -v mkfs.ext4 || echo /sbin/mkfs.ext4)
w=$top/build/tests/crash/powercut
rm -rf "$w"
mkdir -p "$w"
truncate -s 64M "$w/data.img"
"$mkfs" -q -F -E root_owner=0:0 "$w/state.img" 64M >/dev/null || {
	nok crash_powercut_state_disk "mkfs.ext4 failed"
	echo "1..$n"
	exit 1
}
RANDOM=$seed
echo "# crash_powercut: seed $seed, $points points, delay 0..$max_delay ms after the window opens"
start=$(date +%s)
qpid_file=$w/qemu.pid
cut=0
for ((p = 1; p <= points + 1; p++)); do
	final=0
	[ "$p" -gt "$points" ] && final=1
	out=$w/boot$p
	args=(--kver "$kver" --out "$out" --timeout 900 --test-timeout 800
		--module ext4 --disk "$w/data.img" --disk "$w/state.img"
		--add "$cmkctl:/usr/sbin/cmkctl"
		--qemu-arg -pidfile --qemu-arg "$qpid_file")
	[ "$final" = 1 ] && args+=(--append crash.final=1)
	delay=$(( (RANDOM * 32768 + RANDOM) % (max_delay + 1) ))
	t0=$(date +%s)
	# A boot that dies before the test starts (under TCG on a loaded host
	# the kernel's jitter-entropy self-test can trip the soft-lockup
	# watchdog) is booted again, at most twice; it has not touched the disks.
	for try in 1 2 3; do
		rm -f "$qpid_file"
		"$top/scripts/qemu/run-guest.sh" "${args[@]}" "$top/tests/crash/crash_powercut" \
			>"$w/boot$p.tap" 2>&1 &
		rpid=$!
		while kill -0 "$rpid" 2>/dev/null &&
		      ! grep -q '^### begin crash_powercut' "$out/results.log" 2>/dev/null; do
			sleep 0.1
		done
		grep -q '^### begin crash_powercut' "$out/results.log" 2>/dev/null && break
		wait "$rpid"
		echo "# boot $p: the guest died before the test began (try $try): $(grep -m 1 -E 'BUG:|panic' "$out/console.log" 2>/dev/null | cut -c 1-120)"
	done
	if [ "$final" = 0 ]; then
		# Until the window opens (bounded by the guest's own timeout).
		while kill -0 "$rpid" 2>/dev/null &&
		      ! grep -q '^### crash-window point' "$out/results.log" 2>/dev/null; do
			sleep 0.1
		done
		win=$(sed -n 's/^### crash-window point=\([0-9]*\).*/\1/p' "$out/results.log" 2>/dev/null | head -n 1)
		if [ -n "$win" ]; then
			sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
			if [ -s "$qpid_file" ] && kill -KILL "$(cat "$qpid_file")" 2>/dev/null; then
				cut=$((cut + 1))
				rot=$(grep -c '^### rotated' "$out/results.log")
				echo "# point $win: power cut ${delay} ms into the window, after $rot complete rotation(s)$(grep -q '^### crash-window-end' "$out/results.log" && echo ' (too late: rotations had ended)')"
			else
				nok "crash_powercut_boot${p}_cut" "QEMU was not running to be killed"
			fi
		else
			nok "crash_powercut_boot${p}_window_opens" "the guest never opened the window: see $out/results.log"
		fi
	fi
	wait "$rpid"
	rrc=$?
	# The guest's results (the verification of the previous point).
	tr -d '\r' <"$out/results.log" 2>/dev/null | grep -E '^(not )?ok [0-9]+ |^#' |
		grep -v '^### ' | while IFS= read -r l; do
		case $l in
		"ok "*) echo "ok ${l#ok [0-9]* }" ;;
		"not ok "*) echo "not ok ${l#not ok [0-9]* }" ;;
		*) echo "$l" ;;
		esac
	done >"$w/boot$p.results"
	grep -E '^# ### point' "$out/results.log" | sed 's/^# ### /# /'
	while IFS= read -r l; do
		case $l in
		"ok "*) ok "${l#ok }" ;;
		"not ok "*) nok "${l#not ok }" ;;
		"# ### "*) ;;
		*) echo "$l" ;;
		esac
	done <"$w/boot$p.results"
	# A kernel splat in any boot fails it (run-guest's own check).
	if grep -q '^not ok .*guest_no_kernel_splat' "$w/boot$p.tap"; then
		nok "crash_powercut_boot${p}_no_kernel_splat" "$(grep -A1 'guest_no_kernel_splat' "$w/boot$p.tap" | tail -n 1)"
	fi
	if [ "$final" = 1 ] && [ "$rrc" != 0 ]; then
		nok crash_powercut_final_boot_passes "run-guest.sh exited $rrc: see $w/boot$p.tap"
	fi
	echo "# boot $p: $(($(date +%s) - t0)) s"
done
total=$(($(date +%s) - start))
if [ "$cut" -eq "$points" ]; then
	ok "crash_powercut_${points}_power_cuts_made"
else
	nok "crash_powercut_${points}_power_cuts_made" "only $cut of $points cuts landed"
fi
echo "# crash_powercut on $kver: seed $seed, $points points, $total s wall, $((total / (points + 1))) s per boot"
echo "1..$n"
[ "$failed" = 0 ]

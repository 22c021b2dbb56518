#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# A real hibernation on the debug kernel (issue 14): the kselftest
# sleep_hibernate_image in a guest of its own, with a swap device for the
# image.  /sys/power/disk = test_resume writes the image to the swap
# device and restores it without powering off, so one guest run covers
# snapshot, write, read back and restore; the test then scans the image
# for the key (it must not be there) and for a canary of its own (it must).
#
# Usage: tests/debug-kernel/hibernate.sh [--kver KVER]
#
# KVER defaults to "debug" (make debug-module first).  The guest gets 1 GiB
# (a smaller image: KASAN's shadow is an eighth of RAM and is in it), a
# sparse 640 MiB swap file as /dev/vda (mkswap here, on the host) and
# "hibernate=nocompress", so the scan reads the pages as they are.  The
# pm_test levels, which need no swap device, are in sleep_suspend.
# Output: the guest runner's TAP, results in build/results/hibernate-KVER/.
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
kver=debug
while [ $# -gt 0 ]; do
	case $1 in
	--kver) kver=$2; shift 2 ;;
	*) echo "hibernate: unknown argument $1" >&2; exit 2 ;;
	esac
done
bin=$top/build/tests/kselftest-special/sleep_hibernate_image
if [ ! -x "$bin" ]; then
	echo "not ok 1 sleep_hibernate_built # run 'make kselftest'"
	echo "1..1"
	exit 1
fi
out=$top/build/results/hibernate-$kver
mkdir -p "$out"
swap=$out/swap.img
rm -f "$swap"
truncate -s 640M "$swap"
if ! mkswap "$swap" >"$out/mkswap.log" 2>&1; then
	echo "not ok 1 sleep_hibernate_swap_made # see $out/mkswap.log"
	echo "1..1"
	exit 1
fi
start=$(date +%s)
"$top/scripts/qemu/run-guest.sh" --kver "$kver" --out "$out" --mem 1024 \
	--disk "$swap" --append "hibernate=nocompress" "$bin"
rc=$?
rm -f "$swap"
echo "# hibernation test on $kver: $(($(date +%s) - start)) s wall"
exit $rc

#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The memory-pressure tests (issue 12, section 5) on one kernel, in a
# guest of their own: 512 MiB of memory, a 1 GiB virtio scratch disk
# (/dev/vda, a sparse file here) for swap and for the devices under load,
# stress-ng and fio, and the crypto modules the tests use to force an
# asynchronous cipher (cryptd, crypto_user).  /init runs them in this
# order, each a program of its own (tests/kselftest/pressure_*.c):
#
#   pressure_renew_during_wipe  a wipe under load does not delay another
#                               device's lease renewal (test c)
#   pressure_swap               swap on dm-crypt, then on dm-cmk, under
#                               stress-ng --vm 2 --vm-bytes 120% (test a)
#   pressure_wipe_async         KEY_WIPE returns within 5 s with async
#                               crypto, 32 writers and a small memory
#                               cgroup (test b)
#
# The one most likely to wedge a broken kernel (b) runs last, so the
# others still report; the runner fails the guest on any hung task or
# other kernel splat.
#
# Usage: tests/kselftest/pressure.sh [--kver KVER] [--stress-seconds S]
#                                    [--append ARGS] [TEST...]
#
# KVER defaults to the installed Debian 6.1 kernel; S (default 60, the
# issue's) is pressure_swap's stress-ng run; ARGS go to the guest kernel's
# command line (e.g. cmk.pressure_pct=N, see pressure_swap.c); TEST...
# picks some of the three (paths or names).  Output: the guest runner's TAP
# ("6.1:pressure_swap.dmcmk", ...), results in
# build/results/pressure-KVER/.  Needs the tests built ("make kselftest").
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
cd "$top" || exit 1

kver=
stress_s=
append=
tests=()
while [ $# -gt 0 ]; do
	case $1 in
	--kver) kver=$2; shift 2 ;;
	--stress-seconds) stress_s=$2; shift 2 ;;
	--append) append+=" $2"; shift 2 ;;
	-*) echo "pressure: unknown option $1" >&2; exit 2 ;;
	*) tests+=("$1"); shift ;;
	esac
done
if [ -z "$kver" ]; then
	kver=$(scripts/kvers.sh --default)
fi
short=$(echo "$kver" | cut -d. -f1-2)

bins=$top/build/tests/kselftest-special
if [ ${#tests[@]} -eq 0 ]; then
	tests=(pressure_renew_during_wipe pressure_swap pressure_wipe_async)
fi
paths=()
for t in "${tests[@]}"; do
	p=$t
	[ -f "$p" ] || p=$bins/$(basename "$t")
	if [ ! -x "$p" ]; then
		echo "not ok 1 $short:$(basename "$t")_built # $p missing: run 'make kselftest'"
		echo "1..1"
		exit 1
	fi
	paths+=("$p")
done

out=$top/build/results/pressure-$kver
mkdir -p "$out"
disk=$out/scratch.raw
rm -f "$disk"
truncate -s 1G "$disk"

args=(--kver "$kver" --out "$out" --mem 512
	--timeout "${GUEST_TIMEOUT:-1800}" --test-timeout 900
	--disk "$disk" --fio --tool stress-ng
	--module cryptd --module crypto_user --module ecb)
[ -n "$stress_s" ] && append+=" cmk.pressure_s=$stress_s"
[ -n "$append" ] && args+=(--append "$append")
scripts/qemu/run-guest.sh "${args[@]}" "${paths[@]}"
rc=$?
rm -f "$disk"
exit $rc

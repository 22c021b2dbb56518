#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# esdk_bench.sh - throughput of cmkctl seal/unseal on a 16 MiB object
# (a WAL segment), against `openssl speed -evp aes-256-gcm` on one core
# and against the AWS Encryption SDK for JavaScript on the same data.
# Timings only, no assertion (the machine is shared).
#
# Two independent methods, each against openssl speed measured the same
# way in the same run, at 16 KiB blocks and at the frame length:
#   wall   elapsed time of cmkctl (bash's EPOCHREALTIME around the
#          command, no perf) vs `openssl speed -elapsed`
#   CPU    perf's task-clock of cmkctl (user + system) vs `openssl speed`
#          (user time, its default)
# "streaming" is 16 MiB / (time of 16 MiB - time of an empty object): the
# per-byte cost, without process start and the KEK's unwrap; "whole
# command" is what one segment costs (best and median), which is the
# per-segment latency of archive_command.  Each figure is from RUNS (11)
# runs: the best for streaming, best and median for the whole command.
#
# The object lives where a WAL segment does: on a disk filesystem, in the
# page cache (BENCH_DIR, default the build directory; BENCH_DIR=/dev/shm
# shows tmpfs, whose read() copies page by page), once written in 1 MiB
# writes and once in 8 KiB writes (the page cache's folios follow the
# writes, and read() costs more per byte in small ones).  Output goes to
# /dev/null, and once more to a file (O_TMPFILE, fsync, rename).
# FRAMES="4096 1048576" adds those frame lengths (suite 0x0478).
# CMKCTL=path benchmarks another build.  Usage: esdk_bench.sh [MiB]
set -u
# shellcheck source=tests/storage/lib.sh
. "$(dirname "$0")/lib.sh"

mib=${1:-16}
runs=${RUNS:-11}
frame=65536
bench_dir=${BENCH_DIR:-$top/build}
mkdir -p "$bench_dir" || exit 1
dir=$(mktemp -d "$bench_dir/esdk-bench.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT
chmod 700 "$dir"
cd "$dir" || exit 1
command -v perf >/dev/null || { echo "esdk_bench: needs perf (linux-perf)"; exit 1; }
ctl() { "$CMKCTL" --config "$dir/none.conf" "$@"; }
ctl local-key create cmk.key >/dev/null &&
	ctl kek create --provider local --key-ref "$dir/cmk.key" --out kek.json >/dev/null || exit 1
# The page cache keeps a file in folios as large as the writes that made
# it, and read() pays per folio: the object is written once in 1 MiB
# writes (as cmkctl, cp or a download write), and once more in 8 KiB
# writes (PostgreSQL's WAL page) for a second seal figure.
dd if=/dev/urandom of=big bs=1M count="$mib" iflag=fullblock status=none &&
	dd if=big of=big8k bs=8k status=none && sync big big8k || exit 1
: >empty
CTX=(--context cluster=bench --context segment=000000010000000000000001)

echo "# $(uname -r), $(nproc) CPUs, $(stat -f -c %T "$dir") at $dir, cmkctl $CMKCTL"
echo "# load average at start: $(uptime | sed 's/.*load average: //')"

# ossl BYTES [-elapsed] [ALG]: MiB/s of openssl speed, one core.
ossl() {
	openssl speed -evp "${3:-aes-256-gcm}" -bytes "$1" -seconds 2 -mr ${2:+"$2"} 2>/dev/null |
		awk -F: '/^\+F:/ { printf "%.0f", $4 / 1048576 }'
}
ossl_cpu_16k=$(ossl 16384) ossl_cpu_f=$(ossl $frame)
ossl_wall_16k=$(ossl 16384 -elapsed) ossl_wall_f=$(ossl $frame -elapsed)
printf 'openssl speed -evp aes-256-gcm, 1 core: %s MiB/s (16 KiB), %s MiB/s (64 KiB) user time; %s / %s MiB/s elapsed\n' \
	"$ossl_cpu_16k" "$ossl_cpu_f" "$ossl_wall_16k" "$ossl_wall_f"
# Suite 0x0578 also hashes every byte with SHA-384 (no instruction for it).
sha=$(ossl $frame "" sha384)
printf 'openssl speed -evp sha384: %s MiB/s user time; AES-GCM then SHA-384 over the same bytes: at most %s MiB/s (the bound of suite 0x0578)\n' \
	"$sha" "$(awk -v a="$ossl_cpu_f" -v b="$sha" 'BEGIN { printf "%.0f", 1 / (1 / a + 1 / b) }')"

# wall CMD...: "BEST MEDIAN" elapsed ns of RUNS runs, stdout to /dev/null.
wall() {
	local i t0 t1 ts=()
	for ((i = 0; i < runs; i++)); do
		t0=${EPOCHREALTIME/./}
		"$@" >/dev/null || return 1
		t1=${EPOCHREALTIME/./}
		ts+=($(((t1 - t0) * 1000)))
	done
	printf '%s\n' "${ts[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[1], a[int((NR + 1) / 2)] }'
}
# cpu CMD...: the smallest task-clock (ns) of RUNS runs.
cpu() {
	local i c best=""
	for ((i = 0; i < runs; i++)); do
		c=$(perf stat -x, -e task-clock "$@" 2>&1 >/dev/null |
			awk -F, '/task-clock/ { printf "%.0f", $1 * 1e6 }')
		[ -n "$c" ] || return 1
		if [ -z "$best" ] || [ "$c" -lt "$best" ]; then best=$c; fi
	done
	echo "$best"
}
mibs() { awk -v b="$1" -v ns="$2" 'BEGIN { printf "%.0f", b / 1048576 / (ns / 1e9) }'; }
ms() { awk -v t="$1" 'BEGIN { printf "%.1f", t / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# measure OP SUITE FRAME [INPUT]: one line of figures; sets
# ${OP}_${SUITE} (CPU) for the default frame length and input.
measure() {
	local op=$1 suite=$2 fl=$3 in in0 w16 wm16 w0 c16 c0 sw sc args
	if [ "$op" = seal ]; then
		args=(seal --suite "0x$suite" --frame-length "$fl" --kek kek.json "${CTX[@]}")
		in=${4:-big} in0=empty
	else
		args=(unseal --kek kek.json "${CTX[@]}")
		in=sealed.$suite.$fl in0=sealed0.$suite.$fl
		ctl seal --suite "0x$suite" --frame-length "$fl" --kek kek.json "${CTX[@]}" big "$in" &&
			ctl seal --suite "0x$suite" --frame-length "$fl" --kek kek.json "${CTX[@]}" empty "$in0" ||
			return 1
	fi
	read -r w16 wm16 < <(wall "$CMKCTL" --config none "${args[@]}" "$in")
	read -r w0 _ < <(wall "$CMKCTL" --config none "${args[@]}" "$in0")
	c16=$(cpu "$CMKCTL" --config none "${args[@]}" "$in")
	c0=$(cpu "$CMKCTL" --config none "${args[@]}" "$in0")
	[ -n "$w16" ] && [ -n "$w0" ] && [ -n "$c16" ] && [ -n "$c0" ] || return 1
	sc=$(mibs $((mib << 20)) $((c16 - c0)))
	# On a loaded machine the best wall time of the empty object can
	# come from a luckier run than the 16 MiB one's: no figure then.
	if [ "$w16" -gt "$w0" ]; then
		sw=$(mibs $((mib << 20)) $((w16 - w0)))
		sw="$sw MiB/s wall = $(ratio "$sw" "$ossl_wall_f")x openssl ($(ratio "$sw" "$ossl_wall_16k")x at 16 KiB)"
	else
		sw="wall n/a (too noisy)"
	fi
	printf 'cmkctl %-6s 0x%s %d MiB%s, %d-byte frames: streaming %s; %s MiB/s CPU = %sx openssl (%sx at 16 KiB); whole command %s ms wall best, %s median (%s ms CPU), empty object %s ms wall\n' \
		"$op" "$suite" "$mib" "${4:+ ($4)}" "$fl" "$sw" \
		"$sc" "$(ratio "$sc" "$ossl_cpu_f")" "$(ratio "$sc" "$ossl_cpu_16k")" \
		"$(ms "$w16")" "$(ms "$wm16")" "$(ms "$c16")" "$(ms "$w0")"
	[ "$fl" = $frame ] && [ -z "${4:-}" ] && printf -v "${op}_$suite" '%s' "$sc"
	return 0
}

for suite in 0478 0578; do
	for op in seal unseal; do
		measure $op $suite $frame || echo "cmkctl $op 0x$suite: failed"
	done
done
measure seal 0478 $frame big8k || echo "cmkctl seal 0x0478 of big8k: failed"
for fl in ${FRAMES:-}; do
	for op in seal unseal; do
		measure $op 0478 "$fl" || echo "cmkctl $op 0x0478 frames $fl: failed"
	done
done

# To a file, as archive_command writes it: O_TMPFILE, fsync, rename.
seal_file() {
	rm -f out.sealed
	"$CMKCTL" --config none seal --kek kek.json "${CTX[@]}" big out.sealed
}
unseal_file() {
	rm -f out.plain
	"$CMKCTL" --config none unseal --kek kek.json "${CTX[@]}" sealed.0478.$frame out.plain
}
read -r fs fsm < <(wall seal_file)
read -r fu fum < <(wall unseal_file)
printf 'to a file (fsync'"'"'d): seal %s ms best, %s median; unseal %s ms best, %s median (%d MiB, 0x0478)\n' \
	"$(ms "$fs")" "$(ms "$fsm")" "$(ms "$fu")" "$(ms "$fum")" "$mib"

if esdk_peer_setup; then
	peer() { $ESDK_PEER "$1" --key-file "$dir/cmk.key" --envelope "$dir/kek.json" "${@:2}"; }
	for suite in 0478 0578; do
		peer encrypt --suite $suite --frame-length $frame "${CTX[@]}" big js.$suite
		best_e=0 best_d=0
		for ((i = 0; i < 3; i++)); do
			e=$(peer time-encrypt --suite $suite --frame-length $frame "${CTX[@]}" big)
			d=$(peer time-decrypt "${CTX[@]}" js.$suite)
			best_e=$(awk -v a="$e" -v b="$best_e" 'BEGIN { print (a > b) ? a : b }')
			best_d=$(awk -v a="$d" -v b="$best_d" 'BEGIN { print (a > b) ? a : b }')
		done
		s=seal_$suite u=unseal_$suite
		printf 'npm @aws-crypto/client-node 0x%s %d MiB (in-process, 64 KiB frames): encrypt %s MiB/s, decrypt %s MiB/s; cmkctl streaming (CPU) is %.1fx (seal) and %.1fx (unseal)\n' \
			$suite "$mib" "$best_e" "$best_d" \
			"$(awk -v a="${!s:-0}" -v b="$best_e" 'BEGIN { print a / b }')" \
			"$(awk -v a="${!u:-0}" -v b="$best_d" 'BEGIN { print a / b }')"
	done
else
	echo "npm peer not installed: no comparison with the JavaScript ESDK"
fi
echo "# load average at end: $(uptime | sed 's/.*load average: //')"

#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# esdk_bench.sh - throughput of cmkctl seal/unseal on a 16 MiB object
# (a WAL segment), against `openssl speed -evp aes-256-gcm` on one core
# and against the AWS Encryption SDK for JavaScript on the same data.
# Timings only, no assertion (the machine is shared).  Prints:
#   whole command   wall and CPU time of cmkctl, process start and KEK
#                   unseal included
#   streaming       16 MiB / (CPU time of 16 MiB - of an empty object):
#                   the per-byte cost, comparable with openssl speed
# The JavaScript figures are measured inside node (encrypt()/decrypt() of a
# buffer, wall time), so they flatter it.  Each figure is the best of RUNS
# (7) runs.  Usage: esdk_bench.sh [MiB]
set -u
# shellcheck source=tests/storage/lib.sh
. "$(dirname "$0")/lib.sh"

mib=${1:-16}
runs=${RUNS:-7}
dir=$(mktemp -d /dev/shm/esdk-bench.XXXXXX 2>/dev/null || mktemp -d)
trap 'rm -rf "$dir"' EXIT
chmod 700 "$dir"
cd "$dir" || exit 1
ctl() { "$CMKCTL" --config "$dir/none.conf" "$@"; }
ctl local-key create cmk.key >/dev/null &&
	ctl kek create --provider local --key-ref "$dir/cmk.key" --out kek.json >/dev/null || exit 1
head -c $((mib << 20)) /dev/urandom >big
: >empty
CTX=(--context cluster=bench --context segment=000000010000000000000001)

# best CMD...: "WALL_NS CPU_NS", each the smallest of RUNS runs.  CPU time
# (perf's task-clock) is what openssl speed reports too (user time by
# default), and what a loaded machine distorts least.
best() {
	local bw="" bc="" t0 t1 c i
	for ((i = 0; i < runs; i++)); do
		t0=$(date +%s%N)
		c=$(perf stat -x, -e task-clock "$@" 2>&1 >/dev/null | awk -F, '/task-clock/ { printf "%.0f", $1 * 1e6 }')
		t1=$(date +%s%N)
		[ -n "$c" ] || return 1
		if [ -z "$bw" ] || [ $((t1 - t0)) -lt "$bw" ]; then bw=$((t1 - t0)); fi
		if [ -z "$bc" ] || [ "$c" -lt "$bc" ]; then bc=$c; fi
	done
	echo "$bw $bc"
}
mibs() { awk -v b="$1" -v ns="$2" 'BEGIN { printf "%.0f", b / 1048576 / (ns / 1e9) }'; }
command -v perf >/dev/null || { echo "esdk_bench: needs perf (linux-perf)"; exit 1; }

ossl=$(openssl speed -evp aes-256-gcm -bytes 65536 -seconds 2 -mr 2>/dev/null |
	awk -F: '/^\+F:/ { printf "%.0f", $4 / 1048576 }')
echo "openssl speed -evp aes-256-gcm (64 KiB blocks, 1 core, user time): $ossl MiB/s"

for suite in 0478 0578; do
	ctl seal --suite 0x$suite --kek kek.json "${CTX[@]}" big sealed.$suite
	ctl seal --suite 0x$suite --kek kek.json "${CTX[@]}" empty sealed0.$suite
	for op in seal unseal; do
		if [ $op = seal ]; then
			read -r w16 c16 < <(best "$CMKCTL" --config none seal --suite 0x$suite --kek kek.json "${CTX[@]}" big)
			read -r _ c0 < <(best "$CMKCTL" --config none seal --suite 0x$suite --kek kek.json "${CTX[@]}" empty)
		else
			read -r w16 c16 < <(best "$CMKCTL" --config none unseal --kek kek.json "${CTX[@]}" sealed.$suite)
			read -r _ c0 < <(best "$CMKCTL" --config none unseal --kek kek.json "${CTX[@]}" sealed0.$suite)
		fi
		stream=$(mibs $((mib << 20)) $((c16 - c0)))
		printf 'cmkctl %-6s 0x%s %d MiB: whole command %.1f ms wall (%.1f ms CPU, %.1f ms of it for an empty object); streaming %s MiB/s CPU = %.2fx openssl\n' \
			$op $suite "$mib" "$(awk -v t="$w16" 'BEGIN { print t / 1e6 }')" \
			"$(awk -v t="$c16" 'BEGIN { print t / 1e6 }')" \
			"$(awk -v t="$c0" 'BEGIN { print t / 1e6 }')" \
			"$stream" "$(awk -v a="$stream" -v b="$ossl" 'BEGIN { print a / b }')"
		printf -v "${op}_$suite" '%s' "$stream"
	done
done

if esdk_peer_setup; then
	peer() { $ESDK_PEER "$1" --key-file "$dir/cmk.key" --envelope "$dir/kek.json" "${@:2}"; }
	for suite in 0478 0578; do
		peer encrypt --suite $suite --frame-length 65536 "${CTX[@]}" big js.$suite
		best_e=0 best_d=0
		for ((i = 0; i < 3; i++)); do
			e=$(peer time-encrypt --suite $suite --frame-length 65536 "${CTX[@]}" big)
			d=$(peer time-decrypt "${CTX[@]}" js.$suite)
			best_e=$(awk -v a="$e" -v b="$best_e" 'BEGIN { print (a > b) ? a : b }')
			best_d=$(awk -v a="$d" -v b="$best_d" 'BEGIN { print (a > b) ? a : b }')
		done
		s=seal_$suite u=unseal_$suite
		printf 'npm @aws-crypto/client-node 0x%s %d MiB (in-process, 64 KiB frames): encrypt %s MiB/s, decrypt %s MiB/s; cmkctl streaming is %.1fx (seal) and %.1fx (unseal)\n' \
			$suite "$mib" "$best_e" "$best_d" \
			"$(awk -v a="${!s}" -v b="$best_e" 'BEGIN { print a / b }')" \
			"$(awk -v a="${!u}" -v b="$best_d" 'BEGIN { print a / b }')"
	done
else
	echo "npm peer not installed: no comparison with the JavaScript ESDK"
fi

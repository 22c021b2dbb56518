#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# bench.sh - "make bench": dm-cmk against dm-linear, dm-crypt and the
# kernel's xts(aes) cipher alone (measured in the kernel, one sector per
# request), in one QEMU (TCG) guest run per kernel, on brd and
# memory-backed null_blk.  See Documentation/benchmarks.rst.
#
# Environment:
#   KVER=<kver>|all   kernel(s) to boot (default: the installed Debian 6.1)
#   BENCH_RUNS=N      repeats of every point (default 3)
#   BENCH_TIME=T      fio runtime per point (default 400ms)
#   BENCH_RAMP=T      fio ramp_time per point (default 50ms)
#   BENCH_QUICK=1     smoke run: brd only, 1 run, 300 ms points, 1 agent run
#   BENCH_DEVS, BENCH_CONFIGS   override the device / config lists;
#                     devices: brd nullb (default) and nbtimer (null_blk
#                     completing from a timer, as a disk from its IRQ)
#   BENCH_WORKLOADS   only these fio workloads (default: all 16), e.g.
#                     "seqread-1m-qd32 seqwrite-128k-qd32"; names as in
#                     the tables: seq{read,write}-{1m,128k}-qd{1,32},
#                     rand{read,write}-4k-qd{1,32}-j{1,2}
#   BENCH_PROFILE=0   skip the perf profiles (default 1; 0 in BENCH_QUICK)
#   BENCH_PROF_DEVS, BENCH_PROF_WORKLOADS   profile on these devices (default
#                     brd; each one of BENCH_DEVS) and workloads (default
#                     seqwrite-1m-qd32 seqread-1m-qd32 seqread-128k-qd1
#                     randread-4k-qd32-j1), as crypt, crypt-nowq and cmk
#   BENCH_OUT=DIR     results folder (default build/bench/<UTC timestamp>)
#   BENCH_MOTO_RUNS=N runs of tests/kms/aws_guest.sh (agent with the AWS
#                     provider against moto) for its boot -> usable and
#                     revoke -> wipe times (default 3, 0 in BENCH_QUICK;
#                     skipped when moto or the AWS provider is missing)
#
# Output: the ratio table on stdout (also DIR/table.txt), DIR/results.json,
# DIR/*.png, and per kernel the guest's logs in DIR/<kver>/.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
cd "$top"

die() {
	echo "bench: error: $*" >&2
	exit 1
}
trap 'rc=$?; [ $rc -eq 0 ] || echo "bench: failed (exit $rc); see the messages above" >&2' EXIT

runs=${BENCH_RUNS:-3}
runtime=${BENCH_TIME:-400ms}
ramp=${BENCH_RAMP:-50ms}
devs=${BENCH_DEVS:-brd nullb}
configs=${BENCH_CONFIGS:-linear crypt crypt-nowq crypt-4k cmk cmk-4k cmk-nowq cmk-nowq-4k}
agent_runs=5
moto_runs=${BENCH_MOTO_RUNS:-3}
profile=${BENCH_PROFILE:-1}
if [ "${BENCH_QUICK:-0}" = 1 ]; then
	runs=${BENCH_RUNS:-1}
	runtime=${BENCH_TIME:-300ms}
	ramp=${BENCH_RAMP:-20ms}
	devs=${BENCH_DEVS:-brd}
	agent_runs=1
	moto_runs=${BENCH_MOTO_RUNS:-0}
	profile=${BENCH_PROFILE:-0}
fi
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer (got '$runs')"
# workload_list VAR VALUE: VALUE's workload names, checked word by word (no
# globbing) before they are written to the guest's config, which the guest
# sources; duplicates dropped.
workload_list() {
	local w list='' wls=()
	read -r -d '' -a wls <<<"$2" || true
	for w in "${wls[@]}"; do
		[[ $w =~ ^(seq(read|write)-(1m|128k)-qd(1|32)|rand(read|write)-4k-qd(1|32)-j(1|2))$ ]] ||
			die "$1: unknown workload '$w' (seq{read,write}-{1m,128k}-qd{1,32}, rand{read,write}-4k-qd{1,32}-j{1,2})"
		case " $list " in
		*" $w "*) ;;
		*) list="${list:+$list }$w" ;;
		esac
	done
	echo "$list"
}
workloads=$(workload_list BENCH_WORKLOADS "${BENCH_WORKLOADS:-}") || exit 1
for d in $devs; do
	case $d in
	brd|nullb|nbtimer) ;;
	*) die "BENCH_DEVS: unknown device '$d' (brd, nullb, nbtimer)" ;;
	esac
done
# The profiles: on brd (when it is one of BENCH_DEVS) and four workloads
# unless told otherwise; a device asked for must be one of BENCH_DEVS (the
# guest sets up only those).
prof_workloads=$(workload_list BENCH_PROF_WORKLOADS "${BENCH_PROF_WORKLOADS:-}") || exit 1
prof_devs=
pds=()
if [ "$profile" = 1 ] && [ -n "${BENCH_PROF_DEVS:-}" ]; then
	read -r -d '' -a pds <<<"$BENCH_PROF_DEVS" || true
elif [ "$profile" = 1 ] && [[ " $devs " == *" brd "* ]]; then
	pds=(brd)
fi
for d in "${pds[@]}"; do
	case " $devs " in
	*" $d "*) ;;
	*) die "BENCH_PROF_DEVS: '$d' is not one of BENCH_DEVS ($devs)" ;;
	esac
	case " $prof_devs " in
	*" $d "*) ;;
	*) prof_devs="${prof_devs:+$prof_devs }$d" ;;
	esac
done

# --- dependencies and builds ----------------------------------------------

scripts/deps.sh || die "scripts/deps.sh could not install the packages (run 'make deps' as root)"
for t in fio gnuplot python3 qemu-system-x86_64; do
	command -v "$t" >/dev/null || die "$t not found (run 'make deps')"
done

all_kvers=$(scripts/kvers.sh)
[ -n "$all_kvers" ] || die "no Debian kernel with headers found: run 'make deps'"
case ${KVER:-} in
"") kvers=$(echo "$all_kvers" | grep -m 1 '^6\.1\.' || echo "$all_kvers" | head -n 1) ;;
all) kvers=$all_kvers ;;
*) kvers=$KVER
   echo "$all_kvers" | grep -qx "$KVER" || die "kernel $KVER is not installed with headers (have: $(echo $all_kvers))" ;;
esac

echo "bench: building (module, agent, bench helper)"
for k in $kvers; do
	make -s module KVER="$k" >/dev/null || die "module build for $k failed"
	# kbuild's notes (no BTF without vmlinux) are noise unless it fails
	if ! log=$(make -s -C tests/bench kmod KVER="$k" 2>&1); then
		echo "$log" >&2
		die "tests/bench/kmod (cmk_cipher_bench.ko) build for $k failed"
	fi
done
agent_args=()
if [ -f agent/Makefile ]; then
	if make -s -C agent all >/dev/null 2>&1; then
		agent_args=(--add agent/build/cmk-agent:/usr/bin/cmk-agent
			    --add agent/build/cmkctl:/usr/bin/cmkctl)
	else
		echo "bench: agent build failed; agent timings skipped" >&2
		agent_runs=0
	fi
else
	agent_runs=0
fi
make -s -C tests/bench >/dev/null || die "tests/bench build failed"

# --- guest runs -------------------------------------------------------------

out=${BENCH_OUT:-$top/build/bench/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
out=$(realpath "$out")
conf=$out/cmk-bench.conf
cat >"$conf" <<EOF
RUNS=$runs
RUNTIME=$runtime
RAMP=$ramp
DEVS="$devs"
CONFIGS="$configs"
AGENT_RUNS=$agent_runs
SIZE_MB=64
PROFILE=$profile
ONLY_WORKLOADS="$workloads"
PROF_DEVS="$prof_devs"
EOF
[ -z "$prof_workloads" ] || echo "PROF_WORKLOADS=\"$prof_workloads\"" >>"$conf"
prof_args=()
if [ "$profile" = 1 ]; then
	# Debian's perf, the same binary for both guest kernels
	perf=$(command -v perf) || die "perf not found (run 'make deps': linux-perf)"
	prof_args=(--add "$perf:/usr/bin/perf")
fi

# A generous bound: one fio run of 16 workloads (or BENCH_WORKLOADS') per
# (device, config, repeat), each workload ~0.5 s plus its runtime under
# TCG, ~10 s per fio run for dmsetup and the busy readings, per repeat the
# cipher meter (4 runtimes), tcrypt and the mode check (~60 s), and the
# profiles (3 configs x 4 workloads, or BENCH_PROF_WORKLOADS', x the
# profiled devices: 2 s with perf and ~23 s of setup and perf report each).
ndev=$(echo "$devs" | wc -w)
ncfg=$(echo "$configs" | wc -w)
case $runtime in
*ms) tsec=1 ;;
*) tsec=${runtime%%[.s]*}; tsec=$((${tsec:-0} + 1)) ;;
esac
nwl=16
[ -z "$workloads" ] || nwl=$(echo "$workloads" | wc -w)
bound=$((runs * (ndev * ncfg * (nwl * (tsec + 5) + 10) + 4 * tsec + 60) + 600))
# 3 and the four default workloads: PROF_CONFIGS and PROF_WORKLOADS in
# tests/bench/guest_bench.sh.
nprof=$(($(echo "$prof_devs" | wc -w) * 3 * $(echo "${prof_workloads:-a b c d}" | wc -w)))
[ "$profile" != 1 ] || bound=$((bound + 25 * nprof))

load=$(cut -d' ' -f1-3 /proc/loadavg)
others=$(pgrep -c qemu-system || true)
start=$(date -u +%Y-%m-%dT%H:%M:%SZ)
t0=$(date +%s)
echo "bench: $runs run(s) x {$devs} x {$configs}, fio runtime $runtime per point (ramp $ramp)"
[ -z "$workloads" ] || echo "bench: workloads: $workloads"
echo "bench: host load average $load, other QEMUs running: $others; results in $out"
for k in $kvers; do
	echo "bench: guest $k (up to ${bound}s)"
	mkdir -p "$out/$k"
	set +e
	# A thread per vCPU, whatever the environment says: the busy vCPUs
	# and the ratios assume two vCPUs that run at once.
	GUEST_TCG_THREAD=multi scripts/qemu/run-guest.sh --kver "$k" --fio \
		--timeout "$bound" --test-timeout "$bound" --out "$out/$k" \
		--add build/bench-bin/cmk_bench:/usr/bin/cmk_bench \
		--add "build/bench-kmod/$k/cmk_cipher_bench.ko:/root/cmk_cipher_bench.ko" \
		--add "$conf:/etc/cmk-bench.conf" --module tcrypt \
		"${agent_args[@]}" "${prof_args[@]}" \
		tests/bench/guest_bench.sh >"$out/$k/runner.tap" 2>&1
	rc=$?
	set -e
	if [ $rc -ne 0 ]; then
		echo "bench: the guest run for $k reported problems (exit $rc):" >&2
		grep -E '^(not ok|#)' "$out/$k/runner.tap" | head -n 20 >&2 || true
		grep -q '^BENCH fio' "$out/$k/results.log" 2>/dev/null ||
			die "no fio results from the $k guest; see $out/$k/"
	fi
done

# The agent against moto: tests/kms/aws_guest.sh already times boot ->
# usable and revoke -> wipe in its guest (one sample each per run); reuse
# it rather than a second copy of its moto and IAM setup.
if [ "$moto_runs" -gt 0 ] && [ -x tests/kms/aws_guest.sh ] &&
   [ ${#agent_args[@]} -gt 0 ]; then
	mk=$(echo "$kvers" | head -n 1)
	for r in $(seq 1 "$moto_runs"); do
		echo "bench: agent with moto, run $r of $moto_runs ($mk)"
		if tests/kms/aws_guest.sh --kver "$mk" >"$out/moto-$r.tap" 2>&1; then
			# its diagnostics are in the guest's log, not in the TAP
			cp build/results/kms-aws-guest-"$mk"/results.log "$out/moto-$r.log"
			up=$(sed -n 's/.*agent start -> device usable: \([0-9]*\) ms.*/\1/p' "$out/moto-$r.log" | head -n 1)
			wp=$(sed -n 's/.*revoke-to-wipe: \([0-9]*\) ms after the Deny.*/\1/p' "$out/moto-$r.log" | head -n 1)
			[ -n "$up" ] && [ -n "$wp" ] && echo "BENCH moto $r $up $wp" >>"$out/moto.log"
		else
			echo "bench: tests/kms/aws_guest.sh failed or skipped (see $out/moto-$r.tap)" >&2
			grep -q '# SKIP' "$out/moto-$r.tap" && break
		fi
	done
fi
wall=$(($(date +%s) - t0))

python3 "$here/report.py" --out "$out" --start "$start" --wall "$wall" \
	--load "$load" --others "$others" $kvers | tee "$out/table.txt"
mkdir -p "$top/build/bench"
ln -sfn "$out" "$top/build/bench/latest"
echo "bench: done in ${wall}s: $out/results.json, $out/table.txt, $out/*.png"

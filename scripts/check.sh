#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Everything `make check` runs, and the one verdict at the end.
#
# Usage: scripts/check.sh [--no-deps] [--kver KVER|all]
#        scripts/check.sh --sum [FILE.tap...]   (only sum TAP files)
#
# Suites (each one runs even if an earlier one failed, so a red run shows
# everything that is wrong).  The builds, deb, deb_maint and lint run first,
# one after the other; then two lanes run side by side, one suite at a time
# each, and print each suite's lines when it ends: lane b has the host
# suites (agent_unit to kms_<p>), boot_debian,
# integration_<kver>, agent_vmfork_<kver>, crash_* and pressure; the main
# lane has guest_<kver>, vmfork_<kver>, kms_*_guest, the debug suites and
# kernel_fuzz.  The suites are:
#   deps            scripts/deps.sh (apt-get, only when something is missing)
#   build_modules   the module for every Debian kernel, no warnings
#   build_agent     make -C agent all                 (if agent/Makefile)
#   build_kselftest make kselftest                    (if tests/kselftest/Makefile)
#   build_integration the integration tests' guest helpers
#   deb             make deb: the Debian packages in build/deb, lintian clean
#                   (its output is printed)                (if debian/rules)
#   deb_maint       tests/deb/maint_scripts.sh: the cmk-agent prerm and
#                   postinst against stub dmsetup/systemd on the host (~2 s)
#   lint            scripts/lint.sh: checkpatch, kernel-doc, sparse, W=1
#   bench_report    tests/bench/report_test.sh: the bench's report on a
#                   fixed log (dm-crypt runs that did not decrypt kept apart)
#   agent_unit      make -C agent test, cmocka TAP    (if agent/Makefile)
#   agent_fuzz      make -C agent fuzz: every libFuzzer target in tests/fuzz
#                   for FUZZ_SECONDS (5) each, after its regression inputs
#                   (TAP fuzz_<target>, fuzz_regress_<target>)
#   storage_esdk    tests/storage/esdk_interop.sh: cmkctl seal/unseal vs the
#                   AWS Encryption SDK for JavaScript (npm, cached under
#                   /var/cache/dm-cmk/npm)
#   storage_seal_rotation tests/storage/esdk_rotation.sh: seal, KEK rotate
#                   twice, CMK rewrap, unseal the first object
#   storage_seal_suite tests/storage/seal_suite.sh: unseal --suite refuses
#                   the other suite, writing nothing (~1 s)
#   storage_seal_socket tests/storage/seal_socket.sh: cmkctl seal|unseal
#                   --socket against a real agent's key socket (about 20 s)
#   storage_seal_socket_unsealing tests/storage/seal_socket_unsealing.sh:
#                   the key socket while the agent's first unseal waits on
#                   a held KMS (moto): unavailable with the reason (~20 s)
#   storage_seal_s3 tests/storage/seal_s3.sh: cmkctl seal/unseal straight
#                   to and from moto's S3 with IAM authorisation (~30 s)
#   storage_postgres_pitr tests/storage/postgres_pitr.sh: PostgreSQL 15
#                   archives sealed WAL under pgbench (scripts/pg), a sealed
#                   base backup, point-in-time recovery compared by checksum,
#                   a swapped segment refused
#   storage_postgres_revoke tests/storage/postgres_revoke.sh: the CMK
#                   revoked while PostgreSQL archives; nothing lost, no gap
#   storage_postgres_{pitr,revoke}_socket the same with the scripts' keys
#                   from cmk-agent's key socket (--socket)
#   storage_postgres_temp_tablespace tests/storage/postgres_temp_tablespace.sh:
#                   a temp tablespace's directory gone (a re-key) and
#                   scripts/pg/cmk-pg-temp-tablespace (about 10 s)
#   storage_esdk_io tests/storage/esdk_io.sh: seal/unseal move 16 MiB in
#                   batches, reads aligned, constant memory (strace)
#   storage_postgres_demo tests/storage/demo_storage.sh: make demo-storage's
#                   script passes (about 25 s)
#   kms_aws         tests/kms/aws_moto.sh: aws provider vs moto on loopback
#   kms_aws_hint    tests/kms/aws_hint.sh: the SQS revocation hint, real
#                   agents (--no-kernel) vs moto's SQS, SNS and KMS
#   fleet_boot_throttle tests/fleet/boot_throttle_units.sh: the units and
#                   cmk-ephemeral wait for a throttled boot (stubs, ~40 s)
#   fleet           tests/fleet/run.sh --short: 200 agents against moto
#                   behind a KMS quota, about 4 minutes; safety only
#                   (make fleet runs the full 1,000-agent version)
#   guest_<kver>    the kselftests in QEMU, for every Debian kernel (6.12's
#                   with both vCPUs on one TCG thread: tcg1 below)
#   vmfork_<kver>   tests/kselftest/vmfork.sh: a VM fork (snapshot, then a
#                   restore with a new vmgenid) wipes the keys (issue 12 s3)
#   pressure_<kver> tests/kselftest/pressure.sh: a 512 MiB guest with swap
#                   on a virtio disk, forced async crypto, wipes under load
#                   (issue 12 s5)
#   debug_module    make debug-module: the module against the debug kernel
#                   (scripts/debug-kernel.sh, cached by key in
#                   /var/cache/dm-cmk/debug-kernel; when not cached it is
#                   built in the background from the start, ~920 s of one
#                   core, ~23 min beside the lanes; CHECK_DEBUG_KERNEL=skip
#                   leaves this out)
#   debug_fault     tests/debug-kernel/fault.sh on the debug kernel: every
#                   fault test, fault_alloc's sweeps in FAULT_STEPS (16)
#                   steps (issue 14 s3; make debug-fault: 160)
#   debug_kselftest every kselftest on the debug kernel (~16 min;
#                   DEBUG_KSELFTESTS="name ..." runs those)
#   debug_integration tests/integration/run.sh --kver debug: every
#                   integration test (~11 min; DEBUG_INTEGRATION="name ...")
#   kernel_fuzz     tests/kselftest/kfuzz.sh: the kernel fuzzer for
#                   KFUZZ_SECONDS (120) on the debug kernel (else Debian's
#                   6.12; TAP <kver>:kfuzz:kernel_fuzz_*; make kfuzz runs it
#                   longer)
#   crash_replay    tests/crash/run.sh: dm-log-writes under dm-cmk's backing
#                   device; every prefix of the log of cmkctl format, kek
#                   rotate and the ephemeral re-key replayed and opened
#                   (issue 14 s4; Debian 6.12, about 3 minutes)
#   crash_powercut  tests/crash/powercut.sh: QEMU killed at seeded random
#                   moments of KEK rotations under I/O, CRASH_POINTS (2)
#                   points here, the seed printed (make crash: 20)
#   integration_<kver> tests/integration/run.sh: agent + kernel in QEMU,
#                   for every Debian kernel
#   agent_vmfork_<kver> tests/integration/vmfork.sh: the agent in a guest
#                   that is cloned (snapshot, restore, new vmgenid) unseals
#                   again before it restores a key (issue 12 s3)
#   kms_<p>         tests/kms/<p>.sh for p in azure gcp kmip pkcs11: the
#                   provider against its emulator or real server on the host
#   kms_aws_guest   tests/kms/aws_guest.sh: agent in QEMU vs moto on the host
#   kms_<p>_guest   tests/kms/<p>_guest.sh: the same for the other providers
#   boot_debian     tests/boot/run.sh: a debootstrapped Debian guest with
#                   systemd and cloud-init installs the packages with apt
#                   and brings the ephemeral disk up; the packages' upgrade,
#                   remove and purge
#
# Each suite prints its counts, its wall time, the CPU time of its
# processes that were waited for (QEMU included; "cpu") and how many of
# the host's CPUs were busy while it ran (both lanes and the debug
# kernel's build together); the guest suites add each test binary's time
# ("test times"), and the last line before the verdict gives the whole
# run's average: where make check's time goes is measured, not guessed
# (README.md, "make check").
#
# Each suite's raw output is build/results/<suite>.log and its TAP lines
# build/results/<suite>.tap.  A suite that fails without a "not ok" line of
# its own (a build error, a crash) gets one, so its failure is counted.
# The last line is "N passed, N failed"; the exit status is non-zero if
# anything failed or if no test ran at all.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
results=$top/build/results
mkdir -p "$results"

make_cmd=${MAKE:-make}
deps=1
kver=all
sum_only=0
while [ $# -gt 0 ]; do
	case $1 in
	--no-deps) deps=0; shift ;;
	--kver) kver=$2; shift 2 ;;
	--sum) sum_only=1; shift; break ;;
	*) echo "check: unknown argument $1" >&2; exit 2 ;;
	esac
done

# tap_lines FILE: the TAP result lines of FILE (only top-level ones).
tap_lines() {
	grep -E '^(not )?ok\b' "$1" 2>/dev/null || true
}

# why LOG: the diagnostic lines ("# ...") around each "not ok" in LOG:
# kselftest prints them before the result, run-guest.sh after it.
why() {
	[ -f "$1" ] || return 0
	awk 'function flush() { for (i = (n > 6 ? n - 6 : 0); i < n; i++)
					print "    " substr(d[i % 6], 1, 200); n = 0 }
	     /^#/ { if (after-- > 0) print "    " substr($0, 1, 200);
		    else d[n++ % 6] = $0
		    next }
	     /^not ok/ && !/#[ \t]*(SKIP|TODO)/ {
		print "  why: " $0; flush(); after = 6; next }
	     /^(ok|not ok)/ { n = 0; after = 0 }' "$1"
}

# sum FILES...: print the failing lines and the final verdict.
sum() {
	local pass=0 fail=0 skip=0 f
	local all
	all=$(for f in "$@"; do tap_lines "$f"; done)
	if [ -n "$all" ]; then
		skip=$(grep -ciE '^(not )?ok\b.*#\s*(SKIP|TODO)' <<<"$all")
		pass=$(grep -E '^ok\b' <<<"$all" | grep -vciE '#\s*(SKIP|TODO)')
		fail=$(grep -E '^not ok\b' <<<"$all" | grep -vciE '#\s*(SKIP|TODO)')
	fi
	echo
	if [ "$fail" -gt 0 ]; then
		echo "Failed:"
		for f in "$@"; do
			grep -E '^not ok\b' "$f" 2>/dev/null | grep -viE '#\s*(SKIP|TODO)' |
				sed "s|^|  $(basename "$f" .tap): |"
		done
		# CI shows only the end of this output: repeat why, briefly.
		for f in "$@"; do
			why "${f%.tap}.log"
		done | head -n 24
	fi
	if [ "$skip" -gt 0 ]; then
		echo "Skipped or TODO: $skip"
		grep -hiE '^(not )?ok\b.*#\s*(SKIP|TODO)' "$@" 2>/dev/null | sed 's/^/  /' | head -n 20
	fi
	echo "$pass passed, $fail failed"
	[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
}

if [ "$sum_only" = 1 ]; then
	if [ $# -eq 0 ]; then
		set -- "$results"/*.tap
	fi
	sum "$@"
	exit $?
fi

# Every suite's TAP file, in the order the suites finished; a file, not an
# array, so that the suites of the second lane (below) count too.
suites_list=$results/.suites
add_tap() {
	echo "$1" >>"$suites_list"
}

# host_busy: the host's busy and total CPU time so far, in clock ticks
# (/proc/stat: busy = user + nice + system + irq + softirq + steal), and
# its number of CPUs (the cpuN lines: what the totals add up).  %.0f, not
# print: mawk prints numbers over 2^31 with six digits.
host_busy() {
	awk '/^cpu / { b = $2 + $3 + $4 + $7 + $8 + $9; t = b + $5 + $6 }
	     /^cpu[0-9]/ { n++ }
	     END { printf "%.0f %.0f %d\n", b, t, n }' /proc/stat
}

# busy_cores "B0 T0 N" "B1 T1 N": how many of the host's CPUs were busy on
# average between two host_busy readings, e.g. 1.7 (of 2).
busy_cores() {
	awk -v a="$1" -v b="$2" 'BEGIN { split(a, x); split(b, y)
		d = y[2] - x[2]; printf "%.1f", (d > 0 ? y[3] * (y[1] - x[1]) / d : 0) }'
}

# suite_cpu FILE: user + system seconds of the children in a `times`
# output ("0m1.500s 0m0.200s" lines, C locale; the second is the
# children's), or "?" if there is none (the suite was killed first).
suite_cpu() {
	awk 'NR == 2 { t = 0
		for (i = 1; i <= 2; i++) { split($i, p, "m"); sub(/s$/, "", p[2]); t += p[1] * 60 + p[2] }
		printf "%.0f", t; f = 1 }
	     END { if (!f) printf "?" }' "$1" 2>/dev/null || printf '?'
}

# run_suite NAME KIND [--show ERE] CMD...
#   KIND "build": no TAP of its own; one line "ok/not ok NAME" from its rc.
#   KIND "tap":   its TAP lines count; a non-zero rc without any "not ok",
#                 or no result line at all, adds "not ok NAME_...".
#   --show ERE:   the log's lines matching ERE are printed after the result
#                 (a "# " in front dropped), e.g. the guest's verdict.
# What it prints ("== NAME: CMD", the counts and time, failures) is one
# block, printed when the suite ends, so two lanes do not mix their lines.
run_suite() {
	local name=$1 kind=$2 show=''
	shift 2
	if [ "$1" = --show ]; then
		show=$2
		shift 2
	fi
	local log=$results/$name.log tap=$results/$name.tap rc t0 t1 nok nfail block
	local h0 h1 cpu
	t0=$(date +%s)
	h0=$(host_busy)
	# In the background and waited for: a signal's trap runs at once,
	# not after the suite (bash defers traps until a foreground job ends).
	# The subshell's `times` is the CPU of every process of the suite that
	# was waited for (QEMU included; not a daemon left to init), written to
	# a file of its own.
	rm -f "$log.cpu"
	(
		"$@"
		rc=$?
		LC_ALL=C
		times >"$log.cpu"
		exit "$rc"
	) >"$log" 2>&1 </dev/null &
	wait $!
	rc=$?
	t1=$(date +%s)
	h1=$(host_busy)
	cpu=$(suite_cpu "$log.cpu")
	if [ "$kind" = build ]; then
		if [ "$rc" -eq 0 ]; then
			echo "ok 1 $name" >"$tap"
		else
			echo "not ok 1 $name # rc=$rc, log: $log" >"$tap"
		fi
	else
		tap_lines "$log" >"$tap"
		nok=$(grep -cE '^ok\b' "$tap")
		nfail=$(grep -cE '^not ok\b' "$tap")
		if [ "$rc" -ne 0 ] && [ "$nfail" -eq 0 ]; then
			echo "not ok $((nok + 1)) ${name}_exit_status # rc=$rc, log: $log" >>"$tap"
		elif [ "$nok" -eq 0 ] && [ "$nfail" -eq 0 ]; then
			echo "not ok 1 ${name}_ran_no_tests # log: $log" >>"$tap"
		fi
	fi
	add_tap "$tap"
	nok=$(grep -cE '^ok\b' "$tap")
	nfail=$(grep -cE '^not ok\b' "$tap")
	block=$(
		echo "== $name: $*"
		echo "   $nok ok, $nfail not ok, $((t1 - t0))s (ended at +$((t1 - start))s;" \
			"cpu ${cpu}s; host $(busy_cores "$h0" "$h1") cores busy)"
		if [ -n "$show" ]; then
			grep -hE "$show" "$log" | sed 's/^# /   /'
		fi
		if [ "$nfail" -gt 0 ]; then
			# The failing lines with their diagnostics, or the log's tail.
			if [ "$kind" = build ] || ! grep -qE '^not ok\b' "$log"; then
				tail -n 30 "$log" | sed 's/^/   | /'
			else
				awk '/^not ok/ { p = 1; print; next }
				     /^(ok|not ok) / { p = 0 }
				     p && /^#/ { print }' "$log" | head -n 60 | sed 's/^/   | /'
			fi
		fi
	)
	# One writer at a time: a block over PIPE_BUF is not written at once.
	{
		flock 8
		printf '%s\n' "$block"
	} 8>>"$results/.print.lock"
	return 0
}

# tree PID: PID and every process under it, parents first.
tree() {
	local c
	echo "$1"
	for c in $(pgrep -P "$1"); do
		tree "$c"
	done
}

# stop_all STATUS: on ^C, SIGTERM (a CI timeout) or SIGHUP, stop everything
# this script started and exit.  Lane b and the debug kernel's build run in
# the background, where SIGINT is ignored, so a ^C alone would leave them
# (and their guests and servers) running.  The test scripts' own EXIT
# traps clean up after them on SIGTERM.
stop_all() {
	echo "check: interrupted: stopping every suite" >&2
	# shellcheck disable=SC2046
	kill -TERM $(tree $$ | tail -n +2) 2>/dev/null
	exit "$1"
}
trap 'stop_all 129' HUP
trap 'stop_all 130' INT
trap 'stop_all 143' TERM

start=$(date +%s)
start_busy=$(host_busy)
# Which guests run single-threaded is this script's choice (tcg1 below),
# not the caller's environment's.
unset GUEST_TCG_THREAD
rm -f "$results"/*.tap "$suites_list" "$results/.lane_b_done"

if [ "$deps" = 1 ]; then
	run_suite deps build "$make_cmd" -s deps
fi
# The debug kernel (issue 14; tests/debug-kernel): built once per key into
# /var/cache/dm-cmk/debug-kernel (~920 s of CPU cold).  When this key
# is not cached, the build starts here, in the background at nice 19 with
# one job, and overlaps the host suites; the debug suites at the end wait
# for it.  CHECK_DEBUG_KERNEL=skip leaves the debug suites out.
dbgk_pid=''
dbgk_log=$results/debug_kernel_build.log
if [ "${CHECK_DEBUG_KERNEL:-auto}" != skip ] && [ -x scripts/debug-kernel.sh ]; then
	if scripts/debug-kernel.sh --print-dir >/dev/null 2>&1; then
		echo "== debug kernel: cached in $(scripts/debug-kernel.sh --print-dir)"
	else
		echo "== debug kernel: not cached; building in the background (log: $dbgk_log)"
		scripts/debug-kernel.sh --jobs 1 >"$dbgk_log" 2>&1 </dev/null &
		dbgk_pid=$!
	fi
fi
run_suite build_modules build "$make_cmd" -s modules-all
if [ -f agent/Makefile ]; then
	run_suite build_agent build "$make_cmd" -C agent all
fi
if [ -f tests/kselftest/Makefile ]; then
	run_suite build_kselftest build "$make_cmd" kselftest
fi
# The integration tests' guest helpers, here: both lanes use them.
if [ -f tests/integration/Makefile ]; then
	run_suite build_integration build "$make_cmd" -s -C tests/integration \
		O="$top/build/tests/integration"
fi
if [ -x debian/rules ]; then
	run_suite deb build "$make_cmd" -s deb
	sed -n '/^deb: lintian/,$p' "$results/deb.log" | sed 's/^/   /'
fi
if [ -x tests/deb/maint_scripts.sh ]; then
	run_suite deb_maint tap tests/deb/maint_scripts.sh
fi
run_suite lint tap scripts/lint.sh
# The bench's report keeps dm-crypt runs that did not decrypt apart
# (Documentation/benchmarks.rst); checked on a fixed log, no guest.
if [ -x tests/bench/report_test.sh ]; then
	run_suite bench_report tap tests/bench/report_test.sh
fi
if [ "$kver" = all ]; then
	mapfile -t kvers < <(scripts/kvers.sh)
else
	kvers=("$kver")
fi
if [ ${#kvers[@]} -eq 0 ]; then
	echo "not ok 1 guest_kernels_installed # no Debian kernel with headers" >"$results/guest.tap"
	add_tap "$results/guest.tap"
fi
# The 6.12 kernel, where one kernel is enough (its module set has
# dm-log-writes), else the first kernel under test.
k612=$(printf '%s\n' "${kvers[@]}" | grep -m 1 '^6\.12\.' || echo "${kvers[0]:-}")

# From here on two lanes run side by side, each one suite at a time: the
# QEMU guests leave much of the two cores idle (they sleep through leases
# and timeouts), so the two kselftest guests together took ~280 s of wall
# clock against ~520 s one after the other (2026-11; with both lanes the
# host is now 1.8 of 2 CPUs busy on average).  Everything both lanes build is
# built above; what they share at run time (the module, the test binaries,
# the agent) they only read; each suite has its own results directory and
# temporary directory, and servers take free ports.
#
# The second lane: the suites on the host, the Debian boot test, the
# integration tests on the Debian kernels, the crash tests and the
# memory-pressure guest (~47 min of one lane).
# run_if NAME SCRIPT [ARG...]: the TAP suite NAME, if SCRIPT is there.
run_if() {
	[ -x "$2" ] || return 0
	run_suite "$1" tap "${@:2}"
}

lane_b() {
	if [ -f agent/Makefile ]; then
		run_suite agent_unit tap env CMOCKA_MESSAGE_OUTPUT=TAP "$make_cmd" -C agent test
	fi
	if [ -f agent/Makefile ] && [ -x tests/fuzz/run.sh ]; then
		# Bounded: ~80 s of fuzzing (make fuzz runs longer), plus the clang build.
		run_suite agent_fuzz tap --show '^# fuzz_' "$make_cmd" -C agent fuzz \
			FUZZ_SECONDS="${FUZZ_SECONDS:-5}"
	fi
	local t p
	for t in esdk_interop:esdk esdk_rotation:seal_rotation seal_suite:seal_suite \
		seal_socket:seal_socket seal_socket_unsealing:seal_socket_unsealing \
		seal_s3:seal_s3; do
		run_if "storage_${t#*:}" "tests/storage/${t%%:*}.sh"
	done
	for t in pitr revoke; do
		run_if "storage_postgres_$t" "tests/storage/postgres_$t.sh"
		if [ -x "tests/storage/postgres_$t.sh" ]; then
			run_suite "storage_postgres_${t}_socket" tap \
				env PG_KEY_SOURCE=socket "tests/storage/postgres_$t.sh"
		fi
	done
	run_if storage_postgres_temp_tablespace tests/storage/postgres_temp_tablespace.sh
	run_if storage_esdk_io tests/storage/esdk_io.sh
	run_if storage_postgres_demo tests/storage/demo_storage.sh
	run_if kms_aws tests/kms/aws_moto.sh
	run_if kms_aws_hint tests/kms/aws_hint.sh
	run_if fleet_boot_throttle tests/fleet/boot_throttle_units.sh
	run_if fleet tests/fleet/run.sh --short
	# Other providers against their real peers or emulators on the
	# host: tests/kms/<provider>.sh, TAP on stdout.
	for p in azure gcp kmip pkcs11; do
		run_if "kms_$p" "tests/kms/$p.sh"
	done
	# A real Debian guest (systemd, cloud-init, our packages through apt).
	run_if boot_debian tests/boot/run.sh
	for t in "${kvers[@]}"; do
		run_suite "integration_$t" tap --show '^# (verdict|.*: test times:)' tests/integration/run.sh --kver "$t"
		run_suite "agent_vmfork_$t" tap tests/integration/vmfork.sh --kver "$t"
	done
	# Crash consistency of the header writes.
	if [ -x tests/crash/run.sh ] && [ -n "$k612" ]; then
		run_suite crash_replay tap \
			--show 'prefixes checked|torn-write states|interrupted-format state' \
			tests/crash/run.sh --kver "$k612"
		run_suite crash_powercut tap --show '^# (crash_powercut|point)' \
			tests/crash/powercut.sh --kver "$k612" --points "${CRASH_POINTS:-2}"
	fi
	# The memory-pressure guest (~3 min a kernel) runs on one kernel;
	# tests/kselftest/pressure.sh --kver KVER runs it on any other.
	if [ -n "$k612" ]; then
		run_suite "pressure_$k612" tap --show '^# verdict' \
			tests/kselftest/pressure.sh --kver "$k612"
	fi
	# The lane got to its end: checked after it, so a lane that died
	# (a shell error, the OOM killer) cannot lose its later suites.
	touch "$results/.lane_b_done"
}

lane_b_t0=$(date +%s)
echo "== lane b: started beside the main lane (host suites, boot, integration, crash, pressure)"
lane_b &
lane_b_pid=$!

# The main lane: the kselftest guests, the providers in guests, then the
# debug kernel's suites and the kernel fuzzer (~47 min).
#
# The kselftests on Debian's 6.12 run both vCPUs on one host thread
# (tcg1): on a host whose two cores the other lane keeps busy a thread per
# vCPU costs more CPU than it gains (6.1's and 6.12's guests side by side,
# one run each way outside make check: 23 % less CPU, 16 % less wall,
# every test passing).  Their vCPUs then never run at the same time (QEMU
# switches them at a 100 ms kick, HLT, IPIs), so races are hit less often
# there; the same kselftests run with a thread per vCPU on the debug
# kernel, a 6.12 where KASAN and lockdep make a race count, and on 6.1,
# which has no other kselftest run; so does every other guest (the fuzzer,
# the fault tests, the integration tests, the guests with timing bounds).
tcg1=(env GUEST_TCG_THREAD=single)
for k in "${kvers[@]}"; do
	case $k in
	6.12.*) one=("${tcg1[@]}") ;;
	*) one=() ;;
	esac
	run_suite "guest_$k" tap --show '^# (verdict|.*: test times:)' \
		"${one[@]}" scripts/qemu/run-guest.sh --kver "$k"
	run_suite "vmfork_$k" tap --show '^# verdict' tests/kselftest/vmfork.sh --kver "$k"
done
if [ -x tests/kms/aws_guest.sh ]; then
	run_suite kms_aws_guest tap tests/kms/aws_guest.sh
fi
for p in azure gcp kmip pkcs11; do
	if [ -x "tests/kms/${p}_guest.sh" ]; then
		run_suite "kms_${p}_guest" tap "tests/kms/${p}_guest.sh"
	fi
done

# The debug kernel's suites (issue 14): the module built warning-free
# against it, every fault test (backing-device errors, failslab and
# fail_page_alloc swept through dm-cmk's allocations, a failing crypto
# driver, an event that cannot be allocated), every kselftest and every
# integration test.  Any KASAN, lockdep, UBSAN, hung-task or WARN report,
# or a kmemleak report of dm-cmk, fails them.  A real hibernation image
# (~10 min) stays out: make debug-hibernate.
kf_kver=
if [ "${CHECK_DEBUG_KERNEL:-auto}" != skip ] && [ -x scripts/debug-kernel.sh ]; then
	if [ -n "$dbgk_pid" ]; then
		t0=$(date +%s)
		wait "$dbgk_pid"
		echo "== debug kernel: background build done (rc $?), waited $(($(date +%s) - t0))s"
		grep -h '^wall' "$(scripts/debug-kernel.sh --print-dir)/build-time" 2>/dev/null | sed 's/^/   /'
	fi
	if scripts/debug-kernel.sh --print-dir >/dev/null 2>&1; then
		run_suite debug_module build "$make_cmd" -s debug-module
		# Every fault test; fault_alloc's sweeps in FAULT_STEPS (16)
		# steps, not 160 (make debug-fault: ~30 min).
		run_suite debug_fault tap tests/debug-kernel/fault.sh --kver debug \
			--steps "${FAULT_STEPS:-16}"
		# Every kselftest (~16 min); DEBUG_KSELFTESTS="name ..." runs
		# those only.
		dk_tests=${DEBUG_KSELFTESTS:-all}
		dk_bins=()
		if [ "$dk_tests" != all ]; then
			for t in $dk_tests; do
				dk_bins+=("build/tests/kselftest/$t")
			done
		fi
		run_suite debug_kselftest tap --show '^# (verdict|.*: test times:)' \
			scripts/qemu/run-guest.sh --kver debug \
			--out "$top/build/results/debug-kselftest" "${dk_bins[@]}"
		# Every integration test, the agent and the kernel together
		# (~11 min); DEBUG_INTEGRATION="name ..." runs those only.
		di_tests=${DEBUG_INTEGRATION:-all}
		di_paths=()
		if [ "$di_tests" != all ]; then
			for t in $di_tests; do
				di_paths+=("tests/integration/$t")
			done
		fi
		run_suite debug_integration tap --show '^# (verdict|.*: test times:)' \
			tests/integration/run.sh --kver debug "${di_paths[@]}"
		kf_kver=debug
	else
		echo "not ok 1 debug_kernel_built # see $dbgk_log" >"$results/debug_kernel.tap"
		tail -n 30 "$dbgk_log" 2>/dev/null | sed 's/^/   | /'
		add_tap "$results/debug_kernel.tap"
	fi
fi
# The kernel fuzzer, bounded (Documentation/fuzzing.rst): on the debug
# kernel when it is there (KASAN, lockdep), else 6.12 when it is one of the
# kernels under test, else the first of them.
if [ -x tests/kselftest/kfuzz.sh ] && [ ${#kvers[@]} -gt 0 ]; then
	kf_kver=${kf_kver:-$k612}
	# A fixed seed, as for the libFuzzer targets: every make check runs
	# the same operations (I/O timing still varies); KFUZZ_SEED=random
	# (or another number) explores, as make kfuzz does by default.
	kf_seed=${KFUZZ_SEED:-1}
	[ "$kf_seed" = random ] && kf_seed=
	# a finding's own lines too: a hang names the threads' kernel stacks
	run_suite kernel_fuzz tap \
		--show '^# kfuzz: (seed|FINDING|stack of|kf-|slowest)|ops/min$|^# verdict' \
		tests/kselftest/kfuzz.sh --kver "$kf_kver" \
		--seconds "${KFUZZ_SECONDS:-120}" ${kf_seed:+--seed "$kf_seed"}
fi
main_t1=$(date +%s)
echo "== main lane: done at +$((main_t1 - start))s; waiting for lane b"
wait "$lane_b_pid"
lane_b_rc=$?
echo "== lane b: done (rc $lane_b_rc) at +$(($(date +%s) - start))s, $(($(date +%s) - lane_b_t0))s after it started"
if [ "$lane_b_rc" -ne 0 ] || [ ! -e "$results/.lane_b_done" ]; then
	echo "not ok 1 lane_b_ran_to_its_end # rc=$lane_b_rc; the suites after the last one above did not run" \
		>"$results/lane_b.tap"
	add_tap "$results/lane_b.tap"
fi
echo "== total $(($(date +%s) - start))s, host $(busy_cores "$start_busy" "$(host_busy)") cores busy on average; logs in $results/"
mapfile -t suites <"$suites_list"
sum "${suites[@]}"

#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Run libFuzzer targets for a bounded time each, and their regression
# inputs.  Documentation/fuzzing.rst.
#
# Usage: tests/fuzz/run.sh --bin DIR [--seconds N] [TARGET...]
#   --bin DIR    where fuzz_<target> binaries are (agent/build/fuzz)
#   --seconds N  fuzzing time per target (default 20; 0: regressions only)
#   FUZZ_SEED=N  libFuzzer's seed (default 1: the same mutations every run,
#                so make check explores the same inputs; "random" for a new
#                one each run, as in long runs)
#   TARGET       e.g. header aws genl (default: every binary in DIR)
#
# For each target: every file in tests/fuzz/regress/<target>/ is run once
# (TAP "fuzz_regress_<target>"), then the fuzzer runs N seconds from the
# seeds in tests/fuzz/corpus/<target>/ and what earlier runs found in
# DIR/corpus/<target>/ (new inputs go there; the seeds are not touched).
# It prints executions per second and coverage (libFuzzer's cov: and ft:),
# and TAP "ok N fuzz_<target>"; a crash, leak, UB report or timeout is
# "not ok" with the path of the input that caused it
# (DIR/artifacts/<target>/).  Exit status: non-zero if anything failed.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bin=
secs=20
while [ $# -gt 0 ]; do
	case $1 in
	--bin) bin=$(cd "$2" && pwd) || exit 2; shift 2 ;;
	--seconds) secs=$2; shift 2 ;;
	-*) echo "fuzz: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
done
[ -n "$bin" ] || { echo "fuzz: --bin DIR is required" >&2; exit 2; }
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
	for b in "$bin"/fuzz_*; do
		[ -x "$b" ] && targets+=("${b##*/fuzz_}")
	done
fi

# Leaks are findings too; a stack of the report goes to the log.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

n=0
fail=0
tap() {	# STATUS NAME COMMENT
	n=$((n + 1))
	echo "$1 $n $2${3:+ # $3}"
}

# artifact LOG: the input libFuzzer saved for the failure in LOG.
artifact() {
	sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$1" | tail -1
}

echo "1..$((2 * ${#targets[@]}))"
for t in "${targets[@]}"; do
	exe=$bin/fuzz_$t
	work=$bin/corpus/$t
	arts=$bin/artifacts/$t
	log=$bin/log/$t.log
	mkdir -p "$work" "$arts" "$bin/log"
	if [ ! -x "$exe" ]; then
		tap "not ok" "fuzz_regress_$t" "no binary $exe"
		tap "not ok" "fuzz_$t" "no binary $exe"
		fail=1
		continue
	fi

	# Regression inputs: each once, all must pass.
	reg=()
	if [ -d "$here/regress/$t" ]; then
		for f in "$here/regress/$t"/*; do
			[ -f "$f" ] && reg+=("$f")
		done
	fi
	if [ ${#reg[@]} -eq 0 ]; then
		tap "ok" "fuzz_regress_$t" "SKIP no regression inputs"
	elif "$exe" -artifact_prefix="$arts/" "${reg[@]}" >"$log.regress" 2>&1; then
		tap "ok" "fuzz_regress_$t" "${#reg[@]} inputs"
	else
		bad=$(grep -o 'Running: .*' "$log.regress" | tail -1 | cut -d' ' -f2)
		echo "# fuzz_$t: regression input fails: $bad (log: $log.regress)"
		grep -E 'ERROR|SUMMARY|runtime error|fuzz:' "$log.regress" | head -5 | sed 's/^/#   /'
		tap "not ok" "fuzz_regress_$t" "$bad"
		fail=1
	fi

	[ "$secs" -gt 0 ] 2>/dev/null || continue
	seeds=()
	[ -d "$here/corpus/$t" ] && seeds+=("$here/corpus/$t")
	start=$(date +%s)
	seedopt=()
	[ "${FUZZ_SEED:-1}" = random ] || seedopt=(-seed="${FUZZ_SEED:-1}")
	"$exe" "${seedopt[@]}" -max_total_time="$secs" -timeout=25 -rss_limit_mb=2048 \
		-max_len=8192 -print_final_stats=1 -artifact_prefix="$arts/" \
		"$work" "${seeds[@]}" >"$log" 2>&1
	rc=$?
	took=$(($(date +%s) - start))
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
	cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -1)
	corp=$(find "$work" -type f | wc -l)
	echo "# fuzz_$t: ${took} s, ${execs:-?} executions, ${rate:-?} exec/s, ${cov:-cov: ?}, corpus ${corp}"
	if [ $rc -eq 0 ]; then
		tap "ok" "fuzz_$t" "${rate:-?} exec/s, ${cov:-cov: ?}"
	else
		a=$(artifact "$log")
		echo "# fuzz_$t: FAILED (exit $rc): input ${a:-none saved} (log: $log)"
		grep -E 'ERROR|SUMMARY|runtime error|fuzz:' "$log" | head -5 | sed 's/^/#   /'
		tap "not ok" "fuzz_$t" "input ${a:-none saved}"
		fail=1
	fi
done
exit $fail

#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# report_test.sh - scripts/bench/report.py on a fixed guest log
# (tests/bench/fixtures/two-modes.log) whose second repeat read dm-crypt
# at 450 MiB/s against a cipher that did 10 MiB/s per vCPU in that
# repeat (40 in the first): a run that cannot have decrypted
# (Documentation/benchmarks.rst, "Two speeds of dm-crypt").  TAP on
# stdout; runs on the host in a second.
#
# Oracle: the report warns about that repeat, gives it tables of its own,
# and the ratio dm-cmk / dm-crypt of the decrypting repeat is 80 / 50 =
# 1.60, not the 80 / 250 = 0.32 a median over both repeats would give;
# dm-cmk's fraction of the cipher is taken against each repeat's own
# ceiling: 80 MiB/s / (2 vCPUs x 40) = 1.00 in the decrypting repeat and
# 80 / (2 x 10) = 4.00 in the other, not 80 / (2 x 25) = 1.60 in both, as
# a median of the ceiling over both repeats would give.  The third
# repeat's cipher meter failed (bound 0) and its cipher calls were not
# counted, though an old guest labelled it "decrypting": it must be
# "unchecked" (fail closed), not pulled into the decrypting medians (where
# it would make /crypt (80 + 40) / 2 / 50 = 1.20).  The mode follows the
# cipher calls per MiB (4096 in repeat 1, 0 in repeat 2), not the label:
# repeat 4 (dd only) read faster than its bound and was labelled
# "not-decrypting" by speed, but made 2048 calls per MiB: decrypting, with
# the speed kept as a warning.  tcrypt's cipher alone cost 12.5 ms/MiB
# (1024-byte requests) in repeat 1 and 50 in repeat 2: dm-cmk's dd read
# in repeat 1 (80 MiB/s on 1.60 vCPUs = 20 ms/MiB) is 1.60x it, and
# dm-crypt's in repeat 2 (450 MiB/s on 1.00 = 2.2 ms/MiB) is cheaper than
# the cipher alone, which no decrypting read can be: a warning.  Repeat 5
# (dd only) had neither a call count nor a cipher meter, but its dm-crypt
# read cost 2.2 ms/MiB against tcrypt's 12.5: not-decrypting, not
# "unchecked".  Busy vCPUs in fio's steady window are paired with the
# rate of the same repeat: dm-crypt 1.20 vCPUs at 50 MiB/s = 24.0 vCPU ms
# per MiB and dm-cmk 1.60 at 80 = 20.0 in repeat 1; dm-crypt's 1.00 at
# 450 MiB/s of repeat 2 (2.2 ms/MiB) stays in its own mode's table.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/K"
cp "$here/fixtures/two-modes.log" "$tmp/K/results.log"

n=0
failed=0
check() {	# check NAME COMMAND...
	local name=$1
	shift
	n=$((n + 1))
	if "$@"; then
		echo "ok $n $name"
	else
		failed=$((failed + 1))
		echo "not ok $n $name"
	fi
}

python3 "$top/scripts/bench/report.py" --out "$tmp" K >"$tmp/table.txt" 2>"$tmp/err"
check bench_report_runs test $? -eq 0
ratio_of() {	# ratio_of MODE WORKLOAD: dm-cmk default's /crypt in that mode
	awk -v m="##### mode: $1 " -v w="$2" '
		index($0, m) == 1 { on = 1; next }
		/^##### mode: / { on = 0 }
		on && /ratios/ { r = 1; next }
		on && r && $1 == w { print $3; exit }' "$tmp/table.txt"
}
check bench_report_mode_warning grep -q '^WARNING: run(s) 2,5 read dm-crypt without decrypting' "$tmp/table.txt"
check bench_report_mode_split_decrypting grep -q '^##### mode: decrypting (run(s) 1)$' "$tmp/table.txt"
check bench_report_mode_split_not_decrypting grep -q '^##### mode: not-decrypting (run(s) 2)$' "$tmp/table.txt"
check bench_report_mode_fail_closed_unchecked grep -q '^##### mode: unchecked (run(s) 3)$' "$tmp/table.txt"
check bench_report_mode_evidence_calls grep -q '^ *1 crypt .* decrypting (4096 cipher calls/MiB' "$tmp/table.txt"
check bench_report_mode_evidence_over_speed grep -q '^ *4 crypt .* decrypting (2048 cipher calls/MiB' "$tmp/table.txt"
check bench_report_mode_speed_warning grep -q '^WARNING: run(s) 4 read dm-crypt faster than its cipher alone, though' "$tmp/table.txt"
check bench_report_mode_ratio_unmixed test "$(ratio_of decrypting seqread-1m-qd1)" = 1.60
# shellcheck disable=SC2016
check bench_report_ceiling_fraction \
	awk '$1 == "seqread-1m-qd1" && $2 == "|" && $5 == "1.00" { f = 1 }
		END { exit !f }' "$tmp/table.txt"
frac_of() {	# frac_of MODE WORKLOAD CONFIG: its fraction of the cipher alone
	awk -v m="##### mode: $1 " -v w="$2" -v c="$3" '
		index($0, m) == 1 { on = 1; next }
		/^##### mode: / { on = 0 }
		on && /fraction of the cipher alone/ { t = 1; next }
		on && t && $1 == "workload" { for (i = 2; i <= NF; i++) if ($i == c) col = i; next }
		on && t && $1 == w { print $col; exit }' "$tmp/table.txt"
}
check bench_report_ceiling_per_repeat_decrypting test "$(frac_of decrypting seqread-1m-qd1 cmk)" = 1.00
check bench_report_ceiling_per_repeat_not_decrypting test "$(frac_of not-decrypting seqread-1m-qd1 cmk)" = 4.00
check bench_report_driver_recorded grep -q 'driver each target holds: .*xts-aes-aesni-avx: brd/cmk dd/crypt' "$tmp/table.txt"
check bench_report_tcrypt_decides_uncounted grep -q '^ *5 crypt .* not-decrypting (? cipher calls/MiB' "$tmp/table.txt"
check bench_report_tcrypt_cheaper_than_cipher grep -q '^WARNING: run(s) 2,5: a dm-crypt or dm-cmk dd read spent less than 0.5x' "$tmp/table.txt"
# shellcheck disable=SC2016
check bench_report_tcrypt_fraction \
	awk '$1 == 1 && $2 == "cmk" && $6 == "20.0" && $7 == "1.60" && $8 == "0.50" { f = 1 }
		END { exit !f }' "$tmp/table.txt"
check bench_report_tcrypt_ceiling grep -q '^  run 1  1024 B 12.50 ms/MiB (80 MiB/s)  4096 B 10.00 ms/MiB (100 MiB/s)  xts-aes-aesni-avx$' "$tmp/table.txt"
check bench_report_devs_checked grep -q '^devices timed, checked as dm devices of their target: cmk aes-xts-plain64 x1, crypt aes-xts-plain64 x1, linear x1$' "$tmp/table.txt"
busy_of() {	# busy_of MODE WORKLOAD CONFIG: "busy/ms per MiB" in that mode
	awk -v m="##### mode: $1 " -v w="$2" -v c="$3" '
		index($0, m) == 1 { on = 1; next }
		/^##### mode: / { on = 0 }
		on && /busy vCPUs in fio/ { t = 1; next }
		on && t && $1 == "workload" { for (i = 2; i <= NF; i++) if ($i == c) col = i; next }
		on && t && $1 == w { print $col; exit }' "$tmp/table.txt"
}
check bench_report_busy_crypt test "$(busy_of decrypting seqread-1m-qd1 crypt)" = 1.20/24.0
check bench_report_busy_cmk test "$(busy_of decrypting seqread-1m-qd1 cmk)" = 1.60/20.0
check bench_report_busy_per_mode test "$(busy_of not-decrypting seqread-1m-qd1 crypt)" = 1.00/2.2

# Paired ratios (tests/bench/fixtures/paired.log): three decrypting
# repeats of dm-crypt at 50, 50, 100 MiB/s and dm-cmk at 60, 40, 90.  The
# ratio of the medians is 60 / 50 = 1.20; repeat by repeat it is 1.20,
# 0.80, 0.90 (median 0.90, one of three >= 1.0): the table must show
# both, each from its own definition.  A workload measured by dm-cmk in a
# repeat dm-crypt missed (randread, repeat 2) pairs only repeat 1; one
# where dm-crypt measured 0 (seqwrite, repeat 2) shows n/a there, and its
# exactly equal repeat 1 (1.00) counts as >= 1.0.  In two-modes.log the
# pairs stay inside their mode: r1 in the decrypting tables, r2 in the
# not-decrypting ones.
mkdir -p "$tmp/P"
cp "$here/fixtures/paired.log" "$tmp/P/results.log"
python3 "$top/scripts/bench/report.py" --out "$tmp" P >"$tmp/paired.txt" 2>>"$tmp/err"
check bench_report_paired_runs test $? -eq 0
# shellcheck disable=SC2016
check bench_report_paired_ratio_of_medians \
	awk '$1 == "seqread-1m-qd32" && $2 == "|" && $3 == "1.20" { f = 1 } END { exit !f }' "$tmp/paired.txt"
check bench_report_paired_by_repeat grep -Eq '^seqread-1m-qd32 +1\.20 +0\.80 +0\.90 +0\.90 +1/3$' "$tmp/paired.txt"
check bench_report_paired_only_both grep -Eq '^randread-4k-qd1-j1 +3\.00 +- +- +3\.00 +1/1$' "$tmp/paired.txt"
check bench_report_paired_zero grep -Eq '^seqwrite-1m-qd32 +1\.00 +n/a +- +1\.00 +1/1$' "$tmp/paired.txt"
pairs_of() {	# pairs_of MODE: the repeats in that mode's repeat-by-repeat header
	awk -v m="##### mode: $1 " '
		index($0, m) == 1 { on = 1; next }
		/^##### mode: / { on = 0 }
		on && /repeat by repeat/ { t = 1; next }
		on && t && $1 == "workload" { $1 = ""; print; exit }' "$tmp/table.txt"
}
check bench_report_paired_in_mode_decrypting test "$(pairs_of decrypting)" = " r1 median >=1.0"
check bench_report_paired_in_mode_not_decrypting test "$(pairs_of not-decrypting)" = " r2 median >=1.0"
# Profiles on two devices (BENCH_PROF_DEVS="brd nullb"): a row each, named
# by device, and each profile's top symbols under its own device.
check bench_report_profile_rows_by_device grep -Eq '^seqread-1m-qd32 +nullb +cmk +80\.0 +3\.0% +60\.0%' "$tmp/paired.txt"
check bench_report_profile_rows_brd grep -Eq '^seqread-1m-qd32 +brd +cmk +90\.0 +5\.0% +70\.0%' "$tmp/paired.txt"
# shellcheck disable=SC2016
check bench_report_profile_symbols_by_device \
	awk 'f { ok = /12\.50% +copy_to_nullb$/; exit }
	     $0 == "== nullb cmk seqread-1m-qd32 (kernel P)" { f = 1 }
	     END { exit !ok }' "$tmp/P/profiles.txt"
if [ "$failed" -gt 0 ]; then
	sed 's/^/# /' "$tmp/table.txt" "$tmp/paired.txt" "$tmp/err"
fi
echo "1..$n"
[ "$failed" -eq 0 ]

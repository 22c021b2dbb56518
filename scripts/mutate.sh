#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Mutation check: do the tests guard the promises they claim to?
#
# Usage: scripts/mutate.sh [--list FILE] [--kver KVER] [--keep] [--check]
#            [NAME...]
#
#   --check       only check that every mutation still fits the code
#   --list FILE   the mutations (default tests/mutate/mutations.txt)
#   --kver KVER   kernel for kernel mutations (default: the Debian 6.12)
#   --keep        keep the scratch tree (its path is printed)
#   NAME...       run only these mutations (also MUTATE_ONLY="a b")
#   MUTATE_BASELINE=0  skip the unmutated run of each suite (default 1:
#                 a suite that fails without a mutation proves nothing,
#                 so the run stops)
#
# Each mutation is one line of one file, found by its exact text (blanks
# at either end aside, runs of blanks read as one; it must occur once, so
# a mutation that no longer fits the code is an error, not a silent
# pass), and its replacement.  It is applied to a scratch copy of the tree (the tracked
# files as they are in the working tree, under mktemp -d; the real tree is
# never written), the copy is built, and the mutation's suite runs:
#   agent T...   the cmocka tests tests/unit/T.c (under ASan/UBSan)
#   host S...    the agent built, then the host test scripts S (TAP), e.g.
#                tests/storage/seal_socket.sh
#   kernel T...  the module for KVER and the kselftests T in a QEMU guest
#                (scripts/qemu/run-guest.sh)
# A failing suite catches the mutation; a passing one lets it survive.
# The mutated line is restored (and touched, so make rebuilds it) before
# the next mutation.
#
# Output: one line per mutation ("caught", "SURVIVED" or "error", the
# seconds it took, the failing tests), then a total.  Logs stay in the
# scratch tree with --keep.  Exit status 0 only if every mutation is
# caught; 1 if one survived; 2 on an error (stale mutation, build
# failure, failing baseline).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
list=$top/tests/mutate/mutations.txt
kver=
keep=0
check_only=0
only=()
read -r -a only <<<"${MUTATE_ONLY:-}"
baseline=${MUTATE_BASELINE:-1}

die() { echo "mutate: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
	case $1 in
	--list) list=$2; shift 2 ;;
	--kver) kver=$2; shift 2 ;;
	--keep) keep=1; shift ;;
	--check) check_only=1; shift ;;
	-h|--help) sed -n '3,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	-*) die "unknown option $1" ;;
	*) only+=("$1"); shift ;;
	esac
done
[ -f "$list" ] || die "no mutation list $list"
if [ -z "$kver" ]; then
	kver=$("$top/scripts/kvers.sh" | grep '^6\.12\.' | head -n1 || true)
fi

# ---- the list ----------------------------------------------------------------
# Records of "key = value" lines, each record opened by "[name]"; "#"
# starts a comment line.  Keys: file, find, replace, suite, promise.
names=()
declare -A m_file m_find m_replace m_suite m_promise
trim() {
	local s=$1
	s=${s#"${s%%[![:space:]]*}"}
	s=${s%"${s##*[![:space:]]}"}
	printf '%s' "$s"
}
cur=
lineno=0
while IFS= read -r line || [ -n "$line" ]; do
	lineno=$((lineno + 1))
	case $line in
	''|'#'*) continue ;;
	'['*']') cur=${line#[}; cur=${cur%]}
		[ -z "${m_file[$cur]+x}" ] || die "$list:$lineno: $cur given twice"
		names+=("$cur"); m_file[$cur]=; m_find[$cur]=; m_replace[$cur]=
		m_suite[$cur]=; m_promise[$cur]= ;;
	*=*) [ -n "$cur" ] || die "$list:$lineno: a key before the first [name]"
		key=$(trim "${line%%=*}"); val=$(trim "${line#*=}")
		case $key in
		file) m_file[$cur]=$val ;;
		find) m_find[$cur]=$val ;;
		replace) m_replace[$cur]=$val ;;
		suite) m_suite[$cur]=$val ;;
		promise) m_promise[$cur]=$val ;;
		*) die "$list:$lineno: unknown key '$key'" ;;
		esac ;;
	*) die "$list:$lineno: not '[name]' or 'key = value': $line" ;;
	esac
done <"$list"

selected=()
if [ ${#only[@]} -gt 0 ]; then
	for n in "${only[@]}"; do
		[ -n "${m_file[$n]+x}" ] || die "no mutation named $n in $list"
		selected+=("$n")
	done
else
	selected=("${names[@]}")
fi

# The one line of $2 whose text is $3, blanks aside (leading and trailing
# ones dropped, runs of them read as one space): its number, or an error.
find_line() {
	local name=$1 file=$2 want=$3 out count
	out=$(awk -v want="$want" '
		function norm(s) { gsub(/[ \t]+/, " ", s); sub(/^ /, "", s); sub(/ $/, "", s); return s }
		BEGIN { want = norm(want) }
		norm($0) == want { n++; hit = NR }
		END { print n + 0, hit + 0 }' "$file")
	count=${out% *}
	if [ "$count" -ne 1 ]; then
		echo "mutate: $name: '$want' occurs $count times in ${file#"$top"/}, not once: update $list" >&2
		return 1
	fi
	echo "${out#* }"
}

baselines=()
stale=0
for n in "${selected[@]}"; do
	for k in file find replace suite promise; do
		declare -n ref=m_$k
		[ -n "${ref[$n]}" ] || [ "$k" = replace ] || die "$n: no '$k'"
		unset -n ref
	done
	case ${m_suite[$n]} in
	agent\ *|kernel\ *|host\ *) ;;
	*) die "$n: suite must be 'agent TEST...', 'host SCRIPT...' or 'kernel TEST...'" ;;
	esac
	[ -f "$top/${m_file[$n]}" ] || die "$n: no file ${m_file[$n]}"
	find_line "$n" "$top/${m_file[$n]}" "${m_find[$n]}" >/dev/null || stale=1
done
[ "$stale" -eq 0 ] || exit 2
if [ "$check_only" -eq 1 ]; then
	echo "# mutate: ${#selected[@]} mutations fit the code"
	exit 0
fi

# ---- the scratch tree ----------------------------------------------------------
scratch=$(mktemp -d "${TMPDIR:-/tmp}/cmk-mutate.XXXXXX")
# Host tests run helpers as other users (seal_socket.sh: nobody).
chmod 0755 "$scratch"
cleanup() {
	if [ "$keep" -eq 1 ]; then
		echo "# scratch tree kept: $scratch"
	else
		rm -rf "$scratch"
	fi
}
trap cleanup EXIT
tree=$scratch/tree
logs=$scratch/logs
mkdir -p "$tree" "$logs"
# Tracked files as they are now (tar keeps their mtimes); earlier agent
# objects come along so the first build is incremental.
(cd "$top" && git ls-files -z | tar --null -T - -cf -) | tar -C "$tree" -xf -
if [ -d "$top/agent/build" ]; then
	cp -a "$top/agent/build" "$tree/agent/build"
fi

need_kernel=0
for n in "${selected[@]}"; do
	case ${m_suite[$n]} in
	kernel\ *) need_kernel=1 ;;
	esac
done

ksft=
if [ "$need_kernel" -eq 1 ]; then
	[ -n "$kver" ] || die "no Debian 6.12 kernel for the kernel mutations (--kver)"
	# The kselftests do not depend on kernel/: build the ones the
	# selected mutations need, once.
	ksft=$tree/build/tests/kselftest
	declare -A kt=()
	for n in "${selected[@]}"; do
		read -r -a words <<<"${m_suite[$n]}"
		[ "${words[0]}" = kernel ] || continue
		for t in "${words[@]:1}"; do kt[$ksft/$t]=1; done
	done
	echo "# building the kselftests: ${!kt[*]}"
	ksrc=$tree/build/ksrc/linux-source-6.1
	{ make -C "$tree" ksrc &&
	  make -C "$tree/tests/kselftest" O="$ksft" \
		KSFT_INC="$ksrc/tools/testing/selftests" \
		TESTMGR_H="$ksrc/crypto/testmgr.h" "${!kt[@]}"; } \
		>"$logs/kselftest-build.log" 2>&1 ||
		die "the kselftests do not build: $logs/kselftest-build.log"
fi

# build_and_run NAME SUITE: 0 if the suite passes.  Fills $failed.
failed=
run_suite() {
	local tag=$1 kind=$2 log=$logs/$1.log t
	shift 2
	failed=
	case $kind in
	agent)
		local bins=()
		for t in "$@"; do bins+=("build/test/$t"); done
		if ! make -C "$tree/agent" "${bins[@]}" >"$log" 2>&1; then
			failed="(build failed)"
			return 2
		fi
		local rc=0
		for t in "$@"; do
			if ! (cd "$tree/agent" && CMOCKA_MESSAGE_OUTPUT=TAP \
				ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1 \
				UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
				timeout 600 "build/test/$t") >>"$log" 2>&1; then
				rc=1
			fi
		done
		failed=$(grep -E '^not ok' "$log" | sed -E 's/^not ok [0-9]+ (- )?//' | head -n 4 | paste -sd, || true)
		[ "$rc" -eq 0 ] || [ -n "$failed" ] || failed="(test exited non-zero)"
		return "$rc" ;;
	host)
		if ! make -C "$tree/agent" all >"$log" 2>&1; then
			failed="(build failed)"
			return 2
		fi
		local rc=0
		for t in "$@"; do
			(cd "$tree" && timeout 1200 "$t") >>"$log" 2>&1 || rc=1
		done
		failed=$(grep -E '^not ok' "$log" | sed -E 's/^not ok [0-9]+ (- )?//' | head -n 4 | paste -sd, || true)
		[ "$rc" -eq 0 ] || [ -n "$failed" ] || failed="(test exited non-zero)"
		return "$rc" ;;
	kernel)
		if ! (cd "$tree" && scripts/kbuild.sh "$kver") >"$log" 2>&1; then
			failed="(module build failed)"
			return 2
		fi
		local tests=()
		for t in "$@"; do tests+=("$ksft/$t"); done
		local rc try
		# A guest that ran none of the tests (it died booting under
		# load, ...) says nothing about the mutation: once more, then
		# an error.  A guest that dies during the tests caught it.
		for try in 1 2; do
			rc=0
			(cd "$tree" && scripts/qemu/run-guest.sh --kver "$kver" \
				--out "$scratch/results/$tag" "${tests[@]}") >>"$log" 2>&1 || rc=1
			[ "$rc" -eq 1 ] || break
			grep -Eq '^(not )?ok [0-9]+ [^ ]*:[a-z0-9_]+[.:]' \
				"$scratch/results/$tag/tap.txt" 2>/dev/null && break
			echo "# try $try: the guest ran no test" >>"$log"
			rc=2
		done
		failed=$(grep -E '^not ok' "$scratch/results/$tag/tap.txt" 2>/dev/null |
			sed -E 's/^not ok [0-9]+ (- )?//' | head -n 4 | paste -sd, || true)
		[ "$rc" -ne 2 ] || failed="(the guest ran no test: $(grep '^# verdict' "$log" | tail -n1 || true))"
		[ "$rc" -eq 0 ] || [ -n "$failed" ] ||
			failed="($(grep '^# verdict' "$log" | tail -n1 || echo 'guest run failed'))"
		return "$rc" ;;
	esac
}

# ---- baselines: every suite passes without a mutation --------------------------
if [ "$baseline" -eq 1 ]; then
	# Agent suites one by one (cheap); the kernel's in one guest run.
	declare -A seen=()
	kunion=()
	for n in "${selected[@]}"; do
		s=${m_suite[$n]}
		read -r -a words <<<"$s"
		if [ "${words[0]}" = kernel ]; then
			for t in "${words[@]:1}"; do
				[ -n "${seen[k:$t]+x}" ] || kunion+=("$t")
				seen[k:$t]=1
			done
			continue
		fi
		[ -z "${seen[$s]+x}" ] || continue
		seen[$s]=1
		baselines+=("$s")
	done
	[ ${#kunion[@]} -eq 0 ] || baselines+=("kernel ${kunion[*]}")
	i=0
	for s in "${baselines[@]}"; do
		i=$((i + 1))
		read -r -a words <<<"$s"
		start=$SECONDS
		if ! run_suite "baseline-$i" "${words[@]}"; then
			echo "mutate: suite '$s' fails without any mutation ($failed): fix it first" >&2
			exit 2
		fi
		echo "# baseline '$s' passes ($((SECONDS - start)) s)"
	done
fi

# ---- the mutations -------------------------------------------------------------
caught=0
survived=0
errors=0
survivors=()
printf '# %-28s %-9s %6s  %s\n' mutation result seconds "failing tests / promise"
for n in "${selected[@]}"; do
	f=$tree/${m_file[$n]}
	ln=$(find_line "$n" "$f" "${m_find[$n]}")
	cp -p "$f" "$scratch/orig"
	# Keep the line's indentation; replace its text.
	old=$(sed -n "${ln}p" "$f")
	indent=${old%%[![:space:]]*}
	awk -v ln="$ln" -v new="$indent${m_replace[$n]}" \
		'NR == ln { print new; next } { print }' "$scratch/orig" >"$f"
	touch "$f"
	if cmp -s "$f" "$scratch/orig"; then
		die "$n: the replacement changes nothing"
	fi
	read -r -a words <<<"${m_suite[$n]}"
	start=$SECONDS
	rc=0
	run_suite "$n" "${words[@]}" || rc=$?
	secs=$((SECONDS - start))
	case $rc in
	0) result=SURVIVED; survived=$((survived + 1)); survivors+=("$n")
	   detail="promise: ${m_promise[$n]}" ;;
	1) result=caught; caught=$((caught + 1)); detail=$failed ;;
	*) result=error; errors=$((errors + 1)); detail=$failed ;;
	esac
	printf '%-30s %-9s %6d  %s\n' "$n" "$result" "$secs" "$detail"
	# Restore, newer than any object built from the mutant.
	cp "$scratch/orig" "$f"
	touch "$f"
done

echo "# mutate: ${#selected[@]} mutations: $caught caught, $survived survived, $errors errors"
[ ${#survivors[@]} -eq 0 ] || echo "# survivors: ${survivors[*]}"
[ "$errors" -eq 0 ] || exit 2
[ "$survived" -eq 0 ] || exit 1
exit 0

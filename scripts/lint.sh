#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Static checks of the kernel module, one TAP line each:
#
#   lint_checkpatch_strict   checkpatch.pl --strict on kernel/, the UAPI header and
#                            the test-only modules (bench, cryptfault)
#   lint_kernel_doc          kernel-doc finds no malformed comment
#   lint_shellcheck          shellcheck on scripts/, the test scripts, .ci/run and
#                            the packages' maintainer scripts
#   lint_docs                every Documentation/*.rst parses (docutils), no warning
#   lint_mutations_fit_the_code  every mutation of tests/mutate/mutations.txt
#                            still finds its one line (scripts/mutate.sh --check)
#   build_noWarn_<x.y>       W=1 -Werror build for each Debian kernel
#   lint_sparse_<x.y>        sparse (C=2) reports nothing in our sources
#
# checkpatch.pl and kernel-doc come from Debian's linux-source-6.1 tarball
# (scripts/ksrc.sh extracts them into build/ksrc/ once).  Full logs go to
# build/results/lint/.  Exit status 0 only if every check passed.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
logs=$top/build/results/lint
mkdir -p "$logs"

n=0
failed=0
result() {	# result RC NAME LOG
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $n $2"
	else
		failed=$((failed + 1))
		echo "not ok $n $2"
		# The first lines of the problem, so a red CI explains itself.
		grep -v '^\s*$' "$3" | head -n 25 | sed 's/^/#   /'
		echo "#   full log: $3"
	fi
}

# make mutate's list: every mutation still finds its line, once (it is
# not run here; a list that no longer fits the code would fail make mutate).
# First: it needs no kernel source.
log=$logs/mutations.log
scripts/mutate.sh --check >"$log" 2>&1
result $? lint_mutations_fit_the_code "$log"

if ! scripts/ksrc.sh "$top/build/ksrc" >"$logs/ksrc.log" 2>&1; then
	cat "$logs/ksrc.log" >&2
	result 1 lint_ksrc_extract "$logs/ksrc.log"
	echo "1..$n"
	exit 1
fi
ksrc=$top/build/ksrc/linux-source-6.1

files=()
for f in kernel/*.c kernel/*.h include/uapi/linux/dm-cmk.h tests/bench/kmod/*.c \
	tests/debug-kernel/cryptfault/*.c; do
	[ -f "$f" ] && files+=("$f")
done

# checkpatch: any ERROR, WARNING or CHECK fails (its exit status says so).
log=$logs/checkpatch.log
if [ ${#files[@]} -eq 0 ]; then
	echo "no kernel sources found" >"$log"
	rc=1
else
	perl "$ksrc/scripts/checkpatch.pl" --strict --no-tree --show-types \
		--terse -f "${files[@]}" >"$log" 2>&1
	rc=$?
fi
result $rc lint_checkpatch_strict "$log"

# kernel-doc: the comments that claim to be kernel-doc must parse.
log=$logs/kernel-doc.log
perl "$ksrc/scripts/kernel-doc" -none "${files[@]}" >"$log" 2>&1
rc=$?
if grep -qE 'warning|error' "$log"; then
	rc=1
fi
result $rc lint_kernel_doc "$log"

# The build, lint and guest scripts themselves, through shellcheck.
log=$logs/shellcheck.log
if command -v shellcheck >/dev/null; then
	shellcheck -S warning -x scripts/*.sh scripts/qemu/*.sh scripts/pg/* tests/boot/*.sh tests/boot/guest/*.sh tests/deb/*.sh \
		tests/kms/*.sh tests/fleet/*.sh tests/integration/*.sh tests/kselftest/*.sh tests/debug-kernel/*.sh tests/fuzz/*.sh tests/storage/*.sh tests/crash/*.sh .ci/run >"$log" 2>&1 &&
		shellcheck -S warning -s sh scripts/qemu/init scripts/systemd/cmk-ephemeral tests/crash/crash_replay tests/crash/crash_powercut \
			debian/*.postinst debian/*.prerm debian/*.postrm >>"$log" 2>&1
	rc=$?
else
	echo "shellcheck not installed (run 'make deps')" >"$log"
	rc=1
fi
result $rc lint_shellcheck "$log"

# The agent library's layers: no module includes a layer above its own.
log=$logs/agent-layers.log
scripts/agent-layers.sh >"$log" 2>&1
result $? lint_agent_layers "$log"

# Documentation: a table cell past its column or an unclosed literal is an
# rst error that renders as garbage; docutils reports both.
log=$logs/docs.log
/usr/bin/python3 - Documentation/*.rst >"$log" 2>&1 <<'PY'
import sys
import docutils.core
for path in sys.argv[1:]:
    with open(path) as f:
        docutils.core.publish_doctree(
            f.read(), source_path=path,
            settings_overrides={"report_level": 2, "halt_level": 5})
PY
rc=$?
if [ -s "$log" ]; then
	rc=1
fi
result $rc lint_docs "$log"

mapfile -t kvers < <(scripts/kvers.sh)
if [ ${#kvers[@]} -eq 0 ]; then
	echo "no Debian kernel headers installed (run 'make deps')" >"$logs/kvers.log"
	result 1 lint_kernels_installed "$logs/kvers.log"
fi
for k in "${kvers[@]}"; do
	short=$(echo "$k" | cut -d. -f1-2)
	log=$logs/build-$k.log
	scripts/kbuild.sh --werror "$k" >"$log" 2>&1
	rc=$?
	result $rc "build_noWarn_$short" "$log"

	log=$logs/sparse-$k.log
	scripts/kbuild.sh --sparse "$k" >"$log" 2>&1
	rc=$?
	result $rc "lint_sparse_$short" "$log"
done

echo "1..$n"
[ "$failed" -eq 0 ]

#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the dm-cmk module for one kernel, out of the source tree.
#
# Usage: scripts/kbuild.sh [--kdir DIR] [--werror] [--sparse] KVER
#
# M= builds drop objects next to the sources, so each kernel gets its own
# copy of Kbuild, kernel/ and include/ in build/kmod/<kver>/, kept in sync
# with the tree (mtimes preserved, so unchanged files are not rebuilt).
# The module lands in build/kmod/<kver>/kernel/dm-cmk.ko.
#
# Compiler warnings are always errors (W=1 KCFLAGS=-Werror).
#   --werror  also fail on any other "warning:" in the log (modpost, ...)
#   --sparse  run sparse on every file (C=2); fail on any sparse warning or
#             error that points into our sources
# The log is build/kmod/<kver>/{build,sparse}.log.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
kdir=
werror=0
sparse=0
while [ $# -gt 0 ]; do
	case $1 in
	--kdir) kdir=$2; shift 2 ;;
	--werror) werror=1; shift ;;
	--sparse) sparse=1; shift ;;
	-*) echo "kbuild: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
done
[ $# -eq 1 ] || { echo "usage: $0 [--kdir DIR] [--werror] [--sparse] KVER" >&2; exit 2; }
kver=$1
kdir=${kdir:-/lib/modules/$kver/build}
out=$top/build/kmod/$kver

if [ ! -f "$kdir/Makefile" ]; then
	echo "kbuild: no kernel build tree at $kdir (headers for $kver missing: run 'make deps')" >&2
	exit 1
fi
if [ ! -d "$top/kernel" ]; then
	echo "kbuild: $top/kernel does not exist" >&2
	exit 1
fi

# sync SRC DST: make DST hold exactly SRC's source files (build products in
# DST are left alone; source files that vanished from SRC are removed).
sync_tree() {
	local src=$1 dst=$2 f
	mkdir -p "$dst"
	(cd "$src" && find . -type f \( -name '*.[ch]' -o -name 'Kbuild' -o -name 'Makefile' \) -print) |
	while read -r f; do
		if ! cmp -s "$src/$f" "$dst/$f"; then
			mkdir -p "$(dirname "$dst/$f")"
			cp -p "$src/$f" "$dst/$f"
		fi
	done
	(cd "$dst" && find . -type f \( -name '*.[ch]' -o -name 'Kbuild' -o -name 'Makefile' \) \
		! -name '*.mod.c' -print) |
	while read -r f; do
		[ -f "$src/$f" ] || rm -f "$dst/$f"
	done
}

mkdir -p "$out"
if ! cmp -s "$top/Kbuild" "$out/Kbuild"; then
	cp -p "$top/Kbuild" "$out/Kbuild"
fi
sync_tree "$top/kernel" "$out/kernel"
if [ -d "$top/include" ]; then
	sync_tree "$top/include" "$out/include"
fi

# Always -Werror (the module must build clean); the same flags every time
# also keep kbuild from rebuilding everything between runs.
args=(-C "$kdir" M="$out" W=1 KCFLAGS=-Werror)
log=$out/build.log
if [ "$sparse" = 1 ]; then
	args+=(C=2)
	log=$out/sparse.log
fi

if [ "$werror" = 1 ]; then
	# modpost warnings are not sticky like compiler errors: make modpost
	# and the final link run again so they are seen every time.
	rm -f "$out/Module.symvers" "$out"/kernel/*.ko
fi

jobs=$(nproc 2>/dev/null || echo 2)
set +e
make -j"$jobs" "${args[@]}" modules >"$log" 2>&1
rc=$?
set -e

if [ "$rc" -ne 0 ]; then
	grep -E 'error|warning:' "$log" | head -n 40 >&2 || true
	echo "kbuild: $kver: make failed (rc=$rc), full log: $log" >&2
	exit 1
fi
if [ "$sparse" = 1 ]; then
	# Sparse also complains about kernel headers on newer kernels; only
	# diagnostics located in our own files count.
	if grep -E '^[^ ]+:[0-9]+:[0-9]+: (warning|error):' "$log" |
	   grep -F -e "$out/" >&2; then
		echo "kbuild: $kver: sparse reported problems in our sources, full log: $log" >&2
		exit 1
	fi
elif [ "$werror" = 1 ] && grep -i 'warning:' "$log" >&2; then
	echo "kbuild: $kver: build warnings, full log: $log" >&2
	exit 1
fi
if [ ! -f "$out/kernel/dm-cmk.ko" ]; then
	echo "kbuild: $kver: $out/kernel/dm-cmk.ko was not produced, full log: $log" >&2
	exit 1
fi
exit 0

#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Extract the few files we borrow from Debian's linux-source-6.1 tarball at
# build time (they are never committed):
#   scripts/checkpatch.pl, spelling.txt, const_structs.checkpatch, kernel-doc
#   tools/testing/selftests/kselftest_harness.h, kselftest.h
#   crypto/testmgr.h (IEEE 1619 XTS vectors for the kselftests)
#
# Usage: scripts/ksrc.sh [OUTDIR]    (default: build/ksrc)
# Prints nothing on success; the tree lands in OUTDIR/linux-source-6.1/.
# Decompressing the tarball takes ~10 s, so a stamp file caches the result
# until the tarball changes.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$top/build/ksrc}
tarball=${KSRC_TARBALL:-/usr/src/linux-source-6.1.tar.xz}
prefix=linux-source-6.1
members=(
	scripts/checkpatch.pl
	scripts/spelling.txt
	scripts/const_structs.checkpatch
	scripts/kernel-doc
	tools/testing/selftests/kselftest_harness.h
	tools/testing/selftests/kselftest.h
	crypto/testmgr.h
)
stamp=$out/.stamp

if [ ! -r "$tarball" ]; then
	echo "ksrc: $tarball not found: run 'make deps' (package linux-source-6.1)" >&2
	exit 1
fi

# The stamp records the tarball's identity and the member list.
want="$(stat -c '%s %Y' "$tarball") ${members[*]}"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
	ok=1
	for m in "${members[@]}"; do
		[ -f "$out/$prefix/$m" ] || ok=0
	done
	[ "$ok" = 1 ] && exit 0
fi

mkdir -p "$out"
rm -rf "${out:?}/$prefix.tmp"
mkdir -p "$out/$prefix.tmp"
tar -xJf "$tarball" -C "$out/$prefix.tmp" --strip-components=1 \
	"${members[@]/#/$prefix/}"
rm -rf "${out:?}/$prefix"
mv "$out/$prefix.tmp" "$out/$prefix"
echo "$want" >"$stamp"

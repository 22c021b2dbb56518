#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the Debian packages dm-cmk-dkms and cmk-agent ("make deb").
#
# Usage: scripts/deb.sh [--out DIR] [--suffix SUFFIX]
#   --out DIR        where the .deb, .buildinfo and .changes go
#                    (default build/deb); only this source's earlier
#                    results there are replaced, other files stay
#   --suffix SUFFIX  build version VERSION+SUFFIX-style: a changelog entry
#                    "VERSION<SUFFIX>" is added to the copy (the boot
#                    test's upgrade is the same tree as a newer version)
#
# dpkg-buildpackage writes its results next to the source tree, so the
# tree (git's files, committed or not) is copied to DIR/dm-cmk-VERSION
# first; the checkout itself is left as it was.  Then lintian runs on the
# .changes and its output is printed; any error, warning or info tag that
# is not overridden (debian/*.lintian-overrides, each with its reason)
# fails the build.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
out=$top/build/deb
suffix=
while [ $# -gt 0 ]; do
	case $1 in
	--out) out=$2; shift 2 ;;
	--suffix) suffix=$2; shift 2 ;;
	*) echo "deb: unknown argument $1" >&2; exit 2 ;;
	esac
done
for c in dpkg-buildpackage dh dh_dkms lintian rst2man; do
	command -v "$c" >/dev/null || { echo "deb: $c is missing: run make deps" >&2; exit 1; }
done

version=$(make -s -C "$top" version)
[ -n "$version" ] || { echo "deb: no version in debian/changelog" >&2; exit 1; }
mkdir -p "$out"
out=$(cd "$out" && pwd)
src=$out/dm-cmk-$version$suffix
# Only this source's earlier results go: DIR may hold other packages'
# .debs (an operator's local repository).
rm -rf "$out"/dm-cmk-*/ "$out"/dm-cmk-dkms_*.deb "$out"/cmk-agent_*.deb \
	"$out"/cmk-agent-dbgsym_*.deb "$out"/dm-cmk_*.buildinfo "$out"/dm-cmk_*.changes \
	"$out/lintian.log"
mkdir -p "$src"
t0=$(date +%s)
cd "$top"
if git rev-parse --git-dir >/dev/null 2>&1; then
	git ls-files -z --cached --others --exclude-standard |
		while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
		cpio --quiet -0 -pdm "$src"
else
	tar -C "$top" --exclude=./build --exclude='*/build' -cf - . | tar -C "$src" -xf -
fi

if [ -n "$suffix" ]; then
	# A newer version of the same tree, for upgrade tests; dated a
	# second after the entry it follows, so the build is reproducible.
	maint=$(sed -n 's/^Maintainer: //p' debian/control)
	when=$(date -u -R -d "$(dpkg-parsechangelog -l debian/changelog -S Date) + 1 second")
	{
		printf 'dm-cmk (%s%s) unstable; urgency=medium\n\n' "$version" "$suffix"
		printf '  * Rebuild of %s as %s%s (upgrade test).\n\n' "$version" "$version" "$suffix"
		printf ' -- %s  %s\n\n' "$maint" "$when"
		cat debian/changelog
	} >"$src/debian/changelog"
fi

cd "$src"
echo "deb: dpkg-buildpackage -us -uc -b in $src"
# nocheck: "make check" runs the agent's unit tests itself.
if ! DEB_BUILD_OPTIONS="nocheck ${DEB_BUILD_OPTIONS:-}" dpkg-buildpackage -us -uc -b \
	>"$out/build.log" 2>&1; then
	tail -n 40 "$out/build.log"
	echo "deb: dpkg-buildpackage failed, log: $out/build.log" >&2
	exit 1
fi
echo "deb: built in $(($(date +%s) - t0)) s:"
find "$out" -maxdepth 1 \( -name 'dm-cmk-dkms_*.deb' -o -name 'cmk-agent*_*.deb' \) \
	-printf '  %s  %f\n' | sort -k2

changes=$(ls "$out/dm-cmk_$version${suffix}_"*.changes)
echo "deb: lintian $(lintian --version | awk '{ print $2 }') $(basename "$changes")"
# Shown with the overrides and their reasons; judged without them.
lintian --display-info --show-overrides "$changes" 2>&1 |
	grep -v "running with root privileges is not recommended" >"$out/lintian.log" || true
if [ -s "$out/lintian.log" ]; then
	sed 's/^/  /' "$out/lintian.log"
else
	echo "  (no tags)"
fi
rc=0
lintian --fail-on error,warning,info --display-info "$changes" >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 0 ] || { echo "deb: lintian found tags (above)" >&2; exit 1; }
echo "deb: lintian clean; packages in $out"

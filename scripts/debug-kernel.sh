#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the debug kernel for the test guest (issue 14): Debian's
# linux-source-6.12 with tests/debug-kernel/config.fragment (KASAN, lockdep,
# kmemleak, UBSAN, fault injection, ...) on top of tinyconfig.
#
# Usage: scripts/debug-kernel.sh [--print-dir] [--jobs N]
#
#   --print-dir  print the cache directory of the current key and exit 0 if
#                it holds a finished build, 1 if not (builds nothing)
#   --jobs N     make -jN (default 2; the build runs under nice -n 19)
#
# The result is cached in $DEBUG_KERNEL_CACHE (default
# /var/cache/dm-cmk/debug-kernel)/<key>/, key = hash of the config fragment,
# the linux-source-6.12 package version and this script, so a second run
# with nothing changed prints "cached" and returns at once:
#
#   bzImage          the kernel for qemu -kernel
#   release          its `uname -r` (6.12.N-dbgk)
#   build/           the O= object tree: .config, Module.symvers, modules
#                    prepared -- the KDIR for scripts/kbuild.sh --kdir
#   modroot/lib/modules/<release>/   its modules, for the initramfs
#   build-time       wall, user and sys seconds of the cold build
#
# The extracted sources (needed by build/ for external modules) are kept in
# <cache>/src-<package version>/, shared by every key.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cache_root=${DEBUG_KERNEL_CACHE:-/var/cache/dm-cmk/debug-kernel}
fragment=$top/tests/debug-kernel/config.fragment
pkg=linux-source-6.12
tarball=/usr/src/$pkg.tar.xz
jobs=2
print_dir=0

die() { echo "debug-kernel: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
	case $1 in
	--print-dir) print_dir=1; shift ;;
	--jobs) jobs=$2; shift 2 ;;
	-h|--help) sed -n '3,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument $1" ;;
	esac
done

[ -r "$tarball" ] || die "$tarball not found: install package $pkg (make deps)"
pkgver=$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null) ||
	die "package $pkg is not installed (make deps)"
key=$(cat "$fragment" "$0" | { cat; echo "$pkgver"; } | sha256sum | cut -c1-16)
dir=$cache_root/$key

if [ "$print_dir" = 1 ]; then
	echo "$dir"
	[ -f "$dir/.done" ]
	exit
fi

mkdir -p "$cache_root"
exec 9>"$cache_root/.lock"
flock 9

if [ -f "$dir/.done" ]; then
	echo "debug-kernel: cached $(cat "$dir/release") in $dir"
	echo "debug-kernel: (cold build took $(cat "$dir/build-time"))"
	exit 0
fi

# Sources: one extraction per package version.
src=$cache_root/src-$pkgver/$pkg
if [ ! -f "$src/.extracted" ]; then
	echo "debug-kernel: extracting $tarball"
	rm -rf "${src:?}.tmp" "$src"
	mkdir -p "$src.tmp"
	tar -xJf "$tarball" -C "$src.tmp" --strip-components=1
	mv "$src.tmp" "$src"
	touch "$src/.extracted"
fi

rm -rf "$dir"
mkdir -p "$dir/build"
obj=$dir/build
log=$dir/build.log
mk=(nice -n 19 make -C "$src" O="$obj" ARCH=x86_64 -j"$jobs")

echo "debug-kernel: building $pkg $pkgver with $fragment (key $key, -j$jobs, log $log)"
start=$(date +%s)
{
	"${mk[@]}" tinyconfig
	cat "$fragment" >>"$obj/.config"
	"${mk[@]}" olddefconfig
} >"$log" 2>&1 || die "configuration failed, see $log"

# Every line of the fragment must have survived olddefconfig: a symbol
# whose dependencies are missing is dropped silently otherwise.
missing=0
while IFS= read -r line; do
	case $line in
	CONFIG_*=*)
		grep -qxF "$line" "$obj/.config" || {
			echo "debug-kernel: not in the final .config: $line" >&2
			missing=1
		} ;;
	"# CONFIG_"*" is not set")
		sym=${line#\# }
		sym=${sym%% *}
		! grep -q "^$sym=" "$obj/.config" || {
			echo "debug-kernel: set although the fragment unsets it: $sym" >&2
			missing=1
		} ;;
	esac
done <"$fragment"
[ "$missing" = 0 ] || die "the fragment does not apply cleanly (see above)"

# One timed make for everything the guest and kbuild need.
if ! /usr/bin/time -f '%e %U %S' -o "$dir/time.raw" \
	"${mk[@]}" bzImage modules >>"$log" 2>&1; then
	tail -n 30 "$log" >&2
	die "build failed, see $log"
fi
"${mk[@]}" INSTALL_MOD_PATH="$dir/modroot" modules_install >>"$log" 2>&1 ||
	die "modules_install failed, see $log"
release=$(cat "$obj/include/config/kernel.release")
rm -f "$dir/modroot/lib/modules/$release/build"
ln -s "$obj" "$dir/modroot/lib/modules/$release/build"
cp "$obj/arch/x86/boot/bzImage" "$dir/bzImage"
echo "$release" >"$dir/release"
[ -f "$obj/Module.symvers" ] || die "no Module.symvers in $obj"

read -r wall user sys <"$dir/time.raw"
total=$(($(date +%s) - start))
printf 'wall %.0f s, cpu %.0f s (user %.0f + sys %.0f), %d s with configure and install, make -j%s\n' \
	"$wall" "$(echo "$user + $sys" | bc)" "$user" "$sys" "$total" "$jobs" >"$dir/build-time"
touch "$dir/.done"
echo "debug-kernel: built $release in $dir"
echo "debug-kernel: build time: $(cat "$dir/build-time")"

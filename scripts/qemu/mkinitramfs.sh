#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the test guest's initramfs from the host's own files.
#
# Usage: scripts/qemu/mkinitramfs.sh --kver KVER --out FILE
#            [--kmod KO] [--tests DIR] [--fio] [--net] [--disk]
#            [--module NAME]... [--add SRC[:DST]]... [--tool NAME]...
#            [--modroot DIR] [TEST...]
#
#   --modroot DIR  take the modules from DIR/lib/modules/KVER instead of
#                  the host's /lib/modules/KVER (the debug kernel's, see
#                  scripts/debug-kernel.sh)
#
# Contents:
#   /init                   scripts/qemu/init
#   /bin/busybox + applets  symlinks to /bin/busybox (never busybox itself)
#   /sbin/kmod + modprobe, insmod, rmmod, lsmod, modinfo, depmod
#                           the host's kmod, so .ko.xz modules (Debian 6.12)
#                           load exactly as on a real system
#   /sbin/dmsetup           plus the libraries ldd lists, as for every binary
#   /usr/bin/fio            with --fio (~80 MB of libraries; off by default)
#   /lib/modules/KVER/      dm-mod dm-crypt brd null_blk xts aesni_intel
#                           loop dm-flakey dm-delay (+ virtio_pci, virtio_net with --net,
#                           virtio_pci, virtio_blk with --disk) with
#                           their dependencies, our dm-cmk.ko in updates/,
#                           then depmod
#   /tests/kselftest/       TEST... or every executable in --tests DIR
#                           (default build/tests/kselftest)
#   --add SRC[:DST]         any other file (an ELF brings its libraries)
#   --tool NAME             the host's program NAME (found in PATH) at the
#                           same path, with its libraries
#
# The archive is cpio newc, zstd-compressed (both Debian kernels have
# CONFIG_RD_ZSTD).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)

kver=
out=
kmod_ko=
tests_dir=$top/build/tests/kselftest
fio=0
net=0
disk=0
tests=()
adds=()
modroot=
modules=(brd dm-mod dm-crypt null_blk xts aesni_intel loop dm-flakey dm-delay)

die() { echo "mkinitramfs: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
	case $1 in
	--kver) kver=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--kmod) kmod_ko=$2; shift 2 ;;
	--tests) tests_dir=$2; shift 2 ;;
	--fio) fio=1; shift ;;
	--net) net=1; shift ;;
	--disk) disk=1; shift ;;
	--module) modules+=("$2"); shift 2 ;;
	--add) adds+=("$2"); shift 2 ;;
	--modroot) modroot=$(realpath "$2"); shift 2 ;;
	--tool)
		t=$(PATH=$PATH:/usr/sbin:/sbin command -v "$2") ||
			die "tool $2 not found on the host (see scripts/deps.sh)"
		adds+=("$t")
		shift 2 ;;
	-*) die "unknown option $1" ;;
	*) tests+=("$1"); shift ;;
	esac
done
[ -n "$kver" ] || die "--kver is required"
[ -n "$out" ] || die "--out is required"
[ -d "$modroot/lib/modules/$kver/kernel" ] ||
	die "no modules for $kver in ${modroot:-}/lib/modules"
kmod_ko=${kmod_ko:-$top/build/kmod/$kver/kernel/dm-cmk.ko}
[ "$net" = 1 ] && modules+=(virtio_pci virtio_net)
[ "$disk" = 1 ] && modules+=(virtio_pci virtio_blk)

root=$(mktemp -d "${TMPDIR:-/tmp}/cmk-initramfs.XXXXXX")
trap 'rm -rf "$root"' EXIT

# copy_file SRC DST: copy SRC (following symlinks) to $root/DST.
copy_file() {
	mkdir -p "$root/$(dirname "$2")"
	cp -L --preserve=mode "$1" "$root/$2"
}

# copy_libs ELF: copy the shared libraries ELF needs to the paths ldd
# resolves them to (and the dynamic loader).  Static binaries have none.
copy_libs() {
	local lib
	{ ldd "$1" 2>/dev/null || true; } | awk '
		$2 == "=>" && $3 ~ /^\// { print $3 }
		$1 ~ /^\// { print $1 }' |
	while read -r lib; do
		[ -e "$root/$lib" ] || copy_file "$lib" "$lib"
	done
}

# add_bin SRC DST: a program and its libraries.
add_bin() {
	[ -e "$1" ] || die "$1 not found (run 'make deps')"
	copy_file "$1" "$2"
	chmod 0755 "$root/$2"
	copy_libs "$1"
}

mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,run,mnt,root,tests/kselftest}
chmod 1777 "$root/tmp"

# busybox: the binary once, every applet as a symlink to it.
bb=$(command -v busybox) || die "busybox not found (package busybox-static)"
add_bin "$bb" /bin/busybox

# kmod for module handling (busybox's modprobe cannot read .ko.xz).
kmod_bin=$(command -v kmod) || die "kmod not found"
add_bin "$kmod_bin" /sbin/kmod
for t in modprobe insmod rmmod lsmod modinfo depmod; do
	ln -s kmod "$root/sbin/$t"
done

add_bin "$(command -v dmsetup || echo /sbin/dmsetup)" /sbin/dmsetup
if [ "$fio" = 1 ]; then
	add_bin "$(command -v fio || echo /usr/bin/fio)" /usr/bin/fio
fi

# Applets after our own tools, so ours win; "bin/busybox" itself is listed
# by --list-full and must not become a symlink to itself.
"$bb" --list-full | while read -r applet; do
	name=${applet##*/}
	case $applet in bin/busybox) continue ;; esac
	if [ -e "$root/$applet" ] || [ -L "$root/$applet" ] ||
	   [ -e "$root/sbin/$name" ] || [ -e "$root/usr/bin/$name" ]; then
		continue
	fi
	mkdir -p "$root/$(dirname "$applet")"
	ln -s /bin/busybox "$root/$applet"
done

# Kernel modules: the same paths as on the host (or under --modroot), then
# depmod.
moddir=/lib/modules/$kver
for m in "${modules[@]}"; do
	if ! deps=$(modprobe -d "${modroot:-/}" -S "$kver" --show-depends "$m" 2>/dev/null); then
		echo "mkinitramfs: $kver: module $m not found, skipped" >&2
		continue
	fi
	while read -r verb path _; do
		[ "$verb" = insmod ] || continue   # "builtin X" needs no file
		path=${path#"$modroot"}
		[ -e "$root/$path" ] || copy_file "$modroot$path" "$path"
	done <<<"$deps"
done
for f in modules.order modules.builtin modules.builtin.modinfo; do
	[ -f "$modroot$moddir/$f" ] && copy_file "$modroot$moddir/$f" "$moddir/$f"
done
if [ -f "$kmod_ko" ]; then
	copy_file "$kmod_ko" "$moddir/updates/dm-cmk.ko"
else
	echo "mkinitramfs: $kver: $kmod_ko not built; the guest will run without dm-cmk" >&2
fi
depmod -b "$root" "$kver"

# Tests: explicit files, or every executable in the tests directory.
if [ ${#tests[@]} -eq 0 ] && [ -d "$tests_dir" ]; then
	while IFS= read -r -d '' t; do
		tests+=("$t")
	done < <(find "$tests_dir" -maxdepth 1 -type f -perm -u+x -print0 | sort -z)
fi
for t in "${tests[@]}"; do
	[ -f "$t" ] || die "test $t not found"
	add_bin "$t" "/tests/kselftest/$(basename "$t")"
done

for a in "${adds[@]}"; do
	src=${a%%:*}
	dst=${a#*:}
	[ "$dst" = "$a" ] && dst=$src
	add_bin "$src" "$dst"
done

copy_file "$here/init" /init
chmod 0755 "$root/init"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"
printf 'cmk-guest\n' >"$root/etc/hostname"

# The kernel opens /dev/console before /init runs; devtmpfs comes later.
mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null || true
mknod -m 666 "$root/dev/null" c 1 3 2>/dev/null || true

mkdir -p "$(dirname "$out")"
(cd "$root" && find . -print0 | LC_ALL=C sort -z |
	cpio --null -o -H newc --owner=0:0 --quiet) |
	zstd -q -T0 -3 >"$out.tmp"
mv "$out.tmp" "$out"

#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Build (or find in the cache) the Debian bookworm root tree the boot test
# runs: debootstrap minbase + systemd, udev, cloud-init, ifupdown, the
# agent's runtime libraries, DKMS with gcc and make, and the Debian kernel
# and headers packages of KVER (the same kernel whose headers our module
# is built against, so it loads), and PostgreSQL 15.  The guest has no route to a Debian
# mirror: everything the dm-cmk-dkms and cmk-agent packages depend on is
# here, so "apt install ./*.deb" resolves offline.
#
# Usage: tests/boot/mkimage.sh --kver KVER [--cache DIR]
# Prints the path of the cached tree (DIR/<hash>/root) on stdout.  The hash
# covers the package list, this script, the mirror, debootstrap's version
# and KVER, so a change in any of them builds a new tree; older trees are
# removed.  Never modify the cached tree: copy it (tests/boot/run.sh does).
# Needs root (debootstrap chroots) and network access to the mirror.
set -euo pipefail

kver=
cache=${CMK_BOOT_CACHE:-/var/cache/dm-cmk/boot}
while [ $# -gt 0 ]; do
	case $1 in
	--kver) kver=$2; shift 2 ;;
	--cache) cache=$2; shift 2 ;;
	*) echo "mkimage: unknown argument $1" >&2; exit 2 ;;
	esac
done
[ -n "$kver" ] || { echo "mkimage: --kver is required" >&2; exit 2; }

# The mirror the host's apt uses (deb822 or one-line sources).
mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)\/* *$/\1/p; s/^deb *\(http[^ ]*debian\)\/* bookworm .*/\1/p' \
	/etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | head -n 1 || true)
mirror=${CMK_DEBIAN_MIRROR:-${mirror:-http://deb.debian.org/debian}}

pkgs=(
	systemd systemd-sysv udev dbus kmod
	cloud-init python3-cffi-backend
	ifupdown iproute2 netbase
	e2fsprogs dmsetup util-linux
	# cmk-agent and cmkctl at run time (the cmk-agent package's Depends)
	libssl3 libcurl4 libjson-c5 libmnl0 libdevmapper1.02.1 libsystemd0
	# dm-cmk-dkms: DKMS and what it builds the module with
	dkms gcc make patch dpkg-dev lsb-release
	# what the kernel and headers packages need (they come from the host's
	# apt below: bookworm-security, which debootstrap does not read)
	linux-base initramfs-tools zstd gcc-12 libelf1
	# apt install ./*.deb in the guest
	apt
	# the database (tests/boot/guest/pgsetup.sh makes its cluster)
	postgresql-15
)

dbs_ver=$(dpkg-query -W -f='${Version}' debootstrap)
key=$( {
	printf '%s\n' "${pkgs[@]}" "$mirror" "$dbs_ver" "$kver"
	cat "$0"
} | sha256sum | cut -c1-16)
dir=$cache/$key
if [ -f "$dir/done" ] && [ -d "$dir/root" ]; then
	echo "$dir/root"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "mkimage: building the image needs root (debootstrap)" >&2
	exit 1
fi
mkdir -p "$cache"
# One builder at a time; other trees of this cache are stale.
exec 9>"$cache/.lock"
flock 9
if [ -f "$dir/done" ]; then
	echo "$dir/root"
	exit 0
fi
for old in "$cache"/*/; do
	[ "${old%/}" = "$dir" ] || rm -rf "${old:?}"
done
rm -rf "$dir"
mkdir -p "$dir"
include=$(IFS=,; echo "${pkgs[*]}")
t0=$(date +%s)
echo "mkimage: debootstrap bookworm from $mirror into $dir/root" >&2
if ! debootstrap --variant=minbase --include="$include" bookworm "$dir/root" "$mirror" \
	>"$dir/debootstrap.log" 2>&1; then
	tail -n 30 "$dir/debootstrap.log" >&2
	echo "mkimage: debootstrap failed, log: $dir/debootstrap.log" >&2
	exit 1
fi
root=$dir/root
# The kernel and headers packages of exactly KVER (and the headers' linux-*
# dependencies: common headers, kbuild, compiler), through the host's apt
# sources.
kpkgs="linux-image-$kver linux-headers-$kver $(apt-cache depends --no-recommends \
	--no-suggests "linux-headers-$kver" | sed -n 's/^ *Depends: \(linux-[^ <]*\)$/\1/p' | tr '\n' ' ')"
mkdir -p "$root/tmp/kernel"
# shellcheck disable=SC2086 # word list
if ! (cd "$root/tmp/kernel" && apt-get download $kpkgs) >>"$dir/debootstrap.log" 2>&1 ||
   ! chroot "$root" sh -c 'dpkg -i /tmp/kernel/*.deb' >>"$dir/debootstrap.log" 2>&1; then
	tail -n 30 "$dir/debootstrap.log" >&2
	echo "mkimage: installing $kpkgs failed, log: $dir/debootstrap.log" >&2
	exit 1
fi
rm -rf "$root/tmp/kernel"
# The package made a cluster "main" on the root disk; the test makes its
# own on a dm-cmk device, and no later install may make one.
if ! chroot "$root" sh -c 'if [ -d /etc/postgresql/15/main ]; then pg_dropcluster 15 main; fi
	sed -i "s/^#* *create_main_cluster *=.*/create_main_cluster = false/" \
		/etc/postgresql-common/createcluster.conf' >>"$dir/debootstrap.log" 2>&1 ||
   [ -e "$root/etc/postgresql/15/main" ] || [ -e "$root/var/lib/postgresql/15/main" ]; then
	tail -n 30 "$dir/debootstrap.log" >&2
	echo "mkimage: dropping the packaged cluster 15/main failed, log: $dir/debootstrap.log" >&2
	exit 1
fi
# Small, and nothing of the host leaks in.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
echo "cmk-guest" >"$root/etc/hostname"
: >"$root/etc/machine-id"
# Serial console login is not needed; the test reads ttyS1.
ln -sf /dev/null "$root/etc/systemd/system/serial-getty@ttyS0.service"
# cloud-init: only the NoCloud seed, no network probing of other clouds.
printf 'datasource_list: [ NoCloud, None ]\n' >"$root/etc/cloud/cloud.cfg.d/90-cmk-test.cfg"
if [ ! -f "$root/boot/vmlinuz-$kver" ] || [ ! -f "$root/boot/initrd.img-$kver" ] ||
   [ ! -e "$root/lib/modules/$kver/build/Makefile" ]; then
	echo "mkimage: $root has no vmlinuz/initrd.img/headers for $kver" >&2
	exit 1
fi
touch "$dir/done"
echo "mkimage: built in $(($(date +%s) - t0)) s" >&2
echo "$root"

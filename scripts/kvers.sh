#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Print the installed Debian kernels we build and test against, oldest
# first: every /boot/vmlinuz-<kver> that has headers in
# /lib/modules/<kver>/build.  The host's own running kernel has no headers
# and is never listed.
#
# With --default, print only the one a test runs on when not told: the
# Debian 6.1 kernel, else the oldest one listed.
all() {
	for v in /boot/vmlinuz-*; do
		k=${v#/boot/vmlinuz-}
		[ -f "/lib/modules/$k/build/Makefile" ] && echo "$k"
	done | sort -V
}

if [ "${1:-}" = --default ]; then
	k=$(all | grep '^6\.1\.' | head -n 1)
	[ -n "$k" ] || k=$(all | head -n 1)
	echo "$k"
else
	all
fi

#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Print the installed Debian kernels we build and test against, oldest
# first: every /boot/vmlinuz-<kver> that has headers in
# /lib/modules/<kver>/build.  The host's own running kernel has no headers
# and is never listed.
for v in /boot/vmlinuz-*; do
	k=${v#/boot/vmlinuz-}
	[ -f "/lib/modules/$k/build/Makefile" ] && echo "$k"
done | sort -V

#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The stand-in database of cmk-testdb.service (tests/boot).
echo "$(cat /proc/sys/kernel/random/boot_id) $(findmnt -rn -o SOURCE,FSTYPE --target /var/lib/cmktest)" \
	>>/var/log/cmk-testdb.starts
date >/var/lib/cmktest/db-alive
exec sleep infinity

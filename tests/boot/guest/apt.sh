#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# apt.sh LABEL ARGS...: "apt ARGS" in the boot test's guest (tests/boot),
# run in /var/cache/cmk-boot-test/debs so that ARGS can name ./v1/*.deb;
# its output in /var/log/cmk-boot-test/LABEL.log, "RC SECONDS" in
# LABEL.result (check.sh reads both).  The guest has no mirror: apt
# resolves the packages' dependencies from what the image holds.
label=$1
shift
log=/var/log/cmk-boot-test
mkdir -p "$log"
cd /var/cache/cmk-boot-test/debs || exit 1
t0=$(date +%s)
DEBIAN_FRONTEND=noninteractive apt -y -q --no-install-recommends "$@" >"$log/$label.log" 2>&1 </dev/null
rc=$?
echo "$rc $(($(date +%s) - t0))" >"$log/$label.result"
exit "$rc"

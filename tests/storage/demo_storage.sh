#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# demo_storage.sh - `make demo-storage` (scripts/demo-storage.sh) as a
# smoke test, so make check notices when the storage story breaks; TAP.
#
# Oracle: the demo checks every claim itself; this passes when it exits 0
# and its last line says PASS.  The narration is kept as TAP comments, and
# its run time printed (never asserted; about 25 s on the 2-core machine).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
log=$(mktemp "${TMPDIR:-/tmp}/demo-storage.XXXXXX.log") || exit 1
trap 'rm -f "$log"' EXIT

echo "1..1"
t0=$(date +%s)
"$top/scripts/demo-storage.sh" >"$log" 2>&1
rc=$?
sed 's/^/# /' "$log"
echo "# demo_storage_wall_s=$(($(date +%s) - t0))"
if [ $rc -eq 0 ] && tail -n 1 "$log" | grep -q '^dm-cmk storage demo: PASS'; then
	echo "ok 1 - postgres_demo_storage_passes"
else
	echo "not ok 1 - postgres_demo_storage_passes"
	echo "# exit $rc: $(tail -n 1 "$log")"
	exit 1
fi

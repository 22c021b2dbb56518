#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# postgres_revoke.sh - the CMK revoked while pgbench runs against a
# PostgreSQL 15 that archives sealed WAL (cmk-wal-archive); TAP output.
# Documentation/storage.rst, "Revocation and archiving".
#
# The local provider's key is disabled ("cmkctl local-key disable", as
# the other tests revoke it) while pgbench runs, and enabled again after.
# Oracles:
# - while revoked: archive_command fails with cmk-wal-archive's message
#   naming the segment and the KMS's reason in the server log;
#   pg_stat_archiver.failed_count rises; every segment waiting to be
#   archived (archive_status/*.ready) is still in pg_wal and absent from
#   the archive; pgbench itself completes (archiving does not stop the
#   database).
# - after the CMK is back: archiving catches up (no .ready left, the last
#   switched segment archived), the archive has every segment from the
#   first to the last by name (no gap), and each segment that was held
#   back unseals to the bytes it had in pg_wal while revoked.
set -u
# shellcheck source=tests/storage/pg_lib.sh
. "$(dirname "$0")/pg_lib.sh"

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; [ $# -lt 2 ] || echo "# $2"; failed=1; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else notok "$name"; fi; }
# verdict NAME: ok if the command just before the call succeeded.
verdict() { if [ $? -eq 0 ]; then ok "$1"; else notok "$1"; fi; }
plan=9
bench_pid=
trap '[ -z "$bench_pid" ] || kill "$bench_pid" 2>/dev/null; pg_cleanup' EXIT
echo "1..$plan"

if [ ! -x "$CMKCTL" ] || ! pg_init postgres-revoke; then
	for i in $(seq $plan); do notok "postgres_revoke_setup_$i" "no cmkctl ($CMKCTL) or no postgresql-15"; done
	exit 1
fi
P=55442
src=$pg_dir/src
arc=$pg_dir/archive
held=$pg_dir/held
as_pg mkdir "$arc" "$held"

if pg_initdb "$src" $P && sysid=$(pg_sysid "$src") && [ -n "$sysid" ] &&
   pg_archive_conf "$src" "$arc" "$sysid" && pg_start "$src" &&
   pg_bench $P -i -s 1 -q >"$pg_dir/init.log" 2>&1 && first=$(pg_switch $P) &&
   pg_wait 300 pg_archived "$arc" "$first"; then
	ok "postgres_revoke_cluster_archiving_sealed"
else
	notok "postgres_revoke_cluster_archiving_sealed" \
		"$(tail -n 5 "$src.initdb.log" "$src.log" "$pg_dir/init.log" 2>&1 | tr '\n' ' ')"
fi

failed_count() { sql $P "SELECT failed_count FROM pg_stat_archiver"; }
f0=$(failed_count)
# Revoke while pgbench runs; then one more switched segment, so there is
# something to archive after the revocation however fast pgbench was.
pg_bench $P -n -c 2 -j 1 -t 3000 >"$pg_dir/bench.log" 2>&1 &
bench_pid=$!
pg_cmk disable
mid=$(pg_switch $P)
failed_more() { [ "$(failed_count)" -gt "$f0" ]; }
pg_wait 300 failed_more
check "postgres_revoke_failed_count_rises" failed_more
echo "# failed_count $f0 -> $(failed_count)"
wait "$bench_pid"
rc=$?
bench_pid=
check "postgres_revoke_pgbench_completes_while_archiving_fails" [ $rc -eq 0 ]
# The last segment written while revoked: from here on it is .ready.
last=$(pg_switch $P)

if grep -q "cmk-wal-archive: [0-9A-F]\{24\}: sealing failed (cmkctl seal exit 2): .*\(key disabled\|CMK refused (disabled)\)" "$src.log" &&
   grep -q 'archive command failed with exit code 1' "$src.log"; then
	ok "postgres_revoke_archive_command_fails_clearly_in_server_log"
	grep -m 2 'cmk-wal-archive: .*: \(sealing failed\|not archived\)' "$src.log" | sed 's/^/# /'
else
	notok "postgres_revoke_archive_command_fails_clearly_in_server_log" "$(tail -n 6 "$src.log" | tr '\n' ' ')"
fi

# Everything waiting is in pg_wal and not in the archive; keep a copy.
ready=$(pg_ready "$src")
bad=0
for s in $ready; do
	if [ ! -f "$src/pg_wal/$s" ] || pg_archived "$arc" "$s"; then
		echo "# $s: not in pg_wal, or archived while revoked"
		bad=1
	fi
	cp "$src/pg_wal/$s" "$held/$s"
done
count=$(echo "$ready" | grep -c .)
echo "# waiting while revoked: $count segments, $(echo "$ready" | head -n 1) .. $(echo "$ready" | tail -n 1)"
[ $bad -eq 0 ] && [ "$count" -ge 2 ] && grep -qx "$mid" <<<"$ready" && grep -qx "$last" <<<"$ready"
verdict "postgres_revoke_segments_stay_in_pg_wal"

# The CMK is back: archiving catches up.  The archiver retries on its own
# within a minute; the switch below adds one segment and, as every newly
# completed segment does, wakes it at once.
pg_cmk enable
end=$(pg_switch $P)
echo "# revoked: $mid .. $last; after the restore: $end"
caught_up() { pg_archived "$arc" "$end" && [ -z "$(pg_ready "$src")" ]; }
if pg_wait 300 caught_up; then
	ok "postgres_revoke_archiving_catches_up_after_restore"
else
	notok "postgres_revoke_archiving_catches_up_after_restore" "still waiting: $(pg_ready "$src" | tr '\n' ' ')"
fi
if gaps=$(pg_archive_gaps "$arc" 2>"$pg_dir/gaps"); then
	ok "postgres_revoke_archive_has_every_segment_no_gap"
	echo "# archive: first last count = $gaps"
else
	notok "postgres_revoke_archive_has_every_segment_no_gap" "$(tr '\n' ' ' <"$pg_dir/gaps")"
fi
bad=0
for s in $ready; do
	if ! as_pg "$PG_SCRIPTS/cmk-wal-restore" "${PG_KEYARGS[@]}" --cluster "$sysid" --archive "$arc" \
		"$s" "$held/$s.restored" || ! cmp -s "$held/$s" "$held/$s.restored"; then
		echo "# $s: archived object does not unseal to the segment held in pg_wal"
		bad=1
	fi
done
[ $bad -eq 0 ] && [ -n "$ready" ]
verdict "postgres_revoke_held_segments_archived_intact"
after=$(sql $P "SELECT failed_count FROM pg_stat_archiver")
check "postgres_revoke_pg_stat_archiver_last_archived_is_the_last_segment" \
	[ "$(sql $P "SELECT last_archived_wal >= '$end' FROM pg_stat_archiver")" = t ]
echo "# failed_count at the end $after"
pg_stop "$src"
exit $failed

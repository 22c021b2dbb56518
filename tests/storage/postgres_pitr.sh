#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# postgres_pitr.sh - PostgreSQL 15 archives its WAL sealed (cmk-wal-archive),
# takes a sealed base backup (cmk-pg-basebackup), and a point-in-time
# recovery into a fresh data directory from those alone reaches a named
# restore point; TAP output.  Documentation/storage.rst, "PostgreSQL".
#
# Oracles:
# - content: md5 over every row of the four pgbench tables, taken on the
#   original at the restore point, equals the restored database's; the
#   original moved on after it (its final checksum differs), so the
#   recovery stopped at the target, not at the end of the archive.  The
#   same for a timestamp target just after a known transaction.
# - sealed: every archived object is an ESDK message (version 02, suite
#   04 78), and neither the backup nor a segment holds a plaintext marker
#   (a string written into the database; "PG_VERSION" in the tar).
# - swapped segment: one sealed segment copied over another's name is
#   refused by cmk-wal-restore (exit 255, "swapped or renamed", nothing
#   written), and a recovery from that archive stops with FATAL instead of
#   opening the database.
# - a base backup cut short: never published (pg_basebackup failed), never
#   left half restored (a truncated object: the data directory is emptied).
# - archive_command safety: archiving a segment again with the same
#   content succeeds, with other content fails and leaves the archived
#   object as it was; nothing but published objects is left in the
#   archive.  The "already archived" success is durable: the object and
#   the archive directory are fsynced (strace -y sees both) before exit 0.
# - restore_command: an archive the postgres user cannot search (EACCES,
#   not ENOENT) stops recovery (exit 255), it is not "no such segment".
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
plan=21
trap pg_cleanup EXIT
echo "1..$plan"

if [ ! -x "$CMKCTL" ] || ! pg_init postgres-pitr; then
	for i in $(seq $plan); do notok "postgres_pitr_setup_$i" "no cmkctl ($CMKCTL) or no postgresql-15"; done
	exit 1
fi
P=55432
R=55433
src=$pg_dir/src
arc=$pg_dir/archive
as_pg mkdir "$arc"
MARK=cmk-plaintext-marker-4f1d

# 1: a cluster archiving sealed, loaded by pgbench.
if pg_initdb "$src" $P && sysid=$(pg_sysid "$src") && [ -n "$sysid" ] &&
   pg_archive_conf "$src" "$arc" "$sysid" && pg_start "$src" &&
   pg_bench $P -i -s 1 -q >"$pg_dir/init.log" 2>&1 &&
   sql $P "CREATE TABLE marker AS SELECT '$MARK'::text AS m FROM generate_series(1, 100)"; then
	ok "postgres_pitr_cluster_archives_sealed_under_pgbench_init"
else
	notok "postgres_pitr_cluster_archives_sealed_under_pgbench_init" \
		"$(tail -n 5 "$src.initdb.log" "$src.log" "$pg_dir/init.log" 2>&1 | tr '\n' ' ')"
fi

# 2: the sealed base backup.
backup=$pg_dir/base.tar.esdk
if as_pg "$PG_SCRIPTS/cmk-pg-basebackup" "${PG_KEYARGS[@]}" --cluster "$sysid" "$backup" \
	-h "$pg_dir" -p $P -c fast 2>"$pg_dir/bb.err" &&
   [ "$(head -c 3 "$backup" | od -An -tx1 | tr -d ' ')" = 020478 ] &&
   ! grep -q PG_VERSION "$backup"; then
	ok "postgres_pitr_basebackup_sealed"
else
	notok "postgres_pitr_basebackup_sealed" "$(tr '\n' ' ' <"$pg_dir/bb.err")"
fi

# 3: load after the backup, a named restore point, more load.
pg_bench $P -n -c 2 -j 1 -t 1500 >"$pg_dir/bench1.log" 2>&1 &&
	sum_target=$(pg_checksum $P) &&
	sql $P "SELECT pg_create_restore_point('cmk_pitr')" >/dev/null &&
	sql $P "UPDATE pgbench_branches SET bbalance = bbalance + 12345 WHERE bid = 1" &&
	ts=$(sql $P "SELECT clock_timestamp()") && sum_ts=$(pg_checksum $P) &&
	pg_bench $P -n -c 2 -j 1 -t 1000 >"$pg_dir/bench2.log" 2>&1 &&
	sum_end=$(pg_checksum $P) && last=$(pg_switch $P)
[ $? -eq 0 ] && [ -n "${sum_target:-}" ] && [ "$sum_target" != "${sum_ts:-}" ] &&
	[ "${sum_ts:-}" != "${sum_end:-}" ]
verdict "postgres_pitr_pgbench_restore_point_and_more_load"
echo "# restore point $sum_target, time ${ts:-?} ${sum_ts:-?}, end ${sum_end:-?}, last segment ${last:-?}"

# 4: archiving caught up, no gap, only sealed objects in the archive.
if pg_wait 300 pg_archived "$arc" "${last:-none}" && gaps=$(pg_archive_gaps "$arc" 2>"$pg_dir/gaps"); then
	ok "postgres_pitr_archive_complete_no_gap"
	echo "# archive: first last count = $gaps"
else
	notok "postgres_pitr_archive_complete_no_gap" "$(tr '\n' ' ' <"$pg_dir/gaps") last=${last:-?} $(sql $P 'SELECT * FROM pg_stat_archiver')"
fi
bad=0
for f in "$arc"/*; do
	case ${f##*/} in *.esdk) ;; *) echo "# not an archived object: $f"; bad=1; continue ;; esac
	[ "$(head -c 3 "$f" | od -An -tx1 | tr -d ' ')" = 020478 ] || { echo "# not ESDK 0x0478: $f"; bad=1; }
done
if grep -rlq "$MARK" "$arc"; then
	echo "# plaintext marker found in the archive"
	bad=1
fi
check "postgres_pitr_archive_holds_only_sealed_segments" [ $bad -eq 0 ]

# 5-7: point-in-time recovery into a fresh data directory.
dst=$pg_dir/restored
if as_pg "$PG_SCRIPTS/cmk-pg-restore-backup" "${PG_KEYARGS[@]}" --cluster "$sysid" \
	"$backup" "$dst" 2>"$pg_dir/rb.err" && [ -f "$dst/PG_VERSION" ]; then
	ok "postgres_pitr_basebackup_unsealed_into_fresh_datadir"
else
	notok "postgres_pitr_basebackup_unsealed_into_fresh_datadir" "$(tr '\n' ' ' <"$pg_dir/rb.err")"
fi
# pitr_conf DATADIR ARCHIVE PORT [TARGET]: recover to TARGET (default the
# restore point), then open.
pitr_conf() {
	pg_conf "$1" "port = $3" "archive_mode = off" \
		"${4:-recovery_target_name = 'cmk_pitr'}" "recovery_target_action = 'promote'" &&
		pg_restore_conf "$1" "$2" "$sysid" &&
		as_pg touch "$1/recovery.signal"
}
not_in_recovery() { [ "$(sql "$1" 'SELECT pg_is_in_recovery()' 2>/dev/null)" = f ]; }
if pitr_conf "$dst" "$arc" $R && pg_start "$dst" && pg_wait 300 not_in_recovery $R &&
   grep -q 'recovery stopping at restore point "cmk_pitr"' "$dst.log"; then
	ok "postgres_pitr_recovery_reaches_restore_point"
else
	notok "postgres_pitr_recovery_reaches_restore_point" "$(tail -n 8 "$dst.log" | tr '\n' ' ')"
fi
sum_restored=$(pg_checksum $R)
echo "# restored $sum_restored"
[ -n "$sum_restored" ] && [ "$sum_restored" = "${sum_target:-x}" ]
verdict "postgres_pitr_restored_checksum_equals_original_at_target"
pg_stop "$dst"

# A timestamp target: just after a known transaction (the UPDATE above),
# before the load that followed it.
dst3=$pg_dir/restored-time
R3=55435
if as_pg "$PG_SCRIPTS/cmk-pg-restore-backup" "${PG_KEYARGS[@]}" --cluster "$sysid" "$backup" "$dst3" &&
   pitr_conf "$dst3" "$arc" $R3 "recovery_target_time = '${ts:-}'" && pg_start "$dst3" &&
   pg_wait 300 not_in_recovery $R3 && [ "$(pg_checksum $R3)" = "${sum_ts:-x}" ]; then
	ok "postgres_pitr_recovery_to_timestamp_checksum_equals_original"
else
	notok "postgres_pitr_recovery_to_timestamp_checksum_equals_original" "$(tail -n 8 "$dst3.log" | tr '\n' ' ')"
fi
pg_stop "$dst3"

# 8-9: a swapped segment.  The backup starts in segment B (its .backup
# file says so); B+1 and B+2 are replayed before the target.  B+1's
# object is copied over B+2's name.
start=$(find "$arc" -name '*.backup.esdk' -printf '%f\n' | head -n 1 | cut -c1-24)
segname() { printf '%08X%08X%08X' 1 $(($1 / 4096)) $(($1 % 4096)); }
s=$((16#${start:8:8} * 4096 + 16#${start:16:8}))
a=$(segname $((s + 1)))
b=$(segname $((s + 2)))
swp=$pg_dir/archive-swapped
as_pg cp -a "$arc" "$swp" && as_pg cp -f "$swp/$a.esdk" "$swp/$b.esdk"
as_pg "$PG_SCRIPTS/cmk-wal-restore" "${PG_KEYARGS[@]}" --cluster "$sysid" --archive "$swp" \
	"$b" "$pg_dir/RECOVERYXLOG" 2>"$pg_dir/swap.err"
rc=$?
if [ $rc -eq 255 ] && [ ! -e "$pg_dir/RECOVERYXLOG" ] && grep -q 'swapped or renamed' "$pg_dir/swap.err"; then
	ok "postgres_pitr_restore_refuses_swapped_segment"
	sed 's/^/# /' "$pg_dir/swap.err"
else
	notok "postgres_pitr_restore_refuses_swapped_segment" "rc=$rc $(tr '\n' ' ' <"$pg_dir/swap.err")"
fi
dst2=$pg_dir/restored-swapped
R2=55434
as_pg "$PG_SCRIPTS/cmk-pg-restore-backup" "${PG_KEYARGS[@]}" --cluster "$sysid" "$backup" "$dst2" &&
	pitr_conf "$dst2" "$swp" $R2 && pg_start "$dst2" 2>/dev/null
pg_wait 300 grep -q 'FATAL' "$dst2.log"
if grep -q "$b.*swapped or renamed" "$dst2.log" &&
   grep -q "FATAL: .*could not restore file \"$b\" from archive: child process exited with exit code 255" "$dst2.log" &&
   ! not_in_recovery $R2 && ! grep -q 'recovery stopping' "$dst2.log"; then
	ok "postgres_pitr_recovery_stops_at_swapped_segment"
else
	notok "postgres_pitr_recovery_stops_at_swapped_segment" "$(tail -n 8 "$dst2.log" | tr '\n' ' ')"
fi

# 10-12: archive_command on an archived segment: same content succeeds,
# other content fails and the object stays as it was.
seg=$pg_dir/seg-$b
as_pg "$PG_SCRIPTS/cmk-wal-restore" "${PG_KEYARGS[@]}" --cluster "$sysid" --archive "$arc" "$b" "$seg"
before=$(sha256sum <"$arc/$b.esdk")
archive() { as_pg "$PG_SCRIPTS/cmk-wal-archive" "${PG_KEYARGS[@]}" --cluster "$sysid" --archive "$arc" "$@"; }
archive "$seg" "$b" 2>"$pg_dir/same.err"
[ $? -eq 0 ] && grep -q 'already archived with the same content' "$pg_dir/same.err"
verdict "postgres_pitr_archive_again_same_content_succeeds"
printf 'X' | as_pg dd of="$seg" bs=1 seek=4096 conv=notrunc status=none
if ! archive "$seg" "$b" 2>"$pg_dir/other.err" && grep -q 'other content; not overwritten' "$pg_dir/other.err" &&
   [ "$(sha256sum <"$arc/$b.esdk")" = "$before" ]; then
	ok "postgres_pitr_archive_never_overwrites_other_content"
	sed 's/^/# /' "$pg_dir/other.err"
else
	notok "postgres_pitr_archive_never_overwrites_other_content" "$(tr '\n' ' ' <"$pg_dir/other.err")"
fi
leftover=$(find "$arc" -mindepth 1 ! -name '*.esdk')
check "postgres_pitr_archive_leaves_no_temporary_files" [ -z "$leftover" ]
# The "already archived" path acknowledges a segment PostgreSQL then
# deletes: the object and the directory entry must be on disk first.
as_pg "$PG_SCRIPTS/cmk-wal-restore" "${PG_KEYARGS[@]}" --cluster "$sysid" --archive "$arc" "$b" "$pg_dir/seg-same"
as_pg strace -f -qq -y -e trace=fsync,fdatasync -o "$pg_dir/sync.trace" \
	"$PG_SCRIPTS/cmk-wal-archive" "${PG_KEYARGS[@]}" --cluster "$sysid" --archive "$arc" \
	"$pg_dir/seg-same" "$b" 2>"$pg_dir/sync.err"
rc=$?
if [ $rc -eq 0 ] && grep -q "sync([0-9]*<$arc/$b.esdk>)" "$pg_dir/sync.trace" &&
   grep -q "sync([0-9]*<$arc>)" "$pg_dir/sync.trace"; then
	ok "postgres_pitr_archive_again_syncs_object_and_dir"
else
	notok "postgres_pitr_archive_again_syncs_object_and_dir" "rc=$rc $(tr '\n' ' ' <"$pg_dir/sync.err") $(grep sync "$pg_dir/sync.trace" | tr '\n' ' ')"
fi
# An archive directory postgres cannot search: the lookup fails with
# EACCES, which is not "not archived" (exit 1 would end recovery early).
mode=$(stat -c %a "$arc")
chmod 0600 "$arc"
as_pg "$PG_SCRIPTS/cmk-wal-restore" "${PG_KEYARGS[@]}" --cluster "$sysid" --archive "$arc" \
	"$a" "$pg_dir/eacces-seg" 2>"$pg_dir/eacces.err"
rc=$?
chmod "$mode" "$arc"
if [ $rc -eq 255 ] && [ ! -e "$pg_dir/eacces-seg" ]; then
	ok "postgres_pitr_restore_stops_on_unreadable_archive_eacces"
	sed 's/^/# /' "$pg_dir/eacces.err"
else
	notok "postgres_pitr_restore_stops_on_unreadable_archive_eacces" "rc=$rc $(tr '\n' ' ' <"$pg_dir/eacces.err")"
fi

# 13-14: the objects are bound to the cluster: the same segment under
# another cluster id is refused, and the base backup under another name.
as_pg "$PG_SCRIPTS/cmk-wal-restore" "${PG_KEYARGS[@]}" --cluster 42 --archive "$arc" \
	"$a" "$pg_dir/other-cluster" 2>"$pg_dir/cl.err"
[ $? -eq 255 ] && [ ! -e "$pg_dir/other-cluster" ] && grep -q 'context key "cluster"' "$pg_dir/cl.err"
verdict "postgres_pitr_restore_refuses_other_cluster_id"
# An archive that is not there (unmounted) stops recovery (255) instead of
# reading as "no such segment" (1), which would end it early.
as_pg "$PG_SCRIPTS/cmk-wal-restore" "${PG_KEYARGS[@]}" --cluster "$sysid" --archive "$pg_dir/unmounted" \
	"$a" "$pg_dir/unmounted-seg" 2>/dev/null
check "postgres_pitr_restore_stops_on_missing_archive" [ $? -eq 255 ]
as_pg ln "$backup" "$pg_dir/renamed.tar.esdk"
as_pg "$PG_SCRIPTS/cmk-pg-restore-backup" "${PG_KEYARGS[@]}" --cluster "$sysid" \
	"$pg_dir/renamed.tar.esdk" "$pg_dir/restored-renamed" 2>"$pg_dir/rn.err"
[ $? -ne 0 ] && [ -z "$(ls -A "$pg_dir/restored-renamed" 2>/dev/null)" ] && grep -q 'context key "backup"' "$pg_dir/rn.err"
verdict "postgres_pitr_restore_backup_refuses_renamed_backup"

# 16-17: a base backup cut short is never published or restored.  A
# failing pg_basebackup (no server on that port) leaves no OUT and no
# temporary file; a truncated backup (the same name in another directory)
# is refused part-way and the data directory is emptied again.
as_pg "$PG_SCRIPTS/cmk-pg-basebackup" "${PG_KEYARGS[@]}" --cluster "$sysid" "$pg_dir/failed.tar.esdk" \
	-h "$pg_dir" -p 1 2>"$pg_dir/bbf.err"
[ $? -ne 0 ] && [ -z "$(find "$pg_dir" -maxdepth 1 -name 'failed.tar.esdk*')" ] &&
	grep -q 'pg_basebackup failed' "$pg_dir/bbf.err"
verdict "postgres_pitr_basebackup_failure_publishes_nothing"
as_pg mkdir "$pg_dir/cut"
as_pg head -c $(($(stat -c %s "$backup") / 2)) "$backup" >"$pg_dir/cut/${backup##*/}"
chown postgres: "$pg_dir/cut/${backup##*/}"
as_pg "$PG_SCRIPTS/cmk-pg-restore-backup" "${PG_KEYARGS[@]}" --cluster "$sysid" \
	"$pg_dir/cut/${backup##*/}" "$pg_dir/restored-cut" 2>"$pg_dir/cut.err"
[ $? -ne 0 ] && [ -d "$pg_dir/restored-cut" ] && [ -z "$(ls -A "$pg_dir/restored-cut")" ] &&
	grep -q 'emptied' "$pg_dir/cut.err"
verdict "postgres_pitr_truncated_basebackup_leaves_empty_datadir"
sed 's/^/# /' "$pg_dir/cut.err"

pg_stop "$src"
exit $failed

#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# postgres_temp_tablespace.sh - temp_tablespaces on an ephemeral device
# after a re-key, and scripts/pg/cmk-pg-temp-tablespace; TAP output.
# Documentation/storage.rst, "temp_tablespaces on an ephemeral device".
#
# A PostgreSQL 15 (pg_lib.sh: temporary directory, Unix socket only) with
# temp_tablespaces = a tablespace in a directory standing for the
# ephemeral device's file system.  The re-key is that directory emptied
# while the server is down (a new file system has nothing in it).
# Oracle: the temp files of a sort that spills, listed on disk while its
# cursor is open (find), and a temporary table's creation.
# - before the re-key: the temp files are in the tablespace;
# - after it, without the script: PostgreSQL puts them under the data
#   directory (base/pgsql_tmp) without an error, and a temporary table
#   fails - what the script is for (this pins PostgreSQL's behaviour:
#   if it changes, so must storage.rst);
# - after cmk-pg-temp-tablespace: the version directory is back, owned
#   by postgres, mode 0700, the temp files are in the tablespace again,
#   a temporary table works; a second run changes nothing; a location no
#   tablespace points to fails and is not created; a directory that is
#   not a data directory fails.
# - from the attacker's side (postgres owns the data directory and what
#   is in it; the script runs as root): LOCATION a symlink to a directory
#   of root's (it stays root's, nothing made in it), the version
#   directory a symlink (dangling, or to root's directory: refused, not
#   followed), PG_VERSION a symlink to a file only root can read (its
#   content never in the output), DATADIR a symlink (refused), a
#   missing LOCATION whose parent postgres can write (refused: root
#   makes nothing there); a LOCATION spelt with a trailing slash is the
#   same tablespace; a cluster with no tablespace yet (first start) is
#   let through.
# "The ephemeral device's mount root" ($eph) is root's, mode 0711, as
# cmk-ephemeral DIR_MODE=0711 makes it in tests/boot.  There is no
# dm-cmk device on the host: CMK_PG_TEST_NO_DM_CHECK=1 skips that check,
# except in the case that shows the check refusing a plain directory.
set -u
# shellcheck source=tests/storage/pg_lib.sh
. "$(dirname "$0")/pg_lib.sh"

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; [ $# -lt 2 ] || printf '%s\n' "$2" | sed 's/^/# /'; failed=1; }
plan=16
cleanup() {
	pg_cleanup
	[ -z "${root_dir:-}" ] || rm -rf "$root_dir"
}
trap cleanup EXIT
echo "1..$plan"
if [ ! -x "$CMKCTL" ] || ! pg_init postgres-temp-tablespace; then
	for i in $(seq $plan); do notok "postgres_temp_tablespace_setup_$i" "no cmkctl ($CMKCTL) or no postgresql-15"; done
	exit 1
fi
P=55446
data=$pg_dir/data
# Root's: the mount root ($eph) and the victims of the attacks.
root_dir=$(mktemp -d "${TMPDIR:-/tmp}/pg-tt-root.XXXXXX") && chmod 0755 "$root_dir" || exit 1
eph=$root_dir/eph
loc=$eph/pgtemp
install -d -m 0711 "$eph"
tool=$PG_SCRIPTS/cmk-pg-temp-tablespace
# tool ARGS...: the script as the unit runs it (as root), but with the
# dm-cmk check off (tests only).
tool() { CMK_PG_TEST_NO_DM_CHECK=1 "$PG_SCRIPTS/cmk-pg-temp-tablespace" "$@"; }

# spill: the temp files of a spilling sort, as "tempfile PATH" lines;
# then a temporary table (ERROR on stderr if it cannot be made).
spill() {
	as_pg psql -h "$pg_dir" -p $P -X -A -t -q -d postgres 2>&1 <<EOF
SET work_mem = '64kB';
BEGIN;
DECLARE c CURSOR FOR SELECT g FROM generate_series(1, 200000) g ORDER BY g DESC;
FETCH 1 FROM c;
\\! find $loc $data -name 'pgsql_tmp*' -type f -printf 'tempfile %p\\n'
COMMIT;
CREATE TEMP TABLE cmk_tt (i int);
EOF
}
# in_tablespace OUT: temp files, all in the tablespace, and no error.
in_tablespace() {
	grep -q "^tempfile $loc/PG_15_[0-9]*/pgsql_tmp/" <<<"$1" &&
		! grep '^tempfile' <<<"$1" | grep -qv "^tempfile $loc/" &&
		! grep -q ERROR <<<"$1"
}

install -d -o postgres -g postgres -m 0700 "$loc"
if pg_initdb "$data" $P && pg_conf "$data" "temp_tablespaces = 'ephemeral_temp'" &&
   pg_start "$data" && sql $P "CREATE TABLESPACE ephemeral_temp LOCATION '$loc'" &&
   out=$(spill) && in_tablespace "$out"; then
	ok postgres_temp_tablespace_spills_into_it
else
	notok postgres_temp_tablespace_spills_into_it "${out:-}$(tail -n 5 "$data.log")"
fi

# The re-key, no script: PostgreSQL falls back to the data directory.
pg_stop "$data"
rm -rf "$loc"
pg_start "$data"
out=$(spill)
if grep -q "^tempfile $data/base/pgsql_tmp/" <<<"$out" && ! grep -q "^tempfile $eph/" <<<"$out" &&
   grep -q 'ERROR:  could not create directory "pg_tblspc/' <<<"$out"; then
	ok postgres_temp_tablespace_rekeyed_dir_missing_falls_back_to_datadir
else
	notok postgres_temp_tablespace_rekeyed_dir_missing_falls_back_to_datadir "$out"
fi

# With the script before the start, as the unit's ExecStartPre=+ runs it.
pg_stop "$data"
msg=$(tool "$data" "$loc" 2>&1)
rc=$?
pg_start "$data"
out=$(spill)
vdir=$(find "$loc" -mindepth 1 -maxdepth 1 -name 'PG_15_*')
if [ $rc -eq 0 ] && grep -q 'created (the device was re-keyed)' <<<"$msg" &&
   [ "$(stat -c '%U %a' "$loc" "$vdir" | tr '\n' ' ')" = 'postgres 700 postgres 700 ' ] &&
   in_tablespace "$out"; then
	ok postgres_temp_tablespace_script_recreates_it
else
	notok postgres_temp_tablespace_script_recreates_it "exit $rc: $msg $out"
fi

# Again (a restart in the same boot): nothing said, nothing changed.
touch "$vdir/keep"
msg=$(tool "$data" "$loc" 2>&1)
rc=$?
if [ $rc -eq 0 ] && ! grep -v 'dm-cmk check skipped' <<<"$msg" | grep -q . && [ -f "$vdir/keep" ]; then
	ok postgres_temp_tablespace_script_idempotent
else
	notok postgres_temp_tablespace_script_idempotent "exit $rc: $msg"
fi

# A cluster with no tablespace yet (its first start, before CREATE
# TABLESPACE, as tests/boot's pgsetup.sh starts it): let through, with a
# message, nothing created.  (A copy of what the script reads.)
fresh=$pg_dir/fresh
as_pg mkdir -m 0700 "$fresh" "$fresh/global" "$fresh/pg_tblspc"
as_pg cp "$data/PG_VERSION" "$fresh/"
as_pg cp "$data/global/pg_control" "$fresh/global/"
msg=$(tool "$fresh" "$eph/first" 2>&1)
rc=$?
if [ $rc -eq 0 ] && grep -q 'has no tablespace yet' <<<"$msg" && [ ! -e "$eph/first" ]; then
	ok postgres_temp_tablespace_script_first_start_no_tablespace
else
	notok postgres_temp_tablespace_script_first_start_no_tablespace "exit $rc: $msg"
fi

# A LOCATION no tablespace links to: the server would silently put its
# temp files in the data directory, so the start fails.
msg=$(tool "$data" "$eph/elsewhere" 2>&1)
rc=$?
if [ $rc -eq 1 ] && grep -q 'no tablespace of .* links there' <<<"$msg" && [ ! -e "$eph/elsewhere" ]; then
	ok postgres_temp_tablespace_script_fails_unlinked_location
else
	notok postgres_temp_tablespace_script_fails_unlinked_location "exit $rc: $msg"
fi

# The tablespace's LOCATION as PostgreSQL stores it (no trailing slash)
# and as a unit may spell it: the same directory.
rm -rf "$vdir"
msg=$(tool "$data" "$loc/" 2>&1)
rc=$?
if [ $rc -eq 0 ] && grep -q 'created (the device was re-keyed)' <<<"$msg" &&
   [ "$(stat -c '%U %a' "$vdir" 2>&1)" = 'postgres 700' ]; then
	ok postgres_temp_tablespace_script_location_trailing_slash
else
	notok postgres_temp_tablespace_script_location_trailing_slash "exit $rc: $msg"
fi

# Attack: LOCATION replaced by a symlink to a directory of root's (H1: a
# root install -d followed it and gave it to postgres).  Oracle: refused,
# the victim still root's with its mode, nothing made in it.
victim=$root_dir/victim
install -d -m 0755 "$victim"
mv "$loc" "$loc.real"
ln -s "$victim" "$loc"
msg=$(tool "$data" "$loc" 2>&1)
rc=$?
if [ $rc -eq 1 ] && grep -q 'symbolic link; refused' <<<"$msg" &&
   [ "$(stat -c '%U:%G %a' "$victim")" = 'root:root 755' ] && [ -z "$(ls -A "$victim")" ]; then
	ok postgres_temp_tablespace_script_location_symlink_refused
else
	notok postgres_temp_tablespace_script_location_symlink_refused "exit $rc: $msg $(stat -c '%U:%G %a' "$victim") $(ls -A "$victim")"
fi
rm -f "$loc"
mv "$loc.real" "$loc"

# Attack: the version directory a symlink, dangling (the name postgres
# swaps in between a check and a root mkdir) or to root's directory.
# Oracle: refused, nothing made or given away behind it.
vname=${vdir##*/}
rm -rf "$vdir"
ln -s "$victim/made" "$vdir"
msg=$(tool "$data" "$loc" 2>&1)
rc=$?
if [ $rc -eq 1 ] && grep -q 'refused' <<<"$msg" && [ ! -e "$victim/made" ] &&
   [ "$(stat -c '%U:%G %a' "$victim")" = 'root:root 755' ]; then
	ok postgres_temp_tablespace_script_version_dir_dangling_symlink_refused
else
	notok postgres_temp_tablespace_script_version_dir_dangling_symlink_refused "exit $rc: $msg"
fi
rm -f "$vdir"
ln -s "$victim" "$vdir"
msg=$(tool "$data" "$loc" 2>&1)
rc=$?
if [ $rc -eq 1 ] && grep -q 'refused' <<<"$msg" &&
   [ "$(stat -c '%U:%G %a' "$victim")" = 'root:root 755' ] && [ -z "$(ls -A "$victim")" ]; then
	ok postgres_temp_tablespace_script_version_dir_symlink_refused
else
	notok postgres_temp_tablespace_script_version_dir_symlink_refused "exit $rc: $msg"
fi
rm -f "$vdir"
as_pg mkdir -m 0700 "$loc/$vname"

# Attack: PG_VERSION a symlink to a file only root can read (H2: root's
# cat printed it in the error).  Oracle: fails, the line never appears.
secret=$root_dir/secret/key
install -d -m 0700 "$root_dir/secret"
echo SECRET-ROOT-ONLY-LINE >"$secret"
chmod 0600 "$secret"
mv "$data/PG_VERSION" "$data/PG_VERSION.real"
ln -s "$secret" "$data/PG_VERSION"
msg=$(tool "$data" "$loc" 2>&1)
rc=$?
mv -f "$data/PG_VERSION.real" "$data/PG_VERSION"
if [ $rc -eq 1 ] && ! grep -q SECRET <<<"$msg"; then
	ok postgres_temp_tablespace_script_pg_version_symlink_no_leak
else
	notok postgres_temp_tablespace_script_pg_version_symlink_no_leak "exit $rc: $msg"
fi

# DATADIR a symlink (postgres can replace the data directory's name when
# it owns the mount root): its target could be anybody's; refused.
# Also as "LINK/" (stat would follow it) and as a path through it.
ln -s "$data" "$pg_dir/datalink"
ln -s "$pg_dir" "$pg_dir/dirlink"
msg=$(tool "$pg_dir/datalink" "$loc" 2>&1; echo "exit $?"
	tool "$pg_dir/datalink/" "$loc" 2>&1; echo "exit $?"
	tool "$pg_dir/dirlink/data" "$loc" 2>&1; echo "exit $?")
rc=$(grep -c '^exit 1$' <<<"$msg")
if [ "$rc" -eq 3 ] && [ "$(grep -c 'symbolic link' <<<"$msg")" -eq 3 ]; then
	ok postgres_temp_tablespace_script_datadir_symlink_refused
else
	notok postgres_temp_tablespace_script_datadir_symlink_refused "exit $rc: $msg"
fi

# A missing LOCATION whose parent postgres can write (a mount root with
# OWNER=postgres): root creates nothing there.  A second tablespace in
# a directory of postgres's.
peph=$pg_dir/eph-owned
as_pg mkdir -m 0700 "$peph" "$peph/t2"
sql $P "CREATE TABLESPACE t2 LOCATION '$peph/t2'" >/dev/null
rm -rf "$peph/t2"
msg=$(tool "$data" "$peph/t2" 2>&1)
rc=$?
if [ $rc -eq 1 ] && grep -q 'root will not create' <<<"$msg" && [ ! -e "$peph/t2" ]; then
	ok postgres_temp_tablespace_script_refuses_parent_writable_by_others
else
	notok postgres_temp_tablespace_script_refuses_parent_writable_by_others "exit $rc: $msg"
fi

# Without the test override: a LOCATION on a plain file system (no
# dm-cmk device under it) fails the start.
msg=$("$tool" "$data" "$loc" 2>&1)
rc=$?
if [ $rc -eq 1 ] && grep -q 'not on a dm-cmk device' <<<"$msg"; then
	ok postgres_temp_tablespace_script_refuses_non_dm_cmk_location
else
	notok postgres_temp_tablespace_script_refuses_non_dm_cmk_location "exit $rc: $msg"
fi

msg=$(tool "$pg_dir" "$loc" 2>&1)
rc=$?
if [ $rc -eq 1 ] && grep -q 'not a PostgreSQL data directory' <<<"$msg"; then
	ok postgres_temp_tablespace_script_refuses_non_datadir
else
	notok postgres_temp_tablespace_script_refuses_non_datadir "exit $rc: $msg"
fi

msg=$(tool "$data" 2>&1)
rc=$?
if [ $rc -eq 1 ] && grep -q usage <<<"$msg"; then
	ok postgres_temp_tablespace_script_usage
else
	notok postgres_temp_tablespace_script_usage "exit $rc: $msg"
fi
pg_stop "$data"
exit $failed

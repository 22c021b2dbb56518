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
#   tablespace points to is skipped with a message and not created; a
#   directory that is not a data directory fails.
set -u
# shellcheck source=tests/storage/pg_lib.sh
. "$(dirname "$0")/pg_lib.sh"

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; [ $# -lt 2 ] || printf '%s\n' "$2" | sed 's/^/# /'; failed=1; }
plan=7
trap pg_cleanup EXIT
echo "1..$plan"
if [ ! -x "$CMKCTL" ] || ! pg_init postgres-temp-tablespace; then
	for i in $(seq $plan); do notok "postgres_temp_tablespace_setup_$i" "no cmkctl ($CMKCTL) or no postgresql-15"; done
	exit 1
fi
P=55446
data=$pg_dir/data
eph=$pg_dir/eph
loc=$eph/pgtemp
tool=$PG_SCRIPTS/cmk-pg-temp-tablespace

# spill: the temp files of a spilling sort, as "tempfile PATH" lines;
# then a temporary table (ERROR on stderr if it cannot be made).
spill() {
	as_pg psql -h "$pg_dir" -p $P -X -A -t -q -d postgres 2>&1 <<EOF
SET work_mem = '64kB';
BEGIN;
DECLARE c CURSOR FOR SELECT g FROM generate_series(1, 200000) g ORDER BY g DESC;
FETCH 1 FROM c;
\\! find $eph $data -name 'pgsql_tmp*' -type f -printf 'tempfile %p\\n'
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

as_pg mkdir -p "$loc"
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
msg=$("$tool" "$data" "$loc" 2>&1)
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
msg=$("$tool" "$data" "$loc" 2>&1)
rc=$?
if [ $rc -eq 0 ] && [ -z "$msg" ] && [ -f "$vdir/keep" ]; then
	ok postgres_temp_tablespace_script_idempotent
else
	notok postgres_temp_tablespace_script_idempotent "exit $rc: $msg"
fi

msg=$("$tool" "$data" "$pg_dir/elsewhere" 2>&1)
rc=$?
if [ $rc -eq 0 ] && grep -q 'no tablespace of .* is there' <<<"$msg" && [ ! -e "$pg_dir/elsewhere" ]; then
	ok postgres_temp_tablespace_script_skips_unlinked_location
else
	notok postgres_temp_tablespace_script_skips_unlinked_location "exit $rc: $msg"
fi

msg=$("$tool" "$eph" "$loc" 2>&1)
rc=$?
if [ $rc -eq 1 ] && grep -q 'not a PostgreSQL data directory' <<<"$msg"; then
	ok postgres_temp_tablespace_script_refuses_non_datadir
else
	notok postgres_temp_tablespace_script_refuses_non_datadir "exit $rc: $msg"
fi

msg=$("$tool" "$data" 2>&1)
rc=$?
if [ $rc -eq 1 ] && grep -q usage <<<"$msg"; then
	ok postgres_temp_tablespace_script_usage
else
	notok postgres_temp_tablespace_script_usage "exit $rc: $msg"
fi
pg_stop "$data"
exit $failed

#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# postgres_archive_bench.sh - PostgreSQL's archive throughput under pgbench
# with cmk-wal-archive (sealed) against archive_command = cp (the
# PostgreSQL documentation's "test ! -f ... && cp %p ..."), in segments per
# second.  Timings only, no assertion (the machine is shared).
#
# For each command: archiving paused (archive_command = ''), "pgbench -i"
# builds a backlog of 1 MiB segments (SCALE, default 2: about 30); then
# the command is set and the configuration reloaded while pgbench runs
# (-c 2, until the backlog is archived), and the time until the backlog's
# last segment is archived is measured.  The archiver works
# one segment at a time, so this is the per-segment cost of the command
# (for cmk-wal-archive: bash, cmkctl's start, the KEK's unwrap, sealing,
# fsync) under load.  Usage: postgres_archive_bench.sh [SCALE]
set -u
# shellcheck source=tests/storage/pg_lib.sh
. "$(dirname "$0")/pg_lib.sh"

scale=${1:-2}
bench_pid=
trap '[ -z "$bench_pid" ] || kill "$bench_pid" 2>/dev/null; pg_cleanup' EXIT
pg_init postgres-archive-bench || exit 1
P=55452
src=$pg_dir/src
as_pg mkdir "$pg_dir/cp" "$pg_dir/sealed"
pg_initdb "$src" $P && sysid=$(pg_sysid "$src") &&
	pg_conf "$src" "archive_mode = on" "archive_command = ''" && pg_start "$src" ||
	{ echo "setup failed"; exit 1; }

set_cmd() {
	sql $P "ALTER SYSTEM SET archive_command = '$1'" && sql $P "SELECT pg_reload_conf()" >/dev/null
}
now() { date +%s%N; }

# run NAME DIR SUFFIX COMMAND: prints "NAME: N segments in S s = R segments/s".
run() {
	local name=$1 dir=$2 suffix=$3 cmd=$4 last count t0 t1
	set_cmd '' || return 1
	pg_bench $P -i -s "$scale" -q >/dev/null 2>&1
	last=$(pg_switch $P)
	count=$(pg_ready "$src" | grep -c .)
	pg_bench $P -n -c 2 -j 1 -T 600 >/dev/null 2>&1 &
	bench_pid=$!
	t0=$(now)
	set_cmd "$cmd"
	until [ -f "$dir/$last$suffix" ]; do sleep 0.02; done
	t1=$(now)
	kill "$bench_pid"
	wait "$bench_pid"
	bench_pid=
	awk -v n="$name" -v c="$count" -v ns=$((t1 - t0)) \
		'BEGIN { printf "%-22s %3d segments in %6.2f s = %6.1f segments/s\n", n, c, ns / 1e9, c / (ns / 1e9) }'
}

echo "PostgreSQL archive throughput, 1 MiB segments, backlog of pgbench -i -s $scale, under pgbench -c 2, keys: ${PG_KEYARGS[0]}"
run "cp (baseline)" "$pg_dir/cp" "" "test ! -f $pg_dir/cp/%f && cp %p $pg_dir/cp/%f"
run "cmk-wal-archive" "$pg_dir/sealed" ".esdk" \
	"$PG_SCRIPTS/cmk-wal-archive ${PG_KEYARGS[*]} --cluster $sysid --archive $pg_dir/sealed %p %f"
pg_stop "$src"

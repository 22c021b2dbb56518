# shellcheck shell=bash
# SPDX-License-Identifier: GPL-2.0
#
# pg_lib.sh - PostgreSQL for the storage tests (sourced; sources lib.sh).
#
# Debian's postgresql-15 on the host, never the system cluster: every
# server runs as the postgres user from a data directory under $pg_dir
# (a private temporary directory), on a Unix socket in $pg_dir only
# (listen_addresses = ''), and is stopped by pg_cleanup (the caller's
# EXIT trap).  The KEK uses the local provider; its key file lives in
# $pg_dir, owned by postgres, so "cmkctl local-key disable" revokes it.
#
# The archive and restore commands are the scripts of scripts/pg; they
# are the one place that calls cmkctl.  PG_KEY_SOURCE picks their key
# source: "kek" (default: --kek, cmkctl unwraps the KEK itself) or
# "socket" (--socket: a cmk-agent --no-kernel holding the KEK serves
# its key socket to the postgres user; revocation reaches it through its
# CMK checks).  PG_KEYARGS holds the option for the scripts.

# shellcheck source=tests/storage/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_SCRIPTS=$top/scripts/pg
PG_KEY_SOURCE=${PG_KEY_SOURCE:-kek}
AGENT=${AGENT:-$top/agent/build/cmk-agent}
pg_dir=
pg_servers=()
pg_agent_pid=
pg_keydir=
pg_keyuser=
PG_KEYARGS=()

# as_pg CMD...: CMD as the postgres user, with PostgreSQL's programs first
# in PATH.
as_pg() {
	runuser -u postgres -- env PATH="$PG_BIN:$PATH" CMKCTL="$CMKCTL" \
		CMKCTL_CONFIG="$pg_dir/none.conf" "$@"
}

# pg_init NAME: $pg_dir, a KEK (local provider) and $KEK; 0 on success.
pg_init() {
	if [ ! -x "$PG_BIN/postgres" ] || ! id postgres >/dev/null 2>&1; then
		echo "# postgresql-15 missing: scripts/deps.sh installs it" >&2
		return 1
	fi
	if [ "$(id -u)" -ne 0 ]; then
		echo "# needs root: the servers run as the postgres user (runuser)" >&2
		return 1
	fi
	pg_dir=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX") || return 1
	chmod 700 "$pg_dir" && chown postgres: "$pg_dir" || return 1
	if ! as_pg test -w "$pg_dir"; then
		echo "# $pg_dir: not reachable by the postgres user (TMPDIR?)" >&2
		return 1
	fi
	# The KEK and the CMK's key file: the postgres user's with --kek; with
	# the agent, root's, in a directory of root's (cmk-agent checks the
	# owners of its configuration's path).
	pg_keydir=$pg_dir
	pg_keyuser=as_pg
	if [ "$PG_KEY_SOURCE" = socket ]; then
		pg_keydir=$(mktemp -d /tmp/pg-agent.XXXXXX) || return 1
		pg_keyuser=
		chmod 755 "$pg_keydir" || return 1
	fi
	KEK=$pg_keydir/kek.json
	$pg_keyuser "$CMKCTL" --config "$pg_dir/none.conf" local-key create "$pg_keydir/cmk.key" >/dev/null &&
		$pg_keyuser "$CMKCTL" --config "$pg_dir/none.conf" kek create --provider local \
			--key-ref "$pg_keydir/cmk.key" --out "$KEK" --context service=pg >/dev/null ||
		return 1
	case $PG_KEY_SOURCE in
	kek) PG_KEYARGS=(--kek "$KEK") ;;
	socket) pg_agent_start ;;
	*) echo "# PG_KEY_SOURCE=$PG_KEY_SOURCE: kek or socket" >&2; return 1 ;;
	esac
}

# pg_agent_start: cmk-agent --no-kernel (root) with the KEK, its key socket
# open to the postgres user only; 0 once it is active.
pg_agent_start() {
	local sock=$pg_keydir/run/keys.sock i
	[ -x "$AGENT" ] || { echo "# no $AGENT" >&2; return 1; }
	cat >"$pg_keydir/agent.conf" <<EOC
[agent]
kek_envelope = $KEK
check_interval_ms = 300
jitter_pct = 0
lease_ms = 600000
check_timeout_ms = 5000
grace_s = 600
audit_log = $pg_keydir/audit.log
syslog = no
state_dir = $pg_keydir/state
key_socket = $sock
key_socket_allow = user:postgres
key_socket_group = postgres
EOC
	setsid "$AGENT" --no-kernel --config "$pg_keydir/agent.conf" >"$pg_keydir/agent.out" 2>&1 &
	pg_agent_pid=$!
	for i in $(seq 300); do
		[ -S "$sock" ] && [ "$(pg_agent_state)" = active ] && break
		[ "$i" -lt 300 ] || { echo "# agent not active: $(tail -n 3 "$pg_keydir/agent.out")" >&2; return 1; }
		sleep 0.1
	done
	PG_KEYARGS=(--socket "$sock")
}

pg_agent_state() {
	python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["state"])' \
		"$pg_keydir/state/agent.json" 2>/dev/null
}

# pg_cmk enable|disable: the CMK's state (the local provider's
# revocation); with the agent, also wait until its CMK check saw it.
pg_cmk() {
	local want=active
	$pg_keyuser "$CMKCTL" --config "$pg_dir/none.conf" local-key "$1" "$pg_keydir/cmk.key" >/dev/null ||
		return 1
	[ "$PG_KEY_SOURCE" = socket ] || return 0
	[ "$1" = enable ] || want=revoked
	pg_wait 120 pg_agent_is "$want"
}

pg_agent_is() { [ "$(pg_agent_state)" = "$1" ]; }

# pg_cleanup: stop every server started, remove $pg_dir (PG_KEEP=1 keeps
# it, with the logs, for a look after a failure).
pg_cleanup() {
	local d
	for d in "${pg_servers[@]}"; do
		if [ -f "$d/postmaster.pid" ]; then
			as_pg pg_ctl -D "$d" -m immediate -w stop >/dev/null 2>&1
		fi
	done
	if [ -n "$pg_agent_pid" ]; then
		kill "$pg_agent_pid" 2>/dev/null
		wait "$pg_agent_pid" 2>/dev/null
	fi
	[ -z "${PG_KEEP:-}" ] || { echo "# kept $pg_dir $pg_keydir"; return; }
	[ -z "$pg_keydir" ] || [ "$pg_keydir" = "$pg_dir" ] || rm -rf "$pg_keydir"
	[ -z "$pg_dir" ] || rm -rf "$pg_dir"
}

# pg_initdb DATADIR PORT: a new cluster with 1 MiB WAL segments (many
# segments from a small load), listening on $pg_dir/.s.PGSQL.PORT only.
pg_initdb() {
	as_pg initdb -D "$1" --wal-segsize=1 -A trust -U postgres --no-sync >"$1.initdb.log" 2>&1 ||
		return 1
	pg_conf "$1" "port = $2" "unix_socket_directories = '$pg_dir'" \
		"listen_addresses = ''" "wal_level = replica" "max_wal_size = 64MB" \
		"fsync = off" "logging_collector = off"
}

# pg_conf DATADIR LINE...: append settings (the last one wins).
pg_conf() {
	local d=$1
	shift
	printf '%s\n' "$@" >>"$d/postgresql.conf"
}

# pg_archive_conf DATADIR ARCHIVE SYSID: archive_mode on with
# cmk-wal-archive into ARCHIVE.
pg_archive_conf() {
	pg_conf "$1" "archive_mode = on" \
		"archive_command = '$PG_SCRIPTS/cmk-wal-archive ${PG_KEYARGS[*]} --cluster $3 --archive $2 %p %f'"
}

# pg_restore_conf DATADIR ARCHIVE SYSID: restore_command with
# cmk-wal-restore from ARCHIVE.
pg_restore_conf() {
	pg_conf "$1" "restore_command = '$PG_SCRIPTS/cmk-wal-restore ${PG_KEYARGS[*]} --cluster $3 --archive $2 %f %p'"
}

# pg_start DATADIR: start (log in DATADIR.log); 0 once it accepts
# connections.
pg_start() {
	pg_servers+=("$1")
	as_pg pg_ctl -D "$1" -l "$1.log" -w -t 180 start >/dev/null
}

pg_stop() {
	as_pg pg_ctl -D "$1" -m fast -w -t 180 stop >/dev/null
}

# pg_sysid DATADIR: the database system identifier.
pg_sysid() {
	as_pg pg_controldata -D "$1" | sed -n 's/^Database system identifier: *//p'
}

# sql PORT QUERY: one value, unaligned.
sql() {
	as_pg psql -h "$pg_dir" -p "$1" -X -A -t -q -v ON_ERROR_STOP=1 -d postgres -c "$2"
}

# pgbench PORT ARGS...
pg_bench() {
	local port=$1
	shift
	as_pg pgbench -h "$pg_dir" -p "$port" "$@" postgres
}

# pg_checksum PORT: md5 over the four pgbench tables, every row in a fixed
# order (history has no key: ordered by the whole row).
pg_checksum() {
	sql "$1" "SELECT md5(
	    (SELECT string_agg(a::text, '|' ORDER BY aid) FROM pgbench_accounts a) ||
	    (SELECT string_agg(b::text, '|' ORDER BY bid) FROM pgbench_branches b) ||
	    (SELECT string_agg(t::text, '|' ORDER BY tid) FROM pgbench_tellers t) ||
	    coalesce((SELECT string_agg(h::text, '|' ORDER BY h::text) FROM pgbench_history h), ''))"
}

# pg_wait SECONDS CMD...: poll CMD every half second until it succeeds;
# 1 when the deadline passes.
pg_wait() {
	local pg_wait_deadline=$(($(date +%s) + $1))
	shift
	until "$@"; do
		[ "$(date +%s)" -lt "$pg_wait_deadline" ] || return 1
		sleep 0.5
	done
}

# pg_archived ARCHIVE NAME: NAME is in the archive.
pg_archived() {
	[ -f "$1/$2.esdk" ]
}

# pg_switch PORT: write something, switch to a new segment; prints the
# name of the segment switched out (the last one that must be archived).
pg_switch() {
	sql "$1" "SET client_min_messages = warning; CREATE TABLE IF NOT EXISTS cmk_tick (t timestamptz); INSERT INTO cmk_tick VALUES (now())" &&
		sql "$1" "SELECT pg_walfile_name(pg_switch_wal())"
}

# pg_ready DATADIR: segments waiting for archive_command (".ready").
pg_ready() {
	find "$1/pg_wal/archive_status" -name '*.ready' -printf '%f\n' | sed 's/\.ready$//' | sort
}

# pg_archive_gaps ARCHIVE: the segments of timeline 1 missing between the
# first and the last archived one (1 MiB segments: 4096 per "xlogid");
# prints "first last count" on stdout and each missing name on stderr;
# 0 if none is missing and there is at least one.
pg_archive_gaps() {
	local names n s want='' first='' last='' count=0 gaps=0
	names=$(find "$1" -maxdepth 1 -name '00000001????????????????.esdk' -printf '%f\n' |
		sed 's/\.esdk$//' | sort)
	for n in $names; do
		s=$((16#${n:8:8} * 4096 + 16#${n:16:8}))
		[ -n "$first" ] || { first=$n; want=$s; }
		while [ "$want" -lt "$s" ]; do
			printf 'missing %08X%08X%08X\n' 1 $((want / 4096)) $((want % 4096)) >&2
			want=$((want + 1))
			gaps=$((gaps + 1))
		done
		want=$((s + 1))
		last=$n
		count=$((count + 1))
	done
	echo "$first $last $count"
	[ "$gaps" -eq 0 ] && [ "$count" -gt 0 ]
}

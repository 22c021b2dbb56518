#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The boot test's database, set up once by the user-data (tests/boot,
# first boot), as an operator would (Documentation/deployment.rst and
# storage.rst): Debian's PostgreSQL 15 with
#   - its data directory on the persistent dm-cmk device "pgdata"
#     (/dev/vdd, formatted here with cmkctl format, mounted on
#     /var/lib/pgdata by cmk-ephemeral@pgdata),
#   - temp_tablespaces on the ephemeral device "scratch" (/var/lib/cmktest,
#     a new key and file system every boot: the unit's drop-in runs the
#     package's cmk-pg-temp-tablespace before each start),
#   - every WAL segment sealed by the package's cmk-wal-archive through
#     the agent's key socket into /var/lib/cmk-boot-test/wal-archive.
# Output in /var/log/cmk-boot-test/pgsetup.log, "RC SECONDS" in
# pgsetup.result (check.sh reads both).
set -u
log=/var/log/cmk-boot-test
mkdir -p "$log"
t0=$(date +%s)
exec >"$log/pgsetup.log" 2>&1
set -x

PGDATA=/var/lib/pgdata/15-main
TEMP=/var/lib/cmktest/pgtemp
ARCHIVE=/var/lib/cmk-boot-test/wal-archive
BIN=/usr/lib/postgresql/15/bin

setup() {
	local out uuid sysid
	# The persistent device, as an operator adds one.
	out=$(cmkctl format --kek /etc/cmk/kek.json --mode persistent --sector-size 4096 /dev/vdd) ||
		return 1
	uuid=$(sed -n 's/^uuid = //p' <<<"$out")
	[ -n "$uuid" ] || return 1
	printf '\n[device "pgdata"]\nbacking = /dev/vdd\nmode = persistent\nsector_size = 4096\nuuid = %s\n' \
		"$uuid" >>/etc/cmk/agent.conf
	systemctl restart cmk-agent.service &&
		systemctl start cmk-ephemeral@scratch.service cmk-ephemeral@pgdata.service || return 1

	# The cluster: 1 MiB WAL segments (a small load fills some).
	pg_createcluster --datadir "$PGDATA" --locale C.UTF-8 15 main -- --wal-segsize=1 || return 1
	sysid=$("$BIN/pg_controldata" -D "$PGDATA" | sed -n 's/^Database system identifier: *//p')
	[ -n "$sysid" ] || return 1
	install -d -o postgres -g postgres -m 0700 "$ARCHIVE" || return 1
	cat >/etc/postgresql/15/main/conf.d/cmk.conf <<EOF
listen_addresses = ''
archive_mode = on
archive_command = '/usr/libexec/dm-cmk/pg/cmk-wal-archive --socket /run/cmk/keys.sock --cluster $sysid --archive $ARCHIVE %p %f'
temp_tablespaces = 'ephemeral_temp'
EOF
	systemctl start postgresql@15-main.service || return 1
	install -d -o postgres -g postgres -m 0700 "$TEMP" || return 1
	runuser -u postgres -- psql -X -v ON_ERROR_STOP=1 -c "CREATE TABLESPACE ephemeral_temp LOCATION '$TEMP'" \
		-c "CREATE TABLE cmk_data AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 50000) g" \
		-c "CHECKPOINT" || return 1
	systemctl enable postgresql@15-main.service
}
setup
rc=$?
echo "$rc $(($(date +%s) - t0))" >"$log/pgsetup.result"
exit "$rc"

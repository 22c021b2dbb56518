#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The boot test's checks inside the Debian guest (tests/boot/run.sh boots
# the same image three times; cmk_test.phase= on the kernel command line
# says which boot this is).  Results go to ttyS1, one line each:
# "ok NAME", "not ok NAME" and "# ..." diagnostics (the host numbers them);
# "phase-done" last.  Then the guest powers off.
#
#   1 first boot: cloud-init ran our hook, which installed the packages
#     with apt (offline), DKMS built the module, the package enabled and
#     started cmk-agent; cmk-agent runs under its hardening; the disk is dm-cmk with ext4 mounted;
#     what it writes is ciphertext on the backing disk; PostgreSQL runs on
#     the persistent (data) and ephemeral (temp tablespace) dm-cmk
#     devices and archives sealed WAL.
#   2 second boot: a new header (boot id, sequence) and so a new DEK; the
#     first boot's data is gone, PostgreSQL's table is not; then the host
#     denies kms:Decrypt while we run: the agent wipes the keys, archiving
#     fails, PostgreSQL stops.
#   3 third boot, the deny still in place: the agent fails, the disks stay
#     closed, the database never starts.
#   4 fourth boot, the deny lifted: the database's table as boot 1 wrote
#     it, archiving again; the packages' life cycle with an
#     ephemeral and a persistent device open - upgrade (VERSION+test1:
#     the old agent keeps running, then restarted by hand), apt remove
#     refused (a busy mount: the stopped units start again; then an agent
#     that policy-rc.d keeps running), apt remove of running units,
#     install again, an upgrade over a stopped agent, apt purge.
# Oracles: the kernel (dmsetup table, cmkctl status = netlink GET, reads
# that fail with EIO), the raw backing disk, systemd's unit states, moto,
# dpkg's and DKMS's records and the file system.
set -u

exec 3>/dev/ttyS1
arg() { tr ' ' '\n' </proc/cmdline | sed -n "s/^cmk_test\.$1=//p"; }
phase=$(arg phase)
marker=$(arg marker)
DM=cmk-scratch
DEV=/dev/mapper/$DM
BACKING=/dev/vdb
PERS=/dev/vdd
PMNT=/var/lib/pgdata
DEBS=/var/cache/cmk-boot-test/debs
ALOG=/var/log/cmk-boot-test
MNT=/var/lib/cmktest
KEEP=/var/lib/cmk-boot-test
CTL=10.0.2.100/8081
# The database (tests/boot/guest/pgsetup.sh set it up in boot 1).
PGUNIT=postgresql@15-main.service
PGDATA=$PMNT/15-main
PGTEMP=$MNT/pgtemp
PGLOG=/var/log/postgresql/postgresql-15-main.log
ARCHIVE=$KEEP/wal-archive
PGLIB=/usr/libexec/dm-cmk/pg
SOCK=/run/cmk/keys.sock
mkdir -p "$KEEP"

ok() { echo "ok $1" >&3; }
diag() { printf '%s\n' "$@" | sed 's/^/# /' >&3; }
not_ok() {
	echo "not ok $1" >&3
	shift
	[ $# -eq 0 ] || diag "$@"
}
# check NAME CMD...: ok if CMD succeeds, else not ok with its output.
check() {
	local name=$1 out
	shift
	if out=$("$@" 2>&1); then
		ok "$name"
	else
		not_ok "$name" "failed: $(echo "$*" | tr -s ' \t\n' ' ' | cut -c1-300)" "$(printf '%s\n' "$out" | tail -n 8)"
	fi
}
# wait_until SECONDS CMD...: poll until CMD succeeds.
wait_until() {
	local t=$1 i
	shift
	for ((i = 0; i < t * 2; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.5
	done
	return 1
}
unit_settled() {  # no job queued or running for it: active, failed or inactive
	case $(systemctl is-active "$1") in
	activating|deactivating|reloading) return 1 ;;
	esac
	! systemctl list-jobs --no-legend 2>/dev/null | awk '{ print $2 }' | grep -qxF "$1"
}
key_state() {
	cmkctl status 2>/dev/null | awk -v d="$DM" '$2 == d { print $3; exit }'
}
# ctl ACTION: ask the host (tests/boot/run.sh's control server) to act.
# The server answers once the action is done; only its status line is
# read (the guestfwd pipe may not pass the server's close on).
ctl() {
	local line
	exec 4<>"/dev/tcp/${CTL%/*}/${CTL#*/}" || return 1
	printf 'GET /%s HTTP/1.0\r\nHost: host\r\n\r\n' "$1" >&4
	IFS= read -r -t 150 line <&4
	exec 4<&-
	[[ $line == "HTTP/1."?" 200"* ]] || { echo "control server: ${line:-no answer}"; return 1; }
}
# count_marker FILE: how many times the marker is in FILE (a device).
count_marker() {
	dd if="$1" bs=1M iflag=direct status=none 2>/dev/null | grep -a -c "CMKMARK-$marker" || true
}
header_field() {  # the header's FIELD (the copy in use) from "cmkctl header dump"
	cmkctl header dump "$BACKING" 2>/dev/null | awk -v f="$1" '$1 == f { print $2; exit }'
}
# apt_result LABEL: "RC SECONDS" of tests/boot/guest/apt.sh LABEL.
apt_result() { cat "$ALOG/$1.result" 2>/dev/null || echo "none -"; }
# apt_ok LABEL: that apt run exited 0; else its log's tail.
apt_ok() {
	read -r rc secs < <(apt_result "$1")
	diag "apt $1: exit $rc, $secs s"
	[ "$rc" = 0 ] || { tail -n 15 "$ALOG/$1.log"; return 1; }
}
# psql_ ARGS...: psql as postgres, one value a line, unaligned.
psql_() { timeout 120 runuser -u postgres -- psql -X -A -t -q -v ON_ERROR_STOP=1 "$@"; }
pg_sysid() {
	/usr/lib/postgresql/15/bin/pg_controldata -D "$PGDATA" 2>/dev/null |
		sed -n 's/^Database system identifier: *//p'
}
# pg_sum: md5 over every row of the table pgsetup.sh made, in order.
pg_sum() { psql_ -c "SELECT md5(string_agg(id || ':' || v, ',' ORDER BY id)) FROM cmk_data"; }
# pg_spill: a sort with work_mem far below its input spills to temp
# files; while the cursor is open they exist: list every temp file
# under both mounts, as the file system has them ("tempfile PATH SIZE").
pg_spill() {
	timeout 300 runuser -u postgres -- psql -X -A -t -q -v ON_ERROR_STOP=1 <<EOF
SET work_mem = '64kB';
BEGIN;
DECLARE c CURSOR FOR SELECT g FROM generate_series(1, 200000) g ORDER BY g DESC;
FETCH 1 FROM c;
\\! find $PGTEMP $PMNT -name 'pgsql_tmp*' -type f -printf 'tempfile %p %s\\n'
COMMIT;
EOF
}
# pg_archive_one TAG: a row with TAG written and its segment switched
# out; prints the segment's name once its sealed object is in the
# archive (cmk-wal-archive, archive_command), 1 after 300 s.
pg_archive_one() {
	local seg
	seg=$(psql_ -c "CREATE TABLE IF NOT EXISTS cmk_wal_marker (t text)" \
		-c "INSERT INTO cmk_wal_marker VALUES ('$1')" \
		-c "SELECT pg_walfile_name(pg_switch_wal())") || return 1
	wait_until 300 test -f "$ARCHIVE/$seg.esdk" || return 1
	echo "$seg"
}
pg_diag() {
	diag "postgresql: $(systemctl is-active $PGUNIT), log tail:" \
		"$(tail -n 12 "$PGLOG" 2>&1)"
}
pkg_version() { dpkg-query -W -f='${db:Status-Abbrev}${Version}' "$1" 2>/dev/null; }
finish() {
	diag "units: $(systemctl is-active cmk-agent.service cmk-ephemeral@scratch.service $PGUNIT | tr '\n' ' ')"
	diag "$(cmkctl status 2>&1)"
	diag "$(journalctl -b -u cmk-agent.service -u cmk-ephemeral@scratch.service \
		-u $PGUNIT --no-pager -o cat 2>&1 | tail -n 25)"
	# The agent's first start, where a boot goes wrong first.
	diag "first agent lines: $(journalctl -b -u cmk-agent.service --no-pager -o cat 2>&1 | head -n 12)"
	diag "dm: $(dmsetup info -c 2>&1 | tail -n +2 | tr '\n' ';')"
	echo "phase-done" >&3
	sync
	systemctl poweroff --no-block
}
trap finish EXIT

# ---- boot 4: the packages' life cycle -------------------------------------------------
# cmkctl, or its copy once the package is gone.
CMKCTL=cmkctl
cmk_tables() { dmsetup table --target cmk 2>/dev/null | grep -v '^No devices found'; }
deb_phase4() {
	local ver kv pid0 pid1 tdb0 sha0 sha1 uuid sum seg
	ver=$(basename "$DEBS"/v1/dm-cmk-dkms_*_all.deb | cut -d_ -f2)
	kv=$(uname -r)
	wait_until 300 unit_settled $PGUNIT
	wait_until 60 unit_settled cmk-ephemeral@scratch.service
	check deb4_agent_up_after_deny_lifted bash -c "
		systemctl is-active cmk-agent.service && [ \"\$(cmkctl status | awk -v d=$DM '\$2 == d { print \$3 }')\" = active ]"
	# The deny lifted: the database starts again on its persistent
	# device (crash recovery after boot 2's stop) with every row boot 1
	# wrote, and archives again.
	sum=$(pg_sum 2>&1)
	check boot4_postgres_data_intact_after_revocation bash -c "
		systemctl is-active $PGUNIT && [ -n '$sum' ] && [ '$sum' = \"\$(cat $KEEP/pg.sum)\" ]"
	diag "table checksum after the revocation: $sum (boot 1: $(cat "$KEEP/pg.sum" 2>&1))"
	if seg=$(pg_archive_one "CMKWAL-$marker-4"); then
		ok boot4_postgres_archiving_resumes_after_revocation
		diag "archived sealed: $seg"
	else
		not_ok boot4_postgres_archiving_resumes_after_revocation
		pg_diag
	fi
	# The persistent device boot 1 formatted (pgsetup.sh) holds the
	# database; a file of our own next to it.
	uuid=$(sed -n '/^\[device "pgdata"\]/,/^\[/s/^uuid = //p' /etc/cmk/agent.conf)
	check deb4_persistent_device_set_up bash -c "
		[ -n '$uuid' ] &&
		[ \"\$(findmnt -rn -o SOURCE --mountpoint $PMNT)\" = /dev/mapper/cmk-pgdata ] &&
		head -c 4M /dev/urandom >$PMNT/data && echo scratch-$marker >$MNT/upgrade-marker && sync"
	sha0=$(sha256sum "$PMNT/data" | cut -d' ' -f1)
	diag "persistent device uuid $uuid, data sha256 $sha0"

	# Upgrade: the same tree as VERSION+test1.  The agent is not
	# restarted (a restarted agent renews no lease until its unseal
	# succeeds): the old one keeps running from its replaced binary and
	# the postinst says how to restart it; DKMS builds the new module
	# source.
	pid0=$(systemctl show -p MainPID --value cmk-agent.service)
	tdb0=$(systemctl show -p MainPID --value $PGUNIT)
	/usr/lib/cmk-boot-test/apt.sh upgrade install "$DEBS"/v2/*.deb
	pid1=$(systemctl show -p MainPID --value cmk-agent.service)
	check deb4_upgrade_installs_newer_version bash -c "
		$(declare -f apt_ok apt_result diag); ALOG=$ALOG
		apt_ok upgrade &&
		[ \"\$(dpkg-query -W -f='\${db:Status-Abbrev}\${Version}' cmk-agent)\" = 'ii $ver+test1' ] &&
		[ \"\$(dpkg-query -W -f='\${db:Status-Abbrev}\${Version}' dm-cmk-dkms)\" = 'ii $ver+test1' ]"
	diag "apt upgrade (with the DKMS build under TCG): $(apt_result upgrade | cut -d' ' -f2) s"
	check deb4_upgrade_dkms_rebuilds_module bash -c "
		dkms status -m dm-cmk -v $ver+test1 -k $kv | grep -q ': installed' &&
		! dkms status -m dm-cmk -v $ver | grep -q . &&
		[ ! -e /usr/src/dm-cmk-$ver ] &&
		[ \"\$(modinfo -n dm-cmk)\" = /lib/modules/$kv/updates/dkms/dm-cmk.ko ]"
	check deb4_upgrade_no_restart_keeps_keys_and_data bash -c "
		systemctl is-active cmk-agent.service &&
		[ '$pid1' -gt 0 ] && [ '$pid1' = '$pid0' ] &&
		readlink /proc/$pid1/exe | grep -q deleted &&
		grep -q 'cmkctl check-now && systemctl restart cmk-agent.service' $ALOG/upgrade.log &&
		[ \"\$(cmkctl status | awk '\$2 == \"$DM\" { print \$3 }')\" = active ] &&
		[ \"\$(cmkctl status | awk '\$2 == \"cmk-pgdata\" { print \$3 }')\" = active ] &&
		[ \"\$(cat $MNT/upgrade-marker)\" = scratch-$marker ] &&
		[ \"\$(systemctl show -p MainPID --value $PGUNIT)\" = '$tdb0' ] &&
		[ \"\$(sha256sum $PMNT/data | cut -d' ' -f1)\" = $sha0 ]"
	diag "agent pid $pid0 -> $pid1; $(cmkctl status 2>&1 | head -n 4 | tr '\n' ';')"
	# What the postinst says to do: the new agent takes over the keys.
	cmkctl check-now >/dev/null 2>&1 && systemctl restart cmk-agent.service
	pid1=$(systemctl show -p MainPID --value cmk-agent.service)
	check deb4_upgrade_restart_by_hand_keeps_keys_and_data bash -c "
		systemctl is-active cmk-agent.service &&
		[ '$pid1' -gt 0 ] && [ '$pid1' != '$pid0' ] &&
		! readlink /proc/$pid1/exe | grep -q deleted &&
		[ \"\$(cmkctl status | awk '\$2 == \"$DM\" { print \$3 }')\" = active ] &&
		[ \"\$(cmkctl status | awk '\$2 == \"cmk-pgdata\" { print \$3 }')\" = active ] &&
		[ \"\$(systemctl show -p MainPID --value $PGUNIT)\" = '$tdb0' ] &&
		[ \"\$(sha256sum $PMNT/data | cut -d' ' -f1)\" = $sha0 ]"

	# apt remove while the persistent file system cannot be unmounted (a
	# process has its cwd there): the removal fails naming the device and
	# the mount point, nothing is wiped - after longer than the lease
	# (15 s) the key is still active, the agent runs and the data reads
	# back from the disk (O_DIRECT), the package stays installed.
	(cd "$PMNT" && exec sleep 600) &
	holder=$!
	/usr/lib/cmk-boot-test/apt.sh remove-busy remove cmk-agent
	sleep 20
	check deb4_remove_busy_mount_refused_keeps_key bash -c "
		read -r rc _ <$ALOG/remove-busy.result && [ \"\$rc\" != 0 ] &&
		grep -q 'not removed' $ALOG/remove-busy.log &&
		grep -q '/dev/mapper/cmk-pgdata is mounted on $PMNT' $ALOG/remove-busy.log &&
		[ \"\$(dpkg-query -W -f='\${db:Status-Abbrev}' cmk-agent)\" = 'ii ' ] &&
		systemctl is-active cmk-agent.service &&
		[ \"\$(cmkctl status | awk '\$2 == \"cmk-pgdata\" { print \$3 }')\" = active ] &&
		[ \"\$(dd if=$PMNT/data bs=1M iflag=direct status=none | sha256sum | cut -d' ' -f1)\" = $sha0 ]"
	diag "busy remove: $(grep -E 'cmk-agent|prerm' "$ALOG/remove-busy.log" | head -n 6 | tr '\n' ';')"
	# The refused removal started again what it had stopped: the
	# instances and the database bound to scratch.
	check deb4_remove_busy_restarts_stopped_units bash -c "
		grep -q 'started again what the removal had stopped:' $ALOG/remove-busy.log &&
		systemctl is-active cmk-ephemeral@scratch.service cmk-ephemeral@pgdata.service $PGUNIT &&
		mountpoint -q $MNT && mountpoint -q $PMNT"
	kill "$holder" 2>/dev/null
	wait "$holder" 2>/dev/null

	# apt remove while policy-rc.d denies stopping the agent: it would
	# open again what is closed, so the removal fails and nothing is
	# wiped (checked after longer than the lease).
	printf '#!/bin/sh\ncase $1 in cmk-agent*) exit 101 ;; esac\nexit 0\n' >/usr/sbin/policy-rc.d
	chmod 0755 /usr/sbin/policy-rc.d
	/usr/lib/cmk-boot-test/apt.sh remove-policy remove cmk-agent
	rm -f /usr/sbin/policy-rc.d
	sleep 20
	check deb4_remove_surviving_agent_refused_keeps_keys bash -c "
		read -r rc _ <$ALOG/remove-policy.result && [ \"\$rc\" != 0 ] &&
		grep -q 'cmk-agent is still running' $ALOG/remove-policy.log &&
		[ \"\$(dpkg-query -W -f='\${db:Status-Abbrev}' cmk-agent)\" = 'ii ' ] &&
		systemctl is-active cmk-agent.service &&
		[ \"\$(cmkctl status | awk '\$2 == \"$DM\" { print \$3 }')\" = active ] &&
		[ \"\$(cmkctl status | awk '\$2 == \"cmk-pgdata\" { print \$3 }')\" = active ]"

	# apt remove: units stopped, keys wiped, devices closed; the kernel's
	# view through a copy of cmkctl (the package's is gone).  First the
	# units are up and mounted, so that the removal is what stops them.
	systemctl start cmk-ephemeral@scratch.service cmk-ephemeral@pgdata.service $PGUNIT
	check deb4_units_up_before_remove bash -c "
		systemctl is-active cmk-agent.service cmk-ephemeral@scratch.service \
			cmk-ephemeral@pgdata.service $PGUNIT &&
		[ \"\$(findmnt -rn -o SOURCE --mountpoint $MNT)\" = $DEV ] &&
		[ \"\$(findmnt -rn -o SOURCE --mountpoint $PMNT)\" = /dev/mapper/cmk-pgdata ]"
	cp /usr/sbin/cmkctl /usr/lib/cmk-boot-test/cmkctl
	CMKCTL=/usr/lib/cmk-boot-test/cmkctl
	/usr/lib/cmk-boot-test/apt.sh remove remove cmk-agent
	check deb4_remove_stops_units bash -c "
		$(declare -f apt_ok apt_result diag); ALOG=$ALOG
		apt_ok remove &&
		[ \"\$(dpkg-query -W -f='\${db:Status-Abbrev}' cmk-agent)\" = 'rc ' ] &&
		! systemctl is-active cmk-agent.service cmk-ephemeral@scratch.service \
			cmk-ephemeral@pgdata.service $PGUNIT &&
		! mountpoint -q $MNT && ! mountpoint -q $PMNT"
	# No key left active, and none that only its lease took away (the
	# test's lease is 15 s: apt remove alone can take longer than that).
	check deb4_remove_wipes_keys bash -c "
		! $CMKCTL status | awk '\$3 == \"active\" || /lease_expired/ { f = 1 } END { exit !f }'"
	check deb4_remove_closes_devices bash -c "
		[ -z \"\$($(declare -f cmk_tables); cmk_tables)\" ] &&
		[ ! -e $DEV ] && [ ! -e /dev/mapper/cmk-pgdata ]"
	diag "after remove: $($CMKCTL status 2>&1 | head -n 4 | tr '\n' ';') dm: $(dmsetup ls 2>&1 | tr '\n' ';')"
	check deb4_remove_keeps_conffiles_and_state bash -c "
		[ -f /etc/cmk/agent.conf.example ] && [ -f /etc/cmk/agent.conf ] && [ -f /etc/cmk/kek.json ] &&
		[ -d /var/lib/cmk/pins ] && [ -d /var/log/cmk ] &&
		dpkg-query -W -f='\${db:Status-Abbrev}' dm-cmk-dkms | grep -q '^ii'"

	# Installed again: the persistent device opens with its data.
	/usr/lib/cmk-boot-test/apt.sh reinstall install "$DEBS"/v2/cmk-agent_*.deb
	wait_until 120 bash -c "[ \"\$(cmkctl status | awk '\$2 == \"cmk-pgdata\" { print \$3 }')\" = active ]"
	systemctl start cmk-ephemeral@pgdata.service >/dev/null 2>&1
	sha1=$(sha256sum "$PMNT/data" 2>/dev/null | cut -d' ' -f1)
	check deb4_reinstall_persistent_data_intact bash -c "
		$(declare -f apt_ok apt_result diag); ALOG=$ALOG
		apt_ok reinstall && systemctl is-active cmk-agent.service &&
		[ \"\$(findmnt -rn -o SOURCE --mountpoint $PMNT)\" = /dev/mapper/cmk-pgdata ] &&
		[ '$sha1' = '$sha0' ]"
	diag "persistent data after remove and install: sha256 ${sha1:-(none)}"

	# An upgrade (the same version again: postinst configure VERSION)
	# does not start an agent the operator stopped.
	systemctl stop $PGUNIT cmk-ephemeral@scratch.service cmk-ephemeral@pgdata.service \
		cmk-agent.service >/dev/null 2>&1
	/usr/lib/cmk-boot-test/apt.sh upgrade-stopped install --reinstall "$DEBS"/v2/cmk-agent_*.deb
	check deb4_upgrade_leaves_stopped_agent_stopped bash -c "
		$(declare -f apt_ok apt_result diag); ALOG=$ALOG
		apt_ok upgrade-stopped && ! systemctl is-active cmk-agent.service &&
		[ \"\$(systemctl show -p MainPID --value cmk-agent.service)\" = 0 ]"

	# apt purge: conffiles, state and the module gone; the operator's
	# files in /etc/cmk and the disk's header stay.
	/usr/lib/cmk-boot-test/apt.sh purge purge cmk-agent dm-cmk-dkms
	check deb4_purge_removes_conffiles_and_state bash -c "
		$(declare -f apt_ok apt_result diag); ALOG=$ALOG
		apt_ok purge &&
		! dpkg-query -W -f='\${db:Status-Abbrev}' cmk-agent dm-cmk-dkms 2>/dev/null | grep -q '[a-z]' &&
		[ ! -e /etc/cmk/agent.conf.example ] &&
		[ ! -e /var/lib/cmk ] && [ ! -e /var/log/cmk ] && [ ! -e /run/cmk ] &&
		[ ! -e /usr/sbin/cmk-agent ] && [ ! -e /lib/systemd/system/cmk-agent.service ] &&
		[ ! -e /etc/systemd/system/multi-user.target.wants/cmk-agent.service ]"
	check deb4_purge_removes_module_source_and_builds bash -c "
		! ls -d /usr/src/dm-cmk-* 2>/dev/null && [ ! -e /var/lib/dkms/dm-cmk ] &&
		[ -z \"\$(find /lib/modules -name 'dm-cmk.ko*')\" ]"
	check deb4_purge_keeps_operator_files_and_header bash -c "
		[ -f /etc/cmk/agent.conf ] && [ -f /etc/cmk/kek.json ] && [ -f /etc/cmk/ephemeral/pgdata.conf ] &&
		$CMKCTL header dump $PERS | grep -q persistent &&
		[ -z \"\$($(declare -f cmk_tables); cmk_tables)\" ]"
	diag "after purge, /etc/cmk: $(find /etc/cmk | tr '\n' ' ')"
}

diag "phase $phase, boot id $(cat /proc/sys/kernel/random/boot_id), $(cut -d' ' -f1 /proc/uptime) s after boot"
# cloud-final comes after multi-user.target; its runcmd starts the
# database (first boot), which pulls the disk and the agent in.
# Later boots do not depend on cloud-init (the units are enabled).
if [ "$phase" = 1 ]; then
	wait_until 900 unit_settled cloud-final.service
	cistatus=$(cloud-init status 2>&1)
	diag "cloud-init: $cistatus, cloud-final $(systemctl is-active cloud-final.service), $(cut -d' ' -f1 /proc/uptime) s after boot"
	[[ $cistatus == *done* ]] || diag "$(cloud-init status --long 2>&1 | tail -n 8)"
fi

case $phase in
1|2)
	wait_until 300 unit_settled $PGUNIT
	wait_until 60 unit_settled cmk-ephemeral@scratch.service
	if [ "$phase" = 1 ]; then
		# write_files and runcmd of our user-data: only cloud-init made
		# these (the image has no /etc/cmk and the units are disabled).
		check boot1_cloud_init_ran_our_hook bash -c "
			[[ '$cistatus' == *done* ]] &&
			[ -s /etc/cmk/agent.conf ] && [ -s /etc/cmk/kek.json ] &&
			[ \"\$(stat -c %a /etc/cmk/agent.conf)\" = 600 ] &&
			[ -s /etc/cmk/ephemeral/scratch.conf ] &&
			[ -f /etc/systemd/system/$PGUNIT.d/cmk.conf ] &&
			systemctl is-enabled cmk-agent.service &&
			systemctl is-enabled cmk-ephemeral@scratch.service"
		# The packages, installed by the user-data's apt install.
		ver=$(basename "$DEBS"/v1/dm-cmk-dkms_*_all.deb | cut -d_ -f2)
		kv=$(uname -r)
		check deb1_apt_installs_packages_offline bash -c "
			$(declare -f apt_ok apt_result diag); ALOG=$ALOG
			apt_ok install-v1 &&
			[ \"\$(dpkg-query -W -f='\${db:Status-Abbrev}\${Version}' cmk-agent)\" = 'ii $ver' ] &&
			[ \"\$(dpkg-query -W -f='\${db:Status-Abbrev}\${Version}' dm-cmk-dkms)\" = 'ii $ver' ]"
		diag "apt install (v1, with the DKMS build under TCG): $(apt_result install-v1 | cut -d' ' -f2) s"
		diag "$(grep -iE 'dkms|building|installing' "$ALOG/install-v1.log" | head -n 8)"
		# Built by DKMS for this kernel, and the module the agent loaded.
		check deb1_dkms_builds_module_for_running_kernel bash -c "
			dkms status -m dm-cmk -v $ver -k $kv | grep -q ': installed' &&
			[ \"\$(modinfo -n dm-cmk)\" = /lib/modules/$kv/updates/dkms/dm-cmk.ko ] &&
			[ \"\$(modinfo -F vermagic dm-cmk | cut -d' ' -f1)\" = $kv ] &&
			grep -q '^dm_cmk ' /proc/modules"
		# The package enabled the unit (deb-systemd-helper, through
		# systemctl preset on a first install): the user-data does not.
		check deb1_package_enables_and_starts_agent bash -c "
			[ \"\$(systemctl is-enabled cmk-agent.service)\" = enabled ] &&
			[ -e /var/lib/systemd/deb-systemd-helper-enabled/cmk-agent.service.dsh-also ] &&
			grep -q 'cmk-agent' $ALOG/install-v1.log"
		check deb1_package_files_conffile_man_modes bash -c "
			dpkg-query -W -f='\${Conffiles}' cmk-agent | grep -q '^ /etc/cmk/agent.conf.example ' &&
			grep -q '^#\[agent\]' /etc/cmk/agent.conf.example &&
			! dpkg -S /etc/cmk/agent.conf 2>/dev/null &&
			[ -s /usr/share/man/man8/cmk-agent.8.gz ] && [ -s /usr/share/man/man8/cmkctl.8.gz ] &&
			[ -x /usr/sbin/cmk-agent ] && [ -x /usr/sbin/cmkctl ] &&
			[ -x /usr/libexec/dm-cmk/cmk-ephemeral ] &&
			[ -x $PGLIB/cmk-wal-archive ] && [ -x $PGLIB/cmk-wal-restore ] &&
			[ -x $PGLIB/cmk-pg-temp-tablespace ] && [ -f $PGLIB/cmk-pg-lib.sh ] &&
			[ \"\$(stat -c %a /var/lib/cmk /var/lib/cmk/pins /var/log/cmk /etc/cmk /etc/cmk/ephemeral | tr '\n' ' ')\" = '700 700 700 755 755 ' ] &&
			[ -f /usr/share/doc/cmk-agent/deployment.rst ]"
		# (--man=no: the image has no man-db; the pages are checked above)
		check deb1_units_verify systemd-analyze verify --man=no cmk-agent.service cmk-ephemeral@scratch.service
	fi
	p=boot$phase
	pid=$(systemctl show -p MainPID --value cmk-agent.service)
	# The unit's CapabilityBoundingSet: CAP_CHOWN (0), CAP_NET_ADMIN (12),
	# CAP_IPC_LOCK (14), CAP_SYS_ADMIN (21), CAP_SYS_BOOT (22).
	check "${p}_agent_active_hardened" bash -c "
		systemctl is-active cmk-agent.service &&
		[ '$pid' -gt 0 ] &&
		grep -q '^NoNewPrivs:[[:space:]]*1' /proc/$pid/status &&
		grep -q '^Seccomp:[[:space:]]*2' /proc/$pid/status &&
		grep -q '^CapBnd:[[:space:]]*0000000000605001' /proc/$pid/status"
	[ "$pid" -gt 0 ] 2>/dev/null && diag "agent $(grep -E '^(CapBnd|CapEff|NoNewPrivs|Seccomp):' "/proc/$pid/status" | tr '\n\t' '  ')"
	# Up at the first start: not killed by its watchdog, not restarted
	# (a boot that needs a restart to bring the disk up is a broken boot).
	check "${p}_agent_up_at_first_start" bash -c "
		[ \"\$(systemctl show -p NRestarts --value cmk-agent.service)\" = 0 ] &&
		! journalctl -b -u cmk-agent.service --no-pager -o cat | grep -q 'Watchdog timeout'"
	check "${p}_disk_is_dm_cmk_with_active_key" bash -c "
		dmsetup table $DM | awk '{ exit \$3 != \"cmk\" }' &&
		[ \"\$(cmkctl status | awk -v d=$DM '\$2 == d { print \$3 }')\" = active ]"
	check "${p}_ext4_mounted_from_dm_cmk" bash -c "
		[ \"\$(findmnt -rn -o SOURCE,FSTYPE --mountpoint $MNT)\" = '$DEV ext4' ]"
	if [ "$phase" = 1 ]; then
		read -r rc secs < <(cat "$ALOG/pgsetup.result" 2>/dev/null || echo "none -")
		diag "pgsetup.sh (format, initdb, first start, tablespace, 50000 rows): exit $rc, $secs s"
		[ "$rc" = 0 ] || diag "$(tail -n 15 "$ALOG/pgsetup.log")"
	fi
	# PostgreSQL itself says where its data and its temp tablespace are;
	# the kernel says what is mounted there.
	tsoid=$(psql_ -c "SELECT oid FROM pg_tablespace WHERE spcname = 'ephemeral_temp'" 2>&1)
	check "${p}_postgres_runs_on_dm_cmk_devices" bash -c "
		systemctl is-active $PGUNIT &&
		[ \"\$(timeout 60 runuser -u postgres -- psql -X -A -t -q -c 'SHOW data_directory')\" = $PGDATA ] &&
		[ \"\$(findmnt -rn -o SOURCE,FSTYPE --target $PGDATA)\" = '/dev/mapper/cmk-pgdata ext4' ] &&
		[ \"\$(readlink -f $PGDATA/pg_tblspc/$tsoid)\" = $PGTEMP ] &&
		[ \"\$(findmnt -rn -o SOURCE,FSTYPE --target $PGTEMP)\" = '$DEV ext4' ]"
	[ "$(systemctl is-active $PGUNIT)" = active ] || pg_diag
	# A sort that spills: its temp files are on the ephemeral device's
	# file system, in the tablespace's directory, and nowhere under the
	# data directory.  On a new ephemeral file system (every boot)
	# PostgreSQL would put them in the data directory without a word
	# if cmk-pg-temp-tablespace had not made the directory.
	spill=$(pg_spill 2>&1)
	check "${p}_postgres_temp_spills_into_ephemeral_tablespace" bash -c "
		grep -q '^tempfile $PGTEMP/PG_15_[0-9]*/pgsql_tmp/pgsql_tmp' <<<'$spill' &&
		! grep '^tempfile' <<<'$spill' | grep -qv '^tempfile $PGTEMP/'"
	diag "temp files while the sort's cursor is open:" "$(grep -m 4 . <<<"$spill")"
	diag "cmk-pg-temp-tablespace this boot:" \
		"$(journalctl -b -u $PGUNIT --no-pager -o cat 2>&1 | grep -m 4 'cmk-pg-temp-tablespace')" \
		"$(stat -c '%U %a %n' $PGTEMP $PGTEMP/PG_15_* 2>&1)"
	# The table boot 1 wrote: on the persistent device, across boots.
	sum=$(pg_sum 2>&1)
	if [ "$phase" = 1 ]; then
		echo "$sum" >"$KEEP/pg.sum"
		check boot1_postgres_table_written bash -c "[[ '$sum' =~ ^[0-9a-f]{32}\$ ]]"
	else
		check boot2_postgres_data_persists_across_reboot bash -c "
			[[ '$sum' =~ ^[0-9a-f]{32}\$ ]] && [ '$sum' = \"\$(cat $KEEP/pg.sum)\" ]"
	fi
	diag "table checksum: $sum"
	# WAL archived sealed: a row with a marker, its segment switched out;
	# archive_command (the package's cmk-wal-archive, key socket) seals
	# it.  Oracle: an ESDK message (version 2, suite 0x0478), the marker
	# not in it; cmkctl unseal with the cluster and the segment's name
	# gives a WAL segment of this cluster (page magic of PostgreSQL 15,
	# the system identifier and the 1 MiB segment size of its long page
	# header) with the marker in it; the context of another name is
	# refused.
	sysid=$(pg_sysid)
	if seg=$(pg_archive_one "CMKWAL-$marker-$phase"); then
		f=$ARCHIVE/$seg.esdk
		u=$KEEP/$seg.unsealed
		rm -f "$u" "$u.other"
		cmkctl unseal --socket $SOCK --context "cluster=$sysid" --context "segment=$seg" "$f" "$u" \
			>"$KEEP/unseal.log" 2>&1
		other=$(printf '%s%08X' "${seg:0:16}" $((16#${seg:16:8} + 1)))
		cmkctl unseal --socket $SOCK --context "cluster=$sysid" --context "segment=$other" "$f" "$u.other" \
			>"$KEEP/unseal-other.log" 2>&1
		rc_other=$?
		check "${p}_postgres_wal_archived_sealed" bash -c "
			[ \"\$(od -An -N3 -tx1 $f | tr -d ' ')\" = 020478 ] &&
			! grep -aq CMKWAL-$marker-$phase $f &&
			[ \"\$(stat -c %s $u)\" = 1048576 ] &&
			[ \"\$(od -An -N2 -tx2 $u | tr -d ' ')\" = d110 ] &&
			[ \"\$(od -An -j24 -N8 -tu8 $u | tr -d ' ')\" = '$sysid' ] &&
			[ \"\$(od -An -j32 -N4 -tu4 $u | tr -d ' ')\" = 1048576 ] &&
			grep -aq CMKWAL-$marker-$phase $u &&
			[ $rc_other != 0 ] && [ ! -e $u.other ]" 
		diag "archived $seg: $(stat -c %s "$f") bytes sealed, header $(od -An -N3 -tx1 "$f");" \
			"$(cat "$KEEP/unseal.log")" "another name's context: exit $rc_other, $(head -c 300 "$KEEP/unseal-other.log")"
	else
		not_ok "${p}_postgres_wal_archived_sealed" "no sealed segment in $ARCHIVE after 300 s"
		pg_diag
	fi
	seq_now=$(header_field sequence)
	boot_now=$(header_field boot_id)
	diag "header: sequence $seq_now, boot id $boot_now"
	if [ "$phase" = 1 ]; then
		# 4 MiB of marker lines through the file system, then the raw disk.
		for _ in $(seq 1 131072); do echo "CMKMARK-$marker-0123456789"; done >"$MNT/secret.txt"
		sync
		echo 3 >/proc/sys/vm/drop_caches
		n_dm=$(count_marker "$DEV")
		n_raw=$(count_marker "$BACKING")
		diag "marker lines: $n_dm through $DEV, $n_raw on $BACKING"
		# (a line that straddles two extents of the file is not counted)
		check boot1_data_is_ciphertext_on_backing_disk \
			test "$n_dm" -ge 130000 -a "$n_raw" -eq 0
		echo "$seq_now $boot_now" >"$KEEP/boot1.header"
		sync
		exit 0
	fi
	read -r seq1 boot1 <"$KEEP/boot1.header"
	diag "first boot's header: sequence $seq1, boot id $boot1"
	# A new header for this boot: sealed with this kernel's boot id (the
	# sequence counts within a boot only: another boot's copies are never
	# unwrapped, so they cannot vouch for one).  That the DEK is new shows
	# in the first boot's data being gone, below.
	check boot2_new_header_and_dek_every_boot bash -c "
		[ -n '$seq_now' ] && [ -n '$boot_now' ] && [ '$boot_now' != '$boot1' ] &&
		[ '$boot_now' = \"\$(cat /proc/sys/kernel/random/boot_id)\" ]"
	n_dm=$(count_marker "$DEV")
	check boot2_first_boot_data_is_gone bash -c "
		[ ! -e $MNT/secret.txt ] && [ '$n_dm' -eq 0 ]"
	# Revoke while running: the host denies kms:Decrypt to the instance
	# role; the agent's next check gets AccessDenied and wipes the key.
	sync
	t0=$(date +%s%N)
	if ! out=$(ctl deny); then
		not_ok boot2_revoke_while_running_wipes_key "the host could not deny: $out"
		exit 0
	fi
	diag "the host's aws iam put-role-policy took $((($(date +%s%N) - t0) / 1000000)) ms"
	t0=$(date +%s%N)
	if wait_until 120 bash -c "[ \"\$(cmkctl status | awk -v d=$DM '\$2 == d { print \$3 }')\" = wiped ]"; then
		diag "deny in place to key wiped (seen by cmkctl status): $((($(date +%s%N) - t0) / 1000000)) ms"
		if dd if="$DEV" of=/dev/null bs=4k count=1 iflag=direct status=none 2>/dev/null; then
			not_ok boot2_revoke_while_running_wipes_key "the key is wiped but a read of $DEV succeeded"
		else
			ok boot2_revoke_while_running_wipes_key
		fi
		diag "$(cmkctl status | head -n 2)"
	else
		not_ok boot2_revoke_while_running_wipes_key "key state $(key_state) 120 s after the deny"
	fi
	# Archiving while revoked: the agent refuses data keys; the package's
	# cmk-wal-archive (as archive_command runs it) fails saying so and
	# leaves nothing in the archive.
	ra=$KEEP/revoked-archive
	install -d -o postgres -g postgres -m 0700 "$ra"
	if [ -n "${seg:-}" ] && [ -f "$KEEP/$seg.unsealed" ]; then
		install -o postgres -g postgres -m 0600 "$KEEP/$seg.unsealed" "$ra.src"
		out=$(runuser -u postgres -- "$PGLIB/cmk-wal-archive" --socket $SOCK --cluster "$sysid" \
			--archive "$ra" "$ra.src" "$seg" 2>&1)
		rc=$?
		# The message goes through the environment, not into the script's
		# text: it may hold any character (the agent's own has a quote).
		check boot2_revoke_wal_archiving_fails_clearly \
			env OUT="$out" RC="$rc" RA="$ra" SEG="$seg" bash -c '
			[ "$RC" = 1 ] && [ -z "$(ls -A "$RA")" ] &&
			grep -q "$SEG: sealing failed (cmkctl seal exit 2): .*revoked" <<<"$OUT" &&
			grep -q "$SEG: not archived; it stays in pg_wal" <<<"$OUT"'
		diag "cmk-wal-archive while revoked: exit $rc:" "$out"
	else
		not_ok boot2_revoke_wal_archiving_fails_clearly "no segment archived before the deny"
	fi
	# The database stops: its next commit cannot reach its disk (EIO);
	# PostgreSQL stops rather than run on (PANIC, then its crash recovery
	# fails too).  What it committed before is checked in boot 4.
	out=$(psql_ -c "INSERT INTO cmk_wal_marker VALUES ('after the revocation')" 2>&1)
	diag "a commit after the revocation: $(tr '\n' ' ' <<<"$out" | cut -c1-300)"
	if wait_until 240 bash -c "! systemctl is-active --quiet $PGUNIT"; then
		ok boot2_revoke_stops_postgres
	else
		not_ok boot2_revoke_stops_postgres "$PGUNIT still $(systemctl is-active $PGUNIT) 240 s after the wipe"
	fi
	diag "postgresql after the revocation: $(systemctl is-active $PGUNIT);" \
		"$(grep -E 'PANIC|FATAL|terminated|shut down|aborting' "$PGLOG" | tail -n 6)"
	# Unmounting a file system whose disk fails every I/O can take long;
	# nothing on it matters any more.
	trap - EXIT
	finish
	sync
	systemctl poweroff --force --force
	;;
3)
	# shellcheck disable=SC2016 # expanded by the inner bash
	wait_until 400 bash -c '[ "$(systemctl is-active cmk-agent.service)" = failed ]'
	status=$(systemctl show -p ExecMainStatus --value cmk-agent.service)
	check boot3_revoked_cmk_agent_fails_definitive bash -c "
		[ \"\$(systemctl is-active cmk-agent.service)\" = failed ] && [ '$status' = 2 ] &&
		journalctl -b -u cmk-agent.service -o cat | grep -q 'cannot unseal the KEK'"
	wait_until 120 unit_settled cmk-ephemeral@scratch.service
	wait_until 60 unit_settled $PGUNIT
	check boot3_revoked_cmk_disk_stays_closed bash -c "
		[ ! -e $DEV ] && ! dmsetup info $DM &&
		! mountpoint -q $MNT &&
		! findmnt -rn -S $BACKING &&
		[ \"\$(systemctl is-active cmk-ephemeral@scratch.service)\" != active ]"
	# Never started in this boot: systemd ran no start of it, and its
	# data's device was never opened.
	check boot3_revoked_cmk_postgres_not_started bash -c "
		[ \"\$(systemctl is-active $PGUNIT)\" != active ] &&
		[ \"\$(systemctl show -p ExecMainStartTimestampMonotonic --value $PGUNIT)\" = 0 ] &&
		[ ! -e /dev/mapper/cmk-pgdata ] && ! mountpoint -q $PMNT"
	diag "cmk-ephemeral@scratch: $(systemctl is-active cmk-ephemeral@scratch.service), cmk-ephemeral@pgdata: $(systemctl is-active cmk-ephemeral@pgdata.service), postgresql: $(systemctl is-active $PGUNIT)"
	;;
4)
	deb_phase4
	;;
*)
	not_ok boot_phase_known "no cmk_test.phase= on the kernel command line"
	;;
esac

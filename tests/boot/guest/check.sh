#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The boot test's checks inside the Debian guest (tests/boot/run.sh boots
# the same image three times; cmk_test.phase= on the kernel command line
# says which boot this is).  Results go to ttyS1, one line each:
# "ok NAME", "not ok NAME" and "# ..." diagnostics (the host numbers them);
# "phase-done" last.  Then the guest powers off.
#
#   1 first boot: cloud-init ran our hook; cmk-agent runs under its
#     hardening; the disk is dm-cmk with ext4 mounted; the database runs
#     on it; what it writes is ciphertext on the backing disk.
#   2 second boot: a new header (boot id, sequence) and so a new DEK; the
#     first boot's data is gone; then the host denies kms:Decrypt while we
#     run and the agent wipes the key.
#   3 third boot, the deny still in place: the agent fails, the disk stays
#     closed, the database never starts.
# Oracles: the kernel (dmsetup table, cmkctl status = netlink GET, reads
# that fail with EIO), the raw backing disk, systemd's unit states, moto.
set -u

exec 3>/dev/ttyS1
arg() { tr ' ' '\n' </proc/cmdline | sed -n "s/^cmk_test\.$1=//p"; }
phase=$(arg phase)
marker=$(arg marker)
DM=cmk-scratch
DEV=/dev/mapper/$DM
BACKING=/dev/vdb
MNT=/var/lib/cmktest
KEEP=/var/lib/cmk-boot-test
CTL=10.0.2.100/8081
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
finish() {
	diag "units: $(systemctl is-active cmk-agent.service cmk-ephemeral@scratch.service cmk-testdb.service | tr '\n' ' ')"
	diag "$(cmkctl status 2>&1)"
	diag "$(journalctl -b -u cmk-agent.service -u cmk-ephemeral@scratch.service \
		-u cmk-testdb.service --no-pager -o cat 2>&1 | tail -n 25)"
	# The agent's first start, where a boot goes wrong first.
	diag "first agent lines: $(journalctl -b -u cmk-agent.service --no-pager -o cat 2>&1 | head -n 12)"
	diag "dm: $(dmsetup info -c 2>&1 | tail -n +2 | tr '\n' ';')"
	echo "phase-done" >&3
	sync
	systemctl poweroff --no-block
}
trap finish EXIT

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
	wait_until 300 unit_settled cmk-testdb.service
	wait_until 60 unit_settled cmk-ephemeral@scratch.service
	if [ "$phase" = 1 ]; then
		# write_files and runcmd of our user-data: only cloud-init made
		# these (the image has no /etc/cmk and the units are disabled).
		check boot1_cloud_init_ran_our_hook bash -c "
			[[ '$cistatus' == *done* ]] &&
			[ -s /etc/cmk/agent.conf ] && [ -s /etc/cmk/kek.json ] &&
			[ \"\$(stat -c %a /etc/cmk/agent.conf)\" = 600 ] &&
			[ -s /etc/cmk/ephemeral/scratch.conf ] &&
			[ -f /etc/systemd/system/cmk-testdb.service.d/cmk.conf ] &&
			systemctl is-enabled cmk-agent.service &&
			systemctl is-enabled cmk-ephemeral@scratch.service"
	fi
	p=boot$phase
	pid=$(systemctl show -p MainPID --value cmk-agent.service)
	check "${p}_agent_active_hardened" bash -c "
		systemctl is-active cmk-agent.service &&
		[ '$pid' -gt 0 ] &&
		grep -q '^NoNewPrivs:[[:space:]]*1' /proc/$pid/status &&
		grep -q '^Seccomp:[[:space:]]*2' /proc/$pid/status &&
		grep -q '^CapBnd:[[:space:]]*0000000000605000' /proc/$pid/status"
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
	check "${p}_database_runs_on_the_encrypted_disk" bash -c "
		systemctl is-active cmk-testdb.service &&
		[ -s $MNT/db-alive ] &&
		grep -q \"^\$(cat /proc/sys/kernel/random/boot_id) $DEV ext4\$\" /var/log/cmk-testdb.starts"
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
	wait_until 60 unit_settled cmk-testdb.service
	check boot3_revoked_cmk_disk_stays_closed bash -c "
		[ ! -e $DEV ] && ! dmsetup info $DM &&
		! mountpoint -q $MNT &&
		! findmnt -rn -S $BACKING &&
		[ \"\$(systemctl is-active cmk-ephemeral@scratch.service)\" != active ]"
	check boot3_revoked_cmk_database_not_started bash -c "
		[ \"\$(systemctl is-active cmk-testdb.service)\" != active ] &&
		! grep -q \"^\$(cat /proc/sys/kernel/random/boot_id)\" /var/log/cmk-testdb.starts"
	diag "cmk-ephemeral@scratch: $(systemctl is-active cmk-ephemeral@scratch.service), cmk-testdb: $(systemctl is-active cmk-testdb.service)"
	;;
*)
	not_ok boot_phase_known "no cmk_test.phase= on the kernel command line"
	;;
esac

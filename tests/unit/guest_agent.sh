#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# guest_agent.sh - cmk-agent and cmkctl on a real dm-cmk device, inside the
# QEMU guest (busybox, brd /dev/ram0, dm-cmk loaded).  Prints TAP.  Not run
# by "make -C agent test" (it needs the kernel module); run it with:
#
#   scripts/qemu/run-guest.sh --kver KVER \
#       --add agent/build/cmk-agent:/usr/bin/cmk-agent \
#       --add agent/build/cmkctl:/usr/bin/cmkctl tests/unit/guest_agent.sh
#
# Oracles: dm-cmk's own status line (sealed/active/wiped), the data read
# back through the device, the ciphertext on the backing device differing
# from the plaintext, and the agent's state file.  No timing assertions:
# waits poll with generous bounds; revoke-to-wipe and boot-to-usable times
# are printed as "#" lines.
set -u
n=0
ok() { n=$((n+1)); echo "ok $n $1"; }
nok() { n=$((n+1)); echo "not ok $n $1"; }
t() { name=$1; shift; if "$@" >/tmp/t.out 2>&1; then ok "$name"; else nok "$name"; sed 's/^/# /' /tmp/t.out; fi; }
ms() { awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime; }
st() { dmsetup status cmk-scratch 2>/dev/null | awk '{ print $4 }'; }
# wait_state STATE TIMEOUT_MS
wait_state() {
	end=$(( $(ms) + $2 ))
	while [ "$(ms)" -lt "$end" ]; do
		[ "$(st)" = "$1" ] && return 0
		usleep 20000
	done
	return 1
}
readback() { echo 3 > /proc/sys/vm/drop_caches; dd if=/dev/mapper/cmk-scratch of=/tmp/back bs=4096 count=64 2>/dev/null && cmp -s /tmp/pat /tmp/back; }
mkdir -p /etc/cmk /run/cmk /var/log/cmk
cmkctl local-key create /etc/cmk/cmk.key >/dev/null
cmkctl kek create --provider local --key-ref /etc/cmk/cmk.key --out /etc/cmk/kek.json >/dev/null
cat > /etc/cmk/agent.conf <<EOF
[agent]
kek_envelope = /etc/cmk/kek.json
check_interval_ms = 200
lease_ms = 5000
grace_s = 30
policy = wipe
audit_log = /var/log/cmk/audit.log
syslog = no
metrics_path = /run/cmk/cmk.prom

[device "scratch"]
backing = /dev/ram0
dm_name = cmk-scratch
key_name = scratch
mode = ephemeral
sector_size = 4096
EOF
dd if=/dev/urandom of=/tmp/pat bs=4096 count=64 2>/dev/null

t0=$(ms)
cmk-agent --config /etc/cmk/agent.conf --no-poweroff 2>/tmp/agent.err &
apid=$!
t agent_opens_device_active wait_state active 30000
echo "# boot-to-usable: $(( $(ms) - t0 )) ms (wall, incl. process start)"
grep "usable" /tmp/agent.err | sed 's/^/# /'
t agent_created_dev_node test -b /dev/mapper/cmk-scratch
t io_write_through_dm_cmk dd if=/tmp/pat of=/dev/mapper/cmk-scratch bs=4096 count=64 conv=fsync
t io_read_back_plaintext readback
dd if=/dev/ram0 of=/tmp/raw bs=4096 skip=256 count=64 2>/dev/null
t backing_holds_ciphertext sh -c '! cmp -s /tmp/pat /tmp/raw'
t state_file_active grep -q '"state": *"active"' /run/cmk/agent.json
t metrics_textfile grep -q 'cmk_agent_state{state="active"} 1' /run/cmk/cmk.prom
t cmkctl_status cmkctl --config /etc/cmk/agent.conf status
sed 's/^/# /' /tmp/t.out

# revoke by disabling the CMK
t0=$(ms)
cmkctl local-key disable /etc/cmk/cmk.key >/dev/null
if wait_state wiped 5000; then
	d=$(( $(ms) - t0 )); ok "agent_wipes_after_cmk_disable"
	echo "# revoke-to-wipe: $d ms (check_interval_ms 200; goal <= 1000, reported, not asserted)"
else nok agent_wipes_after_cmk_disable; fi
t io_fails_after_revoke sh -c '! readback'
t wipe_reason_revoked sh -c 'cmkctl --config /etc/cmk/agent.conf status | grep -q revoked'
t state_file_revoked grep -q '"state": *"revoked"' /run/cmk/agent.json

# restore
cmkctl local-key enable /etc/cmk/cmk.key >/dev/null
t agent_restores_after_enable wait_state active 5000
t data_readable_after_restore readback

# lease expiry while the agent is frozen, then restore when it runs again
kill -STOP $apid
t lease_expiry_wipes_while_agent_frozen wait_state wiped 15000
t lease_expiry_reason sh -c 'cmkctl --config /etc/cmk/agent.conf status | grep -q lease_expired'
kill -CONT $apid
t agent_restores_after_lease_expiry wait_state active 5000
t data_readable_after_lease_expiry readback
kill -HUP $apid
usleep 300000
t sighup_checks_now grep -q 'SIGHUP' /var/log/cmk/audit.log

# agent restart: keys stay, then the new agent restores without re-keying
kill -TERM $apid; wait $apid
t keys_survive_agent_stop test "$(st)" = active
t data_readable_after_agent_stop readback
dmsetup message cmk-scratch 0 x >/dev/null 2>&1
cmk-agent --config /etc/cmk/agent.conf --no-poweroff 2>>/tmp/agent.err &
apid=$!
sleep 1
t data_readable_after_agent_restart readback

# operator break-glass revoke: agent must not restore
t cmkctl_revoke cmkctl --config /etc/cmk/agent.conf revoke
t revoke_wipes test "$(st)" = wiped
sleep 1
t agent_does_not_restore_operator_revoke test "$(st)" = wiped
t cmkctl_open_clears_revoke cmkctl --config /etc/cmk/agent.conf open scratch
t active_after_open test "$(st)" = active
t data_readable_after_open readback

# KEK rotation under I/O: headers re-wrapped, data untouched
t cmkctl_kek_rotate cmkctl --config /etc/cmk/agent.conf kek rotate
t header_names_new_kek_version sh -c 'cmkctl header dump /dev/ram0 | grep -q "kek_version *2"'
t kek_rewrap cmkctl --config /etc/cmk/agent.conf kek rewrap
cmkctl local-key disable /etc/cmk/cmk.key >/dev/null
t wiped_after_rotation_revoke wait_state wiped 5000
cmkctl local-key enable /etc/cmk/cmk.key >/dev/null
t restored_after_rotation wait_state active 5000
t data_readable_after_rotation readback

# CMK rotation: re-wrap under a second key, retire the first
cmkctl local-key create /etc/cmk/cmk2.key >/dev/null
t kek_rewrap_to_new_cmk cmkctl --config /etc/cmk/agent.conf kek rewrap --key-ref /etc/cmk/cmk2.key
sleep 1
cmkctl local-key disable /etc/cmk/cmk.key >/dev/null
sleep 1
t old_cmk_disabled_after_rewrap_no_revoke test "$(st)" = active
cmkctl local-key disable /etc/cmk/cmk2.key >/dev/null
t new_cmk_disable_revokes wait_state wiped 5000
cmkctl local-key enable /etc/cmk/cmk2.key >/dev/null
t new_cmk_enable_restores wait_state active 5000
t data_readable_after_cmk_rotation readback
t status_json sh -c 'cmkctl --config /etc/cmk/agent.conf status --json > /tmp/st.json && grep -q "\"generation\"" /tmp/st.json && grep -q "\"kek\"" /tmp/st.json'
sed 's/^/# /' /tmp/st.json | head -30

kill -TERM $apid; wait $apid

# policy poweroff (suppressed by --no-poweroff): wipe, then the action
sed 's/^policy = wipe/policy = poweroff/' /etc/cmk/agent.conf > /etc/cmk/poweroff.conf
cmk-agent --config /etc/cmk/poweroff.conf --no-poweroff 2>>/tmp/agent.err &
apid=$!
t poweroff_agent_active wait_state active 10000
cmkctl local-key disable /etc/cmk/cmk2.key >/dev/null
t poweroff_policy_wipes wait_state wiped 5000
usleep 300000
t poweroff_action_audited grep -q 'suppressed by --no-poweroff' /var/log/cmk/audit.log
cmkctl local-key enable /etc/cmk/cmk2.key >/dev/null
kill -TERM $apid; wait $apid
t cmkctl_close cmkctl --config /etc/cmk/agent.conf close scratch
t device_removed sh -c '! dmsetup info cmk-scratch'
t no_key_bytes_in_audit_or_state sh -c '! grep -qi "wrapped_kek\|\"key\"" /var/log/cmk/audit.log /run/cmk/agent.json'
sed 's/^/# agent: /' /tmp/agent.err | tail -20
echo "# audit lines: $(wc -l < /var/log/cmk/audit.log)"
grep -v '"operation": *"check"' /var/log/cmk/audit.log | head -8 | sed 's/^/# audit: /'
grep '"event":"revoke"\|"event": "revoke"' /var/log/cmk/audit.log | head -2 | sed 's/^/# audit: /' 
echo "1..$n"
dmsetup remove cmk-scratch 2>/dev/null
exit 0

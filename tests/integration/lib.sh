# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=sh
#
# lib.sh - shared by the guest integration tests (busybox sh), and by the
# demo.  Sourced, not run; installed in the guest as /usr/lib/cmk-test/lib.sh.
#
# Each test owns the root of its key material: it creates the local CMK key
# file and the KEK envelope itself (it_setup), so cmk-oracle can recompute
# every key the agent holds from files the test controls (see oracle.c).
#
# The guest has no systemd: the agent runs in the foreground as a child of
# the test, which stops it (it_cleanup, from an EXIT trap) together with
# every device and mount the test made.

T=${T:-/tmp/cmk-it}
BACKING=${BACKING:-/dev/ram0}
DEV_NAME=cache0			# [device "cache0"] in agent.conf
KEY_NAME=cache0			# its key_name (default: the device name)
DM_NAME=cmk-cache0		# its dm_name (default: cmk-<name>)
DM_DEV=/dev/mapper/$DM_NAME
MNT=$T/mnt
AGENT=${AGENT:-/usr/sbin/cmk-agent}
AGENT_PID=
AGENT_STARTS=0

# --- TAP ---------------------------------------------------------------

tap_n=0
tap_plan=0
tap_failed=0

tap_plan() {
	tap_plan=$1
	echo "1..$1"
}

ok() {
	tap_n=$((tap_n + 1))
	echo "ok $tap_n $1"
}

# not_ok NAME [DIAGNOSTIC...]
not_ok() {
	tap_n=$((tap_n + 1))
	tap_failed=$((tap_failed + 1))
	echo "not ok $tap_n $1"
	shift
	for l in "$@"; do
		echo "#   $l"
	done
}

# check NAME CMD...: ok if CMD succeeds.
check() {
	name=$1
	shift
	if "$@" >"$T/check.out" 2>&1; then
		ok "$name"
	else
		not_ok "$name" "failed: $*"
		sed 's/^/#     /' "$T/check.out" | head -n 10
	fi
}

diag() {
	echo "# $*"
}

# bail REASON: a step the rest depends on failed; the remaining planned
# results are reported as failures, so the run cannot look complete.
bail() {
	diag "bail out: $*"
	it_diagnostics
	while [ "$tap_n" -lt "$tap_plan" ]; do
		not_ok "not_reached_after_failure" "$*"
	done
	exit 1
}

tap_done() {
	[ "$tap_n" -eq "$tap_plan" ] || diag "planned $tap_plan, reported $tap_n"
	[ "$tap_failed" -eq 0 ]
}

# --- measurements (reported, never asserted) -----------------------------

now_ms() {
	cmk-oracle now-ms
}

# median N...: the median of integers (lower middle for an even count).
median() {
	printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

# --- setup ---------------------------------------------------------------

# it_setup [LEASE_MS] [CHECK_INTERVAL_MS]: key file, envelope, agent.conf.
# HOLD_MS (default 2000) is the device's hold_ms: how long I/O waits for a
# key that is briefly away.  Short, so that a test that checks I/O fails
# without a key does not wait the default 30 s; HOLD_MS= leaves the
# kernel's default.
it_setup() {
	lease=${1:-5000}
	interval=${2:-200}
	hold=${HOLD_MS-2000}
	AGENT_STARTS=0
	rm -rf "$T"
	mkdir -p "$T/state" "$MNT"
	chmod 700 "$T"
	modprobe dm-cmk 2>/dev/null
	modprobe ext4 2>/dev/null
	cmkctl local-key create "$T/cmk.key" >/dev/null || return 1
	cmkctl kek create --provider local --key-ref "$T/cmk.key" \
		--context service=integration --out "$T/kek.json" >/dev/null || return 1
	# No header or file system from an earlier test on the backing device.
	dd if=/dev/zero of="$BACKING" bs=1M count=4 conv=fsync 2>/dev/null || return 1
	cat >"$T/agent.conf" <<EOF
[agent]
kek_envelope = $T/kek.json
check_interval_ms = $interval
jitter_pct = 0
lease_ms = $lease
grace_s = 0
policy = wipe
audit_log = $T/audit.log
syslog = no
boot_deadline_s = 30
state_dir = $T/state

[provider "local"]

[device "$DEV_NAME"]
backing = $BACKING
mode = ephemeral
sector_size = 4096
EOF
	if [ -n "$hold" ]; then
		echo "hold_ms = $hold" >>"$T/agent.conf"
	fi
}

# agent_start: run the agent in the background (foreground mode, no
# systemd); AGENT_PID is its pid.  Extra environment via AGENT_ENV.
agent_start() {
	# shellcheck disable=SC2086
	env $AGENT_ENV "$AGENT" --config "$T/agent.conf" >>"$T/agent.log" 2>&1 &
	AGENT_PID=$!
	AGENT_STARTS=$((AGENT_STARTS + 1))
}

# agent_ready [TIMEOUT_S]: until the agent started last has unsealed the KEK
# and opened its devices (its "devices usable" line).  A device that is still
# active from an earlier agent says nothing about the new one: a test that
# then disables the CMK must not race the new agent's unseal.  Fails if the
# agent exits first.
agent_ready() {
	i=0
	while [ $i -lt $((${1:-60} * 10)) ]; do
		[ "$(grep -c 'devices usable' "$T/agent.log" 2>/dev/null)" -ge "$AGENT_STARTS" ] &&
			return 0
		kill -0 "$AGENT_PID" 2>/dev/null || return 1
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# agent_stop [SIGNAL]: stop the agent and wait for it (TERM, then KILL).
agent_stop() {
	[ -n "$AGENT_PID" ] || return 0
	kill "-${1:-TERM}" "$AGENT_PID" 2>/dev/null
	i=0
	while kill -0 "$AGENT_PID" 2>/dev/null && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if kill -0 "$AGENT_PID" 2>/dev/null; then
		kill -KILL "$AGENT_PID" 2>/dev/null
		diag "agent did not stop within 10 s; killed"
	fi
	wait "$AGENT_PID" 2>/dev/null
	AGENT_PID=
}

# wait_state STATE [TIMEOUT_MS]: until the kernel reports STATE for our
# key and a direct read of the mapped device agrees; prints the times.
wait_state() {
	cmk-oracle wait-state "$KEY_NAME" "$1" "${2:-60000}" "$DM_DEV"
}

# kstate: the kernel's state of our device ("sealed", "active", "wiped").
kstate() {
	dmsetup status "$DM_NAME" 2>/dev/null | awk '{ print $4 }'
}

# read_direct DEV: one 4 KiB O_DIRECT read at offset 0; fails on EIO.
read_direct() {
	dd if="$1" of=/dev/null bs=4096 count=1 iflag=direct 2>/dev/null
}

# marker_new: a random string that exists nowhere until the test writes it.
marker_new() {
	echo "CMK-PLAINTEXT-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
}

# write_marker_file FILE MARKER: 256 KiB of lines holding MARKER.
write_marker_file() {
	i=0
	while [ $i -lt 4096 ]; do
		echo "$2 line $i of the customer's temp data....................."
		i=$((i + 1))
	done >"$1"
}

count() {
	cmk-oracle count "$1" "$2"
}

drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
}

boot_id() {
	cmkctl header dump "$BACKING" 2>/dev/null | awk '$1 == "boot_id" { print $2 }'
}

it_diagnostics() {
	diag "kernel state: $(dmsetup status "$DM_NAME" 2>&1)"
	if [ -s "$T/agent.log" ]; then
		diag "agent log (last lines):"
		tail -n 15 "$T/agent.log" | sed 's/^/#   | /'
	fi
}

# relay PORT: serve 127.0.0.1:PORT in the guest, each connection forwarded
# to the host's peer at 10.0.2.100:PORT (guestfwd).  The agent sends plain
# http:// only to loopback (KMS endpoints) or link-local addresses
# (metadata), never to another host (agent/kms/http.h), so the tests' plain
# HTTP peers are reached through this relay, as on the host.
RELAY_PIDS=
relay() {
	nc -ll -p "$1" -e nc 10.0.2.100 "$1" </dev/null >/dev/null 2>&1 &
	RELAY_PIDS="$RELAY_PIDS $!"
	_hex=$(printf '%04X' "$1")
	i=0
	until grep -q ":$_hex 00000000:0000 0A" /proc/net/tcp || [ $i -ge 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
}

# it_cleanup: everything the test started or made, in reverse.
it_cleanup() {
	agent_stop TERM
	for p in $RELAY_PIDS; do
		kill "$p" 2>/dev/null
	done
	RELAY_PIDS=
	umount "$MNT" 2>/dev/null
	for d in oracle-crypt wrong-key "$DM_NAME"; do
		dmsetup remove "$d" >/dev/null 2>&1
	done
	rm -rf "$T"
}

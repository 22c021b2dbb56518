#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# A region restart over the KMS quota, on the systemd side (review 16c M3,
# L7): the units and cmk-ephemeral must let a throttled but healthy boot
# take as long as the agent keeps trying.  No root, no systemd: the unit
# files are read as text, and scripts/systemd/cmk-ephemeral runs with
# systemctl, cmkctl, sleep and udevadm stubs first on its PATH (sleep
# only counts, so 600 "seconds" take none).
#
# Oracles:
#   fleet_throttle_units_agree   cmk-agent.service is Type=notify with
#       NotifyAccess=main (EXTEND_TIMEOUT_USEC is heard), TimeoutStartSec
#       at least the default boot_deadline_s (60) + the 30 s margin;
#       cmk-ephemeral@ has TimeoutStartSec=infinity (it waits for the agent).
#   fleet_throttle_ephemeral_waits_for_a_long_boot   the agent "activating"
#       for 600 s (throttled boots and restarts, one "failed" blip on the
#       way to a restart): cmk-ephemeral is still waiting, then goes on
#       once the key is active (it stops at the stub's missing device
#       node, past the wait).  It gave up at 120 s before.
#   fleet_throttle_ephemeral_open_timeout_after_boot   agent active, device
#       never opened: fails after OPEN_TIMEOUT (5) seconds, naming it.
#   fleet_throttle_ephemeral_agent_failed   agent failed for good: fails at
#       once (2 polls), naming the agent's state.
#   fleet_throttle_agent_resumes_backoff_and_extends_start   the real
#       cmk-agent (--no-kernel, a local-key KEK), NOTIFY_SOCKET a socket of
#       this script, a boot-backoff.json saying 5 throttles and "not before
#       4 s from now": EXTEND_TIMEOUT_USEC of boot_deadline_s + 30 s (85 to
#       90 s: less the time since the agent's start) comes
#       before READY=1, READY=1 not sooner than 4 s (nor later than the
#       16 s window + slack), the file is gone once booted, the audit log
#       says the backoff was continued.  (Before: READY at once, no
#       EXTEND_TIMEOUT_USEC.)  Skipped without agent/build.
#
# Usage: tests/fleet/boot_throttle_units.sh     Output: TAP on stdout.
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(mktemp -d "${TMPDIR:-/tmp}/boot-throttle.XXXXXX")
trap 'rm -rf "$dir"' EXIT
n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; echo "# $2"; failed=1; }

echo "1..10"

unit=$top/scripts/systemd/cmk-agent.service
eph=$top/scripts/systemd/cmk-ephemeral@.service
secs() {	# the value of KEY= in unit FILE, in seconds ("infinity" as is)
	sed -n "s/^$2=//p" "$1" | tail -n 1 | sed 's/s$//'
}
tss=$(secs "$unit" TimeoutStartSec)
if grep -qx 'Type=notify' "$unit" && grep -qx 'NotifyAccess=main' "$unit" &&
   [ "$tss" -ge 90 ] && [ "$(secs "$eph" TimeoutStartSec)" = infinity ]; then
	ok fleet_throttle_units_agree
else
	notok fleet_throttle_units_agree "cmk-agent TimeoutStartSec=$tss, cmk-ephemeral@ TimeoutStartSec=$(secs "$eph" TimeoutStartSec)"
fi

# The stubs: state files in $dir, one call per line in $dir/calls.
mkdir -p "$dir/bin"
cat >"$dir/bin/systemctl" <<'STUB'
#!/bin/sh
# show: $STUBS/agent_show (the agent's restart count and last exit)
if [ "$1" = show ]; then
	cat "$STUBS/agent_show"
	exit 0
fi
# is-active: the next line of $STUBS/agent_states (the last one sticks)
n=$(cat "$STUBS/polls" 2>/dev/null || echo 0)
n=$((n + 1))
echo "$n" >"$STUBS/polls"
lines=$(wc -l <"$STUBS/agent_states")
[ "$n" -le "$lines" ] || n=$lines
sed -n "${n}p" "$STUBS/agent_states"
STUB
cat >"$dir/bin/cmkctl" <<'STUB'
#!/bin/sh
# status: the device is active once $STUBS/open_after sleeps have passed
s=$(cat "$STUBS/slept" 2>/dev/null || echo 0)
if [ "$s" -ge "$(cat "$STUBS/open_after")" ]; then
	echo "scratch cmk-scratch active"
else
	echo "scratch cmk-scratch sealed"
fi
STUB
cat >"$dir/bin/sleep" <<'STUB'
#!/bin/sh
s=$(cat "$STUBS/slept" 2>/dev/null || echo 0)
echo $((s + 1)) >"$STUBS/slept"
STUB
printf '#!/bin/sh\nexit 0\n' >"$dir/bin/udevadm"
chmod +x "$dir/bin/"*
sed "s|^PATH=|PATH=$dir/bin:|" "$top/scripts/systemd/cmk-ephemeral" >"$dir/cmk-ephemeral"
printf '[device "scratch"]\ndm_name = cmk-scratch\n' >"$dir/agent.conf"

# run_eph OPEN_AFTER OPEN_TIMEOUT STATE...: one start, agent states per poll
# (systemctl show: $show, default a first start)
show='NRestarts=0 ExecMainCode=0 ExecMainStatus=0'
run_eph() {
	local after=$1 to=$2
	shift 2
	rm -f "$dir/polls" "$dir/slept"
	# shellcheck disable=SC2086 # one property per word
	printf '%s\n' $show >"$dir/agent_show"
	printf '%s\n' "$@" >"$dir/agent_states"
	echo "$after" >"$dir/open_after"
	STUBS=$dir CMK_AGENT_CONF=$dir/agent.conf MOUNTPOINT=$dir/mnt OPEN_TIMEOUT=$to \
		CMK_STATE_DIR=$dir/run timeout 120 sh "$dir/cmk-ephemeral" start scratch >"$dir/out" 2>&1
}
slept() { cat "$dir/slept" 2>/dev/null || echo 0; }

# 600 s activating (with one "failed" poll, as systemd may show on its way
# to auto-restart), then active; the key is active after 605 s.
states=()
for _ in $(seq 300); do states+=(activating); done
states+=(failed)
for _ in $(seq 299); do states+=(activating); done
states+=(active)
# The agent restarted after "KMS throttled until boot_deadline_s" (exit 3,
# the throttle's backoff kept in its state_dir).
show='NRestarts=1 ExecMainCode=1 ExecMainStatus=3'
mkdir -p "$dir/run"
echo '{}' >"$dir/run/boot-backoff.json"
run_eph 605 120 "${states[@]}"
rm -f "$dir/run/boot-backoff.json"
if grep -q 'has no device node' "$dir/out" && [ "$(slept)" -eq 605 ] &&
   [ "$(grep -c 'waiting for cmk-agent to unseal' "$dir/out")" -ge 9 ]; then
	ok fleet_throttle_ephemeral_waits_for_a_long_boot
else
	notok fleet_throttle_ephemeral_waits_for_a_long_boot "slept $(slept) s, $(grep -c 'waiting for' "$dir/out") progress lines: $(tail -n 1 "$dir/out")"
fi

# A restart loop after a local error (exit 1: a bad agent.conf, no
# netlink) or a crash does not end by waiting: fail at once and say why,
# rather than hold the boot (and, Before=remote-fs.target, every login).
show='NRestarts=3 ExecMainCode=1 ExecMainStatus=1'
run_eph 100000 120 failed activating activating activating
if grep -q 'keeps restarting (restart 3, last exit status 1' "$dir/out" && [ "$(slept)" -le 2 ]; then
	ok fleet_throttle_ephemeral_agent_restart_loop_fails
else
	notok fleet_throttle_ephemeral_agent_restart_loop_fails "slept $(slept) s: $(tail -n 1 "$dir/out")"
fi
show='NRestarts=3 ExecMainCode=3 ExecMainStatus=11'
run_eph 100000 120 activating
if grep -q 'killed by signal 11' "$dir/out" && [ "$(slept)" -le 1 ]; then
	ok fleet_throttle_ephemeral_agent_crash_loop_fails
else
	notok fleet_throttle_ephemeral_agent_crash_loop_fails "slept $(slept) s: $(tail -n 1 "$dir/out")"
fi
# One exit 1 may be transient (the instance's credentials not there yet
# at boot): restarts below 3 are waited for.
show='NRestarts=1 ExecMainCode=1 ExecMainStatus=1'
run_eph 20 120 activating
if grep -q 'has no device node' "$dir/out" && [ "$(slept)" -eq 20 ]; then
	ok fleet_throttle_ephemeral_one_local_error_waits
else
	notok fleet_throttle_ephemeral_one_local_error_waits "slept $(slept) s: $(tail -n 1 "$dir/out")"
fi
# Restarts after "KMS unreachable" (exit 3) with no throttle kept: a wrong
# endpoint, CA or firewall; OPEN_TIMEOUT counts, then a clear failure
# (waiting for ever would hold every login).
show='NRestarts=40 ExecMainCode=1 ExecMainStatus=3'
run_eph 100000 7 activating
if grep -q 'without reaching the KMS (restart 40, last exit status 3, not throttled) for 7 s' "$dir/out" &&
   [ "$(slept)" -le 8 ]; then
	ok fleet_throttle_ephemeral_unreachable_not_throttled_bounded
else
	notok fleet_throttle_ephemeral_unreachable_not_throttled_bounded "slept $(slept) s: $(tail -n 1 "$dir/out")"
fi
# A restarted agent running again (systemd resets the main status of a
# new run): it is unsealing, so wait.
show='NRestarts=4 ExecMainCode=0 ExecMainStatus=0'
run_eph 30 120 activating
if grep -q 'has no device node' "$dir/out" && [ "$(slept)" -eq 30 ]; then
	ok fleet_throttle_ephemeral_restarted_agent_running_waits
else
	notok fleet_throttle_ephemeral_restarted_agent_running_waits "slept $(slept) s: $(tail -n 1 "$dir/out")"
fi
show='NRestarts=0 ExecMainCode=0 ExecMainStatus=0'

run_eph 100000 5 activating activating active
if grep -q 'not mounting' "$dir/out" && grep -q '5 s after cmk-agent booted' "$dir/out" &&
   [ "$(slept)" -le 8 ]; then
	ok fleet_throttle_ephemeral_open_timeout_after_boot
else
	notok fleet_throttle_ephemeral_open_timeout_after_boot "slept $(slept) s: $(tail -n 1 "$dir/out")"
fi

run_eph 100000 120 activating failed
if grep -q 'cmk-agent.service is failed' "$dir/out" && [ "$(slept)" -le 2 ]; then
	ok fleet_throttle_ephemeral_agent_failed
else
	notok fleet_throttle_ephemeral_agent_failed "slept $(slept) s: $(tail -n 1 "$dir/out")"
fi

agentbin=$top/agent/build/cmk-agent
ctlbin=$top/agent/build/cmkctl
if [ ! -x "$agentbin" ] || [ ! -x "$ctlbin" ]; then
	ok "fleet_throttle_agent_resumes_backoff_and_extends_start # SKIP no agent/build (make -C agent)"
	exit $failed
fi
a=$dir/agent
mkdir -p "$a/state"
chmod 700 "$a" "$a/state"
"$ctlbin" local-key create "$a/cmk.key" >/dev/null &&
	"$ctlbin" kek create --provider local --key-ref "$a/cmk.key" --out "$a/kek.json" >/dev/null
cat >"$a/agent.conf" <<CONF
[agent]
kek_envelope = $a/kek.json
check_interval_s = 30
audit_log = $a/audit.log
syslog = no
state_dir = $a/state
CONF
res=$(python3 - "$agentbin" "$a" <<'PY'
import json, os, socket, subprocess, sys, time
agent, d = sys.argv[1], sys.argv[2]
now = int(time.clock_gettime(time.CLOCK_BOOTTIME) * 1000)
f = d + "/state/boot-backoff.json"
with open(f, "w") as o:
    boot = open("/proc/sys/kernel/random/boot_id").read().strip()
    json.dump({"kernel_boot_id": boot, "throttles": 5,
               "not_before_boottime_ms": now + 4000,
               "saved_boottime_ms": now - 2000}, o)
os.chmod(f, 0o600)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(d + "/notify")
s.settimeout(60)
t0 = time.monotonic()
p = subprocess.Popen([agent, "--no-kernel", "--config", d + "/agent.conf"],
                     env=dict(os.environ, NOTIFY_SOCKET=d + "/notify"),
                     stderr=open(d + "/stderr", "w"))
extend = ready = None
try:
    while ready is None:
        m = s.recv(4096).decode()
        for kv in m.split("\n"):
            if kv.startswith("EXTEND_TIMEOUT_USEC=") and extend is None:
                extend = int(kv.split("=")[1])
            if kv == "READY=1":
                ready = time.monotonic() - t0
    time.sleep(0.5)
    print(extend, "%.1f" % ready, int(os.path.exists(f)))
except Exception as e:
    print("none none 1", e)
finally:
    p.terminate()
    p.wait()
PY
)
read -r ext rdy left _ <<<"$res"
echo "# agent with a kept backoff: EXTEND_TIMEOUT_USEC=$ext, READY=1 after $rdy s, file left: $left"
if [ "$left" = 0 ] &&
   python3 -c "import sys; sys.exit(not (85e6 <= int('$ext') <= 90e6 and 4.0 <= float('$rdy') <= 25.0))" 2>/dev/null &&
   grep -q "throttled the previous agent's unseal 5 times" "$a/audit.log"; then
	ok fleet_throttle_agent_resumes_backoff_and_extends_start
else
	notok fleet_throttle_agent_resumes_backoff_and_extends_start "$res; $(tail -n 3 "$a/stderr")"
fi
exit $failed

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

echo "1..4"

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
run_eph() {
	local after=$1 to=$2
	shift 2
	rm -f "$dir/polls" "$dir/slept"
	printf '%s\n' "$@" >"$dir/agent_states"
	echo "$after" >"$dir/open_after"
	STUBS=$dir CMK_AGENT_CONF=$dir/agent.conf MOUNTPOINT=$dir/mnt OPEN_TIMEOUT=$to \
		sh "$dir/cmk-ephemeral" start scratch >"$dir/out" 2>&1
}
slept() { cat "$dir/slept" 2>/dev/null || echo 0; }

# 600 s activating (with one "failed" poll, as systemd may show on its way
# to auto-restart), then active; the key is active after 605 s.
states=()
for _ in $(seq 300); do states+=(activating); done
states+=(failed)
for _ in $(seq 299); do states+=(activating); done
states+=(active)
run_eph 605 120 "${states[@]}"
if grep -q 'has no device node' "$dir/out" && [ "$(slept)" -eq 605 ]; then
	ok fleet_throttle_ephemeral_waits_for_a_long_boot
else
	notok fleet_throttle_ephemeral_waits_for_a_long_boot "slept $(slept) s: $(tail -n 1 "$dir/out")"
fi

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
exit $failed

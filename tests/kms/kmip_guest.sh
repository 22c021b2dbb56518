#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The whole system with a KMIP key manager: cmk-agent in the QEMU guest,
# pykmip-server (mutual TLS, operation policy) on the host, reached only
# through guestfwd (user networking, restrict=on).  The host changes the
# operation policy or revokes the key with PyKMIP's client when the guest
# test asks (control port), so the guest times revoke-to-wipe with its own
# clock.  See tests/kms/guest/kmip_guest_revoke_restore.
#
# Usage: tests/kms/kmip_guest.sh [--kver KVER]     Output: TAP (the guest
# runner's).  Stops every server it starts.  Needs python3-pykmip and a
# built agent.
set -uo pipefail

# shellcheck source=tests/kms/lib.sh
. "$(dirname "$0")/lib.sh"
kms_init kmip-guest
cd "$top" || exit 1
PY=/usr/bin/python3
guest_args kmip_guest "$@"

unset CMK_KMIP_SERVER CMK_KMIP_CLIENT_CERT CMK_KMIP_CLIENT_KEY CMK_KMIP_CA_BUNDLE
export HOME=$T/home
mkdir -p "$HOME" "$T/ctl"
"$PY" -c "import kmip" 2>/dev/null || fail kmip_guest_prerequisites "python3-pykmip not installed"

make -s -C agent all >"$T/build.log" 2>&1 || fail kmip_guest_agent_builds "$(tail -5 "$T/build.log")"
make -s -C tests/integration O="$top/build/tests/integration" >"$T/build.log" 2>&1 ||
	fail kmip_guest_helpers_build "$(tail -5 "$T/build.log")"

# shellcheck source=tests/kms/kmip_lib.sh
. "$here/kmip_lib.sh"
kmip_pki >"$T/pki.log" 2>&1 || fail kmip_guest_certificates "$(tail -c 400 "$T/pki.log")"
kmip_server_conf
kmip_server_start >/dev/null || fail kmip_guest_pykmip_server "$(tail -c 400 "$T/server.out" "$T/server.log" 2>/dev/null)"
admin create cmk-guest cmk >"$T/admin.log" 2>&1 || fail kmip_guest_key_created "$(tail -c 400 "$T/admin.log")"
agent/build/cmkctl kek create --provider kmip --key-ref cmk-guest --set "server=127.0.0.1:$port" \
	--set "client_cert=$C/agent.pem" --set "client_key=$C/agent.key" --set "ca_bundle=$C/ca.pem" \
	--context service=integration --out "$T/kek.json" >"$T/kek.log" 2>&1 ||
	fail kmip_guest_kek_create "$(cat "$T/kek.log")"

# What the guest may ask the host to do.  deny / allow return once the
# server has loaded the changed policy.
echo 'echo pong' >"$T/ctl/ping"
for m in deny allow; do
	right=ALLOW_ALL
	[ $m = deny ] && right=DISALLOW_ALL
	cat >"$T/ctl/$m" <<CTL_END
n=\$(grep -c 'Loading policy: cmk' '$T/server.log')
$(declare -f kmip_policy)
T='$T' kmip_policy $right
for _ in \$(seq 1 100); do
	[ "\$(grep -c 'Loading policy: cmk' '$T/server.log')" -gt "\$n" ] && exit 0
	sleep 0.1
done
exit 1
CTL_END
done
# stop / start: a KMIP server outage (transient errors: grace_s applies):
# the guest reaches the server through tcp_gate.py, which cuts every
# connection while its mode file says "down".
echo up >"$T/gate.mode"
setsid "$PY" "$here/tcp_gate.py" "$T/gate.port" "$port" "$T/gate.mode" >"$T/gate.out" 2>&1 &
pids+=("$!")
printf 'echo down >%q\n' "$T/gate.mode" >"$T/ctl/stop"
printf 'echo up >%q\n' "$T/gate.mode" >"$T/ctl/start"
printf '%q %q %q %q %q %q %q revoke cmk-guest\n' "$PY" "$here/kmip_admin.py" "$T" "$port" \
	"$C/admin.pem" "$C/admin.key" "$C/ca.pem" >"$T/ctl/revoke"
setsid "$PY" "$here/fakes.py" control "$T/ctl.port" "$T/ctl.log" "$T/ctl" >"$T/control.out" 2>&1 &
pids+=("$!")
for _ in $(seq 1 300); do [ -s "$T/ctl.port" ] && [ -s "$T/gate.port" ] && break; sleep 0.1; done
[ -s "$T/ctl.port" ] || fail kmip_guest_control_server "$(cat "$T/control.out")"
[ -s "$T/gate.port" ] || fail kmip_guest_tcp_gate "$(cat "$T/gate.out")"

helpers=$top/build/tests/integration
scripts/qemu/run-guest.sh --kver "$kver" --out "$top/build/results/kms-kmip-guest-$kver" \
	--timeout "${GUEST_TIMEOUT:-600}" --test-timeout 400 \
	--net-fwd "8080=$(cat "$T/gate.port")" --net-fwd "8081=$(cat "$T/ctl.port")" \
	--add agent/build/cmk-agent:/usr/sbin/cmk-agent \
	--add agent/build/cmkctl:/usr/sbin/cmkctl \
	--add "$helpers/cmk-oracle:/usr/bin/cmk-oracle" \
	--add tests/integration/lib.sh:/usr/lib/cmk-test/lib.sh \
	--add "$T/kek.json:/etc/cmk-test/kek.json" \
	--add "$C/agent.pem:/etc/cmk-test/agent.pem" \
	--add "$C/agent.key:/etc/cmk-test/agent.key" \
	--add "$C/ca.pem:/etc/cmk-test/ca.pem" \
	"$here/guest/kmip_guest_revoke_restore"
rc=$?
echo "# host control log: $(tr '\n' ';' <"$T/ctl.log")"
exit $rc

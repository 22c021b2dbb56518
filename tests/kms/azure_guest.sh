#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The whole system with Azure Key Vault: cmk-agent in the QEMU guest, the
# Key Vault emulator (tests/kms/azure_emu.py, held to the Azure SDK by
# tests/kms/azure.sh) on the host, reached through guestfwd: Key Vault over
# HTTPS (a test CA made here, certificate for 10.0.2.100) on guest port
# 8080, its IMDS managed-identity endpoint on 8081, and a control port
# (8082) through which the guest asks the host to disable, enable or
# delete the key, throttle Key Vault or take IMDS down, at moments the
# guest chooses and times with its own clock.  Tokens live 6 s, so the
# agent refreshes them many times during the run; the emulator counts any
# request that arrives with an expired token.  See
# tests/kms/guest/azure_guest_revoke_restore.
#
# Usage: tests/kms/azure_guest.sh [--kver KVER]     Output: TAP (the guest
# runner's).  Stops every server it starts.  Needs a built cmk-agent,
# /usr/bin/python3 with python3-cryptography, openssl, curl.
set -uo pipefail

# shellcheck source=tests/kms/lib.sh
. "$(dirname "$0")/lib.sh"
kms_init azure-guest
cd "$top" || exit 1
guest_args azure_guest "$@"

for v in $(env | sed -n 's/^\(AZURE_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY no_proxy NO_PROXY
mkdir -p "$T/ctl" "$T/emu"

make -s -C agent all >"$T/build.log" 2>&1 || fail azure_guest_agent_builds "$(tail -5 "$T/build.log")"
make -s -C tests/integration O="$top/build/tests/integration" >"$T/build.log" 2>&1 ||
	fail azure_guest_helpers_build "$(tail -5 "$T/build.log")"

{
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/ca.key" -out "$T/ca.pem" \
		-days 2 -subj "/CN=dm-cmk test CA" &&
	openssl req -newkey rsa:2048 -nodes -keyout "$T/tls.key" -out "$T/tls.csr" \
		-subj /CN=10.0.2.100 &&
	printf 'subjectAltName=IP:10.0.2.100,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$T/ext" &&
	openssl x509 -req -in "$T/tls.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" \
		-CAcreateserial -days 2 -extfile "$T/ext" -out "$T/tls.pem"
} >"$T/ca.log" 2>&1 || fail azure_guest_test_ca "$(tail -c 400 "$T/ca.log")"

: >"$T/emu.log"
kms_start emu /usr/bin/python3 "$here/azure_emu.py" "$T/emu" --cert "$T/tls.pem" \
	--key "$T/tls.key" --log "$T/emu.log"
for f in kv imds admin; do
	wait_file "$T/emu/$f.port" || fail azure_guest_emulator_starts "$(cat "$T/emu.out")"
done
ADMIN=http://127.0.0.1:$(cat "$T/emu/admin.port")
adm() { curl -sS --max-time 30 -X POST -d "$2" "$ADMIN/$1"; }
{
	adm key_create '{"name":"cmk","kty":"RSA"}' &&
	adm grant '{"principal":"system","actions":["wrapKey","unwrapKey"]}' &&
	adm token_lifetime '{"seconds":6}'
} >"$T/setup.log" 2>&1 || fail azure_guest_emulator_setup "$(cat "$T/setup.log")"

# What the guest may ask the host to do (tests/kms/fakes.py control).
ctl_adm() {  # ctl_adm NAME ACTION JSON [ACTION JSON]...
	local name=$1
	shift
	{
		while [ $# -gt 0 ]; do
			printf 'curl -sSf --max-time 30 -X POST -d %q %q\n' "$2" "$ADMIN/$1"
			shift 2
		done
	} >"$T/ctl/$name"
}
echo 'echo pong' >"$T/ctl/ping"
ctl_adm disable key_enable '{"name":"cmk","enabled":false}'
ctl_adm enable key_enable '{"name":"cmk","enabled":true}'
ctl_adm delete key_delete '{"name":"cmk"}' key_purge '{"name":"cmk"}'
ctl_adm imds_down fault '{"mode":"imds_500"}'
ctl_adm imds_up fault '{"mode":"pass"}'
ctl_adm tokstats stats '{}'
# throttle / pass: switch the fault, and return only once the agent's next
# unwrapkey has seen it (so the guest knows it took effect).
for m in throttle:429:throttle pass:200:pass; do
	name=${m%%:*} st=${m#*:} st=${st%%:*} mode=${m##*:}
	cat >"$T/ctl/$name" <<CTL_END
n=\$(grep -c 'unwrapkey.*status=$st' '$T/emu.log')
curl -sSf --max-time 30 -X POST -d '{"mode":"$mode"}' '$ADMIN/fault' >/dev/null || exit 1
for _ in \$(seq 1 300); do
	[ "\$(grep -c 'unwrapkey.*status=$st' '$T/emu.log')" -gt "\$n" ] && exit 0
	sleep 0.1
done
exit 1
CTL_END
done
kms_start control python3 "$here/fakes.py" control "$T/ctl.port" "$T/ctl.log" "$T/ctl"
wait_file "$T/ctl.port" || fail azure_guest_control_server "$(cat "$T/control.out")"

helpers=$top/build/tests/integration
scripts/qemu/run-guest.sh --kver "$kver" --out "$top/build/results/kms-azure-guest-$kver" \
	--timeout "${GUEST_TIMEOUT:-600}" --test-timeout 400 \
	--net-fwd "8080=$(cat "$T/emu/kv.port")" --net-fwd "8081=$(cat "$T/emu/imds.port")" \
	--net-fwd "8082=$(cat "$T/ctl.port")" \
	--add agent/build/cmk-agent:/usr/sbin/cmk-agent \
	--add agent/build/cmkctl:/usr/sbin/cmkctl \
	--add "$helpers/cmk-oracle:/usr/bin/cmk-oracle" \
	--add tests/integration/lib.sh:/usr/lib/cmk-test/lib.sh \
	--add "$T/ca.pem:/etc/cmk-test/ca.pem" \
	"$here/guest/azure_guest_revoke_restore"
rc=$?
echo "# host control log: $(tr '\n' ';' <"$T/ctl.log")"
echo "# emulator: $(adm stats '{}' 2>/dev/null)"
exit $rc

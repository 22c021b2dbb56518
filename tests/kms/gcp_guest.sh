#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The whole system with Google Cloud KMS: cmk-agent in the QEMU guest, the
# Cloud KMS emulator (tests/kms/gcp_emu.py, held to gcloud by
# tests/kms/gcp.sh) on the host, reached over HTTPS through guestfwd, and
# its metadata server for the agent's tokens (short-lived here, so they are
# refreshed many times during the run).  The host disables, enables and
# destroys the key version and injects RESOURCE_EXHAUSTED / UNAVAILABLE
# answers when the guest test asks (control port), so the guest times what
# follows with its own clock.  See tests/kms/guest/gcp_guest_revoke_restore.
#
# Usage: tests/kms/gcp_guest.sh [--kver KVER]     Output: TAP (the guest
# runner's).  Stops every server it starts.  Needs a built cmk-agent,
# python3 with cryptography, openssl, curl.
set -uo pipefail

# shellcheck source=tests/kms/lib.sh
. "$(dirname "$0")/lib.sh"
kms_init gcp-guest
cd "$top" || exit 1
guest_args gcp_guest "$@"

for v in $(env | sed -n 's/^\(CLOUDSDK_[A-Z_]*\|GOOGLE_[A-Z_]*\|GCE_[A-Z_]*\)=.*/\1/p'); do
	unset "$v"
done
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY no_proxy NO_PROXY
export HOME=$T/home
mkdir -p "$HOME" "$T/ctl"

make -s -C agent all >"$T/build.log" 2>&1 || fail gcp_guest_agent_builds "$(tail -5 "$T/build.log")"
make -s -C tests/integration O="$top/build/tests/integration" >"$T/build.log" 2>&1 ||
	fail gcp_guest_helpers_build "$(tail -5 "$T/build.log")"
python3 -c 'import cryptography' 2>/dev/null || fail gcp_guest_prerequisites "python3 has no cryptography module"

# Test CA; the server certificate names the address the guest dials too.
{
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/ca.key" -out "$T/ca.pem" \
		-days 2 -subj "/CN=dm-cmk gcp guest test CA" \
		-addext basicConstraints=critical,CA:TRUE \
		-addext keyUsage=critical,keyCertSign,cRLSign &&
	openssl req -newkey rsa:2048 -nodes -keyout "$T/srv.key" -out "$T/srv.csr" \
		-subj /CN=127.0.0.1 &&
	printf 'subjectAltName=IP:127.0.0.1,IP:10.0.2.100\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$T/srv.ext" &&
	openssl x509 -req -in "$T/srv.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" \
		-CAcreateserial -out "$T/srv.pem" -days 2 -extfile "$T/srv.ext"
} >"$T/pki.log" 2>&1 || fail gcp_guest_test_pki "$(tail -c 400 "$T/pki.log")"

VM_SA=vm-sa@emu-project.iam.gserviceaccount.com
ADMIN=user:admin@example.com
ADMIN_TOK=admin-token-guest-0123456789
: >"$T/emu.log"
# Metadata tokens live 6 s: the agent refreshes them every few seconds.
kms_start emu python3 "$here/gcp_emu.py" --cert "$T/srv.pem" --key "$T/srv.key" \
	--ports "$T/ports.json" --log "$T/emu.log" --token "$ADMIN_TOK=$ADMIN" \
	--owner "$ADMIN" --metadata-account "$VM_SA" --token-lifetime 6 --destroy-after 3
wait_file "$T/ports.json" || fail gcp_guest_emulator_starts "$(cat "$T/emu.out")"
kms_port=$(jq_ "d['kms']" <"$T/ports.json")
md_port=$(jq_ "d['metadata']" <"$T/ports.json")
EMU=https://127.0.0.1:$kms_port
KEY=projects/emu-project/locations/global/keyRings/cmk/cryptoKeys/kek

emu_admin() {  # METHOD PATH [JSON]
	curl -sS --cacert "$T/ca.pem" -X "$1" -H "Authorization: Bearer $ADMIN_TOK" \
		-H 'Content-Type: application/json' ${3:+-d "$3"} "$EMU$2"
}
{
	emu_admin POST "/v1/projects/emu-project/locations/global/keyRings?keyRingId=cmk" '{}' &&
	emu_admin POST "/v1/projects/emu-project/locations/global/keyRings/cmk/cryptoKeys?cryptoKeyId=kek" \
		'{"purpose":"ENCRYPT_DECRYPT"}' &&
	emu_admin POST "/v1/$KEY:setIamPolicy" "{\"policy\":{\"bindings\":[{\"role\":\"roles/cloudkms.cryptoKeyEncrypterDecrypter\",\"members\":[\"serviceAccount:$VM_SA\"]}]}}"
} >"$T/setup.log" 2>&1 || fail gcp_guest_emulator_setup "$(tail -c 400 "$T/setup.log")"

# The envelope, made on the host by cmkctl with the VM's metadata identity.
CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDKMS=$EMU CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE=$T/ca.pem \
GCE_METADATA_HOST=127.0.0.1:$md_port agent/build/cmkctl kek create --provider gcp \
	--key-ref "$KEY" --context service=integration --out "$T/kek.json" >"$T/kek.log" 2>&1 ||
	fail gcp_guest_kek_create "$(cat "$T/kek.log")"

# What the guest may ask the host to do (tests/kms/fakes.py control).
echo 'echo pong' >"$T/ctl/ping"
ver="/v1/$KEY/cryptoKeyVersions/1"
for s in DISABLED ENABLED; do
	printf 'curl -sSf --cacert %q -X PATCH -H %q -H "Content-Type: application/json" -d %q %q\n' \
		"$T/ca.pem" "Authorization: Bearer $ADMIN_TOK" "{\"state\":\"$s\"}" \
		"$EMU$ver?updateMask=state" >"$T/ctl/$(echo "$s" | tr '[:upper:]' '[:lower:]')"
done
printf 'curl -sSf --cacert %q -X POST -H %q %q\n' "$T/ca.pem" \
	"Authorization: Bearer $ADMIN_TOK" "$EMU$ver:destroy" >"$T/ctl/destroy"
printf 'curl -sSf --cacert %q -H %q %q\n' "$T/ca.pem" \
	"Authorization: Bearer $ADMIN_TOK" "$EMU$ver" >"$T/ctl/version"
# fault MODE: switch the emulator, and return once the agent's next call
# has seen it (so the guest knows it took effect).
for m in RESOURCE_EXHAUSTED UNAVAILABLE none; do
	case $m in
	none) pat=':decrypt principal=serviceAccount:.* status=200' ;;
	*) pat="status=[0-9]* $m " ;;
	esac
	cat >"$T/ctl/$(echo "$m" | tr '[:upper:]' '[:lower:]')" <<CTL_END
n=\$(grep -c '$pat' '$T/emu.log')
curl -sSf --cacert '$T/ca.pem' -X POST -d '{"mode": "$m", "count": -1}' '$EMU/emu/fault' >/dev/null || exit 1
for _ in \$(seq 1 300); do
	[ "\$(grep -c '$pat' '$T/emu.log')" -gt "\$n" ] && exit 0
	sleep 0.1
done
exit 1
CTL_END
done
# tokens: how many metadata tokens were fetched, and how many calls were refused with 401
cat >"$T/ctl/tokens" <<CTL_END
echo "metadata_tokens=\$(grep -c '^MD GET .*flavor=Google' '$T/emu.log') unauthenticated=\$(grep -c 'status=401' '$T/emu.log') decrypts=\$(grep -c ':decrypt principal=.* status=200' '$T/emu.log')"
CTL_END
kms_start control python3 "$here/fakes.py" control "$T/ctl.port" "$T/ctl.log" "$T/ctl"
wait_file "$T/ctl.port" || fail gcp_guest_control_server "$(cat "$T/control.out")"

helpers=$top/build/tests/integration
scripts/qemu/run-guest.sh --kver "$kver" --out "$top/build/results/kms-gcp-guest-$kver" \
	--timeout "${GUEST_TIMEOUT:-600}" --test-timeout 400 \
	--net-fwd "8080=$kms_port" --net-fwd "8081=$(cat "$T/ctl.port")" \
	--net-fwd "8082=$md_port" \
	--add agent/build/cmk-agent:/usr/sbin/cmk-agent \
	--add agent/build/cmkctl:/usr/sbin/cmkctl \
	--add "$helpers/cmk-oracle:/usr/bin/cmk-oracle" \
	--add tests/integration/lib.sh:/usr/lib/cmk-test/lib.sh \
	--add "$T/kek.json:/etc/cmk-test/kek.json" \
	--add "$T/ca.pem:/etc/cmk-test/ca.pem" \
	"$here/guest/gcp_guest_revoke_restore"
rc=$?
echo "# host control log: $(tr '\n' ';' <"$T/ctl.log")"
exit $rc

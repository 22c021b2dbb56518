#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The gcp provider against the Cloud KMS emulator (tests/kms/gcp_emu.py)
# on 127.0.0.1, over HTTPS with a test CA made here with openssl.
#
# First the emulator is held to the official client users run, gcloud
# (gcloud_* tests): key ring and key creation, IAM binding, encrypt and
# decrypt with --additional-authenticated-data-file and gcloud's own CRC32C
# verification of the answers (it refuses a corrupted one), version
# disable/enable, and a service-account key exchanged at the emulator's
# token endpoint by gcloud's own JWT.  Only then is the agent (cmkctl and
# tests/kms/kmsdrv, one long-lived provider like cmk-agent) run against
# it (gcp_* tests), with gcloud as the oracle that what the agent wrapped
# decrypts with the canonical encryption context as AAD.
#
# gcloud runs with an isolated CLOUDSDK_CONFIG, prompts, usage reporting
# and update checks off, and talks only to 127.0.0.1.
#
# Usage: tests/kms/gcp.sh        Output: TAP.  Every server it starts is
# stopped on exit.  Needs: gcloud, python3 with cryptography (the pyenv
# python3 first on PATH; Debian's /usr/bin/python3 works too), openssl,
# curl, and a built agent (make -C agent).
set -uo pipefail

# shellcheck source=tests/kms/lib.sh
. "$(dirname "$0")/lib.sh"
kms_init gcp
t_start=$(date +%s)

# Nothing from the caller's environment may leak into gcloud or the agent.
for v in $(env | sed -n 's/^\(CLOUDSDK_[A-Z_]*\|GOOGLE_[A-Z_]*\|GCE_[A-Z_]*\)=.*/\1/p'); do
	unset "$v"
done
# requests (inside gcloud) prefers these over gcloud's custom CA setting.
unset REQUESTS_CA_BUNDLE CURL_CA_BUNDLE SSL_CERT_FILE
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY no_proxy NO_PROXY ALL_PROXY all_proxy
export HOME=$T/home
mkdir -p "$HOME"
export CLOUDSDK_CONFIG=$T/gcloud CLOUDSDK_CORE_DISABLE_PROMPTS=1 \
	CLOUDSDK_CORE_DISABLE_USAGE_REPORTING=true \
	CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK=true \
	CLOUDSDK_CORE_DISABLE_FILE_LOGGING=true CLOUDSDK_CORE_CHECK_GCE_METADATA=false \
	CLOUDSDK_METRICS_ENVIRONMENT=dm-cmk-test CLOUDSDK_CORE_PROJECT=emu-project

for c in gcloud python3 openssl curl; do
	command -v "$c" >/dev/null || die gcp_prerequisites "$c not found"
done
python3 -c 'import cryptography' 2>/dev/null || die gcp_prerequisites "python3 has no cryptography module"
kms_build gcp

# ---- test CA, server certificate, service-account key ------------------------
{
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/ca.key" -out "$T/ca.pem" \
		-days 2 -subj "/CN=dm-cmk gcp test CA" \
		-addext basicConstraints=critical,CA:TRUE \
		-addext keyUsage=critical,keyCertSign,cRLSign &&
	openssl req -newkey rsa:2048 -nodes -keyout "$T/srv.key" -out "$T/srv.csr" \
		-subj /CN=127.0.0.1 &&
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$T/srv.ext" &&
	openssl x509 -req -in "$T/srv.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" \
		-CAcreateserial -out "$T/srv.pem" -days 2 -extfile "$T/srv.ext" &&
	for k in sa sa2 sa3; do
		openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/$k.key" &&
			openssl pkey -in "$T/$k.key" -pubout -out "$T/$k.pub" || exit 1
	done
} >"$T/last" 2>&1 || die gcp_test_pki "$(tail -c 400 "$T/last")"

SA=cmk-agent@emu-project.iam.gserviceaccount.com
SA_KID=7f3c9a0d5e2b41c6a8f0e1d2c3b4a5968778695a
# two more keys of the same account, for the rotation tests
SA_KID2=8a4dab1e6f3c52d7b9a1f2e3d4c5b6a7988979a6
SA_KID3=9b5ebc2f7a4d63e8cab2a3f4e5d6c7b8a99a8ab7
VM_SA=vm-sa@emu-project.iam.gserviceaccount.com
ADMIN=user:admin@example.com
echo admin-token-0123456789 >"$T/admin.tok"
: >"$T/emu.log"
kms_start emu python3 "$here/gcp_emu.py" --cert "$T/srv.pem" --key "$T/srv.key" \
	--ports "$T/ports.json" --log "$T/emu.log" \
	--token "admin-token-0123456789=$ADMIN" --owner "$ADMIN" \
	--service-account "$SA" "$SA_KID" "$T/sa.pub" --service-account "$SA" "$SA_KID2" "$T/sa2.pub" \
	--service-account "$SA" "$SA_KID3" "$T/sa3.pub" --metadata-account "$VM_SA"
wait_file "$T/ports.json" || die gcp_emulator_starts "$(cat "$T/emu.out")"
kms_port=$(jq_ "d['kms']" <"$T/ports.json")
md_port=$(jq_ "d['metadata']" <"$T/ports.json")
EMU=https://127.0.0.1:$kms_port
MD=http://127.0.0.1:$md_port
# The key file as Google issues it, pointing at the emulator's token endpoint.
sa_json() {  # sa_json KEY KID OUT
	python3 - "$1" "$3" "$SA" "$2" "$EMU/token" <<'PY'
import json, sys
key, out, email, kid, uri = sys.argv[1:]
json.dump({"type": "service_account", "project_id": "emu-project",
           "private_key_id": kid, "private_key": open(key).read(),
           "client_email": email, "client_id": "104000000000000000001",
           "auth_uri": "https://accounts.google.com/o/oauth2/auth",
           "token_uri": uri,
           "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
           "universe_domain": "googleapis.com"}, open(out, "w"), indent=2)
PY
	chmod 600 "$3"
}
sa_json "$T/sa.key" "$SA_KID" "$T/sa.json"
sa_json "$T/sa2.key" "$SA_KID2" "$T/sa2.json"
sa_json "$T/sa3.key" "$SA_KID3" "$T/sa3.json"

export CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDKMS=$EMU/ CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE=$T/ca.pem
RING=projects/emu-project/locations/global/keyRings/cmk
KEY=$RING/cryptoKeys/kek
# emu_admin METHOD PATH [JSON]: the REST API (or /emu/) as the admin
emu_admin() {
	curl -sS --cacert "$T/ca.pem" -X "$1" -H "Authorization: Bearer $(cat "$T/admin.tok")" \
		-H 'Content-Type: application/json' ${3:+-d "$3"} "$EMU$2"
}
gc() {  # gcloud as the admin (access-token file); output in $T/last
	gcloud --access-token-file="$T/admin.tok" "$@" >"$T/last" 2>&1
}
kflags=(--location global --keyring cmk --key kek)

# ---- the emulator, held to gcloud ---------------------------------------------
t_gc=$(date +%s)
check gcloud_keyrings_create gc kms keyrings create cmk --location global
check gcloud_keys_create_encrypt_decrypt gc kms keys create kek --location global \
	--keyring cmk --purpose encryption
check gcloud_add_iam_policy_binding_for_agent_accounts bash -c "
	gcloud --access-token-file=$T/admin.tok kms keys add-iam-policy-binding kek \
		--location global --keyring cmk --member serviceAccount:$SA \
		--role roles/cloudkms.cryptoKeyEncrypterDecrypter >$T/last 2>&1 &&
	gcloud --access-token-file=$T/admin.tok kms keys add-iam-policy-binding kek \
		--location global --keyring cmk --member serviceAccount:$VM_SA \
		--role roles/cloudkms.cryptoKeyEncrypterDecrypter >>$T/last 2>&1 &&
	grep -q 'serviceAccount:$VM_SA' $T/last"
head -c 32 /dev/urandom >"$T/pt"
printf 'tenant=a;volume=cache0' >"$T/aad"
check gcloud_encrypt_with_aad_integrity_verified gc kms encrypt "${kflags[@]}" \
	--plaintext-file "$T/pt" --ciphertext-file "$T/ct" \
	--additional-authenticated-data-file "$T/aad"
check gcloud_encrypt_sent_crc32c_fields grep -q ':encrypt principal=.* status=200 crc=pt,aad aad_len=22' "$T/emu.log"
check gcloud_decrypt_round_trip_integrity_verified bash -c "
	gcloud --access-token-file=$T/admin.tok kms decrypt ${kflags[*]} --ciphertext-file $T/ct \
		--plaintext-file $T/pt2 --additional-authenticated-data-file $T/aad >$T/last 2>&1 &&
	cmp $T/pt $T/pt2"
printf 'tenant=b;volume=cache0' >"$T/aad-other"
check gcloud_decrypt_with_other_aad_refused bash -c "
	! gcloud --access-token-file=$T/admin.tok kms decrypt ${kflags[*]} --ciphertext-file $T/ct \
		--plaintext-file $T/pt3 --additional-authenticated-data-file $T/aad-other >$T/last 2>&1 &&
	grep -q 'INVALID_ARGUMENT: Decryption failed' $T/last"
# The oracle that gcloud checks what the emulator sends: a wrong CRC32C is caught.
emu_admin POST /emu/fault '{"mode": "bad_crc", "count": 1}' >/dev/null
check gcloud_refuses_answer_with_bad_crc32c bash -c "
	! gcloud --access-token-file=$T/admin.tok kms encrypt ${kflags[*]} --plaintext-file $T/pt \
		--ciphertext-file $T/ct-bad >$T/last 2>&1 && grep -qi 'corrupt\|integrity\|checksum' $T/last"
emu_admin POST /emu/fault '{"mode": "none"}' >/dev/null
check gcloud_versions_disable gc kms keys versions disable 1 "${kflags[@]}"
check gcloud_decrypt_disabled_version_failed_precondition bash -c "
	! gcloud --access-token-file=$T/admin.tok kms decrypt ${kflags[*]} --ciphertext-file $T/ct \
		--plaintext-file $T/pt3 --additional-authenticated-data-file $T/aad >$T/last 2>&1 &&
	grep -q 'FAILED_PRECONDITION' $T/last && grep -q 'DISABLED' $T/last"
check gcloud_versions_enable gc kms keys versions enable 1 "${kflags[@]}"
# gcloud's own JWT bearer grant at the emulator's token endpoint.
check gcloud_service_account_key_activates gc auth activate-service-account \
	--key-file "$T/sa.json"
check gcloud_service_account_token_exchange_and_encrypt bash -c "
	gcloud --account=$SA kms encrypt ${kflags[*]} --plaintext-file $T/pt \
		--ciphertext-file $T/ct-sa --additional-authenticated-data-file $T/aad >$T/last 2>&1 &&
	grep -q '^POST /token status=200' $T/emu.log &&
	grep -q ':encrypt principal=serviceAccount:$SA status=200' $T/emu.log"
echo "# gcloud conformance checks: $(($(date +%s) - t_gc)) s"

# ---- the agent ------------------------------------------------------------------------
# agent CMD...: the agent's environment (endpoint, CA and key as gcloud's/ADC's variables)
agent() {
	GOOGLE_APPLICATION_CREDENTIALS=$T/sa.json "$@"
}
kek=$T/kek.json
check gcp_kek_create_provisions_envelope bash -c "
	$(declare -f agent rc_is); T=$T
	rc_is 0 agent $cmkctl kek create --provider gcp --key-ref $KEY --context service=pg \
		--context cluster=c-42 --out $kek &&
	grep -q '\"provider\": \"gcp\"' $kek && grep -q '\"key_ref\": \"$KEY\"' $kek"
# What the agent sends as AAD: the canonical encryption context (encctx.h),
# computed here independently.
python3 - "$kek" "$T/wrapped.bin" "$T/ctx.aad" <<'PY'
import base64, json, struct, sys
e = json.load(open(sys.argv[1]))
open(sys.argv[2], "wb").write(base64.b64decode(e["wrapped_kek"]))
ctx = e.get("encryption_context", {})
out = b"CMKCTX01" + struct.pack("<I", len(ctx))
for k in sorted(ctx, key=lambda s: s.encode()):
    kb, vb = k.encode(), ctx[k].encode()
    out += struct.pack("<I", len(kb)) + kb + struct.pack("<I", len(vb)) + vb
open(sys.argv[3], "wb").write(out)
PY
aad_len=$(stat -c %s "$T/ctx.aad")
check gcp_agent_encrypt_sends_crc32c_and_aad grep -q \
	":encrypt principal=serviceAccount:$SA status=200 crc=pt,aad aad_len=$aad_len" "$T/emu.log"
# Oracle: gcloud decrypts what the agent wrapped, with that AAD, and its
# CRC32C check of the answer passes.
check gcp_envelope_decrypts_with_gcloud_and_context_aad bash -c "
	gcloud --access-token-file=$T/admin.tok kms decrypt ${kflags[*]} --ciphertext-file $T/wrapped.bin \
		--plaintext-file $T/kek.plain --additional-authenticated-data-file $T/ctx.aad >$T/last 2>&1 &&
	test \"\$(stat -c %s $T/kek.plain)\" -eq 32"
rm -f "$T/kek.plain"
check gcp_unseal_kek_check rc_is 0 agent "$cmkctl" kek check "$kek"
check gcp_agent_decrypt_sends_crc32c_and_aad grep -q \
	":decrypt principal=serviceAccount:$SA status=200 crc=ct,aad aad_len=$aad_len" "$T/emu.log"

# ---- the long-lived driver -----------------------------------------------------------
count() { grep -c -- "$1" "$T/emu.log"; }

export CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE	# the agent reads it as its CA bundle
agent drv_start "$kek" max_attempts=3 timeout_ms=2000 connect_timeout_ms=1000
t0=$(count '^POST /token status=200')
drv "bench 20"
if is "$R" "bench n=20 failed=0 *"; then
	ok gcp_unseal_latency_measured "$R"
else
	nok gcp_unseal_latency_measured "$R"
fi
echo "# unseal (Cloud KMS decrypt through the provider, emulator over HTTPS on loopback): $R"
check gcp_token_one_fetch_for_20_calls test "$(count "^POST /token status=200")" -eq $((t0 + 1))

# IAM: the binding removed is a definitive PERMISSION_DENIED, restored when re-added.
policy() {
	emu_admin POST "/v1/$KEY:setIamPolicy" "{\"policy\":{\"bindings\":[{\"role\":\"roles/cloudkms.cryptoKeyEncrypterDecrypter\",\"members\":[$1]}]}}" >"$T/last"
}
policy "\"serviceAccount:$VM_SA\""
check gcp_iam_binding_removed_is_definitive_denied drv_is check "err definitive denied *PERMISSION_DENIED*"
check gcp_iam_denied_cmkctl_exit_2 rc_is 2 agent "$cmkctl" kek check "$kek"
policy "\"serviceAccount:$VM_SA\",\"serviceAccount:$SA\""
check gcp_iam_binding_restored_access_back drv_is check "ok *"

# Key version disabled / enabled (the PATCH gcloud sent above).
emu_admin PATCH "/v1/$KEY/cryptoKeyVersions/1?updateMask=state" '{"state":"DISABLED"}' >"$T/last"
check gcp_version_disabled_is_definitive drv_is check "err definitive disabled *FAILED_PRECONDITION*DISABLED*"
check gcp_version_disabled_cmkctl_exit_2 rc_is 2 agent "$cmkctl" kek check "$kek"
emu_admin PATCH "/v1/$KEY/cryptoKeyVersions/1?updateMask=state" '{"state":"ENABLED"}' >"$T/last"
check gcp_version_enabled_access_back drv_is check "ok *"

# Cloud EKM: FAILED_PRECONDITION with PreconditionFailure details and no
# state in the message, for an external key manager that cannot be reached
# as for one that refused the key.  The provider asks for the version's
# state (GET, roles/cloudkms.viewer); the emulator's version state is the
# oracle (Cloud EKM disables the version when the EKM refuses the key).
bindings() {  # bindings EXTRA: the agent's role, plus EXTRA bindings
	emu_admin POST "/v1/$KEY:setIamPolicy" "{\"policy\":{\"bindings\":[{\"role\":\"roles/cloudkms.cryptoKeyEncrypterDecrypter\",\"members\":[\"serviceAccount:$VM_SA\",\"serviceAccount:$SA\"]}$1]}}" >"$T/last"
}
bindings ",{\"role\":\"roles/cloudkms.viewer\",\"members\":[\"serviceAccount:$SA\"]}"
: >"$T/emu.log"
emu_admin POST /emu/fault '{"mode": "ekm_unreachable", "count": -1}' >/dev/null
check gcp_classify_ekm_unreachable_version_enabled_is_transient drv_is check \
	"err transient unavailable *FAILED_PRECONDITION*Could not query EKM host*version 1 is ENABLED*not a revocation*"
check gcp_classify_ekm_asked_version_state \
	grep -q "^GET /v1/$KEY/cryptoKeyVersions/1 principal=serviceAccount:$SA status=200" "$T/emu.log"
check gcp_classify_ekm_confirmed_not_repeated test "$(count ':decrypt.*FAILED_PRECONDITION')" -eq 1
emu_admin POST /emu/fault '{"mode": "ekm_denied", "count": 1}' >/dev/null
check gcp_classify_ekm_denied_version_disabled_is_definitive drv_is check \
	"err definitive disabled *Permission was denied*version 1 is DISABLED*"
emu_admin PATCH "/v1/$KEY/cryptoKeyVersions/1?updateMask=state" '{"state":"ENABLED"}' >"$T/last"
bindings ""
emu_admin POST /emu/fault '{"mode": "ekm_unreachable", "count": -1}' >/dev/null
check gcp_classify_ekm_unconfirmed_is_transient drv_is check \
	"err transient unavailable *FAILED_PRECONDITION*HTTP 403*not taken as a revocation*"
emu_admin POST /emu/fault '{"mode": "none"}' >/dev/null
check gcp_classify_ekm_over drv_is check "ok *"

# Transient Status errors: retried (max_attempts=3), never definitive.
for m in UNAVAILABLE RESOURCE_EXHAUSTED INTERNAL DEADLINE_EXCEEDED; do
	before=$(count "status=[0-9]* $m ")
	emu_admin POST /emu/fault "{\"mode\": \"$m\", \"count\": -1}" >/dev/null
	case $m in
	RESOURCE_EXHAUSTED) want="err transient throttled *$m*" ;;
	DEADLINE_EXCEEDED) want="err transient timeout *$m*" ;;
	*) want="err transient unavailable *$m*" ;;
	esac
	low=$(echo "$m" | tr '[:upper:]' '[:lower:]')
	check "gcp_${low}_is_transient" drv_is check "$want"
	check "gcp_${low}_retried_3_times" test "$(($(count "status=[0-9]* $m ") - before))" -eq 3
done
emu_admin POST /emu/fault '{"mode": "UNAVAILABLE", "count": 1}' >/dev/null
check gcp_unavailable_once_then_succeeds drv_is check "ok *"
emu_admin POST /emu/fault '{"mode": "bad_crc", "count": -1}' >/dev/null
check gcp_corrupted_answer_crc32c_refused_transient drv_is check "err transient unavailable *plaintextCrc32c*"
# Encrypt answers the agent must not turn into an envelope.
emu_admin POST /emu/fault '{"mode": "unverified", "count": -1}' >/dev/null
check gcp_encrypt_answer_without_verified_crc32c_refused bash -c "
	$(declare -f agent rc_is last_has); T=$T
	rc_is 3 agent $cmkctl kek create --provider gcp --key-ref $KEY --out $T/kek-x.json &&
	last_has 'did not confirm the CRC32C' && test ! -e $T/kek-x.json"
emu_admin POST /emu/fault '{"mode": "other_key", "count": -1}' >/dev/null
check gcp_encrypt_answer_naming_another_key_refused bash -c "
	$(declare -f agent rc_is last_has); T=$T
	rc_is 1 agent $cmkctl kek create --provider gcp --key-ref $KEY --out $T/kek-x.json &&
	last_has 'names key version' && test ! -e $T/kek-x.json"
emu_admin POST /emu/fault '{"mode": "hang", "count": -1}' >/dev/null
check gcp_hang_is_transient_timeout drv_is check "err transient timeout *"
emu_admin POST /emu/fault '{"mode": "none"}' >/dev/null
check gcp_after_faults_passes drv_is check "ok *"

# An access token refused (401) is replaced once, without a failed call.
emu_admin POST /emu/config '{"revoke_tokens": true}' >/dev/null
before=$(count '^POST /token status=200')
check gcp_revoked_token_replaced_after_401 drv_is check "ok *"
check gcp_revoked_token_one_401_then_new_token bash -c "
	grep -q 'status=401 UNAUTHENTICATED' $T/emu.log &&
	test \$(grep -c '^POST /token status=200' $T/emu.log) -gt $before"
drv_stop

# Short-lived tokens: refreshed before they expire, so no call ever sees a 401.
emu_admin POST /emu/config '{"token_lifetime": 4}' >/dev/null
agent drv_start "$kek"
u0=$(count 'status=401')
t0=$(count '^POST /token status=200')
bad=0
for _ in $(seq 1 20); do
	drv check
	is "$R" "ok *" || bad=$((bad + 1))
	sleep 0.5
done
check gcp_short_tokens_every_check_passed test "$bad" -eq 0
check gcp_short_tokens_refreshed_without_a_401 test "$(count 'status=401')" -eq "$u0"
issued=$(($(count '^POST /token status=200') - t0))
check gcp_short_tokens_were_refreshed test "$issued" -ge 3
echo "# 4 s tokens over ~10 s of checks: $issued tokens fetched, no 401"
emu_admin POST /emu/config '{"token_lifetime": 3599}' >/dev/null
drv_stop

# ---- metadata server ------------------------------------------------------------------
: >"$T/md-marker"
drv_start "$kek" credentials=metadata "metadata_endpoint=$MD"
check gcp_metadata_server_token drv_is check "ok *"
check gcp_metadata_request_has_flavor_header grep -q "^MD GET /computeMetadata/v1/instance/service-accounts/default/token flavor=Google proxied=False" "$T/emu.log"
check gcp_metadata_principal_used grep -q ":decrypt principal=serviceAccount:$VM_SA status=200" "$T/emu.log"
emu_admin POST /emu/metadata '{"up": false}' >/dev/null
check gcp_metadata_outage_keeps_unexpired_token drv_is check "ok *"
emu_admin POST /emu/metadata '{"up": true}' >/dev/null
drv_stop
emu_admin POST /emu/config '{"metadata_flavor": false}' >/dev/null
drv_start "$kek" credentials=metadata "metadata_endpoint=$MD" max_attempts=1
check gcp_metadata_without_flavor_echo_refused drv_is check "err transient network *not the metadata server*"
drv_stop
emu_admin POST /emu/config '{"metadata_flavor": true}' >/dev/null
GCE_METADATA_HOST=127.0.0.1:$md_port drv_start "$kek"
check gcp_gce_metadata_host_environment drv_is check "ok *"
drv_stop

# ---- envelope tampering ------------------------------------------------------------------
python3 - "$kek" "$T/kek-ctx.json" "$T/kek-bits.json" <<'PY'
import base64, json, sys
e = json.load(open(sys.argv[1]))
c = dict(e); c['encryption_context'] = dict(e['encryption_context'], cluster='c-43')
json.dump(c, open(sys.argv[2], 'w'))
b = bytearray(base64.b64decode(e['wrapped_kek'])); b[-5] ^= 1
t = dict(e); t['wrapped_kek'] = base64.b64encode(bytes(b)).decode()
json.dump(t, open(sys.argv[3], 'w'))
PY
check gcp_encryption_context_mismatch_refused bash -c "
	$(declare -f agent rc_is last_has); T=$T
	rc_is 2 agent $cmkctl kek check $T/kek-ctx.json && last_has 'Decryption failed'"
check gcp_tampered_wrapped_kek_refused rc_is 2 agent "$cmkctl" kek check "$T/kek-bits.json"

# ---- TLS ---------------------------------------------------------------------------------
check gcp_untrusted_certificate_refused_transient bash -c "
	env -u CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE GOOGLE_APPLICATION_CREDENTIALS=$T/sa.json \
		$cmkctl kek check $kek >$T/last 2>&1; test \$? -eq 3"

# ---- key rotation: a new primary version, the KEK re-wrapped under it --------------
cp "$kek" "$T/kek-rot.json"
{
	emu_admin POST "/v1/$KEY/cryptoKeyVersions" '{}' &&
	emu_admin POST "/v1/$KEY:updatePrimaryVersion" '{"cryptoKeyVersionId": "2"}'
} >"$T/last" 2>&1
drv_start "$T/kek-rot.json" credentials=metadata "metadata_endpoint=$MD"
check gcp_rewrap_under_new_primary_version drv_is "rewrap $KEY" "ok *"
emu_admin PATCH "/v1/$KEY/cryptoKeyVersions/1?updateMask=state" '{"state":"DISABLED"}' >"$T/last"
# Oracle: with the old version disabled, only the re-wrapped envelope unseals.
check gcp_rewrapped_envelope_unseals_with_old_version_disabled drv_is check "ok *"
check gcp_old_envelope_refused_with_old_version_disabled rc_is 2 agent "$cmkctl" kek check "$kek"
emu_admin PATCH "/v1/$KEY/cryptoKeyVersions/1?updateMask=state" '{"state":"ENABLED"}' >"$T/last"
drv_stop

# ---- a rotated service-account key: read again, never a revocation -------------------
# The account gets a second key, the file is replaced by it, the old key is
# deleted, while one provider keeps checking; tokens are revoked so the next
# check needs the token endpoint.  Oracle: the emulator's token endpoint
# (invalid_grant for a deleted key).
cp "$T/sa.json" "$T/sa-rot.json"
GOOGLE_APPLICATION_CREDENTIALS=$T/sa-rot.json drv_start "$kek"
check gcp_credential_rotation_before drv_is check "ok *"
cp "$T/sa2.json" "$T/sa-rot.tmp" && mv "$T/sa-rot.tmp" "$T/sa-rot.json"
emu_admin DELETE "/v1/projects/-/serviceAccounts/$SA/keys/$SA_KID" >"$T/last"
emu_admin POST /emu/config '{"revoke_tokens": true}' >/dev/null
: >"$T/emu.log"
check gcp_credential_rotation_no_revocation drv_is check "ok *"
check gcp_credential_rotation_old_key_refused_by_token_endpoint bash -c "
	grep '^POST /token' $T/emu.log | head -1 | grep -q 'status=400 invalid_grant' &&
	grep '^POST /token' $T/emu.log | tail -1 | grep -q 'status=200'"
# The wrong order: the key in the file deleted before the file has the new
# one.  Definitive; the new key in the file restores without a restart.
emu_admin DELETE "/v1/projects/-/serviceAccounts/$SA/keys/$SA_KID2" >"$T/last"
emu_admin POST /emu/config '{"revoke_tokens": true}' >/dev/null
check gcp_credential_deleted_without_replacement_is_definitive drv_is check \
	"err definitive denied *invalid_grant*"
# The file rewritten in place, caught half way: it says nothing about the
# key, so never a revocation (a local error).
head -c 100 "$T/sa3.json" >"$T/sa-rot.json"
check gcp_credential_half_written_file_is_not_definitive drv_is check \
	"err local local *not taken as a revocation*"
cp "$T/sa3.json" "$T/sa-rot.tmp" && mv "$T/sa-rot.tmp" "$T/sa-rot.json"
check gcp_credential_fixed_file_restores_without_restart drv_is check "ok *"
drv_stop

# ---- the service-account key deleted: the token endpoint says invalid_grant -------------
emu_admin POST /emu/config '{"revoke_tokens": true}' >/dev/null
check gcp_deleted_service_account_key_is_definitive bash -c "
	$(declare -f agent rc_is last_has); T=$T
	rc_is 2 agent $cmkctl kek check $kek && last_has invalid_grant && ! last_has 'BEGIN'"

# ---- destroy: scheduled, then destroyed; it stays refused ----------------------------------
drv_start "$kek" credentials=metadata "metadata_endpoint=$MD"
emu_admin POST "/v1/$KEY/cryptoKeyVersions/1:destroy" >"$T/last"
check gcp_version_destroy_scheduled_is_definitive drv_is check "err definitive destroyed *DESTROY_SCHEDULED*"
sleep 2.5
check gcp_version_destroyed_is_definitive drv_is check "err definitive destroyed *DESTROYED*"
emu_admin POST "/v1/$KEY/cryptoKeyVersions/1:restore" >"$T/last"
check gcp_destroyed_version_cannot_be_restored grep -q FAILED_PRECONDITION "$T/last"
drv_stop

check gcp_no_key_material_in_logs bash -c "! grep -q 'BEGIN\|PRIVATE' $T/drv.err $T/emu.log"
echo "# suite wall time: $(($(date +%s) - t_start)) s"
echo "1..$n"
[ "$failed" -eq 0 ]

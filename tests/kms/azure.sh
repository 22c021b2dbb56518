#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The azure provider against a Key Vault emulator held to the real client.
#
# 1. tests/kms/azure_emu.py serves Key Vault (HTTPS, a test CA and server
#    certificate made here with openssl), IMDS and Entra ID token endpoints
#    on 127.0.0.1.  It is first checked with the Azure SDK for Python that
#    users run (Debian's python3-azure, /usr/bin/python3): challenge auth,
#    key creation, wrap/unwrap with RSA-OAEP-256 and A256KW, error shapes
#    (tests/kms/azure_sdk.py).
# 2. Only then is the agent tested against it: cmkctl and tests/kms/kmsdrv
#    (one long-lived provider, like cmk-agent).  Oracles: the SDK unwraps
#    what the agent wrapped, and recomputes the context binding from the
#    documented canonical encoding; the emulator's log and counters (what
#    went over the wire, tokens issued, expired tokens presented).
#
# Usage: tests/kms/azure.sh       Output: TAP.  Every server it starts is
# stopped on exit.  Needs: /usr/bin/python3 with python3-azure, openssl,
# curl, and a built agent (make -C agent).
set -uo pipefail

# shellcheck source=tests/kms/lib.sh
. "$(dirname "$0")/lib.sh"
kms_init azure
# fd 7 feeds the kmsdrv coprocess: close it before stopping servers.
trap 'exec 7>&- 2>/dev/null; kms_cleanup' EXIT
PY=/usr/bin/python3
t_start=$(date +%s)

# Nothing from the caller's environment may leak into the agent or the SDK.
for v in $(env | sed -n 's/^\(AZURE_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY no_proxy NO_PROXY ALL_PROXY all_proxy
export HOME=$T/home
mkdir -p "$HOME"

for c in openssl curl "$PY"; do
	command -v "$c" >/dev/null || die azure_prerequisites "$c not found"
done
"$PY" -c 'import azure.keyvault.keys.crypto, cryptography' 2>"$T/last" ||
	die azure_prerequisites "python3-azure not importable by $PY: $(cat "$T/last")"
kms_build azure
make -s -C "$top/tests/integration" O="$top/build/tests/integration" >"$T/build.log" 2>&1 ||
	die azure_oracle_builds "$(tail -5 "$T/build.log")"
oracle=$top/build/tests/integration/cmk-oracle

# ---- a test CA and the emulator's certificate -------------------------------------
{
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/ca.key" -out "$T/ca.pem" \
		-days 2 -subj "/CN=dm-cmk test CA" &&
	openssl req -newkey rsa:2048 -nodes -keyout "$T/tls.key" -out "$T/tls.csr" \
		-subj /CN=127.0.0.1 &&
	printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$T/ext" &&
	openssl x509 -req -in "$T/tls.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" \
		-CAcreateserial -days 2 -extfile "$T/ext" -out "$T/tls.pem"
} >"$T/last" 2>&1 || die azure_test_ca "$(tail -c 400 "$T/last")"
CA=$T/ca.pem

TENANT=00000000-0000-0000-0000-0000000c0ffe
mkdir -p "$T/emu"
kms_start emu "$PY" "$here/azure_emu.py" "$T/emu" --cert "$T/tls.pem" --key "$T/tls.key" \
	--tenant "$TENANT" --log "$T/emu.log"
for f in kv imds admin; do
	wait_file "$T/emu/$f.port" || die azure_emulator_starts "$(cat "$T/emu.out")"
done
VAULT=https://127.0.0.1:$(cat "$T/emu/kv.port")
IMDS=http://127.0.0.1:$(cat "$T/emu/imds.port")
ADMIN=http://127.0.0.1:$(cat "$T/emu/admin.port")
adm() {  # adm ACTION JSON
	curl -sS --max-time 30 -X POST -d "$2" "$ADMIN/$1"
}
stat_() {  # stat_ COUNTER
	adm stats '{}' | "$PY" -c "import json,sys; print(json.load(sys.stdin)['$1'])"
}

# ---- 1. the emulator, held to the Azure SDK for Python ---------------------------
t0=$(date +%s)
timeout 300 "$PY" "$here/azure_sdk.py" "$VAULT" "$ADMIN" "$CA" "$TENANT" "$T/emu.log" \
	>"$T/sdk.tap" 2>"$T/sdk.err"
sdk_rc=$?
while IFS= read -r line; do
	case $line in
	"ok "*) ok "${line#ok }" ;;
	"not ok "*) r=${line#not ok }; nok "${r%% # *}" "${r#* # }" ;;
	esac
done <"$T/sdk.tap"
[ -s "$T/sdk.tap" ] || nok azure_sdk_conformance_ran "exit $sdk_rc: $(tail -c 600 "$T/sdk.err")"
echo "# Azure SDK conformance: $(($(date +%s) - t0)) s, $(grep -c '^ok' "$T/sdk.tap") checks passed"
[ "$sdk_rc" -eq 0 ] || die azure_emulator_passes_sdk_before_agent_tests "the agent is not tested against an emulator the SDK disagrees with"

# ---- 2. the agent against the emulator --------------------------------------------
{
	adm key_create '{"name":"cmk","kty":"RSA"}' &&
	adm key_create '{"name":"hsm","kty":"oct-HSM"}' &&
	adm key_create '{"name":"other","kty":"RSA"}' &&
	adm grant '{"principal":"system","actions":["wrapKey","unwrapKey"]}' &&
	adm identity '{"client_id":"uai-1"}' &&
	adm grant '{"principal":"uai-1","actions":["wrapKey","unwrapKey"]}' &&
	adm sp '{"client_id":"app-1","secret":"s3cr3t+/=&x"}' &&
	adm grant '{"principal":"app-1","actions":["wrapKey","unwrapKey"]}'
} >"$T/last" 2>&1 || die azure_emulator_setup "$(cat "$T/last")"
KEY=$VAULT/keys/cmk
BASE=(imds_endpoint="$IMDS" ca_bundle="$CA" verify_challenge_resource=no)
sets() { for s in "${BASE[@]}"; do printf -- '--set\0%s\0' "$s"; done; }

kek=$T/kek.json
mapfile -d '' S < <(sets)
check azure_kek_create_provisions_envelope bash -c "
	$(declare -f rc_is); T=$T
	rc_is 0 $cmkctl kek create --provider azure --key-ref $KEY ${S[*]@Q} \
		--context service=pg --context cluster=c-42 --out $kek &&
	grep -q '\"provider\": \"azure\"' $kek && grep -q '\"key_ref\": \"$KEY\"' $kek"
check azure_kek_create_first_request_bodiless_then_token bash -c "
	grep '^kv POST /keys/cmk/' $T/emu.log | head -1 | grep -q 'len=0 principal=- auth=none status=401' &&
	grep '^kv POST /keys/cmk//wrapkey' $T/emu.log | tail -1 | grep -q 'principal=system auth=ok status=200'"

# Oracle: the SDK unwraps the agent's envelope and finds KEK || SHA-256 of
# the canonical context (encoded here from Documentation/formats.rst).
sdk_unwrap() {  # sdk_unwrap ENVELOPE KEYTYPE -> prints "ok" or why not
	"$PY" - "$1" "$2" "$VAULT" "$ADMIN" "$CA" <<'PY'
import base64, hashlib, json, os, struct, sys, urllib.request
from azure.core.credentials import AccessToken
from azure.keyvault.keys.crypto import CryptographyClient, KeyWrapAlgorithm
env, kty, vault, admin, ca = sys.argv[1:]
e = json.load(open(env))
w = e.get('current', e)
blob = base64.b64decode(w['wrapped_kek'])
assert blob[0] == 1, 'format'
alg = {1: KeyWrapAlgorithm.rsa_oaep_256, 2: KeyWrapAlgorithm.aes_256}[blob[1]]
ver = blob[3:3 + blob[2]].decode()
ct = blob[3 + blob[2]:]
t = json.load(urllib.request.urlopen(urllib.request.Request(
    admin + '/token', data=b'{}', method='POST')))
cred = type('C', (), {'get_token': lambda self, *s, **k: AccessToken(t['token'], t['expires_on'])})()
c = CryptographyClient(f"{w['key_ref']}/{ver}", cred, verify_challenge_resource=False,
                       connection_verify=ca)
plain = c.unwrap_key(alg, ct).key
ctx = w.get('encryption_context', {})
canon = b'CMKCTX01' + struct.pack('<I', len(ctx))
for k in sorted(ctx, key=lambda s: s.encode()):
    for s in (k.encode(), ctx[k].encode()):
        canon += struct.pack('<I', len(s)) + s
assert len(plain) == 64, len(plain)
assert plain[32:] == hashlib.sha256(canon).digest(), 'context digest'
if os.environ.get('SDK_KEK_OUT'):
    with open(os.environ['SDK_KEK_OUT'], 'wb') as f:
        f.write(plain[:32])
print('ok')
PY
}
check azure_envelope_unwraps_with_azure_sdk_and_binds_context bash -c "
	$(declare -f sdk_unwrap); PY=$PY VAULT=$VAULT ADMIN=$ADMIN CA=$CA
	sdk_unwrap $kek RSA >$T/last 2>&1 && grep -qx ok $T/last"
# The KEK itself, for the memory scan below: unwrapped by the SDK, not by us.
SDK_KEK_OUT=$T/kek.bin sdk_unwrap "$kek" RSA >/dev/null 2>&1

cat >"$T/agent.conf" <<EOF
[agent]
kek_envelope = $kek

[provider "azure"]
imds_endpoint = $IMDS
ca_bundle = $CA
verify_challenge_resource = no
EOF
check azure_kek_check_with_config rc_is 0 "$cmkctl" --config "$T/agent.conf" kek check "$kek"
# Without verify_challenge_resource = no: 127.0.0.1 is not a subdomain of
# vault.azure.net, so the agent must refuse to get a token for it.
check azure_challenge_resource_verified_by_default bash -c "
	$(declare -f rc_is last_has); T=$T
	rc_is 1 $cmkctl kek create --provider azure --key-ref $KEY --set imds_endpoint=$IMDS \
		--set ca_bundle=$CA --out $T/never.json && last_has 'not a domain of 127.0.0.1' &&
	test ! -e $T/never.json"

# ---- the long-lived driver -------------------------------------------------------

tok0=$(stat_ tokens_issued)
drv_start "$kek" "${BASE[@]}"
drv "bench 20"
if is "$R" "bench n=20 failed=0 *"; then ok azure_unseal_latency_measured "$R"; else nok azure_unseal_latency_measured "$R"; fi
echo "# unseal (Key Vault unwrapkey through the provider, emulator on loopback, TLS): $R"
check azure_token_cached_across_calls test "$(($(stat_ tokens_issued) - tok0))" -eq 1
check azure_check_passes drv_is check "ok *"
# (the driver's memory right after an unwrap, for the scan below)
ctl_mark=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s' "$ctl_mark" | xxd -r -p >"$T/control.bin"
drv check
drv "plant $ctl_mark"
drv "snapshot $T/drv-unwrap.snap"

# ---- the key owner says no: definitive -------------------------------------------------
adm key_enable '{"name":"cmk","enabled":false}' >/dev/null
check azure_disabled_key_is_definitive drv_is check "err definitive disabled *Forbidden (KeyDisabled), HTTP 403*"
# Right after an unwrap (above) and after that revoke: does the driver's
# memory, as a core dump would hold it, still contain the KEK (it went
# through libcurl and OpenSSL in the unwrapkey answers) or the bearer token
# (in every request head, and in IMDS's answer)?  Oracle: cmk-oracle scan
# (which first finds every pattern planted in noise) over both snapshots,
# with the KEK from the SDK and the tokens from the emulator; positive
# control: bytes the driver put in a heap block and freed unwiped must be
# found in both.
drv "plant $ctl_mark"
drv "snapshot $T/drv.snap"
echo "# driver memory snapshot: $R (bytes, mappings)"
# every token issued to the VM's identity so far (cmkctl's too): at most 6
adm tokens '{"principal":"system"}' | "$PY" -c '
import json, sys
t = json.load(sys.stdin)["tokens"]
assert 1 <= len(t) <= 6, t
for i, tok in enumerate(t):
    open(sys.argv[1] + ".%d" % i, "w").write(tok)' "$T/token" 2>"$T/last"
tok_args=()
for f in "$T"/token.[0-9]; do
	[ -s "$f" ] && tok_args+=(--secret "bearer_token${f##*.}=$f")
done
if [ ! -s "$T/kek.bin" ] || [ ${#tok_args[@]} -eq 0 ] || [ ! -s "$T/drv.snap" ] ||
   [ ! -s "$T/drv-unwrap.snap" ]; then
	nok azure_cleanse_no_kek_or_token_in_memory_after_revoke "no KEK from the SDK, token or snapshot: $(cat "$T/last")"
else
	"$oracle" scan --secret kek="$T/kek.bin" "${tok_args[@]}" \
		--secret control="$T/control.bin" "$T/drv-unwrap.snap" "$T/drv.snap" >"$T/scan.out" 2>&1
	sed 's/^/#   /' "$T/scan.out"
	if [ "$(grep -c '^FOUND control raw' "$T/scan.out")" -ne 2 ]; then
		nok azure_cleanse_no_kek_or_token_in_memory_after_revoke "control not found: the snapshot misses freed heap"
	elif grep -q -e '^FOUND kek' -e '^FOUND bearer_token' "$T/scan.out"; then
		nok azure_cleanse_no_kek_or_token_in_memory_after_revoke "$(grep -e '^FOUND kek' -e '^FOUND bearer_token' "$T/scan.out" | head -3)"
	else
		ok azure_cleanse_no_kek_or_token_in_memory_after_revoke
	fi
fi
rm -f "$T/drv.snap" "$T/drv-unwrap.snap"
check azure_disabled_key_cmkctl_exit_2 rc_is 2 "$cmkctl" --config "$T/agent.conf" kek check "$kek"
# Azure still wraps with a disabled key: a wrap-based check would miss this.
check azure_disabled_key_still_wraps rc_is 0 "$cmkctl" kek create --provider azure \
	--key-ref "$KEY" "${S[@]}" --out "$T/kek-disabled.json"
adm key_enable '{"name":"cmk","enabled":true}' >/dev/null
check azure_enabled_again_restored drv_is check "ok *"

adm grant '{"principal":"system","actions":["wrapKey"]}' >/dev/null
check azure_role_removed_is_definitive drv_is check "err definitive denied *Forbidden (ForbiddenByRbac), HTTP 403*"
adm grant '{"principal":"system","actions":["wrapKey","unwrapKey"]}' >/dev/null
check azure_role_restored drv_is check "ok *"

adm key_delete '{"name":"cmk"}' >/dev/null
check azure_deleted_key_is_definitive drv_is check "err definitive not_found *KeyNotFound, HTTP 404*"
adm key_recover '{"name":"cmk"}' >/dev/null
check azure_recovered_key_restored drv_is check "ok *"

# ---- ambiguous answers: classified from the docs, confirmed by the key's state ----------
# ForbiddenByFirewall (the vault's network rules refused this address) is
# about the network path: transient, no matter what.  A plain 400
# BadParameter says nothing about the key owner: the provider GETs the key
# version (the emulator serves its attributes as Key Vault does) and only a
# key its owner made unusable is definitive.
adm fault '{"mode":"firewall"}' >/dev/null
check azure_classify_forbidden_by_firewall_is_transient drv_is check \
	"err transient network *Forbidden (ForbiddenByFirewall), HTTP 403*"
adm grant '{"principal":"system","actions":["wrapKey","unwrapKey","get"]}' >/dev/null
: >"$T/emu.log"
adm fault '{"mode":"bad_parameter"}' >/dev/null
check azure_classify_bad_parameter_key_enabled_is_not_revocation drv_is check \
	"err local local *BadParameter, HTTP 400*key: enabled: the key is usable*not a revocation*"
check azure_classify_bad_parameter_asked_key_state \
	grep -q "^kv GET /keys/cmk/[0-9a-f]* len=0 principal=system auth=ok status=200" "$T/emu.log"
adm key_enable '{"name":"cmk","enabled":false}' >/dev/null
check azure_classify_bad_parameter_key_disabled_is_definitive drv_is check \
	"err definitive disabled *BadParameter, HTTP 400*key: disabled*"
adm key_enable '{"name":"cmk","enabled":true}' >/dev/null
# The key's state cannot be read now (GET answers 503): the vault's own
# class (transient), and no advice about permissions the agent has.
adm fault '{"mode":"bad_parameter_get_503"}' >/dev/null
check azure_classify_bad_parameter_state_unreadable_is_transient drv_is check \
	"err transient unavailable *BadParameter, HTTP 400*key: HTTP 503*could not be read now*next check asks again*"
drv_lacks() { drv "$1"; case $R in *"$2"*) echo "got: $R" >>"$T/last"; return 1 ;; esac; }
check azure_classify_bad_parameter_state_unreadable_no_permission_advice \
	drv_lacks check "keys/get"
adm fault '{"mode":"bad_parameter"}' >/dev/null
adm grant '{"principal":"system","actions":["wrapKey","unwrapKey"]}' >/dev/null
check azure_classify_bad_parameter_unconfirmed_is_not_revocation drv_is check \
	"err local local *BadParameter, HTTP 400*HTTP 403 ForbiddenByRbac*not taken as a revocation*"
adm fault '{"mode":"pass"}' >/dev/null
check azure_classify_answers_again drv_is check "ok *"

# ---- Key Vault cannot answer now: transient, retried ------------------------------------
: >"$T/emu.log"
adm fault '{"mode":"throttle"}' >/dev/null
check azure_throttled_is_transient drv_is check "err transient throttled *Throttled, HTTP 429*"
check azure_throttled_retried_3_times test "$(grep -c 'unwrapkey.*status=429' "$T/emu.log")" -eq 3
adm fault '{"mode":"unavailable"}' >/dev/null
check azure_503_is_transient drv_is check "err transient unavailable *ServiceUnavailable, HTTP 503*"
adm fault '{"mode":"pass"}' >/dev/null
check azure_answers_again drv_is check "ok *"
# A token Key Vault no longer accepts: 401, the challenge read again, one
# new token, the request retried once.
tok0=$(stat_ tokens_issued)
adm revoke_tokens '{}' >/dev/null
check azure_rejected_token_refetched_and_retried_once drv_is check "ok *"
check azure_rejected_token_one_new_token test "$(($(stat_ tokens_issued) - tok0))" -eq 1
# IMDS failing while the cached token is valid: no effect at all.
adm fault '{"mode":"imds_410"}' >/dev/null
check azure_imds_410_with_valid_cached_token drv_is check "ok *"
adm fault '{"mode":"pass"}' >/dev/null
# A wipe (grace-policy expiry, VM fork) drops the cached token: kmsdrv's
# forget resets the provider as cmk_kek_store_forget() does; the next call
# gets a new token before it reaches Key Vault.
tok0=$(stat_ tokens_issued)
drv forget
check azure_cleanse_forget_then_check_passes drv_is check "ok *"
check azure_cleanse_forget_drops_token test "$(($(stat_ tokens_issued) - tok0))" -eq 1
drv_stop

# ---- tokens: refreshed before expiry, never a gap -------------------------------------------
adm token_lifetime '{"seconds":4}' >/dev/null
tok0=$(stat_ tokens_issued)
exp0=$(stat_ expired_token_requests)
drv_start "$kek" "${BASE[@]}"
bad=0
for _ in $(seq 1 10); do
	drv check
	is "$R" "ok *" || bad=$((bad + 1))
	sleep 0.7
done
tokd=$(($(stat_ tokens_issued) - tok0))
echo "# 10 checks over ~7 s with 4 s tokens: $tokd tokens fetched"
check azure_short_tokens_every_check_passes test "$bad" -eq 0
check azure_token_refreshed_before_expiry test "$tokd" -ge 3
check azure_no_expired_token_ever_sent test "$(stat_ expired_token_requests)" -eq "$exp0"
# Refresh due (past half-life) but IMDS failing: the still-valid token is used.
adm token_lifetime '{"seconds":8}' >/dev/null
drv_stop
drv_start "$kek" "${BASE[@]}"
drv check
sleep 4.5
adm fault '{"mode":"imds_500"}' >/dev/null
check azure_refresh_failure_keeps_valid_token drv_is check "ok *"
sleep 4
check azure_expired_token_and_imds_down_is_transient drv_is check "err transient unavailable *IMDS*"
adm fault '{"mode":"pass"}' >/dev/null
check azure_imds_back_token_fetched drv_is check "ok *"
drv_stop
adm token_lifetime '{"seconds":3600}' >/dev/null

# ---- other identities -------------------------------------------------------------------------
: >"$T/emu.log"
check azure_user_assigned_identity bash -c "
	$(declare -f rc_is); T=$T
	rc_is 0 $cmkctl kek create --provider azure --key-ref $KEY ${S[*]@Q} --set client_id=uai-1 \
		--out $T/kek-uai.json &&
	grep -q 'imds GET /metadata/identity/oauth2/token len=0 principal=uai-1 auth=- status=200' $T/emu.log &&
	grep -q 'wrapkey len=[0-9]* principal=uai-1 auth=ok status=200' $T/emu.log"
check azure_unknown_user_assigned_identity_is_local bash -c "
	$(declare -f rc_is last_has); T=$T
	rc_is 1 $cmkctl kek create --provider azure --key-ref $KEY ${S[*]@Q} --set client_id=nope \
		--out $T/never.json && last_has 'Identity not found'"

printf 's3cr3t+/=&x\n' >"$T/sp.secret"
chmod 600 "$T/sp.secret"
SP=(credentials=service_principal client_id=app-1 tenant_id="$TENANT"
    client_secret_file="$T/sp.secret" authority="$VAULT")
: >"$T/emu.log"
drv_start "$kek" "${BASE[@]}" "${SP[@]}"
check azure_service_principal_client_credentials drv_is check "ok *"
check azure_service_principal_token_from_entra_endpoint grep -q "^kv POST /$TENANT/oauth2/v2.0/token len=[0-9]* principal=app-1" "$T/emu.log"
drv_stop
printf 'wrong\n' >"$T/sp.wrong"
drv_start "$kek" "${BASE[@]}" credentials=service_principal client_id=app-1 \
	tenant_id="$TENANT" client_secret_file="$T/sp.wrong" authority="$VAULT"
check azure_service_principal_bad_secret_is_definitive drv_is check "err definitive denied *invalid_client*AADSTS7000215*"
check azure_secret_never_in_messages bash -c "! grep -q -e s3cr3t -e wrong -e 'emu\\.' $T/drv.out $T/drv.err"
drv_stop
drv_start "$kek" "${BASE[@]}" credentials=service_principal client_id=app-1 \
	tenant_id=11111111-2222-3333-4444-555555555555 client_secret_file="$T/sp.secret" authority="$VAULT"
check azure_service_principal_other_tenant_refused drv_is check "err local local *challenge names tenant $TENANT*"
drv_stop

# ---- rotated client secret: read again, never a revocation -------------------------------
# Entra ID keeps several secrets per app: add the new one, write it to the
# file, remove the old one, while one provider keeps checking.  Tokens are
# revoked after each step so that the next check needs Entra ID again.
# Oracle: the emulator's token endpoint (it refuses a removed secret).
rot_secret() {  # rot_secret VALUE: the client secret file, replaced atomically
	printf '%s\n' "$1" >"$T/sp-rot.tmp" && chmod 600 "$T/sp-rot.tmp" &&
		mv "$T/sp-rot.tmp" "$T/sp-rot.secret"
}
adm sp '{"client_id":"app-1","secret":"rot-one"}' >/dev/null
rot_secret rot-one
drv_start "$kek" "${BASE[@]}" credentials=service_principal client_id=app-1 \
	tenant_id="$TENANT" client_secret_file="$T/sp-rot.secret" authority="$VAULT"
check azure_credential_rotation_before drv_is check "ok *"
adm sp '{"client_id":"app-1","secret":"rot-two"}' >/dev/null
rot_secret rot-two
adm sp_remove '{"client_id":"app-1","secret":"rot-one"}' >/dev/null
adm revoke_tokens '{}' >/dev/null
: >"$T/emu.log"
check azure_credential_rotation_no_revocation drv_is check "ok *"
check azure_credential_rotation_old_secret_refused_by_entra bash -c "
	grep 'oauth2/v2.0/token.*principal=app-1' $T/emu.log | head -1 | grep -q 'status=401' &&
	grep 'oauth2/v2.0/token.*principal=app-1' $T/emu.log | tail -1 | grep -q 'status=200'"
# The wrong order: the secret in the file removed before the new one is
# written.  Definitive; writing the new secret restores without a restart.
adm sp_remove '{"client_id":"app-1","secret":"rot-two"}' >/dev/null
adm revoke_tokens '{}' >/dev/null
check azure_credential_removed_without_replacement_is_definitive drv_is check \
	"err definitive denied *invalid_client*"
adm sp '{"client_id":"app-1","secret":"rot-three"}' >/dev/null
# The file truncated by a rewrite in place, caught before the new secret:
# it says nothing about the key, so never a revocation (a local error).
: >"$T/sp-rot.secret"
check azure_credential_half_written_file_is_not_definitive drv_is check \
	"err local local *not taken as a revocation*"
rot_secret rot-three
check azure_credential_fixed_file_restores_without_restart drv_is check "ok *"
check azure_credential_rotation_secrets_never_in_messages bash -c "! grep -q rot- $T/drv.out $T/drv.err"
drv_stop

# ---- Managed HSM: A256KW ---------------------------------------------------------------------
check azure_a256kw_envelope_create_and_check bash -c "
	$(declare -f rc_is); T=$T
	rc_is 0 $cmkctl kek create --provider azure --key-ref $VAULT/keys/hsm ${S[*]@Q} \
		--set algorithm=A256KW --context service=pg --out $T/kek-hsm.json &&
	rc_is 0 $cmkctl --config $T/agent.conf kek check $T/kek-hsm.json"
check azure_a256kw_envelope_unwraps_with_azure_sdk bash -c "
	$(declare -f sdk_unwrap); PY=$PY VAULT=$VAULT ADMIN=$ADMIN CA=$CA
	sdk_unwrap $T/kek-hsm.json oct >$T/last 2>&1 && grep -qx ok $T/last"

# ---- envelope tampering: the context binding ---------------------------------------------------
python3 - "$kek" "$T/kek-ctx.json" "$T/kek-bits.json" <<'PY'
import base64, json, sys
e = json.load(open(sys.argv[1]))
c = json.loads(json.dumps(e))
w = c.get('current', c)
w['encryption_context']['cluster'] = 'c-43'
json.dump(c, open(sys.argv[2], 'w'))
t = json.loads(json.dumps(e))
w = t.get('current', t)
b = bytearray(base64.b64decode(w['wrapped_kek'])); b[-5] ^= 1
w['wrapped_kek'] = base64.b64encode(bytes(b)).decode()
json.dump(t, open(sys.argv[3], 'w'))
PY
check azure_encryption_context_mismatch_refused bash -c "
	$(declare -f rc_is last_has); T=$T
	rc_is 2 $cmkctl --config $T/agent.conf kek check $T/kek-ctx.json &&
	last_has 'another encryption context'"
# Key Vault answers a ciphertext that does not decrypt with a plain
# BadParameter: refused (exit 1, local), but not a revocation.
check azure_adversarial_tampered_wrapped_kek_refused bash -c "
	$(declare -f rc_is last_has); T=$T
	rc_is 1 $cmkctl --config $T/agent.conf kek check $T/kek-bits.json &&
	last_has BadParameter"

# ---- key rotation in Key Vault: the version that wrapped unwraps --------------------------------
adm key_rotate '{"name":"cmk"}' >/dev/null
check azure_old_envelope_unwraps_after_key_rotation rc_is 0 "$cmkctl" --config "$T/agent.conf" kek check "$kek"
v1=$(python3 -c "import base64,json,sys; e=json.load(open('$kek')); w=e.get('current',e); b=base64.b64decode(w['wrapped_kek']); print(b[3:3+b[2]].decode())")
check azure_versioned_key_ref_pins_version bash -c "
	$(declare -f rc_is last_has); T=$T
	rc_is 0 $cmkctl kek create --provider azure --key-ref $KEY/$v1 ${S[*]@Q} --out $T/kek-v1.json &&
	grep -q 'wrapkey len=[0-9]* principal=system' $T/emu.log &&
	grep -q 'POST /keys/cmk/$v1/wrapkey' $T/emu.log"

# ---- CMK rotation to another key: unwrap, then wrap (Key Vault has no re-wrap) ----
cp "$kek" "$T/kek-rot.json"
drv_start "$T/kek-rot.json" "${BASE[@]}"
check azure_rewrap_to_another_key drv_is "rewrap $VAULT/keys/other" "ok *"
drv_stop
check azure_rewrapped_envelope_names_new_key grep -q "\"key_ref\": \"$VAULT/keys/other\"" "$T/kek-rot.json"
check azure_rewrapped_envelope_unseals rc_is 0 "$cmkctl" --config "$T/agent.conf" kek check "$T/kek-rot.json"

# ---- proxies: from the environment for Key Vault, never for IMDS ----------------------
dead=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
check azure_imds_never_through_proxy rc_is 0 env http_proxy="http://127.0.0.1:$dead" \
	HTTP_PROXY="http://127.0.0.1:$dead" "$cmkctl" --config "$T/agent.conf" kek check "$kek"
check azure_key_vault_through_environment_proxy bash -c "
	$(declare -f rc_is last_has); T=$T
	rc_is 3 env https_proxy=http://127.0.0.1:$dead $cmkctl --config $T/agent.conf kek check $kek &&
	last_has $dead"

# ---- TLS ---------------------------------------------------------------------------------------
drv_start "$kek" imds_endpoint="$IMDS" verify_challenge_resource=no max_attempts=1
check azure_untrusted_certificate_refused drv_is check "err transient network *"
drv_stop
adm key_delete '{"name":"cmk"}' >/dev/null
adm key_purge '{"name":"cmk"}' >/dev/null
check azure_purged_key_stays_not_found rc_is 2 "$cmkctl" --config "$T/agent.conf" kek check "$kek"

echo "# suite wall time: $(($(date +%s) - t_start)) s"
echo "1..$n"
[ "$failed" -eq 0 ]

#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The pkcs11 provider against a real peer: SoftHSM2, with a token the test
# initialises (softhsm2-util) in a temp dir and keys made with pkcs11-tool
# (OpenSC): one generated inside the token, one imported from a file so an
# independent AES-GCM (python3-cryptography) can check the wrapped format
# both ways.  The key owner's actions: CKA_DECRYPT set false and back
# (p11attr.py, ctypes straight onto the module), the key deleted and
# re-imported (pkcs11-tool).  The agent side
# is cmkctl and tests/kms/kmsdrv (one long-lived provider, like cmk-agent).
#
# Usage: tests/kms/pkcs11.sh        Output: TAP.  All state in a temp dir.
# Needs: softhsm2, opensc (pkcs11-tool), python3 with cryptography, and a
# built agent (make -C agent).
set -uo pipefail

# shellcheck source=tests/kms/lib.sh
. "$(dirname "$0")/lib.sh"
kms_init pkcs11

# Nothing from the caller's environment may choose the PIN or the token.
unset CMK_PKCS11_PIN SOFTHSM2_CONF
export HOME=$T/home
mkdir -p "$HOME"

for c in softhsm2-util pkcs11-tool python3; do
	command -v "$c" >/dev/null || die pkcs11_prerequisites "$c not found (make deps)"
done
MOD=
for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so; do
	[ -f "$m" ] && { MOD=$m; break; }
done
[ -n "$MOD" ] || die pkcs11_prerequisites "libsofthsm2.so not found (package libsofthsm2)"
python3 -c 'import cryptography' 2>/dev/null || die pkcs11_prerequisites "python3-cryptography missing"

kms_build pkcs11

# ---- the token -----------------------------------------------------------------
PIN=4711-pin-$$
SOPIN=so-$$-pin
mkdir -p "$T/tokens"
cat >"$T/softhsm2.conf" <<EOF
directories.tokendir = $T/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
EOF
export SOFTHSM2_CONF=$T/softhsm2.conf
p11() { pkcs11-tool --module "$MOD" --token-label cmk --login --pin "$PIN" "$@"; }
head -c 32 /dev/urandom >"$T/escrow.key"
{
	softhsm2-util --init-token --free --label cmk --so-pin "$SOPIN" --pin "$PIN" &&
	p11 --keygen --key-type AES:32 --label kek --id 01 --usage-decrypt &&
	p11 --write-object "$T/escrow.key" --type secrkey --key-type AES:32 \
		--label escrowed --id 02 --usage-decrypt --sensitive
} >"$T/last" 2>&1 || die pkcs11_softhsm_token_setup "$(tail -c 600 "$T/last")"
printf '%s\n' "$PIN" >"$T/pin"
chmod 600 "$T/pin"
ok pkcs11_softhsm_token_setup "SoftHSM $(softhsm2-util --version), module $MOD"

uri() {  # uri OBJECT [extra path attrs] [extra query]: the key reference
	echo "pkcs11:token=cmk;object=$1${2:+;$2}?module-path=$MOD${3:+&$3}"
}
KREF=$(uri kek "id=%01" "pin-source=file:$T/pin")
EREF=$(uri escrowed "" "pin-source=file:$T/pin")

last_lacks() { ! grep -q -- "$1" "$T/last"; }

# ---- envelopes and unseal --------------------------------------------------------
kek=$T/kek.json
check pkcs11_kek_create_provisions_envelope bash -c "
	$(declare -f rc_is); T=$T
	rc_is 0 $cmkctl kek create --provider pkcs11 --key-ref '$KREF' --context service=pg \
		--context cluster=c-42 --out $kek &&
	grep -q '\"provider\": \"pkcs11\"' $kek"
check pkcs11_unseal_kek_check rc_is 0 "$cmkctl" kek check "$kek"

ekek=$T/escrowed.json
rc_is 0 "$cmkctl" kek create --provider pkcs11 --key-ref "$EREF" \
	--context service=pg --context cluster=c-42 --out "$ekek" ||
	nok pkcs11_kek_create_escrowed_key "$(cat "$T/last")"

# Oracle: AES-256-GCM of python3-cryptography, the escrowed key bytes and
# the canonical encryption context (Documentation/formats.rst) as AAD.
cat >"$T/gcm.py" <<'PY'
import base64, json, os, struct, sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

def aad(ctx):
    out = b"CMKCTX01" + struct.pack("<I", len(ctx))
    for k in sorted(ctx, key=lambda s: s.encode()):
        kb, vb = k.encode(), ctx[k].encode()
        out += struct.pack("<I", len(kb)) + kb + struct.pack("<I", len(vb)) + vb
    return out

mode, env_path, key_path = sys.argv[1:4]
key = open(key_path, "rb").read()
e = json.load(open(env_path))
if mode == "decrypt":
    w = base64.b64decode(e["wrapped_kek"])
    assert w[0] == 1 and len(w) == 1 + 12 + 32 + 16, "layout"
    pt = AESGCM(key).decrypt(w[1:13], w[13:], aad(e["encryption_context"]))
    sys.exit(0 if len(pt) == 32 else 1)
# "encrypt": wrap a fresh KEK ourselves, write the envelope to argv[4]
iv = os.urandom(12)
ct = AESGCM(key).encrypt(iv, os.urandom(32), aad(e["encryption_context"]))
e["wrapped_kek"] = base64.b64encode(b"\x01" + iv + ct).decode()
json.dump(e, open(sys.argv[4], "w"), indent=2)
PY
check pkcs11_wrapped_kek_decrypts_with_independent_aes_gcm \
	python3 "$T/gcm.py" decrypt "$ekek" "$T/escrow.key"
python3 "$T/gcm.py" encrypt "$ekek" "$T/escrow.key" "$T/foreign.json" 2>"$T/last"
check pkcs11_independently_wrapped_kek_unseals rc_is 0 "$cmkctl" kek check "$T/foreign.json"

# ---- the long-lived driver ------------------------------------------------------

drv_start "$kek"
drv "bench 50"
if is "$R" "bench n=50 failed=0 *"; then
	ok pkcs11_unseal_latency_measured "$R"
else
	nok pkcs11_unseal_latency_measured "$R $(cat "$T/drv.err")"
fi
echo "# unseal (C_Decrypt AES-GCM through the provider, SoftHSM2, session kept): $R"

# ---- the key owner disables decryption, then allows it again -----------------------
check pkcs11_check_passes_before_revoke drv_is check "ok *"
P11_PIN=$PIN python3 "$here/p11attr.py" "$MOD" cmk kek false >"$T/last" 2>&1 ||
	nok pkcs11_set_decrypt_false "$(cat "$T/last")"
check pkcs11_decrypt_false_is_definitive_disabled \
	drv_is check "err definitive disabled *CKR_KEY_FUNCTION_NOT_PERMITTED*CKA_DECRYPT*"
check pkcs11_decrypt_false_cmkctl_exit_2 rc_is 2 "$cmkctl" kek check "$kek"
P11_PIN=$PIN python3 "$here/p11attr.py" "$MOD" cmk kek true >"$T/last" 2>&1 ||
	nok pkcs11_set_decrypt_true "$(cat "$T/last")"
check pkcs11_decrypt_true_again_restores drv_is check "ok *"

drv_stop

# ---- the key destroyed: definitive; restored from escrow: works again --------------
drv_start "$ekek"
check pkcs11_escrowed_key_unseals drv_is check "ok *"
p11 --delete-object --type secrkey --label escrowed >"$T/last" 2>&1 ||
	nok pkcs11_delete_object "$(cat "$T/last")"
check pkcs11_key_deleted_is_definitive_not_found \
	drv_is check "err definitive not_found *no AES secret key object=escrowed*"
check pkcs11_key_deleted_cmkctl_exit_2 rc_is 2 "$cmkctl" kek check "$ekek"
p11 --write-object "$T/escrow.key" --type secrkey --key-type AES:32 --label escrowed \
	--id 02 --usage-decrypt --sensitive >"$T/last" 2>&1 ||
	nok pkcs11_reimport_object "$(cat "$T/last")"
check pkcs11_key_reimported_from_escrow_restores drv_is check "ok *"
drv_stop

# ---- PINs ------------------------------------------------------------------------------
# setref OUT KEYREF: a copy of $kek naming another key reference.
setref() {
	python3 -c 'import json, sys
e = json.load(open(sys.argv[1])); e["key_ref"] = sys.argv[3]
json.dump(e, open(sys.argv[2], "w"))' "$kek" "$1" "$2"
}
setref "$T/nopin.json" "$(uri kek "id=%01")"
check pkcs11_pin_from_environment bash -c "
	$(declare -f rc_is); T=$T
	CMK_PKCS11_PIN='$PIN' rc_is 0 $cmkctl kek check $T/nopin.json"
check pkcs11_no_pin_is_local_error_naming_sources bash -c "
	$(declare -f rc_is last_has); T=$T
	rc_is 1 $cmkctl kek check $T/nopin.json && last_has 'needs the user PIN' &&
	last_has pin_file && last_has CMK_PKCS11_PIN"
check pkcs11_wrong_pin_is_definitive_denied bash -c "
	$(declare -f rc_is last_has last_lacks); T=$T
	CMK_PKCS11_PIN=wrong-PIN-77 rc_is 2 $cmkctl kek check $T/nopin.json &&
	last_has CKR_PIN_INCORRECT && last_lacks wrong-PIN-77"
printf 'wrong-PIN-88\n' >"$T/badpin"
chmod 600 "$T/badpin"
drv_start "$T/nopin.json" "pin_file=$T/badpin"
check pkcs11_wrong_pin_drv_definitive drv_is check "err definitive denied *CKR_PIN_INCORRECT*"
check pkcs11_wrong_pin_not_presented_twice drv_is check "err definitive denied *rejected this PIN before*"
cp "$T/pin" "$T/badpin"
check pkcs11_pin_file_fixed_restores drv_is check "ok *"
drv_stop
if grep -q -e "$PIN" -e wrong-PIN "$T/drv.out" "$T/drv.err"; then
	nok pkcs11_pins_never_printed "a PIN appears in the driver's output"
else
	ok pkcs11_pins_never_printed
fi
chmod 640 "$T/pin"
check pkcs11_pin_file_group_readable_refused bash -c "
	$(declare -f rc_is last_has); T=$T
	rc_is 1 $cmkctl kek check $kek && last_has 'chmod 600'"
chmod 600 "$T/pin"
check pkcs11_pin_value_in_uri_refused bash -c "
	$(declare -f rc_is last_has last_lacks); T=$T
	rc_is 1 $cmkctl kek create --provider pkcs11 --out $T/x.json \
		--key-ref '$(uri kek "" "pin-value=1234")' &&
	last_has 'pin-value is refused' && [ ! -e $T/x.json ]"

# ---- modules, tokens and objects that are not there -------------------------------------
PINQ="pin-source=file:$T/pin"
setref "$T/nomod.json" "pkcs11:token=cmk;object=kek?module-path=/nonexistent/libhsm.so&$PINQ"
check pkcs11_missing_module_clear_local_error bash -c "
	$(declare -f rc_is last_has); T=$T
	rc_is 1 $cmkctl kek check $T/nomod.json && last_has /nonexistent/libhsm.so &&
	last_has 'No such file'"
libc=$(ldd /bin/sh | awk '/libc\.so/ { print $3 }')
setref "$T/notmod.json" "pkcs11:token=cmk;object=kek?module-path=$libc&$PINQ"
check pkcs11_library_without_pkcs11_refused bash -c "
	$(declare -f rc_is last_has); T=$T
	rc_is 1 $cmkctl kek check $T/notmod.json && last_has 'not a PKCS#11 module'"
check pkcs11_module_setting_disagreeing_with_uri_refused bash -c "
	$(declare -f rc_is last_has); T=$T
	rc_is 1 $cmkctl kek create --provider pkcs11 --set module=$libc --out $T/y.json \
		--key-ref '$KREF' && last_has 'refusing to load another module'"
setref "$T/notoken.json" "pkcs11:token=absent;object=kek?module-path=$MOD&$PINQ"
check pkcs11_missing_token_is_transient bash -c "
	$(declare -f rc_is last_has); T=$T
	rc_is 3 $cmkctl kek check $T/notoken.json && last_has 'no token matches token=absent' &&
	last_has '\"cmk\"'"
setref "$T/noobj.json" "$(uri absent "" "$PINQ")"
check pkcs11_missing_object_is_definitive bash -c "
	$(declare -f rc_is last_has); T=$T
	rc_is 2 $cmkctl kek check $T/noobj.json && last_has 'no AES secret key object=absent'"

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
check pkcs11_encryption_context_mismatch_refused bash -c "
	$(declare -f rc_is last_has); T=$T
	rc_is 2 $cmkctl kek check $T/kek-ctx.json && last_has 'does not decrypt'"
check pkcs11_tampered_wrapped_kek_refused rc_is 2 "$cmkctl" kek check "$T/kek-bits.json"
check pkcs11_unseal_still_works_after_all rc_is 0 "$cmkctl" kek check "$kek"

echo "1..$n"
[ "$failed" -eq 0 ]

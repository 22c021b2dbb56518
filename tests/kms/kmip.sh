#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The kmip provider against a real peer: Debian's pykmip-server on
# 127.0.0.1 with mutual TLS (auth_suite = TLS1.2, client certificates
# required), its own sqlite database and operation policy in a temp dir.
# The certificates (a CA, the server's, the agent's, the key owner's, and a
# stranger's from another CA) are made here with openssl.  The key owner
# creates, activates, revokes and destroys CMKs with PyKMIP's own client
# (tests/kms/kmip_admin.py); the agent side is cmkctl and tests/kms/kmsdrv
# (one long-lived provider, like cmk-agent).
#
# Oracles: pykmip-server (TLS client authentication, key state, the
# operation policy), and an independent decryption of the envelope with the
# key bytes fetched from the server and Python's AES-GCM.
#
# Usage: tests/kms/kmip.sh        Output: TAP.  Every server it starts is
# stopped on exit.  Needs: python3-pykmip (/usr/bin/python3), openssl, and
# a built agent (make -C agent).
set -uo pipefail

# shellcheck source=tests/kms/lib.sh
. "$(dirname "$0")/lib.sh"
kms_init kmip
# fd 7 feeds the kmsdrv coprocess: close it before stopping servers.
trap 'exec 7>&- 2>/dev/null; kms_cleanup' EXIT
PY=/usr/bin/python3
t_start=$(date +%s%N)

unset CMK_KMIP_SERVER CMK_KMIP_CLIENT_CERT CMK_KMIP_CLIENT_KEY CMK_KMIP_CA_BUNDLE
export HOME=$T/home
mkdir -p "$HOME"

for c in "$PY" /usr/bin/pykmip-server openssl; do
	[ -x "$c" ] || command -v "$c" >/dev/null || die kmip_prerequisites "$c not found"
done
"$PY" -c 'import kmip' 2>"$T/last" || die kmip_prerequisites "python3-pykmip: $(cat "$T/last")"
kms_build kmip
drvplain=$drvbin
make -s -C "$top/tests/integration" O="$top/build/tests/integration" >"$T/build.log" 2>&1 ||
	die kmip_oracle_builds "$(tail -5 "$T/build.log")"
oracle=$top/build/tests/integration/cmk-oracle
pkgs=$(sed -n 's/^PKGS[[:space:]]*:=//p' "$top/agent/Makefile")
# The same driver over the ASan/UBSan build of the library (make -C agent
# test builds it): every provider path below runs under the sanitizers;
# the plain one is kept for the latency figures.
drvasan=$top/build/tests/kms/kmsdrv-kmip-asan
# shellcheck disable=SC2046,SC2086
{ make -s -C "$top/agent" build/test/libcmk-test.a &&
cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O1 -g -fsanitize=address,undefined \
	-fno-omit-frame-pointer -fno-sanitize-recover=all -I"$top/agent" -I"$top/include/uapi" \
	-o "$drvasan" "$here/kmsdrv.c" "$top/agent/build/test/libcmk-test.a" $(pkg-config --libs $pkgs)
} >"$T/build.log" 2>&1 || die kmip_kmsdrv_asan_builds "$(tail -5 "$T/build.log")"
drvbin=$drvasan
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# shellcheck source=tests/kms/kmip_lib.sh
. "$here/kmip_lib.sh"
kmip_pki >"$T/last" 2>&1 || die kmip_test_certificates "$(tail -c 600 "$T/last")"
kmip_server_conf
kmip_server_start || die kmip_pykmip_server_starts "$(tail -c 800 "$T/server.out" "$T/server.log" 2>/dev/null)"

{
	admin create cmk-1 cmk && admin create cmk-2 cmk && admin create cmk-3 cmk &&
	admin create owner-only
} >"$T/uids" 2>"$T/last" || die kmip_keys_created_with_pykmip_client "$(tail -c 600 "$T/last")"
ok kmip_keys_created_with_pykmip_client

S=("server=127.0.0.1:$port" "client_cert=$C/agent.pem" "client_key=$C/agent.key" "ca_bundle=$C/ca.pem")
sets=()
for s in "${S[@]}"; do sets+=(--set "$s"); done
kenv=(env "CMK_KMIP_SERVER=127.0.0.1:$port" "CMK_KMIP_CLIENT_CERT=$C/agent.pem"
	"CMK_KMIP_CLIENT_KEY=$C/agent.key" "CMK_KMIP_CA_BUNDLE=$C/ca.pem")
jq_() { "$PY" -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# ---- envelope and unseal -----------------------------------------------------
kek=$T/kek.json
check kmip_kek_create_provisions_envelope bash -c "
	$(declare -f rc_is); T=$T
	rc_is 0 $cmkctl kek create --provider kmip --key-ref cmk-1 ${sets[*]} \
		--context service=pg --context cluster=c-42 --out $kek &&
	grep -q '\"provider\": \"kmip\"' $kek && grep -q '\"key_ref\": \"cmk-1\"' $kek"
wrapped=$(jq_ "d['wrapped_kek']" <"$kek" 2>/dev/null)
check kmip_wrapped_kek_is_iv_ciphertext_tag test "$(printf %s "$wrapped" | base64 -d | wc -c)" -eq 60
# Oracle: the key's bytes from the server and AES-GCM in Python open it,
# with the encryption context as AAD, and only with it.
check kmip_envelope_opens_with_server_key_and_context_aad bash -c "
	$(declare -f admin); PY=$PY here=$here T=$T port=$port C=$C
	[ \"\$(admin open-envelope cmk-1 $wrapped service=pg cluster=c-42 2>$T/last)\" = 32 ]"
check kmip_envelope_other_context_does_not_open bash -c "
	$(declare -f admin); PY=$PY here=$here T=$T port=$port C=$C
	! admin open-envelope cmk-1 $wrapped service=pg cluster=c-43 >$T/last 2>&1"
check kmip_unseal_kek_check rc_is 0 "${kenv[@]}" "$cmkctl" kek check "$kek"
check kmip_negotiated_with_discover_versions grep -q "Processing operation: DiscoverVersions" "$T/server.log"

# ---- the long-lived driver -------------------------------------------------------
# until_is CMD GLOB: retry (policy reloads take the server a second or two)
until_is() {
	for _ in $(seq 1 40); do
		drv "$1"
		is "$R" "$2" 2>/dev/null && return 0
		sleep 0.25
	done
	is "$R" "$2"
}

DRV=$drvplain drv_start "$kek" "${S[@]}"
drv "bench 20"
if is "$R" "bench n=20 failed=0 *"; then
	ok kmip_unseal_latency_measured "$R"
else
	nok kmip_unseal_latency_measured "$R $(cat "$T/drv.err")"
fi
echo "# unseal (Locate + Decrypt over one mutual-TLS connection, pykmip-server on loopback): $R"

# ---- wrong certificates ---------------------------------------------------------------
check kmip_client_cert_from_unknown_ca_refused bash -c "
	$(declare -f rc_is last_has); T=$T
	rc_is 3 env CMK_KMIP_SERVER=127.0.0.1:$port CMK_KMIP_CLIENT_CERT=$C/stranger.pem \
		CMK_KMIP_CLIENT_KEY=$C/stranger.key CMK_KMIP_CA_BUNDLE=$C/ca.pem \
		$cmkctl kek check $kek &&
	last_has 'refused the TLS session' && last_has 'client_cert $C/stranger.pem'"
drv_stop
drv_start "$kek" "server=127.0.0.1:$port" "client_cert=$C/noclientauth.pem" \
	"client_key=$C/noclientauth.key" "ca_bundle=$C/ca.pem"
# (OpenSSL in pykmip-server refuses it in the handshake, before PyKMIP's
# own extended key usage check could answer Authentication Not Successful.)
check kmip_client_cert_not_for_client_auth_refused drv_is check \
	"err transient network *refused the TLS session*unsupported certificate*clientAuth*"
drv_stop
drv_start "$kek" "${S[@]}"
check kmip_client_key_not_matching_cert_is_local_error bash -c "
	$(declare -f rc_is last_has); T=$T
	rc_is 1 env CMK_KMIP_SERVER=127.0.0.1:$port CMK_KMIP_CLIENT_CERT=$C/agent.pem \
		CMK_KMIP_CLIENT_KEY=$C/admin.key CMK_KMIP_CA_BUNDLE=$C/ca.pem \
		$cmkctl kek check $kek && last_has 'does not belong to client_cert'"
check kmip_server_cert_from_other_ca_not_trusted bash -c "
	$(declare -f rc_is last_has); T=$T
	rc_is 3 env CMK_KMIP_SERVER=127.0.0.1:$port CMK_KMIP_CLIENT_CERT=$C/agent.pem \
		CMK_KMIP_CLIENT_KEY=$C/agent.key CMK_KMIP_CA_BUNDLE=$C/otherca.pem \
		$cmkctl kek check $kek && last_has 'certificate is not trusted'"
check kmip_server_name_mismatch_not_trusted bash -c "
	$(declare -f rc_is last_has); T=$T
	rc_is 3 $cmkctl kek create --provider kmip --key-ref cmk-1 ${sets[*]} --set server_name=kms.example.com \
		--out $T/never.json && last_has 'not trusted'"

# ---- not found, not ours: definitive ---------------------------------------------------
"$PY" - "$kek" "$T/kek-nokey.json" "$T/kek-ctx.json" "$T/kek-bits.json" "$T/kek-owner.json" <<'PY'
import base64, json, sys
e = json.load(open(sys.argv[1]))
def put(path, **kw):
    d = json.loads(json.dumps(e))
    for k, v in kw.items():
        d[k] = v
    json.dump(d, open(path, "w"))
put(sys.argv[2], key_ref="no-such-key")
put(sys.argv[3], encryption_context=dict(e["encryption_context"], cluster="c-43"))
b = bytearray(base64.b64decode(e["wrapped_kek"])); b[20] ^= 1
put(sys.argv[4], wrapped_kek=base64.b64encode(bytes(b)).decode())
put(sys.argv[5], key_ref="owner-only")
PY
drv_stop
drv_start "$T/kek-nokey.json" "${S[@]}"
check kmip_key_name_not_found_is_definitive drv_is check "err definitive not_found *no key with this Name*"
drv_stop
check kmip_key_name_not_found_cmkctl_exit_2 rc_is 2 "${kenv[@]}" "$cmkctl" kek check "$T/kek-nokey.json"
# A key under the default policy (owner only): the agent may not even see it.
drv_start "$T/kek-owner.json" "${S[@]}"
check kmip_key_of_other_owner_is_definitive drv_is check "err definitive *"
drv_stop

# Tampering: refused; the class is the server's (see Documentation/kmip.rst).
for t in ctx bits; do
	drv_start "$T/kek-$t.json" "${S[@]}"
	drv check
	if is "$R" "err *"; then
		ok "kmip_tampered_envelope_${t}_refused"
		echo "# pykmip-server on a GCM tag mismatch: $R"
	else
		nok "kmip_tampered_envelope_${t}_refused" "$R"
	fi
	drv_stop
done

# ---- access policy: Permission Denied is definitive, and restorable ---------------------
drv_start "$kek" "${S[@]}"
check kmip_check_passes_before_policy_change drv_is check "ok *"
kmip_policy DISALLOW_ALL
check kmip_policy_deny_is_definitive_denied until_is check "err definitive denied *Permission Denied*key state Active*"
check kmip_policy_deny_cmkctl_exit_2 rc_is 2 "${kenv[@]}" "$cmkctl" kek check "$kek"
kmip_policy ALLOW_ALL
check kmip_policy_restored_access_back until_is check "ok *"

# ---- rotation: unwrap + wrap under another CMK ------------------------------------------
cp "$kek" "$T/kek-rot.json"
drv_stop
drv_start "$T/kek-rot.json" "${S[@]}"
check kmip_rewrap_to_second_key drv_is "rewrap cmk-2" "ok *"
drv_stop
check kmip_rewrapped_envelope_names_second_key grep -q '"key_ref": "cmk-2"' "$T/kek-rot.json"
rot=$(jq_ "d['wrapped_kek']" <"$T/kek-rot.json")
check kmip_rewrapped_envelope_opens_under_second_key bash -c "
	$(declare -f admin); PY=$PY here=$here T=$T port=$port C=$C
	[ \"\$(admin open-envelope cmk-2 $rot service=pg cluster=c-42 2>$T/last)\" = 32 ]"

# ---- lifecycle: revoked, compromised, destroyed, pre-active --------------------------------
# The plain build of the driver here: its memory is snapshot below (the
# sanitizer runtime's shadow mappings are terabytes).
DRV=$drvplain drv_start "$kek" "${S[@]}"
check kmip_check_passes_before_revoke drv_is check "ok *"
# sockets of the driver: the connection is kept between calls...
drv_sockets() { find "/proc/$drv_pid/fd" -lname 'socket:*' 2>/dev/null | wc -l; }
check kmip_connection_kept_between_calls test "$(drv_sockets)" -eq 1
# ...and closed by a wipe (grace-policy expiry, VM fork, shutdown): its
# session keys could read every KEK that went over it.  cmk_kek_store_forget()
# resets the provider; kmsdrv's forget does just that.  The next call
# opens a fresh one.
drv forget
check kmip_cleanse_forget_drops_connection test "$(drv_sockets)" -eq 0
check kmip_cleanse_forget_then_check_reconnects drv_is check "ok *"
check kmip_cleanse_forget_then_one_connection test "$(drv_sockets)" -eq 1
# (the KEK for the memory scan below, while the key owner can still Get the key)
admin kek-hex cmk-1 "$wrapped" service=pg cluster=c-42 2>"$T/last.kek" | xxd -r -p >"$T/kek.bin"
# The driver's memory right after an unwrap (the Decrypt answer is the last
# TLS record it read) and again after the revoke; plant: the control.
ctl_mark=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s' "$ctl_mark" | xxd -r -p >"$T/control.bin"
drv check
drv "plant $ctl_mark"
drv "snapshot $T/drv-unwrap.snap"
echo "# driver memory snapshot after an unwrap: $R (bytes, mappings)"
admin revoke cmk-1 >"$T/last" 2>&1
check kmip_revoked_key_state_deactivated bash -c "[ \"\$($(declare -f admin); PY=$PY here=$here T=$T port=$port C=$C; admin state cmk-1)\" = DEACTIVATED ]"
check kmip_revoked_key_is_definitive_revoked drv_is check "err definitive revoked *Permission Denied*key state Deactivated*"
# ...and closed on the revocation: its session keys could read the KEK.
check kmip_cleanse_revoked_key_drops_connection test "$(drv_sockets)" -eq 0
# After an unwrap and after the revoke, the KEK (it came back in Decrypt
# answers over TLS) is nowhere in the driver's memory as a core dump would
# hold it.  Oracle: cmk-oracle scan with the KEK the key owner's own
# client opened (kmip_admin.py kek-hex); positive control: bytes the
# driver freed unwiped on its heap are found in both snapshots.
drv "plant $ctl_mark"
drv "snapshot $T/drv.snap"
echo "# driver memory snapshot after the revoke: $R (bytes, mappings)"
if [ "$(wc -c <"$T/kek.bin")" -ne 32 ] || [ ! -s "$T/drv.snap" ] || [ ! -s "$T/drv-unwrap.snap" ]; then
	nok kmip_cleanse_no_kek_in_memory_after_revoke "no KEK from kmip_admin.py or no snapshot: $(cat "$T/last.kek" "$T/last")"
else
	"$oracle" scan --secret kek="$T/kek.bin" --secret control="$T/control.bin" \
		"$T/drv-unwrap.snap" "$T/drv.snap" >"$T/scan.out" 2>&1
	sed 's/^/#   /' "$T/scan.out"
	if [ "$(grep -c '^FOUND control raw' "$T/scan.out")" -ne 2 ]; then
		nok kmip_cleanse_no_kek_in_memory_after_revoke "control not found: the snapshot misses freed heap"
	elif grep -q '^FOUND kek' "$T/scan.out"; then
		nok kmip_cleanse_no_kek_in_memory_after_revoke "$(grep '^FOUND kek' "$T/scan.out" | head -3)"
	else
		ok kmip_cleanse_no_kek_in_memory_after_revoke
	fi
fi
rm -f "$T/drv.snap" "$T/drv-unwrap.snap"
check kmip_revoked_key_cmkctl_exit_2 rc_is 2 "${kenv[@]}" "$cmkctl" kek check "$kek"
drv_stop
if admin activate cmk-1 >"$T/last" 2>&1; then
	nok kmip_revoked_key_cannot_be_reactivated "pykmip-server activated a Deactivated key"
else
	ok kmip_revoked_key_cannot_be_reactivated
	echo "# KMIP has no way back from Deactivated: restore is by access policy (above) or an envelope re-wrapped before the revoke"
fi
check kmip_envelope_rewrapped_before_revoke_still_unseals rc_is 0 "${kenv[@]}" "$cmkctl" kek check "$T/kek-rot.json"

check kmip_kek_create_on_key_3 rc_is 0 "$cmkctl" kek create --provider kmip --key-ref cmk-3 "${sets[@]}" --out "$T/kek3.json"
admin compromise cmk-3 >"$T/last" 2>&1
drv_start "$T/kek3.json" "${S[@]}"
check kmip_compromised_key_is_definitive_revoked drv_is check "err definitive revoked *key state Compromised*"
drv_stop

drv_start "$T/kek-rot.json" "${S[@]}"
check kmip_check_passes_before_destroy drv_is check "ok *"
admin destroy cmk-2 >"$T/last" 2>&1
check kmip_destroyed_key_is_definitive drv_is check "err definitive not_found *"
drv_stop

admin create-preactive cmk-4 cmk >"$T/last" 2>&1
check kmip_preactive_key_refuses_wrap_definitive bash -c "
	$(declare -f rc_is last_has); T=$T
	rc_is 2 $cmkctl kek create --provider kmip --key-ref cmk-4 ${sets[*]} --out $T/kek4.json &&
	last_has 'Pre-Active'"

# ---- server down: transient; back: the same provider reconnects ---------------------------
admin create cmk-5 cmk >"$T/last" 2>&1
"$cmkctl" kek create --provider kmip --key-ref cmk-5 "${sets[@]}" --out "$T/kek5.json" >"$T/last" 2>&1
drv_start "$T/kek5.json" "${S[@]}" max_attempts=2 connect_timeout_ms=2000 timeout_ms=5000
check kmip_check_passes_before_server_stops drv_is check "ok *"
kmip_server_stop
check kmip_server_down_is_transient drv_is check "err transient network *cannot connect*"
check kmip_server_down_cmkctl_exit_3 rc_is 3 "${kenv[@]}" "$cmkctl" kek check "$T/kek5.json"
if kmip_server_start; then
	check kmip_server_back_provider_reconnects drv_is check "ok *"
else
	nok kmip_server_back_provider_reconnects "pykmip-server did not restart: $(tail -c 400 "$T/server.out")"
fi
drv_stop

# A listener that never answers TLS: a timeout, transient.
hang_port=$(free_port)
setsid "$PY" -c "import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', $hang_port)); s.listen(8); c=[s.accept() for _ in range(8)]; time.sleep(60)" >/dev/null 2>&1 &
pids+=("$!")
sleep 0.3
drv_start "$T/kek5.json" "server=127.0.0.1:$hang_port" "client_cert=$C/agent.pem" \
	"client_key=$C/agent.key" "ca_bundle=$C/ca.pem" timeout_ms=700 max_attempts=1
check kmip_server_silent_is_transient_timeout drv_is check "err transient timeout *"
drv_stop
# A server that answers one byte every 200 ms: each read returns quickly,
# the whole answer would take 200 s.  One deadline per request (connect,
# handshake, request, response) ends it at timeout_ms.  Oracle: the call
# ends, as a timeout, in far less than the trickle takes; the bound (30 s
# for a 2 s timeout_ms) is that deadline's, generous for a loaded machine.
kms_start trickle "$PY" "$here/tls_trickle.py" "$T/trickle.port" "$C/server.pem" "$C/server.key"
wait_file "$T/trickle.port" || die kmip_trickle_peer_starts "$(cat "$T/trickle.out")"
drv_start "$T/kek5.json" "server=127.0.0.1:$(cat "$T/trickle.port")" "client_cert=$C/agent.pem" \
	"client_key=$C/agent.key" "ca_bundle=$C/ca.pem" timeout_ms=2000 max_attempts=1
t0=$(date +%s%N)
drv check
t_ms=$((($(date +%s%N) - t0) / 1000000))
echo "# trickling server, timeout_ms 2000: the call ended after $t_ms ms"
check kmip_hang_trickling_server_one_deadline_per_call bash -c "
	$(declare -f is); T=$T
	is '$R' 'err transient timeout *within timeout_ms = 2000*' && [ $t_ms -lt 30000 ]"
drv_stop
# A listener that closes every connection at once (what QEMU's guestfwd
# does when nothing listens behind it): transient, with a hint.
close_port=$(free_port)
setsid "$PY" -c "import socket; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', $close_port)); s.listen(8)
while True: s.accept()[0].close()" >/dev/null 2>&1 &
pids+=("$!")
sleep 0.3
drv_start "$T/kek5.json" "server=127.0.0.1:$close_port" "client_cert=$C/agent.pem" \
	"client_key=$C/agent.key" "ca_bundle=$C/ca.pem" max_attempts=1
check kmip_connection_closed_in_handshake_is_transient drv_is check "err transient network *connection * during the TLS handshake*"
drv_stop

# ---- secrets stay out of every line we print ---------------------------------------------
# The KEK of kek5.json, recovered by the oracle, is in no output of ours.
w5=$(jq_ "d['wrapped_kek']" <"$T/kek5.json")
kek5=$(admin kek-hex cmk-5 "$w5" 2>/dev/null)
k5b64=$(printf %s "$kek5" | xxd -r -p | base64)
cat "$T/drv.out" "$T/drv.err" "$T/last" >"$T/all-outputs" 2>/dev/null
check kmip_no_key_material_in_outputs bash -c "
	[ ${#kek5} -eq 64 ] && ! grep -qi -e '$kek5' -e '$k5b64' $T/all-outputs"

# ---- every driver run above under ASan/UBSan: clean ---------------------------------------
check kmip_provider_paths_sanitizer_clean bash -c "
	! grep -e 'ERROR: AddressSanitizer' -e 'ERROR: LeakSanitizer' -e 'runtime error' \
		-e 'driver exit status' $T/drv-all.err >$T/last"

# ---- the TTLV decoder under libFuzzer, 5 s (make -C agent fuzz for longer) -----------
if command -v clang >/dev/null; then
	if make -s -C "$top/agent" fuzz FUZZ_SECONDS=5 FUZZ_TARGETS=ttlv >"$T/last" 2>&1; then
		ok kmip_ttlv_fuzz_5s_no_crash "$(grep -o '[0-9]* executions' "$T/last")"
	else
		nok kmip_ttlv_fuzz_5s_no_crash "$(grep -m3 -e ERROR -e SUMMARY -e FAILED "$T/last" | tr '\n' ' ')"
	fi
else
	ok kmip_ttlv_fuzz_5s_no_crash "SKIP clang not installed"
fi

echo "# suite wall time: $((($(date +%s%N) - t_start) / 1000000)) ms"
echo "1..$n"
[ "$failed" -eq 0 ]

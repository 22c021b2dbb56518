#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# seal_socket_unsealing.sh - the key socket while cmk-agent is still
# unsealing its KEK (a KMS that answers slowly), TAP output.
#
# A real cmk-agent (--no-kernel) whose KEK is wrapped by an AWS KMS key in
# moto_server; the agent reaches moto through tcp_gate.py in "hold" mode,
# so its first Decrypt is accepted and then left unanswered
# (each attempt times out and the next is held too, for the first 60 s).
#
# Oracles:
#  - the gate saw the agent's request held, the agent runs and has not
#    written its state file (it does once up): it really is mid-unseal;
#  - the socket answers status 4 (unavailable) with the reason, spoken to
#    by keysock_client.py (the documented protocol, not dm-cmk's code):
#    "still unsealing", and once an attempt timed out, that attempt's
#    reason named ("timeout");
#  - that answer goes to any peer (not root): it names no CMK ARN, no
#    account id, no access key id, no endpoint, no local path; the full
#    error is in the root-only audit log;
#  - cmkctl seal --socket exits 3 (transient), quotes that reason, and
#    writes nothing: no OUT file, not one byte on stdout;
#  - the gate opened, the agent becomes active and the same seal
#    succeeds; unseal --kek (the offline path, the KMS asked directly)
#    gives back the input byte for byte.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/kms/lib.sh
. "$here/../kms/lib.sh"
kms_init seal-unsealing
# shellcheck source=tests/storage/lib.sh
. "$here/lib.sh"
for v in $(env | sed -n 's/^\(AWS_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY no_proxy NO_PROXY ALL_PROXY all_proxy
export HOME=$T/home AWS_EC2_METADATA_DISABLED=true AWS_PAGER=
mkdir -p "$HOME"
AGENT=${AGENT:-$top/agent/build/cmk-agent}
KSC="python3 $top/tests/storage/keysock_client.py"

for c in moto_server aws python3; do
	command -v "$c" >/dev/null || die seal_unsealing_prerequisites "$c not found"
done
if [ ! -x "$CMKCTL" ] || [ ! -x "$AGENT" ]; then
	die seal_unsealing_prerequisites "build the agent first"
fi

# IAM authorisation stays off (moto's default): not what is tested here.
moto_start 1000000
export AWS_ACCESS_KEY_ID=AKIAUNSEALING000000 AWS_SECRET_ACCESS_KEY=x
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
key=$(aws --endpoint-url "$MOTO" kms create-key --description "dm-cmk seal test" |
	jq_ "d['KeyMetadata']['Arn']") || die seal_unsealing_setup "kms create-key failed"
AWS_ENDPOINT_URL_KMS=$MOTO "$CMKCTL" kek create --provider aws --key-id "$key" \
	--context service=pg --out "$T/kek.json" >"$T/last" 2>&1 ||
	die seal_unsealing_setup "$(tail -c 400 "$T/last")"
: >"$T/last"

echo hold >"$T/gate.mode"
kms_start gate python3 "$top/tests/kms/tcp_gate.py" "$T/gate.port" "$moto_port" "$T/gate.mode"
wait_file "$T/gate.port" || die seal_unsealing_setup "tcp_gate did not start"
gate=http://127.0.0.1:$(cat "$T/gate.port")

# A Unix socket's name has 107 bytes at most: $T is short.
cat >"$T/agent.conf" <<CONF
[agent]
kek_envelope = $T/kek.json
check_interval_ms = 300
jitter_pct = 0
lease_ms = 600000
check_timeout_ms = 120000
grace_s = 600
audit_log = $T/audit.log
syslog = no
state_dir = $T/state
key_socket = $T/keys.sock
CONF
SOCK=$T/keys.sock
AWS_ENDPOINT_URL_KMS=$gate kms_start agent "$AGENT" --no-kernel --config "$T/agent.conf"
state() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["state"])' "$T/state/agent.json" 2>/dev/null; }
for _ in $(seq 200); do
	[ -S "$SOCK" ] && grep -q held "$T/gate.out" && break
	sleep 0.1
done
# The state file is written once the agent is up: none yet.
# shellcheck disable=SC2154 # agent_pid: set by kms_start
check seal_socket_unsealing_agent_is_mid_unseal \
	bash -c "[ -S '$SOCK' ] && grep -q held '$T/gate.out' && kill -0 $agent_pid && [ ! -e '$T/state/agent.json' ]"

CTX=(--context cluster=c0ffee --context segment=000000010000000000000042)
head -c 100000 /dev/urandom >"$T/in"

$KSC "$SOCK" new cluster=c0ffee >"$T/ans" 2>&1
check seal_socket_unsealing_answers_unavailable_with_reason \
	grep -q '^status 4 msg .*still unsealing' "$T/ans"
sed 's/^/# /' "$T/ans"

"$CMKCTL" seal --socket "$SOCK" "${CTX[@]}" "$T/in" "$T/out.file" 2>"$T/err.file"
rc=$?
sed 's/^/# /' "$T/err.file"
check seal_socket_unsealing_seal_fails_transient_with_reason \
	bash -c "[ $rc = 3 ] && grep -q 'still unsealing' '$T/err.file'"
check seal_socket_unsealing_seal_writes_no_file [ ! -e "$T/out.file" ]
"$CMKCTL" seal --socket "$SOCK" "${CTX[@]}" "$T/in" - >"$T/out.stdout" 2>"$T/err.stdout"
rc=$?
check seal_socket_unsealing_seal_writes_nothing_to_stdout \
	bash -c "[ $rc = 3 ] && [ -e '$T/out.stdout' ] && [ ! -s '$T/out.stdout' ]"

# The first attempt times out (the HTTP timeout) and the next is held
# too: the reason now says what the KMS did.
for _ in $(seq 300); do
	[ "$(grep -c held "$T/gate.out")" -ge 2 ] && break
	sleep 0.1
done
$KSC "$SOCK" new cluster=c0ffee >"$T/ans2" 2>&1
sed 's/^/# /' "$T/ans2"
check seal_socket_unsealing_reason_names_the_failed_attempt \
	grep -q '^status 4 msg .*still unsealing the KEK (1 attempt failed so far, the last: timeout)' "$T/ans2"
acct=$(printf '%s' "$key" | cut -d: -f5)
for leak in "$key" "$acct" "$AWS_ACCESS_KEY_ID" "$T" "127.0.0.1"; do
	if grep -qF -- "$leak" "$T/ans" "$T/ans2" "$T/err.file"; then
		echo "# peer answer leaks: $leak"
		touch "$T/leaked"
	fi
done
check seal_socket_unsealing_peer_answer_leaks_no_arn_key_id_path [ ! -e "$T/leaked" ]
check seal_socket_unsealing_audit_log_keeps_the_details \
	grep -q 'timed out' "$T/audit.log"

# The KMS answers: the held request goes through, the agent unseals.
echo up >"$T/gate.mode"
for _ in $(seq 300); do [ "$(state)" = active ] && break; sleep 0.1; done
echo "# agent state after the KMS answered: $(state)"
"$CMKCTL" seal --socket "$SOCK" "${CTX[@]}" "$T/in" "$T/out.file" 2>"$T/err.after"
rc=$?
check seal_socket_unsealing_seal_works_once_active \
	bash -c "[ $rc = 0 ] && [ -s '$T/out.file' ]"
sed 's/^/# /' "$T/err.after"
AWS_ENDPOINT_URL_KMS=$MOTO "$CMKCTL" unseal --kek "$T/kek.json" "${CTX[@]}" \
	"$T/out.file" "$T/back" 2>"$T/err.back"
check seal_socket_unsealing_sealed_object_opens_offline cmp -s "$T/in" "$T/back"
echo "1..$n"
exit "$failed"

#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# seal_socket.sh - cmkctl seal|unseal --socket against a real cmk-agent
# (--no-kernel: the host never loads dm-cmk) serving its key socket, with
# the local KMS provider.  TAP output; every name contains "seal".
#
# Oracles:
#  - byte compatibility: what seal --socket writes, unseal --kek (the
#    offline path, which derives the wrapping key from the KEK itself) and
#    the AWS Encryption SDK for JavaScript (esdk_peer.js, its own
#    derivation) open, and what they write, unseal --socket opens; both
#    suites.
#  - who: the socket file is root:GROUP mode 0660 (stat); a uid on
#    key_socket_allow is served, so is one in an allowed group it holds as
#    its 72nd supplementary group (SO_PEERGROUPS past 64), a uid in GROUP but not on the list is
#    refused with "not_permitted" and audited with its uid, a uid outside
#    GROUP cannot even connect (EACCES, the file mode).
#  - the protocol from its documentation: keysock_client.py speaks it
#    without dm-cmk's code; garbage, an oversized header and a malformed
#    body get status 1 (bad request) and the agent goes on serving.
#  - slow clients (3 bytes, then nothing for 30 s) stall nobody: 20 seals
#    in a row succeed meanwhile (cmkctl gives up after 10 s without an
#    answer, so an agent that waited on a slow client would fail them) and
#    the agent's CMK checks go on (agent.json's check count rises); they
#    are closed after the 5 s timeout, audited.
#  - audit noise: a refused uid's connect flood gives at most 10 lines
#    (then one a minute) and a "suppressed" line (within a minute) whose
#    count plus those lines covers every refused connection the flooder
#    saw answered.
#  - fairness: an allowed uid holding all 64 connections busy does not
#    lock out root or its own next connection (keysock_hog.py).
#  - revocation: the local key disabled, the agent's next check revokes;
#    then unseal and seal through the socket fail at once with exit 2 and
#    the CMK's reason ("disabled"), no output file, and an audit line with
#    outcome failure, reason disabled, the context and the peer uid; the
#    key enabled again, the socket serves again.
#  - KEK rotation: after two rotations an object sealed under version 1
#    (now retired) still opens through the agent, new objects name v3;
#    the agent unwrapped that retired version only when asked (its first
#    open_edk was refused "not unwrapped yet", cmkctl's retry succeeded).
#  - unseal --socket --suite of an object of the other suite: exit 6, no
#    byte on stdout, and no new open_edk audit line (refused on the
#    header, before the agent was asked for a data key); the pinned suite
#    reads, and that adds an open_edk line.
#  - the audit log holds no wrapped KEK (raw, hex or base64), and neither
#    it nor the agent's output holds any of 50 data keys the agent handed
#    out (raw, hex, base64; the same search finds them in the client's
#    file).
# Also printed (no assertion): the round trip per request, median and
# p99 over 1000 requests, on one connection and a connection each.
set -u
# shellcheck source=tests/storage/lib.sh
. "$(dirname "$0")/lib.sh"

AGENT=${AGENT:-$top/agent/build/cmk-agent}
KSC="python3 $top/tests/storage/keysock_client.py"
PLAN=32
n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; [ $# -lt 2 ] || echo "# $2"; failed=1; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else notok "$name" "$*"; fi; }

# Short: a Unix socket's name has 107 bytes at most.
dir=$(mktemp -d /tmp/seal-sock.XXXXXX)
agent_pid=
cleanup() {
	[ -z "$agent_pid" ] || { kill "$agent_pid" 2>/dev/null; wait "$agent_pid" 2>/dev/null; }
	[ -n "${SEAL_SOCKET_KEEP:-}" ] || rm -rf "$dir"
}
trap cleanup EXIT
# Other users must reach the socket (and write their outputs in out/).
chmod 755 "$dir"
cd "$dir" || exit 1
mkdir out && chmod 1777 out

echo "1..$PLAN"
if [ ! -x "$CMKCTL" ] || [ ! -x "$AGENT" ] || ! command -v setpriv >/dev/null ||
   [ "$(id -u)" != 0 ]; then
	for i in $(seq $PLAN); do notok "seal_socket_setup_$i" "needs root, setpriv, $CMKCTL and $AGENT"; done
	exit 1
fi
peer_ok=true
esdk_peer_setup || peer_ok=false

# A group for the socket file, and three users: allowed (in the group),
# in the group only, and outside it.
GROUP=nogroup
ALLOWED=nobody		# gid nogroup
GROUPONLY=daemon	# run with --regid nogroup
OUTSIDE=bin		# run with its own group

"$CMKCTL" local-key create cmk.key >/dev/null &&
	"$CMKCTL" kek create --provider local --key-ref "$dir/cmk.key" --out kek.json \
		--context service=pg >/dev/null
cat >agent.conf <<EOF
[agent]
kek_envelope = $dir/kek.json
check_interval_ms = 300
jitter_pct = 0
lease_ms = 600000
check_timeout_ms = 5000
grace_s = 600
audit_log = $dir/audit.log
syslog = no
state_dir = $dir/state
key_socket = $dir/run/keys.sock
key_socket_allow = user:$ALLOWED gid:47123
key_socket_group = $GROUP
EOF
SOCK=$dir/run/keys.sock
setsid "$AGENT" --no-kernel --config agent.conf >agent.out 2>&1 &
agent_pid=$!
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.1; done
state() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' state/agent.json "$1" 2>/dev/null; }
wait_state() { for _ in $(seq 100); do [ "$(state "d['state']")" = "$1" ] && return 0; sleep 0.1; done; return 1; }
check seal_socket_agent_serves wait_state active

mode=$(stat -c '%a %U %G %F' "$SOCK" 2>/dev/null)
check seal_socket_file_mode_0660_root_group [ "$mode" = "660 root $GROUP socket" ]

CTX=(--context cluster=c0ffee --context segment=000000010000000000000042)
head -c 200003 /dev/urandom >in
check seal_socket_seal_agent_unseal_kek \
	bash -c "'$CMKCTL' seal --socket '$SOCK' ${CTX[*]} in s.agent &&
		 '$CMKCTL' unseal --kek kek.json ${CTX[*]} s.agent o.kek && cmp -s in o.kek"
check seal_socket_seal_kek_unseal_agent \
	bash -c "'$CMKCTL' seal --kek kek.json ${CTX[*]} in s.kek &&
		 '$CMKCTL' unseal --socket '$SOCK' ${CTX[*]} s.kek o.agent && cmp -s in o.agent"
# --agent reads the socket's path from agent.conf.
check seal_socket_agent_flag_reads_config \
	bash -c "'$CMKCTL' --config agent.conf seal --agent ${CTX[*]} --suite 0x0578 in s.578 &&
		 '$CMKCTL' --config agent.conf unseal --agent ${CTX[*]} s.578 - | cmp -s in -"
if $peer_ok; then
	check seal_socket_esdk_peer_opens_agent_sealed_both_suites \
		bash -c "peer() { $ESDK_PEER \"\$1\" --key-file cmk.key --envelope kek.json \"\${@:2}\"; }
			 peer decrypt ${CTX[*]} s.agent p.0478 s.578 p.0578 && cmp -s in p.0478 && cmp -s in p.0578"
	check seal_socket_unseal_agent_opens_esdk_peer_sealed \
		bash -c "peer() { $ESDK_PEER \"\$1\" --key-file cmk.key --envelope kek.json \"\${@:2}\"; }
			 peer encrypt --suite 0578 ${CTX[*]} in e.0578 && peer encrypt --suite 0478 ${CTX[*]} in e.0478 &&
			 '$CMKCTL' unseal --socket '$SOCK' ${CTX[*]} e.0578 o.e578 &&
			 '$CMKCTL' unseal --socket '$SOCK' ${CTX[*]} e.0478 o.e478 && cmp -s in o.e578 && cmp -s in o.e478"
else
	notok seal_socket_esdk_peer_opens_agent_sealed_both_suites "no npm peer"
	notok seal_socket_unseal_agent_opens_esdk_peer_sealed "no npm peer"
fi
# unseal --socket --suite: the pin is checked on the header, before the
# agent is asked to open the EDK (no open_edk audit line: the agent gave
# out no data key), exit 6, not one byte on stdout.
opens() { grep '"event":"key_socket"' audit.log | grep -c '"operation":"open_edk"'; }
opens_before=$(opens)
"$CMKCTL" unseal --socket "$SOCK" "${CTX[@]}" --suite 0x0578 s.agent - >o.pin 2>err.pin
rc=$?
opens_after=$(opens)
echo "# unseal --socket --suite 0x0578 of a 0x0478 object: exit $rc, $(stat -c %s o.pin) bytes, open_edk lines $opens_before -> $opens_after"
sed 's/^/# /' err.pin
check seal_socket_unseal_suite_pin_refused_before_open_edk \
	bash -c "[ $rc = 6 ] && [ ! -s o.pin ] && [ '$opens_before' = '$opens_after' ] &&
		 grep -q 'Algorithm Suite ID' err.pin"
check seal_socket_unseal_suite_pin_reads_pinned_suite \
	bash -c "'$CMKCTL' unseal --socket '$SOCK' ${CTX[*]} --suite 0x0578 s.578 - | cmp -s in - &&
		 [ \$(grep '\"event\":\"key_socket\"' audit.log | grep -c '\"operation\":\"open_edk\"') -gt $opens_after ]"
"$CMKCTL" unseal --socket "$SOCK" --context cluster=c0ffee \
	--context segment=000000010000000000000043 s.agent o.swap 2>err.swap
rc=$?
check seal_socket_swapped_segment_refused [ $rc = 6 ] && [ ! -e o.swap ] &&
	grep -q '"segment"' err.swap

# Who may ask.
as() { local u=$1 g=$2; shift 2; setpriv --reuid="$u" --regid="$g" --clear-groups "$@"; }
check seal_socket_allowed_uid_served \
	as "$ALLOWED" "$GROUP" "$CMKCTL" seal --socket "$SOCK" "${CTX[@]}" "$dir/in" "$dir/out/allowed"
as "$GROUPONLY" "$GROUP" "$CMKCTL" seal --socket "$SOCK" "${CTX[@]}" "$dir/in" "$dir/out/refused" 2>err.uid
rc=$?
uid=$(id -u "$GROUPONLY")
check seal_socket_disallowed_uid_refused_and_audited \
	bash -c "[ $rc = 1 ] && [ ! -e out/refused ] && grep -q not_permitted err.uid &&
		 grep '\"operation\":\"connect\"' audit.log | grep -q '\"peer_uid\":$uid,'"
as "$OUTSIDE" "$OUTSIDE" "$CMKCTL" seal --socket "$SOCK" "${CTX[@]}" "$dir/in" "$dir/out/outside" 2>err.mode
rc=$?
check seal_socket_outside_group_cannot_connect \
	bash -c "[ $rc = 1 ] && [ ! -e out/outside ] && grep -q 'Permission denied' err.mode"
# A uid allowed only through a supplementary group it holds among 72
# (SO_PEERGROUPS is sorted; the agent read 64 at most before): served.
check seal_socket_allowed_by_group_past_64_peergroups \
	setpriv --reuid="$GROUPONLY" --regid="$GROUP" \
	--groups="$(seq -s, 47000 47070),47123" \
	"$CMKCTL" seal --socket "$SOCK" "${CTX[@]}" "$dir/in" "$dir/out/manygroups"

# Strict parsing; the agent keeps serving.
$KSC "$SOCK" raw 474554202f20485454502f312e310d0a0d0a >ans.garbage 2>&1
$KSC "$SOCK" new a=b >ans.after1 2>&1
check seal_socket_garbage_refused_agent_serves \
	bash -c "grep -q '^status 1 msg .*bad magic' ans.garbage && grep -q '^status 0 len' ans.after1"
$KSC "$SOCK" oversized >ans.big 2>&1
$KSC "$SOCK" new a=b >ans.after2 2>&1
check seal_socket_oversized_refused_agent_serves \
	bash -c "grep -q '^status 1 msg .*more than the 8192' ans.big && grep -q '^status 0 len' ans.after2"
# Keys out of order: a well-framed request whose context is not canonical.
check seal_socket_unsorted_context_refused \
	bash -c "$KSC '$SOCK' raw 434d4b5101010010000e0002000162000178000161000179 | grep -q '^status 1 msg .*sorted'"

# A slow client: 3 bytes, then silence.
$KSC "$SOCK" slow 30 >slow.out &
slow_pid=$!
slow_pids=()
for i in 1 2 3 4; do $KSC "$SOCK" slow 30 >"slow.$i" & slow_pids+=($!); done
sleep 0.3
# checks every 300 ms: some must end while the slow clients hang on
checks_before=$(state "d['last_check']['checks']")
sleep 2
checks_after=$(state "d['last_check']['checks']")
check seal_socket_slow_client_stalls_no_check [ "${checks_after:-0}" -gt "${checks_before:-0}" ]
t0=$(date +%s%N)
good=0
for i in $(seq 20); do
	"$CMKCTL" seal --socket "$SOCK" "${CTX[@]}" in "s.many.$i" && good=$((good + 1))
done
t1=$(date +%s%N)
echo "# 20 seals through the socket while 5 clients stall: $(( (t1 - t0) / 1000000 )) ms"
check seal_socket_slow_client_stalls_no_one [ "$good" = 20 ]
wait "$slow_pid"
check seal_socket_slow_client_closed_after_timeout \
	bash -c "grep -q '^closed after [4-7]' slow.out && grep -q '\"operation\":\"timeout\"' audit.log"
wait "${slow_pids[@]}"

# Fairness: one allowed uid opens 64 connections (every slot) and keeps
# each one busy every 3 s, so the 5 s idle timeout never frees one.  Root
# (slots of its own) and that uid's fresh connection (its oldest idle one
# is closed for it) are still served; before, both got "busy" (exit 3).
as "$ALLOWED" "$GROUP" /usr/bin/python3 "$top/tests/storage/keysock_hog.py" "$SOCK" 64 8 \
	>hog.out 2>&1 &
hog_pid=$!
for _ in $(seq 100); do grep -q '^hog: ' hog.out && break; sleep 0.1; done
sleep 1
check seal_socket_busy_hog_uid_root_still_served \
	"$CMKCTL" seal --force --socket "$SOCK" "${CTX[@]}" in s.hog
check seal_socket_busy_hog_uid_own_new_connection_served \
	as "$ALLOWED" "$GROUP" "$CMKCTL" seal --force --socket "$SOCK" "${CTX[@]}" \
	"$dir/in" "$dir/out/hog"
wait "$hog_pid"
echo "# $(tail -1 hog.out)"

# Audit noise: a uid the agent refuses connects in a loop for 4 s.  Its
# refusals are audited one by one 10 times, then one a minute, the rest
# counted in a "suppressed" line a minute after its first line: a bounded
# number of lines that still account for every refused connection.
flood_n=$(as "$GROUPONLY" "$GROUP" /usr/bin/python3 "$top/tests/storage/keysock_flood.py" "$SOCK" 4)
flood_uid=$(id -u "$GROUPONLY")
flood_count() {
	/usr/bin/python3 - "$flood_uid" <<'PY'
import json, re, sys
uid = int(sys.argv[1])
lines = supp = 0
for l in open('audit.log'):
    ev = json.loads(l)
    if ev.get('event') != 'key_socket' or ev.get('peer_uid') != uid:
        continue
    if ev.get('operation') == 'connect':
        lines += 1
    elif ev.get('operation') == 'suppressed':
        supp += int(re.match(r'(\d+) more', ev['message']).group(1))
print(lines, supp)
PY
}
# the summary is due a minute after the uid's first line: wait up to 90 s
for _ in $(seq 900); do
	flood_acc=$(flood_count)
	read -r fl fs <<<"$flood_acc"
	[ $((fl + fs)) -ge "$flood_n" ] && break
	sleep 0.1
done
echo "# flood: $flood_n refused connections in 4 s; audit: $flood_acc (lines, counted in summaries)"
check seal_socket_refusal_flood_audit_rate_limited_summary_counts \
	bash -c "set -- $flood_acc; [ \$1 -le 21 ] && [ \$2 -gt 0 ] && [ \$((\$1 + \$2)) -ge $flood_n ]"

# Revocation: refused at once, with the reason, audited.
"$CMKCTL" local-key disable cmk.key >/dev/null
wait_state revoked
"$CMKCTL" unseal --socket "$SOCK" "${CTX[@]}" s.agent o.revoked 2>err.revoked
rc=$?
"$CMKCTL" seal --socket "$SOCK" "${CTX[@]}" in s.revoked 2>>err.revoked
rc2=$?
sed "s/^/# /" err.revoked
check seal_socket_revoked_refused_with_reason \
	bash -c "[ $rc = 2 ] && [ $rc2 = 2 ] && [ ! -e o.revoked ] && [ ! -e s.revoked ] &&
		 [ \$(grep -c 'refused (revoked).*disabled' err.revoked) = 2 ]"
check seal_socket_revoked_audited \
	bash -c "grep '\"event\":\"key_socket\"' audit.log | grep '\"operation\":\"open_edk\"' |
		 grep '\"outcome\":\"failure\"' | grep '\"reason\":\"disabled\"' |
		 grep '\"peer_uid\":0,' | grep -q '\"segment\":\"000000010000000000000042\"'"
"$CMKCTL" local-key enable cmk.key >/dev/null
wait_state active
check seal_socket_restored_serves \
	bash -c "'$CMKCTL' unseal --socket '$SOCK' ${CTX[*]} s.agent o.back && cmp -s in o.back"

# KEK rotation never strands an archive: the agent reloads the rotated
# envelope (current and previous KEK only) and unwraps a retired version
# when a request first names it: that request is answered "unavailable,
# retry", cmkctl asks again (keyclient.h) and gets the key.
"$CMKCTL" --config agent.conf kek rotate >/dev/null &&
	"$CMKCTL" --config agent.conf kek rotate >/dev/null
# the agent has reloaded once it seals under v3 (checks every 300 ms)
for _ in $(seq 50); do
	"$CMKCTL" seal --force --socket "$SOCK" "${CTX[@]}" in s.v3 &&
		grep '"operation":"new_data_key"' audit.log | tail -1 | grep -q '/v3"' && break
	sleep 0.2
done
check seal_socket_retired_kek_version_opens \
	bash -c "'$CMKCTL' unseal --socket '$SOCK' ${CTX[*]} s.agent o.ret && cmp -s in o.ret"
check seal_socket_retired_kek_unwrapped_lazily_unavailable_then_ok \
	bash -c "grep '\"operation\":\"open_edk\"' audit.log | grep '\"outcome\":\"failure\"' |
		 grep -q 'retired and not unwrapped yet' &&
		 grep '\"operation\":\"open_edk\"' audit.log | tail -1 | grep -q '\"outcome\":\"success\"'"
check seal_socket_seals_under_current_kek_version \
	bash -c "'$CMKCTL' unseal --kek kek.json ${CTX[*]} s.v3 - | cmp -s in - &&
		 grep '\"operation\":\"new_data_key\"' audit.log | tail -1 | grep -q '/v3\"'"
check seal_socket_kek_break_glass_opens_after_rotation \
	bash -c "'$CMKCTL' unseal --kek kek.json ${CTX[*]} s.agent o.kek2 && cmp -s in o.kek2"

# No data key the agent handed out in its audit log or its output, raw,
# hex (either case) or base64.  Positive control: the same search finds
# every key in the file the client wrote them to.
$KSC "$SOCK" keys 50 dk.hex cluster=c0ffee segment=000000010000000000000042 >/dev/null
dk_in_log=$(python3 - "$dir" <<'EOF'
import base64, sys
d = sys.argv[1]
keys = [bytes.fromhex(x) for x in open(d + '/dk.hex').read().split()]
def hits(data):
    return sum(1 for k in keys
               for x in (k, k.hex().encode(), k.hex().upper().encode(), base64.b64encode(k))
               if x in data)
hay = open(d + '/audit.log', 'rb').read() + open(d + '/agent.out', 'rb').read()
control = open(d + '/dk.hex', 'rb').read()
print(len(keys), hits(hay), hits(control))
EOF
)
echo "# data keys handed out, found in audit.log+agent.out, found by the control: $dk_in_log"
check seal_socket_no_data_key_in_audit_or_agent_output \
	bash -c "set -- $dk_in_log; [ \$1 = 50 ] && [ \$2 = 0 ] && [ \$3 -ge 50 ]"

# No wrapped KEK in the audit log, raw, hex or base64.
kek_in_log=$(python3 - "$dir" <<'EOF'
import base64, json, sys
# the local key file's bytes and the wrapped KEKs: none may be in the log
d = sys.argv[1]
log = open(d + '/audit.log', 'rb').read()
env = json.load(open(d + '/kek.json'))
needles = []
for w in [env] + ([env['previous']] if 'previous' in env else []) + env.get('retired', []):
    b = base64.b64decode(w['wrapped_kek'])
    needles += [b, b.hex().encode(), base64.b64encode(b)]
print(sum(1 for x in needles if x in log))
EOF
)
check seal_socket_no_wrapped_kek_in_audit [ "$kek_in_log" = 0 ]

# Round trip per request (printed, not asserted; the issue's target is
# <= 1 ms median).
$KSC "$SOCK" bench 1000 cluster=c0ffee segment=000000010000000000000042 | sed 's/^/# seal_socket round trip: /'

[ "$n" = "$PLAN" ] || { echo "# ran $n tests, planned $PLAN"; failed=1; }
exit $failed

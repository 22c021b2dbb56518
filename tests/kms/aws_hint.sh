#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The SQS revocation hint end to end (daemon/hint.h, Documentation/fleet.rst):
# real cmk-agent processes (--no-kernel: the host never loads dm-cmk) with
# the aws provider and a hint queue, against moto_server with IAM
# authorisation on (every SQS and KMS request's SigV4 signature checked,
# identity policies enforced).  Checks run every 300 s, so anything that
# happens within seconds was caused by the hint.
#
# Oracles: moto's SQS (the queue is empty after the check: the agent
# deleted the message), the agent's state file (its check counter moves),
# and the audit log (the revoke line, the KEK held or not).  The latencies
# are printed; the only bound asserted is the issue's "checks within 1 s",
# made 5 s because this machine is shared (say so when it fails once).
#
# Usage: tests/kms/aws_hint.sh        Output: TAP.  Every server and agent
# it starts is stopped on exit.  Needs: moto_server, aws (CLI), python3.
set -uo pipefail

# shellcheck source=tests/kms/lib.sh
source "$(dirname "$0")/lib.sh"
kms_init aws-hint

for v in $(env | sed -n 's/^\(AWS_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY no_proxy NO_PROXY ALL_PROXY all_proxy
export HOME=$T/home AWS_EC2_METADATA_DISABLED=true AWS_PAGER=
mkdir -p "$HOME"
for c in moto_server aws python3; do
	command -v "$c" >/dev/null || die aws_hint_prerequisites "$c not found"
done
kms_build aws-hint
agentbin=$top/agent/build/cmk-agent

moto_start "$MOTO_SETUP_CALLS"
# In AWS, sqs:DeleteMessage also allows DeleteMessageBatch; moto names the
# action after the operation, so the test policy names both.
agent_pol='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:Encrypt","kms:Decrypt","kms:DescribeKey","sqs:ReceiveMessage","sqs:DeleteMessage","sqs:DeleteMessageBatch"],"Resource":"*"}]}'
moto_users "$agent_pol" || die aws_hint_moto_setup "$(tail -c 600 "$T/last")"
admin() { aws_as "$admin_ak" "$admin_sk" "$@"; }

admin kms create-key --description "hint test CMK" >"$T/key.json" 2>"$T/last" ||
	die aws_hint_moto_setup "$(tail -c 600 "$T/last")"
key=$(jq_ "d['KeyMetadata']['Arn']" <"$T/key.json")
q1=$(admin sqs create-queue --queue-name cmk-vm-1 | jq_ "d['QueueUrl']")
q2=$(admin sqs create-queue --queue-name cmk-vm-2 | jq_ "d['QueueUrl']")
[ -n "$q1" ] && [ -n "$q2" ] || die aws_hint_moto_setup "no queue URL"

agent_env() {
	AWS_ACCESS_KEY_ID=$agent_ak AWS_SECRET_ACCESS_KEY=$agent_sk \
	AWS_REGION=us-east-1 AWS_ENDPOINT_URL_KMS=$MOTO "$@"
}
agent_env "$cmkctl" kek create --provider aws --key-id "$key" --context vm=hint \
	--out "$T/kek.json" >"$T/last" 2>&1 || die aws_hint_kek_create "$(tail -c 600 "$T/last")"

# start_agent NAME QUEUE_URL [INTERVAL_S]: a --no-kernel agent in $T/NAME.
start_agent() {
	local d=$T/$1
	mkdir -p "$d"
	cat >"$d/agent.conf" <<-EOF
	[agent]
	kek_envelope = $T/kek.json
	check_interval_s = ${3:-300}
	lease_ms = 600000
	check_timeout_ms = 10000
	grace_s = 600
	audit_log = $d/audit.log
	syslog = no
	state_dir = $d/state
	hint_sqs_queue_url = $2
	hint_sqs_region = us-east-1
	EOF
	agent_env kms_start "$1" "$agentbin" --no-kernel --config "$d/agent.conf"
}

# state NAME EXPR: a Python expression over NAME's state file (d).
state() { [ -s "$T/$1/state/agent.json" ] && jq_ "$2" <"$T/$1/state/agent.json" 2>/dev/null; }
checks() { local c; c=$(state "$1" "d['last_check']['checks']"); echo "${c:-0}"; }

# wait_for SECONDS CMD...: until CMD succeeds (polled every 20 ms).
wait_for() {
	local end=$((SECONDS + $1))
	shift
	while [ $SECONDS -le $end ]; do "$@" && return 0; sleep 0.02; done
	return 1
}
is_active() { [ "$(state "$1" "d['state']")" = active ]; }
now_ms() { date +%s%3N; }

# EventBridge "AWS API Call via CloudTrail" event, as the rule delivers it.
event() {
	printf '{"version":"0","id":"%s","detail-type":"AWS API Call via CloudTrail","source":"aws.kms","account":"123456789012","time":"2026-01-01T00:00:00Z","region":"us-east-1","resources":["%s"],"detail":{"eventSource":"kms.amazonaws.com","eventName":"%s","requestParameters":{"keyId":"%s"}}}' \
		"$(cat /proc/sys/kernel/random/uuid)" "$key" "$1" "$key"
}
queue_empty() {
	[ "$(admin sqs get-queue-attributes --queue-url "$1" --attribute-names All |
		jq_ "int(d['Attributes']['ApproximateNumberOfMessages']) + int(d['Attributes']['ApproximateNumberOfMessagesNotVisible'])")" = 0 ]
}

# sent_to NAME EVENT LINE: ms from SQS's SentTimestamp of the hint that
# names EVENT (the hint line says how long before its receipt it was sent)
# to the first audit line LINE ("check" or "revoke") after it.
sent_to() {
	python3 - "$T/$1/audit.log" "$2" "$3" <<-'PY'
	import json, re, sys, datetime
	ls = [json.loads(x) for x in open(sys.argv[1])]
	t = lambda l: datetime.datetime.fromisoformat(l['time'].replace('Z', '+00:00')).timestamp() * 1000
	i = max(i for i, l in enumerate(ls) if l['event'] == 'hint' and sys.argv[2] in l.get('message', ''))
	sent = t(ls[i]) - int(re.search(r'sent (-?\d+) ms ago', ls[i]['message']).group(1))
	want = lambda l: l['event'] == 'revoke' if sys.argv[3] == 'revoke' else l.get('operation') == 'check'
	print(int(round(t(next(l for l in ls[i:] if want(l))) - sent)))
	PY
}

start_agent vm1 "$q1"
check aws_hint_agent_boots_without_kernel wait_for 30 is_active vm1

# ---- a message -> a real check at once; the message is deleted ------------
c0=$(checks vm1)
admin sqs send-message --queue-url "$q1" --message-body "$(event DisableKey)" >"$T/last" 2>&1
moved() { [ "$(checks vm1)" -gt "$c0" ]; }
if wait_for 20 moved; then
	dt=$(sent_to vm1 DisableKey check)
	echo "# hint: SQS SentTimestamp -> check answered: $dt ms (issue: within 1 s)"
	if [ -n "$dt" ] && [ "$dt" -le 5000 ]; then ok aws_hint_message_triggers_check_within_bound "$dt ms"
	else nok aws_hint_message_triggers_check_within_bound "${dt:-?} ms > 5000 ms (machine busy? re-run)"; fi
else
	nok aws_hint_message_triggers_check_within_bound "no check within 20 s: $(tail -3 "$T/vm1/audit.log")"
fi
check aws_hint_audited_with_event_name grep -q '"event":"hint".*DisableKey' "$T/vm1/audit.log"
check aws_hint_message_deleted_after_check wait_for 10 queue_empty "$q1"
# The hint carries no authority: the KMS said yes, so nothing was wiped.
check aws_hint_allowed_key_keeps_kek bash -c "
	$(declare -f state jq_ is_active); T=$T; is_active vm1 &&
	! grep -q '\"event\":\"revoke\"' $T/vm1/audit.log"

# ---- a junk message is only a hint too -------------------------------------
c0=$(checks vm1)
admin sqs send-message --queue-url "$q1" --message-body 'not json at all' >"$T/last" 2>&1
check aws_hint_junk_message_only_checks bash -c "
	$(declare -f wait_for state jq_ checks moved is_active); T=$T c0=$c0
	wait_for 20 moved && is_active vm1"

# ---- large messages: a full batch does not silence the hint -----------------
# Five messages of 255,000 bytes wait on a fresh queue before its agent
# starts, so its first ReceiveMessage of 10 answers more than the HTTP
# layer's default 1 MiB cap (every receive used to fail until the messages
# expired).  Oracle: the agent audits a hint with messages (not "hint queue
# failing"), runs checks and the queue drains; moto caps a message at
# 256 KiB, the 10 x 1 MiB batch is the unit test
# hint_sqs_oversized_batch_is_a_hint_and_drains.
q4=$(admin sqs create-queue --queue-name cmk-vm-4 | jq_ "d['QueueUrl']")
head -c 255000 /dev/zero | tr '\0' x >"$T/big.txt"
for _ in 1 2 3 4 5; do
	admin sqs send-message --queue-url "$q4" --message-body "file://$T/big.txt" >"$T/last" 2>&1
done
start_agent vm4 "$q4"
big_hint() { grep -qs '"event":"hint".*SQS: [0-9]* message' "$T/vm4/audit.log"; }
# The messages are there before the agent starts, so its first receive
# often lands while the boot unseal runs: that batch asks for a check right
# after the boot (the unseal may predate the messages: agentloop.h, "boot"),
# and is deleted once it starts: seconds.  The 60 s waits are generous
# for a loaded machine and still fail the old way: a batch left for
# CMK_SQS_HINT_ACK_MS (60 s) to come back after the visibility timeout
# (~75 s).
check aws_hint_large_messages_still_hint wait_for 30 big_hint
check aws_hint_large_messages_drained wait_for 60 queue_empty "$q4"
check aws_hint_large_messages_agent_active wait_for 60 bash -c "
	$(declare -f state jq_ checks is_active); T=$T
	is_active vm4 && [ \"\$(checks vm4)\" -ge 1 ]"
grep '"event":"hint"' "$T/vm4/audit.log" | sed 's/^/# vm4: /' | cut -c1-200 | head -5

# ---- a Deny in the policy + a hint -> revoked within seconds -----------------
deny='{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"kms:Decrypt","Resource":"*"}]}'
admin iam put-user-policy --user-name agent --policy-name deny --policy-document "$deny" >"$T/last" 2>&1
sleep 1	# no check runs in this second: the next one is 300 s away
check aws_hint_deny_alone_waits_for_schedule is_active vm1
admin sqs send-message --queue-url "$q1" --message-body "$(event PutKeyPolicy)" >"$T/last" 2>&1
revoked() { grep -q '"event":"revoke"' "$T/$1/audit.log"; }
if wait_for 30 revoked vm1; then
	dt=$(sent_to vm1 PutKeyPolicy revoke)
	echo "# hint: Deny, then SQS SentTimestamp -> KEK forgotten (revoke line): $dt ms"
	if [ -n "$dt" ] && [ "$dt" -le 5000 ]; then ok aws_hint_deny_revokes_and_forgets_kek "$dt ms"
	else nok aws_hint_deny_revokes_and_forgets_kek "${dt:-?} ms > 5000 ms (machine busy? re-run)"; fi
else
	nok aws_hint_deny_revokes_and_forgets_kek "no revoke within 30 s: $(tail -3 "$T/vm1/audit.log")"
fi
check aws_hint_deny_state_revoked bash -c "$(declare -f state jq_); T=$T
	[ \"\$(state vm1 \"d['state']\")\" = revoked ] && [ \"\$(state vm1 \"d['kek_held']\")\" = False ]"

# Only a real yes restores: the Deny goes, a hint asks, the KMS says yes.
admin iam delete-user-policy --user-name agent --policy-name deny >"$T/last" 2>&1
admin sqs send-message --queue-url "$q1" --message-body "$(event EnableKey)" >"$T/last" 2>&1
check aws_hint_restore_only_on_kms_yes wait_for 30 is_active vm1

# ---- 20 operators at once: every cmkctl check-now gets its check's answer ---
# Oracle: each caller's exit status (0: the check that answers its token
# said yes) and the KMS calls it cost (hints coalesce: far fewer than 20).
# SIGHUPs sent while one is pending merge in the kernel; the old ring of 8
# tokens and no resend left callers waiting until --wait ran out (exit 3).
c0=$(checks vm1)
for i in $(seq 20); do
	"$cmkctl" --config "$T/vm1/agent.conf" check-now --wait 60 >"$T/cn.$i" 2>&1 &
	cn_pids[i]=$!
done
cn_ok=0
for i in $(seq 20); do wait "${cn_pids[i]}" && cn_ok=$((cn_ok + 1)); done
echo "# hint: 20 concurrent check-now: $cn_ok answered, $(($(checks vm1) - c0)) KMS check(s)"
if [ "$cn_ok" -eq 20 ]; then ok aws_hint_check_now_twenty_concurrent_callers_answered "$cn_ok/20"
else nok aws_hint_check_now_twenty_concurrent_callers_answered "$cn_ok/20: $(cat "$T"/cn.* | sort | uniq -c | head -3)"; fi

# ---- a flood of hints: bounded audit lines, and a "suppressed" count --------
# Oracle: the audit log.  100 SIGHUPs in 2 s (kill, as an operator's script
# might; the loop coalesces some) write at most 10 lines one by one (a
# source's bucket holds 10 and gets one back a minute, and the check-now
# callers above took some already: 11 if a minute turns during the flood),
# and an "N hints suppressed" line, one a minute at most and the last
# within a minute of the flood, counts the rest.  Before, every hint wrote
# its own line.  The exact accounting is test_auditlimit's.
sighup_lines() { grep -c '"event":"hint".*SIGHUP (cmkctl check-now)' "$T/vm1/audit.log"; }
h0=$(sighup_lines)
l0=$(wc -l <"$T/vm1/audit.log")
# the operator (SIGHUP) hints counted in summaries written since line $l0
suppressed_sum() {
	tail -n +"$((l0 + 1))" "$T/vm1/audit.log" |
		grep -o '[0-9]* hints suppressed: [0-9]* more operator' |
		awk '{ n += $1 } END { print n + 0 }'
}
vm1_pid=$(state vm1 "d['pid']")
for _ in $(seq 100); do kill -HUP "$vm1_pid"; sleep 0.02; done
sleep 1
h1=$(sighup_lines)
accounted() { [ "$(suppressed_sum)" -gt 0 ]; }
wait_for 90 accounted
echo "# hint: 100 SIGHUPs -> $((h1 - h0)) hint line(s), $(suppressed_sum) counted in 'suppressed' lines"
if [ $((h1 - h0)) -le 11 ] && accounted; then ok aws_hint_flood_audit_lines_limited "$((h1 - h0)) lines"
else nok aws_hint_flood_audit_lines_limited "$((h1 - h0)) SIGHUP lines for 100 hints; $(suppressed_sum) counted as suppressed"; fi
check aws_hint_flood_agent_still_active is_active vm1

# ---- a failing queue never touches the keys or the schedule ------------------
bad=${q2%/*}/no-such-queue
start_agent vm3 "$bad" 1
check aws_hint_failing_queue_boots wait_for 30 is_active vm3
sleep 6
check aws_hint_failing_queue_audited grep -q '"event":"hint".*hint queue failing' "$T/vm3/audit.log"
check aws_hint_failing_queue_keeps_checks_and_kek bash -c "
	$(declare -f state jq_ checks is_active); T=$T
	is_active vm3 && [ \"\$(checks vm3)\" -ge 4 ] && ! grep -q '\"event\":\"revoke\"' $T/vm3/audit.log"
fails=$(grep -c '"event":"hint"' "$T/vm3/audit.log")
echo "# hint: failing queue: $fails hint audit line(s) in 6 s (first failure noted once; backoff 1 s doubling to 60 s)"

# ---- SNS fan-out: one topic, one queue per VM -------------------------------
start_agent vm2 "$q2"
wait_for 30 is_active vm2 || true
topic=$(admin sns create-topic --name cmk-revocations | jq_ "d['TopicArn']")
for q in "$q1" "$q2"; do
	arn=$(admin sqs get-queue-attributes --queue-url "$q" --attribute-names QueueArn |
		jq_ "d['Attributes']['QueueArn']")
	admin sns subscribe --topic-arn "$topic" --protocol sqs --notification-endpoint "$arn" \
		>"$T/last" 2>&1
done
c1=$(checks vm1)
c2=$(checks vm2)
t0=$(now_ms)
admin sns publish --topic-arn "$topic" --message "$(event ScheduleKeyDeletion)" >"$T/last" 2>&1
both() { [ "$(checks vm1)" -gt "$c1" ] && [ "$(checks vm2)" -gt "$c2" ]; }
if wait_for 20 both; then
	ok aws_hint_sns_fanout_checks_every_vm "$(($(now_ms) - t0)) ms"
else
	nok aws_hint_sns_fanout_checks_every_vm "vm1 $(checks vm1)/$c1 vm2 $(checks vm2)/$c2"
fi
check aws_hint_sns_envelope_event_name_audited grep -q '"event":"hint".*ScheduleKeyDeletion' "$T/vm2/audit.log"
check aws_hint_sns_messages_deleted bash -c "
	$(declare -f wait_for queue_empty admin aws_as jq_); MOTO=$MOTO admin_ak=$admin_ak admin_sk=$admin_sk
	wait_for 10 queue_empty $q1 && wait_for 10 queue_empty $q2"

# ---- no key material in any log ---------------------------------------------
check aws_hint_no_secret_in_logs bash -c "! grep -rq -- '$agent_sk' $T/vm1 $T/vm2 $T/vm3"

echo "1..$n"
[ "$failed" -eq 0 ]

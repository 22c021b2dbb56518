#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The whole system with AWS KMS: cmk-agent in the QEMU guest, moto (IAM
# auth on) on the host, reached through guestfwd; the host revokes with
# the aws CLI when the guest test asks (control port), the guest times
# revoke-to-wipe.  The guest's KMS traffic goes through the fault proxy of
# fakes.py, so the guest can also ask for throttling (transient errors:
# keys kept within grace_s, wiped after it), for the agent's access key to
# be rotated (no wipe), for a KMS that hangs (stall) and for one that
# answers after 25 s (slow25).  See tests/kms/guest/aws_guest_revoke_restore
# and tests/kms/guest/aws_guest_hang.
#
# Usage: tests/kms/aws_guest.sh [--kver KVER]     Output: TAP (the guest
# runner's).  Stops every server it starts.  Needs a built cmk-agent.
# KMS_GUEST_TESTS="aws_guest_hang" runs only some of the guest tests.
set -uo pipefail

# shellcheck source=tests/kms/lib.sh
source "$(dirname "$0")/lib.sh"
kms_init aws-guest
cd "$top" || exit 1
guest_args aws_guest "$@"

for v in $(env | sed -n 's/^\(AWS_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY no_proxy NO_PROXY
export HOME=$T/home AWS_EC2_METADATA_DISABLED=true AWS_PAGER=
mkdir -p "$HOME" "$T/ctl"

make -s -C agent all >"$T/build.log" 2>&1 || fail aws_guest_agent_builds "$(tail -5 "$T/build.log")"
make -s -C tests/integration O="$top/build/tests/integration" >"$T/build.log" 2>&1 ||
	fail aws_guest_helpers_build "$(tail -5 "$T/build.log")"

moto_start "$MOTO_SETUP_CALLS"
agent_pol='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*"}]}'
moto_users "$agent_pol" || fail aws_guest_moto_setup "$(tail -c 400 "$T/last")"
key=$(aws_as "$admin_ak" "$admin_sk" kms create-key | jq_ "d['KeyMetadata']['Arn']") ||
	fail aws_guest_moto_setup "kms create-key as admin failed"

AWS_ACCESS_KEY_ID=$agent_ak AWS_SECRET_ACCESS_KEY=$agent_sk AWS_REGION=us-east-1 \
AWS_ENDPOINT_URL_KMS=$MOTO agent/build/cmkctl kek create --provider aws --key-id "$key" \
	--context service=integration --out "$T/kek.json" >"$T/kek.log" 2>&1 ||
	fail aws_guest_kek_create "$(cat "$T/kek.log")"
printf 'AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s\n' "$agent_ak" "$agent_sk" >"$T/aws.env"

# What the guest may ask the host to do.
deny='{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"kms:Decrypt","Resource":"*"}]}'
echo 'echo pong' >"$T/ctl/ping"
printf 'AWS_ACCESS_KEY_ID=%q AWS_SECRET_ACCESS_KEY=%q AWS_DEFAULT_REGION=us-east-1 aws --endpoint-url %q iam put-user-policy --user-name agent --policy-name deny --policy-document %q\n' \
	"$admin_ak" "$admin_sk" "$MOTO" "$deny" >"$T/ctl/deny"
printf 'AWS_ACCESS_KEY_ID=%q AWS_SECRET_ACCESS_KEY=%q AWS_DEFAULT_REGION=us-east-1 aws --endpoint-url %q iam delete-user-policy --user-name agent --policy-name deny\n' \
	"$admin_ak" "$admin_sk" "$MOTO" >"$T/ctl/allow"
# rotate_new / rotate_delete_old: the agent user's access key rotated (the
# new key's id and secret go to the guest, which writes them into the
# agent's credentials file; they are test credentials of this moto only).
printf 'AWS_ACCESS_KEY_ID=%q AWS_SECRET_ACCESS_KEY=%q AWS_DEFAULT_REGION=us-east-1 aws --endpoint-url %q iam create-access-key --user-name agent --query "[AccessKey.AccessKeyId, AccessKey.SecretAccessKey]" --output text\n' \
	"$admin_ak" "$admin_sk" "$MOTO" >"$T/ctl/rotate_new"
printf 'AWS_ACCESS_KEY_ID=%q AWS_SECRET_ACCESS_KEY=%q AWS_DEFAULT_REGION=us-east-1 aws --endpoint-url %q iam delete-access-key --user-name agent --access-key-id %q\n' \
	"$admin_ak" "$admin_sk" "$MOTO" "$agent_ak" >"$T/ctl/rotate_delete_old"
# delete_agent_keys: every access key of the agent user deleted (rotation
# done in the wrong order: nothing valid left in the agent's file).
cat >"$T/ctl/delete_agent_keys" <<CTL_END
export AWS_ACCESS_KEY_ID=$admin_ak AWS_SECRET_ACCESS_KEY=$admin_sk AWS_DEFAULT_REGION=us-east-1
for k in \$(aws --endpoint-url $MOTO iam list-access-keys --user-name agent \
		--query 'AccessKeyMetadata[].AccessKeyId' --output text); do
	aws --endpoint-url $MOTO iam delete-access-key --user-name agent --access-key-id "\$k" || exit 1
done
CTL_END
# throttle / pass / stall / slow (slow25: answers after 25 s): switch the
# fault proxy, and return only once the agent's next request has seen the
# new mode (so the guest knows it took effect).
for a in throttle pass stall slow:slow25; do
	m=${a#*:}
	cat >"$T/ctl/${a%%:*}" <<CTL_END
n=\$(grep -c '^$m ' '$T/fault.log')
echo $m >'$T/mode'
for _ in \$(seq 1 300); do
	[ "\$(grep -c '^$m ' '$T/fault.log')" -gt "\$n" ] && exit 0
	sleep 0.1
done
exit 1
CTL_END
done
# throttle_count: the throttled requests so far (the guest measures the
# agent's request rate while throttled).
echo "grep -c '^throttle ' '$T/fault.log'" >"$T/ctl/throttle_count"
# reset: back to pass at once (for a test that starts with no agent running).
echo "echo pass >'$T/mode'" >"$T/ctl/reset"
echo pass >"$T/mode"
: >"$T/fault.log"
kms_start fault python3 "$here/fakes.py" fault "$T/fault.port" "$T/fault.log" "127.0.0.1:$moto_port" "$T/mode"
kms_start control python3 "$here/fakes.py" control "$T/ctl.port" "$T/ctl.log" "$T/ctl"
wait_file "$T/fault.port" || fail aws_guest_fault_proxy "$(cat "$T/fault.out")"
wait_file "$T/ctl.port" || fail aws_guest_control_server "$(cat "$T/control.out")"

helpers=$top/build/tests/integration
# The guest runs them in name order: aws_guest_hang first, with the agent's
# original access key, which aws_guest_revoke_restore rotates away.
tests=()
for t in ${KMS_GUEST_TESTS:-aws_guest_hang aws_guest_revoke_restore}; do
	tests+=("$here/guest/$t")
done
scripts/qemu/run-guest.sh --kver "$kver" --out "$top/build/results/kms-aws-guest-$kver" \
	--timeout "${GUEST_TIMEOUT:-600}" --test-timeout 400 \
	--net-fwd "8080=$(cat "$T/fault.port")" --net-fwd "8081=$(cat "$T/ctl.port")" \
	--add agent/build/cmk-agent:/usr/sbin/cmk-agent \
	--add agent/build/cmkctl:/usr/sbin/cmkctl \
	--add "$helpers/cmk-oracle:/usr/bin/cmk-oracle" \
	--add tests/integration/lib.sh:/usr/lib/cmk-test/lib.sh \
	--add "$T/kek.json:/etc/cmk-test/kek.json" \
	--add "$T/aws.env:/etc/cmk-test/aws.env" \
	"${tests[@]}"
rc=$?
echo "# host control log: $(tr '\n' ';' <"$T/ctl.log")"
exit $rc

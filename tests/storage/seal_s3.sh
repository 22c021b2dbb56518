#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# seal_s3.sh - cmkctl seal/unseal straight to and from S3 (esdk_s3.h,
# kms/aws/s3.h), against moto_server's S3 with IAM authorisation on (every
# request's SigV4 signature checked, identity policies enforced), TAP.
#
# Oracles: the plaintext, compared byte for byte; moto, asked by the aws
# CLI (botocore) as an admin: what objects exist, their ETag ("-3": S3
# assembled it from 3 parts), and ListMultipartUploads (no upload left
# behind).  Each object is also fetched by the aws CLI and unsealed from
# that file, so the object in S3 is the sealed message, whatever our
# download does.  The archiver's policy has s3:PutObject, GetObject,
# ListBucket and AbortMultipartUpload; the reader's has no s3:PutObject.
# Both key sources: --kek, and --socket of a cmk-agent (--no-kernel).
# Memory: 64 MiB through pipes with each process under 40 MiB resident.
#
# Usage: tests/storage/seal_s3.sh        Every moto it starts is stopped.
set -uo pipefail

# shellcheck source=tests/kms/lib.sh
source "$(dirname "$0")/../kms/lib.sh"
kms_init seal-s3

for v in $(env | sed -n 's/^\(AWS_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY no_proxy NO_PROXY ALL_PROXY all_proxy
export HOME=$T/home AWS_EC2_METADATA_DISABLED=true AWS_PAGER=
mkdir -p "$HOME"
for c in moto_server aws python3; do
	command -v "$c" >/dev/null || die seal_s3_prerequisites "$c not found"
done
make -s -C "$top/agent" all >"$T/build.log" 2>&1 ||
	die seal_s3_agent_builds "$(tail -5 "$T/build.log")"
cmkctl=$top/agent/build/cmkctl

moto_start "$MOTO_SETUP_CALLS"
archiver='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:PutObject","s3:GetObject","s3:ListBucket","s3:AbortMultipartUpload","s3:ListMultipartUploadParts"],"Resource":"*"}]}'
moto_users "$archiver" || die seal_s3_moto_setup "$(tail -c 600 "$T/last")"
admin() { aws_as "$admin_ak" "$admin_sk" "$@"; }
{
	admin iam create-user --user-name reader >/dev/null &&
	admin iam create-access-key --user-name reader >"$T/reader.json" &&
	admin iam put-user-policy --user-name reader --policy-name s3 --policy-document \
		'{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket","s3:AbortMultipartUpload"],"Resource":"*"}]}' &&
	admin s3api create-bucket --bucket wal-archive >/dev/null
} >"$T/last" 2>&1 || die seal_s3_moto_setup "$(tail -c 600 "$T/last")"
reader_ak=$(jq_ "d['AccessKey']['AccessKeyId']" <"$T/reader.json")
reader_sk=$(jq_ "d['AccessKey']['SecretAccessKey']" <"$T/reader.json")

B=s3://wal-archive
cd "$T" || exit 1
ctl() { "$cmkctl" --config "$T/none.conf" "$@"; }
# as AK SK CMD...: with these credentials, the endpoint moto's.
as() {
	AWS_ACCESS_KEY_ID=$1 AWS_SECRET_ACCESS_KEY=$2 AWS_REGION=us-east-1 \
		AWS_ENDPOINT_URL_S3=$MOTO "${@:3}"
}
arch() { as "$agent_ak" "$agent_sk" "$@"; }
C1=(--context cluster=c1 --context segment=000000010000000000000001)
C2=(--context cluster=c1 --context segment=000000010000000000000002)

if ! ctl local-key create cmk.key >/dev/null ||
	! ctl kek create --provider local --key-ref "$T/cmk.key" --out kek.json \
		--context service=pg >/dev/null; then
	die seal_s3_kek_create "no KEK"
fi

# Sizes: small, empty, 20 MiB (3 parts of 8 MiB).
head -c 70000 /dev/urandom >small
: >empty
head -c $((20 << 20)) /dev/urandom >big
head -c 70000 /dev/urandom >other

exists() { admin s3api head-object --bucket wal-archive --key "$1" >"$T/head.json" 2>>"$T/last"; }
uploads_none() {
	admin s3api list-multipart-uploads --bucket wal-archive >"$T/mpu.json" 2>>"$T/last" &&
		[ "$(jq_ "len(d.get('Uploads', []))" <"$T/mpu.json" 2>/dev/null || echo 0)" = 0 ]
}
# roundtrip NAME FILE KEY: seal to S3, unseal from S3, and unseal the object
# as the aws CLI fetched it; both byte-exact.
roundtrip() {
	rm -f "$2.out" "$2.cli" "$2.cli.out"
	arch ctl seal --kek kek.json "${C1[@]}" "$2" "$B/$3" >"$T/last" 2>&1 &&
		arch ctl unseal --kek kek.json "${C1[@]}" "$B/$3" "$2.out" >>"$T/last" 2>&1 &&
		cmp "$2" "$2.out" >>"$T/last" 2>&1 &&
		admin s3api get-object --bucket wal-archive --key "$3" "$2.cli" >/dev/null 2>>"$T/last" &&
		ctl unseal --kek kek.json "${C1[@]}" "$2.cli" "$2.cli.out" >>"$T/last" 2>&1 &&
		cmp "$2" "$2.cli.out" >>"$T/last" 2>&1
}
etag() { jq_ "d['ETag']" <"$T/head.json"; }

check seal_s3_roundtrip_small roundtrip small small wal/small
check seal_s3_roundtrip_empty roundtrip empty empty wal/empty
check seal_s3_roundtrip_multipart_20mib roundtrip big big wal/big
exists wal/big
case $(etag) in
*-3\") ok seal_s3_multipart_three_parts "ETag $(etag)" ;;
*) nok seal_s3_multipart_three_parts "ETag $(etag), want a 3-part ETag" ;;
esac
exists wal/small
case $(etag) in
*-*) nok seal_s3_small_is_one_putobject "ETag $(etag)" ;;
*) ok seal_s3_small_is_one_putobject ;;
esac
check seal_s3_no_upload_left_after_success uploads_none

# ---- from stdin, through a pipe ---------------------------------------------
rm -f pipe.out
head -c 9000000 big | arch ctl seal --kek kek.json "${C1[@]}" - "$B/wal/stdin" >"$T/last" 2>&1 &&
	arch ctl unseal --kek kek.json "${C1[@]}" "$B/wal/stdin" - 2>>"$T/last" | cmp - <(head -c 9000000 big) >>"$T/last" 2>&1
check seal_s3_stdin_to_stdout_roundtrip [ "${PIPESTATUS[0]}${PIPESTATUS[1]}" = 00 ]

# ---- constant memory: 64 MiB through pipes, each process under 40 MiB -------
# (one 8 MiB part, one frame, about 12 MiB of program; a buffered object
# would take 64 MiB).
rss() { sed -n 's/^maxrss \([0-9]*\)$/\1/p' "$1"; }
head -c $((64 << 20)) /dev/zero | tr '\0' x |
	arch /usr/bin/time -f "maxrss %M" -o seal.rss "$cmkctl" --config "$T/none.conf" seal \
		--kek kek.json "${C1[@]}" - "$B/wal/mem" >"$T/last" 2>&1 &&
	arch /usr/bin/time -f "maxrss %M" -o unseal.rss "$cmkctl" --config "$T/none.conf" unseal \
		--kek kek.json "${C1[@]}" "$B/wal/mem" - 2>>"$T/last" | sha256sum >mem.sum
want=$(head -c $((64 << 20)) /dev/zero | tr '\0' x | sha256sum)
echo "# seal 64 MiB to S3: max RSS $(rss seal.rss) KiB; unseal from S3: $(rss unseal.rss) KiB"
mem_ok() { [ "$(cat mem.sum)" = "$want" ] && [ "$(rss seal.rss)" -lt 40960 ] && [ "$(rss unseal.rss)" -lt 40960 ]; }
check seal_s3_constant_memory_64mib_pipe mem_ok

# ---- a user without s3:PutObject --------------------------------------------
denied() {
	local rc
	as "$reader_ak" "$reader_sk" ctl seal --kek kek.json "${C1[@]}" "$1" "$B/$2" >"$T/last" 2>&1
	rc=$?
	[ $rc = 2 ] && grep -q "AccessDenied" "$T/last" && grep -q "s3://wal-archive/$2" "$T/last" &&
		grep -q "s3:PutObject" "$T/last" && grep -q "request id [A-Za-z0-9+/=._-]*)" "$T/last" &&
		! exists "$2" && uploads_none
}
check seal_s3_put_denied_clear_no_object denied small wal/denied-small
check seal_s3_multipart_denied_clear_no_object denied big wal/denied-big

# ---- interrupted: SIGTERM in the middle of a multipart upload ---------------
# 12 MiB then nothing more: part 1 goes up, the rest waits for input.
mkfifo slow
# exec: $! is cmkctl itself, not a subshell around it.
(AWS_ACCESS_KEY_ID=$agent_ak AWS_SECRET_ACCESS_KEY=$agent_sk AWS_REGION=us-east-1 \
	AWS_ENDPOINT_URL_S3=$MOTO exec "$cmkctl" --config "$T/none.conf" seal --kek kek.json \
	"${C1[@]}" slow "$B/wal/interrupted" >"$T/int.log" 2>&1) &
spid=$!
exec 9>slow
head -c $((12 << 20)) big >&9
# part_up KEY: one multipart upload under way, of KEY, with one part.
part_up() {
	admin s3api list-multipart-uploads --bucket wal-archive >"$T/mpu.json" 2>/dev/null &&
		[ "$(jq_ "len(d.get('Uploads', []))" <"$T/mpu.json")" = 1 ] &&
		id=$(jq_ "d['Uploads'][0]['UploadId']" <"$T/mpu.json") &&
		admin s3api list-parts --bucket wal-archive --key "$1" --upload-id "$id" \
			>"$T/parts.json" 2>/dev/null &&
		[ "$(jq_ "len(d.get('Parts', []))" <"$T/parts.json")" = 1 ]
}
for _ in $(seq 1 300); do part_up wal/interrupted && break; sleep 0.1; done
if part_up wal/interrupted; then
	kill -TERM "$spid"
	wait "$spid"
	rc=$?
	exec 9>&-
	cp "$T/int.log" "$T/last"
	echo "exit status $rc" >>"$T/last"
	int_ok() { [ "$rc" = 143 ] && grep -q aborted "$T/int.log" && ! exists wal/interrupted; }
	check seal_s3_interrupted_multipart_no_object int_ok
	check seal_s3_interrupted_multipart_upload_aborted uploads_none
else
	exec 9>&-
	wait "$spid"
	nok seal_s3_interrupted_multipart_no_object "part 1 never appeared: $(cat "$T/int.log")"
	nok seal_s3_interrupted_multipart_upload_aborted "not run"
fi

# ---- a part refused in the middle: the upload is aborted --------------------
# Part 1 goes up; then the archiver loses s3:PutObject; part 2 is refused.
rm -f slow && mkfifo slow
(AWS_ACCESS_KEY_ID=$agent_ak AWS_SECRET_ACCESS_KEY=$agent_sk AWS_REGION=us-east-1 \
	AWS_ENDPOINT_URL_S3=$MOTO exec "$cmkctl" --config "$T/none.conf" seal --kek kek.json \
	"${C1[@]}" slow "$B/wal/cut" >"$T/cut.log" 2>&1) &
spid=$!
exec 9>slow
head -c $((12 << 20)) big >&9
for _ in $(seq 1 300); do part_up wal/cut && break; sleep 0.1; done
admin iam put-user-policy --user-name agent --policy-name kms --policy-document \
	"${archiver/\"s3:PutObject\",/}" >"$T/last" 2>&1
head -c $((8 << 20)) big >&9
exec 9>&-
wait "$spid"
rc=$?
admin iam put-user-policy --user-name agent --policy-name kms --policy-document "$archiver" >>"$T/last" 2>&1
cp "$T/cut.log" "$T/last"
echo "exit status $rc" >>"$T/last"
cut_ok() { [ "$rc" = 2 ] && grep -q "UploadPart.*AccessDenied" "$T/cut.log" && ! exists wal/cut && uploads_none; }
check seal_s3_part_denied_midway_upload_aborted_no_object cut_ok

# ---- never replace; identical is fine (PostgreSQL's archive rule) ------------
refuse() {
	arch ctl seal --kek kek.json "${C1[@]}" "$1" "$B/$2" >"$T/last" 2>&1
	[ $? = 1 ] && grep -q "$3" "$T/last" && rm -f chk &&
		arch ctl unseal --kek kek.json "${C1[@]}" "$B/$2" chk >>"$T/last" 2>&1 && cmp "$4" chk
}
check seal_s3_overwrite_different_refused refuse other wal/small "different content" small
check seal_s3_overwrite_different_multipart_refused refuse small wal/big "different content" big
# The same bytes, sealed for another segment, are another object.
rm -f chk
arch ctl seal --kek kek.json "${C2[@]}" small "$B/wal/small" >"$T/last" 2>&1
check seal_s3_overwrite_other_context_refused bash -c "[ $? = 1 ] && grep -q 'not this input sealed for this context' '$T/last'"
same() {
	arch ctl seal --kek kek.json "${C1[@]}" "$1" "$B/$2" >"$T/last" 2>&1 &&
		grep -q "same content" "$T/last" && uploads_none
}
check seal_s3_identical_again_ok same small wal/small
check seal_s3_identical_again_multipart_ok same big wal/big
check seal_s3_identical_empty_again_ok same empty wal/empty
# shellcheck disable=SC2002 # a pipe, not a file, on purpose
cat small | arch ctl seal --kek kek.json "${C1[@]}" - "$B/wal/small" >"$T/last" 2>&1
check seal_s3_existing_from_pipe_refused bash -c "[ $? = 1 ] && grep -q 'cannot be read again' '$T/last'"

# ---- through the agent's key socket (--socket): the archive_command form ----
# A --no-kernel agent holds the KEK; cmkctl gets data keys from it, and the
# comparison of an existing object opens it through the agent too.
mkdir -p run
cat >agent.conf <<EOF
[agent]
kek_envelope = $T/kek.json
check_interval_ms = 60000
lease_ms = 600000
grace_s = 600
audit_log = $T/audit.log
syslog = no
state_dir = $T/state
key_socket = $T/run/keys.sock
key_socket_allow = user:$(id -un)
EOF
kms_start agent "$top/agent/build/cmk-agent" --no-kernel --config "$T/agent.conf"
for _ in $(seq 100); do [ -S run/keys.sock ] && break; sleep 0.1; done
sock() {
	rm -f "$1.sock.out"
	arch ctl seal --socket "$T/run/keys.sock" "${C1[@]}" "$1" "$B/$2" >"$T/last" 2>&1 &&
		arch ctl unseal --socket "$T/run/keys.sock" "${C1[@]}" "$B/$2" "$1.sock.out" >>"$T/last" 2>&1 &&
		cmp "$1" "$1.sock.out" && rm -f "$1.sock.out" &&
		arch ctl unseal --kek kek.json "${C1[@]}" "$B/$2" "$1.sock.out" >>"$T/last" 2>&1 &&
		cmp "$1" "$1.sock.out" &&
		arch ctl seal --socket "$T/run/keys.sock" "${C1[@]}" "$1" "$B/$2" >"$T/last" 2>&1 &&
		grep -q "same content" "$T/last"
}
check seal_s3_agent_socket_roundtrip_and_identical_again sock big wal/sock-big
arch ctl seal --socket "$T/run/keys.sock" "${C1[@]}" other "$B/wal/sock-big" >"$T/last" 2>&1
check seal_s3_agent_socket_different_refused bash -c "[ $? = 1 ] && grep -q 'different content' '$T/last'"

# ---- unseal errors: clear, and no output file --------------------------------
rm -f out
arch ctl unseal --kek kek.json "${C1[@]}" "$B/wal/missing" out >"$T/last" 2>&1
check seal_s3_unseal_nosuchkey_clear_no_output bash -c "[ $? = 1 ] && grep -q 'NoSuchKey.*no such object' '$T/last' && grep -q 's3://wal-archive/wal/missing' '$T/last' && [ ! -e out ]"
arch ctl unseal --kek kek.json "${C1[@]}" s3://no-such-bucket/wal/x out >"$T/last" 2>&1
check seal_s3_unseal_nosuchbucket_clear_no_output bash -c "[ $? = 1 ] && grep -q 'NoSuchBucket' '$T/last' && [ ! -e out ]"
arch ctl unseal --kek kek.json "${C2[@]}" "$B/wal/small" out >"$T/last" 2>&1
check seal_s3_unseal_swapped_object_refused_no_output bash -c "[ $? = 6 ] && grep -q 'segment' '$T/last' && [ ! -e out ]"
as "$reader_ak" bad-secret ctl unseal --kek kek.json "${C1[@]}" "$B/wal/small" out >"$T/last" 2>&1
check seal_s3_unseal_bad_signature_denied_no_output bash -c "[ $? = 2 ] && grep -q 'SignatureDoesNotMatch\|AccessDenied' '$T/last' && [ ! -e out ]"
ctl unseal --kek kek.json "${C1[@]}" "$B/wal/small" out >"$T/last" 2>&1
check seal_s3_no_region_clear bash -c "[ $? = 1 ] && grep -q 'AWS_REGION' '$T/last' && [ ! -e out ]"

echo "1..$n"
[ "$failed" = 0 ]

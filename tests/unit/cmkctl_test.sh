#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# cmkctl end to end on files, TAP output.  Usage: cmkctl_test.sh CMKCTL
# Oracles: documented exit codes (0 ok, 1 error, 2 KMS refused, 3 KMS
# unreachable, 4 no valid header), and grep for key material in all output.
set -u
ctl=$(realpath "$1")
dir=$(mktemp -d "${TMPDIR:-/tmp}/cmkctl-test.XXXXXX")
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1
n=0
failed=0
out=$dir/all-output

ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; echo "# $2"; failed=1; }
# run EXPECTED_RC CMD...: run cmkctl, keep its output, compare exit status
run() {
	local want=$1 rc
	shift
	"$ctl" "$@" >last 2>&1
	rc=$?
	cat last >>"$out"
	[ "$rc" -eq "$want" ] || { echo "# cmkctl $*: exit $rc, want $want"; sed 's/^/#   /' last; return 1; }
}

echo "1..9"

if run 0 local-key create cmk.key &&
   [ "$(stat -c %a cmk.key)" = 600 ] &&
   run 0 kek create --provider local --key-ref "$dir/cmk.key" --out kek.json --context service=pg &&
   run 0 kek info kek.json && grep -q 'context        service=pg' last &&
   run 0 kek check kek.json; then
	ok cmkctl_kek_create_info_check
else
	notok cmkctl_kek_create_info_check "see above"
fi

if run 1 kek create --key-ref "$dir/cmk.key" --out kek.json && grep -q -- --force last; then
	ok cmkctl_kek_create_refuses_overwrite
else
	notok cmkctl_kek_create_refuses_overwrite "overwrote an existing envelope"
fi

keyhex=$(od -An -tx1 cmk.key | tr -d ' \n')
keyb64=$(base64 -w0 cmk.key)
truncate -s 4M dev.img
if run 4 header dump dev.img && grep -q 'not formatted' last; then
	ok cmkctl_header_dump_blank_exits_4
else
	notok cmkctl_header_dump_blank_exits_4 "see above"
fi

if run 0 format --kek kek.json --mode persistent --sector-size 512 dev.img &&
   run 0 header dump dev.img && grep -q 'mode           persistent' last &&
   grep -q 'sector_size    512' last && grep -q 'copy B         valid, sequence 1' last; then
	ok cmkctl_format_and_dump
else
	notok cmkctl_format_and_dump "see above"
fi

if run 1 format --kek kek.json --mode ephemeral dev.img && grep -q 'already has' last &&
   run 0 header dump dev.img && grep -q 'mode           persistent' last; then
	ok cmkctl_format_refuses_formatted_device
else
	notok cmkctl_format_refuses_formatted_device "see above"
fi

if run 0 local-key disable cmk.key && run 2 kek check kek.json && grep -q 'key disabled' last &&
   run 2 format --force --kek kek.json --mode ephemeral dev.img &&
   run 0 local-key enable cmk.key && run 0 kek check kek.json; then
	ok cmkctl_disabled_key_exits_2_and_restores
else
	notok cmkctl_disabled_key_exits_2_and_restores "see above"
fi

printf '\x01' | dd of=dev.img bs=1 seek=300 conv=notrunc status=none
if run 0 header dump dev.img && grep -q 'copy A         invalid: header copy A: checksum' last &&
   printf '\x01' | dd of=dev.img bs=1 seek=65836 conv=notrunc status=none &&
   run 4 header dump dev.img; then
	ok cmkctl_header_dump_reports_each_copy
else
	notok cmkctl_header_dump_reports_each_copy "see above"
fi

if run 0 local-key destroy cmk.key && run 2 kek check kek.json && grep -q 'key destroyed' last &&
   run 1 local-key enable cmk.key; then
	ok cmkctl_destroyed_key_is_final
else
	notok cmkctl_destroyed_key_is_final "see above"
fi

# key file bytes (hex and base64) and the wrapped KEK never appear in output
leak=0
wrapped=$(sed -n 's/.*"wrapped_kek": "\(.*\)".*/\1/p' kek.json)
for needle in "$wrapped" "$keyhex" "$keyb64" "${keyhex:0:16}"; do
	[ -n "$needle" ] && grep -qiF -- "$needle" "$out" && leak=1
done
if [ ${#wrapped} -eq 84 ] && [ ${#keyhex} -eq 64 ] && [ "$leak" = 0 ]; then
	ok cmkctl_never_prints_wrapped_keys
else
	notok cmkctl_never_prints_wrapped_keys "key material found in output (or fixture broken)"
fi

exit $failed

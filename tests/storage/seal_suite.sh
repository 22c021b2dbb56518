#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# seal_suite.sh - "cmkctl unseal --suite" pins the algorithm suite, TAP output.
#
# Oracle: what cmkctl wrote, compared byte for byte, and its exit status.
# Without --suite, unseal takes both 0x0478 and 0x0578 (plaintext equal to
# the input).  With --suite, an object of the other suite is refused with
# exit 6 and a message naming the Algorithm Suite ID, and nothing is
# written: no OUT file, not one byte on stdout.  An object of the pinned
# suite unseals.  "discard what was written" is printed only when plaintext
# was written (a body tampered past its first frames), not after a refusal.
set -u
# shellcheck source=tests/storage/lib.sh
. "$(dirname "$0")/lib.sh"

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; [ $# -lt 2 ] || echo "# $2"; failed=1; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else notok "$name"; fi; }

dir=$(mktemp -d "${TMPDIR:-/tmp}/seal-suite.XXXXXX")
trap 'rm -rf "$dir"' EXIT
chmod 700 "$dir"
cd "$dir" || exit 1

echo "1..11"
ctl() { "$CMKCTL" --config "$dir/none.conf" "$@"; }
C=(--context cluster=c1 --context segment=000000010000000000000001)
# more than one 64 KiB frame, so a late check would have written some
head -c 200000 /dev/urandom >in

ctl local-key create cmk.key >/dev/null &&
ctl kek create --provider local --key-ref "$dir/cmk.key" --out kek.json \
	--context service=pg >/dev/null &&
ctl seal --kek kek.json "${C[@]}" --suite 0x0478 in obj4 &&
ctl seal --kek kek.json "${C[@]}" --suite 0x0578 in obj5
check "seal_suite_setup" [ $? -eq 0 ]

# default: both suites are read
ctl unseal --kek kek.json "${C[@]}" obj4 out4 && cmp -s in out4 &&
ctl unseal --kek kek.json "${C[@]}" obj5 out5 && cmp -s in out5
check "seal_unseal_default_reads_both_suites" [ $? -eq 0 ]

# refused: exit 6, the field and both suites named, no OUT file
refused() {
	local pin=$1 obj=$2 got=$3 rc
	rm -f pinned
	ctl unseal --kek kek.json "${C[@]}" --suite "$pin" "$obj" pinned 2>err
	rc=$?
	if [ "$rc" -ne 6 ] || [ -e pinned ] ||
	   ! grep -q "Algorithm Suite ID" err || ! grep -q "$got" err ||
	   ! grep -q -- "--suite $pin" err; then
		echo "# exit $rc; OUT $( [ -e pinned ] && echo exists || echo absent)"
		head -n 5 err | sed 's/^/# /'
		return 1
	fi
}
check "seal_unseal_suite_0578_refuses_0478_object" refused 0x0578 obj4 0x0478
check "seal_unseal_suite_0478_refuses_0578_object" refused 0x0478 obj5 0x0578

# on stdout: refused before the first byte
rm -f err
ctl unseal --kek kek.json "${C[@]}" --suite 0x0578 obj4 >stdout 2>err
rc=$?
if [ "$rc" -eq 6 ] && [ -e stdout ] && [ ! -s stdout ]; then
	ok "seal_unseal_suite_refused_writes_nothing_to_stdout"
else
	notok "seal_unseal_suite_refused_writes_nothing_to_stdout" \
		"exit $rc, $(stat -c %s stdout) bytes on stdout: $(head -n 1 err)"
fi

# "discard what was written" only when something was: not after a
# refusal on the header (0 bytes), but after a body tampered past its
# first frames (the frames before it verified and were written)
if ! grep -q "discard what was written" err; then
	ok "seal_unseal_suite_refused_says_no_discard"
else
	notok "seal_unseal_suite_refused_says_no_discard" "$(grep discard err)"
fi
cp obj4 tampered
size=$(stat -c %s tampered)
printf '\377' | dd of=tampered bs=1 seek=$((size - 40)) conv=notrunc 2>/dev/null
ctl unseal --kek kek.json "${C[@]}" tampered >stdout 2>err
rc=$?
if [ "$rc" -eq 6 ] && [ -s stdout ] && grep -q "discard what was written to stdout" err; then
	ok "seal_unseal_tampered_after_output_says_discard"
else
	notok "seal_unseal_tampered_after_output_says_discard" \
		"exit $rc, $(stat -c %s stdout) bytes on stdout: $(tail -n 1 err)"
fi

# the pinned suite is read
rm -f p4 p5
ctl unseal --kek kek.json "${C[@]}" --suite 0x0478 obj4 p4 && cmp -s in p4
check "seal_unseal_suite_0478_reads_0478" [ $? -eq 0 ]
ctl unseal --kek kek.json "${C[@]}" --suite 0x0578 obj5 p5 && cmp -s in p5
check "seal_unseal_suite_0578_reads_0578" [ $? -eq 0 ]

# a suite dm-cmk does not write is a usage error, before any key is read
ctl unseal --kek kek.json "${C[@]}" --suite 0x0178 obj4 bad 2>err
rc=$?
if [ "$rc" -ne 0 ] && [ "$rc" -ne 6 ] && [ ! -e bad ] && grep -q "0x0478 or 0x0578" err; then
	ok "seal_unseal_suite_unknown_is_usage_error"
else
	notok "seal_unseal_suite_unknown_is_usage_error" "exit $rc: $(head -n 1 err)"
fi

# only the exact spellings: a value that truncates or wraps to 0x0478 in
# 16 bits, or lacks the 0x, is a usage error too (seal and unseal)
loose=""
for v in 0x10478 -0xfb88 478 " 0x0478" "0x0478 " 0x00478 0x0478x; do
	rm -f bad
	if ctl seal --kek kek.json "${C[@]}" --suite "$v" in bad 2>err ||
	   [ -s bad ] || ! grep -q "0x0478 or 0x0578" err; then
		loose="$loose seal'$v'"
	fi
	if ctl unseal --kek kek.json "${C[@]}" --suite "$v" obj4 bad 2>err ||
	   [ -e bad ] || ! grep -q "0x0478 or 0x0578" err; then
		loose="$loose unseal'$v'"
	fi
done
# the exact spellings, either case of the hex prefix, still work
rm -f p4x
ctl unseal --kek kek.json "${C[@]}" --suite 0X0478 obj4 p4x && cmp -s in p4x || loose="$loose 0X0478-refused"
if [ -z "$loose" ]; then
	ok "seal_unseal_suite_strict_parsing"
else
	notok "seal_unseal_suite_strict_parsing" "accepted:$loose"
fi

exit $failed

#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# esdk_interop.sh - cmkctl seal/unseal against the AWS Encryption SDK for
# JavaScript (@aws-crypto/client-node, RawAesKeyringNode), TAP output.
#
# Oracle: an independent implementation.  The peer (esdk_peer.js) derives
# the storage wrapping key itself from the local provider's key file and
# the KEK envelope (the break-glass recipe of Documentation/storage.rst),
# decrypts what cmkctl seal wrote and writes what cmkctl unseal must read:
# both suites, frame lengths 1, 4096 and 65536 (our default), empty input
# and sizes at and around frame boundaries, compared byte for byte.
# Tampered messages (header, body, final frame, footer, truncation,
# trailing bytes) and a swapped object (another segment name) are refused
# with exit 6, an error naming the field or key, and no output file.
# Memory: a 256 MiB object through a pipe (seal | unseal) comes back
# intact while each process stays under 32 MiB resident (one 64 KiB frame;
# about 12 MiB is the program itself).
# No key in any output: the KEK and the wrapping key (as the peer derives
# them), raw, hex or base64, appear in no file cmkctl wrote (sealed and
# unsealed objects) and in nothing it printed.
# Over 4 GiB: 4 GiB + 1 MiB + 3 bytes of a pattern through cmkctl seal |
# peer (the SDK's streaming API) and peer | cmkctl unseal, compared by
# SHA-256 with the input (a few minutes; ESDK_BIG=0 skips it).
set -u
# shellcheck source=tests/storage/lib.sh
. "$(dirname "$0")/lib.sh"

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; [ $# -lt 2 ] || echo "# $2"; failed=1; }

dir=$(mktemp -d "${TMPDIR:-/tmp}/esdk-interop.XXXXXX")
trap 'rm -rf "$dir"' EXIT
chmod 700 "$dir"
cd "$dir" || exit 1

echo "1..28"
if [ ! -x "$CMKCTL" ] || ! esdk_peer_setup; then
	for i in $(seq 28); do notok "esdk_interop_setup_$i" "no cmkctl ($CMKCTL) or no npm peer"; done
	exit 1
fi
# every word cmkctl says is kept, to look for keys in it
ctl() {
	local rc e
	e=$(mktemp "$dir/said.XXXXXX")
	"$CMKCTL" --config "$dir/none.conf" "$@" 2>"$e"
	rc=$?
	cat "$e" >>"$dir/said"
	cat "$e" >&2
	rm -f "$e"
	return $rc
}
peer() { $ESDK_PEER "$1" --key-file "$dir/cmk.key" --envelope "$dir/kek.json" "${@:2}"; }
CTX=(--context cluster=c0ffee --context segment=000000010000000000000042)

if ctl local-key create cmk.key >/dev/null &&
   ctl kek create --provider local --key-ref "$dir/cmk.key" --out kek.json \
	--context service=pg >/dev/null; then
	ok esdk_setup_kek_envelope
else
	notok esdk_setup_kek_envelope "cmkctl kek create failed"
fi

# sizes FRAME: empty, one byte, and around one and two frames
sizes() {
	local f=$1
	echo 0 1 $((f - 1)) "$f" $((f + 1)) $((2 * f)) $((2 * f + 3)) | tr ' ' '\n' | sort -un
}
mkinput() { head -c "$1" /dev/urandom >"in.$1"; }

for suite in 0478 0578; do
	for frame in 1 4096 65536; do
		why=
		pairs=()
		for s in $(sizes $frame); do
			mkinput "$s"
			ctl seal --suite "0x$suite" --frame-length "$frame" --kek kek.json \
				"${CTX[@]}" "in.$s" "c.$s" 2>err ||
				{ why="seal of $s bytes: $(cat err)"; break; }
			pairs+=("c.$s" "p.$s")
		done
		[ -n "$why" ] || peer decrypt "${CTX[@]}" "${pairs[@]}" 2>err ||
			why="peer decrypt: $(cat err)"
		for s in $(sizes $frame); do
			[ -n "$why" ] || cmp -s "in.$s" "p.$s" ||
				why="peer decrypted $s bytes differently"
		done
		if [ -z "$why" ]; then
			ok "esdk_js_decrypts_cmkctl_seal_${suite}_frame$frame"
		else
			notok "esdk_js_decrypts_cmkctl_seal_${suite}_frame$frame" "$why"
		fi
		why=
		pairs=()
		for s in $(sizes $frame); do
			pairs+=("in.$s" "j.$s")
		done
		peer encrypt --suite "$suite" --frame-length "$frame" "${CTX[@]}" "${pairs[@]}" 2>err ||
			why="peer encrypt: $(cat err)"
		for s in $(sizes $frame); do
			[ -z "$why" ] || break
			ctl unseal --kek kek.json "${CTX[@]}" "j.$s" "u.$s" 2>err ||
				{ why="unseal of $s bytes: $(cat err)"; break; }
			cmp -s "in.$s" "u.$s" || why="unsealed $s bytes differently"
		done
		if [ -z "$why" ]; then
			ok "esdk_cmkctl_unseal_reads_js_${suite}_frame$frame"
		else
			notok "esdk_cmkctl_unseal_reads_js_${suite}_frame$frame" "$why"
		fi
		rm -f in.* c.* p.* j.* u.*
	done
done

# an empty encryption context (no AAD pairs; the EDK's AAD is empty), both suites, both ways
why=
head -c 5000 /dev/urandom >in.e
for suite in 0478 0578; do
	ctl seal --suite "0x$suite" --kek kek.json in.e c.e 2>err &&
		peer decrypt c.e p.e 2>>err && cmp -s in.e p.e &&
		peer encrypt --suite $suite in.e j.e 2>>err &&
		ctl unseal --kek kek.json j.e u.e 2>>err && cmp -s in.e u.e ||
		{ why="suite $suite: $(cat err)"; break; }
	rm -f c.e p.e j.e u.e
done
if [ -z "$why" ]; then
	ok esdk_empty_context_both_ways
else
	notok esdk_empty_context_both_ways "$why"
fi

# killed mid-stream (SIGTERM, no chance to clean up), unseal leaves no file
# with plaintext behind: neither OUT nor OUT.tmp.* (an unnamed O_TMPFILE
# file until it is complete and verified)
why=
head -c 4194304 /dev/urandom >in.k
ctl seal --frame-length 4096 --kek kek.json "${CTX[@]}" in.k c.k 2>err || why="seal: $(cat err)"
mkfifo fifo.k
"$CMKCTL" --config "$dir/none.conf" unseal --kek kek.json "${CTX[@]}" fifo.k out.k 2>/dev/null &
upid=$!
exec 7>fifo.k
head -c 1048576 c.k >&7
sleep 2
kill -TERM "$upid"
wait "$upid" 2>/dev/null
exec 7>&-
left=$(find . -maxdepth 1 -name 'out.k*' | tr '\n' ' ')
[ -z "$left" ] || why="left behind: $left"
if [ -z "$why" ]; then
	ok esdk_unseal_killed_mid_stream_leaves_no_plaintext
else
	notok esdk_unseal_killed_mid_stream_leaves_no_plaintext "$why"
fi
rm -f in.k c.k fifo.k out.k*

# mixed-case context keys: the ESDK serialises the context sorted by UTF-8
# bytes ("Segment" < "cluster"); the JavaScript keyring agrees only with
# utf8Sorting: true (the break-glass recipe says so), both suites, both ways
why=
MIXED=(--context Segment=000000010000000000000042 --context cluster=c0ffee --context Zone=a)
for suite in 0478 0578; do
	ctl seal --suite "0x$suite" --kek kek.json "${MIXED[@]}" in.e c.e 2>err &&
		peer decrypt "${MIXED[@]}" c.e p.e 2>>err && cmp -s in.e p.e &&
		peer encrypt --suite $suite "${MIXED[@]}" in.e j.e 2>>err &&
		ctl unseal --kek kek.json "${MIXED[@]}" j.e u.e 2>>err && cmp -s in.e u.e ||
		{ why="suite $suite: $(cat err)"; break; }
	rm -f c.e p.e j.e u.e
done
if [ -z "$why" ]; then
	ok esdk_mixed_case_context_both_ways
else
	notok esdk_mixed_case_context_both_ways "$why"
fi

# refused NAME FILE WANT...: unseal FILE must exit 6, say every WANT, leave no output
refused() {
	local name=$1 f=$2 rc
	shift 2
	rm -f out
	ctl unseal --kek kek.json "${CTX[@]}" "$f" out 2>err
	rc=$?
	if [ "$rc" -ne 6 ]; then
		notok "$name" "exit $rc, want 6: $(cat err)"
		return
	fi
	for w in "$@"; do
		grep -qF -- "$w" err || { notok "$name" "no \"$w\" in: $(cat err)"; return; }
	done
	if ls out out.tmp.* >/dev/null 2>&1; then
		notok "$name" "an output file was left: $(ls out*)"
		return
	fi
	ok "$name"
}
# flip FILE OFFSET: a copy with the byte at OFFSET (negative: from the end) inverted
flip() {
	local size off
	size=$(stat -c %s "$1")
	off=$2
	[ "$off" -ge 0 ] || off=$((size + off))
	cp "$1" "$1.t"
	python3 -c 'import sys; p, o = sys.argv[1], int(sys.argv[2]); b = bytearray(open(p, "rb").read()); b[o] ^= 0xff; open(p, "wb").write(b)' "$1.t" "$off"
	echo "$1.t"
}

head -c 10000 /dev/urandom >in
peer encrypt --suite 0478 --frame-length 4096 "${CTX[@]}" in j478 2>/dev/null
peer encrypt --suite 0578 --frame-length 4096 "${CTX[@]}" in j578 2>/dev/null
# 0x0478 header: Version 0, Suite 1-2, Message ID 3-34, then the AAD
refused esdk_unseal_refuses_tampered_message_id "$(flip j478 10)" \
	"header field Algorithm Suite Data" "commit key does not match"
refused esdk_unseal_refuses_tampered_suite_id "$(flip j478 2)" \
	"header field Algorithm Suite ID at offset 1"
refused esdk_unseal_refuses_tampered_body_frame2 "$(flip j478 -3000)" \
	"does not authenticate"
refused esdk_unseal_refuses_tampered_final_frame_tag "$(flip j478 -1)" \
	"final frame" "does not authenticate"
refused esdk_unseal_refuses_tampered_footer_signature "$(flip j578 -1)" \
	"footer field Signature" "does not verify"
head -c -1 j578 >j578.cut
refused esdk_unseal_refuses_truncated_footer j578.cut "truncated"
{ cat j478; printf x; } >j478.long
refused esdk_unseal_refuses_trailing_bytes j478.long "trailing bytes"
peer encrypt --suite 0478 --context cluster=c0ffee --context segment=000000010000000000000043 in other 2>/dev/null
refused esdk_unseal_refuses_swapped_segment other \
	'encryption context key "segment" is "000000010000000000000043", expected "000000010000000000000042"'

# 256 MiB of a known pattern through seal | unseal, each process's peak RSS
if command -v /usr/bin/time >/dev/null; then
	big=$((256 << 20))
	yes dm-cmk-sealed-segment | head -c $big |
		/usr/bin/time -f %M -o rss.seal "$CMKCTL" --config none seal --kek kek.json "${CTX[@]}" |
		/usr/bin/time -f %M -o rss.unseal "$CMKCTL" --config none unseal --kek kek.json "${CTX[@]}" |
		sha256sum >sum.out
	yes dm-cmk-sealed-segment | head -c $big | sha256sum >sum.in
	rs=$(cat rss.seal 2>/dev/null) ru=$(cat rss.unseal 2>/dev/null)
	if cmp -s sum.in sum.out && [ "${rs:-99999}" -lt 32768 ] && [ "${ru:-99999}" -lt 32768 ]; then
		ok "esdk_seal_unseal_256MiB_pipe_constant_memory # seal ${rs} KiB, unseal ${ru} KiB"
	else
		notok esdk_seal_unseal_256MiB_pipe_constant_memory \
			"content $(cmp -s sum.in sum.out && echo equal || echo differs), RSS seal ${rs:-?} KiB, unseal ${ru:-?} KiB (bound 32768)"
	fi
else
	notok esdk_seal_unseal_256MiB_pipe_constant_memory "/usr/bin/time (package time) missing"
fi

# no key, raw, hex or base64, in what cmkctl wrote or said
ESDK_PEER_KEYS=$dir/keys peer decrypt "${CTX[@]}" j478 keyprobe 2>/dev/null
mkdir -p "$dir/sample"
head -c 70000 /dev/urandom >sample/in
ctl seal --kek kek.json "${CTX[@]}" sample/in sample/sealed 2>/dev/null
ctl seal --suite 0x0578 --kek kek.json "${CTX[@]}" sample/in sample/sealed2 2>/dev/null
ctl unseal --kek kek.json "${CTX[@]}" sample/sealed sample/out 2>/dev/null
ctl unseal --kek kek.json "${CTX[@]}" j478 sample/out2 2>/dev/null
cp said sample/said
if [ -s keys ] && python3 - keys sample/* <<'PY'
import base64, sys
keys = [bytes.fromhex(line) for line in open(sys.argv[1]).read().split()]
forms = []
for k in keys:
    forms += [k, k.hex().encode(), k.hex().upper().encode(), base64.b64encode(k)]
bad = [p for p in sys.argv[2:] if any(f in open(p, "rb").read() for f in forms)]
print("# key found in: " + " ".join(bad)) if bad else None
sys.exit(1 if bad or len(keys) != 2 else 0)
PY
then
	ok esdk_no_key_in_any_output_of_seal_or_unseal
else
	notok esdk_no_key_in_any_output_of_seal_or_unseal "a key in an output, or no keys to look for"
fi

# over 4 GiB, both directions, streaming on both sides
huge=$(((4 << 30) + (1 << 20) + 3))
pattern() { yes dm-cmk-wal-segment-over-4GiB | head -c $huge; }
if [ "${ESDK_BIG:-1}" = 0 ]; then
	ok "esdk_js_decrypts_cmkctl_seal_over_4GiB # SKIP ESDK_BIG=0"
	ok "esdk_cmkctl_unseal_reads_js_over_4GiB # SKIP ESDK_BIG=0"
else
	want=$(pattern | sha256sum)
	got=$(pattern | "$CMKCTL" --config none seal --kek kek.json "${CTX[@]}" |
		peer stream-decrypt "${CTX[@]}" 2>err | sha256sum)
	if [ "$got" = "$want" ]; then
		ok esdk_js_decrypts_cmkctl_seal_over_4GiB
	else
		notok esdk_js_decrypts_cmkctl_seal_over_4GiB "digest differs: $(head -c 300 err)"
	fi
	got=$(pattern | peer stream-encrypt --frame-length 65536 "${CTX[@]}" |
		"$CMKCTL" --config none unseal --kek kek.json "${CTX[@]}" 2>err | sha256sum)
	if [ "$got" = "$want" ]; then
		ok esdk_cmkctl_unseal_reads_js_over_4GiB
	else
		notok esdk_cmkctl_unseal_reads_js_over_4GiB "digest differs: $(head -c 300 err)"
	fi
fi

[ "$n" -eq 28 ] || echo "# planned 28, ran $n"
exit $failed

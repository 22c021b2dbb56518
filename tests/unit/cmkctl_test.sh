#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# cmkctl end to end on files, TAP output.  Usage: cmkctl_test.sh CMKCTL
# Oracles: documented exit codes (0 ok, 1 error, 2 KMS refused, 3 KMS
# unreachable, 4 no valid header, 5 kernel refused), the headers and
# envelope as "header dump" / "kek info" show them after rotations, and
# grep for key material in all output.  The verbs that need the dm-cmk
# module run in the QEMU guest (tests/integration/agent_lifecycle); here
# only their refusals.
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

echo "1..27"

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

# format prints the uuid line for agent.conf: the header's device_uuid
if run 0 format --kek kek.json --mode persistent --sector-size 512 dev.img &&
   line=$(grep '^uuid = ' last) &&
   run 0 header dump dev.img && grep -q 'mode           persistent' last &&
   grep -q 'sector_size    512' last && grep -q 'copy B         valid, sequence 1' last &&
   grep -q "^device_uuid    ${line#uuid = }\$" last && grep -q '^flags          0x0$' last &&
   grep -q "^boot_id        $(cat /proc/sys/kernel/random/boot_id)\$" last; then
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

# A first format cut inside the first header copy it wrote (tear_first_copy
# IMG: only the first 512-byte sector of copy A of a real first format, the
# rest of the first 1 MiB zero).  Oracle: format goes ahead without
# --force, says so on stderr, and leaves a valid header; with one byte of
# copy B not zero the same state is refused as a damaged header.
tear_first_copy() {
	dd if="$1" of=torn.sec bs=512 count=1 status=none &&
	dd if=/dev/zero of="$1" bs=1M count=1 conv=notrunc status=none &&
	dd if=torn.sec of="$1" conv=notrunc status=none
}
truncate -s 4M torn.img
if run 0 format --kek kek.json --mode persistent torn.img && ! grep -q continuing last &&
   tear_first_copy torn.img && run 4 header dump torn.img &&
   run 0 format --kek kek.json --mode persistent torn.img &&
   grep -q 'torn.img: continuing an interrupted first format' last &&
   run 0 header dump torn.img && grep -q 'copy B         valid, sequence 1' last; then
	ok cmkctl_format_crash_continues_interrupted_first_format
else
	notok cmkctl_format_crash_continues_interrupted_first_format "see above"
fi

if tear_first_copy torn.img &&
   printf '\x01' | dd of=torn.img bs=1 seek=65636 conv=notrunc status=none &&
   run 1 format --kek kek.json --mode persistent torn.img &&
   grep -q 'torn.img: already has a damaged dm-cmk header' last &&
   ! grep -q continuing last; then
	ok cmkctl_format_crash_refuses_torn_copy_next_to_nonzero_copy
else
	notok cmkctl_format_crash_refuses_torn_copy_next_to_nonzero_copy "see above"
fi

# A file system and no dm-cmk header (M1): format without --force must not
# destroy it.  Oracle: exit 1, the message says the first 1 MiB is not zero
# and names --force, the ext4 superblock is unchanged; --force formats.
mkfs_ext4=$(PATH=$PATH:/sbin:/usr/sbin command -v mkfs.ext4 || true)
if [ -z "$mkfs_ext4" ]; then
	ok "cmkctl_format_refuses_file_system_without_force # SKIP no mkfs.ext4"
elif rm -f fs.img && truncate -s 64M fs.img && "$mkfs_ext4" -q -F fs.img >/dev/null 2>&1 &&
   dd if=fs.img of=fs.before bs=4096 count=1 status=none &&
   run 1 format --kek kek.json --mode persistent fs.img &&
   grep -q 'fs.img: no dm-cmk header, but the first 1 MiB is not zero' last &&
   grep -q -- '--force' last && ! grep -q continuing last &&
   dd if=fs.img of=fs.after bs=4096 count=1 status=none && cmp -s fs.before fs.after &&
   run 0 format --force --kek kek.json --mode persistent fs.img; then
	ok cmkctl_format_refuses_file_system_without_force
else
	notok cmkctl_format_refuses_file_system_without_force "see above"
fi

# L5: the "continuing" line only once the format has succeeded (here the
# envelope cannot be read: nothing was formatted), and a device too small
# for the header area is named in the error.
if tear_first_copy torn.img && run 1 format --kek nosuch.json --mode persistent torn.img &&
   ! grep -q continuing last && run 4 header dump torn.img &&
   truncate -s 512K small.img && run 1 format --kek kek.json --mode persistent small.img &&
   grep -q 'small.img: .*too small' last; then
	ok cmkctl_format_crash_continuing_only_after_success
else
	notok cmkctl_format_crash_continuing_only_after_success "see above"
fi

# ---- verbs that use the agent configuration ----
truncate -s 4M d1.img d2.img
run 0 format --kek kek.json --mode persistent d1.img >/dev/null
run 0 format --kek kek.json --mode ephemeral d2.img >/dev/null
cat >agent.conf <<EOF
[agent]
kek_envelope = $dir/kek.json
check_interval_ms = 250
lease_ms = 5000
audit_log = $dir/audit.log
syslog = no
state_dir = $dir/run

[device "d1"]
backing = $dir/d1.img
mode = persistent

[device "d2"]
backing = $dir/d2.img
mode = ephemeral
EOF

if run 0 --config agent.conf kek rotate && grep -q 'rotation finished, KEK version 2 (version 1 retired' last &&
   run 0 header dump d1.img && grep -q 'kek_version    2' last &&
   grep -q 'sequence       2' last &&
   run 0 header dump d2.img && grep -q 'kek_version    2' last &&
   run 0 kek info kek.json && grep -q 'kek_version    2' last &&
   ! grep -q previous last && grep -A1 -q 'retired (unwrap only' last &&
   grep -A1 'retired (unwrap only' last | grep -q 'kek_version  1' &&
   grep -q '"event":"rotation"' audit.log; then
	ok cmkctl_kek_rotate_rewraps_every_header
else
	notok cmkctl_kek_rotate_rewraps_every_header "see above"
fi

cp agent.conf agent3.conf
printf '\n[device "d3"]\nbacking = %s/d3.img\nmode = persistent\n' "$dir" >>agent3.conf
if run 1 --config agent3.conf kek rotate && grep -q 'd3 (.*): cannot open' last &&
   grep -q 'keeps KEK version 2' last &&
   run 0 kek info kek.json && grep -q 'previous (rotation in progress)' last &&
   run 0 header dump d1.img && grep -q 'kek_version    3' last &&
   truncate -s 4M d3.img && run 0 format --kek kek.json --mode persistent d3.img &&
   run 0 --config agent3.conf kek rotate && grep -q 'resuming' last &&
   grep -q 'd1: already under KEK version 3' last &&
   run 0 kek info kek.json && ! grep -q previous last; then
	ok cmkctl_kek_rotate_keeps_previous_until_all_done
else
	notok cmkctl_kek_rotate_keeps_previous_until_all_done "see above"
fi

# pin: a persistent device to its header's device_uuid, not to one another
# device presents; not an ephemeral device; not one agent.conf pins
u1=$(awk '$1 == "device_uuid" { print $2 }' <("$ctl" header dump d1.img))
u2=$(awk '$1 == "device_uuid" { print $2 }' <("$ctl" header dump d2.img))
cp agent.conf agentpin.conf
printf 'pin_dir = %s/pins\n' "$dir" >pinline
sed -i "/^state_dir/r pinline" agentpin.conf
if run 0 --config agentpin.conf pin d1 && grep -q "^d1: pinned to device_uuid $u1\$" last &&
   grep -q "\"device_uuid\": \"$u1\"" pins/d1 && [ "$(stat -c %a pins/d1)" = 600 ] &&
   run 6 --config agentpin.conf pin d1 --uuid "$u2" && grep -q 'device d2' last &&
   run 1 --config agentpin.conf pin d2 && grep -q 'ephemeral' last &&
   grep -q '"event":"pin"' audit.log &&
   sed "/^mode = persistent/a uuid = $u1" agentpin.conf >agentuuid.conf &&
   run 1 --config agentuuid.conf pin d1 && grep -q 'uuid setting' last; then
	ok cmkctl_pin_binds_persistent_device
else
	notok cmkctl_pin_binds_persistent_device "see above"
fi

# L1: a used persistent disk whose copy B and the end of copy A were
# zeroed (bytes 3584..69631) looks like an interrupted first format; the
# device's pin tells them apart.  Oracle: with its device_uuid pinned (by
# a pin file, also after its section was renamed or made ephemeral, or by
# the uuid setting) format without --force is refused, naming the device
# and the pin, and the first 1 MiB is unchanged; with a configuration
# that pins nothing to it, it goes ahead.
truncate -s 4M used.img
sed -n '/^\[agent\]/,/^state_dir/p' agent.conf >agentl1.conf
printf 'pin_dir = %s/pinsl1\n\n[device "u"]\nbacking = %s/used.img\nmode = persistent\n' \
	"$dir" "$dir" >>agentl1.conf
if run 0 format --kek kek.json --mode persistent used.img &&
   uu=$(awk '$1 == "device_uuid" { print $2 }' <("$ctl" header dump used.img)) &&
   run 0 --config agentl1.conf pin u &&
   dd if=/dev/zero of=used.img bs=512 seek=7 count=129 conv=notrunc status=none &&
   dd if=used.img of=used.before bs=1M count=1 status=none &&
   run 1 --config agentl1.conf format --kek kek.json --mode persistent used.img &&
   grep -q "used.img: has a damaged dm-cmk header of device_uuid $uu, which is device u's (pin file" last &&
   ! grep -q continuing last &&
   sed "s|^pin_dir = .*|pin_dir = $dir/pinsnone|; /^mode = persistent/a uuid = $uu" \
	agentl1.conf >agentl1u.conf &&
   run 1 --config agentl1u.conf format --kek kek.json --mode persistent used.img &&
   grep -q "which is device u's (uuid in its \[device\] section)" last &&
   sed 's/^\[device "u"\]/[device "u2"]/' agentl1.conf >agentl1r.conf &&
   run 1 --config agentl1r.conf format --kek kek.json --mode persistent used.img &&
   grep -q "which is device u's (pin file $dir/pinsl1/u)" last &&
   sed 's/^mode = persistent/mode = ephemeral/' agentl1.conf >agentl1e.conf &&
   run 1 --config agentl1e.conf format --kek kek.json --mode persistent used.img &&
   grep -q "which is device u's (pin file" last &&
   dd if=used.img of=used.after bs=1M count=1 status=none && cmp -s used.before used.after &&
   run 0 --config agent.conf format --kek kek.json --mode persistent used.img &&
   grep -q 'used.img: continuing an interrupted first format' last; then
	ok cmkctl_format_refuses_torn_header_of_pinned_device
else
	notok cmkctl_format_refuses_torn_header_of_pinned_device "see above"
fi

truncate -s 4M iv.img
if run 0 format --kek kek.json --mode persistent --iv-large-sectors iv.img &&
   grep -q 'iv_large_sectors' last &&
   run 0 header dump iv.img && grep -q '^flags          0x1 (iv_large_sectors)$' last; then
	ok cmkctl_format_records_iv_large_sectors
else
	notok cmkctl_format_records_iv_large_sectors "see above"
fi

if run 0 local-key create cmk2.key &&
   run 0 --config agent.conf kek rewrap --key-ref "$dir/cmk2.key" &&
   run 0 kek info kek.json && grep -q "key_ref        $dir/cmk2.key" last &&
   run 0 local-key disable cmk.key && run 0 kek check kek.json &&
   run 0 local-key enable cmk.key &&
   run 0 header dump d1.img && grep -q 'kek_version    3' last &&
   run 0 --config agent.conf kek rewrap --key-ref "$dir/cmk.key" &&
   run 0 local-key disable cmk2.key && run 0 kek check kek.json; then
	ok cmkctl_kek_rewrap_moves_kek_to_new_cmk
else
	notok cmkctl_kek_rewrap_moves_kek_to_new_cmk "see above"
fi

if run 1 --config agent.conf open nosuch && grep -q 'no device "nosuch" in agent.conf' last &&
   run 1 --config agent.conf close nosuch && run 1 --config agent.conf revoke --device nosuch &&
   run 1 --config missing.conf status && grep -q 'missing.conf' last; then
	ok cmkctl_unknown_device_or_config_exits_1
else
	notok cmkctl_unknown_device_or_config_exits_1 "see above"
fi

if run 0 --config agent.conf status && grep -q '^kernel: ' last &&
   grep -q 'agent: no state' last &&
   run 0 --config agent.conf status --json &&
   python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["agent"] is None and isinstance(d["kernel"], list)' last; then
	ok cmkctl_status_without_kernel_or_agent
else
	notok cmkctl_status_without_kernel_or_agent "see above"
fi

mkdir -p run
cat >run/agent.json <<EOF
{ "state": "revoked", "pid": 42, "updated": "2026-11-27T21:00:00Z",
  "kek": { "id": "k-id", "version": 3, "provider": "local", "key_ref": "/k" },
  "last_check": { "time": "2026-11-27T21:00:00Z", "result": "failure",
                  "message": "key disabled", "latency_ms": 2, "checks": 7 } }
EOF
if run 0 --config agent.conf status && grep -q 'agent: revoked (pid 42' last &&
   grep -q 'KEK k-id version 3' last && grep -q 'failure: key disabled' last; then
	ok cmkctl_status_shows_agent_state_file
else
	notok cmkctl_status_shows_agent_state_file "see above"
fi

# ---- check-now: the signal goes to cmk-agent only ----
# agent_state PID: a state file naming PID
agent_state() {
	printf '{ "state": "active", "pid": %s, "hints": { "answered_tokens": [] } }\n' "$1" >run/agent.json
}
# A process that is not cmk-agent (a pid reused since the agent wrote its
# state): refused, and it must not get the SIGHUP (sleep would die of it).
sleep 30 &
other=$!
agent_state "$other"
if run 1 --config agent.conf check-now --wait 1 && grep -q 'is not cmk-agent' last &&
   kill -0 "$other" 2>/dev/null; then
	ok cmkctl_check_now_refuses_a_process_that_is_not_the_agent
else
	notok cmkctl_check_now_refuses_a_process_that_is_not_the_agent "see above"
fi
kill "$other" 2>/dev/null
wait "$other" 2>/dev/null
# The agent gone (its pid not running): exit 1, says so.
agent_state "$other"
if run 1 --config agent.conf check-now && grep -q 'not running' last; then
	ok cmkctl_check_now_agent_not_running
else
	notok cmkctl_check_now_agent_not_running "see above"
fi
# A process named cmk-agent that never answers (sleep under that name):
# it gets SIGHUP (and dies of it: the oracle that the signal was sent to
# it), and check-now reports no answer within --wait: exit 3.
cp "$(command -v sleep)" cmk-agent
exec 3>&2 2>/dev/null	# no "Hangup" job notice in the TAP output
# SIGHUP back to its default: a caller under nohup (or any runner that
# ignores it) would hand the fake agent an ignored SIGHUP.
env --default-signal=HUP ./cmk-agent 30 &
fake=$!
agent_state "$fake"
run 3 --config agent.conf check-now --wait 1
rc=$?
wait "$fake"
st=$?
exec 2>&3 3>&-
if [ "$rc" = 0 ] && grep -q 'no answer' last && [ "$st" = $((128 + 1)) ]; then
	ok cmkctl_check_now_signals_the_agent_and_waits
else
	notok cmkctl_check_now_signals_the_agent_and_waits "exit status of the fake agent: $st (want 129: SIGHUP)"
fi
# Review 16c L1: an agent whose hint budget holds the check (throttled
# run) says so in its state file; check-now names that cause, not the
# boot or a Retry-After.  The fake agent ignores SIGHUP and never answers.
env --ignore-signal=HUP ./cmk-agent 30 &
fake=$!
printf '{ "state": "degraded", "pid": %s, "hints": { "answered_tokens": [], "pending_tokens": [],
  "waiting_for": "budget", "check_in_ms": 41500 } }\n' "$fake" >run/agent.json
run 3 --config agent.conf check-now --wait 1
rc=$?
kill "$fake" 2>/dev/null
wait "$fake" 2>/dev/null
if [ "$rc" = 0 ] && grep -q 'hint budget is spent' last && grep -q 'about 42 s' last &&
   ! grep -q 'unsealing at boot' last; then
	ok cmkctl_check_now_hint_budget_named
else
	notok cmkctl_check_now_hint_budget_named "see above"
fi

if run 0 local-key destroy cmk.key && run 2 kek check kek.json && grep -q 'key destroyed' last &&
   run 1 local-key enable cmk.key; then
	ok cmkctl_destroyed_key_is_final
else
	notok cmkctl_destroyed_key_is_final "see above"
fi

# A KMS that answers 503 with Retry-After: 86400 (a day): cmkctl has no
# deadline, yet it does not sleep a day; it exits 3 (KMS unreachable) at
# once and says when to retry.  Oracle: exit status, the message, and a
# timeout of 60 s (the in-call wait is capped at 30 s, http.h).
cat >throttle.py <<'PY'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(503)
        self.send_header("Retry-After", "86400")
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
PY
python3 throttle.py >thr.port &
thr_pid=$!
thr_port=
for _ in $(seq 100); do
	thr_port=$(head -1 thr.port)
	[ -n "$thr_port" ] && break
	sleep 0.1
done
t0=$(date +%s)
if [ -n "$thr_port" ] &&
   AWS_ACCESS_KEY_ID=AKIDEXAMPLE AWS_SECRET_ACCESS_KEY=secret AWS_REGION=us-east-1 \
   AWS_ENDPOINT_URL_KMS=http://127.0.0.1:$thr_port timeout 60 "$ctl" kek create --provider aws \
	--key-id arn:aws:kms:us-east-1:111122223333:key/throttled --out thr.json >last 2>&1
then rc=0; else rc=$?; fi
cat last >>"$out"
echo "# cmkctl against 503 Retry-After: 86400: exit $rc after $(($(date +%s) - t0)) s"
kill "$thr_pid" 2>/dev/null
wait "$thr_pid" 2>/dev/null
if [ "$rc" -eq 3 ] && grep -q 'throttled, retry after 86400 s' last; then
	ok cmkctl_throttle_huge_retry_after_exits_with_retry_hint
else
	sed 's/^/#   /' last
	notok cmkctl_throttle_huge_retry_after_exits_with_retry_hint "exit $rc, want 3 and 'throttled, retry after 86400 s'"
fi

# key file bytes (hex and base64) and the wrapped KEK never appear in output
leak=0
# (every version: the current one and the retired ones)
wrapped=$(sed -n 's/.*"wrapped_kek": "\(.*\)".*/\1/p' kek.json | head -1)
for needle in $(sed -n 's/.*"wrapped_kek": "\(.*\)".*/\1/p' kek.json) \
	"$keyhex" "$keyb64" "${keyhex:0:16}"; do
	[ -n "$needle" ] && grep -qiF -- "$needle" "$out" && leak=1
done
if [ ${#wrapped} -eq 84 ] && [ ${#keyhex} -eq 64 ] && [ "$leak" = 0 ]; then
	ok cmkctl_never_prints_wrapped_keys
else
	notok cmkctl_never_prints_wrapped_keys "key material found in output (or fixture broken)"
fi

exit $failed

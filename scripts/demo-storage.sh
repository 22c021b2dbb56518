#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make demo-storage`: the storage story on the host, narrated, in under a
# minute.  No QEMU, no network (Unix sockets only; npm only if its cache
# is missing).
#
# Usage: scripts/demo-storage.sh     (as root: servers run as postgres)
#
# Local KMS: a CMK, a KEK sealed under it -> cmk-agent --no-kernel holding
# the KEK, serving its key socket to the postgres user -> a private
# PostgreSQL 15 cluster archiving every WAL segment sealed (ESDK, context
# cluster id + segment name) -> pgbench -> no plaintext in the archive ->
# sealed base backup -> point-in-time recovery into a fresh data
# directory, checksum equal -> a renamed segment refused -> CMK revoked:
# archive_command fails with the reason, segments wait in pg_wal -> CMK
# back: archiving catches up, no gap -> break-glass: the JavaScript ESDK
# decrypts a segment with the derived wrapping key.
# Every claim is checked; the last line says PASS or FAIL, and the exit
# status is non-zero on any failure.  Every server is stopped and every
# temporary directory removed on exit (PG_KEEP=1 keeps them, with logs).
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
case ${1:-} in
-h|--help) sed -n '3,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
"") ;;
*) echo "demo-storage: unknown argument $1" >&2; exit 2 ;;
esac

export PG_KEY_SOURCE=socket
# shellcheck source=tests/storage/pg_lib.sh
. "$top/tests/storage/pg_lib.sh"

t0=$(date +%s%N)
elapsed() { echo "$((($(date +%s%N) - t0) / 1000000))"; }
secs() { printf '%d.%01d' $(($1 / 1000)) $(($1 % 1000 / 100)); }
checks=0
fail() {
	echo
	echo "dm-cmk storage demo: FAIL - $* ($(secs "$(elapsed)") s)"
	exit 1
}
say() { echo; echo "$(secs "$(elapsed)")s  $*"; }
claim() { checks=$((checks + 1)); echo "   [ok] $*"; }
note() { echo "        $*"; }
trap pg_cleanup EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" -eq 0 ] || fail "run as root: the servers run as the postgres user (sudo make demo-storage)"
for f in "$CMKCTL" "$AGENT"; do
	[ -x "$f" ] || fail "$f is not built (run 'make -C agent all')"
done
[ -x "$PG_BIN/postgres" ] || fail "no PostgreSQL 15 in $PG_BIN (run 'make deps')"

# ---- 1. keys -----------------------------------------------------------------
say "Local KMS: a CMK, a KEK sealed under it; cmk-agent --no-kernel holds the KEK"
note "and serves its key socket to the postgres user only (key_socket_allow, SO_PEERCRED)."
pg_init demo-storage || fail "setting up the CMK, the KEK or the agent failed"
sock=$pg_keydir/run/keys.sock
claim "agent active, key socket $sock ($(stat -c '%A %U:%G' "$sock"))"
if echo probe | runuser -u nobody -- "$CMKCTL" --config /nonexistent seal --socket "$sock" \
	--context demo=nobody - - >/dev/null 2>"$pg_dir/nobody.err"; then
	fail "user nobody got a data key from the key socket"
fi
claim "user nobody is refused: $(head -n 1 "$pg_dir/nobody.err" | sed 's/ (.*//')"

# ---- 2. the cluster ----------------------------------------------------------
P=55472
R=55473
src=$pg_dir/src
arc=$pg_dir/archive
as_pg mkdir "$arc"
say "A private PostgreSQL 15 cluster (Unix socket only, 1 MiB segments) archiving"
note "every WAL segment through cmk-wal-archive: one ESDK message per segment."
{ pg_initdb "$src" $P && sysid=$(pg_sysid "$src") && [ -n "$sysid" ] &&
  pg_archive_conf "$src" "$arc" "$sysid" && pg_start "$src"; } ||
	fail "the cluster did not start: $(tail -n 3 "$src.initdb.log" "$src.log" 2>&1 | tr '\n' ' ')"
claim "cluster $sysid up; archive_command = $(sql $P 'SHOW archive_command' | sed "s|$top/||; s|$pg_dir|\$tmp|g")"

# ---- 3. load -----------------------------------------------------------------
secret=cmk-demo-secret-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
say "pgbench for a few seconds, and a row only this run knows: '$secret'."
pg_bench $P -i -s 1 -q >"$pg_dir/init.log" 2>&1 ||
	fail "pgbench -i: $(tail -n 3 "$pg_dir/init.log" | tr '\n' ' ')"
sql $P "CREATE TABLE customer_secret AS SELECT '$secret'::text AS s FROM generate_series(1, 50)" ||
	fail "could not write the secret row"
pg_bench $P -n -c 2 -j 1 -T 4 >"$pg_dir/bench.log" 2>&1 ||
	fail "pgbench: $(tail -n 3 "$pg_dir/bench.log" | tr '\n' ' ')"
{ last=$(pg_switch $P) && pg_wait 60 pg_archived "$arc" "$last"; } ||
	fail "segment ${last:-?} not archived: $(sql $P 'SELECT * FROM pg_stat_archiver')"
claim "pgbench: $(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$pg_dir/bench.log") transactions ($(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$pg_dir/bench.log" | cut -d. -f1) tps); $(find "$arc" -name '*.esdk' | wc -l) segments archived up to $last"

# ---- 4. no plaintext ---------------------------------------------------------
say "Does the archive hold plaintext?  grep the secret in pg_wal and in the archive."
in_wal=$(grep -l -- "$secret" "$src"/pg_wal/0000* 2>/dev/null | xargs -rn1 basename | xargs)
[ -n "$in_wal" ] || fail "the secret is not in pg_wal: nothing to look for"
claim "pg_wal: found in $in_wal"
seg=
for s in $in_wal; do pg_archived "$arc" "$s" && { seg=$s; break; }; done
[ -n "$seg" ] || fail "no segment holding the secret is archived yet"
if grep -rlq -- "$secret" "$arc"; then
	fail "the secret is in the archive in plaintext: $(grep -rl -- "$secret" "$arc" | head -n 3)"
fi
bad=$(for f in "$arc"/*.esdk; do
	[ "$(head -c 3 "$f" | od -An -tx1 | tr -d ' ')" = 020478 ] || echo "${f##*/}"
done)
[ -z "$bad" ] || fail "not ESDK v2 suite 0x0478: $bad"
claim "archive: absent from all $(find "$arc" -name '*.esdk' | wc -l) objects (each an ESDK v2 message, suite 04 78)"
{ as_pg "$PG_SCRIPTS/cmk-wal-restore" "${PG_KEYARGS[@]}" --cluster "$sysid" --archive "$arc" \
	"$seg" "$pg_dir/unsealed" 2>"$pg_dir/unseal.err" && grep -q -- "$secret" "$pg_dir/unsealed"; } ||
	fail "$seg.esdk does not unseal to a segment holding the secret: $(cat "$pg_dir/unseal.err")"
claim "$seg.esdk unsealed through the agent holds it: the data is there, sealed"

# ---- 5. base backup + PITR ---------------------------------------------------
say "A sealed base backup (pg_basebackup -Ft | cmkctl seal), more load, a restore point."
backup=$pg_dir/base.tar.esdk
as_pg "$PG_SCRIPTS/cmk-pg-basebackup" "${PG_KEYARGS[@]}" --cluster "$sysid" "$backup" \
	-h "$pg_dir" -p $P -c fast 2>"$pg_dir/bb.err" ||
	fail "base backup: $(tr '\n' ' ' <"$pg_dir/bb.err")"
{ [ "$(head -c 3 "$backup" | od -An -tx1 | tr -d ' ')" = 020478 ] && ! grep -q PG_VERSION "$backup"; } ||
	fail "the base backup is not sealed"
claim "base backup sealed: $(($(stat -c %s "$backup") / 1024)) KiB, no tar header readable"
{ pg_bench $P -n -c 2 -j 1 -T 2 >"$pg_dir/bench2.log" 2>&1 &&
  sum_target=$(pg_checksum $P) &&
  sql $P "SELECT pg_create_restore_point('demo_target')" >/dev/null &&
  sql $P "UPDATE pgbench_branches SET bbalance = bbalance + 1000000 WHERE bid = 1" &&
  sum_end=$(pg_checksum $P) && last=$(pg_switch $P) &&
  pg_wait 60 pg_archived "$arc" "$last"; } ||
	fail "load after the backup or archiving it failed"
[ "$sum_target" != "$sum_end" ] || fail "the database did not move on after the restore point"
claim "checksum at restore point 'demo_target' $sum_target; after it (the source moved on) $sum_end"

say "Point-in-time recovery into a fresh data directory from the sealed objects alone."
dst=$pg_dir/restored
not_in_recovery() { [ "$(sql "$1" 'SELECT pg_is_in_recovery()' 2>/dev/null)" = f ]; }
as_pg "$PG_SCRIPTS/cmk-pg-restore-backup" "${PG_KEYARGS[@]}" --cluster "$sysid" \
	"$backup" "$dst" 2>"$pg_dir/rb.err" ||
	fail "unsealing the base backup: $(tr '\n' ' ' <"$pg_dir/rb.err")"
{ pg_conf "$dst" "port = $R" "archive_mode = off" "recovery_target_name = 'demo_target'" \
	"recovery_target_action = 'promote'" && pg_restore_conf "$dst" "$arc" "$sysid" &&
  as_pg touch "$dst/recovery.signal" && pg_start "$dst" && pg_wait 60 not_in_recovery $R &&
  grep -q 'recovery stopping at restore point "demo_target"' "$dst.log"; } ||
	fail "recovery did not reach the restore point: $(tail -n 5 "$dst.log" | tr '\n' ' ')"
replayed=$(grep -c 'restored log file' "$dst.log")
sum_restored=$(pg_checksum $R)
[ "$sum_restored" = "$sum_target" ] ||
	fail "restored checksum ${sum_restored:-none} != $sum_target at the target"
claim "recovered: $replayed sealed segments replayed, stopped at 'demo_target'; checksum $sum_restored equal"
pg_stop "$dst"

# ---- 6. a renamed segment ----------------------------------------------------
start=$(find "$arc" -name '*.backup.esdk' -printf '%f\n' | head -n 1 | cut -c1-24)
segname() { printf '%08X%08X%08X' 1 $(($1 / 4096)) $(($1 % 4096)); }
s=$((16#${start:8:8} * 4096 + 16#${start:16:8}))
a=$(segname $((s + 1)))
b=$(segname $((s + 2)))
say "An attacker with write access to the archive renames $a.esdk to $b.esdk."
swp=$pg_dir/archive-renamed
{ as_pg mkdir "$swp" && as_pg cp "$arc/$a.esdk" "$swp/$b.esdk"; } || fail "could not stage the renamed object"
as_pg "$PG_SCRIPTS/cmk-wal-restore" "${PG_KEYARGS[@]}" --cluster "$sysid" --archive "$swp" \
	"$b" "$pg_dir/RECOVERYXLOG" 2>"$pg_dir/swap.err"
rc=$?
{ [ $rc -eq 255 ] && [ ! -e "$pg_dir/RECOVERYXLOG" ] && grep -q 'swapped or renamed' "$pg_dir/swap.err"; } ||
	fail "the renamed segment was not refused (exit $rc): $(tr '\n' ' ' <"$pg_dir/swap.err")"
claim "restore_command refuses it (exit 255: recovery stops), nothing written:"
note "$(grep -m 1 'swapped or renamed' "$pg_dir/swap.err" | sed "s|$pg_dir|\$tmp|g")"

# ---- 7. revoke ---------------------------------------------------------------
say "The customer revokes the CMK (local KMS: key disabled) while the database runs."
failed_count() { sql $P "SELECT failed_count FROM pg_stat_archiver"; }
f0=$(failed_count)
r0=$(elapsed)
{ pg_cmk disable && pg_agent_is revoked; } ||
	fail "the agent did not see the revocation: $(pg_agent_state)"
claim "agent state revoked $(($(elapsed) - r0)) ms after the KMS said so"
pg_bench $P -n -c 2 -j 1 -T 2 >"$pg_dir/bench3.log" 2>&1 ||
	fail "pgbench while revoked: $(tail -n 3 "$pg_dir/bench3.log" | tr '\n' ' ')"
mid=$(pg_switch $P)
failed_more() { [ "$(failed_count)" -gt "$f0" ]; }
pg_wait 30 failed_more || fail "archive_command did not fail while the CMK is revoked"
why=$(grep -m 1 "cmk-wal-archive: [0-9A-F]\{24\}: sealing failed" "$src.log")
{ [ -n "$why" ] && grep -q 'archive command failed with exit code 1' "$src.log"; } ||
	fail "no clear archive_command failure in the server log: $(tail -n 4 "$src.log" | tr '\n' ' ')"
claim "the database keeps serving (pgbench ran); archive_command fails, failed_count $f0 -> $(failed_count); server log:"
echo "$why" | sed 's/^.*\(cmk-wal-archive:\)/\1/' | fold -s -w 100 | sed 's/^/        /'
last_revoked=$(pg_switch $P)
ready=$(pg_ready "$src")
held=$pg_dir/held
mkdir "$held"
for s in $ready; do
	{ [ -f "$src/pg_wal/$s" ] && ! pg_archived "$arc" "$s"; } ||
		fail "$s: not in pg_wal, or archived while revoked"
	cp "$src/pg_wal/$s" "$held/$s"
done
{ grep -qx "$mid" <<<"$ready" && grep -qx "$last_revoked" <<<"$ready"; } ||
	fail "the segments written while revoked are not waiting: $ready"
claim "$(echo "$ready" | wc -l) segments wait in pg_wal (.ready), none in the archive: $(echo "$ready" | head -n 1) .. $(echo "$ready" | tail -n 1)"

# ---- 8. restore --------------------------------------------------------------
say "The customer enables the CMK again."
{ pg_cmk enable && pg_agent_is active; } || fail "the agent did not become active again: $(pg_agent_state)"
end=$(pg_switch $P)
caught_up() { pg_archived "$arc" "$end" && [ -z "$(pg_ready "$src")" ]; }
pg_wait 60 caught_up || fail "archiving did not catch up: still waiting $(pg_ready "$src" | tr '\n' ' ')"
gaps=$(pg_archive_gaps "$arc" 2>"$pg_dir/gaps") || fail "gaps in the archive: $(tr '\n' ' ' <"$pg_dir/gaps")"
read -r g_first g_last g_count <<<"$gaps"
claim "archiving caught up: $g_count segments $g_first .. $g_last, none missing (checked by name)"

# ---- 9. break-glass ----------------------------------------------------------
seg=$(echo "$ready" | head -n 1)
say "Break-glass: no dm-cmk code.  The AWS Encryption SDK for JavaScript derives the"
note "wrapping key from the CMK's key file + KEK envelope and decrypts $seg.esdk."
if ! esdk_peer_setup 2>"$pg_dir/npm.err"; then
	note "SKIPPED: no @aws-crypto/client-node in $ESDK_NPM_DIR and npm could not install it"
	note "($(sed 's/^# //' "$pg_dir/npm.err" | xargs)); it is installed once, with npm"
	note "reachable, by tests/storage/esdk_interop.sh or this demo"
	peer=skipped
else
	b0=$(elapsed)
	$ESDK_PEER decrypt --key-file "$pg_keydir/cmk.key" --envelope "$KEK" \
		--context "cluster=$sysid" --context "segment=$seg" \
		"$arc/$seg.esdk" "$held/$seg.js" 2>"$pg_dir/peer.err" ||
		fail "the JavaScript ESDK could not decrypt $seg.esdk: $(tr '\n' ' ' <"$pg_dir/peer.err")"
	cmp -s "$held/$seg" "$held/$seg.js" ||
		fail "the JavaScript ESDK's plaintext differs from the segment held in pg_wal"
	claim "decrypted in $(($(elapsed) - b0)) ms, byte for byte the segment that waited in pg_wal"
	peer=ok
fi

audit=$(grep -c . "$pg_keydir/audit.log" 2>/dev/null || echo 0)
pg_stop "$src"
total=$(elapsed)
echo
echo "dm-cmk storage demo: PASS - $checks checks in $(secs "$total") s: WAL sealed per segment," \
	"no plaintext archived, PITR checksum equal, renamed segment refused, revoke held" \
	"$(echo "$ready" | wc -l) segments in pg_wal and lost none, break-glass $peer" \
	"($audit audit records)"

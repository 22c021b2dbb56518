#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make demo`: the end-to-end story in a QEMU guest, narrated live here.
#
# Usage: scripts/demo.sh [--kver KVER]
#
# Boots the Debian kernel (default: 6.1) with a busybox initramfs holding
# dm-cmk, cmk-agent, cmkctl, mkfs.ext4 and the ext4 module, and runs
# scripts/demo/demo in it: local KMS -> agent opens an ephemeral disk ->
# ext4 + a file -> no plaintext on the backing device -> revoke: key wiped,
# I/O fails (timed) -> restore: data back -> reboot: new DEK, old data gone.
# Every claim is checked; the last line says PASS or FAIL, and the exit
# status is non-zero on any failure, including a guest that never got
# there (the reason is shown).  Results: build/results/demo-KVER/.
# DEMO_TIMEOUT=<s> bounds the guest run (default 600).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

kver=
while [ $# -gt 0 ]; do
	case $1 in
	--kver) kver=$2; shift 2 ;;
	-h|--help) sed -n '3,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "demo: unknown argument $1" >&2; exit 2 ;;
	esac
done
if [ -z "$kver" ]; then
	kver=$(scripts/kvers.sh --default)
fi

fail() {
	echo
	echo "dm-cmk demo: FAIL - $*"
	exit 1
}

[ -n "$kver" ] || fail "no Debian kernel with headers installed (run 'make deps')"
for f in agent/build/cmk-agent agent/build/cmkctl "build/kmod/$kver/kernel/dm-cmk.ko"; do
	[ -e "$f" ] || fail "$f is not built (run 'make KVER=$kver')"
done
make -s -C tests/integration O="$top/build/tests/integration" ||
	fail "the demo's helpers did not build"

out=$top/build/results/demo-$kver
mkdir -p "$out"
rm -f "$out/results.log"
mkfs=$(command -v mkfs.ext4 || echo /sbin/mkfs.ext4)
helpers=$top/build/tests/integration
args=(--kver "$kver" --out "$out" --timeout "${DEMO_TIMEOUT:-600}" --test-timeout 400
	--module ext4
	--add "agent/build/cmk-agent:/usr/sbin/cmk-agent"
	--add "agent/build/cmkctl:/usr/sbin/cmkctl"
	--add "$helpers/cmk-oracle:/usr/bin/cmk-oracle"
	--add "tests/integration/lib.sh:/usr/lib/cmk-test/lib.sh"
	--add "$mkfs:/sbin/mkfs.ext4")
[ -f /etc/mke2fs.conf ] && args+=(--add /etc/mke2fs.conf)

echo "dm-cmk demo: building the guest and booting Debian's $kver in QEMU (TCG, 2 vCPUs)..."
t0=$(date +%s)
scripts/qemu/run-guest.sh "${args[@]}" scripts/demo/demo >"$out/run.log" 2>&1 &
rg=$!

# Narrate: follow the guest's results channel as it is written (-f follows
# the open file, so run-guest.sh's final rewrite of it is not shown twice).
for _ in $(seq 1 600); do
	[ -e "$out/results.log" ] && break
	kill -0 "$rg" 2>/dev/null || break
	sleep 0.1
done
if [ -e "$out/results.log" ]; then
	tail -f -n +1 --pid="$rg" "$out/results.log" 2>/dev/null | tr -d '\r' |
	while IFS= read -r l; do
		case $l in
		"### init "*) echo "   (guest kernel up, /init at ${l#\#\#\# init }s)" ;;
		"### "*|1..*) ;;
		"ok "*) echo "   [ok] ${l#ok [0-9]* }" ;;
		"not ok "*) echo "   [FAILED] ${l#not ok [0-9]* }" ;;
		"#   "*) echo "        ${l#\#   }" ;;
		*) echo "$l" ;;
		esac
	done
fi
set +e
wait "$rg"
rc=$?
set -e
wall=$(($(date +%s) - t0))

echo
verdict=$(sed -n 's/^# verdict [^ ]*: //p' "$out/run.log" | tail -n 1)
steps=$(grep -cE '^ok [0-9]+ [^ ]*:demo:[a-z]' "$out/run.log" || true)
failed=$(grep -E '^not ok ' "$out/run.log" || true)
times=$(grep -o 'demo_revoke_to_wiped_ms=.*' "$out/results.log" 2>/dev/null | tail -n 1 || true)
if [ "$rc" -ne 0 ] || [ -n "$failed" ] || [ "$steps" -eq 0 ]; then
	echo "What failed:"
	echo "${failed:-  (no check failed; the guest run did not complete)}" | sed 's/^/  /'
	grep -E '^#   ' "$out/run.log" | head -n 30 | sed 's/^/  /'
	if ! grep -q '^### done' "$out/results.log" 2>/dev/null; then
		echo "Last kernel messages ($out/console.log):"
		tail -n 15 "$out/console.log" 2>/dev/null | sed 's/^/  /'
	fi
	reason=${verdict#FAIL: }
	fail "${reason:-the guest run failed (rc=$rc), see $out/} (${wall}s)"
fi
wipe_ms=$(echo "$times" | sed -n 's/.*demo_revoke_to_wiped_ms=\([0-9]*\).*/\1/p')
echo "dm-cmk demo: PASS - $steps checks on $kver in ${wall}s: no plaintext on disk, revoke wiped the key in ${wipe_ms:-?} ms, restore brought the data back, reboot shredded it"

#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The whole system with an HSM: cmk-agent in the QEMU guest unseals its KEK
# from a SoftHSM2 token through the pkcs11 provider, opens the device; the
# key owner deletes the key (revoke -> wipe) and imports it again from
# escrow (restore -> same data back).  See
# tests/kms/guest/pkcs11_guest_revoke_restore.
#
# The HSM lives in the guest: this script initialises the token on the host
# (softhsm2-util, pkcs11-tool) in a temp dir, wraps the KEK under it with
# cmkctl, and hands the guest libsofthsm2.so, pkcs11-tool, a softhsm2.conf
# and every file of the token directory through mkinitramfs --add.  The key
# owner's actions then run inside the guest with pkcs11-tool against the
# same token the agent uses, and the guest times them with its own clock;
# no control channel is needed.
#
# Usage: tests/kms/pkcs11_guest.sh [--kver KVER]     Output: TAP (the guest
# runner's).  Needs softhsm2, opensc and a built cmk-agent.
set -uo pipefail

# shellcheck source=tests/kms/lib.sh
. "$(dirname "$0")/lib.sh"
kms_init pkcs11-guest
cd "$top" || exit 1
guest_args pkcs11_guest "$@"

unset CMK_PKCS11_PIN SOFTHSM2_CONF
MOD=
for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so; do
	[ -f "$m" ] && { MOD=$m; break; }
done
[ -n "$MOD" ] || fail pkcs11_guest_prerequisites "libsofthsm2.so not found (package libsofthsm2)"
p11tool=$(command -v pkcs11-tool) || fail pkcs11_guest_prerequisites "pkcs11-tool not found (package opensc)"
command -v softhsm2-util >/dev/null || fail pkcs11_guest_prerequisites "softhsm2-util not found"

make -s -C agent all >"$T/build.log" 2>&1 || fail pkcs11_guest_agent_builds "$(tail -5 "$T/build.log")"
make -s -C tests/integration O="$top/build/tests/integration" >"$T/build.log" 2>&1 ||
	fail pkcs11_guest_helpers_build "$(tail -5 "$T/build.log")"

# The token, as the guest will see it at /var/lib/cmk-test/tokens.
PIN=guest-$$-pin
mkdir -p "$T/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' \
	"$T/tokens" >"$T/softhsm2.conf"
printf 'directories.tokendir = /var/lib/cmk-test/tokens\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' \
	>"$T/softhsm2.guest.conf"
head -c 32 /dev/urandom >"$T/escrow.key"
printf '%s\n' "$PIN" >"$T/pin"
chmod 600 "$T/pin" "$T/escrow.key"
{
	SOFTHSM2_CONF=$T/softhsm2.conf softhsm2-util --init-token --free --label cmk \
		--so-pin "so-$PIN" --pin "$PIN" &&
	SOFTHSM2_CONF=$T/softhsm2.conf "$p11tool" --module "$MOD" --token-label cmk \
		--login --pin "$PIN" --write-object "$T/escrow.key" --type secrkey \
		--key-type AES:32 --label kek --id 01 --usage-decrypt --sensitive &&
	SOFTHSM2_CONF=$T/softhsm2.conf CMK_PKCS11_PIN=$PIN agent/build/cmkctl kek create \
		--provider pkcs11 --key-ref "pkcs11:token=cmk;object=kek;id=%01?module-path=$MOD" \
		--context service=integration --out "$T/kek.json"
} >"$T/setup.log" 2>&1 || fail pkcs11_guest_token_setup "$(tail -c 600 "$T/setup.log")"

adds=(
	--add agent/build/cmk-agent:/usr/sbin/cmk-agent
	--add agent/build/cmkctl:/usr/sbin/cmkctl
	--add "$top/build/tests/integration/cmk-oracle:/usr/bin/cmk-oracle"
	--add tests/integration/lib.sh:/usr/lib/cmk-test/lib.sh
	--add "$MOD:$MOD"
	--add "$p11tool:/usr/bin/pkcs11-tool"
	--add "$T/softhsm2.guest.conf:/etc/cmk-test/softhsm2.conf"
	--add "$T/kek.json:/etc/cmk-test/kek.json"
	--add "$T/pin:/etc/cmk-test/pin"
	--add "$T/escrow.key:/etc/cmk-test/escrow.key"
)
while IFS= read -r -d '' f; do
	adds+=(--add "$f:/var/lib/cmk-test/tokens/${f#"$T/tokens/"}")
done < <(find "$T/tokens" -type f -print0)

scripts/qemu/run-guest.sh --kver "$kver" --out "$top/build/results/kms-pkcs11-guest-$kver" \
	--timeout "${GUEST_TIMEOUT:-600}" --test-timeout 400 \
	"${adds[@]}" "$here/guest/pkcs11_guest_revoke_restore"

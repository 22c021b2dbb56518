#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# esdk_rotation.sh - KEK rotation never strands a sealed object, TAP output.
#
# Oracle: plaintext compared byte for byte.  An object sealed under KEK
# version 1 unseals after "cmkctl kek rotate" ran twice (versions 1 and 2
# are kept as retired, unwrap-only; seal uses version 3), and after a CMK
# re-wrap ("kek rewrap") to a second CMK with the first one destroyed.  An
# unseal unwraps only the KEK version its EDK names: with the previous
# version's CMK unreachable, objects of the current version still unseal,
# and an object of the unreachable version fails naming that version.
set -u
# shellcheck source=tests/storage/lib.sh
. "$(dirname "$0")/lib.sh"

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; [ $# -lt 2 ] || echo "# $2"; failed=1; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else notok "$name"; fi; }

dir=$(mktemp -d "${TMPDIR:-/tmp}/esdk-rotation.XXXXXX")
trap 'rm -rf "$dir"' EXIT
chmod 700 "$dir"
cd "$dir" || exit 1

echo "1..6"
ctl() { "$CMKCTL" --config "$dir/none.conf" "$@"; }
agent() { "$CMKCTL" --config "$dir/agent.conf" "$@"; }
mkdir run
printf '[agent]\nkek_envelope = %s/kek.json\ncheck_interval_ms = 250\nlease_ms = 5000\naudit_log = %s/audit.log\nsyslog = no\nstate_dir = %s/run\n' \
	"$dir" "$dir" "$dir" >agent.conf
head -c 70000 /dev/urandom >in1
head -c 3000 /dev/urandom >in3
C1=(--context cluster=c1 --context segment=000000010000000000000001)
C3=(--context cluster=c1 --context segment=000000010000000000000003)

ctl local-key create cmk.key >/dev/null &&
ctl kek create --provider local --key-ref "$dir/cmk.key" --out kek.json \
	--context service=pg >/dev/null &&
ctl seal --kek kek.json "${C1[@]}" in1 obj1 &&
agent kek rotate >/dev/null && agent kek rotate >/dev/null &&
ctl seal --kek kek.json "${C3[@]}" in3 obj3
check "seal_rotate_twice_setup" [ $? -eq 0 ]
rm -f out1
ctl unseal --kek kek.json "${C1[@]}" obj1 out1
check "seal_rotate_twice_unseal_first_object" cmp -s in1 out1
check "seal_rotation_envelope_keeps_retired_1_and_2" \
	python3 -c 'import json,sys; e=json.load(open("kek.json")); sys.exit(not (e["kek_version"] == 3 and [r["kek_version"] for r in e["retired"]] == [1, 2]))'

# CMK re-wrap: the archive is untouched, the old CMK no longer needed.
ctl local-key create cmk2.key >/dev/null
agent kek rewrap --key-ref "$dir/cmk2.key" >rewrap.log 2>&1
ctl local-key destroy cmk.key >/dev/null 2>&1
rm -f out1
ctl unseal --kek kek.json "${C1[@]}" obj1 out1 2>err1
check "seal_rewrap_then_unseal_first_object" cmp -s in1 out1 || cat rewrap.log err1 | sed 's/^/# /'

# Mid-rotation, with the previous version's CMK unreachable: an object of
# the current version needs only the current KEK (before, every unseal
# unwrapped the previous version too, and failed).
python3 - <<'PY'
import json
e = json.load(open("kek.json"))
p = e["retired"].pop()
p["key_ref"] = e["key_ref"] + ".gone"
e["previous"] = p
json.dump(e, open("kek.json", "w"), indent=2)
PY
rm -f out3
ctl unseal --kek kek.json "${C3[@]}" obj3 out3 2>err3
check "seal_unseal_needs_only_the_named_kek_version" cmp -s in3 out3 || sed 's/^/# /' err3
# An object of an unreachable retired version fails, naming the version,
# and writes nothing.
python3 - <<'PY'
import json
e = json.load(open("kek.json"))
e["retired"][0]["key_ref"] = e["key_ref"] + ".gone"
json.dump(e, open("kek.json", "w"), indent=2)
PY
rm -f out1
if ! ctl unseal --kek kek.json "${C1[@]}" obj1 out1 2>err1 && [ ! -e out1 ] &&
   grep -q "KEK version 1" err1; then
	ok "seal_unseal_of_an_unreachable_version_names_it"
else
	notok "seal_unseal_of_an_unreachable_version_names_it" "$(cat err1)"
fi
exit $failed

#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The fleet harness (fleet.py, Documentation/fleet.rst): N real cmk-agent
# processes (--no-kernel) against moto behind a KMS quota proxy, all on
# 127.0.0.1.
#
#   tests/fleet/run.sh --short   200 agents, 10 s checks, about 4 minutes:
#                                scenarios (a)(b)(c) and the hint (d);
#                                scripts/check.sh runs it (suite "fleet")
#   tests/fleet/run.sh --full    1,000 agents, 30 s checks, (b) 10 minutes,
#                                the hint against 30 s polling: `make fleet`
#
# Extra arguments go to fleet.py (e.g. --agents 500).  Output: TAP ("ok N
# fleet_..."); report, CSV series and charts in build/fleet[/short].
# Only safety is asserted (no wipe before the revocation, every agent
# wipes after it within the bound), never timings.
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
here=$top/tests/fleet
mode=--short
case ${1:-} in
--short|--full) mode=$1; shift ;;
esac

for c in moto_server python3; do
	if ! command -v "$c" >/dev/null; then
		echo "not ok 1 fleet_prerequisites # $c not found"; echo "1..1"; exit 1
	fi
done
if ! make -s -C "$top/agent" all >/tmp/cmk-fleet-build.$$ 2>&1; then
	echo "not ok 1 fleet_agent_builds"; sed 's/^/# /' /tmp/cmk-fleet-build.$$ | tail -5
	rm -f /tmp/cmk-fleet-build.$$; echo "1..1"; exit 1
fi
rm -f /tmp/cmk-fleet-build.$$

# Nothing from the caller's environment may reach the agents.
for v in $(env | sed -n 's/^\(AWS_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY no_proxy NO_PROXY ALL_PROXY all_proxy

if [ "$mode" = --full ]; then
	set -- --agents 1000 --interval 30 --grace 120 --a-len 75 --revoke-after 600 \
		--hint-interval 300 --poll-interval 30 --d-measure 60 \
		--scenarios abc,hint,poll --out "$top/build/fleet" "$@"
else
	set -- --agents 200 --interval 10 --grace 30 --throttle-grace 300 --a-len 25 --revoke-after 60 \
		--hint-interval 300 --d-measure 20 \
		--scenarios abc,hint --out "$top/build/fleet/short" "$@"
fi
exec python3 "$here/fleet.py" --agent "$top/agent/build/cmk-agent" \
	--cmkctl "$top/agent/build/cmkctl" "$@"

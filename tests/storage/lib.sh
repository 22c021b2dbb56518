# shellcheck shell=bash
# SPDX-License-Identifier: GPL-2.0
#
# lib.sh - shared by the storage tests (sourced).
#
# esdk_peer_setup: the AWS Encryption SDK for JavaScript, pinned by
# esdk-peer/package-lock.json, installed once under $ESDK_NPM_DIR
# (default /var/cache/dm-cmk/npm) with npm's cache beside it, so later
# runs (and make check) work offline.  Sets ESDK_PEER (the command).

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ESDK_NPM_DIR=${ESDK_NPM_DIR:-/var/cache/dm-cmk/npm}
CMKCTL=${CMKCTL:-$top/agent/build/cmkctl}

esdk_peer_setup() {
	local dir=$ESDK_NPM_DIR/esdk src=$top/tests/storage/esdk-peer
	if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
		echo "# node/npm missing: scripts/deps.sh installs nodejs and npm" >&2
		return 1
	fi
	mkdir -p "$dir" || return 1
	if ! cmp -s "$src/package-lock.json" "$dir/package-lock.json" ||
	   [ ! -d "$dir/node_modules/@aws-crypto/client-node" ]; then
		cp "$src/package.json" "$src/package-lock.json" "$dir/" || return 1
		(cd "$dir" && npm ci --prefer-offline --no-audit --no-fund \
			--cache "$ESDK_NPM_DIR/cache" >"$dir/install.log" 2>&1) || {
			echo "# npm ci failed, see $dir/install.log" >&2
			return 1
		}
	fi
	export NODE_PATH=$dir/node_modules
	export ESDK_PEER="node $top/tests/storage/esdk_peer.js"
}

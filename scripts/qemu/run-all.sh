#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Run the guest tests on one kernel or on every installed Debian kernel.
#
# Usage: scripts/qemu/run-all.sh [all|KVER] [run-guest.sh options...]
#
# Kernels are the /boot/vmlinuz-* that have /lib/modules/<kver>/build (the
# Debian 6.1 and 6.12 packages); the host's own kernel is never used.  The
# guests run one after another (the machine has two cores).  Each kernel's
# results land in build/results/<kver>/; exit status 0 only if all passed.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
which=${1:-all}
[ $# -gt 0 ] && shift

kvers=()
if [ "$which" = all ]; then
	mapfile -t kvers < <("$here/../kvers.sh")
else
	kvers=("$which")
fi
if [ ${#kvers[@]} -eq 0 ] || [ -z "${kvers[0]}" ]; then
	echo "run-all: no Debian kernel with headers found (run 'make deps')" >&2
	exit 1
fi

rc=0
for k in "${kvers[@]}"; do
	echo "# guest $k"
	"$here/run-guest.sh" --kver "$k" "$@" || rc=1
done
exit $rc

#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The agent library's layers (Documentation/agent-library.rst), enforced:
# a module includes its own layer and the layers before it, never one
# after it, and every library file lives in a layer folder.  Prints each
# offending include; exit status 1 if there is one.
order="core kms format device volume daemon"

rank() {
	i=0
	for l in $order; do
		[ "$l" = "$1" ] && { echo $i; return; }
		i=$((i + 1))
	done
	echo 99
}

cd "$(dirname "$0")/../agent" || exit 1
bad=0
for f in *.h; do
	[ -e "$f" ] || continue
	echo "agent/$f: a library header outside a layer folder"
	bad=1
done
# shellcheck disable=SC2086 # $order is a list of folder names
out=$(find $order -name '*.[ch]' | sort | while read -r f; do
	me=$(rank "${f%%/*}")
	sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f" |
	while read -r inc; do
		case $inc in
		*..*)
			echo "agent/$f includes \"$inc\": no relative paths"
			continue ;;
		*/*) ;;
		*)
			echo "agent/$f includes \"$inc\": name its layer folder"
			continue ;;
		esac
		[ "$(rank "${inc%%/*}")" -le "$me" ] ||
			echo "agent/$f includes ${inc%%/*}/: a lower layer uses a higher one"
	done
done)
if [ -n "$out" ]; then
	echo "$out"
	bad=1
fi
exit $bad

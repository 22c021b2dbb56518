# shellcheck shell=bash disable=SC2034 # the variables are for the scripts sourcing this
# SPDX-License-Identifier: GPL-2.0
#
# cmk-pg-lib.sh - shared by the PostgreSQL scripts (sourced): option
# parsing, the naming rules of the archive, and the ONE place that runs
# cmkctl seal/unseal.  Documentation/storage.rst, "PostgreSQL".
#
# Environment: CMKCTL (default: cmkctl from PATH), CMKCTL_CONFIG (passed
# as cmkctl --config when set).

CMKCTL=${CMKCTL:-cmkctl}
prog=${0##*/}
cmk_pg_kek=
cmk_pg_socket=
cmk_pg_cluster=
cmk_pg_archive=
cmk_pg_args=()
cmk_pg_ctx=()

# cmk_pg_die MESSAGE: exit with cmk_pg_die_status (1; cmk-wal-restore
# sets 255, which stops recovery instead of ending it).
cmk_pg_die_status=1
cmk_pg_die() {
	echo "$prog: $*" >&2
	exit "$cmk_pg_die_status"
}

# cmk_pg_parse "$@": --kek FILE or --socket PATH, --cluster ID, --archive
# DIR; the rest
# (after the options, or after "--") goes to cmk_pg_args.
cmk_pg_parse() {
	while [ $# -gt 0 ]; do
		case $1 in
		--kek) cmk_pg_kek=${2-}; shift 2 || cmk_pg_die "--kek needs a file" ;;
		--socket) cmk_pg_socket=${2-}; shift 2 || cmk_pg_die "--socket needs a path" ;;
		--cluster) cmk_pg_cluster=${2-}; shift 2 || cmk_pg_die "--cluster needs an id" ;;
		--archive) cmk_pg_archive=${2-}; shift 2 || cmk_pg_die "--archive needs a directory" ;;
		--) shift; break ;;
		-*) cmk_pg_die "unknown option $1" ;;
		*) break ;;
		esac
	done
	cmk_pg_args=("$@")
	case ${cmk_pg_kek:+k}${cmk_pg_socket:+s} in
	k | s) ;;
	*) cmk_pg_die "one key source: --kek FILE (the KEK envelope) or --socket PATH (cmk-agent's key socket)" ;;
	esac
	# The cluster's system identifier (pg_controldata: "Database system
	# identifier"): part of every object's encryption context, so an
	# object of another cluster is refused.
	[[ $cmk_pg_cluster =~ ^[0-9]{1,20}$ ]] ||
		cmk_pg_die "--cluster ID is required: the database system identifier (digits), from pg_controldata"
}

# The key source of every seal and unseal: the agent's key socket (the
# KEK stays in cmk-agent; a revoked CMK refuses at once), or the envelope,
# which cmkctl unwraps through the KMS itself on every call.
cmk_pg_key() {
	if [ -n "$cmk_pg_socket" ]; then
		cmk_pg_keyargs=(--socket "$cmk_pg_socket")
	else
		cmk_pg_keyargs=(--kek "$cmk_pg_kek")
	fi
}

# cmk_pg_seal|cmk_pg_unseal [cmkctl seal|unseal arguments...]
cmk_pg_cmkctl() {
	local verb=$1
	shift
	cmk_pg_key
	"$CMKCTL" ${CMKCTL_CONFIG:+--config "$CMKCTL_CONFIG"} "$verb" \
		"${cmk_pg_keyargs[@]}" "$@"
}
cmk_pg_seal() { cmk_pg_cmkctl seal "$@"; }
cmk_pg_unseal() { cmk_pg_cmkctl unseal "$@"; }

# cmk_pg_wal_name NAME: NAME is a file PostgreSQL archives (a WAL segment,
# a partial segment, a timeline history file or a backup history file),
# so it is safe as a file name in the archive.
cmk_pg_wal_name() {
	[[ $1 =~ ^[0-9A-F]{24}(\.partial|\.[0-9A-F]{8}\.backup)?$ ||
	   $1 =~ ^[0-9A-F]{8}\.history$ ]]
}

# cmk_pg_wal_context NAME: the encryption context of an archived file.
cmk_pg_wal_context() {
	cmk_pg_ctx=(--context "cluster=$cmk_pg_cluster" --context "segment=$1")
}

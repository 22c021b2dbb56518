# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash disable=SC2034  # sets variables for its callers
#
# Shared by the KMS test scripts (tests/kms/*.sh) and tests/boot/run.sh: a
# private temp dir, servers started in their own session and always
# stopped, free loopback ports, TAP output, and moto with IAM authorisation
# on.
#
#   source "$here/lib.sh"; kms_init NAME
#
# kms_init makes $T (kept when KEEP=1), installs the EXIT trap that stops
# every server started with kms_start, and sets $top and $here.

# kms_init NAME: temp dir /tmp/cmk-kms-NAME.XXXXXX, trap, TAP counters.
kms_init() {
	here=$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)
	top=$(cd "$here/../.." && pwd)
	T=$(mktemp -d "/tmp/cmk-kms-$1.XXXXXX")
	pids=()
	n=0
	failed=0
	trap kms_cleanup EXIT
	trap 'exit 130' INT TERM
}

kms_cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null
	done
	for p in "${pids[@]}"; do
		wait "$p" 2>/dev/null
	done
	if [ -n "${KEEP:-}" ]; then
		echo "# kept $T" >&2
	else
		rm -rf "$T"
	fi
}

# kms_start NAME CMD...: run CMD in its own session (so its whole process
# group is stopped on exit), output in $T/NAME.out, pid in ${NAME}_pid.
kms_start() {
	setsid "${@:2}" >"$T/$1.out" 2>&1 &
	pids+=("$!")
	eval "${1}_pid=$!"
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_file FILE: until it is non-empty (servers write their port there).
wait_file() {
	local _
	for _ in $(seq 1 300); do [ -s "$1" ] && return 0; sleep 0.1; done
	return 1
}

# wait_port PORT: until 127.0.0.1:PORT accepts connections (20 s).
wait_port() {
	local _
	for _ in $(seq 1 200); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# jq_ EXPR: evaluate a Python expression over the JSON document on stdin (d).
jq_() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# TAP: ok NAME [comment]; nok NAME WHY; check NAME CMD... (diagnostics from
# $T/last); die NAME WHY ends the run with the plan.
ok() {
	n=$((n + 1)); echo "ok $n $1${2:+ # $2}"
}
nok() {
	n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n $1"; echo "# $2"
}
check() {
	local name=$1; shift
	if "$@"; then ok "$name"; else nok "$name" "$(tail -c 600 "$T/last" 2>/dev/null | tr '\n' ' ')"; fi
}
die() {
	nok "$1" "$2"
	echo "1..$n"
	exit 1
}

# moto_start SETUP_CALLS: moto_server on a free port with IAM authorisation
# on after SETUP_CALLS unauthenticated calls (the ones that create the first
# users); sets $moto_port and $MOTO.  Dies (TAP) if it does not listen.
moto_start() {
	moto_port=$(free_port)
	INITIAL_NO_AUTH_ACTION_COUNT=$1 kms_start moto moto_server -H 127.0.0.1 -p "$moto_port"
	MOTO=http://127.0.0.1:$moto_port
	wait_port "$moto_port" || die moto_starts "$(tail -c 400 "$T/moto.out")"
}

# aws_as AK SK ARGS...: the aws CLI against moto with these credentials.
aws_as() {
	AWS_ACCESS_KEY_ID=$1 AWS_SECRET_ACCESS_KEY=$2 AWS_DEFAULT_REGION=us-east-1 \
		aws --endpoint-url "$MOTO" "${@:3}"
}

# moto_users AGENT_POLICY_JSON: with the 6 setup calls, create user "admin"
# (allowed everything) and user "agent" (AGENT_POLICY_JSON); sets admin_ak,
# admin_sk, agent_ak, agent_sk.  Output of the calls in $T/last.
moto_users() {
	local setup=(AKIASETUP0000000000 setup)
	local allow_all='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'
	{
		aws_as "${setup[@]}" iam create-user --user-name admin >/dev/null &&
		aws_as "${setup[@]}" iam put-user-policy --user-name admin --policy-name all \
			--policy-document "$allow_all" &&
		aws_as "${setup[@]}" iam create-access-key --user-name admin >"$T/admin.json" &&
		aws_as "${setup[@]}" iam create-user --user-name agent >/dev/null &&
		aws_as "${setup[@]}" iam create-access-key --user-name agent >"$T/agent.json" &&
		aws_as "${setup[@]}" iam put-user-policy --user-name agent --policy-name kms \
			--policy-document "$1"
	} >"$T/last" 2>&1 || return 1
	admin_ak=$(jq_ "d['AccessKey']['AccessKeyId']" <"$T/admin.json")
	admin_sk=$(jq_ "d['AccessKey']['SecretAccessKey']" <"$T/admin.json")
	agent_ak=$(jq_ "d['AccessKey']['AccessKeyId']" <"$T/agent.json")
	agent_sk=$(jq_ "d['AccessKey']['SecretAccessKey']" <"$T/agent.json")
}

# MOTO_SETUP_CALLS: how many unauthenticated calls moto_users makes.
MOTO_SETUP_CALLS=6

# kms_build NAME: build the agent (cmkctl) and tests/kms/kmsdrv linked with
# it as build/tests/kms/kmsdrv-NAME (one per suite: suites may run side by
# side); sets $drvbin, $cmkctl and DRV_PROVIDER=NAME.  Dies (TAP) on error.
kms_build() {
	local pkgs
	make -s -C "$top/agent" all >"$T/build.log" 2>&1 ||
		die "$1_agent_builds" "$(tail -5 "$T/build.log")"
	mkdir -p "$top/build/tests/kms"
	drvbin=$top/build/tests/kms/kmsdrv-$1
	pkgs=$(sed -n 's/^PKGS[[:space:]]*:=//p' "$top/agent/Makefile")
	# shellcheck disable=SC2046,SC2086
	cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -g -I"$top/agent" \
		-I"$top/include/uapi" -o "$drvbin.$$" "$here/kmsdrv.c" \
		"$top/agent/build/libcmk.a" $(pkg-config --libs $pkgs) >"$T/build.log" 2>&1 &&
		mv "$drvbin.$$" "$drvbin" ||
		die "$1_kmsdrv_builds" "$(tail -5 "$T/build.log")"
	cmkctl=$top/agent/build/cmkctl
	DRV_PROVIDER=$1
}

# The kmsdrv driver: one long-lived provider, like cmk-agent, one request
# per line on fd 7 and one answer line each.  drv_start ENVELOPE [k=v]...
# starts ${DRV:-$drvbin} for $DRV_PROVIDER (environment from the caller).
drv_start() {
	rm -f "$T/drv.in" "$T/drv.out"
	mkfifo "$T/drv.in"
	: >"$T/drv.out"		# before the driver: drv_wait counts its lines
	"${DRV:-$drvbin}" "$DRV_PROVIDER" "$@" <"$T/drv.in" >"$T/drv.out" 2>"$T/drv.err" &
	drv_pid=$!
	pids+=("$drv_pid")
	exec 7<>"$T/drv.in"
	drv_n=0
	drv_wait
}
# drv_wait: the next answer line (60 s at most) in $R; it and the driver's
# stderr in $T/last.
drv_wait() {
	local _
	drv_n=$((drv_n + 1))
	for _ in $(seq 1 1200); do
		[ "$(wc -l <"$T/drv.out")" -ge "$drv_n" ] && break
		kill -0 "$drv_pid" 2>/dev/null || break
		sleep 0.05
	done
	R=$(sed -n "${drv_n}p" "$T/drv.out")
	{ echo "$R"; cat "$T/drv.err"; } >"$T/last"
}
# drv COMMAND: one request to the driver; its answer line is in $R
drv() { echo "$1" >&7; drv_wait; }
# drv_stop: ends the driver; its stderr is kept in $T/drv-all.err (for
# sanitizer verdicts), with its exit status if that was not 0.
drv_stop() {
	echo quit >&7
	exec 7>&-
	wait "$drv_pid" 2>/dev/null || echo "# driver exit status $?" >>"$T/drv.err"
	cat "$T/drv.err" >>"$T/drv-all.err"
}
# shellcheck disable=SC2254 # $2 is a glob on purpose
is() { case $1 in $2) return 0 ;; *) echo "got: $1" >>"$T/last"; return 1 ;; esac; }
drv_is() { drv "$1"; is "$R" "$2"; }
# rc_is WANT CMD...: CMD exits WANT (output in $T/last)
rc_is() {
	local want=$1 rc
	shift
	"$@" >"$T/last" 2>&1
	rc=$?
	[ "$rc" -eq "$want" ] || { echo "exit $rc, wanted $want" >>"$T/last"; return 1; }
}
last_has() { grep -q -- "$1" "$T/last"; }

# fail NAME WHY: for the guest suites, whose TAP is the guest runner's: a
# setup step on the host failed, so this is the run's only result.
fail() {
	echo "not ok 1 $1"
	echo "# $2"
	echo "1..1"
	exit 1
}

# guest_args NAME "$@": the guest suites' one option, --kver KVER; sets
# $kver (default: the Debian 6.1 kernel, else the first one installed).
guest_args() {
	local name=$1
	shift
	kver=
	while [ $# -gt 0 ]; do
		case $1 in
		--kver) kver=$2; shift 2 ;;
		*) echo "$name: unknown argument $1" >&2; exit 2 ;;
		esac
	done
	if [ -z "$kver" ]; then
		kver=$("$top/scripts/kvers.sh" --default)
	fi
}

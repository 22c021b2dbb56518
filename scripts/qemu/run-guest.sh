#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot a Debian kernel in QEMU (TCG) with a busybox initramfs, run the
# kselftests inside it and give one verdict.
#
# Usage: scripts/qemu/run-guest.sh --kver KVER [--timeout S] [--test-timeout S]
#            [--out DIR] [--fio] [--net-fwd GUESTPORT=HOSTPORT]...
#            [--add SRC[:DST]]... [--tool NAME]... [--module NAME]...
#            [--mem MB] [--disk FILE]... [--append ARGS] [--qemu-arg ARG]...
#            [--qmp SOCKET] [--vmgenid GUID|auto] [--savevm-restore]
#            [--show-console] [TEST...]
#
#   --kver KVER         a kernel with /boot/vmlinuz-KVER and modules, or
#                       "debug": the debug kernel of scripts/debug-kernel.sh
#                       (KASAN, lockdep, kmemleak, UBSAN, ...; build it and
#                       the module for it first, see scripts/kbuild.sh
#                       --kdir).  On it a WARN, soft lockup or hung task does
#                       not panic (every report of the run is collected and
#                       fails it), kmemleak is scanned after
#                       the suite, and test names start with "6.12-debug:"
#   --timeout S         bound on the whole guest run (default 900; 5400 on
#                       the debug kernel, several times slower under TCG)
#   --test-timeout S    bound on each test binary inside the guest (600;
#                       1800 on the debug kernel)
#   --out DIR           results directory (default build/results/KVER)
#   --fio               put fio (and its ~80 MB of libraries) in the guest
#   --net-fwd G=H       give the guest a NIC (10.0.2.15/24) whose connections
#                       to 10.0.2.100:G reach 127.0.0.1:H on the host (needs
#                       nc, package netcat-openbsd).  QEMU's user network
#                       with restrict=on: the guest reaches nothing else.
#                       The "cmd:" guestfwd form is used on purpose: the
#                       plain "tcp:" form hangs after the first connection.
#   --add SRC[:DST]     extra file for the guest (ELF: with its libraries)
#   --tool NAME         a program from the host's PATH (stress-ng, capsh,
#                       ...), at the same path in the guest, with its
#                       libraries; its package belongs in scripts/deps.sh
#   --module NAME       extra kernel module (and its dependencies) for the
#                       guest's /lib/modules; tests modprobe it themselves
#   --mem MB            guest memory (default 2048)
#   --disk FILE         a virtio-blk drive (the first is /dev/vda, then
#                       vdb, ...), a scratch disk: cache=unsafe, format
#                       qcow2 if FILE ends in .qcow2, else raw.  /init
#                       loads virtio_blk and waits for the drives
#   --append ARGS       more kernel command line (after the runner's own,
#                       so it can override e.g. hung_task_panic=0)
#   --qemu-arg ARG      one more QEMU argument, as it is
#   --qmp SOCKET        a QMP server on the unix socket SOCKET (no wait)
#   --vmgenid GUID|auto a vmgenid device (VM generation ID) with that GUID
#   --savevm-restore    a VM fork: when a test prints "### savevm TAG" on
#                       its output, the runner stops the guest, saves
#                       snapshot TAG to the first --disk (which must be a
#                       .qcow2), ends that QEMU and starts a second one
#                       with the same devices from the snapshot (-loadvm);
#                       with --vmgenid the second one gets a new random
#                       generation ID, as a restored clone of a VM does.
#                       Adds the result guest_savevm_restore
#   --show-console      copy the guest console to stderr while it runs
#   TEST...             test binaries (default: build/tests/kselftest/*)
#
# Environment: GUEST_TIMEOUT and GUEST_TEST_TIMEOUT (the two bounds above),
# GUEST_TCG_THREAD=single|multi (default multi: a host thread per vCPU;
# single runs both vCPUs in turn on one, cheaper when the host's cores are
# taken by other work, as in make check, but the vCPUs then never run at
# the same time: QEMU switches them at a 100 ms kick, HLT and IPIs, so not
# for a run that looks for SMP races or memory-ordering bugs).
#
# Output: TAP on stdout (also DIR/tap.txt), test names prefixed with the
# kernel's major.minor ("6.1:"), a "# KVER: test times: ..." line (each
# binary's time in the guest, longest first; one that never ended shows
# ">Ns unfinished", one without a kernel timestamp "?") and one "# verdict"
# line that names the reason when the run fails.  DIR keeps console.log
# (kernel log, ttyS0), results.log (test output, ttyS1) and the
# initramfs.  Exit status 0 only when every TAP line is "ok".
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)

kver=
timeout=${GUEST_TIMEOUT:-}
test_timeout=${GUEST_TEST_TIMEOUT:-}
out=
show_console=0
mk_args=()
fwds=()
tests=()
mem=2048
disks=()
append=
qemu_extra=()
qmp=
vmgenid=
savevm_restore=0

die() { echo "run-guest: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
	case $1 in
	--kver) kver=$2; shift 2 ;;
	--timeout) timeout=$2; shift 2 ;;
	--test-timeout) test_timeout=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--fio) mk_args+=(--fio); shift ;;
	--net-fwd) fwds+=("$2"); shift 2 ;;
	--add) mk_args+=(--add "$2"); shift 2 ;;
	--tool) mk_args+=(--tool "$2"); shift 2 ;;
	--module) mk_args+=(--module "$2"); shift 2 ;;
	--mem) mem=$2; shift 2 ;;
	--disk) disks+=("$(realpath "$2")"); shift 2 ;;
	--append) append+=" $2"; shift 2 ;;
	--qemu-arg) qemu_extra+=("$2"); shift 2 ;;
	--qmp) qmp=$2; shift 2 ;;
	--vmgenid) vmgenid=$2; shift 2 ;;
	--savevm-restore) savevm_restore=1; shift ;;
	--show-console) show_console=1; shift ;;
	-h|--help) sed -n '3,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	-*) die "unknown option $1" ;;
	*) tests+=("$(realpath "$1")"); shift ;;
	esac
done
[ -n "$kver" ] || die "--kver is required"
debug=0
modroot=
if [ "$kver" = debug ]; then
	dbg=$("$top/scripts/debug-kernel.sh" --print-dir) ||
		die "the debug kernel is not built: run scripts/debug-kernel.sh"
	debug=1
	kver=$(cat "$dbg/release")
	kernel=$dbg/bzImage
	modroot=$dbg/modroot
	mk_args+=(--modroot "$modroot")
	short=$(echo "$kver" | cut -d. -f1-2)-debug
	timeout=${timeout:-5400}
	test_timeout=${test_timeout:-1800}
else
	kernel=/boot/vmlinuz-$kver
	short=$(echo "$kver" | cut -d. -f1-2)
fi
timeout=${timeout:-900}
test_timeout=${test_timeout:-600}
out=${out:-$top/build/results/$kver}

if [ "$savevm_restore" = 1 ] && [[ ${disks[0]:-} != *.qcow2 ]]; then
	die "--savevm-restore needs a first --disk FILE.qcow2 to hold the snapshot"
fi

mkdir -p "$out"
out=$(realpath "$out")
[ "$savevm_restore" = 1 ] && qmp=${qmp:-$out/qmp.sock}
console=$out/console.log
results=$out/results.log
tap=$out/tap.txt
initrd=$out/initramfs.cpio.zst
rm -f "$console" "$results" "$tap" "$out"/qemu*.log "$out/qmp.log"

n=0
failed=0
first_fail=
say() {		# one line to stdout and to tap.txt
	printf '%s\n' "$*"
	printf '%s\n' "$*" >>"$tap"
}
emit() {	# emit ok|not-ok NAME [DIAGNOSTIC]
	local st=$1 name=$2 diag=${3:-}
	n=$((n + 1))
	if [ "$st" = ok ]; then
		say "ok $n $short:$name"
	else
		failed=$((failed + 1))
		say "not ok $n $short:$name"
		[ -n "$diag" ] && say "#   $diag"
		[ -n "$first_fail" ] || first_fail="$short:$name${diag:+ ($diag)}"
	fi
	return 0
}
verdict() {
	say "# verdict $kver: $*"
	say "1..$n"
}

if [ ! -r "$kernel" ]; then
	emit not-ok guest_run_complete "no kernel image $kernel"
	verdict "FAIL: no kernel image $kernel"
	exit 1
fi

t0=$(date +%s.%N)
if [ ${#fwds[@]} -gt 0 ]; then
	mk_args+=(--net)
fi
if [ ${#disks[@]} -gt 0 ]; then
	mk_args+=(--disk)
fi
if ! "$here/mkinitramfs.sh" --kver "$kver" --out "$initrd" "${mk_args[@]}" \
	"${tests[@]}" 2>"$out/mkinitramfs.log"; then
	while IFS= read -r l; do say "# $l"; done <"$out/mkinitramfs.log"
	emit not-ok guest_run_complete "initramfs build failed, see $out/mkinitramfs.log"
	verdict "FAIL: initramfs build failed"
	exit 1
fi
while IFS= read -r l; do say "# $l"; done <"$out/mkinitramfs.log"
t1=$(date +%s.%N)

cmdline="console=ttyS0 panic_on_warn=1 panic=-1 oops=panic softlockup_panic=1"
cmdline+=" hung_task_panic=1 cmk.timeout=$test_timeout"
# The IO-APIC timer check at boot measures ticks against a busy loop; a
# guest under TCG on a loaded host can miss it and panic ("IO-APIC +
# timer doesn't work!": seen on the debug kernel and on Debian's 6.12 in
# tests/boot).  QEMU's timer works.
cmdline+=" no_timer_check"
if [ "$debug" = 1 ]; then
	# Collect every report of the run rather than stop at the first: a
	# WARN, KASAN, UBSAN, soft-lockup or hung-task report fails
	# guest_no_kernel_splat instead (a real hang is still bounded by the
	# test timeout).  kmemleak is scanned by /init after the suite
	# (cmk.kmemleak=1).
	cmdline+=" panic_on_warn=0 softlockup_panic=0 hung_task_panic=0"
	cmdline+=" kasan.fault=report cmk.kmemleak=1"
fi
[ ${#disks[@]} -gt 0 ] && cmdline+=" cmk.disks=${#disks[@]}"

# Both serial files are opened for appending (and were removed above), so
# a guest restored from a snapshot writes on where its parent stopped.
# GUEST_TCG_THREAD: see the top of this file.
tcg_thread=${GUEST_TCG_THREAD:-multi}
case $tcg_thread in
single|multi) ;;
*) die "GUEST_TCG_THREAD must be single or multi, not '$tcg_thread'" ;;
esac
qemu=(qemu-system-x86_64
	-accel "tcg,thread=$tcg_thread" -cpu max -smp 2 -m "$mem"
	-nographic -nodefaults -no-user-config -no-reboot -monitor none
	-kernel "$kernel" -initrd "$initrd"
	-chardev "file,id=ttyS0,path=$console,append=on"
	-serial chardev:ttyS0		# ttyS0: kernel log
	-chardev "file,id=ttyS1,path=$results,append=on"
	-serial chardev:ttyS1		# ttyS1: test results
)
for d in "${disks[@]}"; do
	fmt=raw
	[[ $d == *.qcow2 ]] && fmt=qcow2
	qemu+=(-drive "file=$d,format=$fmt,if=virtio,cache=unsafe")
done
if [ ${#fwds[@]} -gt 0 ]; then
	# Guest 10.0.2.15/24; each forward maps 10.0.2.100:G -> 127.0.0.1:H.
	netdev="user,id=n0,restrict=on"
	for f in "${fwds[@]}"; do
		netdev+=",guestfwd=tcp:10.0.2.100:${f%%=*}-cmd:nc 127.0.0.1 ${f#*=}"
	done
	qemu+=(-netdev "$netdev" -device "virtio-net-pci,netdev=n0")
	cmdline+=" cmk.net=1"
fi
[ -n "$qmp" ] && qemu+=(-qmp "unix:$qmp,server=on,wait=off")
qemu+=("${qemu_extra[@]}")
qemu+=(-append "$cmdline$append")

gen_args=()
[ -n "$vmgenid" ] && gen_args=(-device "vmgenid,id=vmgenid0,guid=$vmgenid")

# run_qemu SECONDS LOG [ARG...]: the guest, bounded, with more QEMU args.
run_qemu() {
	local limit=$1 log=$2
	shift 2
	timeout --kill-after=10 "$limit" "${qemu[@]}" "$@" </dev/null >"$log" 2>&1
}

# A VM fork (--savevm-restore): run the guest until a test prints
# "### savevm TAG", snapshot it into the qcow2 disk and end that QEMU, then
# boot a second QEMU from the snapshot with a new generation ID.  Sets qrc
# and emits guest_savevm_restore.
savevm_restore_run() {
	local deadline=$(($(date +%s) + timeout)) qpid tag="" gen1 gen2 left

	rm -f "$qmp"
	run_qemu "$timeout" "$out/qemu.log" "${gen_args[@]}" &
	qpid=$!
	while kill -0 "$qpid" 2>/dev/null; do
		[ -f "$results" ] && tag=$(tr -d '\r' <"$results" |
		      sed -n 's/^### savevm \([A-Za-z0-9_.-]\{1,\}\)$/\1/p' | head -n 1)
		[ -n "$tag" ] && break
		sleep 0.2
	done
	if [ -z "$tag" ]; then
		wait "$qpid"
		qrc=$?
		emit not-ok guest_savevm_restore "no test printed '### savevm TAG' (qemu rc=$qrc)"
		return 0
	fi
	# Generation IDs as QEMU shows them, for the log.
	if ! "$here/qmp.py" "$qmp" query-vm-generation-id stop "hmp:savevm $tag" \
		quit >"$out/qmp.log" 2>&1; then
		kill "$qpid" 2>/dev/null
		wait "$qpid"
		qrc=$?
		emit not-ok guest_savevm_restore "savevm $tag failed: $(tail -n 1 "$out/qmp.log")"
		return 0
	fi
	wait "$qpid"
	if [ -n "$vmgenid" ]; then
		gen1=$(sed -n 's/^query-vm-generation-id -> {"guid": "\(.*\)"}$/\1/p' "$out/qmp.log")
		gen2=$(cat /proc/sys/kernel/random/uuid)
		gen_args=(-device "vmgenid,id=vmgenid0,guid=$gen2")
		say "# snapshot $tag saved; restoring it with vmgenid ${gen1:-?} -> $gen2"
	else
		say "# snapshot $tag saved; restoring it"
	fi
	left=$((deadline - $(date +%s)))
	[ "$left" -gt 10 ] || left=10
	run_qemu "$left" "$out/qemu-restored.log" -loadvm "$tag" "${gen_args[@]}"
	qrc=$?
	# QEMU exits 1 only on its own errors (a guest's poweroff or panic,
	# with -no-reboot, is 0): a snapshot it could not load.
	if [ "$qrc" = 1 ]; then
		emit not-ok guest_savevm_restore "loadvm $tag failed: $(head -n 1 "$out/qemu-restored.log")"
	else
		emit ok guest_savevm_restore
	fi
}

tail_pid=
if [ "$show_console" = 1 ]; then
	: >"$console"
	tail -F -n +1 "$console" >&2 2>/dev/null &
	tail_pid=$!
fi
set +e
if [ "$savevm_restore" = 1 ]; then
	savevm_restore_run
else
	run_qemu "$timeout" "$out/qemu.log" "${gen_args[@]}"
	qrc=$?
fi
set -e
[ -n "$tail_pid" ] && kill "$tail_pid" 2>/dev/null
t2=$(date +%s.%N)
touch "$console" "$results"

# The serial line may add CRs.
tr -d '\r' <"$results" >"$results.tmp" && mv "$results.tmp" "$results"
tr -d '\r' <"$console" >"$console.tmp" && mv "$console.tmp" "$console"

# --- per-test results --------------------------------------------------

# Module loads done by /init: dm-cmk must load.
rc=$(sed -n 's/^### modprobe dm-cmk rc=\([0-9]*\)$/\1/p' "$results" | head -n 1)
if [ "$rc" = 0 ]; then
	emit ok guest_modprobe_dm_cmk
elif [ -n "$rc" ]; then
	emit not-ok guest_modprobe_dm_cmk "modprobe dm-cmk exited $rc"
	while IFS= read -r l; do say "#   $l"; done < <(grep -m 5 '^modprobe: ' "$results")
else
	emit not-ok guest_modprobe_dm_cmk "the guest never got to load dm-cmk"
fi

# Each test binary's section: re-number its result lines, prefix them with
# the kernel and binary name, and check that it ran to completion.
cur=
plan=
seen=0
diags=()
while IFS= read -r line; do
	case $line in
	"### begin "*)
		cur=${line#\#\#\# begin }
		diags=()
		plan=
		seen=0
		;;
	"### end "*)
		rest=${line#\#\#\# end }
		name=${rest%% *}
		trc=$(echo "$rest" | sed -n 's/.* rc=\([0-9]*\).*/\1/p')
		left=$(echo "$rest" | sed -n 's/.* leftover=\([0-9]*\).*/\1/p')
		why=
		if [ "$trc" = 124 ] || [ "$trc" = 143 ]; then
			why="timed out after ${test_timeout}s"
		elif [ -n "$trc" ] && [ "$trc" -gt 128 ]; then
			why="killed by signal $((trc - 128))"
		elif [ -z "$plan" ]; then
			why="printed no TAP plan (rc=$trc)"
		elif [ "$seen" -ne "$plan" ]; then
			why="planned $plan tests, reported $seen (rc=$trc)"
		elif [ "${left:-0}" -gt 0 ]; then
			why="left $left device-mapper device(s) behind"
		fi
		if [ -z "$why" ]; then
			emit ok "$name:ran_to_completion"
		else
			emit not-ok "$name:ran_to_completion" "$why"
		fi
		cur=
		;;
	*)
		[ -n "$cur" ] || continue
		if [ -z "$plan" ] && [[ $line =~ ^1\.\.([0-9]+) ]]; then
			plan=${BASH_REMATCH[1]}
		elif [[ $line =~ ^(not\ )?ok\ [0-9]+\ (.*)$ ]]; then
			seen=$((seen + 1))
			# "bin:fixture.test", or just "fixture.test" when
			# the harness already names it after the binary.
			tname=${BASH_REMATCH[2]}
			case $tname in "$cur".*) ;; *) tname=$cur:$tname ;; esac
			if [ -z "${BASH_REMATCH[1]}" ]; then
				emit ok "$tname"
			else
				emit not-ok "$tname" "see $results, section $cur"
				for l in "${diags[@]}"; do say "#   $l"; done
			fi
			diags=()
		elif [[ $line =~ ^#\ (.*)$ ]]; then
			# the test's last words before its result
			diags+=("${BASH_REMATCH[1]:0:200}")
			[ ${#diags[@]} -le 6 ] || diags=("${diags[@]:1}")
		fi
		;;
	esac
done <"$results"
if [ -n "$cur" ]; then
	emit not-ok "$cur:ran_to_completion" "never finished (guest died or timed out while it ran)"
fi

# --- guest-level verdict ------------------------------------------------

reason=
# Kernel log lines that mean the kernel is broken.  The command line and
# /init's own markers are not searched (they name options and tests).
# Lockdep's reports are "WARNING:" or "BUG:" lines; the three after
# them are its others, and the last two say lock debugging went off (a
# taint), after which a run would pass unchecked.  Not the bare word: a
# stack dump (sysrq w) has lockdep_* frames where nothing is wrong.
splat_re='WARNING:|BUG:|Oops|Kernel panic|general protection fault|DEBUG_LOCKS_WARN_ON|trying to register non-static key|turning off the locking correctness validator|Disabling lock debugging|lock debugging disabled|possible circular locking|KASAN|UBSAN|hung_task|blocked for more than|soft lockup|rcu_sched self-detected stall|rcu: INFO'
# Nor are the debug kernel's own banners ("rcu: RCU lockdep checking is
# enabled.").
benign_re='[Cc]ommand line:|RCU lockdep checking is enabled'
grep -v -E -e "$benign_re" -e 'cmk-guest: ' "$console" >"$out/console.search" || true
splat=$(grep -m 1 -E "$splat_re" "$out/console.search" || true)
# The test that was running at the first splat, from /init's kmsg markers.
during=$(awk -v re="$splat_re" -v benign="$benign_re" '
	$0 ~ benign { next }
	/cmk-guest: begin / { t = $0; sub(/.*cmk-guest: begin /, "", t); next }
	/cmk-guest: end / { t = ""; next }
	$0 ~ re { print t; exit }' "$console")

if grep -q '^### done' "$results"; then
	emit ok guest_run_complete
elif [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
	reason="guest timed out after ${timeout}s"
	emit not-ok guest_run_complete "$reason"
elif [ -n "$splat" ]; then
	reason="guest died${during:+ during $during}: $splat"
	emit not-ok guest_run_complete "$reason"
else
	reason="guest stopped without the done marker (qemu rc=$qrc, see $out/qemu.log)"
	emit not-ok guest_run_complete "$reason"
fi

if [ -z "$splat" ]; then
	emit ok guest_no_kernel_splat
else
	emit not-ok guest_no_kernel_splat "${during:+during $during: }$splat (see $console)"
	while IFS= read -r l; do say "#     $l"; done < <(grep -m 1 -E -A 24 "$splat_re" "$out/console.search")
	[ -n "$reason" ] || reason="kernel splat${during:+ during $during}: $splat"
fi

# Every splat of the run (the debug kernel goes on after a report), with
# the test that was running, also kept in DIR/splats.txt.
awk -v re="$splat_re" -v benign="$benign_re" '
	$0 ~ benign { next }
	/cmk-guest: begin / { t = $0; sub(/.*cmk-guest: begin /, "", t); next }
	/cmk-guest: end / { t = ""; next }
	/cmk-guest: kmemleak scanned/ { t = "after the kmemleak scan"; next }
	/cmk-guest: kmemleak scan/ { t = "kmemleak scan"; next }
	$0 ~ re { sub(/^\[ *[0-9.]+\] /, ""); print "[" (t == "" ? "-" : t) "] " $0 }' \
	"$console" >"$out/splats.txt"
if [ -s "$out/splats.txt" ]; then
	say "# $(wc -l <"$out/splats.txt") kernel log line(s) match a splat, by test:"
	while IFS= read -r l; do say "#   $l"; done < <(head -n 60 "$out/splats.txt")
fi

# kmemleak (debug kernel): leaked objects whose allocation backtrace runs
# through dm-cmk or the crypto API it uses fail the run; the others (the
# kernel's own, e.g. from early boot) are only counted.
if [ "$debug" = 1 ]; then
	sed -n '/^### kmemleak begin$/,/^### kmemleak end$/p' "$results" |
		sed '1d;$d' >"$out/kmemleak.txt"
	awk '
		/^unreferenced object/ { if (rec != "") flush(); rec = $0 "\n"; next }
		{ rec = rec $0 "\n" }
		END { if (rec != "") flush() }
		function flush() {
			if (rec ~ /\[dm_cmk\]|[ <]cmk_|crypto_|skcipher|xts|aesni|aes_/)
				printf "%s", rec > ours
			else
				other++
			rec = ""
		}
		END { print other + 0 > count }' \
		ours="$out/kmemleak-dm-cmk.txt" count="$out/kmemleak-other.count" \
		"$out/kmemleak.txt"
	touch "$out/kmemleak-dm-cmk.txt"
	ours=$(grep -c '^unreferenced object' "$out/kmemleak-dm-cmk.txt" || true)
	if ! grep -q '^### kmemleak begin$' "$results"; then
		emit not-ok guest_kmemleak_dm_cmk "no kmemleak scan (the run did not finish, or no /sys/kernel/debug/kmemleak)"
	elif [ "$ours" -eq 0 ]; then
		emit ok guest_kmemleak_dm_cmk
	else
		emit not-ok guest_kmemleak_dm_cmk "$ours leaked object(s) allocated by dm-cmk or its crypto (see $out/kmemleak-dm-cmk.txt)"
		while IFS= read -r l; do say "#     $l"; done < <(head -n 40 "$out/kmemleak-dm-cmk.txt")
		[ -n "$reason" ] || reason="kmemleak: $ours object(s) of dm-cmk leaked"
	fi
	say "# kmemleak: $(cat "$out/kmemleak-other.count") other unreferenced object(s), not dm-cmk's (see $out/kmemleak.txt)"
fi

taint=$(sed -n 's/^### tainted \([0-9]*\)$/\1/p' "$results")
if [ -z "$taint" ]; then
	emit not-ok guest_taint_clean "no taint value (the run did not finish)"
elif [ $((taint & ~(4096 | 8192))) -eq 0 ]; then
	emit ok guest_taint_clean
else
	emit not-ok guest_taint_clean "tainted=$taint (bits other than O=4096, E=8192)"
	[ -n "$reason" ] || reason="kernel tainted $taint"
fi

# Each test binary's time, from /init's kmsg markers and the kernel's
# timestamps, longest first: where the guest's minutes go.
# A test that never ended (the guest died or timed out in it) gets the
# time up to the last timestamp seen, marked unfinished.
times=$(awk '
	function ts(l) { return match(l, /^\[ *[0-9]+\.[0-9]+\]/) ? substr(l, 2, RLENGTH - 2) + 0 : -1 }
	function open_end() {
		if (t == "") return
		if (s >= 0 && last >= s) printf "%s %.0f unfinished\n", t, last - s
		else printf "%s ? unfinished\n", t
	}
	{ x = ts($0); if (x >= 0) last = x }
	/cmk-guest: begin / { open_end(); t = $0; sub(/.*cmk-guest: begin /, "", t); s = x; next }
	/cmk-guest: end / && t != "" { if (s >= 0 && x >= 0) printf "%s %.0f\n", t, x - s; else printf "%s ?\n", t; t = "" }
	END { open_end() }' "$console" | sort -k2,2nr -k1,1 |
	awk '{ printf "%s%s %s%s%s%s", (NR > 1 ? ", " : ""), $1, ($3 == "" || $2 == "?" ? "" : ">"), $2,
		($2 == "?" ? "" : "s"), ($3 == "" ? "" : " unfinished") }')
[ -z "$times" ] || say "# $kver: test times: $times"

boot=$(sed -n 's/^### init \([0-9.]*\)$/\1/p' "$results")
build_s=$(awk "BEGIN{printf \"%.1f\", $t1 - $t0}")
run_s=$(awk "BEGIN{printf \"%.1f\", $t2 - $t1}")
say "# $kver: initramfs ${build_s}s, guest ${run_s}s wall (/init reached at ${boot:-?}s guest uptime)"

if [ "$failed" -eq 0 ]; then
	verdict "PASS ($n ok, guest ${run_s}s)"
	exit 0
fi
if [ -z "$reason" ]; then
	reason="$failed test(s) failed, first: $first_fail"
fi
verdict "FAIL: $reason"
exit 1

#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# guest_bench.sh - the in-guest half of "make bench" (scripts/bench/bench.sh
# is the host half).  Runs inside the QEMU guest as a test executable and
# prints TAP plus machine-readable result lines that the host parses:
#
#   BENCH ceil <sector> <threads> <run> <MiB/s> <driver>
#   BENCH tcrypt <run> <bytes> <ms/MiB> <driver>   tcrypt's xts(aes) decryption, 512-bit key
#   BENCH dev <config> <major:minor> <target> <cipher|->   what is about to be timed
#   BENCH driver <dev> <config> <driver>
#   BENCH dd <run> <config> <MiB/s> <busy vCPUs> <ctxsw/MiB>
#   BENCH mode <run> <decrypting|not-decrypting|unchecked> <crypt MiB/s> <bound MiB/s> <cipher calls/MiB|->
#   BENCH fio <dev> <config> <run> <workload> <KiB/s> <IOPS>
#   BENCH busy <dev> <config> <run> <workload> <busy vCPUs>   in fio's steady window
#   BENCH agent <run> <boot_to_usable_ms> <revoke_to_wipe_ms>
#   BENCH prof <dev> <config> <workload> mib_s <MiB/s>
#   BENCH prof <dev> <config> <workload> cat <idle|cipher|copy|fio|kernel> <%>
#   BENCH prof <dev> <config> <workload> sym <%> <symbol>
#   BENCH info <key> <value>
#   BENCH time <phase> <ms>           wall time of a phase, for tuning
#
# Settings come from /etc/cmk-bench.conf (shell variables, written by the
# host): RUNS RUNTIME RAMP DEVS CONFIGS AGENT_RUNS SIZE_MB PROFILE
# ONLY_WORKLOADS PROF_DEVS PROF_WORKLOADS.  Every dm device this script
# creates is removed again.
set -u
RUNS=3 RUNTIME=400ms RAMP=50ms DEVS="brd nullb" AGENT_RUNS=5 SIZE_MB=64
PROFILE=1
PROF_CONFIGS="crypt crypt-nowq cmk"	# bench.sh's time bound counts 3
PROF_DEVS=brd
PROF_WORKLOADS="seqwrite-1m-qd32 seqread-1m-qd32 seqread-128k-qd1 randread-4k-qd32-j1"
CONFIGS="linear crypt crypt-nowq crypt-4k cmk cmk-4k cmk-nowq cmk-nowq-4k"
# shellcheck disable=SC1091
[ -r /etc/cmk-bench.conf ] && . /etc/cmk-bench.conf

n=0
ok() { n=$((n + 1)); echo "ok $n $1"; }
nok() { n=$((n + 1)); echo "not ok $n $1"; shift; for l in "$@"; do echo "# $l"; done; }
ms() { awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime; }
DM=cmkb-dev
sectors=$((SIZE_MB * 2048))

echo "BENCH info kernel $(uname -r)"
echo "BENCH info vcpus $(nproc)"
echo "BENCH info runs $RUNS"
echo "BENCH info runtime $RUNTIME"
echo "BENCH info ramp $RAMP"

# One random key for the whole run, shared by dm-crypt and dm-cmk so both
# do the same work; it lives on tmpfs in a throw-away guest and is never
# printed.
umask 077
dd if=/dev/urandom of=/run/bench.key bs=64 count=1 2>/dev/null
keyhex=$(od -An -v -tx1 /run/bench.key | tr -d ' \n')

# --- backing devices ------------------------------------------------------

backing() {
	case $1 in
	brd) echo /dev/ram0 ;;
	nullb) echo /dev/nullb0 ;;
	nbtimer) echo /dev/nbtimer ;;	# configfs names the disk
	esac
}
drop_dev() {	# drop_dev NAME: leave a device that did not load out of DEVS
	DEVS=$(echo " $DEVS " | sed "s/ $1 / /; s/^ *//; s/ *\$//")
}
# nbtimer: a second null_blk, made through configfs, that completes every
# bio from a timer set to 10 us (irqmode=2), as a real disk completes from
# its interrupt: the queue depth shows as bios in flight, and reads
# complete in hard-irq context.  brd and nullb complete inside
# submit_bio().  Opt-in (BENCH_DEVS="brd nullb nbtimer").
nbtimer_make() {
	c=/sys/kernel/config/nullb/nbtimer
	grep -q " /sys/kernel/config " /proc/mounts ||
		mount -t configfs none /sys/kernel/config || return 1
	[ -d /sys/kernel/config/nullb ] || return 1
	mkdir "$c" || return 1
	echo 1024 >"$c/size" && echo 1 >"$c/memory_backed" &&
		echo 2 >"$c/queue_mode" && echo 2 >"$c/irqmode" &&
		echo 10000 >"$c/completion_nsec" && echo 1 >"$c/power" ||
		return 1
	# devtmpfs makes the node; without it, from sysfs
	if [ ! -b /dev/nbtimer ] && [ -r /sys/block/nbtimer/dev ]; then
		IFS=: read -r maj min </sys/block/nbtimer/dev
		mknod /dev/nbtimer b "$maj" "$min"
	fi
	[ -b /dev/nbtimer ]
}
for d in $DEVS; do
	case $d in
	nullb|nbtimer)
		# memory-backed null_blk (DESIGN.md §8); the module first,
		# with nullb0 for "nullb" (none if only nbtimer is asked for)
		nb=0
		echo " $DEVS " | grep -q ' nullb ' && nb=1
		if ! [ -d /sys/module/null_blk ] &&
		   ! modprobe null_blk nr_devices=$nb memory_backed=1 gb=1 \
			queue_mode=2 irqmode=0 >/tmp/nb.err 2>&1; then
			nok "bench_${d}_loaded" "$(cat /tmp/nb.err)"
			drop_dev "$d"
			continue
		fi
		if [ "$d" = nbtimer ] && ! nbtimer_make >/tmp/nb.err 2>&1; then
			nok "bench_nbtimer_loaded" "configfs: $(cat /tmp/nb.err)"
			drop_dev nbtimer
			continue
		fi
		if [ -b "$(backing "$d")" ]; then
			ok "bench_${d}_loaded"
		else
			nok "bench_${d}_loaded" "no $(backing "$d")"
			drop_dev "$d"
			continue
		fi ;;
	esac
	# Allocate every backing page now, so reads in every config hit
	# real memory rather than brd's/null_blk's holes.
	dd if=/dev/zero of="$(backing "$d")" bs=1M count="$SIZE_MB" \
		oflag=direct 2>/dev/null
done

# --- the cipher alone, in the kernel ------------------------------------

# cmk_cipher_bench.ko (tests/bench/kmod) decrypts one sector per request
# on every vCPU, as dm-crypt and dm-cmk call the cipher: the ceiling that
# dm-linear, dm-crypt and dm-cmk are reported as fractions of.
ceil_ms() {	# RUNTIME ("400ms", "2", "2s") in ms
	case $RUNTIME in
	*ms) echo "${RUNTIME%ms}" ;;
	*) awk -v t="${RUNTIME%s}" 'BEGIN { printf "%d\n", t * 1000 }' ;;
	esac
}
ceil() {	# ceil SECTOR THREADS RUN: one BENCH ceil line; 1 on failure
	insmod /root/cmk_cipher_bench.ko sector="$1" threads="$2" \
		ms="$(ceil_ms)" >/tmp/ceil.err 2>&1 || return 1
	rmmod cmk_cipher_bench
	dmesg | grep 'cmk_cipher_bench: ' | tail -n 1 | awk -v r="$3" '{
		for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
		printf "BENCH ceil %s %s %s %s %s\n", v["sector"], v["threads"],
			r, v["mib_s"], v["driver"] }' | tee -a /tmp/ceil.all
}
: >/tmp/ceil.all
cipher_ok=1
ceil_run() {	# ceil_run RUN: the four ceilings, measured next to the run
	tc=$(ms)
	for sz in 512 4096; do
		for th in 1 "$(nproc)"; do
			ceil "$sz" "$th" "$1" || { cipher_ok=0; sed 's/^/# /' /tmp/ceil.err; }
		done
	done
	echo "BENCH time cipher-$1 $(($(ms) - tc))"
}
# The most the cipher can do in this run: the number of vCPUs times its
# best one-vCPU rate (either sector size).  Not the rate measured on every
# vCPU at once: on a loaded host that one can fall below the one-vCPU rate.
ceil_best() {	# ceil_best RUN
	awk -v n="$(nproc)" -v r="$1" '$4 == 1 && $5 == r && $6 + 0 > m {
		m = $6 + 0 } END { print n * m }' /tmp/ceil.all 2>/dev/null || echo 0
}

# tcrypt (Debian's crypto/tcrypt.ko), the kernel's own cipher speed test:
# mode 500 with sec=0 times 8 requests of each size after 4 warm-up ones
# in TSC cycles (under TCG the host's), on the transform dm-crypt gets
# (async xts(aes), the highest priority driver).  Kept: the 512-bit key
# (AES-256-XTS, the bench's 64-byte key) decryption at 1024 and 4096
# bytes (tcrypt has no 512), as ms of one vCPU per MiB, the lowest of
# three loads in this run: a sample the host's load preempted only reads
# slower, and on a busy host one did, 8x.  Loading it "fails" (EAGAIN)
# by design once the tests ran.
tsc_khz=$(dmesg | sed -n 's/.*tsc: Refined TSC clocksource calibration: \([0-9.]*\) MHz.*/\1/p; s/.*tsc: Detected \([0-9.]*\) MHz processor.*/\1/p' |
	tail -n 1 | awk '{ printf "%d", $1 * 1000 }')
tcrypt_ok=1
tcrypt_after() {	# tcrypt_after MARK: the kernel log after the line MARK
	dmesg | awk -v mark="$1" '
		substr($0, length($0) - length(mark) + 1) == mark { on = 1; next }
		on'
}
tcrypt_run() {	# tcrypt_run RUN: BENCH tcrypt lines; 1 when none
	tc=$(ms)
	: >/tmp/tc.log
	# Algorithms tcrypt lacks fail at once instead of each waiting for
	# a modprobe (~1 s under TCG; xts and aesni_intel are loaded).
	kmod=$(cat /proc/sys/kernel/modprobe)
	echo /bin/false >/proc/sys/kernel/modprobe
	# One load at a time: three of 6.1's outrun its 128 KiB kernel log.
	for i in 1 2 3; do
		echo "cmk-bench: tcrypt run $1.$i" >/dev/kmsg
		modprobe tcrypt mode=500 sec=0 >/tmp/tc.err 2>&1
		tcrypt_after "cmk-bench: tcrypt run $1.$i" >>/tmp/tc.log
	done
	echo "$kmod" >/proc/sys/kernel/modprobe
	awk -v k="${tsc_khz:-0}" -v r="$1" '
		/testing speed of async xts\(aes\) \(.*\) decryption/ {
			dec = 1; d = $0; sub(/.*xts\(aes\) \(/, "", d); sub(/\).*/, "", d)
			next }
		/testing speed/ { dec = 0 }
		dec && /512 bit key/ && /cycles/ {
			if (!match($0, /[0-9]+ byte blocks/)) next
			b = substr($0, RSTART, RLENGTH) + 0
			match($0, /in [0-9]+ cycles/)
			c = substr($0, RSTART + 3, RLENGTH - 10) + 0
			if ((b == 1024 || b == 4096) && (!(b in m) || c < m[b])) m[b] = c
		}
		END { for (b in m) if (k > 0)
			printf "BENCH tcrypt %s %d %.2f %s\n", r, b, m[b] * 1048576 / b / k, d }' \
		/tmp/tc.log | sort -k4n | tee /tmp/tcrypt.line
	echo "BENCH time tcrypt-$1 $(($(ms) - tc))"
	[ -s /tmp/tcrypt.line ] || { echo "# tcrypt gave no xts(aes) line (tsc ${tsc_khz:-?} kHz): $(tail -n 1 /tmp/tc.err)"; return 1; }
}

# --- which driver a target holds --------------------------------------------

# The xts(aes) implementation whose /proc/crypto refcnt the target's
# creation raised (dm-crypt's transform, or dm-cmk's once its key is set).
refcnts() {
	awk -v RS= '/name *: xts\(aes\)/' /proc/crypto |
		awk '/^driver/ { d = $3 } /^refcnt/ { print d, $3 }' | sort
}
driver_delta() {	# driver_delta BEFORE AFTER: the drivers whose count rose
	d=$(awk 'FILENAME == ARGV[1] { a[$1] = $2; next }
		!($1 in a) || $2 > a[$1] { print $1 }' "$1" "$2" | paste -sd, -)
	echo "${d:-none}"
}

# --- the mode check: a plain read, timed another way --------------------------

# Each repeat reads the whole device once through dm-linear, dm-crypt
# default and dm-cmk default with dd (O_DIRECT, 128 KiB) timed by
# /proc/uptime: a second method beside fio, after dm_check (below) has
# shown each path to be a dm device of that target.  busy = vCPUs
# neither idle nor in iowait.  A read
# through dm-crypt more than 1.5x what the cipher can do on all vCPUs
# (ceil_best, measured just before; 1.5x because the host's load moves
# rates within a run; the fast mode of issue 18 was ~3x) did not decrypt
# what it read: that run is "not-decrypting" and its numbers are kept
# apart.
notbusy() { awk '/^cpu /{ print $5 + $6 }' /proc/stat; }
ctxt() { awk '/^ctxt/{ print $2 }' /proc/stat; }
ut() { cut -d' ' -f1 /proc/uptime; }
# A read that did not happen must not become a rate: without the node,
# "/dev/mapper/NAME" on the guest's tmpfs /dev may be a regular file that
# 6.6+ reads with O_DIRECT at memory speed (issue 18), and a failed open
# takes no time at all.
dd_read() {	# dd_read RUN CONFIG DEV: one BENCH dd line; MiB/s in /tmp/dd.rate; 1 on failure
	: >/tmp/dd.rate
	dm_check "$2" "$3" || return 1
	t0=$(ut); i0=$(notbusy); c0=$(ctxt)
	if ! dd if="$3" of=/dev/null bs=128k count=$((SIZE_MB * 8)) \
		iflag=direct 2>/tmp/dd.err; then
		echo "# dd $2 of $3 failed: $(tail -n 1 /tmp/dd.err)"
		return 1
	fi
	t1=$(ut); i1=$(notbusy); c1=$(ctxt)
	awk -v r="$1" -v c="$2" -v m="$SIZE_MB" -v a="$t0" -v b="$t1" \
		-v i=$((i1 - i0)) -v x=$((c1 - c0)) -v n="$(nproc)" 'BEGIN {
		d = b - a; if (d <= 0) d = 0.01
		printf "BENCH dd %s %s %.1f %.2f %.0f\n", r, c, m / d,
			n - i / 100 / d, x / m }' | tee /tmp/dd.line
	awk '{ print $5 }' /tmp/dd.line >/tmp/dd.rate
}
# What is about to be timed must be the device the label says: a block
# device whose major:minor is a device-mapper device with the expected
# target (and cipher).  Only the target and cipher fields of its table
# are printed: a crypt table carries the key.
dm_check() {	# dm_check CONFIG DEV: one BENCH dev line; 1 (and why) if it is not
	if [ ! -b "$2" ]; then
		echo "# $1: $2 is not a block device ($(stat -c %F "$2" 2>/dev/null || echo missing))"
		return 1
	fi
	mm=$(stat -L -c '%t %T' "$2")
	maj=$((0x${mm% *})) min=$((0x${mm#* }))
	want=${1%%-*}
	got=$(dmsetup table -j "$maj" -m "$min" 2>/dev/null |
		awk '{ print $3, ($3 == "crypt" || $3 == "cmk") ? $4 : "-"; exit }')
	echo "BENCH dev $1 $maj:$min ${got:-none}"
	case "$want:$got" in
	linear:"linear -"|crypt:"crypt aes-xts-plain64"|cmk:"cmk aes-xts-plain64") return 0 ;;
	esac
	echo "# $1: $2 ($maj:$min) is '${got:-not a device-mapper device}', not a $want target"
	return 1
}
# The mode is decided by evidence, not speed: the calls of
# crypto_skcipher_decrypt() (every skcipher request, whatever the driver;
# a SIMD wrapper adds a second call for its inner one) while dm-crypt's
# first COUNT_MB MiB are read again right after the timed read, per MiB,
# from a kprobe's hit count.  A read that decrypted its 512-byte sectors
# makes at least 2048 calls per MiB.  The speed bound stays as a warning.
# Without the count, the speed decides, and without a cipher rate either
# (bound 0) the run is "unchecked": fail closed.
# The probe is armed for that read only, and tracing is off (the hit count
# still counts): armed with tracing on, it put a trace event (the global
# trace clock, the ring buffer) on every decryption, 4-11 % of the guest's
# CPU time in the read profiles when it stayed armed through the fio runs.
COUNT_MB=8
[ "$SIZE_MB" -lt "$COUNT_MB" ] && COUNT_MB=$SIZE_MB
T=/sys/kernel/tracing
[ -d $T/events ] || mount -t tracefs tracefs $T 2>/dev/null
echo 0 >$T/tracing_on 2>/dev/null
# No task names recorded: that registers (and on disarm removes) hooks on
# the scheduler's tracepoints, which patches __schedule() while the other
# vCPU runs it; under TCG that once left a vCPU looping in the int3 handler
# and the guest in a soft lockup (2026-12-06).
echo 0 >$T/options/record-cmd 2>/dev/null
KP=$T/events/kprobes/kp_bench_dec/enable
if echo 'p:kp_bench_dec crypto_skcipher_decrypt' >>$T/kprobe_events 2>/dev/null &&
	echo 1 >$KP 2>/dev/null && echo 0 >$KP; then
	ok bench_mode_kprobe
else
	nok bench_mode_kprobe "no kprobe on crypto_skcipher_decrypt: the mode falls back to the speed bound"
fi
dec_calls() { awk '$1 == "kp_bench_dec" { print $2 }' $T/kprobe_profile 2>/dev/null; }
probe() {	# probe 1|0: arm or disarm; 1 if that failed
	[ -w "$KP" ] && echo "$1" >"$KP" 2>/dev/null && return 0
	echo "# mode check: could not write $1 to the kprobe's enable"
	return 1
}
mode_check() {	# mode_check RUN DEV
	bound=$(awk -v c="$(ceil_best "$1")" 'BEGIN { printf "%.1f", 1.5 * c }')
	calls=-
	crypt=
	for c in linear crypt cmk; do
		refcnts >/tmp/rc0
		table "$c" "$2" | dmsetup create "$DM" --noudevsync || return 1
		dmsetup mknodes "$DM" 2>/dev/null
		if [ "$c" = cmk ] && ! cmk_bench setkey bench /run/bench.key >/tmp/dm.err 2>&1; then
			echo "# mode check: $(cat /tmp/dm.err)"
			dmsetup remove "$DM"
			return 1
		fi
		refcnts >/tmp/rc1
		echo "BENCH driver dd $c $(driver_delta /tmp/rc0 /tmp/rc1)"
		rc=0
		dd_read "$1" "$c" "/dev/mapper/$DM" || rc=1
		# Counted apart from the timed read, so that no timed read
		# pays for the probe: the first COUNT_MB MiB again, probed.
		if [ "$c" = crypt ] && [ "$rc" = 0 ] && probe 1; then
			k0=$(dec_calls)
			if ! dd if="/dev/mapper/$DM" of=/dev/null bs=128k iflag=direct \
				count=$((COUNT_MB * 8)) 2>/tmp/dd.err; then
				echo "# counted dd of $c failed: $(tail -n 1 /tmp/dd.err)"
				rc=1
			fi
			k1=$(dec_calls)
			probe 0 || rc=1
			if [ -n "$k0" ] && [ -n "$k1" ]; then
				calls=$(( (k1 - k0) / COUNT_MB ))
			fi
		fi
		[ "$c" = crypt ] && crypt=$(cat /tmp/dd.rate)
		dmsetup remove "$DM" >/dev/null 2>&1 || { sleep 1; dmsetup remove "$DM"; }
		[ "$rc" = 0 ] || return 1
	done
	fast=0
	awk -v r="$crypt" -v b="$bound" 'BEGIN { exit !(b > 0 && r > b) }' && fast=1
	if [ "$calls" != - ]; then
		if [ "$calls" -ge 2048 ]; then mode=decrypting; else mode=not-decrypting; fi
	elif awk -v b="$bound" 'BEGIN { exit !(b > 0) }'; then
		if [ "$fast" = 1 ]; then mode=not-decrypting; else mode=decrypting; fi
	else
		mode=unchecked
	fi
	echo "BENCH mode $1 $mode $crypt $bound $calls"
	[ "$mode" = decrypting ] ||
		echo "# run $1: dm-crypt read $crypt MiB/s with $calls cipher calls/MiB (bound $bound MiB/s): $mode"
	[ "$fast" = 1 ] && [ "$mode" = decrypting ] &&
		echo "# run $1: WARNING: dm-crypt read $crypt MiB/s, over the cipher's bound $bound, though it called the cipher $calls times/MiB"
	[ "$bound" != 0.0 ] || echo "# run $1: WARNING: no cipher rate (cmk_cipher_bench failed): no speed bound"
	return 0
}

# --- fio ------------------------------------------------------------------

# One fio invocation per configuration, each workload a stonewalled group
# of its own: fio's start-up alone (loading its ~80 MB of libraries) is
# ~0.5 s under TCG, a third of a 500 ms point.  An earlier note saw grouped
# runs slow down with dm-crypt's workqueues on 6.1; measured again with the
# same workloads one by one and grouped, in the same guest, the difference
# was within the run-to-run noise (both directions, up to 2x) and the
# grouped run took half the time.
WORKLOADS=
for rw in write read; do
	for bs in 1m 128k; do
		for qd in 1 32; do
			WORKLOADS="$WORKLOADS seq$rw-$bs-qd$qd"
		done
	done
done
for rw in write read; do
	for qd in 1 32; do
		for j in 1 2; do
			WORKLOADS="$WORKLOADS rand$rw-4k-qd$qd-j$j"
		done
	done
done
# BENCH_WORKLOADS on the host: a subset, in the order above
if [ -n "${ONLY_WORKLOADS:-}" ]; then
	sel=
	for wl in $WORKLOADS; do
		case " $ONLY_WORKLOADS " in
		*" $wl "*) sel="$sel $wl" ;;
		esac
	done
	WORKLOADS=$sel
	echo "BENCH info workloads$WORKLOADS"
	if [ -z "$sel" ]; then
		nok bench_workloads_known "none of ONLY_WORKLOADS ($ONLY_WORKLOADS) is a workload of this script"
	fi
fi

# Busy vCPUs in each job's steady window: fio runs /tmp/busy_mark just
# before a job starts (exec_prerun), and it reads /proc/stat twice in the
# background, after the ramp and a margin, and a margin before the job
# ends, so fio's start-up, ramp and exit stay outside.  With fio's rate
# over the runtime (the window lies inside it) this gives the vCPU time
# per MiB, measured apart from the rate's own clock.  busy = user, nice, system, irq and softirq
# time; one sampler per workload (the first job of a numjobs=2 group).
# Only for points of 1 s or more: at 300-400 ms the sleeps' lateness
# under TCG exceeds the 50 ms margin, and most readings are dropped.
secs() { awk -v t="$1" 'BEGIN { m = 1; if (t ~ /ms$/) m = 0.001
	else if (t ~ /us$/) m = 0.000001; else if (t ~ /m$/) m = 60
	else if (t ~ /h$/) m = 3600; printf "%.3f\n", (t + 0) * m }'; }
busy_setup() {
	rt=$(secs "$RUNTIME")
	BUSY=0
	awk -v r="$rt" 'BEGIN { exit !(r >= 1) }' || return 0
	BUSY=1
	margin=$(awk -v r="$rt" 'BEGIN { m = r / 10; if (m < 0.05) m = 0.05; print m }')
	start=$(awk -v a="$(secs "$RAMP")" -v m="$margin" 'BEGIN { print a + m }')
	len=$(awk -v r="$rt" -v m="$margin" 'BEGIN { print r - 2 * m }')
	cat >/tmp/busy_mark <<-EOF
	#!/bin/sh
	mkdir /tmp/busy.d/\$1 2>/dev/null || exit 0
	read -r t _ </proc/uptime
	echo "P \$1 \$t" >>/tmp/busy.log
	s() {
		read -r _ u n y i w q sq _ </proc/stat
		read -r t _ </proc/uptime
		echo "S \$1 \$t \$((u + n + y + q + sq))"
	}
	(sleep $start; s "\$1"; sleep $len; s "\$1") </dev/null >>/tmp/busy.log 2>>/tmp/busy.err &
	EOF
	chmod +x /tmp/busy_mark
}
busy_reset() { rm -rf /tmp/busy.d /tmp/busy.log /tmp/busy.err; mkdir /tmp/busy.d; }
busy_lines() {	# busy_lines DEV CONFIG RUN: BENCH busy lines, after fio
	# the last job's second reading is due a margin before fio ended
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		got=$(grep -c '^S ' /tmp/busy.log 2>/dev/null)
		[ "${got:-0}" -ge $((2 * $(echo "$WORKLOADS" | wc -w))) ] && break
		sleep 0.5
	done
	[ -s /tmp/busy.err ] && sed 's/^/# busy_mark: /' /tmp/busy.err | head -n 3
	# a window much shorter than asked for (a sleep that failed), longer
	# by more than the margin, or ending after the job (a stalled guest)
	# gives no reading rather than a wrong one
	awk -v d="$1" -v c="$2" -v r="$3" -v len="$len" -v m="$margin" \
		-v end="$(awk -v a="$start" -v b="$len" -v m="$margin" 'BEGIN { print a + b + m }')" '
	$1 == "P" && NF == 3 && !($2 in p) { p[$2] = $3; next }
	$1 == "S" && NF == 4 {
		if (!($2 in t0)) { t0[$2] = $3; b0[$2] = $4; next }
		if (done[$2]++ || !($2 in p)) next
		dt = $3 - t0[$2]
		if (dt < 0.8 * len || dt > len + m || $3 > p[$2] + end) next
		printf "BENCH busy %s %s %s %s %.2f\n", d, c, r, $2,
			($4 - b0[$2]) / 100 / dt
	}' /tmp/busy.log 2>/dev/null
}
busy_setup

jobfile() {	# jobfile: one fio job file with every workload, on stdout
	printf '[global]\nfilename=/dev/mapper/%s\nioengine=libaio\ndirect=1\n' "$DM"
	printf 'time_based=1\nruntime=%s\nramp_time=%s\ngroup_reporting=1\nrandrepeat=0\n' \
		"$RUNTIME" "$RAMP"
	for wl in $WORKLOADS; do
		rw=${wl%%-*}
		rest=${wl#*-}
		bs=${rest%%-*}
		qd=${rest#*-qd}
		qd=${qd%%-*}
		case $wl in
		*-j2) nj=2 ;;
		*) nj=1 ;;
		esac
		case $rw in
		seqread) rw='read' ;;
		seqwrite) rw='write' ;;
		esac
		printf '[%s]\nstonewall\nrw=%s\nbs=%s\niodepth=%s\nnumjobs=%s\n' \
			"$wl" "$rw" "$bs" "$qd" "$nj"
		if [ "${BUSY:-0}" = 1 ]; then
			printf 'exec_prerun=/tmp/busy_mark %s\n' "$wl"
		fi
	done
}

table() {	# table CONFIG DEVICE
	case $1 in
	linear) echo "0 $sectors linear $2 0" ;;
	crypt) echo "0 $sectors crypt aes-xts-plain64 $keyhex 0 $2 0" ;;
	crypt-nowq) echo "0 $sectors crypt aes-xts-plain64 $keyhex 0 $2 0 2 no_read_workqueue no_write_workqueue" ;;
	crypt-4k) echo "0 $sectors crypt aes-xts-plain64 $keyhex 0 $2 0 1 sector_size:4096" ;;
	crypt-nowq-4k) echo "0 $sectors crypt aes-xts-plain64 $keyhex 0 $2 0 3 no_read_workqueue no_write_workqueue sector_size:4096" ;;
	cmk) echo "0 $sectors cmk aes-xts-plain64 bench 0 $2 0" ;;
	cmk-4k) echo "0 $sectors cmk aes-xts-plain64 bench 0 $2 0 1 sector_size:4096" ;;
	cmk-nowq) echo "0 $sectors cmk aes-xts-plain64 bench 0 $2 0 2 no_read_workqueue no_write_workqueue" ;;
	cmk-nowq-4k) echo "0 $sectors cmk aes-xts-plain64 bench 0 $2 0 3 no_read_workqueue no_write_workqueue sector_size:4096" ;;
	cmk-wq) echo "0 $sectors cmk aes-xts-plain64 bench 0 $2 0 1 force_workqueue" ;;
	cmk-wq-4k) echo "0 $sectors cmk aes-xts-plain64 bench 0 $2 0 2 force_workqueue sector_size:4096" ;;
	*) return 1 ;;
	esac
}

# dm_check itself, from the failure's side (oracle: it refuses what issue
# 18's fast reads may have read and accepts only the right target): a
# regular file at /dev/mapper/NAME, a block device that is not a dm
# device, and a dm-linear device taken for dm-crypt.
: >/dev/mapper/cmkb-ghost
refused=
dm_check crypt /dev/mapper/cmkb-ghost >/dev/null || refused="$refused file"
rm -f /dev/mapper/cmkb-ghost
dm_check crypt /dev/ram0 >/dev/null || refused="$refused non-dm"
accepted=
if table linear /dev/ram0 | dmsetup create "$DM" --noudevsync >/dev/null 2>&1; then
	dmsetup mknodes "$DM" 2>/dev/null
	dm_check crypt "/dev/mapper/$DM" >/dev/null || refused="$refused linear-as-crypt"
	dm_check linear "/dev/mapper/$DM" >/dev/null && accepted=linear
	dmsetup remove "$DM" >/dev/null 2>&1 || { sleep 1; dmsetup remove "$DM"; }
fi
if [ "$refused" = " file non-dm linear-as-crypt" ] && [ "$accepted" = linear ]; then
	ok bench_dev_check_refuses_wrong_device
else
	nok bench_dev_check_refuses_wrong_device "refused:${refused:- none} (want: file non-dm linear-as-crypt), accepted: ${accepted:-none} (want: linear)"
fi

fio_fail=
mode_fail=
probed=
nfio=0
nbusy=0
for r in $(seq 1 "$RUNS"); do
	ceil_run "$r"
	tcrypt_run "$r" || tcrypt_ok=0
	first=$(echo "$DEVS" | awk '{ print $1 }')
	mode_check "$r" "$(backing "$first")" || mode_fail="$mode_fail $r"
	k0=$(dec_calls)
	for d in $DEVS; do
		dev=$(backing "$d")
		for c in $CONFIGS; do
			tc=$(ms)
			refcnts >/tmp/rc0
			if ! table "$c" "$dev" | dmsetup create "$DM" --noudevsync >/tmp/dm.err 2>&1; then
				fio_fail="$fio_fail $d/$c:create"
				echo "# dmsetup create $c on $dev: $(cat /tmp/dm.err)"
				continue
			fi
			dmsetup mknodes "$DM" 2>/dev/null
			case $c in
			cmk*)
				if ! cmk_bench setkey bench /run/bench.key >/tmp/dm.err 2>&1; then
					fio_fail="$fio_fail $d/$c:setkey"
					echo "# $(cat /tmp/dm.err)"
					dmsetup remove "$DM"
					continue
				fi ;;
			esac
			refcnts >/tmp/rc1
			echo "BENCH driver $d $c $(driver_delta /tmp/rc0 /tmp/rc1)"
			if ! dm_check "$c" "/dev/mapper/$DM"; then
				fio_fail="$fio_fail $d/$c:node"
				dmsetup remove "$DM"
				continue
			fi
			jobfile >/tmp/bench.fio
			busy_reset
			# in /tmp: fio leaves each job's exec_prerun output in the cwd
			if (cd /tmp && timeout 300 fio --output-format=terse --terse-version=3 \
				/tmp/bench.fio >/tmp/fio.out 2>/tmp/fio.err); then
				awk -F';' -v d="$d" -v c="$c" -v r="$r" 'NF > 50 {
					bw = $7 + $48; io = $8 + $49
					printf "BENCH fio %s %s %s %s %d %d\n", d, c, r, $3, bw, io
				}' /tmp/fio.out
				if [ "$BUSY" = 1 ]; then
					busy_lines "$d" "$c" "$r" | tee /tmp/busy.out
					nfio=$((nfio + $(echo "$WORKLOADS" | wc -w)))
					nbusy=$((nbusy + $(grep -c '^BENCH busy' /tmp/busy.out)))
				fi
			else
				fio_fail="$fio_fail $d/$c"
				sed 's/^/# fio: /' /tmp/fio.err | head -n 5
			fi
			dmsetup remove "$DM" >/tmp/dm.err 2>&1 ||
				{ sleep 1; dmsetup remove "$DM"; }
			echo "BENCH time fio-$d-$c-$r $(($(ms) - tc))"
		done
	done
	k1=$(dec_calls)
	[ "${k0:-0}" = "${k1:-0}" ] || probed="$probed $r:$((k1 - k0))"
done
if [ -z "$fio_fail" ]; then ok bench_fio_all_configs; else nok bench_fio_all_configs "failed:$fio_fail"; fi
# A loaded host makes the sleeps late and some windows are dropped; most
# must be there.
if [ "$BUSY" = 0 ]; then
	ok "bench_busy_sampled # SKIP points shorter than 1 s"
elif [ "$nfio" -gt 0 ] && [ $((4 * nbusy)) -ge $((3 * nfio)) ]; then
	ok bench_busy_sampled
	echo "# busy vCPUs sampled for $nbusy of $nfio fio points"
else
	nok bench_busy_sampled "busy vCPUs sampled for $nbusy of $nfio fio points (/tmp/busy_mark via exec_prerun)"
fi
# The decryption kprobe counted nothing during the timed fio runs: none
# of them paid for it.
if [ -z "$probed" ] && [ "$(cat "$KP" 2>/dev/null || echo 0)" = 0 ]; then
	ok bench_fio_unprobed
else
	nok bench_fio_unprobed "the decryption kprobe fired during the fio runs (run:calls):${probed:- none}, enable=$(cat "$KP" 2>/dev/null)"
fi
if [ "$cipher_ok" = 1 ]; then ok bench_cipher_ceiling; else nok bench_cipher_ceiling "insmod cmk_cipher_bench.ko failed"; fi
if [ "$tcrypt_ok" = 1 ]; then ok bench_tcrypt_ceiling; else nok bench_tcrypt_ceiling "tcrypt.ko gave no xts(aes) rate"; fi
if [ -z "$mode_fail" ]; then ok bench_mode_check; else nok bench_mode_check "dd mode check failed in run(s):$mode_fail"; fi

# --- profiles -------------------------------------------------------------

# Where the guest's CPU time goes while one workload runs: perf samples the
# whole guest on cpu-clock (TCG has no PMU), 2 s per workload on each of
# PROF_DEVS (default brd) that was set up.  The categories sum every
# sampled symbol: idle is the idle task (a vCPU with nothing to do),
# cipher the AES/XTS code, copy the page clearing and copying (brd's,
# null_blk's and the bounce pages'), fio the user-space samples.
prof_one() {	# prof_one DEV CONFIG WORKLOAD
	if ! perf record -q -o /tmp/prof.data -a -F 499 -- \
		fio --output-format=terse --terse-version=3 /tmp/prof.fio \
		>/tmp/fio.out 2>/tmp/prof.err; then
		echo "# perf/fio: $(tail -n 2 /tmp/prof.err)"
		return 1
	fi
	awk -F';' -v p="BENCH prof $1 $2 $3" 'NF > 50 {
		printf "%s mib_s %.1f\n", p, ($7 + $48) / 1024 }' /tmp/fio.out
	perf report -i /tmp/prof.data --stdio --no-children --sort comm,sym \
		2>/dev/null | awk -v p="BENCH prof $1 $2 $3" '
		$1 ~ /%$/ {
			pct = $1 + 0; comm = $2; kind = $3; sym = $4
			if (comm == "swapper") c = "idle"
			else if (kind == "[.]") c = "fio"
			else if (sym ~ /aes|xts|gf128/) c = "cipher"
			else if (sym ~ /clear_page|memcpy|memset|copy_user|copy_page|brd_do_bvec|copy_(to|from)_nullb|rep_movs/) c = "copy"
			else c = "kernel"
			cat[c] += pct
			if (comm != "swapper") s[sym] += pct
		}
		END {
			n = split("idle cipher copy fio kernel", order, " ")
			for (i = 1; i <= n; i++)
				printf "%s cat %s %.1f\n", p, order[i], cat[order[i]]
			for (k in s) printf "%s sym %.2f %s\n", p, s[k], k
		}' | sort -t' ' -k1,6 -k7,7nr | awk '$6 != "sym" || ++n[$5] <= 12'
}
prof_dev() {	# prof_dev DEV: every PROF_CONFIGS x PROF_WORKLOADS on DEV
	for c in $PROF_CONFIGS; do
		if ! table "$c" "$(backing "$1")" | dmsetup create "$DM" --noudevsync >/tmp/dm.err 2>&1; then
			prof_fail="$prof_fail $1/$c:create"
			continue
		fi
		dmsetup mknodes "$DM" 2>/dev/null
		if ! dm_check "$c" "/dev/mapper/$DM"; then
			prof_fail="$prof_fail $1/$c:node"
			dmsetup remove "$DM"
			continue
		fi
		case $c in
		cmk*) cmk_bench setkey bench /run/bench.key >/tmp/dm.err 2>&1 ||
			prof_fail="$prof_fail $1/$c:setkey" ;;
		esac
		for wl in $PROF_WORKLOADS; do
			(WORKLOADS=$wl RUNTIME=2s RAMP=100ms BUSY=0; jobfile) >/tmp/prof.fio
			prof_one "$1" "$c" "$wl" || prof_fail="$prof_fail $1/$c/$wl"
		done
		dmsetup remove "$DM" >/dev/null 2>&1 || { sleep 1; dmsetup remove "$DM"; }
	done
}
# Only the devices that were set up (one that did not load left DEVS).
pdevs=
for d in $PROF_DEVS; do
	case " $DEVS " in *" $d "*) pdevs="$pdevs $d" ;; esac
done
if [ "$PROFILE" = 1 ] && [ -n "$PROF_DEVS" ] && [ -z "$pdevs" ]; then
	nok bench_profiles "none of PROF_DEVS ($PROF_DEVS) was set up"
elif [ "$PROFILE" = 1 ] && command -v perf >/dev/null && [ -n "$pdevs" ]; then
	tc=$(ms)
	prof_fail=
	for d in $pdevs; do
		prof_dev "$d"
	done
	echo "BENCH time profiles $(($(ms) - tc))"
	if [ -z "$prof_fail" ]; then ok bench_profiles; else nok bench_profiles "failed:$prof_fail"; fi
fi

# --- agent: boot -> usable, revoke -> wipe -----------------------------------

st() { dmsetup status cmk-scratch 2>/dev/null | awk '{ print $4 }'; }
wait_state() {	# wait_state STATE TIMEOUT_MS
	end=$(($(ms) + $2))
	while [ "$(ms)" -lt "$end" ]; do
		[ "$(st)" = "$1" ] && return 0
		usleep 10000
	done
	return 1
}
if [ "$AGENT_RUNS" -gt 0 ] && command -v cmk-agent >/dev/null; then
	mkdir -p /etc/cmk /run/cmk /var/log/cmk
	cmkctl local-key create /etc/cmk/cmk.key >/dev/null &&
	cmkctl kek create --provider local --key-ref /etc/cmk/cmk.key \
		--out /etc/cmk/kek.json >/dev/null
	cat >/etc/cmk/agent.conf <<EOF
[agent]
kek_envelope = /etc/cmk/kek.json
check_interval_ms = 200
lease_ms = 5000
grace_s = 30
policy = wipe
audit_log = /var/log/cmk/audit.log
syslog = no
metrics_path = /run/cmk/cmk.prom

[device "scratch"]
backing = /dev/ram3
dm_name = cmk-scratch
key_name = scratch
mode = ephemeral
sector_size = 4096
EOF
	agent_fail=
	tc=$(ms)
	for r in $(seq 1 "$AGENT_RUNS"); do
		rm -f /run/cmk/* 2>/dev/null
		t0=$(ms)
		cmk-agent --config /etc/cmk/agent.conf --no-poweroff 2>/tmp/agent.err &
		apid=$!
		if ! wait_state active 30000; then
			agent_fail="$agent_fail $r:open"
			sed 's/^/# agent: /' /tmp/agent.err | tail -n 5
			kill "$apid"; wait "$apid"
			dmsetup remove cmk-scratch 2>/dev/null
			continue
		fi
		up=$(($(ms) - t0))
		t0=$(ms)
		cmkctl local-key disable /etc/cmk/cmk.key >/dev/null
		if wait_state wiped 10000; then
			wipe=$(($(ms) - t0))
		else
			wipe=-1
			agent_fail="$agent_fail $r:wipe"
		fi
		echo "BENCH agent $r $up $wipe"
		kill "$apid"; wait "$apid"
		cmkctl local-key enable /etc/cmk/cmk.key >/dev/null
		dmsetup remove cmk-scratch 2>/dev/null
	done
	echo "BENCH time agent $(($(ms) - tc))"
	if [ -z "$agent_fail" ]; then ok bench_agent_timings; else nok bench_agent_timings "failed:$agent_fail"; fi
fi

echo "1..$n"

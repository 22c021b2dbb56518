#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# guest_modes.sh - the evidence behind "dm-crypt runs in two speeds"
# (Documentation/benchmarks.rst, "Two speeds of dm-crypt").  A guest test
# for scripts/qemu/run-guest.sh; needs in the guest /usr/bin/cmk_bench,
# /root/cmk_cipher_bench.ko and, for the profiles, /usr/bin/perf:
#
#   scripts/qemu/run-guest.sh --kver K --out build/modes/K \
#     --add build/bench-bin/cmk_bench:/usr/bin/cmk_bench \
#     --add build/bench-kmod/K/cmk_cipher_bench.ko:/root/cmk_cipher_bench.ko \
#     --add "$(command -v perf):/usr/bin/perf" tests/bench/guest_modes.sh
#
# Prints, as TAP comments:
#   CPU     the AES-related CPUID flags the guest sees
#   CEIL    the cipher alone, in the kernel (cmk_cipher_bench.ko)
#   DRIVER  the xts(aes) driver each target holds (the /proc/crypto refcnt
#           that its creation raised)
#   READ    dd of 48 MiB (bs=128k, O_DIRECT) through it, timed with
#           /proc/uptime; busy = vCPUs not idle and not in iowait;
#           ctxsw per MiB from /proc/stat
#   PATH    calls per MiB of the crypto entry points (kprobe hit counts):
#           simd = synchronous SIMD, cryptd = deferred to cryptd's worker
#   PROF    the top symbols of a perf profile of one read
# The checks (TAP) are the oracle of the finding: every target takes the
# same synchronous SIMD path; no read that decrypts is faster than the
# cipher alone can be (a physical bound, with 1.5x slack for the host's
# load); and the read at dm-linear's speed makes no cipher call and no
# context switch (a demonstration of one way to miss the cipher, not an
# oracle for how issue 18's reads missed it).
set -u
MB=48
n=0
ok() { n=$((n + 1)); echo "ok $n $1"; }
nok() { n=$((n + 1)); echo "not ok $n $1"; shift; for l in "$@"; do echo "# $l"; done; }
ut() { cut -d' ' -f1 /proc/uptime; }
notbusy() { awk '/^cpu /{ print $5 + $6 }' /proc/stat; }
ctxt() { awk '/^ctxt/{ print $2 }' /proc/stat; }
ncpu=$(nproc)

echo "# CPU $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' |
	grep -x -E 'aes|pclmulqdq|avx|avx2|vaes|vpclmulqdq|avx512f|avx512vl' | tr '\n' ' ')"
echo "# CPU $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"

# --- the cipher alone -----------------------------------------------------
ceil() {	# ceil ALG SECTOR THREADS: one CEIL line; the MiB/s in $crate; 1 on failure
	crate=''
	# on failure the last dmesg line is an earlier run's: never read it
	if ! insmod /root/cmk_cipher_bench.ko alg="$1" sector="$2" threads="$3" \
		ms=1000 >/tmp/ceil.err 2>&1; then
		echo "# CEIL $1 $2 $3: insmod failed: $(tail -n 1 /tmp/ceil.err)"
		return 1
	fi
	rmmod cmk_cipher_bench
	dmesg | grep 'cmk_cipher_bench: ' | tail -n 1 |
		sed 's/.*cmk_cipher_bench: //' >/tmp/ceil
	echo "# CEIL $(cat /tmp/ceil)"
	crate=$(sed -n 's/.* mib_s=\([0-9.]*\).*/\1/p' /tmp/ceil)
}
crate=
ceil 'xts(aes)' 512 1
ceil512=$crate
ceil 'xts(aes)' 512 "$ncpu"
ceil 'xts(aes)' 4096 1
ceil4k=$crate
ceil 'xts(aes)' 4096 "$ncpu"
# The most the cipher can do: every vCPU at the best one-vCPU rate (the
# rate measured on all vCPUs at once falls below it on a loaded host).
best=$(awk -v a="${ceil512:-0}" -v b="${ceil4k:-0}" -v n="$ncpu" \
	'BEGIN { print n * (a > b ? a : b) }')
ceil 'xts(ecb(aes-generic))' 512 1
if [ -n "$ceil512" ] && [ -n "$ceil4k" ]; then ok modes_cipher_ceiling; else nok modes_cipher_ceiling "cmk_cipher_bench.ko gave no rate"; fi

# --- tracing: which crypto entry points run -------------------------------
T=/sys/kernel/tracing
[ -d $T/events ] || mount -t tracefs tracefs $T 2>/dev/null
echo 0 >$T/tracing_on
for f in simd_skcipher_decrypt cryptd_skcipher_decrypt_enqueue; do
	echo "p:kp_$f $f" >>$T/kprobe_events 2>/dev/null &&
		echo 1 >"$T/events/kprobes/kp_$f/enable"
done
hits() { awk '{ printf "%s %s\n", substr($1, 4), $2 }' $T/kprobe_profile 2>/dev/null; }

# --- targets ---------------------------------------------------------------
umask 077
dd if=/dev/urandom of=/run/key bs=64 count=1 2>/dev/null
key=$(od -An -v -tx1 /run/key | tr -d ' \n')
dd if=/dev/urandom of=/dev/ram1 bs=1M count=$MB 2>/dev/null
s=$((MB * 2048))
refcnts() {	# driver refcnt, one xts(aes) implementation a line
	awk -v RS= '/name *: xts\(aes\)/' /proc/crypto |
		awk '/^driver/ { d = $3 } /^refcnt/ { print d, $3 }' | sort
}
mk() {	# mk NAME TABLE: create, key, fill; sets $drv
	refcnts >/tmp/rc0
	echo "$2" | dmsetup create "$1" --noudevsync || return 1
	dmsetup mknodes "$1"
	# without the node, dd would write a regular file on the tmpfs /dev
	if [ ! -b "/dev/mapper/$1" ]; then
		echo "# /dev/mapper/$1 is not a block device"
		dmsetup remove "$1"
		return 1
	fi
	case $2 in *" cmk "*) cmk_bench setkey bench /run/key || return 1 ;; esac
	refcnts >/tmp/rc1
	drv=$(awk 'FILENAME == ARGV[1] { a[$1] = $2; next }
		!($1 in a) || $2 > a[$1] { print $1 }' /tmp/rc0 /tmp/rc1 | tr '\n' ' ')
	echo "# DRIVER $1: ${drv:-none}"
	dd if=/dev/ram1 of="/dev/mapper/$1" bs=1M count=$MB oflag=direct 2>/tmp/dd.err ||
		{ echo "# fill $1: $(tail -n 1 /tmp/dd.err)"; return 1; }
}
rate=
rd() {	# rd LABEL DEV: one timed read; sets $rate (MiB/s); 1 on failure
	rate='' simd='' cryptd='' ctx=''
	if [ ! -b "$2" ]; then
		echo "# READ $1: $2 is not a block device"
		return 1
	fi
	hits >/tmp/h0
	t0=$(ut); i0=$(notbusy); c0=$(ctxt)
	if ! dd if="$2" of=/dev/null bs=128k count=$((MB * 8)) iflag=direct 2>/tmp/dd.err; then
		echo "# READ $1: dd of $2 failed: $(tail -n 1 /tmp/dd.err)"
		return 1
	fi
	t1=$(ut); i1=$(notbusy); c1=$(ctxt)
	hits >/tmp/h1
	rate=$(awk -v m=$MB -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", m / (b - a) }')
	awk -v l="$1" -v m=$MB -v a="$t0" -v b="$t1" -v i=$((i1 - i0)) \
		-v c=$((c1 - c0)) -v n="$ncpu" 'BEGIN { d = b - a
		printf "# READ %-26s %7.1f MiB/s  busy %.2f vCPU  %5.1f ms cpu/MiB  %4.0f ctxsw/MiB\n",
			l, m / d, n - i / 100 / d, (n * d - i / 100) * 1000 / m, c / m }'
	awk -v m=$MB 'FILENAME == ARGV[1] { a[$1] = $2; next }
		{ printf "%s %.0f\n", $1, ($2 - a[$1]) / m }' /tmp/h0 /tmp/h1 >/tmp/path
	simd=$(awk '$1 == "simd_skcipher_decrypt" { print $2 }' /tmp/path)
	cryptd=$(awk '$1 == "cryptd_skcipher_decrypt_enqueue" { print $2 }' /tmp/path)
	ctx=$(awk -v m=$MB -v c=$((c1 - c0)) 'BEGIN { printf "%.0f", c / m }')
	echo "# PATH $1: $(awk '{ printf "%s %s/MiB  ", $1, $2 }' /tmp/path)"
}
prof() {	# prof LABEL DEV: the top symbols of one read
	command -v perf >/dev/null || return 0
	[ -b "$2" ] || { echo "# PROF $1: $2 is not a block device"; return 1; }
	perf record -q -o /tmp/p.data -a -F 499 -- dd if="$2" of=/dev/null \
		bs=128k count=$((MB * 8)) iflag=direct 2>/dev/null
	perf report -i /tmp/p.data --stdio --no-children --sort sym 2>/dev/null |
		awk '$1 ~ /%$/' | head -n 8 | sed "s|^ *|# PROF $1: |"
}

# 1. every dm-crypt variant and dm-cmk, with the driver each holds, the
# path its requests take and the read rate.
maxdec=0
paths=
for c in crypt crypt-nowq crypt-4k cmk; do
	case $c in
	crypt) t="crypt aes-xts-plain64 $key 0 /dev/ram0 0" ;;
	crypt-nowq) t="crypt aes-xts-plain64 $key 0 /dev/ram0 0 2 no_read_workqueue no_write_workqueue" ;;
	crypt-4k) t="crypt aes-xts-plain64 $key 0 /dev/ram0 0 1 sector_size:4096" ;;
	cmk) t="cmk aes-xts-plain64 bench 0 /dev/ram0 0" ;;
	esac
	mk "m-$c" "0 $s $t" || { nok "modes_create_$c"; continue; }
	for _ in 1 2; do
		rd "$c" "/dev/mapper/m-$c" || continue
		awk -v r="$rate" -v m="$maxdec" 'BEGIN { exit !(r > m) }' && maxdec=$rate
	done
	paths="$paths $c:${simd:-?}:${cryptd:-?}"
	[ "$c" = crypt ] && prof "$c" "/dev/mapper/m-$c"
	dmsetup remove "m-$c"
done

# 2. load order: a transform allocated before aesni_intel keeps the C
# driver; one allocated after gets xts-aes-aesni-avx.
if rmmod aesni_intel 2>/dev/null; then
	old=$(cat /proc/sys/kernel/modprobe)
	echo /bin/false >/proc/sys/kernel/modprobe
	mk m-early "0 $s crypt aes-xts-plain64 $key 0 /dev/ram0 0"
	echo "$old" >/proc/sys/kernel/modprobe
	modprobe aesni_intel
	sleep 1		# its self-tests hold references for a moment
	mk m-late "0 $s crypt aes-xts-plain64 $key 0 /dev/ram2 0"
	rd "crypt, before aesni_intel" /dev/mapper/m-early
	rd "crypt, after aesni_intel" /dev/mapper/m-late
	dmsetup remove m-early
	dmsetup remove m-late
else
	echo "# aesni_intel in use or built in: load-order check skipped"
fi

# 3. the fast mode: the same read where no decryption happens.  With a
# dm-linear device made first, /dev/dm-0 is dm-linear, whatever the name
# the reader had in mind.
mk m-lin "0 $s linear /dev/ram2 0"
mk m-crypt "0 $s crypt aes-xts-plain64 $key 0 /dev/ram0 0"
for d in /sys/block/dm-*; do
	echo "# NODE /dev/${d##*/} = $(cat "$d/dm/name") ($(dmsetup table "$(cat "$d/dm/name")" | awk '{ print $3 }'))"
done
rd "crypt by name" /dev/mapper/m-crypt
crypt_simd=$simd crypt_ctx=$ctx
rd "/dev/dm-0" /dev/dm-0
lin_simd=$simd lin_ctx=$ctx
prof "/dev/dm-0" /dev/dm-0
dmsetup remove m-crypt
dmsetup remove m-lin

# Every decrypting read <= 1.5x the most the cipher can do ($best; 1.5x
# because the host's load moves every rate within one guest run; the fast
# mode of issue 18 was ~3x $best on an idle host).
if awk -v r="$maxdec" -v c="$best" 'BEGIN { exit !(c > 0 && r <= 1.5 * c) }'; then
	ok modes_decrypting_reads_within_cipher_ceiling
else
	nok modes_decrypting_reads_within_cipher_ceiling "fastest decrypting read $maxdec MiB/s, cipher alone $best MiB/s"
fi
# Every target decrypts each sector synchronously on the SIMD driver:
# 2048 (512-byte sectors) or 256 (4096-byte) calls per MiB, none to cryptd.
bad=
for p in $paths; do
	c=${p%%:*} rest=${p#*:}
	want=2048
	[ "$c" = crypt-4k ] && want=256
	[ "${rest%%:*}" = "$want" ] && [ "${rest#*:}" = 0 ] || bad="$bad $p"
done
if [ -n "$paths" ] && [ -z "$bad" ]; then
	ok modes_every_target_sync_simd
else
	nok modes_every_target_sync_simd "target:simd/MiB:cryptd/MiB not as expected:$bad (all:$paths)"
fi
# The fast read decrypts nothing and never waits for a worker; the read by
# the dm-crypt name decrypts every sector and waits for kcryptd.
if [ "$lin_simd" = 0 ] && [ "$crypt_simd" = 2048 ] &&
   [ "${lin_ctx:-99}" -le 3 ] && [ "${crypt_ctx:-0}" -ge 20 ]; then
	ok modes_fast_read_decrypts_nothing
else
	nok modes_fast_read_decrypts_nothing "/dev/dm-0: $lin_simd cipher calls/MiB, $lin_ctx ctxsw/MiB; by name: $crypt_simd, $crypt_ctx"
fi
echo "1..$n"

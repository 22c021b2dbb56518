#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# esdk_io.sh - how cmkctl seal/unseal move a 16 MiB object through the
# kernel, TAP output.  No timing: the shape of the system calls that
# decides the speed (Documentation/storage.rst, "Performance").
#
# Oracle: strace, an independent observer of every read(), write() and
# writev() on the object's descriptors (stdin and stdout, both regular
# files), and the plaintext compared byte for byte.
#   - batches: the object is read and written in 1 MiB batches of 64 KiB
#     frames, not one system call per frame (16 MiB: at most 20 of each,
#     where one per frame would be 256);
#   - alignment: every read() lands at a buffer address equal to its file
#     offset modulo 64, so the kernel copies with source and destination
#     aligned alike (one byte off halves that copy's speed);
#   - memory: each process stays under 32 MiB resident (constant memory:
#     about 2 MiB of buffers, whatever the object's size).
#   - pipes: from a pipe, seal and unseal grow it to a batch (1 MiB,
#     F_SETPIPE_SZ, seen by strace), so 64 MiB written 1 MiB at a time
#     take fewer than 1024 read() calls: a 64 KiB pipe (the default)
#     cannot hand over more than 64 KiB per read().  The count for a
#     writer of 8 KiB blocks (dd bs=8k) is printed: it depends on how the
#     two processes are scheduled.
#   - a larger pipe is not shrunk: stdin a 4 MiB pipe (its writer grew
#     it), seal leaves it 4 MiB (F_GETPIPE_SZ on the writer's end, once
#     seal has drained what was written); skipped where growing a pipe
#     past pipe-max-size is not permitted (no CAP_SYS_RESOURCE).  And
#     strace: a pipe of 1 MiB already gets F_GETPIPE_SZ, no F_SETPIPE_SZ.
set -u
# shellcheck source=tests/storage/lib.sh
. "$(dirname "$0")/lib.sh"

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; [ $# -lt 2 ] || echo "# $2"; failed=1; }

echo "1..13"
if ! command -v strace >/dev/null; then
	for t in seal_reads_batches seal_reads_aligned seal_writes_batches \
		 unseal_reads_batches unseal_reads_aligned unseal_writes_batches \
		 seal_unseal_round_trip seal_unseal_constant_memory \
		 seal_pipe_grown_to_a_batch seal_pipe_1m_writer_reads_batches \
		 unseal_pipe_1m_writer_reads_batches seal_pipe_larger_not_shrunk \
		 seal_pipe_of_a_batch_not_set; do
		n=$((n + 1)); echo "ok $n - esdk_io_$t # SKIP strace not installed"
	done
	exit 0
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/esdk-io.XXXXXX")
trap 'rm -rf "$dir"' EXIT
chmod 700 "$dir"
cd "$dir" || exit 1
ctl() { "$CMKCTL" --config "$dir/none.conf" "$@"; }
ctl local-key create cmk.key >/dev/null &&
	ctl kek create --provider local --key-ref "$dir/cmk.key" --out kek.json >/dev/null || exit 1
head -c $((16 << 20)) /dev/urandom >big
CTX=(--context cluster=io --context segment=000000010000000000000001)

# traced OUT LOG CMD...: run CMD with stdin from the file IN and stdout
# to OUT, the raw system call arguments of fds 0 and 1 logged to LOG.
traced() {
	local in=$1 out=$2 log=$3
	shift 3
	strace -o "$log" -e trace=read,write,writev -e raw=read,write,writev \
		"$@" <"$in" >"$out"
}

# hex(): strace -e raw prints hexadecimal.
hexfn='
	function hex(s,   v, i) {	# mawk has no strtonum; strace writes 0 as "0"
		if (s !~ /^0x/)
			return s + 0
		v = 0
		for (i = 3; i <= length(s); i++)
			v = v * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
		return v
	}
'

# calls LOG FD: how many read/write/writev calls LOG has on FD.
calls() {
	awk -v fd="$2" -F'[(,]' "$hexfn"'
	$1 ~ /^(read|write|writev)$/ && hex($2) == fd { c++ }
	END { print c + 0 }' "$1"
}

# misaligned LOG: the first read() on fd 0 whose buffer address differs
# from its file offset modulo 64, or nothing.
misaligned() {
	awk -F'[(,)= ]+' "$hexfn"'
	$1 == "read" && hex($2) == 0 {
		if (hex($3) % 64 != off % 64) {
			printf "read at offset %d into address %s\n", off, $3
			exit
		}
		off += hex($5)
	}' "$1"
}

check_batches() {
	local name=$1 log=$2 fd=$3 c
	c=$(calls "$log" "$fd")
	if [ "$c" -ge 1 ] && [ "$c" -le 20 ]; then
		ok "$name"
	else
		notok "$name" "$c system calls on fd $fd for 16 MiB (at most 20 wanted)"
	fi
}

check_aligned() {
	local name=$1 log=$2 m
	m=$(misaligned "$log")
	if [ -z "$m" ] && grep -q '^read(0,' "$log"; then
		ok "$name"
	else
		notok "$name" "${m:-no read on fd 0 traced}"
	fi
}

traced big sealed seal.log "$CMKCTL" --config none seal --kek kek.json "${CTX[@]}" - -
check_batches esdk_io_seal_reads_batches seal.log 0
check_aligned esdk_io_seal_reads_aligned seal.log
check_batches esdk_io_seal_writes_batches seal.log 1

traced sealed plain unseal.log "$CMKCTL" --config none unseal --kek kek.json "${CTX[@]}" - -
check_batches esdk_io_unseal_reads_batches unseal.log 0
check_aligned esdk_io_unseal_reads_aligned unseal.log
check_batches esdk_io_unseal_writes_batches unseal.log 1

if cmp -s big plain; then
	ok esdk_io_seal_unseal_round_trip
else
	notok esdk_io_seal_unseal_round_trip "unsealed bytes differ from the original"
fi

# Constant memory: 64 MiB through a pipe, peak resident set of each side.
head -c $((64 << 20)) /dev/urandom >big64
/usr/bin/time -f '%M' -o rss.seal "$CMKCTL" --config none seal --kek kek.json "${CTX[@]}" big64 - |
	/usr/bin/time -f '%M' -o rss.unseal "$CMKCTL" --config none unseal --kek kek.json "${CTX[@]}" - - |
	cmp -s - big64
rc=$?
s=$(cat rss.seal 2>/dev/null) u=$(cat rss.unseal 2>/dev/null)
if [ "$rc" -eq 0 ] && [ -n "$s" ] && [ -n "$u" ] && [ "$s" -lt 32768 ] && [ "$u" -lt 32768 ]; then
	ok esdk_io_seal_unseal_constant_memory
	echo "# peak resident: seal $s KiB, unseal $u KiB for 64 MiB"
else
	notok esdk_io_seal_unseal_constant_memory "round trip rc $rc, peak resident seal ${s:-?} KiB, unseal ${u:-?} KiB (under 32768 wanted)"
fi
# Pipes: the 64 MiB again, from dd through a pipe.
# piped BS LOG CMD...: dd bs=BS of big64 into CMD's stdin, traced.
piped() {
	local bs=$1 in=$2 log=$3
	shift 3
	dd if="$in" bs="$bs" status=none |
		strace -o "$log" -e trace=read,fcntl -e raw=read "$@" >/dev/null
}
reads0() { awk -F'[(,]' "$hexfn"'$1 == "read" && hex($2) == 0 { c++ } END { print c + 0 }' "$1"; }
"$CMKCTL" --config none seal --kek kek.json "${CTX[@]}" big64 sealed64
piped 1M big64 pipe1m.log "$CMKCTL" --config none seal --kek kek.json "${CTX[@]}" - -
if grep -q '^fcntl(0, F_SETPIPE_SZ, 1048576) *= 1048576' pipe1m.log; then
	ok esdk_io_seal_pipe_grown_to_a_batch
else
	notok esdk_io_seal_pipe_grown_to_a_batch "no F_SETPIPE_SZ of 1 MiB on stdin: $(grep -m1 fcntl pipe1m.log)"
fi
c=$(reads0 pipe1m.log)
if [ "$c" -ge 64 ] && [ "$c" -lt 1024 ]; then
	ok esdk_io_seal_pipe_1m_writer_reads_batches
else
	notok esdk_io_seal_pipe_1m_writer_reads_batches "$c read() calls for 64 MiB written 1 MiB at a time (fewer than 1024 wanted)"
fi
piped 1M sealed64 upipe1m.log "$CMKCTL" --config none unseal --kek kek.json "${CTX[@]}" - -
c=$(reads0 upipe1m.log)
if [ "$c" -ge 64 ] && [ "$c" -lt 1024 ]; then
	ok esdk_io_unseal_pipe_1m_writer_reads_batches
else
	notok esdk_io_unseal_pipe_1m_writer_reads_batches "$c read() calls for 64 MiB written 1 MiB at a time (fewer than 1024 wanted)"
fi
piped 8k big64 pipe8k.log "$CMKCTL" --config none seal --kek kek.json "${CTX[@]}" - -
echo "# seal from a pipe, 64 MiB: $(reads0 pipe1m.log) read() calls from a 1 MiB writer, $(reads0 pipe8k.log) from an 8 KiB writer"

# A pipe its writer grew to 4 MiB (root may pass pipe-max-size) is left so.
size=$(python3 - "$CMKCTL" "${CTX[@]}" <<'PY'
import fcntl, os, subprocess, sys, termios, time
F_GETPIPE_SZ = getattr(fcntl, "F_GETPIPE_SZ", 1032)
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
r, w = os.pipe()
try:
    fcntl.fcntl(w, F_SETPIPE_SZ, 4 << 20)
except OSError as err:
    print("skip: cannot grow a pipe to 4 MiB: %s" % err)
    sys.exit(0)
p = subprocess.Popen([sys.argv[1], "--config", "none", "seal", "--kek", "kek.json"] +
                     sys.argv[2:] + ["-", "-"], stdin=r, stdout=subprocess.DEVNULL)
os.close(r)
os.write(w, b"x" * 4096)
# seal has read it (so it ran its F_SETPIPE_SZ before): the pipe's size now
for _ in range(200):
    if int.from_bytes(fcntl.ioctl(w, termios.FIONREAD, b"\0\0\0\0"), "little") == 0:
        break
    time.sleep(0.05)
print(fcntl.fcntl(w, F_GETPIPE_SZ))
os.close(w)
p.wait()
PY
)
if [ "$size" = $((4 << 20)) ]; then
	ok esdk_io_seal_pipe_larger_not_shrunk
elif [ "${size#skip: }" != "$size" ]; then
	ok "esdk_io_seal_pipe_larger_not_shrunk # SKIP ${size#skip: }"
else
	notok esdk_io_seal_pipe_larger_not_shrunk "a 4 MiB pipe is now: $size"
fi
# A pipe its writer grew to a batch (1 MiB) already: asked, not set.
# (the pipe sized before seal starts: no race with its fcntl)
python3 - "$CMKCTL" "${CTX[@]}" <<'PY'
import fcntl, os, subprocess, sys
r, w = os.pipe()
fcntl.fcntl(w, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
p = subprocess.Popen(["strace", "-o", "pipeset.log", "-e", "trace=fcntl", sys.argv[1],
                      "--config", "none", "seal", "--kek", "kek.json"] + sys.argv[2:] +
                     ["-", "-"], stdin=r, stdout=subprocess.DEVNULL)
os.close(r)
os.write(w, b"x" * 4096)
os.close(w)
p.wait()
PY
if grep -q '^fcntl(0, F_GETPIPE_SZ) *= 1048576' pipeset.log && ! grep -q 'F_SETPIPE_SZ' pipeset.log; then
	ok esdk_io_seal_pipe_of_a_batch_not_set
else
	notok esdk_io_seal_pipe_of_a_batch_not_set "$(grep PIPE_SZ pipeset.log | tr '\n' ' ')"
fi
exit $failed

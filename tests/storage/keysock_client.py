#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
#
# keysock_client.py - the agent's key socket spoken from Documentation/
# storage.rst ("Socket protocol") alone, none of dm-cmk's code: the raw
# requests seal_socket.sh needs that cmkctl never sends.
#
#   keysock_client.py SOCKET new [k=v ...]       one request; prints
#                                                "status N len L"
#   keysock_client.py SOCKET raw HEX             send bytes, print the answer
#                                                ("status N msg ..." or "eof")
#   keysock_client.py SOCKET oversized           a header announcing 65535 bytes
#   keysock_client.py SOCKET slow SECONDS        3 bytes of a request, then
#                                                wait; prints "closed after S s"
#                                                or "open after S s"
#   keysock_client.py SOCKET keys N FILE [k=v ...]  N new-data-key requests;
#                                                the data keys (hex, one a
#                                                line) go to FILE (0600), for
#                                                the leak check, not stdout
#   keysock_client.py SOCKET bench N [k=v ...]   N new-data-key requests on one
#                                                connection, then N on a fresh
#                                                connection each; prints the
#                                                medians and 99th percentiles
#
# The data key in an answer is never printed (keys writes them to a file).
import os
import socket
import struct
import sys
import time


def ec(pairs):
    """Key Value Pairs of an ESDK header: count, then sorted pairs."""
    if not pairs:
        return b''
    kv = sorted((k.encode(), v.encode()) for k, v in (p.split('=', 1) for p in pairs))
    out = struct.pack('>H', len(kv))
    for k, v in kv:
        out += struct.pack('>H', len(k)) + k + struct.pack('>H', len(v)) + v
    return out


def request(op, body):
    return b'CMKQ' + bytes([1, op]) + struct.pack('>H', len(body)) + body


def new_request(pairs):
    e = ec(pairs)
    return request(1, struct.pack('>H', len(e)) + e)


def recv_exact(s, n):
    buf = b''
    while len(buf) < n:
        b = s.recv(n - len(buf))
        if not b:
            return None
        buf += b
    return buf


def answer(s):
    """(status, body) or None at end of file."""
    h = recv_exact(s, 8)
    if h is None:
        return None
    if h[:4] != b'CMKR' or h[4] != 1:
        raise SystemExit('not a CMKR answer: %r' % h)
    body = recv_exact(s, struct.unpack('>H', h[6:8])[0])
    if body is None:
        raise SystemExit('answer cut short')
    return h[5], body


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(path)
    return s


def show(a):
    if a is None:
        print('eof')
    elif a[0] == 0:
        print('status 0 len %d' % len(a[1]))
    else:
        print('status %d msg %s' % (a[0], a[1].decode('utf-8', 'replace')))


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def main():
    path, mode, rest = sys.argv[1], sys.argv[2], sys.argv[3:]
    if mode == 'new':
        s = connect(path)
        s.sendall(new_request(rest))
        show(answer(s))
    elif mode == 'raw':
        s = connect(path)
        s.sendall(bytes.fromhex(rest[0]))
        show(answer(s))
    elif mode == 'oversized':
        s = connect(path)
        s.sendall(b'CMKQ' + bytes([1, 1]) + struct.pack('>H', 65535))
        show(answer(s))
    elif mode == 'slow':
        s = connect(path)
        s.sendall(b'CMK')
        t0 = time.monotonic()
        s.settimeout(float(rest[0]))
        try:
            closed = s.recv(1) == b''
        except socket.timeout:
            closed = False
        print('%s after %.1f s' % ('closed' if closed else 'open', time.monotonic() - t0))
    elif mode == 'keys':
        n, out, pairs = int(rest[0]), rest[1], rest[2:]
        s = connect(path)
        keys = []
        for _ in range(n):
            s.sendall(new_request(pairs))
            a = answer(s)
            if a is None or a[0] != 0:
                raise SystemExit('request refused: %r' % (a,))
            keys.append(a[1][:32].hex())
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, ('\n'.join(keys) + '\n').encode())
        os.close(fd)
        print('%d keys' % n)
    elif mode == 'bench':
        n, pairs = int(rest[0]), rest[1:]
        req = new_request(pairs)
        s = connect(path)
        one = []
        for _ in range(n):
            t = time.perf_counter()
            s.sendall(req)
            a = answer(s)
            one.append(time.perf_counter() - t)
            if a is None or a[0] != 0:
                raise SystemExit('request refused: %r' % (a,))
        s.close()
        fresh = []
        for _ in range(n):
            t = time.perf_counter()
            c = connect(path)
            c.sendall(req)
            a = answer(c)
            c.close()
            fresh.append(time.perf_counter() - t)
            if a is None or a[0] != 0:
                raise SystemExit('request refused: %r' % (a,))
        print('one connection: median %.3f ms p99 %.3f ms; connection per request: median %.3f ms p99 %.3f ms (n=%d)'
              % (pct(one, 0.5) * 1e3, pct(one, 0.99) * 1e3,
                 pct(fresh, 0.5) * 1e3, pct(fresh, 0.99) * 1e3, n))
    else:
        raise SystemExit('unknown mode ' + mode)


if __name__ == '__main__':
    main()

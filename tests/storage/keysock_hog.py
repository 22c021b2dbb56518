#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""keysock_hog.py SOCKET N SECONDS - one client holding the key socket.

Opens N connections to cmk-agent's key socket and sends a valid "new data
key" request on each every 3 s (under the agent's 5 s idle timeout), for
SECONDS.  Prints "hog: N connected" once they are open, then at the end
how many requests were answered and how many connections the agent closed
(its fairness rules: a share per uid, slots kept for root).
"""
import socket
import struct
import sys
import time


def request():
    kv = struct.pack(">H", 1) + struct.pack(">H", 1) + b"a" + struct.pack(">H", 1) + b"b"
    body = struct.pack(">H", len(kv)) + kv
    return b"CMKQ\x01\x01" + struct.pack(">H", len(body)) + body


def main():
    path, n, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(2)
        s.connect(path)
        socks.append(s)
    print("hog: %d connected" % len(socks), flush=True)
    answered = lost = 0
    end = time.time() + secs
    while time.time() < end and socks:
        for s in list(socks):
            try:
                s.sendall(request())
                h = s.recv(8)
                if len(h) < 8:
                    raise ConnectionError("closed")
                s.recv(struct.unpack(">H", h[6:8])[0])
                answered += 1
            except (OSError, ConnectionError):
                lost += 1
                socks.remove(s)
                s.close()
        time.sleep(3)
    print("hog: done: %d answered, %d connections closed by the agent" % (answered, lost),
          flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""keysock_flood.py SOCKET SECONDS - connect to the key socket in a loop.

Run as a uid the agent refuses: each connection gets its "not permitted"
answer and is closed.  Prints how many connections were answered.
"""
import socket
import sys
import time


def main():
    path, secs = sys.argv[1], float(sys.argv[2])
    n = 0
    end = time.time() + secs
    while time.time() < end:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(2)
        try:
            s.connect(path)
            if s.recv(1024):
                n += 1
        except OSError:
            pass
        s.close()
    print(n)


if __name__ == "__main__":
    main()

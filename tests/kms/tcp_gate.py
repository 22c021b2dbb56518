#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
#
# tcp_gate.py - a TCP forwarder on 127.0.0.1 that can be cut: while the mode
# file says "down", new connections are closed at once and open ones are
# cut (an outage of the server behind it, without stopping the server).
# While it says "hold", new connections are accepted and then wait, silent,
# until the mode changes (a KMS that answers slowly); each held connection
# prints "held" on stdout when it starts to wait.
#
# usage: tcp_gate.py PORTFILE TARGET-PORT MODEFILE
# The listening port is written to PORTFILE once it accepts connections.
import os
import socket
import sys
import threading
import time

portfile, target, modefile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
live = set()
lock = threading.Lock()


def mode():
    try:
        with open(modefile) as f:
            return f.read().strip()
    except OSError:
        return ""


def down():
    return mode() == "down"


def pump(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def serve(c):
    if mode() == "hold":
        print("held", flush=True)
        while mode() == "hold":
            time.sleep(0.05)
    if down():
        c.close()
        return
    try:
        u = socket.create_connection(("127.0.0.1", target), timeout=5)
        u.settimeout(None)
    except OSError:
        c.close()
        return
    with lock:
        live.update((c, u))
    threading.Thread(target=pump, args=(u, c), daemon=True).start()
    pump(c, u)
    with lock:
        live.difference_update((c, u))
    c.close()
    u.close()


def watch():
    while True:
        if down():
            with lock:
                for s in list(live):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
        time.sleep(0.1)


ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", 0))
ls.listen(16)
threading.Thread(target=watch, daemon=True).start()
with open(portfile + ".tmp", "w") as f:
    f.write("%d\n" % ls.getsockname()[1])
os.rename(portfile + ".tmp", portfile)
while True:
    conn, _ = ls.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()

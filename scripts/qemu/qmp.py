#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Run QMP commands against a running QEMU, one after another.

Usage: scripts/qemu/qmp.py SOCKET COMMAND...

SOCKET is the unix socket of "-qmp unix:SOCKET,server=on,wait=off".  Each
COMMAND is a QMP command without arguments ("stop", "quit",
"query-vm-generation-id") or "hmp:LINE", a human monitor command line
("hmp:savevm snap1") sent through human-monitor-command.  Each reply is
printed as one line, "COMMAND -> JSON".  Exit status 1 as soon as a
command fails: a QMP error, or an HMP reply that starts with "Error"
(HMP reports its errors as text, e.g. "Error: Device 'x' is writable but
does not support snapshots").  Asynchronous events are printed and
skipped.
"""

import json
import socket
import sys

TIMEOUT_S = 300		# savevm of a large guest on a busy host is slow


def fail(msg):
    print(f"qmp: {msg}", file=sys.stderr)
    sys.exit(1)


def main():
    if len(sys.argv) < 3:
        fail("usage: qmp.py SOCKET COMMAND...")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(TIMEOUT_S)
    try:
        sock.connect(sys.argv[1])
    except OSError as e:
        fail(f"cannot connect to {sys.argv[1]}: {e} (is QEMU running "
             f"with -qmp unix:{sys.argv[1]},server=on?)")
    stream = sock.makefile("rw", encoding="utf-8")

    def reply():
        while True:
            line = stream.readline()
            if not line:
                fail("QEMU closed the QMP connection")
            msg = json.loads(line)
            if "event" in msg:
                print(f"event -> {line.strip()}")
                continue
            return msg

    def execute(name, args=None):
        req = {"execute": name}
        if args:
            req["arguments"] = args
        stream.write(json.dumps(req) + "\n")
        stream.flush()
        msg = reply()
        if "error" in msg:
            fail(f"{name}: {msg['error'].get('desc', msg['error'])}")
        return msg.get("return")

    greeting = reply()
    if "QMP" not in greeting:
        fail(f"no QMP greeting: {greeting}")
    execute("qmp_capabilities")
    for cmd in sys.argv[2:]:
        if cmd.startswith("hmp:"):
            out = execute("human-monitor-command",
                          {"command-line": cmd[4:]})
            print(f"{cmd} -> {json.dumps(out)}")
            if isinstance(out, str) and out.lstrip().startswith("Error"):
                fail(f"{cmd}: {out.strip()}")
        else:
            print(f"{cmd} -> {json.dumps(execute(cmd))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""A TLS peer that answers, but a byte at a time: tests/kms/kmip.sh.

  tls_trickle.py PORTFILE CERT KEY [INTERVAL_S]

Listens on 127.0.0.1 (port written to PORTFILE), completes the TLS
handshake, reads the request, then sends the header of a KMIP message
announcing a 1000-byte body and the body one byte every INTERVAL_S (0.2)
seconds, so no single read ever waits long: a client that bounds each
read, not the whole request, waits 200 s.  Written for these tests.
"""
import os
import socket
import ssl
import struct
import sys
import threading
import time


def serve(conn, ctx, interval):
    try:
        with ctx.wrap_socket(conn, server_side=True) as tls:
            tls.recv(65536)
            # Response Message (0x42007B), Structure (0x01), 1000 bytes
            tls.sendall(b'\x42\x00\x7b\x01' + struct.pack('>I', 1000))
            for _ in range(1000):
                time.sleep(interval)
                tls.sendall(b'\x00')
    except OSError:
        pass


def main():
    portfile, cert, key = sys.argv[1:4]
    interval = float(sys.argv[4]) if len(sys.argv) > 4 else 0.2
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(('127.0.0.1', 0))
    srv.listen(8)
    with open(portfile + '.tmp', 'w') as f:
        f.write(str(srv.getsockname()[1]))
    os.rename(portfile + '.tmp', portfile)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn, ctx, interval), daemon=True).start()


if __name__ == '__main__':
    main()

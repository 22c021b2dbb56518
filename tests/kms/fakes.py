#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Small loopback servers for tests/kms/aws_moto.sh.

  fakes.py imds PORTFILE LOG CREDSFILE [--bind ADDR]
      An IMDSv2-only instance metadata service: PUT /latest/api/token needs
      the TTL header (and refuses requests that came through a proxy, as
      AWS's does); every GET needs a token it issued.  Serves the role
      name "agent-role", the role credentials from CREDSFILE (re-read on
      every request) and placement/region.

  fakes.py fault PORTFILE LOG UPSTREAM MODEFILE [--tls CERT KEY]
      An HTTP server in front of UPSTREAM (host:port of moto).  For each
      request it reads MODEFILE: "pass" forwards it unchanged (Host header
      included, so SigV4 still verifies), anything else answers with the
      recorded AWS-format error of that name, hangs, or resets the
      connection.  "MODE:OP" applies MODE only to KMS operation OP
      (X-Amz-Target TrentService.OP) and passes the others, so moto still
      answers e.g. the DescribeKey that confirms an injected Decrypt
      error.  "stall" reads the request and never answers: the connection
      stays open until the mode changes (then it is dropped without an
      answer), the way a wedged KMS front end behaves.  "slowN" (e.g.
      "slow25") forwards the request after N seconds: a KMS that answers,
      correctly, but late; "slowN+NAME" answers the recorded error NAME
      after N seconds: a slow KMS that says no.  Also works as a forward
      proxy (absolute request URI).

  fakes.py control PORTFILE LOG CMDDIR
      GET /NAME runs the script CMDDIR/NAME (NAME is [a-z_]+) and answers
      200 with its output when it exits 0, else 500.  Lets a test inside
      the QEMU guest ask the host to change IAM policies at a moment it
      chooses, so it can time what follows with its own clock.

Each server writes the port it bound to PORTFILE, then one line per
request to LOG.  Written for these tests; the recorded answers follow the
AWS KMS JSON 1.1 wire format (status, x-amzn-ErrorType, {"__type",
"message"}).
"""
import http.client
import http.server
import json
import os
import secrets
import socket
import ssl
import struct
import sys
import threading
import time

# name -> (status, __type, message); the shape AWS KMS documents.
RECORDED = {
    'throttle': (400, 'ThrottlingException', 'Rate exceeded'),
    'throttle_retry_after': (400, 'ThrottlingException', 'Rate exceeded'),
    'internal': (500, 'KMSInternalException', ''),
    'unavailable503': (503, 'DependencyTimeoutException', ''),
    'key_unavailable': (500, 'KeyUnavailableException', ''),
    'disabled': (400, 'DisabledException',
                 'arn:aws:kms:us-east-1:123456789012:key/x is disabled.'),
    'pending_deletion': (400, 'KMSInvalidStateException',
                         'arn:aws:kms:us-east-1:123456789012:key/x is pending deletion.'),
    'invalid_signature': (400, 'InvalidSignatureException',
                          'The request signature we calculated does not match the signature you provided.'),
}


class Log:
    def __init__(self, path):
        self.f = open(path, 'a', buffering=1)
        self.lock = threading.Lock()

    def write(self, s):
        with self.lock:
            self.f.write(s + '\n')


class Quiet(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, *a):
        pass

    def body(self):
        n = int(self.headers.get('Content-Length') or 0)
        return self.rfile.read(n) if n else b''

    def answer(self, status, data, ctype='text/plain', extra=()):
        self.send_response(status)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(data)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)


def imds(portfile, log, credsfile, bind):
    tokens = set()
    lg = Log(log)

    class H(Quiet):
        def do_PUT(self):
            self.body()
            ttl = self.headers.get('X-aws-ec2-metadata-token-ttl-seconds')
            via_proxy = bool(self.headers.get('X-Forwarded-For') or
                             self.path.startswith('http'))
            lg.write(f'PUT {self.path} ttl={ttl} proxied={via_proxy}')
            if via_proxy:
                return self.answer(403, b'Forbidden')
            if self.path != '/latest/api/token' or not ttl or \
                    not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                return self.answer(400, b'Bad Request')
            t = secrets.token_urlsafe(32)
            tokens.add(t)
            self.answer(200, t.encode())

        def do_GET(self):
            ok = self.headers.get('X-aws-ec2-metadata-token') in tokens
            lg.write(f'GET {self.path} token={"ok" if ok else "missing"}')
            if not ok:
                return self.answer(401, b'Unauthorized')
            p = self.path
            if p == '/latest/meta-data/iam/security-credentials/':
                return self.answer(200, b'agent-role')
            if p == '/latest/meta-data/iam/security-credentials/agent-role':
                with open(credsfile, 'rb') as f:
                    return self.answer(200, f.read(), 'application/json')
            if p == '/latest/meta-data/placement/region':
                return self.answer(200, b'us-east-1')
            self.answer(404, b'Not Found')

    serve(H, bind, portfile, None)


def read_mode(modefile):
    with open(modefile) as f:
        return f.read().strip()


def fault(portfile, log, upstream, modefile, tls):
    lg = Log(log)
    uhost, uport = upstream.rsplit(':', 1)

    class H(Quiet):
        def handle_any(self):
            data = self.body()
            proxied = self.path.startswith('http://')
            mode = read_mode(modefile)
            if mode.startswith('throttle_once'):
                with open(modefile, 'w') as f:
                    f.write('pass\n')
                mode = 'throttle'
            mode, _, only = mode.partition(':')
            target = self.headers.get('X-Amz-Target') or ''
            if proxied or (only and target != 'TrentService.' + only):
                mode = 'pass'
            lg.write(f'{mode} {self.command} {self.path} '
                     f'target={self.headers.get("X-Amz-Target")}')
            if mode == 'pass':
                return self.forward(data, proxied)
            if mode == 'hang':
                time.sleep(20)
                self.close_connection = True
                return
            if mode == 'stall':
                while read_mode(modefile) == 'stall':
                    time.sleep(0.2)
                self.close_connection = True
                return
            if mode.startswith('slow') and '+' in mode:
                delay, _, mode = mode[4:].partition('+')
                time.sleep(int(delay))
            elif mode.startswith('slow') and mode[4:].isdigit():
                time.sleep(int(mode[4:]))
                return self.forward(data, proxied)
            if mode == 'reset':
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack('ii', 1, 0))
                self.close_connection = True
                self.connection.close()
                return
            status, typ, msg = RECORDED[mode]
            body = json.dumps({'__type': typ, 'message': msg}).encode()
            extra = [('x-amzn-RequestId', 'fault-' + secrets.token_hex(8))]
            if mode == 'throttle_retry_after':
                extra.append(('Retry-After', '3'))
            self.answer(status, body, 'application/x-amz-json-1.1', extra)

        def forward(self, data, proxied):
            path = self.path
            host, port = uhost, int(uport)
            if proxied:
                rest = path[len('http://'):]
                hp, _, p = rest.partition('/')
                host, _, port = hp.rpartition(':')
                port = int(port or 80)
                path = '/' + p
            c = http.client.HTTPConnection(host, port, timeout=30)
            c.putrequest(self.command, path, skip_host=True,
                         skip_accept_encoding=True)
            for k, v in self.headers.items():
                if k.lower() not in ('connection', 'proxy-connection'):
                    c.putheader(k, v)
            c.endheaders(data)
            r = c.getresponse()
            out = r.read()
            extra = [(k, v) for k, v in r.getheaders()
                     if k.lower() not in ('content-length', 'content-type',
                                          'connection', 'transfer-encoding',
                                          'server', 'date')]
            self.answer(r.status, out, r.getheader('Content-Type') or
                        'application/octet-stream', extra)
            c.close()

        do_POST = do_GET = do_PUT = handle_any

    serve(H, '127.0.0.1', portfile, tls)


def control(portfile, log, cmddir):
    import re
    import subprocess
    lg = Log(log)

    class H(Quiet):
        def do_GET(self):
            name = self.path.strip('/')
            script = os.path.join(cmddir, name)
            if not re.fullmatch('[a-z_]+', name) or not os.path.isfile(script):
                lg.write(f'GET {self.path} unknown')
                return self.answer(404, b'no such action\n')
            r = subprocess.run(['bash', script], capture_output=True, timeout=120)
            lg.write(f'GET {self.path} rc={r.returncode}')
            self.answer(200 if r.returncode == 0 else 500, r.stdout + r.stderr)

    serve(H, '127.0.0.1', portfile, None)


def serve(handler, bind, portfile, tls):
    class S(http.server.ThreadingHTTPServer):
        daemon_threads = True
        address_family = socket.AF_INET6 if ':' in bind else socket.AF_INET

    s = S((bind, 0), handler)
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tls[0], tls[1])
        s.socket = ctx.wrap_socket(s.socket, server_side=True)
    tmp = portfile + '.tmp'
    with open(tmp, 'w') as f:
        f.write(f'{s.server_address[1]}\n')
    os.rename(tmp, portfile)
    s.serve_forever()


def main():
    a = sys.argv[1:]
    if a[0] == 'imds':
        bind = a[a.index('--bind') + 1] if '--bind' in a else '127.0.0.1'
        imds(a[1], a[2], a[3], bind)
    elif a[0] == 'control':
        control(a[1], a[2], a[3])
    elif a[0] == 'fault':
        tls = a[a.index('--tls') + 1:a.index('--tls') + 3] if '--tls' in a else None
        fault(a[1], a[2], a[3], a[4], tls)
    else:
        raise SystemExit('usage: fakes.py imds|fault ...')


if __name__ == '__main__':
    main()

# SPDX-License-Identifier: GPL-2.0
"""A KMS quota in front of moto, for the fleet harness (fleet.py).

Listens on 127.0.0.1 only and forwards every request to moto (also on
loopback).  KMS requests (X-Amz-Target: TrentService.*) pass a token bucket
of `rate` requests/s (burst: one second's worth); beyond it they are
answered as AWS KMS answers a caller over its quota - HTTP 400,
x-amzn-ErrorType and __type ThrottlingException - without reaching moto.
SQS and everything else pass unlimited.  Every request is recorded:
(answer time, kind, operation, status, throttled, client port, arrival
time, proxy port).  fleet.py maps the client port (each agent keeps its
connection) to the agent; or, exactly, the proxy port: listen(n) opens n
more ports, one per agent, served by the same handler, so the port a
request came in on says whose it is (SigV4 signs the host and port the
agent was given, which reach moto unchanged in the Host header).

The quota can be changed while it runs (set_rate); rate None: no quota.
"""
import http.client
import http.server
import json
import queue
import selectors
import socket
import socketserver
import threading
import time


class Bucket:
    """Token bucket: `rate` tokens/s, at most `rate` in store."""

    def __init__(self, rate):
        self.lock = threading.Lock()
        self.set_rate(rate)

    def set_rate(self, rate):
        with self.lock:
            self.rate = rate
            self.tokens = rate if rate else 0.0
            self.t = time.monotonic()

    def take(self):
        with self.lock:
            if self.rate is None:
                return True
            now = time.monotonic()
            self.tokens = min(self.rate, self.tokens + (now - self.t) * self.rate)
            self.t = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return True
            return False


class Proxy:
    def __init__(self, upstream_port, rate=None):
        self.upstream_port = upstream_port
        self.bucket = Bucket(rate)
        self.records = []           # see record()
        self.sel = selectors.DefaultSelector()
        self.extra = []             # listen()'s sockets
        self.acceptor = None
        self.rec_lock = threading.Lock()
        self.pool = queue.LifoQueue()
        self.errors = 0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def log_message(self, *a):
                pass

            def _any(self):
                t_in = time.time()
                me = (t_in, self.request.getsockname()[1])
                n = int(self.headers.get('Content-Length') or 0)
                body = self.rfile.read(n) if n else b''
                target = self.headers.get('X-Amz-Target') or ''
                kind = ('kms' if target.startswith('TrentService.') else
                        'sqs' if target.startswith('AmazonSQS.') else 'other')
                op = target.split('.', 1)[1] if '.' in target else self.command
                if kind == 'kms' and not proxy.bucket.take():
                    proxy.record(kind, op, 400, True, self.client_address[1], *me)
                    out = json.dumps({'__type': 'ThrottlingException',
                                      'message': 'Rate exceeded'}).encode()
                    self.send_response(400)
                    self.send_header('x-amzn-ErrorType', 'ThrottlingException:')
                    self.send_header('Content-Type', 'application/x-amz-json-1.1')
                    self.send_header('Content-Length', str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                    return
                status, headers, data = proxy.forward(self.command, self.path,
                                                      self.headers, body)
                proxy.record(kind, op, status, False, self.client_address[1], *me)
                self.send_response(status)
                for k, v in headers:
                    if k.lower() not in ('content-length', 'transfer-encoding',
                                         'connection', 'server', 'date'):
                        self.send_header(k, v)
                self.send_header('Content-Length', str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _any

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            request_queue_size = 4096
            allow_reuse_address = True

            def handle_error(self, request, client_address):
                # An agent that went away (stopped, timed out): counted only.
                proxy.errors += 1

        self.server = Server(('127.0.0.1', 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def record(self, kind, op, status, throttled, port=0, t_in=None, lport=0):
        """(answer time, kind, op, status, throttled, client port,
        arrival time (request headers read), proxy port)."""
        now = time.time()
        with self.rec_lock:
            self.records.append((now, kind, op, status, throttled, port,
                                 now if t_in is None else t_in, lport))

    def listen(self, n):
        """Open @n more ports on 127.0.0.1, served like the first; their numbers."""
        ports = []
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(('127.0.0.1', 0))
            s.listen(128)
            s.setblocking(False)
            self.extra.append(s)
            self.sel.register(s, selectors.EVENT_READ)
            ports.append(s.getsockname()[1])
        if not self.acceptor:
            # One thread accepts on all of them (not a serve_forever each:
            # 1,000 threads polling twice a second on a busy machine).
            self.acceptor = threading.Thread(target=self._accept, daemon=True)
            self.acceptor.start()
        return ports

    def _accept(self):
        while self.extra:
            for key, _ in self.sel.select(0.5):
                try:
                    conn, addr = key.fileobj.accept()
                except OSError:
                    continue
                conn.setblocking(True)
                self.server.process_request(conn, addr)

    def forward(self, method, path, headers, body):
        try:
            c = self.pool.get_nowait()
        except queue.Empty:
            c = http.client.HTTPConnection('127.0.0.1', self.upstream_port, timeout=60)
        hdrs = {k: v for k, v in headers.items()
                if k.lower() not in ('connection', 'keep-alive', 'proxy-connection')}
        try:
            c.request(method, path, body=body, headers=hdrs)
            r = c.getresponse()
            data = r.read()
            out = (r.status, r.getheaders(), data)
            self.pool.put(c)
            return out
        except (OSError, http.client.HTTPException) as ex:
            c.close()
            return (502, [('Content-Type', 'text/plain')], str(ex).encode())

    def set_rate(self, rate):
        self.bucket.set_rate(rate)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        socks, self.extra = self.extra, []
        if self.acceptor:
            self.acceptor.join()
        for s in socks:
            self.sel.unregister(s)
            s.close()
        self.sel.close()

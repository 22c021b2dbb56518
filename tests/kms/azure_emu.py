#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""A small Azure Key Vault emulator for tests/kms/azure.sh and azure_guest.sh.

  azure_emu.py DIR --cert PEM --key PEM [--tenant T] [--log FILE]

Serves, on 127.0.0.1 (ports picked by the kernel, written to DIR/kv.port,
DIR/imds.port and DIR/admin.port once listening):

  kv (HTTPS, the given certificate)
    Key Vault data plane, api-version 7.4, with the documented REST shapes:
      POST   /keys/{name}/create                      KeyBundle
      GET    /keys/{name}[/{version}]                 KeyBundle (public JWK)
      PATCH  /keys/{name}[/{version}]                 {"attributes":{"enabled"}}
      DELETE /keys/{name}                             DeletedKeyBundle (soft delete)
      GET    /deletedkeys/{name}, DELETE (purge), POST .../recover
      POST   /keys/{name}/{version}/wrapkey|unwrapkey {"alg","value"} -> {"kid","value"}
    An empty version ("/keys/k//wrapkey") means the current version.
    Algorithms: RSA-OAEP-256 and RSA-OAEP (RSA keys), A256KW (oct-HSM keys,
    as Managed HSM).  Every request needs "Authorization: Bearer T" with a
    token this emulator issued, unexpired, for resource https://vault.azure.net;
    else 401 with the challenge
      WWW-Authenticate: Bearer authorization="{authority}/{tenant}",
                        resource="https://vault.azure.net"
    Errors use Key Vault's body {"error":{"code","message","innererror"}}:
      disabled version (unwrap, decrypt, get material): 403 Forbidden/KeyDisabled
      (wrapkey on a disabled key still works, as in Azure: a public-key op)
      principal without the data action: 403 Forbidden/ForbiddenByRbac
      missing or deleted key: 404 KeyNotFound; bad ciphertext: 400 BadParameter
      fault "throttle": 429 Throttled + Retry-After; "unavailable": 503;
      "firewall": 403 Forbidden/ForbiddenByFirewall (the vault's network
      rules refuse the caller's address); "bad_parameter": unwrapkey
      answers 400 BadParameter "The parameter is incorrect." (GET still
      works, so the key's state can be read); "bad_parameter_get_503": the
      same, but GET answers 503 (the key's state cannot be read now)
    Also the Entra ID token endpoint for service principals:
      POST /{tenant}/oauth2/v2.0/token  (client_credentials; bad secret ->
      401 invalid_client AADSTS7000215)

  imds (HTTP): GET /metadata/identity/oauth2/token?api-version&resource
    [&client_id], "Metadata: true" required (else 400); the system-assigned
    identity, or a user-assigned one by client_id (unknown -> 400
    "Identity not found").  Faults "imds_410" (upgrading), "imds_429",
    "imds_500".

  admin (HTTP, JSON POST /NAME, answers JSON): state changes for the tests:
    key_create {name, kty RSA|oct-HSM}, key_rotate {name},
    key_enable {name, [version], enabled}, key_delete {name},
    key_purge {name}, key_recover {name}, grant {principal, actions[]},
    sp {client_id, secret} (adds a secret: a service principal may have
    several, as in Entra ID), sp_remove {client_id, secret},
    identity {client_id}, fault {mode},
    token_lifetime {seconds}, revoke_tokens {} (every issued token becomes
    unknown: 401 with a fresh challenge), stats {} -> counters,
    tokens {principal} -> the tokens issued to it (for memory scans).

Principals: "system" (system-assigned identity), a user-assigned client_id,
a service principal's client_id, or "admin" (tokens from admin "token").
Each line of LOG: "kv|imds|admin METHOD PATH len=BODYLEN principal=P
auth=ok|none|expired|bad status=N".  Written for these tests; not a Key Vault.
"""
import base64
import http.server
import json
import os
import secrets
import socket
import ssl
import sys
import threading
import time
import urllib.parse

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.keywrap import (InvalidUnwrap,
                                                    aes_key_unwrap,
                                                    aes_key_wrap)

RESOURCE = 'https://vault.azure.net'
# 7.4 is what the agent sends; Debian's SDK (azure-keyvault-keys 4.8.0b3)
# defaults to 7.4-preview.1.  The wrap/unwrap shapes are the same in all.
API_VERSIONS = ('7.0', '7.1', '7.2', '7.3', '7.4-preview.1', '7.4')
DATA_ACTIONS = ('wrapKey', 'unwrapKey', 'get', 'encrypt', 'decrypt')


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b'=').decode()


def unb64u(s):
    s = s.replace('+', '-').replace('/', '_')
    return base64.urlsafe_b64decode(s + '=' * (-len(s) % 4))


def int_b64u(n):
    return b64u(n.to_bytes((n.bit_length() + 7) // 8, 'big'))


class KeyVersion:
    def __init__(self, kty):
        self.kty = kty
        self.version = secrets.token_hex(16)
        self.enabled = True
        self.created = int(time.time())
        if kty in ('RSA', 'RSA-HSM'):
            self.priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        else:
            self.priv = secrets.token_bytes(32)


class State:
    def __init__(self, tenant, log):
        self.lock = threading.Lock()
        self.tenant = tenant
        self.keys = {}          # name -> [KeyVersion], current last
        self.deleted = {}       # name -> [KeyVersion]
        self.grants = {'admin': set(DATA_ACTIONS)}
        self.sps = {}           # client_id -> set of secrets
        self.identities = {'system'}
        self.tokens = {}        # token -> (principal, resource, expires_on)
        self.lifetime = 3600
        self.fault = 'pass'
        self.stats = {'tokens_issued': 0, 'expired_token_requests': 0,
                      'kv_requests': 0, 'challenges': 0, 'unwraps': 0,
                      'wraps': 0, 'imds_requests': 0, 'aad_requests': 0}
        self.logf = open(log, 'a', buffering=1) if log else None

    def log(self, line):
        if self.logf:
            with self.lock:
                self.logf.write(line + '\n')

    def issue(self, principal, resource):
        tok = 'emu.' + secrets.token_urlsafe(32)
        exp = int(time.time()) + self.lifetime
        with self.lock:
            self.tokens[tok] = (principal, resource.rstrip('/'), exp)
            self.stats['tokens_issued'] += 1
        return tok, exp


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    timeout = 30  # a client that stalls mid-request is dropped
    st = None
    role = None

    def log_message(self, *a):
        pass

    def body(self):
        n = int(self.headers.get('Content-Length') or 0)
        return self.rfile.read(n) if n else b''

    def send_json(self, status, obj, extra=()):
        data = json.dumps(obj).encode() if obj is not None else b''
        self.send_response(status)
        if obj is not None:
            self.send_header('Content-Type', 'application/json; charset=utf-8')
        self.send_header('Content-Length', str(len(data)))
        self.send_header('x-ms-request-id', secrets.token_hex(16))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        return status

    def kv_error(self, status, code, msg, inner=None, extra=()):
        err = {'code': code, 'message': msg}
        if inner:
            err['innererror'] = {'code': inner}
        return self.send_json(status, {'error': err}, extra)

    # ---- dispatch ----------------------------------------------------------
    def handle_any(self):
        data = self.body()
        u = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(u.query)
        parts = [urllib.parse.unquote(p) for p in u.path.split('/')[1:]]
        who, auth, status = '-', '-', 0
        try:
            if self.role == 'admin':
                status = self.admin(parts, data)
            elif self.role == 'imds':
                who, status = self.imds(u.path, q)
            elif len(parts) == 4 and parts[1:] == ['oauth2', 'v2.0', 'token']:
                who, status = self.aad(parts[0], data)
            else:
                who, auth, status = self.kv(parts, q, data)
        except (ValueError, KeyError, json.JSONDecodeError) as ex:
            status = self.kv_error(400, 'BadParameter', f'Invalid request: {ex}')
        self.st.log(f'{self.role} {self.command} {u.path} len={len(data)} principal={who} '
                    f'auth={auth} status={status}')

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = handle_any

    # ---- Entra ID --------------------------------------------------------------
    def aad(self, tenant, data):
        st = self.st
        with st.lock:
            st.stats['aad_requests'] += 1
        f = urllib.parse.parse_qs(data.decode())
        get = lambda k: (f.get(k) or [''])[0]
        cid = get('client_id')
        if self.command != 'POST' or get('grant_type') != 'client_credentials' or \
                not get('scope').endswith('/.default'):
            return cid, self.send_json(400, {'error': 'invalid_request',
                                             'error_description': 'AADSTS900144: bad request'})
        if tenant != st.tenant:
            return cid, self.send_json(400, {'error': 'invalid_request',
                                             'error_description': f"AADSTS90002: Tenant '{tenant}' not found."})
        given = get('client_secret')
        if not any(secrets.compare_digest(x, given) for x in st.sps.get(cid, ())):
            return cid, self.send_json(401, {'error': 'invalid_client',
                                             'error_description': 'AADSTS7000215: Invalid client secret provided.',
                                             'error_codes': [7000215]})
        if st.fault == 'aad_503':
            return cid, self.send_json(503, {'error': 'temporarily_unavailable'})
        tok, _ = st.issue(cid, get('scope')[:-len('/.default')])
        return cid, self.send_json(200, {'token_type': 'Bearer', 'expires_in': st.lifetime,
                                         'ext_expires_in': st.lifetime, 'access_token': tok})

    # ---- IMDS -------------------------------------------------------------------
    def imds(self, path, q):
        st = self.st
        with st.lock:
            st.stats['imds_requests'] += 1
        if path != '/metadata/identity/oauth2/token' or self.command != 'GET':
            return '-', self.send_json(404, {'error': 'not_found'})
        if self.headers.get('Metadata') != 'true':
            return '-', self.send_json(400, {'error': 'invalid_request',
                                             'error_description': 'Required metadata header not specified'})
        if not q.get('api-version') or not q.get('resource'):
            return '-', self.send_json(400, {'error': 'invalid_request',
                                             'error_description': 'Required query variable missing'})
        for code in (410, 429, 500):
            if st.fault == f'imds_{code}':
                return '-', self.send_json(code, {'error': 'unavailable'})
        who = (q.get('client_id') or ['system'])[0]
        if who not in st.identities:
            return who, self.send_json(400, {'error': 'invalid_request',
                                             'error_description': 'Identity not found'})
        resource = q['resource'][0]
        tok, exp = st.issue(who, resource)
        return who, self.send_json(200, {
            'access_token': tok, 'client_id': who, 'expires_in': str(st.lifetime),
            'expires_on': str(exp), 'ext_expires_in': str(st.lifetime),
            'not_before': str(exp - st.lifetime), 'resource': resource,
            'token_type': 'Bearer'})

    # ---- Key Vault --------------------------------------------------------------
    def challenge(self, msg):
        st = self.st
        with st.lock:
            st.stats['challenges'] += 1
        host = f'https://{self.headers.get("Host")}'
        return self.kv_error(401, 'Unauthorized', msg, extra=[
            ('WWW-Authenticate',
             f'Bearer authorization="{host}/{st.tenant}", resource="{RESOURCE}"')])

    def kv(self, parts, q, data):
        st = self.st
        with st.lock:
            st.stats['kv_requests'] += 1
        h = self.headers.get('Authorization') or ''
        if not h.startswith('Bearer '):
            return '-', 'none', self.challenge('AKV10000: Request is missing a Bearer or PoP token.')
        t = st.tokens.get(h[7:])
        if not t:
            return '-', 'bad', self.challenge('AKV10032: Invalid issuer.')
        who, res, exp = t
        if exp <= time.time():
            with st.lock:
                st.stats['expired_token_requests'] += 1
            return who, 'expired', self.challenge('AKV10022: Token is expired.')
        if res != RESOURCE:
            return who, 'bad', self.challenge(f'AKV10022: Invalid audience. Expected {RESOURCE}, found: {res}.')
        if (q.get('api-version') or [''])[0] not in API_VERSIONS:
            return who, 'ok', self.kv_error(400, 'BadParameter',
                                            'The specified version of the API is not supported.')
        if st.fault == 'throttle':
            return who, 'ok', self.kv_error(
                429, 'Throttled', 'Request was not processed because too many requests were received. '
                'Reason: A single client issued more than 4000 requests in 10 seconds.',
                extra=[('Retry-After', '1')])
        if st.fault == 'unavailable' or (st.fault == 'bad_parameter_get_503' and
                                         self.command == 'GET'):
            return who, 'ok', self.kv_error(503, 'ServiceUnavailable', 'The service is unavailable.')
        if st.fault == 'firewall':
            return who, 'ok', self.kv_error(
                403, 'Forbidden', 'Client address is not authorized and caller is not a trusted '
                f'service.\r\nClient address: {self.client_address[0]}\r\nCaller: appid={who}\r\n'
                'Vault: emu;location=local', 'ForbiddenByFirewall')
        return who, 'ok', self.kv_op(who, parts, data)

    def allowed(self, who, action):
        return action in self.st.grants.get(who, ())

    def forbidden(self, action):
        return self.kv_error(403, 'Forbidden',
                             f"Caller is not authorized to perform action on resource.\r\n"
                             f"Action: 'Microsoft.KeyVault/vaults/keys/{action}/action'",
                             'ForbiddenByRbac')

    def find(self, name, version):
        vs = self.st.keys.get(name)
        if not vs:
            return None
        if not version:
            return vs[-1]
        for v in vs:
            if v.version == version:
                return v
        return None

    def not_found(self, name):
        return self.kv_error(404, 'KeyNotFound',
                             f'A key with (name/id) {name} was not found in this key vault. '
                             'If you recently deleted this key you may be able to recover it '
                             'using the correct recovery command.')

    def kid(self, name, v):
        return f'https://{self.headers.get("Host")}/keys/{name}/{v.version}'

    def bundle(self, name, v, deleted=False):
        key = {'kid': self.kid(name, v), 'kty': v.kty}
        if v.kty in ('RSA', 'RSA-HSM'):
            pn = v.priv.public_key().public_numbers()
            key.update(n=int_b64u(pn.n), e=int_b64u(pn.e),
                       key_ops=['encrypt', 'decrypt', 'wrapKey', 'unwrapKey'])
        else:
            key.update(key_ops=['wrapKey', 'unwrapKey'])
        b = {'key': key, 'attributes': {
            'enabled': v.enabled, 'created': v.created, 'updated': v.created,
            'recoveryLevel': 'Recoverable+Purgeable', 'recoverableDays': 90}}
        if deleted:
            b.update(recoveryId=f'https://{self.headers.get("Host")}/deletedkeys/{name}',
                     deletedDate=int(time.time()), scheduledPurgeDate=int(time.time()) + 90 * 86400)
        return b

    def kv_op(self, who, parts, data):
        st = self.st
        m = self.command
        if parts and parts[0] == 'deletedkeys' and len(parts) >= 2:
            name = parts[1]
            with st.lock:
                vs = st.deleted.get(name)
                if not vs:
                    return self.kv_error(404, 'KeyNotFound', f'Deleted Key not found: {name}')
                if m == 'GET' and len(parts) == 2:
                    return self.send_json(200, self.bundle(name, vs[-1], True))
                if m == 'DELETE' and len(parts) == 2:
                    del st.deleted[name]
                    return self.send_json(204, None)
                if m == 'POST' and parts[2:] == ['recover']:
                    st.keys[name] = st.deleted.pop(name)
                    return self.send_json(200, self.bundle(name, st.keys[name][-1]))
            return self.kv_error(400, 'BadParameter', 'Unsupported operation')
        if not parts or parts[0] != 'keys' or len(parts) < 2:
            return self.kv_error(404, 'NotFound', 'Unknown path')
        name = parts[1]
        rest = parts[2:]
        if m == 'POST' and rest == ['create']:
            req = json.loads(data or b'{}')
            if who != 'admin':
                return self.forbidden('create')
            kty = req.get('kty', 'RSA')
            if kty not in ('RSA', 'RSA-HSM', 'oct-HSM'):
                return self.kv_error(400, 'BadParameter', f'Unsupported kty {kty}')
            with st.lock:
                v = KeyVersion(kty)
                st.keys.setdefault(name, []).append(v)
            return self.send_json(200, self.bundle(name, v))
        if m == 'DELETE' and not rest:
            if who != 'admin':
                return self.forbidden('delete')
            with st.lock:
                vs = st.keys.pop(name, None)
                if not vs:
                    return self.not_found(name)
                st.deleted[name] = vs
            return self.send_json(200, self.bundle(name, vs[-1], True))
        if m in ('GET', 'PATCH') and len(rest) <= 1:
            v = self.find(name, rest[0] if rest else '')
            if not v:
                return self.not_found(name)
            if m == 'PATCH':
                if who != 'admin':
                    return self.forbidden('write')
                attrs = json.loads(data or b'{}').get('attributes', {})
                if 'enabled' in attrs:
                    v.enabled = bool(attrs['enabled'])
            elif not self.allowed(who, 'get'):
                return self.forbidden('read')
            return self.send_json(200, self.bundle(name, v))
        if m == 'POST' and len(rest) == 2 and rest[1] in ('wrapkey', 'unwrapkey'):
            return self.wrap_op(who, name, rest[0], rest[1], data)
        return self.kv_error(400, 'BadParameter', 'Unsupported operation')

    def wrap_op(self, who, name, version, op, data):
        st = self.st
        action = 'wrapKey' if op == 'wrapkey' else 'unwrapKey'
        if not self.allowed(who, action):
            return self.forbidden('wrap' if op == 'wrapkey' else 'unwrap')
        v = self.find(name, version)
        if not v:
            return self.not_found(name)
        req = json.loads(data)
        alg, value = req.get('alg'), req.get('value')
        if not isinstance(alg, str) or not isinstance(value, str):
            return self.kv_error(400, 'BadParameter', 'Property alg and value are required.')
        # (the fault first: an answer that does not say why, whatever the key's state)
        if op == 'unwrapkey' and st.fault in ('bad_parameter', 'bad_parameter_get_503'):
            return self.kv_error(400, 'BadParameter', 'The parameter is incorrect.\r\n')
        # Azure refuses private-key operations on a disabled key; wrapping
        # is a public-key operation and still succeeds.
        if op == 'unwrapkey' and not v.enabled:
            return self.kv_error(403, 'Forbidden',
                                 'Operation unwrapKey is not allowed on a disabled key.', 'KeyDisabled')
        rsa_algs = {'RSA-OAEP-256': hashes.SHA256(), 'RSA-OAEP': hashes.SHA1()}
        try:
            raw = unb64u(value)
        except ValueError:
            return self.kv_error(400, 'BadParameter', 'Invalid base64url in value.')
        try:
            if v.kty.startswith('RSA') and alg in rsa_algs:
                h = rsa_algs[alg]
                pad = padding.OAEP(mgf=padding.MGF1(algorithm=h), algorithm=h, label=None)
                out = v.priv.public_key().encrypt(raw, pad) if op == 'wrapkey' \
                    else v.priv.decrypt(raw, pad)
            elif v.kty == 'oct-HSM' and alg == 'A256KW':
                out = aes_key_wrap(v.priv, raw) if op == 'wrapkey' else aes_key_unwrap(v.priv, raw)
            else:
                return self.kv_error(400, 'BadParameter',
                                     f'Algorithm {alg} is not valid for key type {v.kty}.')
        except (ValueError, InvalidUnwrap):
            return self.kv_error(400, 'BadParameter', 'Invalid parameter: value.')
        with st.lock:
            st.stats['wraps' if op == 'wrapkey' else 'unwraps'] += 1
        return self.send_json(200, {'kid': self.kid(name, v), 'value': b64u(out)})

    # ---- admin --------------------------------------------------------------------
    def admin(self, parts, data):
        st = self.st
        a = json.loads(data or b'{}')
        op = parts[0] if parts else ''
        with st.lock:
            if op == 'key_create':
                v = KeyVersion(a.get('kty', 'RSA'))
                st.keys.setdefault(a['name'], []).append(v)
                return self.send_json(200, {'version': v.version})
            if op == 'key_rotate':
                v = KeyVersion(st.keys[a['name']][-1].kty)
                st.keys[a['name']].append(v)
                return self.send_json(200, {'version': v.version})
            if op == 'key_enable':
                vs = st.keys.get(a['name'], [])
                for v in vs:
                    if not a.get('version') or v.version == a['version']:
                        v.enabled = bool(a['enabled'])
                return self.send_json(200 if vs else 404, {'versions': len(vs)})
            if op == 'key_delete':
                st.deleted[a['name']] = st.keys.pop(a['name'])
                return self.send_json(200, {})
            if op == 'key_purge':
                st.deleted.pop(a['name'], None)
                return self.send_json(200, {})
            if op == 'key_recover':
                st.keys[a['name']] = st.deleted.pop(a['name'])
                return self.send_json(200, {})
            if op == 'grant':
                st.grants[a['principal']] = set(a['actions'])
                return self.send_json(200, {})
            if op == 'sp':
                st.sps.setdefault(a['client_id'], set()).add(a['secret'])
                return self.send_json(200, {})
            if op == 'sp_remove':
                st.sps.get(a['client_id'], set()).discard(a['secret'])
                return self.send_json(200, {})
            if op == 'identity':
                st.identities.add(a['client_id'])
                return self.send_json(200, {})
            if op == 'fault':
                st.fault = a['mode']
                return self.send_json(200, {})
            if op == 'token_lifetime':
                st.lifetime = int(a['seconds'])
                return self.send_json(200, {})
            if op == 'revoke_tokens':
                st.tokens.clear()
                return self.send_json(200, {})
            if op == 'stats':
                return self.send_json(200, st.stats)
            if op == 'tokens':
                who = a.get('principal', 'system')
                return self.send_json(200, {'tokens': [t for t, v in st.tokens.items()
                                                       if v[0] == who]})
        if op == 'token':
            tok, exp = st.issue(a.get('principal', 'admin'), a.get('resource', RESOURCE))
            return self.send_json(200, {'token': tok, 'expires_on': exp})
        return self.send_json(404, {'error': f'unknown admin action {op}'})


def serve(st, role, portfile, ctx=None):
    class H(Handler):
        pass
    H.st, H.role = st, role

    class S(http.server.ThreadingHTTPServer):
        daemon_threads = True
        address_family = socket.AF_INET

    s = S(('127.0.0.1', 0), H)
    if ctx:
        s.socket = ctx.wrap_socket(s.socket, server_side=True)
    tmp = portfile + '.tmp'
    with open(tmp, 'w') as f:
        f.write(f'{s.server_address[1]}\n')
    os.rename(tmp, portfile)
    t = threading.Thread(target=s.serve_forever, daemon=True)
    t.start()
    return t


def main():
    a = sys.argv[1:]
    if not a or a[0].startswith('-'):
        raise SystemExit(__doc__)

    def opt(name, default=None):
        return a[a.index(name) + 1] if name in a else default
    d = a[0]
    st = State(opt('--tenant', '00000000-0000-0000-0000-0000000c0ffe'), opt('--log'))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(opt('--cert'), opt('--key'))
    serve(st, 'kv', os.path.join(d, 'kv.port'), ctx)
    serve(st, 'imds', os.path.join(d, 'imds.port'))
    serve(st, 'admin', os.path.join(d, 'admin.port'))
    while True:
        time.sleep(3600)


if __name__ == '__main__':
    main()

#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""A small Google Cloud KMS emulator on 127.0.0.1, for tests/kms/gcp*.sh.

No Cloud KMS server runs offline, so the tests run this one, and hold it
to the official client first (gcloud kms encrypt/decrypt, see gcp.sh):
a request the agent gets right here is one Cloud KMS would accept.  It
follows the documented REST shapes (cloudkms.googleapis.com v1):

  POST v1/{cryptoKey}:encrypt   {plaintext, additionalAuthenticatedData,
                                 plaintextCrc32c, additionalAuthenticatedDataCrc32c}
       -> {name (the primary version), ciphertext, ciphertextCrc32c,
           verifiedPlaintextCrc32c, verifiedAdditionalAuthenticatedDataCrc32c,
           protectionLevel}
  POST v1/{cryptoKey}:decrypt   {ciphertext, additionalAuthenticatedData,
                                 ciphertextCrc32c, additionalAuthenticatedDataCrc32c}
       -> {plaintext, plaintextCrc32c, usedPrimary, protectionLevel}
  POST v1/projects/P/locations/L/keyRings?keyRingId=R
  POST v1/{keyRing}/cryptoKeys?cryptoKeyId=K   {purpose: ENCRYPT_DECRYPT}
  GET  v1/{cryptoKey}, GET v1/{cryptoKeyVersion} (the latter also for
       roles/cloudkms.viewer on the key)
  POST v1/{cryptoKey}/cryptoKeyVersions          (a new version)
  POST v1/{cryptoKey}:updatePrimaryVersion       {cryptoKeyVersionId}
  PATCH v1/{cryptoKeyVersion}?updateMask=state   {state: ENABLED|DISABLED}
  POST v1/{cryptoKeyVersion}:destroy / :restore
  POST v1/{cryptoKey}:getIamPolicy / :setIamPolicy {policy: {bindings}}

Errors are google.rpc.Status JSON, {"error": {"code", "message", "status"}},
with the HTTP codes and messages Cloud KMS uses: UNAUTHENTICATED (401)
without a valid bearer token, PERMISSION_DENIED (403) without a role on
the key, NOT_FOUND (404), FAILED_PRECONDITION (400) for a version that is
not ENABLED, INVALID_ARGUMENT (400) for a CRC32C that does not match its
field ("The checksum in field plaintext_crc32c did not match the data in
field plaintext."), for unknown JSON fields, and for a ciphertext or AAD
that does not decrypt ("Decryption failed: verify that 'name' refers to
the correct CryptoKey.").  A destroyed version is DESTROY_SCHEDULED, then
DESTROYED after --destroy-after seconds (Cloud KMS waits >= 1 day).

Ciphertexts are the emulator's own: version number, nonce, AES-256-GCM
under the version's key with the key name and the AAD authenticated.

Tokens:
  POST /token  the OAuth 2.0 token endpoint of a service-account key
      (grant_type urn:ietf:params:oauth:grant-type:jwt-bearer): the JWT's
      RS256 signature is verified with the public key registered for its
      kid and iss (--service-account), aud must be Google's documented
      https://oauth2.googleapis.com/token, exp - iat
      <= 3600 s and now within it, scope must allow Cloud KMS.  Errors as
      Google's: 400 {"error": "invalid_grant", "error_description"}.
  DELETE v1/projects/-/serviceAccounts/EMAIL/keys/KID  (IAM's shape)
      deletes a registered key: its JWTs are refused from then on.
  The metadata server (plain HTTP, its own port): GET
      /computeMetadata/v1/instance/service-accounts/{default|EMAIL}/token
      needs "Metadata-Flavor: Google" (else 403) and answers with it.
  --token TOKEN=PRINCIPAL adds a fixed token (for gcloud's
      --access-token-file); principals named with --owner may do anything.
  Issued tokens live --token-lifetime seconds and are refused after.

The emulator's own control plane, /emu/... on the KMS port (tests only):
  POST /emu/config {"token_lifetime": S, "metadata_flavor": bool,
                    "destroy_after": S, "revoke_tokens": true}
      (revoke_tokens: every issued token is refused from now on)
  POST /emu/fault  {"mode": M, "count": N}  the next N (-1: all) encrypt/
      decrypt calls answer M: UNAVAILABLE, RESOURCE_EXHAUSTED, INTERNAL,
      DEADLINE_EXCEEDED (as Status errors), "ekm_unreachable" and
      "ekm_denied" (decrypt only: Cloud EKM's FAILED_PRECONDITION with
      PreconditionFailure details; ekm_denied also disables the key version,
      as Cloud EKM does), "bad_crc" (a 200 answer whose
      CRC32C does not match), "unverified" (an encrypt answer without the
      verified*Crc32c flags), "other_key" (an encrypt answer naming a
      version of another key), "hang" (no answer for 30 s); "none" ends it.
  POST /emu/metadata {"up": bool}  the metadata server answers, or 503.

usage: gcp_emu.py --cert PEM --key PEM --ports FILE --log FILE
                  [--token T=PRINCIPAL]... [--owner PRINCIPAL]...
                  [--service-account EMAIL KID PUBKEY.pem]...
                  [--metadata-account EMAIL] [--token-lifetime S]
                  [--destroy-after S]
Writes {"kms": PORT, "metadata": PORT} to FILE once both listen; one
line per request to the log (method, path, principal, status, and which
CRC32C fields a crypto request carried).  Needs python3 with cryptography.
"""
import argparse
import base64
import binascii
import http.server
import json
import os
import re
import secrets
import ssl
import struct
import sys
import threading
import time
import urllib.parse

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

# ---- CRC32C (Castagnoli), as Cloud KMS computes it --------------------------


def _crc_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


_CRC = _crc_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


assert crc32c(b'123456789') == 0xE3069283

# ---- errors -------------------------------------------------------------------

HTTP = {'INVALID_ARGUMENT': 400, 'FAILED_PRECONDITION': 400,
        'UNAUTHENTICATED': 401, 'PERMISSION_DENIED': 403, 'NOT_FOUND': 404,
        'ALREADY_EXISTS': 409, 'RESOURCE_EXHAUSTED': 429, 'INTERNAL': 500,
        'UNIMPLEMENTED': 501, 'UNAVAILABLE': 503, 'DEADLINE_EXCEEDED': 504}
FAULT_MSG = {
    'UNAVAILABLE': 'The service is currently unavailable.',
    'RESOURCE_EXHAUSTED': "Quota exceeded for quota metric 'Cryptographic requests' "
                          "and limit 'Cryptographic requests per minute' of service "
                          "'cloudkms.googleapis.com'.",
    'INTERNAL': 'Internal error encountered.',
    'DEADLINE_EXCEEDED': 'Deadline expired before operation could complete.',
}


class Err(Exception):
    def __init__(self, status, message, details=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details


def b64d(s, field):
    if not isinstance(s, str):
        raise Err('INVALID_ARGUMENT', f"Invalid value at '{field}' (TYPE_BYTES)")
    try:
        # proto3 JSON accepts standard and URL-safe base64
        return base64.b64decode(s.replace('-', '+').replace('_', '/'), validate=True)
    except (binascii.Error, ValueError):
        raise Err('INVALID_ARGUMENT',
                  f"Invalid value at '{field}' (TYPE_BYTES), Base64 decoding failed for \"{s[:20]}\"")


def int64(v, field):
    # proto3 JSON: int64 as a decimal string (numbers accepted too)
    if isinstance(v, bool) or not isinstance(v, (int, str)) or \
            (isinstance(v, str) and not re.fullmatch('-?[0-9]+', v)):
        raise Err('INVALID_ARGUMENT', f"Invalid value at '{field}' (TYPE_INT64), \"{v}\"")
    return int(v)


def snake(name):
    return re.sub('([A-Z])', lambda m: '_' + m.group(1).lower(), name)


# ---- state -----------------------------------------------------------------------

RING_RE = r'projects/[a-zA-Z0-9_-]+/locations/[a-zA-Z0-9_-]+/keyRings/[a-zA-Z0-9_-]{1,63}'
KEY_RE = RING_RE + r'/cryptoKeys/[a-zA-Z0-9_-]{1,63}'
VER_RE = KEY_RE + r'/cryptoKeyVersions/[0-9]+'
ROLE_PERMS = {
    'roles/cloudkms.cryptoKeyEncrypterDecrypter': {'encrypt', 'decrypt'},
    'roles/cloudkms.cryptoKeyEncrypter': {'encrypt'},
    'roles/cloudkms.cryptoKeyDecrypter': {'decrypt'},
    'roles/cloudkms.admin': {'admin'},
    'roles/cloudkms.viewer': {'get'},
}
PERM_NAME = {'encrypt': 'cloudkms.cryptoKeyVersions.useToEncrypt',
             'decrypt': 'cloudkms.cryptoKeyVersions.useToDecrypt',
             'admin': 'cloudkms.cryptoKeys.update',
             'get': 'cloudkms.cryptoKeyVersions.get'}


def now_rfc3339():
    return time.strftime('%Y-%m-%dT%H:%M:%S.000000Z', time.gmtime())


class State:
    def __init__(self, a):
        self.lock = threading.RLock()
        self.rings = {}      # name -> createTime
        self.keys = {}       # name -> dict(primary, versions{n: dict}, policy, created)
        self.tokens = {}     # token -> (principal, expiry or None)
        self.owners = set(a.owner)
        self.sa_keys = {}    # (email, kid) -> public key
        self.token_lifetime = a.token_lifetime
        self.destroy_after = a.destroy_after
        self.metadata_flavor = True
        self.metadata_up = True
        self.metadata_account = a.metadata_account
        self.fault = ('none', 0)
        self.issued = 0
        for t in a.token:
            tok, _, who = t.partition('=')
            self.tokens[tok] = (who, None)
        for email, kid, pem in a.service_account:
            with open(pem, 'rb') as f:
                self.sa_keys[(email, kid)] = serialization.load_pem_public_key(f.read())

    def issue(self, principal):
        tok = 'ya29.emu-' + secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[tok] = (principal, time.time() + self.token_lifetime)
            self.issued += 1
        return tok, self.token_lifetime

    def principal(self, auth):
        if not auth or not auth.startswith('Bearer '):
            return None
        who = self.tokens.get(auth[7:].strip())
        if not who or (who[1] is not None and time.time() >= who[1]):
            return None
        return who[0]

    def version_state(self, v):
        if v['state'] == 'DESTROY_SCHEDULED' and time.time() >= v['destroy_at']:
            v['state'] = 'DESTROYED'
            v['material'] = None
            v['destroyTime'] = now_rfc3339()
        return v['state']


def version_json(key_name, n, v, st):
    out = {'name': f'{key_name}/cryptoKeyVersions/{n}', 'state': st.version_state(v),
           'protectionLevel': 'SOFTWARE', 'algorithm': 'GOOGLE_SYMMETRIC_ENCRYPTION',
           'createTime': v['created'], 'generateTime': v['created']}
    if v['state'] == 'DESTROY_SCHEDULED':
        out['destroyTime'] = v['destroy_time']
    if v['state'] == 'DESTROYED':
        out['destroyEventTime'] = v['destroyTime']
    return out


def key_json(name, k, st):
    out = {'name': name, 'purpose': 'ENCRYPT_DECRYPT', 'createTime': k['created'],
           'versionTemplate': {'protectionLevel': 'SOFTWARE',
                               'algorithm': 'GOOGLE_SYMMETRIC_ENCRYPTION'},
           'destroyScheduledDuration': '86400s'}
    if k['primary']:
        out['primary'] = version_json(name, k['primary'], k['versions'][k['primary']], st)
    return out


def new_version(k):
    n = max(k['versions'], default=0) + 1
    k['versions'][n] = {'state': 'ENABLED', 'material': AESGCM.generate_key(256),
                        'created': now_rfc3339()}
    return n


# ---- the KMS API ---------------------------------------------------------------------

def check_fields(body, allowed, where):
    if not isinstance(body, dict):
        raise Err('INVALID_ARGUMENT', 'Invalid JSON payload received. Expected an object.')
    for f in body:
        if f not in allowed:
            raise Err('INVALID_ARGUMENT',
                      f'Invalid JSON payload received. Unknown name "{f}" at \'{where}\': '
                      'Cannot find field.')


def check_crc(body, data_field, crc_field, data):
    """Verify an optional CRC32C field; True when it was present (and matched)."""
    if crc_field not in body:
        return False
    if int64(body[crc_field], crc_field) != crc32c(data):
        raise Err('INVALID_ARGUMENT',
                  f'The checksum in field {snake(crc_field)} did not match the data in '
                  f'field {snake(data_field)}.')
    return True


def gcm_aad(key_name, aad):
    return key_name.encode() + b'\0' + aad


def encrypt(st, key_name, k, body, log):
    check_fields(body, {'plaintext', 'additionalAuthenticatedData', 'plaintextCrc32c',
                        'additionalAuthenticatedDataCrc32c'}, 'encrypt_request')
    if 'plaintext' not in body:
        raise Err('INVALID_ARGUMENT', 'plaintext is required')
    pt = b64d(body['plaintext'], 'plaintext')
    aad = b64d(body.get('additionalAuthenticatedData', ''), 'additional_authenticated_data')
    if len(pt) > 65536 or len(aad) > 65536:
        raise Err('INVALID_ARGUMENT', 'The plaintext and additional authenticated data '
                  'must each be at most 65536 bytes.')
    vp = check_crc(body, 'plaintext', 'plaintextCrc32c', pt)
    va = check_crc(body, 'additionalAuthenticatedData', 'additionalAuthenticatedDataCrc32c', aad)
    log['crc'] = ','.join(x for x, y in (('pt', vp), ('aad', va)) if y) or 'none'
    log['aad_len'] = len(aad)
    n = k['primary']
    if not n:
        raise Err('FAILED_PRECONDITION', f'{key_name} has no primary version.')
    v = k['versions'][n]
    state = st.version_state(v)
    if state != 'ENABLED':
        raise Err('FAILED_PRECONDITION', f'{key_name}/cryptoKeyVersions/{n} is not '
                  f'enabled, current state is: {state}.')
    nonce = os.urandom(12)
    ct = b'\x01' + struct.pack('>I', n) + nonce + \
        AESGCM(v['material']).encrypt(nonce, pt, gcm_aad(key_name, aad))
    out = {'name': f'{key_name}/cryptoKeyVersions/{n}',
           'ciphertext': base64.b64encode(ct).decode(),
           'ciphertextCrc32c': str(crc32c(ct)),
           'protectionLevel': 'SOFTWARE'}
    # proto3 JSON leaves false booleans out
    if vp:
        out['verifiedPlaintextCrc32c'] = True
    if va:
        out['verifiedAdditionalAuthenticatedDataCrc32c'] = True
    return out


def decrypt(st, key_name, k, body, log):
    check_fields(body, {'ciphertext', 'additionalAuthenticatedData', 'ciphertextCrc32c',
                        'additionalAuthenticatedDataCrc32c'}, 'decrypt_request')
    if 'ciphertext' not in body:
        raise Err('INVALID_ARGUMENT', 'ciphertext is required')
    ct = b64d(body['ciphertext'], 'ciphertext')
    aad = b64d(body.get('additionalAuthenticatedData', ''), 'additional_authenticated_data')
    vc = check_crc(body, 'ciphertext', 'ciphertextCrc32c', ct)
    va = check_crc(body, 'additionalAuthenticatedData', 'additionalAuthenticatedDataCrc32c', aad)
    log['crc'] = ','.join(x for x, y in (('ct', vc), ('aad', va)) if y) or 'none'
    log['aad_len'] = len(aad)
    bad = Err('INVALID_ARGUMENT',
              "Decryption failed: verify that 'name' refers to the correct CryptoKey.")
    if len(ct) < 1 + 4 + 12 + 16 or ct[0] != 1:
        raise bad
    n = struct.unpack('>I', ct[1:5])[0]
    v = k['versions'].get(n)
    if not v:
        raise bad
    state = st.version_state(v)
    if state != 'ENABLED':
        raise Err('FAILED_PRECONDITION', f'{key_name}/cryptoKeyVersions/{n} is not '
                  f'enabled, current state is: {state}.')
    try:
        pt = AESGCM(v['material']).decrypt(ct[5:17], ct[17:], gcm_aad(key_name, aad))
    except InvalidTag:
        raise bad
    return {'plaintext': base64.b64encode(pt).decode(), 'plaintextCrc32c': str(crc32c(pt)),
            'usedPrimary': n == k['primary'], 'protectionLevel': 'SOFTWARE'}


# Cloud EKM failures: FAILED_PRECONDITION with google.rpc.PreconditionFailure
# details (violation[0]: the Cloud EKM key version, violation[1]: the call to
# the partner, its type the error domain), as the Cloud EKM error reference
# documents.  "ekm_denied": the external key manager refused the key, and
# Cloud EKM disables the key version (as documented); "ekm_unreachable":
# the EKM could not be queried, the version stays as it is.
EKM_FAULTS = {
    'ekm_denied': ('EXTERNAL_PERMISSION_DENIED',
                   'Permission was denied when accessing the key.'),
    'ekm_unreachable': ('EXTERNAL_NOT_FOUND', 'Could not query EKM host.'),
}


def ekm_error(st, key_name, k, body, fault):
    try:
        ct = base64.b64decode((body or {}).get('ciphertext', ''))
        n = struct.unpack('>I', ct[1:5])[0]
    except (ValueError, struct.error, binascii.Error):
        n = k['primary']
    v = k['versions'].get(n)
    domain, msg = EKM_FAULTS[fault]
    if v and fault == 'ekm_denied' and st.version_state(v) == 'ENABLED':
        v['state'] = 'DISABLED'
    vname = f'{key_name}/cryptoKeyVersions/{n}'
    return Err('FAILED_PRECONDITION', msg, [{
        '@type': 'type.googleapis.com/google.rpc.PreconditionFailure',
        'violations': [
            {'type': 'KEY_VERSION', 'subject': vname,
             'description': f'The Cloud EKM key version is {st.version_state(v) if v else "unknown"}.'},
            {'type': domain, 'subject': 'https://ekm.example.test/v0/keys/k1',
             'description': msg}]}])


def allowed(st, key, principal, perm):
    if principal in st.owners:
        return True
    for b in key['policy'].get('bindings', []):
        if principal in b.get('members', []) and perm in ROLE_PERMS.get(b.get('role'), ()):
            return True
    return False


def kms_request(st, method, path, query, body, principal, log):
    """-> (status, json) or raises Err."""
    m = re.fullmatch(r'/v1/(' + KEY_RE + r'):(encrypt|decrypt|getIamPolicy|setIamPolicy|'
                     r'updatePrimaryVersion)', path)
    # v1 REST: GET {resource}:getIamPolicy; everything else here is a POST
    if m and method == ('GET' if m.group(2) == 'getIamPolicy' else 'POST'):
        name, op = m.groups()
        log['op'] = op
        with st.lock:
            k = st.keys.get(name)
            perm = op if op in ('encrypt', 'decrypt') else 'admin'
            if not k or not allowed(st, k, principal, perm):
                # Cloud KMS does not tell a caller without access whether a key exists
                if k is None and principal in st.owners:
                    raise Err('NOT_FOUND', f'{name} not found.')
                raise Err('PERMISSION_DENIED', f"Permission '{PERM_NAME[perm]}' denied on "
                          f"resource '{name}' (or it may not exist).")
            if op in ('encrypt', 'decrypt'):
                fault = st.fault_take()
                if fault in FAULT_MSG:
                    raise Err(fault, FAULT_MSG[fault])
                if fault in EKM_FAULTS and op == 'decrypt':
                    raise ekm_error(st, name, k, body, fault)
                out = (encrypt if op == 'encrypt' else decrypt)(st, name, k, body, log)
                if fault == 'bad_crc':
                    f = 'ciphertextCrc32c' if op == 'encrypt' else 'plaintextCrc32c'
                    out[f] = str((int(out[f]) + 1) & 0xFFFFFFFF)
                if fault == 'unverified' and op == 'encrypt':
                    out.pop('verifiedPlaintextCrc32c', None)
                    out.pop('verifiedAdditionalAuthenticatedDataCrc32c', None)
                if fault == 'other_key' and op == 'encrypt':
                    out['name'] = name + '-other/cryptoKeyVersions/1'
                if fault == 'hang':
                    log['hang'] = True
                return 200, out
            if op == 'getIamPolicy':
                return 200, dict(k['policy'], etag='BwX=', version=1)
            if op == 'setIamPolicy':
                check_fields(body, {'policy', 'updateMask'}, 'set_iam_policy_request')
                pol = body.get('policy') or {}
                k['policy'] = {'bindings': pol.get('bindings', [])}
                return 200, dict(k['policy'], etag='BwY=', version=1)
            vid = str(body.get('cryptoKeyVersionId', ''))
            if not vid.isdigit() or int(vid) not in k['versions']:
                raise Err('NOT_FOUND', f'{name}/cryptoKeyVersions/{vid} not found.')
            k['primary'] = int(vid)
            return 200, key_json(name, k, st)
    # reading a version's state: roles/cloudkms.viewer (or an owner)
    m = re.fullmatch(r'/v1/(' + KEY_RE + r')/cryptoKeyVersions/([0-9]+)', path)
    if m and method == 'GET' and principal not in st.owners:
        with st.lock:
            k = st.keys.get(m.group(1))
            v = k and k['versions'].get(int(m.group(2)))
            if not k or not allowed(st, k, principal, 'get'):
                raise Err('PERMISSION_DENIED', f"Permission '{PERM_NAME['get']}' denied on "
                          f"resource '{path[4:]}' (or it may not exist).")
            if not v:
                raise Err('NOT_FOUND', f'{path[4:]} not found.')
            return 200, version_json(m.group(1), int(m.group(2)), v, st)
    # administration: owners only
    if principal not in st.owners:
        raise Err('PERMISSION_DENIED', f"Permission denied on resource '{path[4:]}' "
                  "(or it may not exist).")
    with st.lock:
        m = re.fullmatch(r'/v1/(projects/[a-zA-Z0-9_-]+/locations/[a-zA-Z0-9_-]+)/keyRings',
                         path)
        if m and method == 'POST':
            rid = query.get('keyRingId', [''])[0]
            name = f'{m.group(1)}/keyRings/{rid}'
            if not re.fullmatch(RING_RE, name):
                raise Err('INVALID_ARGUMENT', f'Invalid keyRingId "{rid}".')
            if name in st.rings:
                raise Err('ALREADY_EXISTS', f'KeyRing {name} already exists.')
            st.rings[name] = now_rfc3339()
            return 200, {'name': name, 'createTime': st.rings[name]}
        m = re.fullmatch(r'/v1/(' + RING_RE + ')/cryptoKeys', path)
        if m and method == 'POST':
            ring = m.group(1)
            kid = query.get('cryptoKeyId', [''])[0]
            name = f'{ring}/cryptoKeys/{kid}'
            if ring not in st.rings:
                raise Err('NOT_FOUND', f'{ring} not found.')
            if not re.fullmatch(KEY_RE, name):
                raise Err('INVALID_ARGUMENT', f'Invalid cryptoKeyId "{kid}".')
            if name in st.keys:
                raise Err('ALREADY_EXISTS', f'CryptoKey {name} already exists.')
            if (body or {}).get('purpose', 'ENCRYPT_DECRYPT') != 'ENCRYPT_DECRYPT':
                raise Err('UNIMPLEMENTED', 'Only ENCRYPT_DECRYPT keys are emulated.')
            k = {'primary': None, 'versions': {}, 'policy': {}, 'created': now_rfc3339()}
            if query.get('skipInitialVersionCreation', ['false'])[0] != 'true':
                k['primary'] = new_version(k)
            st.keys[name] = k
            return 200, key_json(name, k, st)
        m = re.fullmatch(r'/v1/(' + KEY_RE + ')', path)
        if m and method == 'GET':
            k = st.keys.get(m.group(1))
            if not k:
                raise Err('NOT_FOUND', f'{m.group(1)} not found.')
            return 200, key_json(m.group(1), k, st)
        m = re.fullmatch(r'/v1/(' + KEY_RE + ')/cryptoKeyVersions', path)
        if m and method == 'POST':
            k = st.keys.get(m.group(1))
            if not k:
                raise Err('NOT_FOUND', f'{m.group(1)} not found.')
            n = new_version(k)
            return 200, version_json(m.group(1), n, k['versions'][n], st)
        m = re.fullmatch(r'/v1/(' + KEY_RE + r')/cryptoKeyVersions/([0-9]+)(:destroy|:restore)?',
                         path)
        if m:
            kname, n, op = m.group(1), int(m.group(2)), m.group(3)
            k = st.keys.get(kname)
            v = k and k['versions'].get(n)
            vname = f'{kname}/cryptoKeyVersions/{n}'
            if not v:
                raise Err('NOT_FOUND', f'{vname} not found.')
            state = st.version_state(v)
            if method == 'GET' and not op:
                return 200, version_json(kname, n, v, st)
            if method == 'PATCH' and not op:
                mask = query.get('updateMask', [''])[0].split(',')
                if 'state' not in mask:
                    raise Err('INVALID_ARGUMENT', 'updateMask must contain "state".')
                want = (body or {}).get('state')
                if want not in ('ENABLED', 'DISABLED'):
                    raise Err('INVALID_ARGUMENT', f'Invalid state "{want}".')
                if state not in ('ENABLED', 'DISABLED'):
                    raise Err('FAILED_PRECONDITION', f'{vname} is not enabled or disabled, '
                              f'current state is: {state}.')
                v['state'] = want
                return 200, version_json(kname, n, v, st)
            if method == 'POST' and op == ':destroy':
                if state not in ('ENABLED', 'DISABLED'):
                    raise Err('FAILED_PRECONDITION', f'{vname} is already {state}.')
                v['state'] = 'DESTROY_SCHEDULED'
                v['destroy_at'] = time.time() + st.destroy_after
                v['destroy_time'] = time.strftime('%Y-%m-%dT%H:%M:%SZ',
                                                  time.gmtime(v['destroy_at']))
                return 200, version_json(kname, n, v, st)
            if method == 'POST' and op == ':restore':
                if state != 'DESTROY_SCHEDULED':
                    raise Err('FAILED_PRECONDITION', f'{vname} is not scheduled for '
                              f'destruction, current state is: {state}.')
                v['state'] = 'DISABLED'
                return 200, version_json(kname, n, v, st)
    raise Err('NOT_FOUND', f'Method not found: {method} {path}')


# ---- OAuth token endpoint --------------------------------------------------------------

def b64url_d(s):
    return base64.urlsafe_b64decode(s + '=' * (-len(s) % 4))


def token_grant(st, form, my_url):
    """-> (status, json) in the OAuth 2.0 error shape."""
    def bad(desc, code='invalid_grant'):
        return 400, {'error': code, 'error_description': desc}
    if form.get('grant_type', [''])[0] != 'urn:ietf:params:oauth:grant-type:jwt-bearer':
        return bad('Invalid grant_type', 'unsupported_grant_type')
    jwt = form.get('assertion', [''])[0]
    parts = jwt.split('.')
    if len(parts) != 3:
        return bad('Invalid JWT: not three parts')
    try:
        hdr = json.loads(b64url_d(parts[0]))
        cl = json.loads(b64url_d(parts[1]))
        sig = b64url_d(parts[2])
    except (ValueError, binascii.Error):
        return bad('Invalid JWT: not base64url JSON')
    if hdr.get('alg') != 'RS256':
        return bad('Invalid JWT: alg must be RS256')
    pub = st.sa_keys.get((cl.get('iss'), hdr.get('kid')))
    if pub is None:
        return bad('Invalid JWT Signature.')
    try:
        pub.verify(sig, (parts[0] + '.' + parts[1]).encode(), padding.PKCS1v15(),
                   hashes.SHA256())
    except InvalidSignature:
        return bad('Invalid JWT Signature.')
    # Google's documented audience, whatever the key's token_uri (google-auth
    # in gcloud sends exactly this)
    if cl.get('aud') != 'https://oauth2.googleapis.com/token':
        return bad(f'Invalid JWT: audience {cl.get("aud")!r} is not '
                   'https://oauth2.googleapis.com/token')
    now = time.time()
    iat, exp = cl.get('iat'), cl.get('exp')
    if not isinstance(iat, int) or not isinstance(exp, int) or exp - iat > 3600 or \
            exp <= iat or now < iat - 300 or now > exp:
        return bad('Invalid JWT: Token must be a short-lived token (60 minutes) and in '
                   'a reasonable timeframe. Check your iat and exp values in the JWT '
                   'claim.')
    scopes = str(cl.get('scope', '')).split()
    if not {'https://www.googleapis.com/auth/cloudkms',
            'https://www.googleapis.com/auth/cloud-platform'} & set(scopes):
        return 400, {'error': 'invalid_scope', 'error_description': 'Invalid OAuth scope.'}
    tok, life = st.issue('serviceAccount:' + cl['iss'])
    return 200, {'access_token': tok, 'expires_in': life, 'token_type': 'Bearer'}


# ---- HTTP -------------------------------------------------------------------------------

class Log:
    def __init__(self, path):
        self.f = open(path, 'a', buffering=1)
        self.lock = threading.Lock()

    def write(self, s):
        with self.lock:
            self.f.write(s + '\n')


class Base(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, *a):
        pass

    def read_body(self):
        n = int(self.headers.get('Content-Length') or 0)
        return self.rfile.read(n) if n else b''

    def send_json(self, status, obj, extra=()):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json; charset=UTF-8')
        self.send_header('Content-Length', str(len(data)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)


def make_kms_handler(st, lg, my_url):
    class H(Base):
        def handle_any(self):
            raw = self.read_body()
            u = urllib.parse.urlsplit(self.path)
            path, query = u.path, urllib.parse.parse_qs(u.query)
            info = {}
            who = '-'
            try:
                if path.startswith('/emu/'):
                    return self.emu(path, raw)
                if path == '/token' and self.command == 'POST':
                    form = urllib.parse.parse_qs(raw.decode('ascii', 'replace'))
                    status, obj = token_grant(st, form, my_url)
                    lg.write(f'POST /token status={status} {obj.get("error", "")}')
                    return self.send_json(status, obj)
                m = re.fullmatch(r'/v1/projects/-/serviceAccounts/([^/]+)/keys/([^/]+)', path)
                if m and self.command == 'DELETE':
                    who = st.principal(self.headers.get('Authorization'))
                    if who not in st.owners:
                        raise Err('PERMISSION_DENIED', 'Permission iam.serviceAccountKeys.delete denied.')
                    st.sa_keys.pop((m.group(1), m.group(2)), None)
                    lg.write(f'DELETE {path} status=200')
                    return self.send_json(200, {})
                who = st.principal(self.headers.get('Authorization'))
                if who is None:
                    raise Err('UNAUTHENTICATED',
                              'Request had invalid authentication credentials. Expected '
                              'OAuth 2 access token, login cookie or other valid '
                              'authentication credential. See https://developers.google.'
                              'com/identity/sign-in/web/devconsole-project.')
                body = None
                if raw:
                    if not (self.headers.get('Content-Type') or '').startswith('application/json'):
                        raise Err('INVALID_ARGUMENT', 'Content-Type must be application/json')
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        raise Err('INVALID_ARGUMENT', 'Invalid JSON payload received.')
                status, obj = kms_request(st, self.command, path, query, body or {}, who, info)
                self.log(path, who, status, info)
                if info.get('hang'):
                    time.sleep(30)
                    self.close_connection = True
                    return
                return self.send_json(status, obj)
            except Err as e:
                code = HTTP.get(e.status, 400)
                self.log(path, who, code, info, e.status)
                extra = [('WWW-Authenticate', 'Bearer realm="https://accounts.google.com/"')] \
                    if code == 401 else []
                err = {'code': code, 'message': e.message, 'status': e.status}
                if e.details:
                    err['details'] = e.details
                return self.send_json(code, {'error': err}, extra)

        def log(self, path, who, status, info, err=''):
            lg.write(f'{self.command} {path} principal={who} status={status}'
                     f'{" " + err if err else ""} crc={info.get("crc", "-")}'
                     f' aad_len={info.get("aad_len", "-")}')

        def emu(self, path, raw):
            body = json.loads(raw or b'{}')
            with st.lock:
                if path == '/emu/config':
                    for k in ('token_lifetime', 'destroy_after'):
                        if k in body:
                            setattr(st, k, int(body[k]))
                    if 'metadata_flavor' in body:
                        st.metadata_flavor = bool(body['metadata_flavor'])
                    if body.get('revoke_tokens'):
                        st.tokens = {t: w for t, w in st.tokens.items() if w[1] is None}
                elif path == '/emu/fault':
                    st.fault = (body.get('mode', 'none'), int(body.get('count', -1)))
                elif path == '/emu/metadata':
                    st.metadata_up = bool(body.get('up', True))
                elif path == '/emu/stats':
                    pass
                else:
                    return self.send_json(404, {})
                lg.write(f'EMU {path} {json.dumps(body)}')
                return self.send_json(200, {'tokens_issued': st.issued,
                                            'fault': st.fault[0]})

        do_GET = do_POST = do_PATCH = do_DELETE = handle_any
    return H


def make_metadata_handler(st, lg):
    class H(Base):
        def do_GET(self):
            flavor = self.headers.get('Metadata-Flavor')
            u = urllib.parse.urlsplit(self.path)
            m = re.fullmatch(r'/computeMetadata/v1/instance/service-accounts/([^/]+)/token',
                             u.path)
            extra = [('Metadata-Flavor', 'Google')] if st.metadata_flavor else []
            via_proxy = self.path.startswith('http')
            lg.write(f'MD GET {u.path} flavor={flavor} proxied={via_proxy} '
                     f'up={st.metadata_up}')
            if not st.metadata_up:
                return self.send_json(503, {'error': 'unavailable'}, extra)
            if flavor != 'Google' or via_proxy:
                return self.send_json(403, {'error': 'Missing Metadata-Flavor:Google header.'},
                                      extra)
            if not m or m.group(1) not in ('default', st.metadata_account):
                return self.send_json(404, {'error': 'not found'}, extra)
            tok, life = st.issue('serviceAccount:' + st.metadata_account)
            return self.send_json(200, {'access_token': tok, 'expires_in': life,
                                        'token_type': 'Bearer'}, extra)
    return H


def fault_take(self):
    with self.lock:
        mode, count = self.fault
        if mode == 'none' or count == 0:
            return 'none'
        if count > 0:
            self.fault = (mode, count - 1)
        return mode


State.fault_take = fault_take


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--cert', required=True)
    p.add_argument('--key', required=True)
    p.add_argument('--ports', required=True)
    p.add_argument('--log', required=True)
    p.add_argument('--token', action='append', default=[])
    p.add_argument('--owner', action='append', default=[])
    p.add_argument('--service-account', nargs=3, action='append', default=[])
    p.add_argument('--metadata-account', default='vm-sa@emu-project.iam.gserviceaccount.com')
    p.add_argument('--token-lifetime', type=int, default=3599)
    p.add_argument('--destroy-after', type=int, default=2)
    a = p.parse_args()
    st = State(a)
    lg = Log(a.log)
    kms = Server(('127.0.0.1', 0), None)
    port = kms.server_address[1]
    kms.RequestHandlerClass = make_kms_handler(st, lg, f'https://127.0.0.1:{port}/token')
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    kms.socket = ctx.wrap_socket(kms.socket, server_side=True)
    md = Server(('127.0.0.1', 0), make_metadata_handler(st, lg))
    threading.Thread(target=md.serve_forever, daemon=True).start()
    tmp = a.ports + '.tmp'
    with open(tmp, 'w') as f:
        json.dump({'kms': port, 'metadata': md.server_address[1]}, f)
    os.rename(tmp, a.ports)
    try:
        kms.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == '__main__':
    sys.exit(main())

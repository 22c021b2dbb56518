#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Hold tests/kms/azure_emu.py to the Azure SDK for Python (Debian's
python3-azure: azure-keyvault-keys, azure-core), before the agent is
tested against it.  Run with /usr/bin/python3 (the SDK is not in pyenv).

  azure_sdk.py VAULT_URL ADMIN_URL CA_BUNDLE TENANT LOG

Prints one "ok NAME" / "not ok NAME # why" line per check (azure.sh
numbers them).  Each check uses the SDK the way users do: a
CryptographyClient / KeyClient with a static token credential (tokens the
emulator issued, as Entra ID would), the SDK's own challenge policy
(verify_challenge_resource=False: the vault is 127.0.0.1, not a
subdomain of vault.azure.net), its retry policy off for the error checks.
"""
import json
import os
import sys
import traceback
import urllib.request

from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.keyvault.keys import KeyClient
from azure.keyvault.keys.crypto import CryptographyClient, KeyWrapAlgorithm

VAULT, ADMIN, CA, TENANT, LOG = sys.argv[1:6]
os.environ['REQUESTS_CA_BUNDLE'] = CA
failed = 0


def admin(op, **kw):
    r = urllib.request.urlopen(urllib.request.Request(
        f'{ADMIN}/{op}', data=json.dumps(kw).encode(), method='POST'), timeout=30)
    return json.load(r)


class StaticCredential:
    """A TokenCredential with a fixed token; records what it was asked."""

    def __init__(self, principal):
        t = admin('token', principal=principal)
        self.token = AccessToken(t['token'], t['expires_on'])
        self.calls = []

    def get_token(self, *scopes, **kw):
        self.calls.append((scopes, kw.get('tenant_id')))
        return self.token


def log_lines():
    with open(LOG) as f:
        return f.read().splitlines()


def check(name, fn):
    global failed
    try:
        fn()
        print(f'ok {name}', flush=True)
    except Exception as ex:  # noqa: BLE001 - report anything as a failure
        failed += 1
        why = f'{type(ex).__name__}: {ex}'.replace('\n', ' ')[:400]
        print(f'not ok {name} # {why}', flush=True)
        traceback.print_exc(file=sys.stderr)


def crypto(kid, principal, **kw):
    cred = StaticCredential(principal)
    return cred, CryptographyClient(kid, cred, verify_challenge_resource=False,
                                    connection_verify=CA, **kw)


def expect_status(fn, status, code=None, inner=None, exc=HttpResponseError):
    try:
        fn()
    except exc as ex:
        assert ex.status_code == status, f'status {ex.status_code}, want {status}'
        if code:
            assert ex.error and ex.error.code == code, f'error.code {ex.error and ex.error.code}, want {code}'
        if inner:
            body = json.loads(ex.response.text())
            got = body['error'].get('innererror', {}).get('code')
            assert got == inner, f'innererror {got}, want {inner}'
        return
    raise AssertionError(f'no error, want HTTP {status}')


admin('grant', principal='sdk-remote', actions=['wrapKey', 'unwrapKey'])
admin('grant', principal='sdk-local', actions=['wrapKey', 'unwrapKey', 'get'])
kc_cred = StaticCredential('admin')
kc = KeyClient(VAULT, kc_cred, verify_challenge_resource=False, connection_verify=CA)
state = {}


def keyclient_create_rsa_key():
    k = kc.create_rsa_key('sdk-rsa', size=2048)
    assert k.id.startswith(f'{VAULT}/keys/sdk-rsa/'), k.id
    assert k.key_type == 'RSA' and k.properties.enabled
    state['rsa'] = k.id
    # The SDK's challenge policy sent the first request without a token
    # and asked its credential for the scope and tenant the challenge named.
    assert kc_cred.calls and kc_cred.calls[0] == (('https://vault.azure.net/.default',), TENANT), kc_cred.calls
    first = [ln for ln in log_lines() if ln.startswith('kv ')][0]
    assert 'auth=none status=401' in first, first


def keyclient_create_oct_hsm_key():
    k = kc.create_oct_key('sdk-oct', size=256, hardware_protected=True)
    assert k.key_type == 'oct-HSM', k.key_type
    state['oct'] = k.id


def remote_wrap_unwrap_rsa_oaep_256():
    cred, c = crypto(state['rsa'], 'sdk-remote')
    n = len(log_lines())
    w = c.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, b'k' * 64)
    assert w.key_id == state['rsa'] and len(w.encrypted_key) == 256
    u = c.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, w.encrypted_key)
    assert u.key == b'k' * 64
    new = log_lines()[n:]
    for op in ('wrapkey', 'unwrapkey'):
        assert any(f'/{op} len=' in ln and 'principal=sdk-remote auth=ok status=200' in ln
                   for ln in new), new


def sdk_local_wrap_with_served_jwk_unwraps_remotely():
    # keys/get allowed: the SDK wraps locally with the JWK (n, e) the
    # emulator served; the emulator's RSA-OAEP-256 must unwrap it.
    cred, c = crypto(state['rsa'], 'sdk-local')
    n = len(log_lines())
    w = c.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, b'j' * 48)
    assert not any('/wrapkey' in ln for ln in log_lines()[n:]), 'wrap was not local'
    assert c.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, w.encrypted_key).key == b'j' * 48


def remote_wrap_unwrap_a256kw():
    cred, c = crypto(state['oct'], 'sdk-remote')
    w = c.wrap_key(KeyWrapAlgorithm.aes_256, b'a' * 64)
    assert len(w.encrypted_key) == 72
    assert c.unwrap_key(KeyWrapAlgorithm.aes_256, w.encrypted_key).key == b'a' * 64


def versionless_key_id_uses_current_version():
    vid = state['rsa'].rsplit('/', 1)[0]
    cred, c = crypto(vid, 'sdk-remote')
    n = len(log_lines())
    w = c.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, b'v' * 32)
    # without keys/get the SDK names no version: "/keys/NAME//wrapkey"
    assert any('POST /keys/sdk-rsa//wrapkey len=' in ln and
               'principal=sdk-remote auth=ok status=200' in ln
               for ln in log_lines()[n:]), log_lines()[n:]
    assert c.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, w.encrypted_key).key == b'v' * 32


def tampered_ciphertext_is_400_bad_parameter():
    cred, c = crypto(state['rsa'], 'sdk-remote', retry_total=0)
    w = bytearray(c.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, b'x' * 32).encrypted_key)
    w[10] ^= 1
    expect_status(lambda: c.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, bytes(w)), 400, 'BadParameter')


def disabled_key_unwrap_403_keydisabled_wrap_still_works():
    cred, c = crypto(state['rsa'], 'sdk-remote', retry_total=0)
    w = c.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, b'd' * 32)
    k = kc.update_key_properties('sdk-rsa', enabled=False)
    assert k.properties.enabled is False
    expect_status(lambda: c.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, w.encrypted_key),
                  403, 'Forbidden', 'KeyDisabled')
    c.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, b'd' * 32)
    kc.update_key_properties('sdk-rsa', enabled=True)
    assert c.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, w.encrypted_key).key == b'd' * 32


def no_data_action_403_forbidden_by_rbac():
    admin('grant', principal='sdk-none', actions=['wrapKey'])
    cred, c = crypto(state['rsa'], 'sdk-none', retry_total=0)
    w = c.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, b'r' * 32)
    expect_status(lambda: c.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, w.encrypted_key),
                  403, 'Forbidden', 'ForbiddenByRbac')


def throttled_429_and_unavailable_503():
    cred, c = crypto(state['rsa'], 'sdk-remote', retry_total=0)
    w = c.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, b't' * 32)
    try:
        admin('fault', mode='throttle')
        expect_status(lambda: c.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, w.encrypted_key),
                      429, 'Throttled')
        admin('fault', mode='unavailable')
        expect_status(lambda: c.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, w.encrypted_key),
                      503, 'ServiceUnavailable')
    finally:
        admin('fault', mode='pass')


def sdk_retries_throttling_then_succeeds():
    # The SDK's own retry policy honours Retry-After on 429.
    cred, c = crypto(state['rsa'], 'sdk-remote', retry_total=3, retry_backoff_factor=0.1)
    w = c.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, b'q' * 32)
    admin('fault', mode='throttle')
    import threading
    threading.Timer(0.5, lambda: admin('fault', mode='pass')).start()
    assert c.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, w.encrypted_key).key == b'q' * 32


def deleted_key_404_keynotfound_then_purged():
    kc.create_rsa_key('sdk-gone', size=2048)
    kid = kc.get_key('sdk-gone').id
    kc.begin_delete_key('sdk-gone').result()
    assert kc.get_deleted_key('sdk-gone').name == 'sdk-gone'
    cred, c = crypto(kid, 'sdk-remote', retry_total=0)
    expect_status(lambda: c.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, b'\0' * 256),
                  404, 'KeyNotFound', exc=ResourceNotFoundError)
    kc.purge_deleted_key('sdk-gone')
    expect_status(lambda: kc.get_deleted_key('sdk-gone'), 404, exc=ResourceNotFoundError)


check('sdk_keyclient_create_rsa_key_after_challenge', keyclient_create_rsa_key)
check('sdk_keyclient_create_oct_hsm_key', keyclient_create_oct_hsm_key)
check('sdk_remote_wrap_unwrap_rsa_oaep_256', remote_wrap_unwrap_rsa_oaep_256)
check('sdk_local_wrap_with_served_jwk_unwraps_remotely', sdk_local_wrap_with_served_jwk_unwraps_remotely)
check('sdk_remote_wrap_unwrap_a256kw', remote_wrap_unwrap_a256kw)
check('sdk_versionless_key_id_uses_current_version', versionless_key_id_uses_current_version)
check('sdk_tampered_ciphertext_400_bad_parameter', tampered_ciphertext_is_400_bad_parameter)
check('sdk_disabled_key_unwrap_403_keydisabled_wrap_still_works',
      disabled_key_unwrap_403_keydisabled_wrap_still_works)
check('sdk_no_data_action_403_forbidden_by_rbac', no_data_action_403_forbidden_by_rbac)
check('sdk_throttled_429_and_unavailable_503', throttled_429_and_unavailable_503)
check('sdk_retries_throttling_then_succeeds', sdk_retries_throttling_then_succeeds)
check('sdk_deleted_key_404_keynotfound_then_purged', deleted_key_404_keynotfound_then_purged)
sys.exit(1 if failed else 0)

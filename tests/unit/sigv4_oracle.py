#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Generate SigV4 signing cases and sign them with botocore (the oracle).

Used by tests/unit/test_sigv4.c: prints one JSON object per line with the
request (method, path, query, headers, body), the signing inputs (region,
service, time, access key, secret, optional session token) and what
botocore's SigV4Auth computed for it (Authorization header, canonical
request).  Nothing here is copied from anyone: the requests are random
(seeded), the expected values come from botocore at test time.

usage: sigv4_oracle.py SEED COUNT
"""
import base64
import datetime
import json
import random
import sys
from unittest import mock
from urllib.parse import quote

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

HEADER_NAMES = ['X-Amz-Target', 'Content-Type', 'X-Custom', 'x-lower',
                'X-MiXeD-CaSe', 'Accept', 'X-Amz-Meta-Thing', 'Foo',
                'X-Amz-Date', 'User-Agent', 'Expect', 'Content-Length',
                'X-Amzn-Trace-Id', 'Zzz', 'a']
WS = [' ', '  ', '\t', ' \t ', '   ']
WORDS = ['TrentService.Decrypt', 'application/x-amz-json-1.1', 'value',
         'a,b', 'x=y;z', 'caf\u00e9', '\u65e5\u672c', '"quoted"', '1',
         'with/slash', '\u00fc\u00f6', 'emoji\U0001F511', '*', '']
PATH_SEGS = ['a', 'b c', 'caf\u00e9', 'x~y_z-.', 'k=v', 'plus+sign',
             'pct%41', '\u65e5', '.', '..', '']
QCHARS = 'abcXYZ019-_.~ +/=&%\u00e9\u65e5'
HOSTS = ['kms.us-east-1.amazonaws.com', '127.0.0.1:4566', '[::1]:8443',
         'kms-fips.us-gov-west-1.amazonaws.com',
         'kms.eu-west-1.api.aws']


def value(rng):
    parts = []
    if rng.random() < 0.4:
        parts.append(rng.choice(WS))
    for i in range(rng.randint(1, 4)):
        if i:
            parts.append(rng.choice(WS))
        parts.append(rng.choice(WORDS))
    if rng.random() < 0.4:
        parts.append(rng.choice(WS))
    return ''.join(parts)


def qstr(rng):
    return ''.join(rng.choice(QCHARS) for _ in range(rng.randint(0, 8)))


def body(rng):
    k = rng.random()
    if k < 0.25:
        return b''
    if k < 0.5:
        return json.dumps({'KeyId': 'alias/x', 'CiphertextBlob':
                           base64.b64encode(rng.randbytes(150)).decode()}
                          ).encode()
    if k < 0.7:
        return ('\u00e9t\u00e9 \u65e5\u672c ' * rng.randint(1, 50)).encode()
    return rng.randbytes(rng.choice([1, 63, 64, 65, 4096, 100000]))


def secret(rng, n):
    abc = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
    return ''.join(rng.choice(abc) for _ in range(n))


def case(rng):
    method = rng.choice(['POST', 'POST', 'GET', 'PUT', 'DELETE'])
    region = rng.choice(['us-east-1', 'eu-west-3', 'ap-southeast-2',
                         'us-gov-west-1', 'cn-north-1', 'il-central-1'])
    service = rng.choice(['kms', 'kms', 'sts', 'iam', 'execute-api'])
    when = rng.randint(946684800, 4102444799)
    host = rng.choice(HOSTS)
    path = '/' if rng.random() < 0.5 else \
        '/' + '/'.join(rng.choice(PATH_SEGS) for _ in range(rng.randint(1, 3)))
    if rng.random() < 0.2:
        path += '/'
    query = [[qstr(rng) or 'k', qstr(rng)] for _ in range(rng.choice([0, 0, 1, 3]))]
    if query and rng.random() < 0.3:
        query.append([query[0][0], qstr(rng)])      # repeated name
    headers = [[rng.choice(['Host', 'host', 'HOST']), host]]
    names = rng.sample(HEADER_NAMES, rng.randint(0, 8))
    for n in names:
        headers.append([n, value(rng)])
    if names and rng.random() < 0.3:                # repeated header
        headers.append([names[0], value(rng)])
    rng.shuffle(headers)
    token = secret(rng, rng.choice([16, 356, 1000])) if rng.random() < 0.5 else None
    return dict(method=method, path=path, query=query, headers=headers,
                body=body(rng), region=region, service=service, time=when,
                akid=rng.choice(['AKIA', 'ASIA']) + secret(rng, 16).upper().replace('+', 'X').replace('/', 'Y'),
                secret=secret(rng, 40), token=token)


def sign(c):
    q = '&'.join(quote(k, safe='-_.~') + '=' + quote(v, safe='-_.~')
                 for k, v in c['query'])
    url = 'https://' + c['headers'][0][1] + c['path'] + ('?' + q if q else '')
    req = AWSRequest(method=c['method'], url=url, data=c['body'])
    for n, v in c['headers']:
        req.headers[n] = v
    if not any(n.lower() == 'host' for n, _ in c['headers']):
        raise SystemExit('generator bug: no host')
    creds = Credentials(c['akid'], c['secret'], c['token'])
    auth = botocore.auth.SigV4Auth(creds, c['service'], c['region'])
    now = datetime.datetime.fromtimestamp(c['time'], datetime.timezone.utc
                                          ).replace(tzinfo=None)
    with mock.patch.object(botocore.auth, 'get_current_datetime',
                           return_value=now):
        auth.add_auth(req)
        authorization = req.headers['Authorization']
        # The canonical request as signed: without the header add_auth added.
        del req.headers['Authorization']
        canon = auth.canonical_request(req)
    return authorization, canon, req.headers['X-Amz-Date']


def main():
    seed, count = int(sys.argv[1]), int(sys.argv[2])
    rng = random.Random(seed)
    for _ in range(count):
        c = case(rng)
        # The host header used for the URL must be the one signed.
        hosts = [h for h in c['headers'] if h[0].lower() == 'host']
        c['headers'].remove(hosts[0])
        c['headers'].insert(0, hosts[0])
        a, canon, date = sign(c)
        out = dict(c)
        out['body'] = base64.b64encode(c['body']).decode()
        out['expect_authorization'] = a
        out['expect_canonical'] = canon
        out['expect_date'] = date
        print(json.dumps(out))


if __name__ == '__main__':
    main()

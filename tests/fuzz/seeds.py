#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Write the seed corpora of the fuzz targets into corpus/<target>/.

The vectors are the unit tests' (tests/unit/test_*.c) and the formats'
examples (Documentation/formats.rst), framed the way each target reads its
input (tests/fuzz/fuzz.h, the target's comment).  No key in them protects
anything.  Run it again after changing a vector; it only adds files.
"""
import base64
import hashlib
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SEP = b"\n=====\n"


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


# The context every provider target binds (fuzz_http.c), canonical (encctx.c).
CTX = [(b"dm-cmk:kek-id", b"6f1c9a52-58a4-4c43-9a0c-0d5c0f7c2b11")]


def canonical(pairs):
    out = b"CMKCTX01" + struct.pack("<I", len(pairs))
    for k, v in sorted(pairs):
        out += struct.pack("<I", len(k)) + k + struct.pack("<I", len(v)) + v
    return out


KEK = bytes(range(32))


def put(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def answers(op, *ans):
    """Byte 0 = op, then answers "<status>\\n<headers>\\n\\n<body>"."""
    return bytes([op]) + SEP.join(a.encode() if isinstance(a, str) else a
                                  for a in ans)


def ans(status, body, headers=""):
    return "%d\n%s\n\n%s" % (status, headers, body)


# ---- format/header: an encoded header, cut before the checksum -----------
def header(mode=2, seq=1, flags=0):
    b = bytearray(236)
    b[0:8] = b"DMCMKHDR"
    struct.pack_into("<II", b, 8, 1, 4096)
    b[16:32] = bytes(range(16))
    struct.pack_into("<QII", b, 32, seq, mode, 4096)
    b[48:48 + 15] = b"aes-xts-plain64"
    struct.pack_into("<Q", b, 80, 2048)
    b[88:104] = bytes(range(16, 32))
    struct.pack_into("<II", b, 104, 1, 1)
    b[112:128] = bytes(range(32, 48))
    struct.pack_into("<QII", b, 128, 1764000000, 64, flags)
    b[144:156] = b"\x11" * 12
    b[156:220] = b"\x22" * 64
    b[220:236] = b"\x33" * 16
    return bytes(b)


put("header", "persistent", header())
put("header", "ephemeral", header(mode=1, seq=7, flags=1))
full = bytearray(header()) + bytes(4096 - 236)
full[4064:4096] = hashlib.sha256(bytes(full[:4064])).digest()
put("header", "full_copy", bytes(full))
# Copy A and, after it, copy B with a higher sequence (a rewrite's state).
put("header", "two_copies", bytes(full) + header(seq=2))
put("header", "b_only", bytes(full[:4064]) + bytes(32) + header(seq=5))

# ---- format/envelope (formats.rst) ---------------------------------------
ENV = """{
  "format": "dm-cmk-kek",
  "version": 1,
  "kek_id": "0f8fad5b-d9cb-469f-a165-70867728950e",
  "kek_version": 2,
  "provider": "local",
  "key_ref": "/etc/cmk/cmk.key",
  "encryption_context": { "service": "postgres", "cluster": "c-42" },
  "wrapped_kek": "%s",
  "created": "2025-11-27T20:48:00Z"%s
}"""
W = "AQ" + "A" * 78 + "=="
PREV = """,
  "previous": {
    "kek_version": 1,
    "provider": "aws",
    "key_ref": "alias/pg",
    "encryption_context": { "service": "postgres" },
    "wrapped_kek": "%s",
    "created": "2025-06-01T08:00:00Z"
  }""" % W
put("envelope", "current", ENV % (W, ""))
put("envelope", "rotating", ENV % (W, PREV))

# ---- format/config (test_config.c) ---------------------------------------
put("config", "full", """# dm-cmk agent
[agent]
kek_envelope = /etc/cmk/kek.json
check_interval_s = 20
jitter_pct = 5
lease_ms = 45000
grace_s = 120
policy = poweroff
audit_log = /var/log/cmk/audit.log
syslog = no
boot_deadline_s = 30
metrics_path = /var/lib/node/cmk.prom

[provider "local"]

[device "pgtemp"]
  backing = /dev/nvme1n1  
dm_name = pg-temp
key_name = pg.temp:1
mode = ephemeral
sector_size = 4096
options = no_read_workqueue no_write_workqueue allow_discards
; second device with defaults
[device "wal"]
backing = /dev/vdb
mode = persistent
""")
put("config", "aws", """[agent]
kek_envelope = /etc/cmk/kek.json
check_interval_ms = 500
lease_ms = 5000
check_timeout_ms = 2000
policy = wipe
state_dir = /run/cmk
pin_dir = /var/lib/cmk/pins
[provider "aws"]
region = eu-west-1
credentials = imds
max_attempts = 3
[device "data"]
backing = /dev/disk/by-id/nvme-x
uuid = 0f8fad5b-d9cb-469f-a165-70867728950e
format = always
hold_ms = 1000
""")

put("config", "clouds", """[agent]
kek_envelope = /etc/cmk/kek.json
[provider "azure"]
credentials = managed_identity
client_id = 0f8fad5b-d9cb-469f-a165-70867728950e
imds_endpoint = http://169.254.169.254
algorithm = RSA-OAEP-256
vault = https://pg.vault.azure.net
verify_challenge_resource = yes
[provider "gcp"]
credentials = metadata
key_name = projects/p1/locations/global/keyRings/r1/cryptoKeys/k1
endpoint = https://cloudkms.googleapis.com
timeout_ms = 5000
[provider "aws"]
region = us-east-1
key_id = arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab
fips = yes
connect_timeout_ms = 1000
[device "d"]
backing = /dev/vdb
""")

# ---- device/binding (formats.rst) ---------------------------------------
put("binding", "opened", """{
  "format": "dm-cmk-opened",
  "version": 1,
  "device": "fuzz",
  "written": "2026-11-27T20:48:00Z",
  "kernel_boot_id": "4f6c2b1e-0b8e-4a43-9c5e-3b0e1d7a9f21",
  "device_uuid": "0f8fad5b-d9cb-469f-a165-70867728950e",
  "boot_id": "4f6c2b1e-0b8e-4a43-9c5e-3b0e1d7a9f21",
  "sequence": 3,
  "rewrap_to": 4
}
""")
put("binding", "pin", """{
  "format": "dm-cmk-pin",
  "version": 1,
  "device": "fuzz",
  "written": "2026-11-27T20:48:00Z",
  "device_uuid": "0f8fad5b-d9cb-469f-a165-70867728950e"
}
""")

# ---- core/encctx ----------------------------------------------------------
put("encctx", "two", "service=postgres\ncluster=c-42\n")
put("encctx", "kek", "dm-cmk:kek-id=0f8fad5b-d9cb-469f-a165-70867728950e\nempty=\n")

# ---- core/codec, core/json_secret ----------------------------------------
put("codec", "b64", "AQIDBAUGBwgJCgsMDQ4PEA==")
put("codec", "uuid", "0f8fad5b-d9cb-469f-a165-70867728950e")
put("codec", "time", "2025-11-27T20:48:00Z")
put("codec", "json", '{"Plaintext":"AAAA","value":"x\\u0000y","access_token":"t"}')

# ---- kms/pkcs11/p11uri (test_p11uri.c) -----------------------------------
put("p11uri", "full", "pkcs11:token=cmk;manufacturer=SoftHSM%20project;serial=1a2b;"
    "model=SoftHSM%20v2;slot-id=3;object=kek;id=%01%02%03;type=secret-key"
    "?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/cmk/pin")
put("p11uri", "lib", "pkcs11:library-manufacturer=OpenSC;library-version=0.25;"
    "slot-description=x;slot-manufacturer=y;object=k")

# ---- kms/aws (test_provider_aws.c, test_aws_creds.c) ---------------------
ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
put("aws", "decrypt_ok", answers(0, ans(200, '{"KeyId":"alias/k","Plaintext":"%s"}' % ("A" * 44))))
put("aws", "decrypt_arn_ok", answers(8, ans(200, '{"KeyId":"%s","Plaintext":"%s"}' % (ARN, "A" * 44))))
put("aws", "encrypt_ok", answers(1, ans(200, '{"KeyId":"%s","CiphertextBlob":"%s"}' % (ARN, "AQID" * 40))))
put("aws", "reencrypt_ok", answers(3, ans(200, '{"CiphertextBlob":"%s","KeyId":"%s"}' % ("AQID" * 40, ARN))))
put("aws", "denied", answers(0, ans(400, '{"__type":"AccessDeniedException","message":"User: x is not authorized"}',
                                     "x-amzn-ErrorType: AccessDeniedException:http://internal.amazon.com/")))
put("aws", "invalid_ct_confirm", answers(0,
    ans(400, '{"__type":"com.amazonaws.kms#InvalidCiphertextException"}'),
    ans(200, '{"KeyMetadata":{"KeyId":"k","KeyState":"PendingDeletion","Enabled":false}}')))
put("aws", "throttled_then_ok", answers(2,
    ans(400, '{"__type":"ThrottlingException","message":"Rate exceeded"}'),
    ans(200, '{"KeyId":"alias/k","Plaintext":"%s"}' % ("A" * 44))))
put("aws", "xml_sts", answers(0, ans(403, "<ErrorResponse><Error><Code>InvalidClientTokenId</Code>"
                                     "<Message>The security token included in the request is invalid.</Message></Error></ErrorResponse>")))
put("aws", "expired_token", answers(0, ans(400, '{"__type":"ExpiredTokenException","message":"expired"}')))
IMDS_CREDS = ('{"Code":"Success","LastUpdated":"2025-11-27T20:00:00Z","Type":"AWS-HMAC",'
              '"AccessKeyId":"ASIAFUZZ0000000001","SecretAccessKey":"fuzzSecretValue",'
              '"Token":"FwoGZXIvYXdzEJr//token==","Expiration":"2099-11-27T21:00:00Z"}')
put("aws", "imds_decrypt", answers(4, ans(200, "AQAEAFUZZTOKEN=="), ans(200, "pg-role"),
                                   ans(200, IMDS_CREDS),
                                   ans(200, '{"KeyId":"alias/k","Plaintext":"%s"}' % ("A" * 44))))
put("aws_creds", "credentials_file", b"\x00" + b"""# comment
[default]
aws_access_key_id = AKIADEFAULT0000000001
aws_secret_access_key = dEfAuLt/Secret+Key=

[prod]   \r
  aws_access_key_id=AKIAPROD00000000002  \r
\taws_secret_access_key\t=  pr0d secret with spaces 
aws_session_token = FwoGZXIvYXdzEJr//////////token==
region = eu-west-1
[fuzz]
aws_access_key_id = AKIAHALF000000000003
aws_secret_access_key = fuzzSecretValue
""")
put("aws_creds", "config_file", b"\x81" + b"""[default]
region = us-east-1
[profile fuzz]
region = eu-west-1
aws_access_key_id = AKIAPROF00000000004
aws_secret_access_key = fuzzSecretValue
""")
put("aws_creds", "imds", b"\x02" + IMDS_CREDS.encode())

# ---- kms/azure (test_provider_azure.c) -----------------------------------
VER = "0123456789abcdef0123456789abcdef"
KID = "https://fuzz.vault.azure.net/keys/k1/" + VER
TOKEN = ('{"access_token":"eyJ0eXAi.eyJhdWQi.sig","client_id":"c","expires_in":"86399",'
         '"expires_on":"4100000000","ext_expires_in":"86399","not_before":"1700000000",'
         '"resource":"https://vault.azure.net","token_type":"Bearer"}')
CHALLENGE = ('WWW-Authenticate: Bearer authorization="https://login.microsoftonline.com/'
             '72f988bf-86f1-41af-91ab-2d7cd011db47", resource="https://vault.azure.net"')
UNWRAPPED = base64.urlsafe_b64encode(KEK + hashlib.sha256(canonical(CTX)).digest()).rstrip(b"=").decode()
for op, name, body in ((0, "unwrap", '{"kid":"%s","value":"%s"}' % (KID, UNWRAPPED)),
                       (1, "wrap", '{"kid":"%s","value":"%s"}' % (KID, "pqYX" * 10)),
                       (2, "check", '{"kid":"%s","value":"%s"}' % (KID, UNWRAPPED))):
    put("azure", name, answers(op, ans(401, "", CHALLENGE), ans(200, TOKEN), ans(200, body)))
put("azure", "hsm_unwrap", answers(4, ans(401, "", CHALLENGE.replace("vault.azure.net", "managedhsm.azure.net")),
                                   ans(200, TOKEN.replace("vault.azure.net", "managedhsm.azure.net")),
                                   ans(200, '{"kid":"%s","value":"%s"}' % (KID.replace("vault", "managedhsm"), UNWRAPPED))))
put("azure", "disabled", answers(0, ans(401, "", CHALLENGE), ans(200, TOKEN),
    ans(403, '{"error":{"code":"Forbidden","message":"Operation unwrapKey is not allowed on a disabled key.",'
             '"innererror":{"code":"KeyDisabled"}}}'),
    ans(200, '{"key":{"kid":"%s","kty":"oct-HSM"},"attributes":{"enabled":false,"exp":1700000000}}' % KID)))
put("azure", "imds_error", answers(0, ans(400, '{"error":"invalid_request","error_description":"Identity not found"}')))
put("azure", "blob", b"\x00" + b"CMKAZ\x01\x02" + VER.encode() + b"\x00" * 40)

# ---- kms/gcp (test_provider_gcp.c) ---------------------------------------
GKEY = "projects/p1/locations/global/keyRings/r1/cryptoKeys/k1"
GTOK = '{"access_token":"ya29.fuzz","expires_in":3599,"token_type":"Bearer"}'
GCT = b"\x0a\x24\x00" + bytes(range(110))
put("gcp", "decrypt_ok", answers(0, ans(200, GTOK, "Metadata-Flavor: Google"),
                                 ans(200, '{"plaintext":"%s","plaintextCrc32c":"%d","usedPrimary":true}'
                                     % (base64.b64encode(KEK).decode(), crc32c(KEK)))))
put("gcp", "encrypt_ok", answers(1, ans(200, GTOK, "Metadata-Flavor: Google"),
                                 ans(200, '{"name":"%s/cryptoKeyVersions/1","ciphertext":"%s","ciphertextCrc32c":"%d",'
                                          '"verifiedPlaintextCrc32c":true,"verifiedAdditionalAuthenticatedDataCrc32c":true,'
                                          '"protectionLevel":"HSM"}' % (GKEY, base64.b64encode(GCT).decode(), crc32c(GCT)))))
put("gcp", "disabled", answers(0, ans(200, GTOK, "Metadata-Flavor: Google"),
    ans(400, '{"error":{"code":400,"message":"%s/cryptoKeyVersions/1 is not enabled, current state is: DISABLED.",'
             '"status":"FAILED_PRECONDITION"}}' % GKEY)))
put("gcp", "denied_confirm", answers(2, ans(200, GTOK, "Metadata-Flavor: Google"),
    ans(403, '{"error":{"code":403,"message":"Permission \'cloudkms.cryptoKeyVersions.useToDecrypt\' denied on resource \'%s\' (or it may not exist).","status":"PERMISSION_DENIED"}}' % GKEY),
    ans(200, '{"name":"%s/cryptoKeyVersions/1","state":"DESTROY_SCHEDULED"}' % GKEY)))
put("gcp", "sa_key", b"\x00" + b'{"type":"service_account","client_email":"a@p.iam.gserviceaccount.com",'
    b'"private_key_id":"k1","private_key":"-----BEGIN PRIVATE KEY-----\\nMIIB\\n-----END PRIVATE KEY-----\\n",'
    b'"token_uri":"https://oauth2.googleapis.com/token"}')


# ---- device/genl: datagrams as the kernel sends them ---------------------
def nla(t, payload):
    n = 4 + len(payload)
    return struct.pack("<HH", n, t) + payload + b"\0" * ((4 - n % 4) % 4)


def nlmsg(typ, flags, payload, seq=0, pid=0):
    return struct.pack("<IHHII", 16 + len(payload), typ, flags, seq, pid) + payload


def genl(cmd, attrs):
    return struct.pack("<BBH", cmd, 1, 0) + b"".join(attrs)


def dgram(*msgs):
    b = b"".join(msgs)
    return struct.pack("<H", len(b)) + b


NLMSG_ERROR, NLMSG_DONE, GENL_ID_CTRL, FAM = 2, 3, 0x10, 0x1c
ACK = nlmsg(NLMSG_ERROR, 0x100, struct.pack("<i", 0) + nlmsg(FAM, 5, b"")[:16])
FAMILY = nlmsg(GENL_ID_CTRL, 0, genl(1, [
    nla(2, b"dm-cmk\0"), nla(1, struct.pack("<H", FAM)),
    nla(7 | 0x8000, nla(1 | 0x8000, nla(2, b"events\0") + nla(1, struct.pack("<I", 9))))]))


def info(name):
    return genl(4, [nla(1, name + b"\0"), nla(3, b"/dev/vdb\0"), nla(4, struct.pack("<I", 2)),
                    nla(5, struct.pack("<Q", 3)), nla(6, struct.pack("<I", 29000)),
                    nla(13, struct.pack("<I", 1))])


put("genl", "session", dgram(FAMILY, ACK) + dgram(nlmsg(FAM, 0, info(b"fuzz")), ACK) +
    dgram(nlmsg(FAM, 2, info(b"a")), nlmsg(FAM, 2, info(b"b"))) + dgram(nlmsg(NLMSG_DONE, 2, b"\0\0\0\0")) +
    dgram(nlmsg(FAM, 0, info(b"")), ACK) + dgram(ACK) + dgram(ACK) + dgram(ACK) +
    dgram(FAMILY, ACK) + dgram(nlmsg(FAM, 0, genl(5, [nla(12, struct.pack("<I", 1))]) + info(b"ev")[4:])))
ERR_EXT = nlmsg(NLMSG_ERROR, 0x300, struct.pack("<i", -19) + nlmsg(FAM, 5, b"")[:16] +
                nla(1, b"no such device\0"))
put("genl", "errors", dgram(FAMILY, ACK) + dgram(ERR_EXT) + dgram(ERR_EXT) + dgram(ERR_EXT))

# ---- kms/aws/s3: a status byte, then S3's documented answers -------------------
put("s3", "initiate", b"\x00<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    b"<InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
    b"<Bucket>wal-archive</Bucket><Key>k</Key><UploadId>VXBsb2FkIElE&amp;x</UploadId>"
    b"</InitiateMultipartUploadResult>")
put("s3", "error", b"\x01<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>\n"
    b"  <Code>AccessDenied</Code>\n  <Message>Access Denied &#65;&#x42;</Message>\n"
    b"  <RequestId>4442587FB7D0A2F9</RequestId>\n  <HostId>a/b+c=</HostId>\n</Error>\n")
put("s3", "complete", b"\x00<CompleteMultipartUploadResult><Location>l</Location>"
    b"<Bucket>b</Bucket><Key>k</Key><ETag>\"3858f62230ac3c915f300c664312c11f-9\"</ETag>"
    b"</CompleteMultipartUploadResult>")
put("s3", "nested", b"\x02<R a='1'><A><B/><C>x</C></A><Code/></R>")

if __name__ == "__main__":
    sys.exit(0)

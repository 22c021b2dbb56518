#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
#
# kmip_admin.py - the key owner's side of the KMIP tests, through PyKMIP's
# own client (kmip.pie.client.ProxyKmipClient) over mutual TLS: create and
# activate, revoke, destroy CMKs, read their State; and an independent
# oracle for envelopes: Get the key bytes and open IV || ciphertext || tag
# with the cryptography package's AES-GCM and the canonical encryption
# context (encctx.h) rebuilt here.
#
# usage: kmip_admin.py DIR PORT CERT KEY CA COMMAND ARGS...
#   create NAME [POLICY]    AES-256, Encrypt|Decrypt, activated; prints uid
#   create-preactive NAME [POLICY]   the same, not activated
#   activate NAME           Activate (only a Pre-Active key can be)
#   revoke NAME             Revoke (cessation of operation) -> Deactivated
#   compromise NAME         Revoke (key compromise) -> Compromised
#   destroy NAME            Revoke if Active, then Destroy
#   state NAME              prints the State name
#   open-envelope NAME WRAPPED-B64 k=v...   prints the KEK's length, exit 0
#                           if AES-GCM with the context as AAD opens it
#   kek-hex NAME WRAPPED-B64 k=v...   the same, prints the KEK in hex (for
#                           tests that check it appears nowhere)
# Runs with Debian's /usr/bin/python3 (python3-pykmip).
import base64
import os
import struct
import sys

from kmip import enums
from kmip.core.factories import attributes
from kmip.pie import client, objects


def canonical(pairs):
    pairs = sorted((k.encode(), v.encode()) for k, v in pairs)
    out = b"CMKCTX01" + struct.pack("<I", len(pairs))
    for k, v in pairs:
        out += struct.pack("<I", len(k)) + k + struct.pack("<I", len(v)) + v
    return out


def find(c, name):
    f = attributes.AttributeFactory()
    uids = c.locate(attributes=[f.create_attribute(enums.AttributeType.NAME, name)])
    if len(uids) != 1:
        sys.exit("kmip_admin: %d keys named %s" % (len(uids), name))
    return uids[0]


def main():
    _, port, cert, key, ca, cmd, *args = sys.argv[1:]
    c = client.ProxyKmipClient(hostname="127.0.0.1", port=int(port), cert=cert,
                               key=key, ca=ca, ssl_version="PROTOCOL_TLSv1_2",
                               config_file="/dev/null",
                               kmip_version=enums.KMIPVersion.KMIP_1_4)
    with c:
        if cmd in ("create", "create-preactive"):
            k = objects.SymmetricKey(
                enums.CryptographicAlgorithm.AES, 256,
                os.urandom(32),
                [enums.CryptographicUsageMask.ENCRYPT,
                 enums.CryptographicUsageMask.DECRYPT],
                name=args[0])
            if len(args) > 1:
                k.operation_policy_name = args[1]
            uid = c.register(k)
            if cmd == "create":
                c.activate(uid)
            print(uid)
        elif cmd == "activate":
            c.activate(find(c, args[0]))
        elif cmd in ("revoke", "compromise"):
            reason = (enums.RevocationReasonCode.KEY_COMPROMISE
                      if cmd == "compromise" else
                      enums.RevocationReasonCode.CESSATION_OF_OPERATION)
            kw = {"compromise_occurrence_date": 1} if cmd == "compromise" else {}
            c.revoke(reason, find(c, args[0]), **kw)
        elif cmd == "destroy":
            uid = find(c, args[0])
            st = c.get_attributes(uid, ["State"])[1][0].attribute_value.value
            if st == enums.State.ACTIVE:
                c.revoke(enums.RevocationReasonCode.CESSATION_OF_OPERATION, uid)
            c.destroy(uid)
        elif cmd == "state":
            uid = find(c, args[0])
            st = c.get_attributes(uid, ["State"])[1][0].attribute_value.value
            print(st.name)
        elif cmd in ("open-envelope", "kek-hex"):
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
            uid = find(c, args[0])
            blob = base64.b64decode(args[1])
            kek = c.get(uid).value
            pairs = [a.split("=", 1) for a in args[2:]]
            pt = AESGCM(kek).decrypt(blob[:12], blob[12:], canonical(pairs))
            print(len(pt) if cmd == "open-envelope" else pt.hex())
        else:
            sys.exit("kmip_admin: unknown command " + cmd)


if __name__ == "__main__":
    main()

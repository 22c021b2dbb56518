#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
#
# p11attr.py - set CKA_DECRYPT of a secret key on a PKCS#11 token, for
# tests/kms/pkcs11.sh: the key owner's "disable decryption" (pkcs11-tool
# cannot change a usage attribute after creation).  Talks to the module
# with ctypes only, so it shares no code with the agent's provider.
#
# usage: p11attr.py MODULE TOKEN-LABEL KEY-LABEL true|false   (PIN in $P11_PIN)
import ctypes as C
import os
import sys

CKR_OK = 0
CKF_SERIAL_SESSION, CKF_RW_SESSION = 4, 2
CKU_USER = 1
CKA_CLASS, CKA_LABEL, CKA_DECRYPT = 0x0, 0x3, 0x105
CKO_SECRET_KEY = 4
UL = C.c_ulong


class Attr(C.Structure):
    _fields_ = [("type", UL), ("pValue", C.c_void_p), ("ulValueLen", UL)]


class TokenInfo(C.Structure):
    _fields_ = [("label", C.c_char * 32), ("rest", C.c_ubyte * 512)]


def call(name, *args):
    rv = getattr(lib, name)(*args)
    if rv != CKR_OK:
        sys.exit("p11attr: %s failed: CKR 0x%x" % (name, rv))


module, token, label, value = sys.argv[1:5]
lib = C.CDLL(module)
call("C_Initialize", None)
n = UL(0)
call("C_GetSlotList", C.c_ubyte(1), None, C.byref(n))
slots = (UL * n.value)()
call("C_GetSlotList", C.c_ubyte(1), slots, C.byref(n))
slot = None
for s in slots[: n.value]:
    ti = TokenInfo()
    call("C_GetTokenInfo", UL(s), C.byref(ti))
    if ti.label.decode().rstrip(" ") == token:
        slot = s
if slot is None:
    sys.exit("p11attr: no token labelled %s" % token)
h = UL(0)
call("C_OpenSession", UL(slot), UL(CKF_SERIAL_SESSION | CKF_RW_SESSION), None, None, C.byref(h))
pin = os.environ["P11_PIN"].encode()
call("C_Login", h, UL(CKU_USER), C.c_char_p(pin), UL(len(pin)))
cls = UL(CKO_SECRET_KEY)
lab = C.create_string_buffer(label.encode(), len(label))
tmpl = (Attr * 2)(Attr(CKA_CLASS, C.cast(C.byref(cls), C.c_void_p), C.sizeof(cls)),
                  Attr(CKA_LABEL, C.cast(lab, C.c_void_p), len(label)))
call("C_FindObjectsInit", h, tmpl, UL(2))
objs = (UL * 4)()
cnt = UL(0)
call("C_FindObjects", h, objs, UL(4), C.byref(cnt))
call("C_FindObjectsFinal", h)
if cnt.value != 1:
    sys.exit("p11attr: %d secret keys labelled %s" % (cnt.value, label))
b = C.c_ubyte(1 if value == "true" else 0)
set_ = (Attr * 1)(Attr(CKA_DECRYPT, C.cast(C.byref(b), C.c_void_p), 1))
call("C_SetAttributeValue", h, UL(objs[0]), set_, UL(1))
call("C_Logout", h)
call("C_CloseSession", h)
call("C_Finalize", None)

// SPDX-License-Identifier: GPL-2.0
//
// esdk_kat.js - how the known-answer messages of tests/unit/test_esdk.c
// were made: the AWS Encryption SDK for JavaScript encrypts a fixed
// plaintext under the storage wrapping key it derives itself from a fixed
// KEK (HKDF-SHA256, Documentation/storage.rst).  Prints C initialisers.
//   NODE_PATH=.../node_modules node esdk_kat.js
'use strict';

const crypto = require('crypto');
const {
	buildClient, CommitmentPolicy, RawAesKeyringNode,
	RawAesWrappingSuiteIdentifier, AlgorithmSuiteIdentifier,
} = require('@aws-crypto/client-node');

const kek = Buffer.from([...Array(32).keys()]);
const kekId = '00112233-4455-6677-8899-aabbccddeeff';
const info = Buffer.concat([Buffer.from('dm-cmk storage wrapping key v1'), Buffer.alloc(1),
	Buffer.from(kekId.replace(/-/g, ''), 'hex'), Buffer.from([0, 0, 0, 1])]);
const wk = Buffer.from(crypto.hkdfSync('sha256', kek, Buffer.alloc(0), info, 32));
const kr = new RawAesKeyringNode({
	keyName: `kek/${kekId}/v1`, keyNamespace: 'dm-cmk',
	unencryptedMasterKey: new Uint8Array(wk),
	wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
	// the EDK AAD is the context sorted by UTF-8 bytes, as the ESDK
	// message header and cmkctl sort it; without it the keyring orders
	// mixed-case keys differently (Documentation/storage.rst)
	utf8Sorting: true,
});
const { encrypt } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);
const pt = Buffer.from('dm-cmk known answer, 40 bytes of text!!!');

function c(name, buf) {
	const hex = [...buf].map((b) => `0x${b.toString(16).padStart(2, '0')},`);
	const lines = [];
	for (let i = 0; i < hex.length; i += 12) lines.push(`\t${hex.slice(i, i + 12).join(' ')}`);
	return `static const unsigned char ${name}[] = {\n${lines.join('\n')}\n};\n`;
}

(async () => {
	const ctx = { cluster: 'c1', segment: '000000010000000000000001' };
	const a = await encrypt(kr, pt, { encryptionContext: ctx, frameLength: 16,
		suiteId: AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY });
	const b = await encrypt(kr, pt, { encryptionContext: ctx, frameLength: 16,
		suiteId: AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY_ECDSA_P384 });
	process.stdout.write(`/* made by tests/storage/esdk_kat.js (@aws-crypto/client-node) */\n`);
	process.stdout.write(c('kat_0478', a.result) + c('kat_0578', b.result));
	process.stdout.write(`/* wrapping key, for reference only: ${wk.toString('hex')} */\n`);
})();

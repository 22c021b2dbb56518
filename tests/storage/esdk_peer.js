// SPDX-License-Identifier: GPL-2.0
//
// esdk_peer.js - the AWS Encryption SDK for JavaScript (@aws-crypto/client-node)
// as the independent peer of cmkctl seal/unseal, and the break-glass recipe
// of Documentation/storage.rst in code: from the local provider's key file
// and the KEK envelope it unwraps the KEK and derives the storage wrapping
// key itself (nothing of dm-cmk's code), then uses a RawAesKeyringNode.
//
//   node esdk_peer.js encrypt|decrypt --key-file CMK --envelope KEK.json
//        [--suite 0478|0578] [--frame-length N] [--context k=v]... IN OUT [IN OUT]...
//   node esdk_peer.js time-encrypt|time-decrypt ... IN   (prints MiB/s)
//   node esdk_peer.js stream-encrypt|stream-decrypt ...   (stdin to stdout,
//        the SDK's streaming API: objects of any size)
//
// decrypt refuses a message whose encryption context is not exactly the
// --context pairs (besides aws-crypto-public-key), as cmkctl unseal does.
// Exit 0 on success, 1 on any failure (message on stderr).  No key is
// printed.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const {
	buildClient, CommitmentPolicy, RawAesKeyringNode,
	RawAesWrappingSuiteIdentifier, AlgorithmSuiteIdentifier,
} = require('@aws-crypto/client-node');

const LABEL = 'dm-cmk storage wrapping key v1';

function die(msg) {
	process.stderr.write(`esdk_peer: ${msg}\n`);
	process.exit(1);
}

function args(argv) {
	const a = { context: {}, pos: [], suite: '0478', frame: 4096 };
	for (let i = 0; i < argv.length; i++) {
		const k = argv[i];
		if (k === '--key-file') a.keyFile = argv[++i];
		else if (k === '--envelope') a.envelope = argv[++i];
		else if (k === '--suite') a.suite = argv[++i];
		else if (k === '--frame-length') a.frame = Number(argv[++i]);
		else if (k === '--context') {
			const kv = argv[++i], eq = kv.indexOf('=');
			a.context[kv.slice(0, eq)] = kv.slice(eq + 1);
		} else a.pos.push(k);
	}
	return a;
}

// The local provider's canonical context (Documentation/formats.rst).
function canonicalContext(ctx) {
	const keys = Object.keys(ctx).sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
	const parts = [Buffer.from('CMKCTX01')];
	const u32 = (n) => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };
	parts.push(u32(keys.length));
	for (const k of keys) {
		const kb = Buffer.from(k), vb = Buffer.from(ctx[k]);
		parts.push(u32(kb.length), kb, u32(vb.length), vb);
	}
	return Buffer.concat(parts);
}

// The KEK: AES-256-GCM unwrap of 0x01 | nonce | ciphertext | tag.
function unwrapKek(keyFile, env) {
	const cmk = fs.readFileSync(keyFile);
	const w = Buffer.from(env.wrapped_kek, 'base64');
	if (w[0] !== 1) die('wrapped_kek: not a local provider wrap');
	const d = crypto.createDecipheriv('aes-256-gcm', cmk, w.subarray(1, 13));
	d.setAAD(canonicalContext(env.encryption_context || {}));
	d.setAuthTag(w.subarray(w.length - 16));
	return Buffer.concat([d.update(w.subarray(13, w.length - 16)), d.final()]);
}

// HKDF-SHA256(KEK, no salt, LABEL | 0 | kek_id | kek_version BE32), 32 bytes.
function wrappingKey(a) {
	const env = JSON.parse(fs.readFileSync(a.envelope, 'utf8'));
	const kek = unwrapKek(a.keyFile, env);
	const id = Buffer.from(env.kek_id.replace(/-/g, ''), 'hex');
	const ver = Buffer.alloc(4);
	ver.writeUInt32BE(env.kek_version);
	const info = Buffer.concat([Buffer.from(LABEL), Buffer.alloc(1), id, ver]);
	const wk = Buffer.from(crypto.hkdfSync('sha256', kek, Buffer.alloc(0), info, 32));
	// For the test that no output of cmkctl holds a key: ESDK_PEER_KEYS=FILE.
	if (process.env.ESDK_PEER_KEYS)
		fs.writeFileSync(process.env.ESDK_PEER_KEYS, `${kek.toString('hex')}\n${wk.toString('hex')}\n`,
			{ mode: 0o600 });
	kek.fill(0);
	return { key: wk, name: `kek/${env.kek_id}/v${env.kek_version}` };
}

function keyring(a) {
	const wk = wrappingKey(a);
	return new RawAesKeyringNode({
		keyName: wk.name,
		keyNamespace: 'dm-cmk',
		unencryptedMasterKey: new Uint8Array(wk.key),
		wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
		// the EDK AAD is the context sorted by UTF-8 bytes, as the ESDK
		// message header and cmkctl sort it; without it the keyring orders
		// mixed-case keys differently (Documentation/storage.rst)
		utf8Sorting: true,
	});
}

const SUITES = {
	'0478': AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY,
	'0578': AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY_ECDSA_P384,
};

const { encrypt, decrypt, encryptStream, decryptStream } =
	buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);
const { pipeline } = require('stream/promises');

function checkContext(got, want) {
	for (const k of Object.keys(want))
		if (got[k] !== want[k]) die(`encryption context key "${k}" differs`);
	for (const k of Object.keys(got))
		if (k !== 'aws-crypto-public-key' && !(k in want))
			die(`encryption context key "${k}" not expected`);
}

async function doEncrypt(a, kr, pt) {
	const suiteId = SUITES[a.suite];
	if (!suiteId) die(`unknown suite ${a.suite}`);
	const { result } = await encrypt(kr, pt, {
		encryptionContext: a.context, suiteId, frameLength: a.frame,
	});
	return result;
}

async function doDecrypt(a, kr, ct) {
	const { plaintext, messageHeader } = await decrypt(kr, ct);
	checkContext(messageHeader.encryptionContext, a.context);
	return plaintext;
}

async function main() {
	const [cmd, ...rest] = process.argv.slice(2);
	const a = args(rest);
	if (!a.keyFile || !a.envelope) die('usage: see the head of this file');
	const kr = keyring(a);
	if (cmd === 'stream-encrypt') {
		await pipeline(process.stdin, encryptStream(kr, {
			encryptionContext: a.context, suiteId: SUITES[a.suite], frameLength: a.frame,
		}), process.stdout);
		return;
	}
	if (cmd === 'stream-decrypt') {
		const d = decryptStream(kr);
		d.once('MessageHeader', (h) => checkContext(h.encryptionContext, a.context));
		await pipeline(process.stdin, d, process.stdout);
		return;
	}
	if (a.pos.length < 1) die('usage: see the head of this file');
	if (cmd === 'encrypt' || cmd === 'decrypt') {
		if (a.pos.length % 2) die('IN OUT pairs expected');
		for (let i = 0; i < a.pos.length; i += 2) {
			const input = fs.readFileSync(a.pos[i]);
			const out = cmd === 'encrypt' ? await doEncrypt(a, kr, input) : await doDecrypt(a, kr, input);
			fs.writeFileSync(a.pos[i + 1], out);
		}
		return;
	}
	const input = fs.readFileSync(a.pos[0]);
	if (cmd === 'time-encrypt' || cmd === 'time-decrypt') {
		const t0 = process.hrtime.bigint();
		const out = cmd === 'time-encrypt' ? await doEncrypt(a, kr, input) : await doDecrypt(a, kr, input);
		const s = Number(process.hrtime.bigint() - t0) / 1e9;
		if (a.pos[1]) fs.writeFileSync(a.pos[1], out);
		process.stdout.write(`${(input.length / 1048576 / s).toFixed(1)}\n`);
		return;
	}
	die(`unknown command ${cmd}`);
}

main().catch((err) => die(err && err.message ? err.message : String(err)));

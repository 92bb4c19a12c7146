// Signing and decryption by t signers, each checking the module's proof of the request; and
// verification and encryption, which need only the public key (a token key, under a login, or a
// session key the module sends). The gateway plans the mechanism (contract/pkcs11/mechanisms.ts)
// and verifies every combined signature before it leaves.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { EC_FIELD_BYTES } from '../../../contract/keys/specs.js';
import { parseSpki } from '../../../contract/keys/spki.js';
import { CKR, P11Error } from '../../../contract/pkcs11/ck.js';
import { encrypt, planDecryption, planSignature } from '../../../contract/pkcs11/mechanisms.js';
import { messageDigestFor } from '../../../policy/sign-approvals.js';
import { gatewayPolicy } from '../../governance.js';
import type { KeyRecord } from '../../keys.js';
import { authorize } from '../../kms/authorize.js';
import type { Principal } from '../../principals.js';
import { ecdsaDerToRaw, verifySignature } from '../../verify.js';
import { sessionKeySpki, type Template } from '../objects.js';
import { p11Evidence, proofSchema } from '../proof.js';
import { bytes, p11Operation, templateSchema, uint, valueList, type P11Call, type P11Deps } from '../request.js';
import { CHECKED, requireRole, type RoleNeed } from '../roles.js';
import { keyOf, specOf } from '../token.js';

const sha256Hex = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

const cryptoArgs = z.tuple([z.union([bytes, templateSchema]), uint, valueList, bytes, z.union([z.literal(0), z.literal(1)])]);
const provenArgs = z.tuple([...cryptoArgs.def.items, proofSchema]);

export const sign = p11Operation({ login: 'principal', args: provenArgs, role: CHECKED.sign }, async (deps, { principal, args: [uid, mech, params, input, isDigest, proof], log }) => {
  if (!Buffer.isBuffer(uid)) throw new P11Error(CKR.KEY_HANDLE_INVALID, 'signing needs a token key');
  const key = keyOf(deps, uid, 'priv', log);
  const plan = planSignature(mech, params, input, isDigest === 1, specOf(key));
  const context = { algorithm: plan.algorithm, messageType: plan.messageType, digest: messageDigestFor(plan.algorithm, plan.messageType, plan.message) };
  const allowed = authorize(principal, 'Sign', key, { context });
  log.algorithm = plan.algorithm;
  log.digest = sha256Hex(plan.message);
  const evidence = p11Evidence(principal, 'Sign', { uid, mech, params, input, isDigest, proof });
  const signature = await deps.cluster.sign({
    keyId: key.keyId,
    algorithm: plan.algorithm,
    messageType: plan.messageType,
    message: plan.message,
    trace: log.trace,
    evidence: { evidence, ...(allowed.signApprovals.length ? { signApprovals: allowed.signApprovals } : {}) },
  });
  // Per-signature approvals are spent once the signature exists.
  await gatewayPolicy().proposals.consume(allowed.consumeNonces);
  log.output = 'signature';
  return [Buffer.from(plan.ecdsa ? ecdsaDerToRaw(plan.ecdsa, signature) : signature)];
});

/** The public key of a request: a token key (usable for `usage`) or a session key's attributes. */
function publicKeyOf(deps: P11Deps, { abi, principal, log }: P11Call<unknown, Principal | undefined>, ref: Buffer | Template, usage: KeyRecord['keyUsage'], need: RoleNeed) {
  if (!Buffer.isBuffer(ref)) return sessionKeySpki(new Map(ref), abi);
  const key = keyOf(deps, ref, 'any', log);
  requireRole(principal!, need.operation, need.what);
  authorize(principal!, need.operation, key);
  deps.cluster.usableKey(key.keyId, usage);
  return { keySpec: specOf(key), spki: Buffer.from(key.publicKey, 'base64') };
}

function signatureLength(spki: Buffer): number {
  const p = parseSpki(spki);
  return p.kind === 'rsa' ? Math.ceil(p.modulusBits / 8) : p.kind === 'ed25519' ? 64 : 2 * EC_FIELD_BYTES[p.keySpec];
}

export const verify = p11Operation({ login: 'token-key', args: z.tuple([...cryptoArgs.def.items, bytes]) }, (deps, call) => {
  const [ref, mech, params, input, isDigest, signature] = call.args;
  const { keySpec, spki } = publicKeyOf(deps, call, ref, 'SIGN_VERIFY', CHECKED.verify);
  const plan = planSignature(mech, params, input, isDigest === 1, keySpec);
  if (signature.length !== signatureLength(spki)) throw new P11Error(CKR.SIGNATURE_LEN_RANGE, `a signature by this key is ${signatureLength(spki)} bytes, not ${signature.length}`);
  const ok = verifySignature({ keySpec, spki, algorithm: plan.algorithm, messageType: plan.messageType, message: plan.message, signature, signatureFormat: plan.ecdsa ? 'raw' : 'der' });
  if (!ok) throw new P11Error(CKR.SIGNATURE_INVALID, 'the signature does not verify');
  return [];
});

export const encryptOp = p11Operation({ login: 'token-key', args: cryptoArgs }, (deps, call) => {
  const [ref, mech, params, data] = call.args;
  const { keySpec, spki } = publicKeyOf(deps, call, ref, 'ENCRYPT_DECRYPT', CHECKED.encrypt);
  return [encrypt(mech, params, data, spki, keySpec)];
});

export const decrypt = p11Operation({ login: 'principal', args: provenArgs, role: CHECKED.decrypt }, async (deps, { principal, args: [uid, mech, params, ciphertext, isDigest, proof], log }) => {
  if (!Buffer.isBuffer(uid)) throw new P11Error(CKR.KEY_HANDLE_INVALID, 'decryption needs a token key');
  const key = keyOf(deps, uid, 'priv', log);
  const algorithm = planDecryption(mech, params, specOf(key));
  authorize(principal, 'Decrypt', key, { context: { algorithm } });
  const parsed = parseSpki(Buffer.from(key.publicKey, 'base64'));
  if (parsed.kind !== 'rsa') throw new P11Error(CKR.KEY_TYPE_INCONSISTENT, 'not an RSA key');
  const k = Math.ceil(parsed.modulusBits / 8);
  if (ciphertext.length !== k) throw new P11Error(CKR.ENCRYPTED_DATA_LEN_RANGE, `a ciphertext for this key is ${k} bytes, not ${ciphertext.length}`);
  const c = BigInt('0x' + ciphertext.toString('hex'));
  if (c === 0n || c >= parsed.n) throw new P11Error(CKR.ENCRYPTED_DATA_INVALID, 'the ciphertext is not below the modulus');
  log.algorithm = algorithm;
  log.digest = sha256Hex(ciphertext);
  const evidence = p11Evidence(principal, 'Decrypt', { uid, mech, params, input: ciphertext, isDigest, proof });
  const plaintext = await deps.cluster.decrypt({ keyId: key.keyId, algorithm, ciphertext, trace: log.trace, evidence: { evidence } });
  log.output = 'plaintext';
  return [Buffer.from(plaintext)];
});

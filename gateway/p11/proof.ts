// The module's proof of a request — [principal, timestamp, nonce, MAC] under the PIN's request
// key, which the gateway does not hold — as the evidence each signer checks (policy/evidence.ts,
// policy/admin-evidence.ts): the gateway can forward a principal's request, not make another.
import { z } from 'zod';
import { CKR, P11Error } from '../../contract/pkcs11/ck.js';
import { encodeValue, type Abi, type Value } from '../../contract/pkcs11/wire.js';
import type { P11KeygenEvidence, P11LabelEvidence } from '../../policy/admin-evidence.js';
import type { P11Evidence } from '../../policy/evidence.js';
import type { Principal } from '../principals.js';
import { bytes, uint } from './request.js';

/** The module's proof of a request: [principal, timestamp, nonce, MAC], or [] when it holds no request key. */
export const proofSchema = z.union([z.tuple([]), z.tuple([bytes, uint, bytes, bytes])]);
type Proof = Exclude<z.infer<typeof proofSchema>, []>;

/** A proof's time, nonce and MAC (hex), if it is the logged-in principal's. */
function provenBy(principal: Principal, proof: Proof): { timestamp: number; nonce: string; mac: string } {
  const [who, timestamp, nonce, mac] = proof;
  if (who.toString('utf8') !== principal.name) throw new P11Error(CKR.USER_NOT_LOGGED_IN, `the request is signed for ${who.toString('utf8').slice(0, 64)}, not for the logged-in ${principal.name}`);
  return { timestamp, nonce: nonce.toString('hex'), mac: mac.toString('hex') };
}

/**
 * The evidence each signer checks before it signs or decrypts (policy/evidence.ts): the
 * module's arguments as they came and its MAC under the PIN's request key, which the gateway
 * does not hold — it can forward this request, not make another.
 */
export function p11Evidence(principal: Principal, operation: 'Sign' | 'Decrypt', args: { uid: Buffer; mech: number; params: Value[]; input: Buffer; isDigest: 0 | 1; proof: z.infer<typeof proofSchema> }): P11Evidence {
  if (args.proof.length === 0) throw new P11Error(CKR.FUNCTION_REJECTED, 'the module sent no proof of this request (a module older than this gateway?): the signers need one');
  const { timestamp, nonce, mac } = provenBy(principal, args.proof);
  return {
    kind: 'p11',
    operation,
    principal: principal.name,
    timestamp,
    nonce,
    key: args.uid.toString('utf8'),
    mechanism: args.mech,
    params: encodeValue(args.params).toString('hex'),
    input: args.input.toString('hex'),
    isDigest: args.isDigest,
    mac,
  };
}

/**
 * The administrator's key generation as each signer checks it (policy/admin-evidence.ts): the
 * module's arguments as they came and its MAC under the SO PIN's request key, which the gateway
 * does not hold. It is the administrator's approval where one is the quorum.
 */
export function keygenEvidence(principal: Principal, abi: Abi, a: { mech: number; pubT: Value; privT: Value; proof: Proof }): P11KeygenEvidence {
  return {
    kind: 'p11-keygen',
    principal: principal.name,
    ...provenBy(principal, a.proof),
    mechanism: a.mech,
    publicTemplate: encodeValue(a.pubT).toString('hex'),
    privateTemplate: encodeValue(a.privT).toString('hex'),
    abi: (abi.ulongBytes === 8 ? 1 : 0) | (abi.bigEndian ? 2 : 0),
  };
}

/** A relabelling as each signer checks it (policy/admin-evidence.ts): the module's arguments as they came and its MAC. */
export function labelEvidence(principal: Principal, uid: Buffer, template: Value, proof: Proof): P11LabelEvidence {
  return { kind: 'p11-label', principal: principal.name, ...provenBy(principal, proof), object: uid.toString('utf8'), template: encodeValue(template).toString('hex') };
}

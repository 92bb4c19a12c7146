// The Ed25519 routes: FROST key generation (signers/protocols/dkg.ts), two rounds after the
// start, and FROST signing (signers/protocols/frost.ts, RFC 9591): a commitment, then a share —
// or, with nonces made ahead of the message (`preprocess`), one call (`signPreprocessed`).
import { z } from 'zod';
import { keygenAnswer, keygenStart, released, roundAnswer, route, stepRequest } from './route.js';
import { keyIdSchema, sessionIdSchema, uuidSchema } from './relayed.js';

/** The most nonce pairs one preprocess call makes. */
export const FROST_PREPROCESS_MAX = 64;

export const dkg = {
  /**
   * `suite` is narrowed by the signer to the protocol's group names. `material`: a new material
   * (its id) of an existing symmetric key — a rotation — instead of a new key.
   */
  start: route('/v1/dkg/start', keygenStart({ suite: z.string(), material: z.number().int().min(2).max(0xffffffff).optional() }), roundAnswer),
  step: route('/v1/dkg/step', stepRequest, keygenAnswer),
};

export const frost = {
  /** `use`: contract/signer-rpc/authority.ts `Use`, which the signer's guard parses. */
  commit: route(
    '/v1/frost/commit',
    z.strictObject({ session: sessionIdSchema, keyId: keyIdSchema, signers: z.array(z.number().int()).min(1), use: z.unknown().optional() }),
    z.object({ commitment: z.unknown() }),
  ),
  /** `package`: frost.ts `SigningPackage`, narrowed by the signer. */
  sign: route('/v1/frost/sign', z.strictObject({ session: sessionIdSchema, keyId: keyIdSchema, package: z.unknown() }), z.object({ share: z.unknown(), ...released })),
  /**
   * Fresh nonce pairs for the key, made ahead of any message and held only in the signer's
   * memory (signers/node/preprocessed.ts); only their public commitments leave, each under an id.
   */
  preprocess: route(
    '/v1/frost/preprocess',
    z.strictObject({ keyId: keyIdSchema, count: z.number().int().min(1).max(FROST_PREPROCESS_MAX) }),
    z.object({ nonces: z.array(z.object({ id: uuidSchema, commitment: z.unknown() })).max(FROST_PREPROCESS_MAX) }),
  ),
  /**
   * One round: signs `package` with the nonce pair `nonce` made by preprocess, which the signer
   * takes out first (whatever follows, it is never used again); `use` as in commit.
   */
  signPreprocessed: route(
    '/v1/frost/sign-preprocessed',
    z.strictObject({ session: sessionIdSchema, keyId: keyIdSchema, nonce: uuidSchema, package: z.unknown(), use: z.unknown().optional() }),
    z.object({ share: z.unknown(), ...released }),
  ),
};

// What DKLs23 signing (sign.ts) sends and keeps: the schema of each round's payload (sized per
// curve; one multiplication instance's part of rounds 1 and 2, and what it keeps, are shared with
// presign.ts), the signer's state by phase with its codec and consume(), which empties a used
// state in place, and the session-bound hashes every party computes alike: the session context, each
// VOLE's context, the round-1 commitment, the agreement digest and the round-2 view.
// checkDigest is the one digest rule, shared with the coordinator (combine.ts).

import { z } from 'zod';
import { ProtocolError, decodeState, encodeState, bytesSchema, messageSchema, secretBytesSchema } from '../common.js';
import { fromHex, hexSchema, partyIdSchema, toHex, type PartyId } from '../../../contract/bytes.js';
import { KAPPA } from './baseot.js';
import { ecdsaCurveNames, getCurve, tagged, wireLength, type EcdsaCurve, type EcdsaCurveName } from './curves.js';
import { colBytesFor, xiFor } from './rvole.js';

export const sessionSchema = messageSchema.shape.session;
const hexBytes = (n: number) => hexSchema.length(2 * n);
const digestSchema = hexSchema.min(2).max(128);

// ---------------------------------------------------------------------------------------------
// Messages. Schemas depend on the curve's sizes; each is built once per curve.

const perCurve = <T>(make: (c: EcdsaCurve) => T): ((c: EcdsaCurve) => T) => {
  const cache = new Map<EcdsaCurveName, T>();
  return (c) => {
    let v = cache.get(c.name);
    if (v === undefined) cache.set(c.name, (v = make(c)));
    return v;
  };
};

/** One multiplication instance's round-1 message to a peer (sign.ts sends one, presign.ts a batch). */
export const round1Item = perCurve((c) =>
  z.strictObject({
    commitment: hexBytes(32),
    // u (like round 2's ã) is public but large: raw bytes in the record encoding, not hex.
    ot: z.strictObject({ nonce: hexBytes(16), u: bytesSchema(KAPPA * colBytesFor(c)), check: hexBytes(32) }),
  }),
);

export const round1Payload = perCurve((c) =>
  z.strictObject({
    /** Digest of what the sender is running: key, session, signers and the digest it signs. */
    agreement: hexBytes(32),
    ...round1Item(c).shape,
  }),
);

/** One multiplication instance's round-2 message to a peer. */
export const round2Item = perCurve((c) =>
  z.strictObject({
    R: hexBytes(wireLength(c)),
    salt: hexBytes(32),
    pk: hexBytes(wireLength(c)),
    gammaU: hexBytes(wireLength(c)),
    gammaV: hexBytes(wireLength(c)),
    psi: hexBytes(c.scalarLength),
    mul: z.strictObject({ salt: hexBytes(16), atilde: bytesSchema(3 * xiFor(c) * c.scalarLength), eta: hexBytes(c.scalarLength), mu: hexBytes(32) }),
  }),
);

export const round2Payload = perCurve((c) => z.strictObject({ ...round2Item(c).shape, view: hexBytes(32) }));

export const round3Payload = perCurve((c) => z.strictObject({ u: hexBytes(c.scalarLength), w: hexBytes(c.scalarLength), R: hexBytes(wireLength(c)) }));

// ---------------------------------------------------------------------------------------------
// State.

/** What every signing or presigning state names: its curve, session, party, signers and key. */
export const sessionFields = {
  curve: z.enum(ecdsaCurveNames),
  session: sessionSchema,
  self: partyIdSchema,
  signers: z.array(partyIdSchema).min(1),
  /** Key-generation session and public key: bind every hash to this key. */
  keySession: sessionSchema,
  publicKey: hexSchema,
};

const common = {
  ...sessionFields,
  /** The digest this signer agreed to sign (its own input, checked against the others'). */
  digest: digestSchema,
  lowS: z.boolean(),
};

/** Bob's side of one VOLE: his input χ, his choice bits β and extension rows (all secret, as bytes). */
export const bobKeep = z.strictObject({ chi: secretBytesSchema(), beta: secretBytesSchema(), rows: secretBytesSchema() });

/** What one multiplication instance keeps after round 1 (sign-rounds.ts). */
export const keep1Schema = z.strictObject({
  /** Secrets: instance key r_i, inversion mask φ_i, additive key share sk_i, commitment salt. */
  r: secretBytesSchema(),
  phi: secretBytesSchema(),
  sk: secretBytesSchema(),
  salt: hexSchema,
  R: hexSchema,
  commitment: hexSchema,
  /** Per peer: our Bob-side VOLE state, and our Alice-side extension material. */
  bob: z.record(z.string(), bobKeep),
  alice: z.record(z.string(), z.strictObject({ delta: secretBytesSchema(), keys: secretBytesSchema() })),
});
export type Keep1 = z.infer<typeof keep1Schema>;

/** What one multiplication instance keeps after round 2. */
export const keep2Schema = z.strictObject({
  r: secretBytesSchema(),
  phi: secretBytesSchema(),
  sk: secretBytesSchema(),
  R: hexSchema,
  pk: hexSchema,
  /** Per peer: our Bob-side state, our Alice shares c^u, c^v, and the peer's commitment. */
  peers: z.record(z.string(), z.strictObject({ bob: bobKeep, cu: secretBytesSchema(), cv: secretBytesSchema(), commitment: hexSchema })),
});
export type Keep2 = z.infer<typeof keep2Schema>;

export const ecdsaSignStateSchema = z.discriminatedUnion('phase', [
  z.strictObject({ ...common, phase: z.literal('round1'), ...keep1Schema.shape }),
  z.strictObject({ ...common, phase: z.literal('round2'), ...keep2Schema.shape, view: hexSchema }),
  z.strictObject({ ...common, phase: z.literal('round3'), R: hexSchema, u: hexSchema, w: hexSchema }),
  z.strictObject({ phase: z.literal('consumed'), session: sessionSchema, self: partyIdSchema }),
]);
export type EcdsaSignState = z.infer<typeof ecdsaSignStateSchema>;
export type Live<P extends EcdsaSignState['phase']> = Extract<EcdsaSignState, { phase: P }>;

export const encodeEcdsaSignState = (s: EcdsaSignState): Uint8Array => encodeState(s);
export const decodeEcdsaSignState = (b: Uint8Array): EcdsaSignState => decodeState(b, ecdsaSignStateSchema);

/**
 * Turns a live state object into the consumed form in place, dropping every secret, so the same
 * object (or a reference to it) cannot drive a second step. Signers must persist the state a step
 * returns before releasing its outbound messages; a restored older copy would reuse nonces.
 */
export function consume(s: object): void {
  const o = s as Record<string, unknown>;
  for (const k of Object.keys(o)) if (k !== 'session' && k !== 'self') delete o[k];
  o.phase = 'consumed';
}

// ---------------------------------------------------------------------------------------------
// Contexts.

export interface Ctx {
  c: EcdsaCurve;
  session: Uint8Array;
}

export function sessionContext(s: { curve: EcdsaCurveName; keySession: string; publicKey: string; session: string; signers: readonly PartyId[] }): Ctx {
  const c = getCurve(s.curve);
  return { c, session: tagged('mpchsm/ecdsa/sign/session', s.curve, s.keySession, s.publicKey, s.session, s.signers.join(',')) };
}

/** Context of the VOLE in which `bob` is Bob and `alice` is Alice. */
export const pairContext = (x: Ctx, bob: PartyId, alice: PartyId): Uint8Array => tagged('mpchsm/ecdsa/sign/pair', x.session, bob, alice);

export const commit = (x: Ctx, id: PartyId, R: string, salt: string): string => toHex(tagged('mpchsm/ecdsa/sign/commit', x.session, id, fromHex(R), fromHex(salt)));

/**
 * What every signer must agree on before any secret-dependent check runs: were two honest signers
 * told different signer sets or digests, their OT-extension checks would fail and (wrongly) cost
 * them their pairwise setup. A mismatch is reported as 'inconsistent-view', which discards nothing.
 */
export const agreementOf = (x: Ctx, digest: string): string => toHex(tagged('mpchsm/ecdsa/sign/agree', x.session, fromHex(digest)));

export const viewOf = (x: Ctx, digest: string, signers: readonly PartyId[], commitments: ReadonlyMap<PartyId, string>): string =>
  toHex(tagged('mpchsm/ecdsa/sign/view', x.session, fromHex(digest), signers.map((id) => `${id}:${commitments.get(id)}`).join(',')));

/** A digest of 1 to 64 bytes (ECDSA truncates it to the order's bit length). */
export function checkDigest(digest: unknown): void {
  if (!(digest instanceof Uint8Array) || digest.length < 1 || digest.length > 64) throw new ProtocolError('bad-parameters', 'digest must be 1 to 64 bytes');
}

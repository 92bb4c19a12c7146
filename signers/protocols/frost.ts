// FROST threshold Schnorr signing (RFC 9591) over keys from dkg.ts.
//
//   participant round 1  frostCommit        → nonce commitment (D_i, E_i); nonces stay in the state
//                        (or frostPreprocess, ahead of any message: RFC 9591 lets commitments be
//                        made before the message is known; frostSignPreprocessed then signs once)
//   coordinator          frostSigningPackage → message + the chosen signers' commitments
//   participant round 2  frostSign          → signature share z_i; the state is consumed
//   coordinator          frostAggregate     → checks every z_i, sums, verifies, returns R || z
//
// The coordinator (the gateway) holds no secret. Suites: FROST(Ed25519, SHA-512) giving RFC 8032
// Ed25519 signatures, FROST(secp256k1, SHA-256), FROST(P-256, SHA-256), and an Ed25519ph variant
// whose message is a SHA-512 digest and whose signatures are RFC 8032 Ed25519ph (empty context).
//
// The arithmetic is written here over noble's group and field because noble's FROST requires
// t ≥ 2 and does not say which signer a malformed input came from; tests check this module
// against noble's FROST and the RFC 9591 vectors.

import { z } from 'zod';
import { concatBytes } from '@noble/curves/utils.js';
import {
  ProtocolError,
  checkParticipants,
  collectRound,
  decodeState,
  encodeState,
  messageSchema,
  secretBytesSchema,
  wipeSecrets,
  type Message,
  type Step,
} from './common.js';
import {
  fromHex,
  hexSchema,
  partyIdSchema,
  toHex,
  type PartyId,
  type Rng,
} from '../../contract/bytes.js';
import { memoized } from '../../contract/memo.js';
import { ed25519Verify } from '../../contract/identity/curve25519.js';
import { checkPublicPackage, keyShareSchema, lagrangeAt, openKeyShare, publicPackage, type DkgKeyShare, type PublicPackage } from './dkg.js';
import {
  decodePoint,
  decodeScalar,
  getSuite,
  idScalar,
  suiteNames,
  validEncoding,
  type Group,
  type Suite,
  type SuiteName,
} from './suites.js';

/** collectRound's `self` for the coordinator: it is not a party, and 0 is never a party id. */
const COORDINATOR = 0;
const sessionSchema = messageSchema.shape.session;
const hexBytes = (n: number) => hexSchema.length(2 * n);

const noncePair = z.strictObject({ hiding: hexSchema, binding: hexSchema });
/** Secret nonces, as scalar bytes (wiped once used). */
const secretNonces = z.strictObject({ hiding: secretBytesSchema(32), binding: secretBytesSchema(32) });
// Built once per group: a zod schema costs far more to build (and compile) than to run.
const commitmentPayload = memoized((g: Group) => z.strictObject({ hiding: hexBytes(g.pointLength), binding: hexBytes(g.pointLength) }), 8, (g) => g.name);
const sharePayload = memoized((g: Group) => z.strictObject({ share: hexBytes(g.scalarLength) }), 8, (g) => g.name);

export const signingPackageSchema = z.strictObject({
  session: sessionSchema,
  suite: z.enum(suiteNames),
  message: hexSchema,
  /** The signers' round-1 commitments, sorted by id. */
  commitments: z.array(z.strictObject({ id: partyIdSchema, hiding: hexSchema, binding: hexSchema })).min(1),
});
export type SigningPackage = z.infer<typeof signingPackageSchema>;

/**
 * A participant's signing state. While live it holds single-use nonces; frostSign turns it into
 * the consumed form in place. A signer MUST persist the consumed state (or delete the live one)
 * before releasing the share it got: a live copy restored later would sign a second challenge
 * with the same nonces and reveal the secret share.
 */
export const frostSignerStateSchema = z.discriminatedUnion('consumed', [
  z.strictObject({
    consumed: z.literal(false),
    session: sessionSchema,
    self: partyIdSchema,
    commitment: noncePair,
    /** Secret nonces (d_i, e_i). */
    nonces: secretNonces,
    key: keyShareSchema,
  }),
  z.strictObject({ consumed: z.literal(true), session: sessionSchema, self: partyIdSchema, commitment: noncePair }),
]);
export type FrostSignerState = z.infer<typeof frostSignerStateSchema>;
type LiveState = Extract<FrostSignerState, { consumed: false }>;

export const encodeFrostSignerState = (s: FrostSignerState): Uint8Array => encodeState(s);
export const decodeFrostSignerState = (b: Uint8Array): FrostSignerState => decodeState(b, frostSignerStateSchema);

/** A signer's commitment: the encodings of its two points, validated (decodePoint). */
interface Commitment {
  id: PartyId;
  D: Uint8Array;
  E: Uint8Array;
}

/** An operation on valid encodings whose result is the identity: a ProtocolError. */
function group<T>(what: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw new ProtocolError('invalid-point', `${what}: ${(e as Error).message}`);
  }
}

/**
 * RFC 9591 §4.3–4.6: binding factors, group commitment R, challenge, and Lagrange coefficients
 * for a commitment list (any order; it is sorted here as the RFC requires). PK and R as encodings.
 */
export function frostSigningContext(suite: Suite, PK: Uint8Array, commitments: readonly Commitment[], msg: Uint8Array) {
  const g = suite.group;
  const list = [...commitments].sort((a, b) => a.id - b.id);
  const encoded = concatBytes(...list.flatMap((c) => [g.Fn.toBytes(idScalar(c.id)), c.D, c.E]));
  const prefix = concatBytes(PK, suite.H4(msg), suite.H5(encoded));
  const bindingFactors = new Map<PartyId, bigint>(list.map((c) => [c.id, suite.H1(concatBytes(prefix, g.Fn.toBytes(idScalar(c.id))))]));
  const { add, mul } = g.encoded;
  const R = group('group commitment', () => list.map((c) => add(c.D, mul(c.E, bindingFactors.get(c.id)!))).reduce(add));
  const ids = list.map((c) => c.id);
  return { bindingFactors, R, challenge: suite.challenge(R, PK, msg), lambda: (id: PartyId) => lagrangeAt(g, ids, id) };
}

function checkSuite(suite: Suite, g: Group): void {
  if (suite.group.name !== g.name) throw new ProtocolError('bad-parameters', `suite ${suite.name} cannot sign with a ${g.name} key`);
}

interface ParsedPackage {
  pkg: SigningPackage;
  suite: Suite;
  commitments: Commitment[];
  msg: Uint8Array;
}

/**
 * The coordinator's own packages as it parsed them, so frostAggregate does not decode the same
 * points again (each decoding costs a subgroup check); kept with the package's JSON so a package
 * changed since is parsed afresh.
 */
const coordinatorPackages = new WeakMap<object, { json: string; parsed: ParsedPackage }>();

/**
 * Parses a signing package for a key in group `g`, decoding every point (naming its signer) but
 * the signer's own commitment, whose points it knows from its nonces.
 */
function parseSigningPackage(raw: unknown, g: Group, own?: Commitment): ParsedPackage {
  const r = signingPackageSchema.safeParse(raw);
  if (!r.success) throw new ProtocolError('malformed', `signing package: ${r.error.issues[0]?.path.join('.')} ${r.error.issues[0]?.message}`);
  const pkg = r.data;
  const suite = getSuite(pkg.suite);
  checkSuite(suite, g);
  const msg = fromHex(pkg.message);
  if (suite.messageLength !== undefined && msg.length !== suite.messageLength)
    throw new ProtocolError('bad-parameters', `${suite.name} signs a ${suite.messageLength}-byte digest, got ${msg.length} bytes`);
  checkParticipants(pkg.commitments.map((c) => c.id), 1);
  const commitments = pkg.commitments
    .map((c) => (c.id === own?.id ? own : { id: c.id, D: validEncoding(suite.group, c.hiding, c.id), E: validEncoding(suite.group, c.binding, c.id) }))
    .sort((a, b) => a.id - b.id);
  return { pkg, suite, commitments, msg };
}

/** Signers must be distinct participants of the key, at least t of them. */
function checkSigners(pub: PublicPackage, signers: readonly PartyId[]): void {
  checkParticipants(signers, 1);
  if (signers.length < pub.threshold) throw new ProtocolError('bad-parameters', `${signers.length} signers, but the threshold is ${pub.threshold}`);
  for (const id of signers) if (!pub.participants.includes(id)) throw new ProtocolError('unknown-sender', 'not a participant of this key', id);
}

/**
 * RFC 9591 §5.1's nonce generation: `count` fresh (hiding, binding) pairs, each nonce
 * H3(32 random bytes || SerializeScalar(s_i)) so a weak RNG alone does not expose them.
 */
function makeNonces(keyShare: DkgKeyShare, rng: Rng, count: number): { key: DkgKeyShare; pairs: FrostNonces[] } {
  const { key, group: g, secret } = openKeyShare(keyShare);
  const dst = new TextEncoder().encode(getSuite(g.name).contextString + 'nonce');
  const nonce = (): Uint8Array => {
    const m = concatBytes(rng(32), secret);
    const k = g.secret.hashToScalar(m, dst);
    m.fill(0);
    if (!g.secret.valid(k)) throw new ProtocolError('bad-parameters', 'nonce is zero: broken rng');
    return k;
  };
  const pairs = Array.from({ length: count }, (): FrostNonces => {
    const [d, e] = [nonce(), nonce()];
    return { self: key.self, commitment: { hiding: toHex(g.secret.mulBase(d)), binding: toHex(g.secret.mulBase(e)) }, nonces: { hiding: d, binding: e } };
  });
  return { key, pairs };
}

/** Participant round 1 (RFC 9591 §5.1): nonces for one session, kept in the state. */
export function frostCommit(keyShare: DkgKeyShare, session: string, rng: Rng): Step<FrostSignerState> {
  if (!sessionSchema.safeParse(session).success) throw new ProtocolError('bad-parameters', 'invalid session id');
  const { key, pairs } = makeNonces(keyShare, rng, 1);
  const { commitment, nonces } = pairs[0]!;
  return {
    state: { consumed: false, session, self: key.self, commitment, nonces, key: ownCopy(key) },
    outbound: [{ session, round: 1, from: key.self, to: 'all', payload: commitment }],
  };
}

/**
 * Secret nonces made ahead of any message (RFC 9591: "commitments can be made ahead of the
 * message"), with their public commitment; bound to no session and no copy of the key share,
 * so a signer holds them apart from its shares and signs with the share it holds then.
 */
export interface FrostNonces {
  self: PartyId;
  commitment: { hiding: string; binding: string };
  /** Secret scalar bytes, wiped by whoever holds them when they go unused. */
  nonces: { hiding: Uint8Array; binding: Uint8Array };
}

/** A state's own copy of the key share (its secret bytes fresh), which consuming the state wipes. */
const ownCopy = (k: DkgKeyShare): DkgKeyShare => ({ ...k, secretShare: Uint8Array.from(k.secretShare) });

/** `count` nonce pairs ahead of the message, each to be used by frostSignPreprocessed at most once. */
export function frostPreprocess(keyShare: DkgKeyShare, rng: Rng, count: number): FrostNonces[] {
  return makeNonces(keyShare, rng, count).pairs;
}

/**
 * Participant round 2 with nonces made ahead: frostSign over a live state made of them for the
 * package's session. The caller MUST have removed `ahead` from wherever it was held before
 * calling (signers/node/frost.ts takes it out of its table first), so it signs one package only.
 */
export function frostSignPreprocessed(ahead: FrostNonces, keyShare: DkgKeyShare, signingPackage: SigningPackage): Step<FrostSignerState> {
  const state: FrostSignerState = { consumed: false, session: signingPackage.session, self: ahead.self, commitment: { ...ahead.commitment }, nonces: { hiding: Uint8Array.from(ahead.nonces.hiding), binding: Uint8Array.from(ahead.nonces.binding) }, key: ownCopy(keyShare) };
  return frostSign(state, signingPackage);
}

/**
 * Coordinator: builds the signing package from the commitments of the chosen `signers`
 * (at least t participants), each validated and attributed to its sender.
 */
export function frostSigningPackage(
  pub: PublicPackage,
  request: { session: string; suite: SuiteName; message: Uint8Array },
  signers: readonly PartyId[],
  commitments: readonly Message[],
): SigningPackage {
  const { pub: p, group: g } = checkPublicPackage(pub);
  if (!sessionSchema.safeParse(request.session).success) throw new ProtocolError('bad-parameters', 'invalid session id');
  if (!(suiteNames as readonly string[]).includes(request.suite)) throw new ProtocolError('bad-parameters', `unknown suite ${request.suite}`);
  checkSuite(getSuite(request.suite), g);
  checkSigners(p, signers);
  const got = collectRound(commitments, { session: request.session, round: 1, self: COORDINATOR, senders: signers, broadcast: true, payload: commitmentPayload(g) });
  const pkg: SigningPackage = {
    session: request.session,
    suite: request.suite,
    message: toHex(request.message),
    commitments: [...got].sort(([a], [b]) => a - b).map(([id, c]) => ({ id, ...c })),
  };
  // Decodes every point (naming its sender) and checks the message size.
  coordinatorPackages.set(pkg, { json: JSON.stringify(pkg), parsed: parseSigningPackage(pkg, g) });
  return pkg;
}

/**
 * Participant round 2 (RFC 9591 §5.2). Checks the package (session, suite, signer set, own
 * commitment unchanged), then consumes the state in place — a second call with it throws
 * 'consumed' — and returns the consumed state with the signature-share message. Persist the
 * returned state before sending the share.
 */
export function frostSign(state: FrostSignerState, signingPackage: SigningPackage): Step<FrostSignerState> {
  if (state.consumed) throw new ProtocolError('consumed', 'signing nonces were already used');
  const { key, group: g, secret } = openKeyShare(state.key);
  if (key.self !== state.self) throw new ProtocolError('malformed', 'signer state and key share disagree on the signer');
  const { hiding: d, binding: e } = state.nonces;
  if (!g.secret.valid(d) || !g.secret.valid(e)) throw new ProtocolError('scalar-range', 'signing nonces are not non-zero scalars');
  // Its own commitment is the one it made (checked below), so it needs no decoding.
  const { pkg, suite, commitments, msg } = parseSigningPackage(signingPackage, g, { id: state.self, D: fromHex(state.commitment.hiding), E: fromHex(state.commitment.binding) });
  if (pkg.session !== state.session) throw new ProtocolError('wrong-session', `signing package for session ${pkg.session}`);
  checkSigners(publicPackage(key), commitments.map((c) => c.id));
  const own = pkg.commitments.find((c) => c.id === state.self);
  if (!own) throw new ProtocolError('bad-parameters', `signer ${state.self} is not among the signers`);
  if (own.hiding !== state.commitment.hiding || own.binding !== state.commitment.binding)
    throw new ProtocolError('bad-parameters', `signing package alters signer ${state.self}'s commitment`);
  const keyShare = state.key;
  const consumed = consume(state);
  try {
    const ctx = frostSigningContext(suite, fromHex(key.groupPublicKey), commitments, msg);
    // z_i = d_i + e_i·ρ_i + s_i·(λ_i·c): secrets as bytes, their public factors as scalars.
    const share = g.secret.combine(d, [
      [e, ctx.bindingFactors.get(state.self)!],
      [secret, g.Fn.mul(ctx.lambda(state.self), ctx.challenge)],
    ]);
    return {
      state: consumed,
      outbound: [{ session: pkg.session, round: 2, from: state.self, to: 'all', payload: { share: toHex(share) } }],
    };
  } finally {
    // The nonces and the state's copy of the share end here, whatever the outcome.
    wipeSecrets([d, e, keyShare]);
  }
}

/** Drops the nonces and key from a live state object in place, so the object cannot sign again. */
function consume(s: LiveState): FrostSignerState {
  const o: { consumed: boolean; nonces?: unknown; key?: unknown } = s;
  delete o.nonces;
  delete o.key;
  o.consumed = true;
  return s as FrostSignerState;
}

/**
 * Coordinator (RFC 9591 §5.3–5.4): sums the signature shares and verifies the result against the
 * group key; only when it does not verify are the shares checked one by one against their
 * senders' verifying shares, to name the bad one (RFC 9591 §5.4 allows either order).
 * Returns SerializeElement(R) || SerializeScalar(z).
 */
export function frostAggregate(pub: PublicPackage, signingPackage: SigningPackage, shares: readonly Message[]): Uint8Array {
  const { pub: p, group: g } = checkPublicPackage(pub);
  const mine = coordinatorPackages.get(signingPackage);
  const { pkg, suite, commitments, msg } = mine?.json === JSON.stringify(signingPackage) ? mine.parsed : parseSigningPackage(signingPackage, g);
  const ids = commitments.map((c) => c.id);
  checkSigners(p, ids);
  const got = collectRound(shares, { session: pkg.session, round: 2, self: COORDINATOR, senders: ids, broadcast: true, payload: sharePayload(g) });
  const PK = fromHex(p.groupPublicKey);
  const ctx = frostSigningContext(suite, PK, commitments, msg);
  const { Fn } = g;
  const { mulBase, mul, add } = g.encoded;
  const z = new Map(commitments.map((c) => [c.id, decodeScalar(g, got.get(c.id)!.share, c.id)]));
  const sum = [...z.values()].reduce((a, b) => Fn.add(a, b), Fn.ZERO);
  // z·G = R + c·PK (strict, cofactorless), with R as computed from the commitments.
  const holds = (zi: bigint, rhs: () => Uint8Array): boolean => {
    try {
      return Buffer.from(mulBase(zi)).equals(rhs());
    } catch {
      return false; // a zero z or an identity sum: not a valid share
    }
  };
  const signature = concatBytes(ctx.R, Fn.toBytes(sum));
  // Plain Ed25519 is RFC 8032's signature, which OpenSSL checks in one call for less than this
  // check's three libsodium ones (each decoding and subgroup-checking its points).
  if (suite.name === 'ed25519' ? ed25519Verify(signature, msg, PK) : holds(sum, () => add(ctx.R, mul(PK, ctx.challenge)))) return signature;
  for (const c of commitments) {
    const Y = fromHex(p.verifyingShares[String(c.id)]!);
    if (!holds(z.get(c.id)!, () => add(add(c.D, mul(c.E, ctx.bindingFactors.get(c.id)!)), mul(Y, Fn.mul(ctx.challenge, ctx.lambda(c.id))))))
      throw new ProtocolError('bad-partial', 'signature share does not verify', c.id);
  }
  throw new ProtocolError('bad-partial', 'aggregate signature does not verify');
}

/** Verifies a suite signature R || z: z·G = R + c·PK (strict, cofactorless). */
export function frostVerify(suiteName: SuiteName, publicKey: Uint8Array, msg: Uint8Array, sig: Uint8Array): boolean {
  const suite = getSuite(suiteName);
  const g = suite.group;
  if (sig.length !== g.pointLength + g.scalarLength) return false;
  if (suite.messageLength !== undefined && msg.length !== suite.messageLength) return false;
  try {
    const PK = decodePoint(g, toHex(publicKey));
    const R = decodePoint(g, toHex(sig.subarray(0, g.pointLength)));
    const z = decodeScalar(g, toHex(sig.subarray(g.pointLength)));
    return g.Point.BASE.multiplyUnsafe(z).equals(R.add(PK.multiplyUnsafe(suite.challenge(R.toBytes(), PK.toBytes(), msg))));
  } catch (e) {
    if (e instanceof ProtocolError) return false;
    throw e;
  }
}

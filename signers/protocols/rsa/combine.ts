// Coordinator side (the gateway; it holds no secret): build the request, combine t partials with
// Shoup's Δ-scaled Lagrange coefficients, check y^e ≡ x mod n, and only then release a signature
// or decode a plaintext. Combination is optimistic: the partials' proofs of correctness are
// checked only when the result does not verify, to name the bad signer and combine t others
// (a proof costs the coordinator several exponentiations; y^e with e = 65537 costs 17 squarings).
//
//   w = Π x_j^{2λ_j} = x^{4Δ²M·d},  λ_j = Δ·Π_{j'≠j} j'/(j'−j) ∈ Z,  M the key's multiplier
//   a·4Δ²M + b·e = 1  ⇒  y = w^a·x^b satisfies y^e = x.

import { messageSchema, ProtocolError } from '../common.js';
import { fromHex, toHex, type PartyId, type Rng } from '../../../contract/bytes.js';
import { egcd, modInverse } from './arith.js';
import { bigIntToBytes, bytesToBigInt } from '../integers.js';
import { delta, modulusBytes, type RsaPublicParams } from './key.js';
import { modPow } from './modpow.js';
import { oaepDecode, pkcs1v15Decode } from './padding.js';
import { RSA_PARTIAL_ROUND, rsaPartialPayloadSchema } from './partial.js';
import { verifyEqualLogs } from './proof.js';
import {
  encodeRepresentative,
  parseRequest,
  requestInput,
  type DecryptPadding,
  type RsaDecryptRequest,
  type RsaRequest,
  type RsaSignRequest,
  type SignScheme,
} from './request.js';

export interface RsaCombineResult {
  /** The signature (k bytes) or the decoded plaintext. */
  output: Uint8Array;
  /** The t signers whose partials were combined. */
  signers: PartyId[];
  /** Every rejected message, each naming its sender where there is one. */
  faults: ProtocolError[];
}

/** Builds a signing request; the representative is encoded here (PSS salt from the Rng). */
export function rsaSignRequest(
  params: RsaPublicParams,
  req: { session: string; scheme: SignScheme; hash: RsaSignRequest['hash']; digest: Uint8Array },
  rng: Rng,
): RsaSignRequest {
  const em = encodeRepresentative(params, req.scheme, req.hash, req.digest, rng);
  const out = parseRequest({ ...req, op: 'sign', digest: toHex(req.digest), representative: toHex(em) }) as RsaSignRequest;
  requestInput(params, out);
  return out;
}

/** Builds a decryption request; rejects ciphertexts that are not k bytes or not reduced mod n. */
export function rsaDecryptRequest(
  params: RsaPublicParams,
  req: { session: string; padding: DecryptPadding; ciphertext: Uint8Array; label?: Uint8Array },
): RsaDecryptRequest {
  const out = parseRequest({
    session: req.session,
    op: 'decrypt',
    padding: req.padding,
    ciphertext: toHex(req.ciphertext),
    ...(req.label && req.label.length > 0 ? { label: toHex(req.label) } : {}),
  }) as RsaDecryptRequest;
  requestInput(params, out);
  return out;
}

interface Partial {
  from: PartyId;
  xi: bigint;
  proof: { c: bigint; z: bigint } | undefined;
}

/**
 * Reads one partial message for a session: envelope, payload shape and range, but not the proof.
 * Returns it or throws a ProtocolError naming the sender.
 */
function readPartial(params: RsaPublicParams, session: string, message: unknown): Partial {
  const env = messageSchema.safeParse(message);
  if (!env.success) {
    const from = (message as { from?: unknown } | null)?.from;
    throw new ProtocolError('malformed', 'malformed partial envelope', typeof from === 'number' ? from : undefined);
  }
  const m = env.data;
  if (m.session !== session) throw new ProtocolError('wrong-session', `partial for session ${m.session}`, m.from);
  if (m.round !== RSA_PARTIAL_ROUND) throw new ProtocolError('wrong-round', `partial for round ${m.round}`, m.from);
  if (m.to !== 'all') throw new ProtocolError('wrong-recipient', `partial addressed to ${m.to}`, m.from);
  if (!params.verificationKeys.has(m.from)) throw new ProtocolError('unknown-sender', 'sender is not a participant', m.from);
  const body = rsaPartialPayloadSchema.safeParse(m.payload);
  if (!body.success) throw new ProtocolError('malformed', `partial payload: ${body.error.issues[0]?.path.join('.')} ${body.error.issues[0]?.message}`, m.from);
  const xiBytes = fromHex(body.data.xi);
  const xi = bytesToBigInt(xiBytes);
  if (xiBytes.length !== modulusBytes(params) || xi === 0n || xi >= params.n)
    throw new ProtocolError('bad-partial', 'partial is not an element mod n', m.from);
  const { c, z } = body.data;
  if ((c === undefined) !== (z === undefined)) throw new ProtocolError('malformed', 'partial payload: half a proof', m.from);
  return { from: m.from, xi, proof: c === undefined || z === undefined ? undefined : { c: bytesToBigInt(fromHex(c)), z: bytesToBigInt(fromHex(z)) } };
}

/** Throws a ProtocolError naming the sender unless its proof shows x_i = x^{2Δ·s_i}. */
function checkProof(params: RsaPublicParams, session: string, x: bigint, p: Partial & { proof: NonNullable<Partial['proof']> }): void {
  const { n, v } = params;
  const g = modPow(x, 4n * delta(params), n);
  if (!verifyEqualLogs({ session, id: p.from, x }, { n, v, vi: params.verificationKeys.get(p.from)!, g, u: (p.xi * p.xi) % n }, p.proof, params.shareBits))
    throw new ProtocolError('bad-partial', 'proof of correctness does not verify', p.from);
}

/** Δ·Π_{j'∈S, j'≠j} j'/(j'−j): an integer, as Π|j'−j| divides (j−1)!(L−j)!, which divides Δ = L!. */
export function lagrangeAtZero(ids: readonly PartyId[], j: PartyId, d: bigint): bigint {
  let num = d;
  let den = 1n;
  for (const jp of ids) {
    if (jp === j) continue;
    num *= BigInt(jp);
    den *= BigInt(jp - j);
  }
  if (num % den !== 0n) throw new ProtocolError('bad-parameters', 'identifiers exceed Δ');
  return num / den;
}

/** b^e mod n for a unit b and any integer e (a negative one through b⁻¹). */
export const powSigned = (b: bigint, e: bigint, n: bigint): bigint => (e < 0n ? modPow(modInverse(b, n), -e, n) : modPow(b, e, n));

/**
 * Combines partials {j: x_j} on input x into y with y^e = x — if the partials are correct and
 * there are at least t of them. Does not check the result; rsaCombine does.
 *
 * y = w^a·x^b = x^b·Π x_j^{2λ_j·a}: every exponent is small and public, so the factors with a
 * negative one go into one denominator, and y costs one modular inverse (a JS extended Euclid,
 * the costliest step here) instead of one per negative exponent.
 */
export function combinePartials(params: RsaPublicParams, x: bigint, partials: ReadonlyMap<PartyId, bigint>): bigint {
  const { n, e } = params;
  const d = delta(params);
  const [g, a, b] = egcd(4n * d * d * params.multiplier, e);
  if (g !== 1n) throw new ProtocolError('bad-parameters', 'gcd(4Δ²M, e) ≠ 1');
  const ids = [...partials.keys()];
  const factors: [bigint, bigint][] = [[x, b], ...[...partials].map(([j, xj]): [bigint, bigint] => [xj, 2n * lagrangeAtZero(ids, j, d) * a])];
  let num = 1n;
  let den = 1n;
  for (const [base, exp] of factors) {
    if (exp > 0n) num = (num * modPow(base, exp, n)) % n;
    else if (exp < 0n) den = (den * modPow(base, -exp, n)) % n;
  }
  return den === 1n ? num : (num * modInverse(den, n)) % n;
}

/**
 * Combines the t well-formed partials in `messages` with the lowest identifiers and checks
 * y^e ≡ x mod n; when that fails, checks every partial's proof, drops the bad ones and combines
 * t valid ones. Returns the signature or decoded plaintext. Rejected messages are returned as
 * faults; with fewer than t valid partials the first fault is thrown (naming its sender), or
 * 'missing' if there is none. Decoding failures throw DecodeError.
 */
export function rsaCombine(params: RsaPublicParams, request: RsaRequest, messages: readonly unknown[]): RsaCombineResult {
  const req = parseRequest(request);
  const x = requestInput(params, req);
  const faults: ProtocolError[] = [];
  const keep = (check: () => void): boolean => {
    try {
      check();
      return true;
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      faults.push(err);
      return false;
    }
  };
  const seen = new Set<PartyId>();
  let candidates: Partial[] = [];
  for (const m of messages) {
    keep(() => {
      const from = (m as { from?: unknown } | null)?.from;
      if (typeof from === 'number' && seen.has(from)) throw new ProtocolError('duplicate', 'second partial', from);
      if (typeof from === 'number') seen.add(from);
      candidates.push(readPartial(params, req.session, m));
    });
  }
  const combineLowest = (): { y: bigint; signers: PartyId[] } => {
    if (candidates.length < params.threshold) throw faults[0] ?? new ProtocolError('missing', `${candidates.length} valid partials, ${params.threshold} needed`);
    const chosen = [...candidates].sort((a, b) => a.from - b.from).slice(0, params.threshold);
    return { y: combinePartials(params, x, new Map(chosen.map((p) => [p.from, p.xi] as const))), signers: chosen.map((p) => p.from) };
  };
  let { y, signers } = combineLowest();
  if (modPow(y, params.e, params.n) !== x) {
    // No one is at fault yet: the caller asks the same signers for their proofs.
    if (candidates.some((p) => !p.proof)) throw new ProtocolError('unproven', "the combination failed: the partials' proofs are needed to tell which is bad");
    candidates = candidates.filter((p) => keep(() => checkProof(params, req.session, x, { ...p, proof: p.proof! })));
    ({ y, signers } = combineLowest());
    if (modPow(y, params.e, params.n) !== x) throw new ProtocolError('bad-partial', 'combined result does not verify');
  }

  const k = modulusBytes(params);
  const em = bigIntToBytes(y, k);
  if (req.op === 'sign') return { output: em, signers, faults };
  try {
    const label = fromHex(req.label ?? '');
    const output = req.padding === 'pkcs1v15' ? pkcs1v15Decode(em) : oaepDecode(em, req.padding === 'oaep-sha1' ? 'sha1' : 'sha256', label);
    return { output, signers, faults };
  } finally {
    em.fill(0);
  }
}

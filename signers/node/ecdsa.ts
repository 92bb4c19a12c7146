// A signer's threshold-ECDSA (DKLs23) sessions: key generation with the pairwise OT setup,
// three-round signing, and presigning: a batch whose presignatures wait in memory only
// (preprocessed.ts: never on disk, so no crash or restored store brings one back) until a
// one-round sign takes one out. Every round's messages travel through the relay's envelopes; a
// session that aborts is gone, and an abort a peer caused discards that pair's setup for good.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { z } from 'zod';
import { ProtocolError, usingSecrets } from '../protocols/common.js';
import {
  ecdsaAfterAbort,
  ecdsaCurveNames,
  ecdsaKeygenStart,
  ecdsaKeygenStep,
  ecdsaPresignedShare,
  ecdsaPresignStart,
  ecdsaPresignStep,
  ecdsaPublicPackage,
  ecdsaSignStart,
  ecdsaSignStep,
  type EcdsaKeyShare,
  type EcdsaKeygenState,
  type EcdsaPresignature,
  type EcdsaPresignState,
  type EcdsaSignState,
} from '../protocols/ecdsa/index.js';
import { Preprocessed } from './preprocessed.js';
import type { Released } from '../../contract/signer-rpc/released.js';
import type { SignerConfig } from './config.js';
import { EnvelopeError } from '../../contract/identity/envelope.js';
import { decodeOnce, decodeShareRecord, encodeShareRecord } from './key-records.js';
import { wipeSecrets } from '../protocols/common.js';
import { keyRecordName, type Relay } from './relay.js';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';
import { PRESIGNATURE_TTL_MS } from '../../contract/signer-rpc/ecdsa.js';
import { runStep, sealStep, SessionTable } from './sessions.js';
import { RpcError, type Answer } from './rpc.js';
import type { ShareStore } from '../../contract/io/sealed-store.js';

const ROUND_OF: Record<string, number> = { round1: 1, round2: 2, round3: 3 };

type Session =
  | { kind: 'keygen'; keyId: string; state: EcdsaKeygenState }
  | { kind: 'sign'; keyId: string; state: EcdsaSignState }
  | { kind: 'presign'; keyId: string; state: EcdsaPresignState };

const { keygen, sign, presign } = signerRoutes.ecdsa;

/** Presignatures held at once, over every key (a few hundred bytes each). */
const PRESIGNATURES_HELD = 4096;

/**
 * Authorises a presigned sign for the digest it carries (the guard: ecdsa-routes.ts); answers
 * the release, which consumes what the request spends and returns its audit record.
 */
export type AuthorizePresigned = (digestHex: string) => Promise<() => Promise<Omit<Released, 'output' | 'keyId'>>>;
// `creation` and `use` reach these routes only through the guard (guard.ts guardEcdsaRoutes), which takes them off.
const keygenStartRequest = keygen.start.request.extend({ curve: z.enum(ecdsaCurveNames) });
/** A presigned sign as this class takes it: the guard has taken the `use` it authorised. */
const presignedSignSchema = sign.presigned.request.omit({ use: true });

export class EcdsaSessions {
  private readonly sessions = new SessionTable<Session>();
  private readonly presignatures = new Preprocessed<{ keyId: string; presignature: EcdsaPresignature }>(PRESIGNATURES_HELD, PRESIGNATURE_TTL_MS);

  constructor(
    private readonly config: SignerConfig,
    private readonly store: ShareStore,
    private readonly relay: Relay,
    private readonly log: Logger,
  ) {}

  routes(onKeyStored: (keyId: string) => void) {
    return {
      [keygen.start.path]: (b: unknown) => this.keygenStart(b),
      [keygen.step.path]: async (b: unknown) => {
        const r = await this.keygenStep(b);
        if (r.released?.keyId) onKeyStored(r.released.keyId);
        return r;
      },
      [sign.start.path]: (b: unknown) => this.signStart(b),
      [sign.step.path]: (b: unknown) => this.signStep(b),
      [sign.presigned.path]: (b: unknown, authorize?: AuthorizePresigned) => this.signPresigned(b, authorize),
      [presign.start.path]: (b: unknown) => this.presignStart(b),
      [presign.step.path]: (b: unknown) => this.presignStep(b),
    };
  }

  /** Forgets the presignatures of a key (destroyed) or with a signer (removed). */
  dropPresignatures(matches: (p: { keyId: string; signers: readonly number[] }) => boolean): void {
    this.presignatures.drop((v) => matches({ keyId: v.keyId, signers: v.presignature.signers }));
  }

  /** Takes a session out for one step: whatever happens, its old state is never used again. */
  private take<K extends Session['kind']>(session: string, kind: K): Extract<Session, { kind: K }> {
    const s = this.sessions.take(session);
    if (!s || s.kind !== kind) throw new RpcError(404, 'no-session', `no ECDSA ${kind} session ${session}`);
    return s as Extract<Session, { kind: K }>;
  }

  private async keygenStart(body: unknown): Promise<Answer<typeof keygen.start>> {
    const req = keygenStartRequest.parse(body);
    this.relay.checkKeygenParticipants(req.participants, req.threshold);
    if (await this.store.has(keyRecordName(req.keyId))) throw new RpcError(409, 'key-exists', `key ${req.keyId} already exists here`);
    const step = abortable(req.session, () => ecdsaKeygenStart({ curve: req.curve, session: req.session, self: this.config.id, participants: req.participants, threshold: req.threshold }, randomBytes));
    this.sessions.begin(req.session, { kind: 'keygen', keyId: req.keyId, state: step.state });
    return { outbound: sealStep(this.relay, `ecdsa-keygen:${req.keyId}`, step) };
  }

  private async keygenStep(body: unknown): Promise<Answer<typeof keygen.step>> {
    const req = keygen.step.request.parse(body);
    const s = this.take(req.session, 'keygen');
    const purpose = `ecdsa-keygen:${s.keyId}`;
    return runStep(s.state, async ({ spend, keep }) => {
      const step = abortable(req.session, () => ecdsaKeygenStep(s.state, spend(this.relay.open(purpose, req.session, ROUND_OF[s.state.phase] ?? 0, req.inbound)), randomBytes));
      if (!step.output) {
        this.sessions.put(req.session, { ...s, state: keep(step.state) });
        return { outbound: sealStep(this.relay, purpose, step) };
      }
      await this.saveKey(s.keyId, spend(step.output));
      this.log.info({ keyId: s.keyId, session: req.session }, 'ECDSA key share stored');
      return { outbound: [], publicPackage: ecdsaPublicPackage(step.output), released: { output: 'key' as const, keyId: s.keyId } };
    });
  }

  private async signStart(body: unknown): Promise<Answer<typeof sign.start>> {
    const req = sign.start.request.parse(body);
    this.relay.checkActive(req.signers);
    const key = await this.loadKey(req.keyId);
    // The state keeps copies of what later rounds need; the share itself ends with this round.
    const step = usingSecrets(key, () => abortable(req.session, () => ecdsaSignStart(key, { session: req.session, signers: req.signers, digest: Buffer.from(req.digest, 'hex'), lowS: req.lowS ?? false }, randomBytes)));
    this.sessions.begin(req.session, { kind: 'sign', keyId: req.keyId, state: step.state });
    return { outbound: this.relay.seal(`ecdsa-sign:${req.keyId}`, step.outbound) };
  }

  private async signStep(body: unknown): Promise<Answer<typeof sign.step>> {
    const req = sign.step.request.parse(body);
    const s = this.take(req.session, 'sign');
    // The consumed state's secrets (r_i, φ_i, sk_i, the VOLE secrets) end with the step, but what the next one carries.
    return runStep(s.state, async ({ keep }) => {
      const step = await this.afterAbort(s.keyId, req.session, () => ecdsaSignStep(s.state, this.relay.open(`ecdsa-sign:${s.keyId}`, req.session, ROUND_OF[s.state.phase] ?? 0, req.inbound), randomBytes));
      const round3 = step.outbound.some((m) => m.round === 3);
      if (!round3) this.sessions.put(req.session, { ...s, state: keep(step.state) });
      const outbound = this.relay.seal(`ecdsa-sign:${s.keyId}`, step.outbound);
      // Round 3 carries this signer's share of the signature: that is the release.
      return round3 ? { outbound, released: { output: 'partial' as const, keyId: s.keyId, algorithm: 'ecdsa-dkls23' } } : { outbound };
    });
  }

  /** A step of a session with peers: a peer that cheated loses its pairwise setup with us, persisted before we answer. */
  private async afterAbort<T>(keyId: string, session: string, step: () => T): Promise<T> {
    try {
      return step();
    } catch (e) {
      if (e instanceof ProtocolError) {
        const key = await this.loadKey(keyId);
        try {
          const after = ecdsaAfterAbort(key, e); // the same object when nothing is discarded
          if (after !== key) await this.saveKey(keyId, after);
        } finally {
          wipeSecrets(key);
        }
      }
      throw asRefusal(session, e);
    }
  }

  /** A batch of presignatures for a key and a signer set: room for it is checked before any work. */
  private async presignStart(body: unknown): Promise<Answer<typeof presign.start>> {
    const req = presign.start.request.parse(body);
    this.relay.checkActive(req.signers);
    this.presignatures.checkRoom(req.count);
    const key = await this.loadKey(req.keyId);
    const step = usingSecrets(key, () => abortable(req.session, () => ecdsaPresignStart(key, { session: req.session, signers: req.signers, count: req.count }, randomBytes)));
    this.sessions.begin(req.session, { kind: 'presign', keyId: req.keyId, state: step.state });
    return { outbound: this.relay.seal(`ecdsa-presign:${req.keyId}`, step.outbound) };
  }

  private async presignStep(body: unknown): Promise<Answer<typeof presign.step>> {
    const req = presign.step.request.parse(body);
    const s = this.take(req.session, 'presign');
    return runStep(s.state, async ({ keep }) => {
      const step = await this.afterAbort(s.keyId, req.session, () => ecdsaPresignStep(s.state, this.relay.open(`ecdsa-presign:${s.keyId}`, req.session, ROUND_OF[s.state.phase] ?? 0, req.inbound), randomBytes));
      if (!step.output) {
        this.sessions.put(req.session, { ...s, state: keep(step.state) });
        return { outbound: this.relay.seal(`ecdsa-presign:${s.keyId}`, step.outbound) };
      }
      const made = keep(step.output);
      this.presignatures.add(made.map((p) => [p.id, { keyId: s.keyId, presignature: p }] as const));
      return { outbound: [], presignatures: made.map((p) => ({ id: p.id, R: p.R })) };
    });
  }

  /**
   * One round with a presignature: taken out first, so that whatever follows (a refusal, a
   * crash) it is never used again; then checked for this key, its current shares and exactly
   * these signers, the use authorised for this digest, the share computed and released.
   */
  private async signPresigned(body: unknown, authorize?: AuthorizePresigned): Promise<Answer<typeof sign.presigned>> {
    const req = presignedSignSchema.parse(body);
    const taken = this.presignatures.take(req.presignature);
    try {
      return await this.signWithPresignature(req, taken, authorize);
    } finally {
      wipeSecrets(taken.presignature); // taken out: used or not, never again
    }
  }

  private async signWithPresignature(
    req: z.infer<typeof presignedSignSchema>,
    { keyId, presignature: p }: { keyId: string; presignature: EcdsaPresignature },
    authorize?: AuthorizePresigned,
  ): Promise<Answer<typeof sign.presigned>> {
    if (keyId !== req.keyId) throw new RpcError(409, 'bad-request', `presignature ${req.presignature} is not for key ${req.keyId}`);
    const signers = [...req.signers].sort((a, b) => a - b);
    if (signers.join(',') !== p.signers.join(',')) throw new RpcError(409, 'wrong-participants', `presignature ${req.presignature} is for signers ${p.signers.join(', ')}`);
    this.relay.checkActive(signers);
    // A presignature made before the key was reshared is not used with its new shares.
    const keySession = usingSecrets(await this.loadKey(keyId), (key) => key.session);
    if (keySession !== p.keySession) throw new RpcError(409, 'not-preprocessed', `presignature ${req.presignature} predates the key's current shares`);
    if (typeof authorize !== 'function') throw new RpcError(403, 'access-denied', 'a presigned signature needs the guard');
    const release = await authorize(req.digest);
    const share = abortable(req.session, () => ecdsaPresignedShare(p, { session: req.session, digest: Buffer.from(req.digest, 'hex') }));
    const outbound = this.relay.seal(`ecdsa-sign:${keyId}`, [share]);
    return { outbound, released: { output: 'partial', keyId, algorithm: 'ecdsa-dkls23-presigned', ...(await release()) } };
  }

  /** A share read for one operation alone: `use`, then its secrets are wiped. */
  private async loadKey(keyId: string): Promise<EcdsaKeyShare> {
    const raw = await this.store.get(keyRecordName(keyId));
    if (!raw) throw new RpcError(404, 'no-key', `this signer holds no share of key ${keyId}`);
    return decodeOnce(raw, (r) => decodeShareRecord(r, 'ecdsa').share);
  }

  private async saveKey(keyId: string, key: EcdsaKeyShare): Promise<void> {
    await this.store.put(keyRecordName(keyId), encodeShareRecord(key));
  }
}

/** Runs a protocol step; its aborts reach the gateway as refusals naming the party at fault. */
export function abortable<T>(session: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw asRefusal(session, e);
  }
}

/** Protocol aborts reach the gateway as a refusal naming the party at fault. */
function asRefusal(session: string, e: unknown): unknown {
  if (e instanceof ProtocolError || e instanceof EnvelopeError)
    return new RpcError(409, 'protocol-abort', JSON.stringify({ session, code: e.code, sender: e.sender, message: e.message }));
  return e;
}

// A signer's threshold-ECDSA (DKLs23) sessions: key generation with the pairwise OT setup, and
// three-round signing. Every round's messages travel through the relay's envelopes; a session
// that aborts is gone, and an abort a peer caused discards that pair's setup for good.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { z } from 'zod';
import { ProtocolError } from '../protocols/common.js';
import {
  ecdsaAfterAbort,
  ecdsaCurveNames,
  ecdsaKeygenStart,
  ecdsaKeygenStep,
  ecdsaPublicPackage,
  ecdsaSignStart,
  ecdsaSignStep,
  type EcdsaKeyShare,
  type EcdsaKeygenState,
  type EcdsaSignState,
} from '../protocols/ecdsa/index.js';
import type { SignerConfig } from './config.js';
import { EnvelopeError } from '../../contract/identity/envelope.js';
import { decodeShareRecord, encodeShareRecord } from './key-records.js';
import { keyRecordName, type Relay } from './relay.js';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';
import { SessionTable } from './sessions.js';
import { RpcError, type Answer } from './rpc.js';
import type { ShareStore } from '../../contract/io/sealed-store.js';

const ROUND_OF: Record<string, number> = { round1: 1, round2: 2, round3: 3 };

type Session =
  | { kind: 'keygen'; keyId: string; state: EcdsaKeygenState }
  | { kind: 'sign'; keyId: string; state: EcdsaSignState };

const { keygen, sign } = signerRoutes.ecdsa;
// `creation` and `use` reach these routes only through the guard (guard.ts guardEcdsaRoutes), which takes them off.
const keygenStartRequest = keygen.start.request.extend({ curve: z.enum(ecdsaCurveNames) });

export class EcdsaSessions {
  private readonly sessions = new SessionTable<Session>();

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
        if (r.released) onKeyStored(r.released.keyId);
        return r;
      },
      [sign.start.path]: (b: unknown) => this.signStart(b),
      [sign.step.path]: (b: unknown) => this.signStep(b),
    };
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
    return { outbound: this.relay.seal(`ecdsa-keygen:${req.keyId}`, step.outbound) };
  }

  private async keygenStep(body: unknown): Promise<Answer<typeof keygen.step>> {
    const req = keygen.step.request.parse(body);
    const s = this.take(req.session, 'keygen');
    const step = abortable(req.session, () => {
      const inbound = this.relay.open(`ecdsa-keygen:${s.keyId}`, req.session, ROUND_OF[s.state.phase] ?? 0, req.inbound);
      return ecdsaKeygenStep(s.state, inbound, randomBytes);
    });
    if (!step.output) {
      this.sessions.put(req.session, { ...s, state: step.state });
      return { outbound: this.relay.seal(`ecdsa-keygen:${s.keyId}`, step.outbound) };
    }
    await this.saveKey(s.keyId, step.output);
    this.log.info({ keyId: s.keyId, session: req.session }, 'ECDSA key share stored');
    return { outbound: [], publicPackage: ecdsaPublicPackage(step.output), released: { output: 'key', keyId: s.keyId } };
  }

  private async signStart(body: unknown): Promise<Answer<typeof sign.start>> {
    const req = sign.start.request.parse(body);
    this.relay.checkActive(req.signers);
    const key = await this.loadKey(req.keyId);
    const step = abortable(req.session, () => ecdsaSignStart(key, { session: req.session, signers: req.signers, digest: Buffer.from(req.digest, 'hex'), lowS: req.lowS ?? false }, randomBytes));
    this.sessions.begin(req.session, { kind: 'sign', keyId: req.keyId, state: step.state });
    return { outbound: this.relay.seal(`ecdsa-sign:${req.keyId}`, step.outbound) };
  }

  private async signStep(body: unknown): Promise<Answer<typeof sign.step>> {
    const req = sign.step.request.parse(body);
    const s = this.take(req.session, 'sign');
    let step;
    try {
      const inbound = this.relay.open(`ecdsa-sign:${s.keyId}`, req.session, ROUND_OF[s.state.phase] ?? 0, req.inbound);
      step = ecdsaSignStep(s.state, inbound, randomBytes);
    } catch (e) {
      // A peer that cheated loses its pairwise setup with us, persisted before we answer.
      if (e instanceof ProtocolError) {
        const key = await this.loadKey(s.keyId);
        const after = ecdsaAfterAbort(key, e); // the same object when nothing is discarded
        if (after !== key) await this.saveKey(s.keyId, after);
      }
      throw asRefusal(req.session, e);
    }
    const round3 = step.outbound.some((m) => m.round === 3);
    if (!round3) this.sessions.put(req.session, { ...s, state: step.state });
    const outbound = this.relay.seal(`ecdsa-sign:${s.keyId}`, step.outbound);
    // Round 3 carries this signer's share of the signature: that is the release.
    return round3 ? { outbound, released: { output: 'partial', keyId: s.keyId, algorithm: 'ecdsa-dkls23' } } : { outbound };
  }

  private async loadKey(keyId: string): Promise<EcdsaKeyShare> {
    const raw = await this.store.get(keyRecordName(keyId));
    if (!raw) throw new RpcError(404, 'no-key', `this signer holds no share of key ${keyId}`);
    return decodeShareRecord(raw, 'ecdsa').share;
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

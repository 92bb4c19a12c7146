// A signer's side of resharing a key — FROST or DKLs23 (signers/protocols/reshare.ts), Shoup
// RSA (signers/protocols/rsa/reshare.ts): away from a removed signer, whose old share becomes
// useless beside the new ones; to the same holders (a refresh); or to a signer admitted since.
// The guard decides whether this signer takes part at all (the same threshold; every active old
// holder kept; only active signers added). The new
// share is kept pending, sealed, until the gateway reports that every new holder finished with
// the same public package; only then does it replace the old one. Until then nothing changes:
// an abort leaves the old shares valid.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { z } from 'zod';
import { canonicalJson } from '../../contract/canonical.js';
import { reshareStart, reshareStep, type ReshareState } from '../protocols/reshare.js';
import { parsePublicParams, rsaPublicParamsSchema } from '../protocols/rsa/key.js';
import type { Message } from '../protocols/common.js';
import { refreshHeadroomProblem, RSA_RESHARE_ROUND, rsaReshareDeal, rsaReshareReceive, type RsaReshareParams } from '../protocols/rsa/reshare.js';
import type { SignerConfig } from './config.js';
import { abortable } from './ecdsa.js';
import type { PolicyGuard } from './guard/index.js';
import { decodeOnce, decodeRecord, encodeRecord, heldPackageDigest, packageOf, recordPackage, type Held } from './key-records.js';
import { usingSecrets } from '../protocols/common.js';
import { keyPackageSchema, packageDigest, type KeyPackage } from '../protocols/key-package.js';
import { keyRecordName, type Relay } from './relay.js';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';
import { RpcError, type Answer } from './rpc.js';
import { runStep, sealStep, SessionTable } from './sessions.js';
import type { ShareStore } from '../../contract/io/sealed-store.js';

const { reshare } = signerRoutes;
// The key packages only the protocols parse, narrowed here.
const startRequest = reshare.start.request.extend({ old: keyPackageSchema.optional() });
const adoptRequest = reshare.adopt.request.extend({ publicPackage: keyPackageSchema });

/** A reshared share kept until it is adopted. */
export const pendingName = (keyId: string) => `reshare.${keyId}`;
/** An RSA resharing keeps its own dealing to itself: the relay delivers nobody's own messages. */
type Session = { keyId: string } & ({ state: ReshareState } | { rsa: RsaReshareParams; own: Message[] });

const isRsaPackage = (p: KeyPackage): p is z.infer<typeof rsaPublicParamsSchema> => 'n' in p;
const sameIds = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((id) => b.includes(id));

export class ReshareSessions {
  private readonly sessions = new SessionTable<Session>();

  constructor(
    private readonly config: SignerConfig,
    private readonly store: ShareStore,
    private readonly relay: Relay,
    private readonly guard: PolicyGuard,
    private readonly log: Logger,
  ) {}

  /** `onAdopted`: this signer holds a share of the key from now on (it may be new to it). */
  routes(onAdopted: (keyId: string) => void) {
    return {
      [reshare.start.path]: (b: unknown) => this.start(b),
      [reshare.step.path]: (b: unknown) => this.step(b),
      [reshare.adopt.path]: async (b: unknown) => {
        const r = await this.adopt(b);
        onAdopted(r.keyId);
        return r;
      },
    };
  }

  /**
   * Round 1. A holder deals from its own share and the package it implies; a signer new to the
   * key (admitted since it was made) only receives, with `old` as the gateway relays it — its
   * dealers check `old` against their own shares, so a wrong one stops them (reshare.ts).
   */
  private async start(body: unknown): Promise<Answer<typeof reshare.start>> {
    const req = startRequest.parse(body);
    const raw = await this.store.get(keyRecordName(req.keyId));
    // Where an approved restore revived an older sharing of the key (guard/restore.ts), one of the
    // two sharings is set aside: a later share when the revived sharing is reshared from, the
    // revived share when the later one is. Between any others, a share must be of `old` (the
    // protocol checks), whatever package the gateway names.
    const own = raw ? decodeOnce(raw, decodeRecord) : undefined;
    return usingSecrets(own, () => this.startWith(req, own)); // the dealing is made: the old share's use ends here
  }

  private async startWith(req: z.infer<typeof startRequest>, own: Held | undefined): Promise<Answer<typeof reshare.start>> {
    const revived = this.guard.revived(req.keyId);
    const mine = own && heldPackageDigest(own);
    const setAside = revived !== undefined && req.old !== undefined && mine !== packageDigest(req.old) && (packageDigest(req.old) === revived || mine === revived);
    const held = setAside ? undefined : own;
    if (!held && !req.old) throw new RpcError(404, 'no-key', `this signer holds no share of key ${req.keyId}`);
    const old = (held ? packageOf(held) : req.old!) as KeyPackage;
    this.guard.checkReshare(req.keyId, old, req);
    this.sessions.checkFree(req.session);
    // To exactly the key's holders it is a refresh, which nothing forces: an administrator asks for it.
    const refresh = sameIds(old.participants, req.participants);
    const rsaOld = isRsaPackage(old) ? (held && 'rsa' in held ? held.rsa.params : abortable(req.session, () => parsePublicParams(old))) : undefined;
    const tight = refresh && rsaOld ? refreshHeadroomProblem(rsaOld) : undefined;
    if (tight) throw new RpcError(403, 'access-denied', `access denied: key ${req.keyId}: ${tight}`);
    // The active old holders deal (or those named, at least the threshold: the protocol checks); every participant receives.
    const staying = old.participants.filter((id) => req.participants.includes(id));
    if (req.dealers?.some((id) => !staying.includes(id))) throw new RpcError(403, 'access-denied', `access denied: key ${req.keyId} is dealt only by old holders that stay (${staying.join(', ')})`);
    const dealers = req.dealers ?? staying;
    // Spent only on a resharing this signer takes part in.
    const asked = refresh ? await this.guard.authorizeRefresh(req.keyId, req.authority) : undefined;
    const recorded = asked && { recorded: { request: req.session, keyId: req.keyId, ...asked } };
    const common = { session: req.session, self: this.config.id, dealers, participants: req.participants, threshold: req.threshold };
    const seal = (outbound: Parameters<Relay['seal']>[1], state?: unknown) => ({ outbound: sealStep(this.relay, `reshare:${req.keyId}`, { state, outbound }), ...recorded });
    if (isRsaPackage(old)) {
      // A 1-of-n RSA key takes one dealer: a second's Lagrange weight could be negative (rsa/reshare.ts).
      const params: RsaReshareParams = { ...common, dealers: old.threshold === 1 ? dealers.slice(0, 1) : dealers, old: rsaOld! /* set for every RSA package above */ };
      const deals = held && 'rsa' in held && params.dealers.includes(this.config.id);
      const outbound = deals ? abortable(req.session, () => rsaReshareDeal(params, held.rsa.share, randomBytes)) : [];
      this.sessions.begin(req.session, { keyId: req.keyId, rsa: params, own: outbound.filter((m) => m.to === this.config.id) });
      return seal(outbound.filter((m) => m.to !== this.config.id));
    }
    if (held && 'rsa' in held) throw new RpcError(409, 'wrong-scheme', `key ${req.keyId} is an RSA key here`);
    const step = abortable(req.session, () => reshareStart({ ...common, old }, held?.ec, randomBytes));
    this.sessions.begin(req.session, { keyId: req.keyId, state: step.state });
    return seal(step.outbound, step.state);
  }

  private async step(body: unknown): Promise<Answer<typeof reshare.step>> {
    const req = reshare.step.request.parse(body);
    const s = this.sessions.take(req.session);
    if (!s) throw new RpcError(404, 'no-session', `no resharing session ${req.session}`);
    const purpose = `reshare:${s.keyId}`;
    return runStep('rsa' in s ? s.own : s.state, async ({ spend, keep }): Promise<Answer<typeof reshare.step>> => {
      let output: Held;
      if ('rsa' in s) {
        output = { rsa: abortable(req.session, () => rsaReshareReceive(s.rsa, [...spend(this.relay.open(purpose, req.session, RSA_RESHARE_ROUND, req.inbound)), ...s.own])) };
      } else {
        const step = abortable(req.session, () => reshareStep(s.state, spend(this.relay.open(purpose, req.session, s.state.phase === 'round1' ? 1 : 2, req.inbound)), randomBytes));
        if (!step.output) {
          this.sessions.put(req.session, { ...s, state: keep(step.state) });
          return { outbound: sealStep(this.relay, purpose, step) };
        }
        output = { ec: spend(step.output) };
      }
      await this.store.put(pendingName(s.keyId), encodeRecord(output, req.session));
      this.log.info({ keyId: s.keyId, session: req.session }, 'reshared key share pending');
      return { outbound: [], publicPackage: packageOf(output) };
    });
  }

  /**
   * Replaces the key share with the pending one, once every new holder reported the same package.
   * Idempotent: the gateway repeats it after a crash between adopts (gateway/reshare-journal.ts),
   * so a key share already adopted with this package is answered as adopted again.
   */
  private async adopt(body: unknown): Promise<Answer<typeof reshare.adopt>> {
    const req = adoptRequest.parse(body);
    const raw = await this.store.get(pendingName(req.keyId));
    const pending = raw && decodeRecord(raw);
    if (!pending || pending.session !== req.session) {
      // The package holds the new verifying shares: only this resharing's adopted share matches it.
      const current = await this.store.get(keyRecordName(req.keyId));
      if (current && canonicalJson(recordPackage(current)) === canonicalJson(req.publicPackage)) {
        this.log.info({ keyId: req.keyId, session: req.session }, 'reshared key share already adopted');
        return { keyId: req.keyId, released: { output: 'key', keyId: req.keyId, operation: 'ReshareKey' } };
      }
    }
    if (!pending) throw new RpcError(404, 'no-pending', `no reshared share of key ${req.keyId} is pending here`);
    if (pending.session !== req.session) throw new RpcError(409, 'other-session', `the pending share of key ${req.keyId} is from another resharing`);
    if (canonicalJson(packageOf(pending)) !== canonicalJson(req.publicPackage)) throw new RpcError(409, 'package-mismatch', 'the new holders did not all finish with this signer’s public package');
    await usingSecrets(pending, () => this.store.put(keyRecordName(req.keyId), encodeRecord(pending)));
    await this.store.delete(pendingName(req.keyId));
    await this.guard.forgetRevived(req.keyId);
    this.log.info({ keyId: req.keyId, session: req.session }, 'reshared key share adopted');
    return { keyId: req.keyId, released: { output: 'key', keyId: req.keyId, operation: 'ReshareKey' } };
  }
}

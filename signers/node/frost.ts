// A signer's part of FROST signing (signers/protocols/frost.ts, RFC 9591), two ways:
//   two rounds   commit (nonces made for this session, the use authorised) → sign the package;
//   one round    nonces made ahead of any message (preprocess: only their commitments leave),
//                then sign-preprocessed, which names one of them and carries the client's evidence.
// Nonces live only in memory (a session table, the Preprocessed table), never on disk: a kill -9,
// a restart or a restored copy of the store cannot bring one back, so none is used twice. Every
// nonce is taken out of its table before anything else happens, whatever the outcome.
import { randomBytes, randomUUID } from 'node:crypto';
import type { z } from 'zod';
import type { Logger } from 'pino';
import { type PartyId } from '../../contract/bytes.js';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';
import { usingSecrets, wipeSecrets, type Step } from '../protocols/common.js';
import type { DkgKeyShare } from '../protocols/dkg.js';
import { frostCommit, frostPreprocess, frostSign, frostSignPreprocessed, signingPackageSchema, type FrostNonces, type FrostSignerState, type SigningPackage } from '../protocols/frost.js';
import type { SignerConfig } from './config.js';
import type { PolicyGuard, UseGrant } from './guard/index.js';
import { decodeOnce, decodeShareRecord } from './key-records.js';
import { Preprocessed } from './preprocessed.js';
import { keyRecordName, type Relay } from './relay.js';
import { RpcError, type Answer } from './rpc.js';
import { protocolFailure, SessionTable } from './sessions.js';
import type { ShareStore } from '../../contract/io/sealed-store.js';

const { frost } = signerRoutes;
// The members only the protocol parses, narrowed here.
const frostSignRequest = frost.sign.request.extend({ package: signingPackageSchema });

/** The most nonce pairs held ahead at once, over every key (the gateway's pools ask for less). */
export const PREPROCESSED_CAPACITY = 8192;
/** How long a nonce pair made ahead waits to be used (the gateway's pool drops its commitments sooner). */
export const PREPROCESSED_TTL_MS = 10 * 60_000;

interface FrostSession {
  keyId: string;
  signers: PartyId[];
  state: FrostSignerState;
  grant: UseGrant;
}

export class FrostSigning {
  private readonly sessions = new SessionTable<FrostSession>();
  /** Nonce pairs made ahead, by id; each with the key it was made for. */
  private readonly ahead = new Preprocessed<{ keyId: string; nonces: FrostNonces }>(PREPROCESSED_CAPACITY, PREPROCESSED_TTL_MS);

  constructor(
    private readonly config: SignerConfig,
    private readonly store: ShareStore,
    private readonly relay: Relay,
    private readonly guard: PolicyGuard,
    private readonly log: Logger,
  ) {}

  /** Two-round sessions open now and nonce pairs held ahead (health). */
  get held(): { sessions: number; preprocessed: number } {
    return { sessions: this.sessions.size, preprocessed: this.ahead.size };
  }

  routes() {
    return {
      [frost.commit.path]: (b: unknown) => this.commit(b),
      [frost.sign.path]: (b: unknown) => this.sign(b),
      [frost.preprocess.path]: (b: unknown) => this.preprocess(b),
      [frost.signPreprocessed.path]: (b: unknown) => this.signPreprocessed(b),
    };
  }

  /** A key destroyed or forgotten here: its nonces made ahead go too. */
  forget(keyId: string): void {
    this.ahead.drop((v) => v.keyId === keyId);
  }

  private async loadKey(keyId: string): Promise<DkgKeyShare> {
    const raw = await this.store.get(keyRecordName(keyId));
    if (!raw) throw new RpcError(404, 'no-key', `this signer holds no share of key ${keyId}`);
    return decodeOnce(raw, (r) => decodeShareRecord(r, 'frost').share);
  }

  /** The signers of a session: at least t participants of the key, active, this one among them. */
  private checkSigners(key: DkgKeyShare, signers: readonly PartyId[]): void {
    if (signers.length < key.threshold) throw new RpcError(403, 'too-few-signers', `${signers.length} signers, threshold ${key.threshold}`);
    for (const id of signers) if (!key.participants.includes(id)) throw new RpcError(403, 'unknown-participant', `party ${id} holds no share of this key`);
    this.relay.checkActive(signers);
    if (!signers.includes(this.config.id)) throw new RpcError(400, 'not-a-participant', 'this signer is not among the signers');
  }

  private async commit(body: unknown): Promise<Answer<typeof frost.commit>> {
    const req = frost.commit.request.parse(body);
    const key = await this.loadKey(req.keyId);
    const { grant, step } = await usingSecrets(key, async () => {
      const grant = await this.guard.authorizeUse(req.keyId, req.use);
      this.checkSigners(key, req.signers);
      this.sessions.checkFree(req.session);
      return { grant, step: frostCommit(key, req.session, randomBytes) }; // the state holds its own copy of the share
    });
    this.sessions.begin(req.session, { keyId: req.keyId, signers: [...req.signers].sort((a, b) => a - b), state: step.state, grant });
    return { commitment: step.outbound[0]!.payload };
  }

  private async sign(body: unknown): Promise<Answer<typeof frost.sign>> {
    const req = frostSignRequest.parse(body);
    // Single use: the nonces leave memory before anything else happens, whatever the outcome.
    const s = this.sessions.take(req.session);
    if (!s || s.keyId !== req.keyId) {
      if (s) wipeSecrets(s.state);
      throw new RpcError(404, 'no-session', `no signing session ${req.session} for this key`);
    }
    return usingSecrets(s.state, () => this.signSession(req, s)); // frostSign wipes what it used; this covers a refusal before it
  }

  private async signSession(req: z.infer<typeof frostSignRequest>, s: FrostSession): Promise<Answer<typeof frost.sign>> {
    // The gateway asks more signers to commit than sign (the first t to answer): the package may
    // name a subset of the commitment request's signers, never another. The protocol checks the
    // threshold, this signer's own commitment, and uses its nonces once.
    const ids = req.package.commitments.map((c) => c.id);
    if (ids.some((id) => !s.signers.includes(id))) throw new RpcError(403, 'signer-set-changed', 'the signing package names signers the commitment request did not');
    this.guard.expectFrost(s.grant, req.package.suite, req.package.message);
    return this.release(s.grant, req.keyId, req.package, () => frostSign(s.state, req.package));
  }

  /**
   * Nonce pairs for a key ahead of any message. Nothing is authorised or spent (a commitment
   * reveals nothing), so nothing is written either; the key must be held here and this signer
   * active, and the table has room (a batch that would not fit is refused before any is made).
   */
  private async preprocess(body: unknown): Promise<Answer<typeof frost.preprocess>> {
    const req = frost.preprocess.request.parse(body);
    this.relay.checkActive([this.config.id]);
    const key = await this.loadKey(req.keyId);
    const made = usingSecrets(key, () => {
      this.ahead.checkRoom(req.count);
      return frostPreprocess(key, randomBytes, req.count).map((nonces) => [randomUUID(), { keyId: req.keyId, nonces }] as const);
    });
    this.ahead.add(made);
    return { nonces: made.map(([id, v]) => ({ id, commitment: v.nonces.commitment })) };
  }

  /**
   * Signs in one round with a nonce pair made ahead. It is taken out of the table first (a
   * replayed or concurrent call with the same id finds nothing: 'not-preprocessed'), then it
   * must have been made for this key and the package must carry exactly its commitment as this
   * signer's; then the client's request is authorised and must be what the package signs, as in
   * the two rounds. RFC 9591's binding factors, which hash the message and every commitment,
   * keep sessions that draw on commitments made ahead safe against a gateway that chooses them.
   */
  private async signPreprocessed(body: unknown): Promise<Answer<typeof frost.signPreprocessed>> {
    const req = frost.signPreprocessed.request.parse(body);
    const { keyId, nonces } = this.ahead.take(req.nonce);
    return usingSecrets(nonces, () => this.signWithAhead(req, keyId, nonces)); // taken out: used or not, never again
  }

  private async signWithAhead(req: ReturnType<typeof frost.signPreprocessed.request.parse>, keyId: string, nonces: FrostNonces): Promise<Answer<typeof frost.signPreprocessed>> {
    if (keyId !== req.keyId) throw new RpcError(409, 'not-preprocessed', `nonce ${req.nonce} was not made for key ${req.keyId}`);
    const pkg = signingPackageSchema.parse(req.package);
    const own = pkg.commitments.find((c) => c.id === this.config.id);
    if (own?.hiding !== nonces.commitment.hiding || own.binding !== nonces.commitment.binding)
      throw new RpcError(403, 'package-mismatch', `the signing package does not carry this signer's commitment for nonce ${req.nonce}`);
    return usingSecrets(await this.loadKey(req.keyId), async (key) => {
      this.checkSigners(key, pkg.commitments.map((c) => c.id));
      const grant = await this.guard.authorizeUse(req.keyId, req.use);
      this.guard.expectFrost(grant, pkg.suite, pkg.message);
      return this.release(grant, req.keyId, pkg, () => frostSignPreprocessed(nonces, key, pkg));
    });
  }

  /** Computes the share, then spends the grant durably (guard.release) before it leaves; recorded in the audit. */
  private async release(grant: UseGrant, keyId: string, pkg: SigningPackage, sign: () => Step<FrostSignerState>): Promise<Answer<typeof frost.sign>> {
    try {
      const step = sign();
      const asked = await this.guard.release(grant, `frost:${pkg.session}`);
      this.log.info({ keyId, session: pkg.session, suite: pkg.suite }, 'signature share released');
      return { share: step.outbound[0]!.payload, released: { output: 'partial' as const, keyId, algorithm: `frost-${pkg.suite}`, ...asked } };
    } catch (e) {
      protocolFailure(e);
    }
  }
}

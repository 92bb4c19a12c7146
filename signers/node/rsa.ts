// A signer's threshold-RSA duties: install a dealt share, and compute partials with proofs.
import { randomBytes } from 'node:crypto';
import { openDealtShare } from '../ceremony/dealt-share.js';
import { ProtocolError } from '../protocols/common.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { toHex } from '../../contract/bytes.js';
import { parseKeyShare, parsePublicParams, rsaPublicParamsSchema, type RsaKeyShare, type RsaPublicParams } from '../protocols/rsa/key.js';
import { rsaPartial } from '../protocols/rsa/partial.js';
import { parseRequest } from '../protocols/rsa/request.js';
import { decodeOnce, decodeRsaRecord, encodeRsaRecord } from './key-records.js';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';
import type { SignerConfig } from './config.js';
import { rsaFingerprint, type CreateRecord, type PolicyGuard } from './guard/index.js';
import { EnvelopeError } from '../../contract/identity/envelope.js';
import type { IdentitySecrets } from '../../contract/identity/identity.js';
import type { Relay } from './relay.js';
import { RpcError, type Answer } from './rpc.js';
import type { ShareStore } from '../../contract/io/sealed-store.js';

const { rsa } = signerRoutes;
const installRequest = rsa.install.request.extend({ params: rsaPublicParamsSchema });

export class RsaShares {
  /**
   * The SHA-256 of each key's record whose parameters and share were checked (gcds over the
   * modulus, an exponentiation) in this run: a record read again unchanged is not checked again
   * (the sealed store verifies every record it reads).
   */
  private readonly checked = new Map<string, string>();

  constructor(
    private readonly config: SignerConfig,
    private readonly store: ShareStore,
    private readonly identity: IdentitySecrets,
    private readonly relay: Relay,
    private readonly guard: PolicyGuard,
  ) {}

  /** Installs this signer's share of a dealt key, after checking it against the public params. */
  async install(body: unknown): Promise<{ keyId: string; record: CreateRecord }> {
    const req = installRequest.parse(body);
    const name = `key.${req.keyId}`;
    if (await this.store.has(name)) throw new RpcError(409, 'key-exists', `key ${req.keyId} already exists here`);
    const pending = await this.guard.authorizeCreate(req.keyId, req.creation);
    try {
      const params = parsePublicParams(req.params);
      if (`RSA_${params.n.toString(2).length}` !== pending.keySpec) throw new RpcError(403, 'wrong-key-spec', `the dealt key is not the ${pending.keySpec} key approved`);
      // The key must be shared among exactly the admitted signers, at the cluster's threshold, as a generated one.
      this.relay.checkKeygenParticipants(params.participants, params.threshold);
      const share = parseKeyShare(params, openDealtShare(req.keyId, this.identity, this.config.id, req.dealer, req.envelope));
      if (share.id !== this.config.id) throw new RpcError(403, 'wrong-share', `the share is party ${share.id}'s`);
      await this.store.put(name, encodeRsaRecord({ params, share }));
      return { keyId: req.keyId, record: await this.guard.recordCreated(pending) };
    } catch (e) {
      if (e instanceof ProtocolError || e instanceof EnvelopeError) throw new RpcError(400, 'bad-share', e.message);
      throw e;
    }
  }

  /** This signer's partial for a request it checks itself (see signers/protocols/rsa/request.ts). */
  async partial(body: unknown): Promise<Answer<typeof rsa.partial>> {
    const req = rsa.partial.request.parse(body);
    try {
      const { params, share } = await this.load(req.keyId);
      const request = parseRequest(req.request);
      if (request.session !== req.session) throw new RpcError(400, 'bad-request', 'the request belongs to another session');
      const fingerprint = rsaFingerprint(request);
      const grant = await this.guard.authorizeUse(req.keyId, req.use);
      this.guard.expectRsa(grant, request);
      const partial = rsaPartial(params, share, request, randomBytes, req.prove ?? true);
      const asked = await this.guard.release(grant, fingerprint);
      const algorithm = request.op === 'sign' ? `rsa-${request.scheme}-${request.hash}` : `rsa-decrypt-${request.padding}`;
      return { partial, released: { output: 'partial', keyId: req.keyId, algorithm, ...asked } };
    } catch (e) {
      if (e instanceof ProtocolError) throw new RpcError(400, 'bad-request', e.message);
      throw e;
    }
  }

  /**
   * The share, read for this partial alone: no copy is kept between requests (its integer is a
   * bigint, which cannot be wiped; it goes with this request).
   */
  private async load(keyId: string): Promise<{ params: RsaPublicParams; share: RsaKeyShare }> {
    const raw = await this.store.get(`key.${keyId}`);
    if (!raw) throw new RpcError(404, 'no-key', `this signer holds no share of key ${keyId}`);
    const digest = toHex(sha256(raw));
    const held = decodeOnce(raw, (r) => decodeRsaRecord(r, this.checked.get(keyId) !== digest));
    this.checked.set(keyId, digest);
    return held;
  }
}

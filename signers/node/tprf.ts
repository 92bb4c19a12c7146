// A signer's part of the threshold PRF behind symmetric keys: one partial evaluation, with its
// proof, of an input this signer derived from the client's signed request (guard/symmetric.ts);
// and the materials rotations add. Material 1 is the key's record (key.<id>); a rotation's
// material, made by DKG under a fresh id, is its own record, never overwritten: ciphertexts
// sealed with it name it in their header, and it decrypts them for as long as the key exists.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { ShareStore } from '../../contract/io/sealed-store.js';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';
import { tprfPartial } from '../protocols/tprf.js';
import { symmetricFingerprint, type PolicyGuard } from './guard/index.js';
import type { Released } from '../../contract/signer-rpc/released.js';
import type { DkgKeyShare } from '../protocols/dkg.js';
import { decodeOnce, decodeShareRecord, encodeShareRecord } from './key-records.js';
import { usingSecrets } from '../protocols/common.js';
import { keyRecordName } from './relay.js';
import { RpcError, type Answer } from './rpc.js';
import { protocolFailure } from './sessions.js';

const { tprf } = signerRoutes;

/** Where material `material` of a symmetric key is stored. */
export const materialRecordName = (keyId: string, material: number): string => (material === 1 ? keyRecordName(keyId) : `material.${keyId}.${material}`);

export class PrfEvaluations {
  /** Materials a key generation has been started for here: one generation per material id, ever (per run). */
  private readonly claimed = new Set<string>();

  constructor(
    private readonly store: ShareStore,
    private readonly guard: PolicyGuard,
    private readonly log: Logger,
  ) {}

  routes() {
    return { [tprf.evaluate.path]: (b: unknown) => this.evaluate(b) };
  }

  /** A rotation may add material `material` to `keyId`: a symmetric key, Enabled and committed here, that does not hold it yet. */
  async checkRotation(keyId: string, material: number, suite: string): Promise<void> {
    this.guard.checkRotation(keyId);
    if (suite !== 'ristretto255') throw new RpcError(403, 'wrong-suite', `a symmetric key's material is not made by ${suite} key generation`);
    const name = materialRecordName(keyId, material);
    // Claimed before the first await: of two generations started for one id, the second is refused.
    if (this.claimed.has(name)) throw new RpcError(409, 'key-exists', `a key generation for material ${material} of key ${keyId} was already started here`);
    this.claimed.add(name);
    if (await this.store.has(name)) throw new RpcError(409, 'key-exists', `key ${keyId} already has material ${material} here`);
  }

  /** Stores a rotation's share (sealed, atomically, before anyone is told it exists); what the audit records. */
  async storeMaterial(keyId: string, material: number, share: DkgKeyShare): Promise<Released> {
    const name = materialRecordName(keyId, material);
    // Never over a material that sealed anything (after a restart the claims are gone; the store is not).
    if (await this.store.has(name)) throw new RpcError(409, 'key-exists', `key ${keyId} already has material ${material} here`);
    await this.store.put(name, encodeShareRecord(share));
    this.log.info({ keyId, material }, 'key material stored (rotation)');
    return { output: 'key', keyId, operation: 'RotateKey', detail: { material: String(material) } };
  }

  /** A destroyed key's rotated materials go with it. */
  async deleteMaterials(keyId: string): Promise<void> {
    const prefix = `material.${keyId}.`;
    for (const name of await this.store.list()) if (name.startsWith(prefix)) await this.store.delete(name);
  }

  private async evaluate(body: unknown): Promise<Answer<typeof tprf.evaluate>> {
    const req = tprf.evaluate.request.parse(body);
    const raw = await this.store.get(materialRecordName(req.keyId, req.material));
    if (!raw) throw new RpcError(404, 'no-key', `this signer holds no share of material ${req.material} of key ${req.keyId}`);
    const { share } = decodeOnce(raw, (r) => decodeShareRecord(r, 'frost'));
    return usingSecrets(share, async () => {
      const grant = await this.guard.authorizeSymmetric(req);
      const partial = tprfPartial(share, req.session, grant.input, randomBytes);
      const asked = await this.guard.release(grant, symmetricFingerprint(grant.input));
      this.log.info({ keyId: req.keyId, material: req.material, operation: grant.operation }, 'PRF partial released');
      return { partial, released: { output: 'partial' as const, keyId: req.keyId, algorithm: 'tprf-ristretto255', ...asked } };
    }).catch(protocolFailure);
  }
}

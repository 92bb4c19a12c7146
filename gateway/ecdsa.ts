// Threshold ECDSA (DKLs23) at the gateway: key generation across every signer, and three-round
// signing sessions with t of them. The gateway relays envelopes it cannot read, then combines the
// signers' round-3 broadcasts (signed by each) into r‖s, verified before release.
import { randomUUID } from 'node:crypto';
import { ProtocolError, type Message } from '../signers/protocols/common.js';
import { ecdsaCombine, ecdsaRawToDer, type EcdsaPublicPackage } from '../signers/protocols/ecdsa/index.js';
import { ecdsaPublicSchema } from '../signers/protocols/ecdsa/keyshare.js';
import { openEnvelope } from '../contract/identity/envelope.js';
import type { IdentitySecrets } from '../contract/identity/identity.js';
import { useOf, type Creation } from '../contract/signer-rpc/authority.js';
import { signerRoutes } from '../contract/signer-rpc/routes.js';
import type { AwsSignRequest, ClusterSessions } from './coordinator.js';
import { ClusterError, traceSession, traceUnused, type Trace } from './cluster-outcome.js';
import type { KeyRecord } from './keys.js';
import { ALGORITHM_INFO, ECDSA_CURVE_OF_SPEC, HASHES, isEcKeySpec, type KeySpec } from '../contract/keys/specs.js';
import { relayRounds } from './relay.js';

export class EcdsaCoordinator {
  constructor(
    private readonly cluster: ClusterSessions,
    private readonly identity: IdentitySecrets,
  ) {}

  /** DKLs23 key generation (DKG plus pairwise OT setup) with every signer. */
  async keygen(target: { keyId: string; session: string }, keySpec: KeySpec, trace: Trace, creation?: Creation): Promise<EcdsaPublicPackage> {
    if (!isEcKeySpec(keySpec)) throw new ClusterError('unsupported', `${keySpec} is not an ECDSA key spec`);
    const curve = ECDSA_CURVE_OF_SPEC[keySpec];
    return this.cluster.generate(target, trace, signerRoutes.ecdsa.keygen, (common) => ({ ...common, curve, ...(creation ? { creation } : {}) }), (p) => ecdsaPublicSchema.parse(p));
  }

  /** Three rounds with t signers; returns the DER signature KMS returns. */
  sign(key: KeyRecord, req: AwsSignRequest, trace: Trace): Promise<Uint8Array> {
    const info = ALGORITHM_INFO[req.algorithm];
    if (info.scheme !== 'ECDSA') throw new ClusterError('invalid-usage', `${req.algorithm} is not valid for ${key.keySpec}`);
    if (!key.ecdsa) throw new ClusterError('internal', `key ${key.keyId} has no ECDSA public package`);
    const pub = key.ecdsa;
    const digest = req.messageType === 'RAW' ? HASHES[info.hash](req.message) : req.message;
    const use = useOf('Sign', req.algorithm, req.messageType, req.message, req.evidence);
    return this.cluster.runSession(key, async (plan) => {
      // The set is fixed once the rounds start: healthy signers first, and a start that does not
      // answer soon fails over to another set while there is one (planner.ts).
      const { chosen, startMs } = plan.fixed();
      const session = randomUUID();
      const signers = chosen.map((c) => c.id);
      const start = { session, keyId: key.keyId, signers, digest: Buffer.from(digest).toString('hex'), use };
      // A failure in the last round may follow others' releases: the session is named either way.
      const answers = await relayRounds(chosen, signerRoutes.ecdsa.sign, start, 2, startMs).catch((e: unknown) => {
        traceUnused(trace, session, chosen);
        throw e;
      });
      traceSession(trace, session, chosen, answers);
      const round3 = answers.map((a, i): Message => {
        const from = chosen[i]!;
        const relayed = a.outbound.find((m) => m.from === from.id && m.to === 'all');
        if (!relayed) throw new ProtocolError('missing', 'no round-3 message', from.id);
        const payload = openEnvelope(relayed.envelope, this.identity, from.entry.identity, { purpose: `ecdsa-sign:${key.keyId}`, session, round: 3, from: from.id, to: 'all' });
        return { session, round: 3, from: from.id, to: 'all', payload: JSON.parse(Buffer.from(payload).toString('utf8')) };
      });
      const raw = ecdsaCombine({ curve: pub.curve, publicKey: Buffer.from(pub.publicKey, 'hex'), session, signers, digest }, round3);
      return ecdsaRawToDer(pub.curve, raw);
    });
  }
}

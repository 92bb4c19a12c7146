// Coordinator of the threshold PRF behind symmetric keys (signers/protocols/tprf.ts): asks t
// signers for their partial evaluations of the input each derives from the client's request,
// checks every partial's proof against its sender's verifying share (a bad one names its signer
// and the planner tries again without it) and combines them. The gateway computes the same
// input itself (policy/symmetric-evidence.ts) to check the proofs: a signer that evaluated
// anything else is caught here, and a gateway that asks for anything else is refused there.
import { randomUUID } from 'node:crypto';
import { signerRoutes } from '../contract/signer-rpc/routes.js';
import { ProtocolError } from '../signers/protocols/common.js';
import { publicPackageSchema, type PublicPackage } from '../signers/protocols/dkg.js';
import { tprfCombine, type TprfResult } from '../signers/protocols/tprf.js';
import { ClusterError, gatherTraced, type Trace } from './cluster-outcome.js';
import type { ClusterSessions } from './coordinator.js';
import type { KeyRecord } from './keys.js';
import { BadPartialError } from './planner.js';
import type { SignerClient } from './signer-client.js';

export interface PrfRequest {
  /** The key's material version the evaluation uses (the blob's, or the newest to seal). */
  material: number;
  /** Which of the client's evaluations (ReEncrypt: 0 the source, 1 the destination). */
  evaluation: number;
  /** The PRF input, as the signers derive it from `evidence`. */
  input: Uint8Array;
  /** The client's signed request, forwarded as received. */
  evidence: unknown;
  trace: Trace;
}

export class PrfCoordinator {
  constructor(private readonly cluster: ClusterSessions) {}

  /** F_k(input), 64 bytes, from t signers' checked partials. */
  evaluate(key: KeyRecord, r: PrfRequest): Promise<Uint8Array> {
    const pkg = materialPackage(key, r.material);
    // A material is held by the signers that made it (a rotation's: those active then).
    return this.cluster.runSession({ ...key, holders: pkg.participants, threshold: pkg.threshold }, async (plan) => {
      const session = randomUUID();
      const ask = (c: SignerClient, opts: Parameters<SignerClient['call']>[2]) =>
        c.call(signerRoutes.tprf.evaluate, { keyId: key.keyId, material: r.material, session, evaluation: r.evaluation, evidence: r.evidence }, opts);
      const { signers: chosen, answers } = await gatherTraced(plan, r.trace, session, ask);
      let result: TprfResult;
      try {
        result = tprfCombine(pkg, session, r.input, answers.map((a) => a.partial));
      } catch (e) {
        if (e instanceof ProtocolError && e.sender !== undefined) throw badPartial(chosen, e);
        throw e;
      }
      const fault = result.faults[0];
      if (fault) throw badPartial(chosen, fault);
      return result.output;
    });
  }


  /** A new material for a symmetric key under id `material`: DKG with every signer (a rotation). */
  makeMaterial(key: KeyRecord, material: number, trace: Trace): Promise<PublicPackage> {
    if (key.scheme !== 'tprf-ristretto255') throw new ClusterError('invalid-usage', `key ${key.keyId} is not a symmetric key: it does not rotate`);
    return this.cluster.generate({ keyId: key.keyId, session: randomUUID() }, trace, signerRoutes.dkg, (common) => ({ ...common, suite: 'ristretto255', material }), (p) => publicPackageSchema.parse(p));
  }
}

function badPartial(chosen: readonly SignerClient[], fault: ProtocolError): BadPartialError {
  const culprit = chosen.find((c) => c.id === fault.sender);
  return new BadPartialError(culprit?.name ?? 'unknown', `bad PRF partial from ${culprit?.name ?? 'a signer'}: ${fault.message}`);
}

/** The public package of one material of a symmetric key. */
export function materialPackage(key: KeyRecord, material: number): PublicPackage {
  const pkg = material === 1 ? key.frost : key.materials?.find((m) => m.id === material)?.frost;
  if (key.scheme !== 'tprf-ristretto255' || !pkg) throw new ClusterError('invalid-usage', `key ${key.keyId} has no symmetric key material ${material}`);
  return pkg;
}

/** The material a symmetric key seals with: its newest. */
export const newestMaterial = (key: KeyRecord): number => key.materials?.at(-1)?.id ?? 1;

// Credential activation relayed (signers/node/tpm/activation.ts): each signer that awaits a
// signer's TPM makes it a credential, that signer's TPM answers them all, and each answer goes
// back to the signer that made the credential — the gateway only carries them, and each signer
// checks its own. A newcomer's answers travel with its admission (add-signer.ts); the founding
// signers of a cluster whose genesis requires attestation answer each other's here, at start and
// until all did (signers/node/genesis.ts): until then a signer joins no session including a
// founder it awaits, so keys are made only once this is done.
import { randomBytes } from 'node:crypto';
import { signerRoutes } from '../contract/signer-rpc/routes.js';
import type { GatewayDeps } from './deps.js';
import { gatewayPolicy } from './governance.js';
import type { SignerClient } from './signer-client.js';

/** A credential made per signer (no TPM), and the answering TPM's work: EK creation alone takes seconds on a small host. */
export const ACTIVATION_TIMEOUT_MS = 60_000;

const { admission } = signerRoutes;

/**
 * Asks each of `verifiers` for a credential for `target`'s TPM (made for `challenge`), and
 * `target` for its TPM's answers. `unasked`: the verifiers that did not answer; `proofs`: the
 * target's answer by verifier, for each that made a credential.
 */
export async function relayCredentials(verifiers: readonly SignerClient[], target: SignerClient, challenge: string): Promise<{ unasked: string[]; proofs: Map<number, string> }> {
  const made = await Promise.allSettled(verifiers.map((c) => c.call(admission.activation, { name: target.name, challenge }, { timeoutMs: ACTIVATION_TIMEOUT_MS })));
  const unasked = verifiers.filter((_, i) => made[i]!.status === 'rejected').map((c) => c.name);
  const credentials = made.flatMap((m) => (m.status === 'fulfilled' && m.value.credential !== undefined ? [{ from: m.value.from, credential: m.value.credential }] : []));
  const { proofs } = credentials.length ? await target.call(admission.activate, { credentials }, { timeoutMs: ACTIVATION_TIMEOUT_MS }) : { proofs: [] };
  return { unasked, proofs: new Map(proofs.map((p) => [p.from, p.proof])) };
}

/**
 * One round among the active signers, where the governance requires attestation: every signer's
 * TPM answers the credentials of the others that still await it. Answers what is left undone
 * (signer: why), empty once every signer took every other's answer.
 */
export async function activateSigners(deps: Pick<GatewayDeps, 'cluster' | 'log'>): Promise<string[]> {
  if (!gatewayPolicy().governance.requireAttestation) return [];
  const active = deps.cluster.active;
  const undone = await Promise.all(
    active.map(async (target): Promise<string[]> => {
      const verifiers = active.filter((c) => c.id !== target.id);
      const challenge = randomBytes(32).toString('hex');
      try {
        const { unasked, proofs } = await relayCredentials(verifiers, target, challenge);
        const confirmed = await Promise.allSettled(
          verifiers.filter((v) => proofs.has(v.id)).map((v) => v.call(admission.confirm, { name: target.name, challenge, proof: proofs.get(v.id)! }, { timeoutMs: ACTIVATION_TIMEOUT_MS })),
        );
        const refused = confirmed.flatMap((c) => (c.status === 'rejected' ? [(c.reason as Error).message] : []));
        return [...unasked.map((v) => `${target.name}: ${v} made no credential`), ...refused.map((why) => `${target.name}: ${why}`)];
      } catch (e) {
        return [`${target.name}: ${(e as Error).message}`];
      }
    }),
  );
  const left = undone.flat();
  if (left.length) deps.log.warn({ undone: left.map((l) => l.slice(0, 300)) }, 'credential activation among the signers is not complete; retried');
  return left;
}

/** Whether every active signer took every other's answer, as this gateway last found: `activating` until then; nothing where attestation is not required. */
let status: 'activating' | 'activated' | undefined;
export const activationStatus = () => status;

/** Runs `activateSigners` now, then every `repairIntervalMs` until it is done; answers a stop function. */
export function startSignerActivation(deps: Pick<GatewayDeps, 'cluster' | 'log' | 'config'>): () => void {
  if (!gatewayPolicy().governance.requireAttestation) return () => undefined;
  status = 'activating';
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const round = () => {
    void activateSigners(deps).then((left) => {
      if (left.length === 0) status = 'activated';
      else if (!stopped) timer = setTimeout(round, deps.config.repairIntervalMs).unref();
    });
  };
  round();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

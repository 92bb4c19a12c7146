// After an approved AddSigner (issue #7) or RestoreSigner (#23) was applied by the signers (each
// pinned the newcomer's identity): the newcomer is admitted — it asks a fresh challenge, its TPM
// answers each signer's credential where attestation is required, every active signer seals
// its policy state to it for that challenge, and it enrols only if they all agree
// (signers/node/admission.ts) — then the gateway plans with it and reshares every key to include
// it (same threshold, same public key, new shares for every holder). If any step fails,
// MpcHsm.AdmitSigner (no new approval: the proposal was approved) or the gateway's repair sweep
// resumes where it stopped.
import { signerRoutes } from '../contract/signer-rpc/routes.js';
import { activateSigners, relayCredentials } from './activation.js';
import type { SignerEntry } from './config.js';
import { gatewayPolicy } from './governance.js';
import { KmsError } from './kms/errors.js';
import { reshareKeys, type ReshareCause, type ReshareOutcome, type SignerChangeDeps } from './reshare-keys.js';

export type AdmissionOutcome = { Signer: { Name: string; Id: number; Admitted: boolean; Reason?: string } } & ReshareOutcome;

/** Admits the signer `name` added by an approved proposal (if not yet), then reshares the keys it lacks. */
export async function admitSigner(deps: SignerChangeDeps, name: string, by: Omit<ReshareCause, 'detail'>): Promise<AdmissionOutcome> {
  const policy = gatewayPolicy();
  const added = policy.addedSigner(name);
  if (!added) throw new KmsError('NotFoundException', `no approved AddSigner names an active signer ${name}`);
  const { entry } = added;
  const signer = { Name: entry.name, Id: entry.id, Admitted: true };
  if (!added.admitted) {
    const reason = await enrol(deps, entry, by);
    if (reason) return { Signer: { ...signer, Admitted: false, Reason: reason }, Reshared: [], Failed: [] };
  }
  deps.cluster.admit(entry);
  // A newcomer admitted while another signer's TPM was still awaited awaits it too: it checks that
  // TPM's answer before it takes part in the resharing of a key that signer holds.
  await activateSigners(deps);
  const keys = deps.cluster.keys.list().filter((k) => !k.holders.includes(entry.id));
  const to = (k: { holders: number[] }) => [...k.holders.filter((id) => deps.cluster.active.some((c) => c.id === id)), entry.id].sort((a, b) => a - b);
  return { Signer: signer, ...(await reshareKeys(deps, keys, to, { ...by, detail: { added: entry.name } })) };
}

/** The newcomer's enrolment from every active signer's sealed state; answers why it failed, if it did. */
async function enrol(deps: SignerChangeDeps, entry: SignerEntry, by: Omit<ReshareCause, 'detail'>): Promise<string | undefined> {
  const newcomer = deps.cluster.clientFor(entry);
  const startedAt = Date.now();
  let reason: string | undefined;
  try {
    await gatewayPolicy().completeAdmission(entry, async () => {
      const { admission } = signerRoutes;
      const { challenge } = await newcomer.call(admission.challenge, {});
      const others = deps.cluster.active.filter((c) => c.id !== entry.id);
      // Where the governance requires attestation, each signer's credential for the newcomer's
      // TPM, and the newcomer's answers (relayed only: each signer checks its own).
      const { proofs } = await relayCredentials(others, newcomer, challenge);
      const proof = (id: number) => proofs.get(id);
      // Every other signer is asked; the newcomer decides whose states it needs (a restored
      // signer's lost peer cannot answer, nor be expected to).
      const asked = await Promise.allSettled(others.map((c) => c.call(admission.package, { name: entry.name, challenge, ...(proof(c.id) ? { proof: proof(c.id) } : {}) })));
      const packages = asked.flatMap((a) => (a.status === 'fulfilled' ? [a.value] : []));
      // None handed over: why the first refused says more than the newcomer's empty enrolment would.
      const refused = asked.find((a) => a.status === 'rejected');
      if (packages.length === 0 && refused) throw refused.reason;
      return newcomer.call(admission.enrol, { challenge, packages });
    });
  } catch (e) {
    reason = (e as Error).message.slice(0, 1000);
    deps.log.error({ signer: entry.name, err: reason }, 'admitting a new signer failed; the repair sweep or MpcHsm.AdmitSigner retries');
  } finally {
    newcomer.close();
  }
  await deps.audit.append({
    request: `${by.request}-admission`,
    op: 'AdmitSigner',
    principal: { name: by.principal },
    signers: [...deps.cluster.active.map((c) => ({ name: c.name, id: c.id })), { name: entry.name, id: entry.id }],
    policy: by.policy,
    outcome: reason === undefined ? 'ok' : 'failed',
    reason,
    output: 'none',
    startedAt,
    detail: { ...(by.proposal ? { proposal: by.proposal } : {}), signer: entry.name },
  });
  return reason;
}

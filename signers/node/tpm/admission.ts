// require_attestation (policy/governance.ts): where the governance in force requires it, a signer
// founded by the genesis or admitted by AddSigner must carry an attestation that this signer
// verifies itself (attestation.ts) for the identity it is pinned with; a missing or forged one
// refuses the founding (signers/node/genesis.ts) or the admission (guard/peers.ts). A newcomer so
// pinned then answers this signer's credential (activation.ts) before it is sealed state or
// reshared keys: the quote alone does not show its AK is in its EK's TPM. Today the one
// provider is a TPM quote; a confidential VM's report (SEV-SNP, TDX) would be another `kind`.
import { fingerprint, type PublicIdentity } from '../../../contract/identity/identity.js';
import { verifyTpmQuote } from './attestation.js';

export class AttestationRequiredError extends Error {
  override name = 'AttestationRequiredError';
}

/** Refuses `name` unless `attestation` verifies for `identity`; what it shows, for the audit. */
export async function checkRequiredAttestation(name: string, identity: PublicIdentity, attestation: unknown): Promise<string> {
  if (attestation === undefined) throw new AttestationRequiredError(`${name} carries no attestation, and the governance requires one (requireAttestation)`);
  try {
    const v = await verifyTpmQuote(attestation, fingerprint(identity));
    return `${v.label}; PCRs ${v.pcrs} digest ${v.pcrDigest.slice(0, 16)}…`;
  } catch (e) {
    throw new AttestationRequiredError(`${name}'s attestation is refused: ${(e as Error).message}`);
  }
}

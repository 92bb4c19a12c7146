// What a principal's admission is made of, shared by the commands that admit one: its
// credential files (never overwritten), its enrolment (secrets sealed to each signer) and the
// proposal, checked to be stored as sent.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { canonicalJson } from '../contract/canonical.js';
import type { PublicIdentity } from '../contract/identity/identity.js';
import type { NewPrincipal } from '../gateway/principals.js';
import { proposalSchema, sealPrincipalSecret, type Action, type PrincipalEnrolment, type Proposal } from '../policy/index.js';
import { call } from './approve.js';

export function refuseExisting(file: string, name: string): void {
  if (existsSync(file)) throw new Error(`${file} exists: ${name} already has credentials in this directory (remove the file if they are stale)`);
}

/** A new principal's credentials (secrets sealed to `recipients`) and the proposal member that enrols them. */
export function enrol(made: { credentials: NewPrincipal; record: { pinLoginHash: string } }, recipients: { party: number; identity: PublicIdentity }[]): PrincipalEnrolment {
  const c = made.credentials;
  return {
    Name: c.name,
    Role: c.role,
    AccessKeyId: c.accessKeyId,
    PinLoginHash: made.record.pinLoginHash,
    ...sealPrincipalSecret({
      accessKeyId: c.accessKeyId,
      secrets: { secretAccessKey: c.secretAccessKey, ...(c.pinRequestKey ? { pinRequestKey: c.pinRequestKey } : {}) },
      recipients,
      rng: randomBytes,
    }),
  };
}

/**
 * Proposes `operation` with `parameters` as `as` and reads the stored proposal back: it must be
 * exactly what was sent, in `as`'s name, before anything is written or approved.
 */
export async function proposeChecked(dir: string, as: string, operation: Action, parameters: Record<string, unknown>): Promise<Proposal> {
  const target = `MpcHsm.${operation.replace(/^mpchsm:/, '')}`;
  const p = proposalSchema.parse((await call(dir, as, target, parameters)).Proposal);
  if (p.operation !== operation || p.proposer !== as || canonicalJson(p.parameters) !== canonicalJson(parameters))
    throw new Error(`the gateway stored proposal ${p.id} as something other than what was sent (${p.operation} by ${p.proposer}); not approving it`);
  return p;
}

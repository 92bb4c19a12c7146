// Shared fixtures for the policy tests: a 3-administrator cluster with deterministic keys.
import { ed25519 } from '@noble/curves/ed25519.js';
import { toHex } from '../../contract/bytes.js';
import { seededRng } from '../helpers/rng.js';
import { defaultGovernance, signGovernance, verifyGenesis, type GovernanceDocument } from '../../policy/governance.js';

export const ACCOUNT = '111122223333';
export const REGION = 'us-east-1';
export const CLUSTER = 'test-cluster';
export const KEY_ID = '1234abcd-12ab-34cd-56ef-1234567890ab';
export const KEY_ARN = `arn:aws:kms:${REGION}:${ACCOUNT}:key/${KEY_ID}`;
export const OTHER_KEY_ARN = `arn:aws:kms:${REGION}:${ACCOUNT}:key/00000000-0000-4000-8000-000000000000`;
export const NOW = Date.UTC(2025, 0, 15, 12, 0, 0);

export const arnOf = (name: string) => `arn:aws:iam::${ACCOUNT}:user/${name}`;

export interface TestAdmin {
  name: string;
  secretKey: Uint8Array;
  approvalKey: string;
}
export function makeAdmin(name: string): TestAdmin {
  const secretKey = seededRng(`approval-key/${name}`)(32);
  return { name, secretKey, approvalKey: toHex(ed25519.getPublicKey(secretKey)) };
}
export const ADMINS = ['admin1', 'admin2', 'admin3'].map(makeAdmin);
export const admin = (name: string): TestAdmin => ADMINS.find((a) => a.name === name) ?? makeAdmin(name);

/** The bootstrap governance, signed by all three administrators and verified. */
export function bootstrapGovernance(): GovernanceDocument {
  const doc = defaultGovernance(CLUSTER, ADMINS.map(({ name, approvalKey }) => ({ name, approvalKey })));
  const r = verifyGenesis({ document: doc, signatures: ADMINS.map((a) => signGovernance(doc, a.name, a.secretKey)) });
  if (!r.ok) throw new Error(r.reason);
  return r.governance;
}

// Shared test fixtures: identities, events and temp directories for the audit tests.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';
import { identityFromSecrets, type IdentitySecrets } from '../../contract/identity/identity.js';
import type { AuditKey } from '../../audit/chain.js';
import type { AuditEventInput } from '../../audit/entry.js';
import { seededRng } from '../helpers/rng.js';

export function identity(name: string, seed = name): IdentitySecrets {
  const rng = seededRng(seed);
  return identityFromSecrets(name, Uint8Array.from(rng(32)), Uint8Array.from(rng(32)));
}

export const keyOf = (id: IdentitySecrets): AuditKey => ({ fingerprint: id.fingerprint, signPublicKey: id.public.signPublicKey });

const dirs: string[] = [];
export function tempDir(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'mpchsm-audit-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

export const DIGEST = 'ab'.repeat(32);

export function signEvent(request: string, extra: Partial<AuditEventInput> = {}): AuditEventInput {
  return {
    request,
    op: 'Sign',
    principal: { name: 'app', accessKeyId: 'MPCAPPKEY0000000001', source: '127.0.0.1:50000' },
    keyId: '6f1c1f4e-9a53-4c4e-9d0b-3e0b8f7d2a11',
    algorithm: 'ECDSA_SHA_256',
    digest: DIGEST,
    policy: { version: 3, approvals: [] },
    session: request,
    outcome: 'ok',
    output: 'signature',
    startedAt: new Date('2025-01-01T00:00:00Z'),
    durationMs: 12,
    ...extra,
  };
}

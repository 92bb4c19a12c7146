// Transcripts of a real cluster run: they verify and cross-check, and every kind of
// tampering with any party's log is caught by `mpchsm audit verify` with the right message.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { KMSClient, SignCommand } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type TestCluster } from '../helpers/cluster.js';
import { signRequest } from '../kms/sign-request.js';
import { createKey } from '../policy-cluster/helpers.js';

let tc: TestCluster;

beforeAll(async () => {
  tc = await startCluster();
  const kms = (name: string) => {
    const p = tc.principal(name);
    return new KMSClient({ endpoint: p.MPCHSM_KMS_ENDPOINT, region: p.AWS_REGION, credentials: { accessKeyId: p.AWS_ACCESS_KEY_ID, secretAccessKey: p.AWS_SECRET_ACCESS_KEY }, maxAttempts: 1 });
  };
  // CreateKey is proposed by admin1 and executed on admin1's approval (`mpchsm approve`).
  const keyId = await createKey(tc, { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' });
  for (let i = 0; i < 4; i++) await kms('app').send(new SignCommand({ KeyId: keyId, Message: Buffer.from(`m${i}`), SigningAlgorithm: 'ED25519_SHA_512' }));
  await tc.down(); // a clean stop signs every log's tail
}, 120_000);

afterAll(async () => {
  await tc?.destroy();
});

const logOf = (party: string) => path.join(tc.dir, party === 'gateway' ? 'gateway' : `signers/${party}`, 'audit.jsonl');

const verify = () => tc.mpchsmStatus('audit', 'verify', '--dir', tc.dir);

/** Lines of a log, and the index of the first `frost.sign`/`Sign` event in it (not the gateway's intent before it). */
function lines(party: string): { all: string[]; event: number } {
  const all = readFileSync(logOf(party), 'utf8').trimEnd().split('\n');
  const event = all.findIndex((l) => /"kind":"event".*"op":"(frost\.sign(-preprocessed)?|Sign)"/.test(l));
  return { all, event };
}

const write = (party: string, all: string[]) => writeFileSync(logOf(party), all.join('\n') + '\n');

const tamperings: Record<string, (all: string[], event: number) => string[]> = {
  edited: (all, i) => all.map((l, j) => (j === i ? l.replace('"outcome":"ok"', '"outcome":"failed","reason":"x"') : l)),
  removed: (all, i) => all.filter((_, j) => j !== i),
  reordered: (all, i) => all.map((l, j) => (j === i ? all[i + 1]! : j === i + 1 ? all[i]! : l)),
  truncated: (all, i) => all.slice(0, i),
  'forged-head': (all) => all.map((l) => (l.includes('"kind":"checkpoint"') ? l.replace(/"sig":"[0-9a-f]{8}/, '"sig":"00000000') : l)),
};

describe('audit transcripts of a real cluster', () => {
  it('verify and cross-check after real operations', async () => {
    const r = await verify();
    expect(r.out).toContain('cross-check  ok');
    expect(r.code).toBe(0);
  });

  for (const party of ['gateway', 'signer1']) {
    for (const [kind, tamper] of Object.entries(tamperings)) {
      it(`catches a ${kind} ${party} log`, async () => {
        const { all, event } = lines(party);
        expect(event).toBeGreaterThan(0);
        write(party, tamper(all, event));
        try {
          const r = await verify();
          expect(r.code).toBe(1);
          expect(r.out).toMatch(new RegExp(`${party}.*(${kind === 'forged-head' ? 'forged' : kind})`, 'i'));
        } finally {
          write(party, all);
        }
      });
    }
  }

  it('flags a released signature whose transcript is missing at a signer', async () => {
    const { all, event } = lines('signer2');
    write('signer2', all.filter((_, j) => j !== event));
    try {
      const r = await verify();
      expect(r.code).toBe(1);
      expect(r.out).toMatch(/missing-signer-entry|no .*entry at signer2/i);
    } finally {
      write('signer2', all);
    }
  });

  it('doctor reports the dev cluster as one administrative domain, and --strict fails', async () => {
    const r = await tc.mpchsm('doctor', '--dir', tc.dir);
    expect(r.stdout).toContain('SINGLE ADMINISTRATIVE DOMAIN');
    await expect(tc.mpchsm('doctor', '--dir', tc.dir, '--strict')).rejects.toMatchObject({ code: 1 });
  });

  it('doctor flags signers that declare the same operator', async () => {
    for (const s of ['signer1', 'signer2', 'signer3']) writeFileSync(path.join(tc.dir, 'signers', s, 'operator.json'), JSON.stringify({ operator: s === 'signer3' ? 'carol' : 'alice' }));
    const r = await tc.mpchsm('doctor', '--dir', tc.dir);
    expect(r.stdout).toMatch(/shared-operator.*signer1.*signer2|signer1 and signer2.*same operator/);
  });

  it('the auditor fetches the records through the API; the application may not', async () => {
    await tc.up();
    try {
      const fetchRecords = async (name: string, body: object) => {
        const p = tc.principal(name);
        const host = new URL(p.MPCHSM_KMS_ENDPOINT).host;
        const signed = await signRequest({ accessKeyId: p.AWS_ACCESS_KEY_ID, secretAccessKey: p.AWS_SECRET_ACCESS_KEY }, { host, target: 'MpcHsm.ListAuditRecords', body: JSON.stringify(body) });
        const res = await fetch(p.MPCHSM_KMS_ENDPOINT, { method: 'POST', headers: signed.headers, body: signed.body });
        return { status: res.status, json: (await res.json()) as { Records?: { op: string; keyId?: string; seq: number }[]; NextMarker?: string; __type?: string } };
      };
      const all = await fetchRecords('auditor', {});
      expect(all.status).toBe(200);
      expect(all.json.Records!.some((r) => r.op === 'Sign')).toBe(true);
      const page = await fetchRecords('auditor', { Limit: 2 });
      expect(page.json.Records).toHaveLength(2);
      const next = await fetchRecords('auditor', { Limit: 2, Marker: page.json.NextMarker });
      expect(next.json.Records![0]!.seq).toBeGreaterThan(page.json.Records![1]!.seq);
      const denied = await fetchRecords('app', {});
      expect([denied.status, denied.json.__type]).toEqual([400, 'AccessDeniedException']);
    } finally {
      await tc.down();
    }
  });
});

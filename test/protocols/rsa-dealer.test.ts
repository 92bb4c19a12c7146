// The dealer process entry, spawned for real from the compiled output (`npm test` builds first;
// run `npx tsc -p tsconfig.build.json` before running this file alone).
import { spawnSync } from 'node:child_process';
import { constants, createHash, createPublicKey, generateKeyPairSync, verify as nodeVerify } from 'node:crypto';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { rsaCombine, rsaSignRequest } from '../../signers/protocols/rsa/combine.js';
import type { RsaDealJson } from '../../signers/protocols/rsa/deal.js';
import { parseKeyShare, parsePublicParams } from '../../signers/protocols/rsa/key.js';
import { rsaPartial } from '../../signers/protocols/rsa/partial.js';
import { seededRng } from '../helpers/rng.js';

const DEALER = resolve(process.cwd(), 'dist/signers/ceremony/rsa-dealer.js');

function runDealer(input: string): { status: number | null; out: Record<string, unknown>; raw: string } {
  if (!existsSync(DEALER)) throw new Error(`${DEALER} is missing: build first with \`npx tsc -p tsconfig.build.json\` (npm test does)`);
  const r = spawnSync(process.execPath, [DEALER], { input, encoding: 'utf8', timeout: 55_000 });
  if (r.error) throw r.error;
  return { status: r.status, out: JSON.parse(r.stdout) as Record<string, unknown>, raw: r.stdout };
}

/** Signs with the given shares as separate signers would, after each parses its own share. */
function signAndVerify(deal: RsaDealJson, ids: number[]): boolean {
  const rng = seededRng('dealer-sign');
  const params = parsePublicParams(deal.params);
  const data = Buffer.from('signed after a real ceremony');
  const digest = createHash('sha256').update(data).digest();
  const req = rsaSignRequest(params, { session: 'ceremony-check', scheme: 'pss', hash: 'sha256', digest }, rng);
  const msgs = ids.map((id) => rsaPartial(params, parseKeyShare(params, deal.shares.find((s) => s.id === id)), req, rng, true));
  const sig = rsaCombine(params, req, msgs).output;
  const key = createPublicKey({ key: Buffer.from(deal.publicKey.spki, 'hex'), format: 'der', type: 'spki' });
  return nodeVerify('sha256', data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, sig);
}

describe('rsa-dealer process', () => {
  it('generates a 2048-bit key from safe primes and deals 3-of-4', () => {
    const { status, out } = runDealer(JSON.stringify({ mode: 'generate', bits: 2048, participants: [1, 2, 3, 4], threshold: 3 }));
    expect(status).toBe(0);
    const deal = out as unknown as RsaDealJson;
    expect(deal.safePrimes).toBe(true);
    expect(deal.shares.map((s) => s.id)).toEqual([1, 2, 3, 4]);
    expect(deal.publicKey.e).toBe('010001');
    expect(deal.params.n).toBe(deal.publicKey.n);
    expect(signAndVerify(deal, [2, 3, 4])).toBe(true);
  });

  it('imports a PKCS#8 PEM and keeps its public key', () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pkcs8Pem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const { status, out } = runDealer(JSON.stringify({ mode: 'import', pkcs8Pem, participants: [1, 2], threshold: 2 }));
    expect(status).toBe(0);
    const deal = out as unknown as RsaDealJson;
    expect(deal.safePrimes).toBe(false);
    expect(deal.publicKey.spki).toBe(createPublicKey(privateKey).export({ type: 'spki', format: 'der' }).toString('hex'));
    expect(signAndVerify(deal, [1, 2])).toBe(true);
  });

  it('fails with a typed error and never echoes its input', () => {
    const bad = runDealer('{not json');
    expect(bad.status).toBe(1);
    expect(bad.out).toEqual({ error: { code: 'malformed', message: 'stdin is not JSON' } });

    const pkcs8Pem = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const r = runDealer(JSON.stringify({ mode: 'import', pkcs8Pem, participants: [1, 2], threshold: 3 }));
    expect(r.status).toBe(1);
    expect((r.out.error as { code: string }).code).toBe('bad-parameters');
    expect(r.raw).not.toContain(pkcs8Pem.split('\n')[1]!);

    const unknown = runDealer(JSON.stringify({ mode: 'generate', bits: 1024, participants: [1], threshold: 1 }));
    expect(unknown.status).toBe(1);
    expect((unknown.out.error as { code: string }).code).toBe('malformed');
  });
});

// Every path a signer serves is a route of contract/signer-rpc/routes.ts, and every route there
// is served: read from a real SignerService (on an enrolled store in a temporary directory) and
// from the newcomer's admission routes (signers/node/admission.ts), never from a copied list;
// only the TPM's answer to credentials is served by both.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Route } from '../../contract/signer-rpc/route.js';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';
import { Admission } from '../../signers/node/admission.js';
import { enrolledSigner } from '../helpers/signer.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'mpchsm-routes-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The paths of a table of routes, however deep its families nest. */
const pathsOf = (table: object): string[] =>
  Object.values(table).flatMap((v: Route | object) => ('path' in v && typeof v.path === 'string' ? [v.path] : pathsOf(v)));

/** What an enrolled signer serves, and what a newcomer serves until it is enrolled. */
async function servedPaths(): Promise<{ enrolled: string[]; newcomer: string[] }> {
  const signer = await enrolledSigner(dir);
  try {
    const service = await signer.start();
    return { enrolled: Object.keys(service.routes()), newcomer: Object.keys(new Admission(signer.config, signer.store, signer.self).routes()) };
  } finally {
    await signer.close();
  }
}

describe('the signer routes of contract/signer-rpc/routes.ts', () => {
  it('are exactly the paths a signer serves, each once', async () => {
    const contract = pathsOf(signerRoutes);
    const { enrolled, newcomer } = await servedPaths();
    // A TPM answers credentials in both: a newcomer's before it is enrolled, a founder's once it is (signers/node/genesis.ts).
    expect(enrolled.filter((p) => newcomer.includes(p))).toEqual([signerRoutes.admission.activate.path]);
    const served = [...enrolled, ...newcomer.filter((p) => !enrolled.includes(p))];
    expect(new Set(contract).size, 'a path named twice in the contract').toBe(contract.length);
    expect(new Set(served).size, 'a path served twice').toBe(served.length);
    expect([...served].sort()).toEqual([...contract].sort());
  });
});

// The identities a local cluster's directory pins: the founding signers' in its genesis, those
// admitted later beside their stores, the gateway's in its directory.
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { parsePublicIdentity, type PublicIdentity } from '../contract/identity/identity.js';
import { readJsonFile } from '../contract/io/json-file.js';
import { readGenesis } from '../policy/index.js';
import { layout } from './layout.js';

const pinnedSchema = z.object({ id: z.number().int().min(1).max(255) }).passthrough();

/**
 * The identities pinned for the signers named in `names`, with their party ids: the founding
 * signers' from DIR/genesis.json, those admitted later from DIR/signers/NAME/identity.json.
 * Callers name the active signers as the gateway reports them: it can leave one out, never add
 * an identity.
 */
export function pinnedSigners(dir: string, names: readonly string[]): { name: string; party: number; identity: PublicIdentity; attestation?: unknown }[] {
  const L = layout(dir);
  const founding = existsSync(L.genesis) ? readGenesis(L.genesis).signers : [];
  return readdirSync(path.join(L.root, 'signers'))
    .filter((name) => names.includes(name))
    .sort()
    .map((name) => {
      const f = founding.find((s) => s.name === name);
      if (f) return { name, party: f.id, identity: f.identity, ...(f.attestation ? { attestation: f.attestation } : {}) };
      const { id, ...identity } = readJsonFile(path.join(L.signer(name), 'identity.json'), pinnedSchema);
      return { name, party: id, identity: parsePublicIdentity(identity) };
    });
}

/** The gateway's identity as pinned in DIR/gateway/identity.json. */
export const pinnedGateway = (dir: string): PublicIdentity => parsePublicIdentity(readJsonFile(path.join(layout(dir).gateway, 'identity.json'), z.unknown()));

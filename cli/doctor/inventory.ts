// `mpchsm doctor`'s key inventory check: the keys the gateway records (DIR/gateway/keys/*.json),
// the creations it journaled and has not finished (DIR/gateway/create-journal/), and the keys
// every signer holds, asked of each signer over its authenticated channel with the gateway's own
// identity (unlocked with the gateway operator's secret in DIR/operators/, as the dev cluster
// keeps it; without it the check is skipped and says so). Every difference is named: a share
// the gateway has no record of (an orphan share of an interrupted creation, or a deleted gateway
// key file, with how to recover the gateway's record and then keep or delete the key), a key a holder lacks (a deleted signer key record), public keys or packages that
// differ, a creation left unfinished, a new key never committed.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { loadIdentity, parsePublicIdentity, type IdentitySecrets } from '../../contract/identity/identity.js';
import { ShareStore } from '../../contract/io/sealed-store.js';
import type { InventoryEntry } from '../../contract/signer-rpc/keys.js';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';
import { gatewayPaths, type SignerEntry } from '../../gateway/config.js';
import { creationRecordSchema } from '../../gateway/create-journal.js';
import { packageOf, publicKeyOfPackage } from '../../gateway/key-package.js';
import { keyRecordSchema, type KeyRecord } from '../../gateway/keys.js';
import { SignerClient } from '../../gateway/signer-client.js';
import { list, readJsonOr, type Cluster } from '../cluster-dir.js';
import { pinnedSigners } from '../pinned.js';
import { getJson } from '../processes.js';

export interface InventoryFinding {
  code: string;
  message: string;
}

export interface InventoryReport {
  /** Why the check could not be made, when it could not. */
  skipped?: string;
  /** Keys per party, for the summary line. */
  counts: { party: string; keys: number }[];
  findings: InventoryFinding[];
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
/** How a committed key the gateway lost its record of gets out (gateway/key-recovery.ts). */
const RECOVER =
  "restart the gateway (`mpchsm down`, then `mpchsm up`): its start recovers its record of the key from the signers, which puts the key back in the API; then keep it, or remove it with ScheduleKeyDeletion under governance";
const SIGNER_TIMEOUT_MS = 5000;

/** The gateway's identity, from its sealed store and its operator's secret file. */
export async function gatewayIdentity(c: Cluster): Promise<IdentitySecrets | string> {
  const secretFile = c.L.operatorSecret('gateway');
  if (!existsSync(secretFile)) return `no gateway operator secret at ${secretFile}: the signers answer their inventories only to the gateway's identity`;
  const store = await ShareStore.open(gatewayPaths(c.L.gateway).store, readFileSync(secretFile, 'utf8'), { readOnly: true }); // beside the running gateway
  try {
    return await loadIdentity(store);
  } finally {
    store.close();
  }
}

/** Every signer of the directory with its party id, pinned identity (the gateway's pin first) and URL; retired ones left out. */
export async function signerEntries(c: Cluster): Promise<SignerEntry[]> {
  const out: SignerEntry[] = [];
  for (const p of pinnedSigners(c.L.root, c.signers)) {
    const url = c.urls.get(p.name);
    if (!url) continue;
    const gwPin = c.gatewayConfig?.signers.find((s) => s.name === p.name)?.identity;
    const retired = await getJson(`${url}/health`, 2000).then(
      (h) => z.object({ retired: z.boolean().optional() }).parse(h).retired === true,
      () => false,
    );
    if (!retired) out.push({ name: p.name, id: p.party, url, identity: gwPin ? parsePublicIdentity(gwPin) : p.identity });
  }
  return out;
}

/** The gateway's key records and its unfinished creations; damaged files go to `refused`. */
function gatewayInventory(c: Cluster, refused: (m: string) => void): { keys: Map<string, KeyRecord>; creating: Set<string> } {
  const keysDir = gatewayPaths(c.L.gateway).keys;
  const journalDir = path.join(c.L.gateway, 'create-journal');
  const jsonFiles = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')) : []);
  const keys = new Map<string, KeyRecord>();
  for (const f of jsonFiles(keysDir)) {
    const r = readJsonOr(path.join(keysDir, f), keyRecordSchema, refused);
    if (r) keys.set(r.keyId, r);
  }
  const creating = new Set(jsonFiles(journalDir).flatMap((f) => readJsonOr(path.join(journalDir, f), creationRecordSchema, refused)?.keyId ?? []));
  return { keys, creating };
}

/** Compares the gateway's key inventory with every signer's. */
export async function checkInventories(c: Cluster, refused: (m: string) => void): Promise<InventoryReport> {
  const identity = await gatewayIdentity(c).catch((e: Error) => `the gateway's identity cannot be read: ${e.message}`);
  if (typeof identity === 'string') return { skipped: identity, counts: [], findings: [] };
  const gw = gatewayInventory(c, refused);
  let signers: SignerEntry[];
  try {
    signers = await signerEntries(c);
  } catch (e) {
    return { skipped: `the signers' pinned identities cannot be read: ${(e as Error).message}`, counts: [], findings: [] };
  }
  const held = new Map<string, Map<string, InventoryEntry>>();
  const findings: InventoryFinding[] = [];
  const find = (code: string, message: string) => findings.push({ code, message });
  await Promise.all(
    signers.map(async (s) => {
      const client = new SignerClient(s, identity, SIGNER_TIMEOUT_MS);
      try {
        const answer = await client.call(signerRoutes.keys.inventory, {});
        held.set(s.name, new Map(answer.keys.map((k) => [k.keyId, k])));
      } catch (e) {
        find('inventory-unavailable', `${s.name}'s key inventory could not be read: ${(e as Error).message}`);
      } finally {
        client.close();
      }
    }),
  );
  const asked = signers.filter((s) => held.has(s.name));
  const ids = new Set([...gw.keys.keys(), ...gw.creating, ...[...held.values()].flatMap((m) => [...m.keys()])]);
  for (const keyId of [...ids].sort()) {
    const record = gw.keys.get(keyId);
    const at = asked.map((s) => ({ s, e: held.get(s.name)!.get(keyId) }));
    const holding = at.filter((x) => x.e !== undefined);
    if (gw.creating.has(keyId)) {
      find('creation-unfinished', `the creation of key ${keyId} is journaled at the gateway but not finished (held by ${holding.length ? list(holding.map((x) => x.s.name)) : 'no signer'}): the gateway completes or rolls it back at its next start`);
      continue;
    }
    if (!record) {
      const file = path.join(gatewayPaths(c.L.gateway).keys, `${keyId}.json`);
      const committedEverywhere = holding.length === asked.length && holding.every((x) => x.e!.state === 'committed');
      if (committedEverywhere)
        find('gateway-key-missing', `every signer holds key ${keyId} (committed), but the gateway has no record of it: its key file ${file} was deleted or lost; ${RECOVER}`);
      else
        for (const { s, e } of holding)
          find(
            'orphan-share',
            `${s.name} holds a share of key ${keyId} (${e!.state}) that the gateway has no record of: ${
              e!.state === 'committed'
                ? `the gateway's key file ${file} was deleted or lost, or the key's creation was interrupted; ${RECOVER} (only if at least the key's threshold of signers hold it committed alike: otherwise restore the file from a backup)`
                : "an orphan share of an interrupted creation; the gateway's next start forgets it"
            }`,
          );
      continue;
    }
    const pkg = packageOf(record);
    const publicKey = pkg ? sha256(publicKeyOfPackage(pkg)) : undefined;
    for (const { s, e } of at) {
      const holder = record.holders.includes(s.id);
      if (!e) {
        if (holder) find('signer-key-missing', `${s.name} holds no share of key ${keyId}, which the gateway records it as a holder of: its key records were deleted or lost`);
        continue;
      }
      if (!holder) find('not-a-holder', `${s.name} holds a share of key ${keyId}, whose holders the gateway records as parties ${record.holders.join(', ')}`);
      if (!e.share) find('signer-share-missing', `${s.name} keeps key ${keyId}'s policy record but not its share: the share record was deleted or lost`);
      else if (!e.policy) find('signer-policy-missing', `${s.name} holds a share of key ${keyId} but no policy record for it: the policy record was deleted or lost`);
      if (e.share && e.publicKey === undefined) find('signer-share-unreadable', `${s.name} holds a share of key ${keyId} it cannot read`);
      else if (e.publicKey !== undefined && e.publicKey !== publicKey) find('public-key-differs', `${s.name}'s share of key ${keyId} is of another public key than the gateway records`);
      if (e.state === 'pending') find('uncommitted', `${s.name} holds key ${keyId} as pending: the gateway recorded it but never committed it there (its first use or the gateway's next start does)`);
    }
    const packages = new Set(holding.flatMap((x) => x.e!.package ?? []));
    if (packages.size > 1) find('package-differs', `the holders of key ${keyId} report ${packages.size} different public packages (${list(holding.map((x) => x.s.name))}): their shares do not sign together`);
  }
  const counts = [{ party: 'gateway', keys: gw.keys.size }, ...asked.map((s) => ({ party: s.name, keys: held.get(s.name)!.size }))];
  return { counts, findings };
}

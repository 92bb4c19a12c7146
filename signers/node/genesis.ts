// A signer founded by a genesis (policy/genesis.ts): before it starts, it checks the genesis
// itself — every founding administrator's signature, its own identity among the signers — and
// the first time takes from it its configuration (party id, endpoint, threshold, the gateway's
// and the peers' identities) and its enrolment (the governance, and the founding administrators'
// secrets, opening only the copies sealed to it). From then on it starts only on that same
// genesis: its digest is sealed in the store. A signer restored from a backup (cli/backup/restore.ts)
// has a new identity in the place of a founding one: it starts on the genesis its backup was made
// under, as the party the store names, on the configuration the restore wrote, and is enrolled by
// the other signers once the quorum approved it (signers/node/admission.ts).
// Under require_attestation every founder's quote is verified here, and each other founder awaits
// its TPM's answer to this signer's credential (tpm/activation.ts, the gateway relaying) before
// this signer takes part in any session including it: the quote alone does not show the founder's
// attestation key is in the TPM of its certified endorsement key.
import { existsSync } from 'node:fs';
import { z } from 'zod';
import { writeFileAtomic } from '../../contract/io/atomic.js';
import type { IdentitySecrets } from '../../contract/identity/identity.js';
import type { ShareStore } from '../../contract/io/sealed-store.js';
import { GenesisError, openPrincipalSecret, readGenesis } from '../../policy/index.js';
import { signerConfigSchema, signerPaths } from './config.js';
import { checkRequiredAttestation } from './tpm/admission.js';
import { PolicyGuard } from './guard/index.js';

/** Store record: the hex digest of the genesis this signer was founded on. */
export const GENESIS_RECORD = 'genesis';
/** Store record of a restored signer: the party it restores, {name, party}. */
export const RESTORED_RECORD = 'restored';
const restoredSchema = z.strictObject({ name: z.string(), party: z.number().int().min(1).max(255) });

export async function adoptGenesis(dir: string, store: ShareStore, identity: IdentitySecrets, file: string): Promise<void> {
  const g = readGenesis(file);
  const raw = await store.get(RESTORED_RECORD);
  const restored = raw && restoredSchema.parse(JSON.parse(Buffer.from(raw).toString('utf8')));
  const me = g.signers.find((s) => (restored ? s.id === restored.party && s.name === restored.name : s.identity.signPublicKey === identity.public.signPublicKey));
  if (!me) throw new GenesisError(`${file}: this signer (${identity.public.name}, fingerprint ${identity.fingerprint.slice(0, 16)}…) is not among its signers`);
  // require_attestation: every founding signer's quote, verified here before this one founds anything on it.
  if (g.governance.document.requireAttestation)
    for (const s of g.signers) await checkRequiredAttestation(s.name, s.identity, s.attestation).catch((e: Error) => {
      throw new GenesisError(`${file}: ${e.message}`);
    });
  const recorded = await store.get(GENESIS_RECORD);
  if (recorded) {
    const founded = Buffer.from(recorded).toString('utf8');
    if (founded !== g.digest) throw new GenesisError(`${file} is not the genesis this signer was founded on (${founded.slice(0, 16)}…, this one is ${g.digest.slice(0, 16)}…)`);
  } else {
    if (await PolicyGuard.enrolled(store)) throw new GenesisError('this signer was enrolled without a genesis: start it as it was made');
    await store.put(GENESIS_RECORD, Buffer.from(g.digest));
  }
  const P = signerPaths(dir);
  if (restored) {
    if (!existsSync(P.config)) throw new GenesisError(`${P.config} is missing: a restored signer starts on the configuration \`mpchsm signer restore\` wrote`);
    return;
  }
  if (!existsSync(P.config)) {
    const url = new URL(me.endpoint);
    const config = signerConfigSchema.parse({
      name: me.name,
      id: me.id,
      host: url.hostname,
      port: Number(url.port),
      threshold: g.threshold,
      gateway: g.gateway.identity,
      peers: g.signers.map((s) => ({ name: s.name, id: s.id, identity: s.identity })),
    });
    await writeFileAtomic(P.config, Buffer.from(JSON.stringify(config, null, 2) + '\n'), 0o600);
  }
  if (await PolicyGuard.enrolled(store)) return;
  // Before the enrolment, whose last record means "enrolled": a start stopped in between writes both again.
  if (g.governance.document.requireAttestation) await PolicyGuard.awaitFounders(store, g.signers.filter((s) => s.id !== me.id));
  const principals = g.enrolments.map((e) => {
    const s = openPrincipalSecret(e, identity, me.id);
    return { name: e.Name, role: e.Role, accessKeyId: e.AccessKeyId, secretAccessKey: s.secretAccessKey, ...(s.pinRequestKey ? { pinRequestKey: s.pinRequestKey } : {}) };
  });
  await PolicyGuard.enrol(store, { clusterId: g.clusterId, region: g.region, account: g.account, governance: g.governance, principals });
}

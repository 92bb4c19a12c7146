// A gateway founded by a genesis (policy/genesis.ts): the first start takes its configuration
// from it — the signers' endpoints and pinned identities, the threshold, the founding
// administrators' access key ids and PIN hashes (never their secrets: those are sealed to the
// signers), the governance chain's first version. Later starts check they are given the same one.
import { existsSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../contract/io/atomic.js';
import type { IdentitySecrets } from '../contract/identity/identity.js';
import { GenesisError, readGenesis } from '../policy/index.js';
import { gatewayConfigSchema, gatewayPaths } from './config.js';
import { governanceFile } from './governance/chain.js';
import { PrincipalRegistry } from './principals.js';

export async function adoptGenesis(dir: string, identity: IdentitySecrets, file: string): Promise<void> {
  const g = readGenesis(file);
  if (g.gateway.identity.signPublicKey !== identity.public.signPublicKey) throw new GenesisError(`${file} names another gateway (this one's fingerprint is ${identity.fingerprint.slice(0, 16)}…)`);
  const P = gatewayPaths(dir);
  if (existsSync(P.genesisDigest)) {
    const founded = readFileSync(P.genesisDigest, 'utf8').trim();
    if (founded !== g.digest) throw new GenesisError(`${file} is not the genesis this gateway was founded on (${founded.slice(0, 16)}…, this one is ${g.digest.slice(0, 16)}…)`);
    return;
  }
  const kms = new URL(g.gateway.kms);
  const [p11Host, p11Port] = g.gateway.pkcs11.split(':');
  const config = gatewayConfigSchema.parse({
    host: kms.hostname,
    port: Number(kms.port),
    pkcs11Host: p11Host,
    pkcs11Port: Number(p11Port),
    ...(kms.protocol === 'https:' ? { tls: P.tls } : {}),
    region: g.region,
    account: g.account,
    threshold: g.threshold,
    signers: g.signers.map((s) => ({ name: s.name, id: s.id, url: s.endpoint, identity: s.identity })),
  });
  await writeFileAtomic(P.config, Buffer.from(JSON.stringify(config, null, 2) + '\n'), 0o600);
  await new PrincipalRegistry(P.principals).update(
    g.enrolments.map((e) => e.Name),
    g.enrolments.map((e) => ({ name: e.Name, role: e.Role, accessKeyId: e.AccessKeyId, pinLoginHash: e.PinLoginHash })),
  );
  await writeFileAtomic(governanceFile(dir), Buffer.from(JSON.stringify({ chain: [g.governance] }, null, 2) + '\n'), 0o644);
  // Last: its presence means the founding is complete.
  await writeFileAtomic(P.genesisDigest, Buffer.from(g.digest + '\n'), 0o644);
}

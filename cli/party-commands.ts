// The command lines of the parties' own commands (cli/parties.ts, cli/party-process.ts): options
// checked, the passphrase read from standard input, one line or one JSON object printed.
import path from 'node:path';
import { readSecretFromStdin } from '../contract/io/stdin.js';
import { recoverGatewayDir } from '../gateway/init.js';
import { fingerprint, type PublicIdentity } from '../contract/identity/identity.js';
import type { Genesis } from '../policy/index.js';
import { adminInit, gatewayInit, genesisCreate, genesisSign, signerInit } from './parties.js';
import { signerPaths } from '../signers/node/config.js';
import { DEFAULT_TCTI } from '../signers/node/tpm/tools.js';
import { isTpmSealed } from '../signers/node/tpm/store.js';
import { holdForeground, startParty, stopParty, type PartyKind } from './party-process.js';

interface Values {
  dir?: string | undefined;
  json?: boolean | undefined;
  detach?: boolean | undefined;
  name?: string | undefined;
  as?: string | undefined;
  listen?: string | undefined;
  seal?: string | undefined;
  tcti?: string | undefined;
  pcrs?: string | undefined;
  'p11-listen'?: string | undefined;
  recover?: boolean | undefined;
  'tls-cert'?: string | undefined;
  'tls-key'?: string | undefined;
  genesis?: string | undefined;
  out?: string | undefined;
  gateway?: string | undefined;
  signer?: string[] | undefined;
  admin?: string[] | undefined;
}

function report(json: boolean | undefined, obj: Record<string, unknown>, line: string): void {
  console.log(json ? JSON.stringify(obj) : line);
}

function need<K extends keyof Values>(v: Values, keys: K[], usage: string): void {
  const missing = keys.filter((k) => v[k] === undefined || (Array.isArray(v[k]) && (v[k] as unknown[]).length === 0));
  if (missing.length > 0) throw new Error(`${usage} needs ${missing.map((k) => `--${String(k)}`).join(', ')}`);
}

/** The passphrase a software-sealed store is opened with, read from standard input. */
async function passphrase(): Promise<Uint8Array> {
  return readSecretFromStdin('the passphrase (on standard input)');
}

/** `mpchsm admin init --dir A --name NAME`. */
export async function adminCommand(positionals: string[], v: Values): Promise<void> {
  if (positionals[0] !== 'init' || positionals.length !== 1) throw new Error("admin takes 'init --dir A --name NAME'");
  need(v, ['dir', 'name'], 'admin init');
  const { file } = await adminInit(v.dir!, v.name!);
  report(v.json, { Name: v.name, File: file }, `${file}: ${v.name}'s public file, for the genesis; the secrets stay in ${v.dir}`);
}

/** `mpchsm genesis create …` and `mpchsm genesis sign FILE --as NAME --dir A`. */
export async function genesisCommand(positionals: string[], v: Values, n: { threshold?: number | undefined; quorum?: number | undefined; requireAttestation?: boolean | undefined }): Promise<void> {
  const [sub, file] = positionals;
  if (sub === 'create' && positionals.length === 1) {
    need(v, ['gateway', 'signer', 'admin', 'out'], 'genesis create');
    if (n.threshold === undefined) throw new Error('genesis create needs --threshold');
    const made = await genesisCreate({ threshold: n.threshold, quorum: n.quorum, requireAttestation: n.requireAttestation, gateway: v.gateway!, signers: v.signer!, admins: v.admin!, out: v.out! });
    return report(v.json, { File: made.file, ClusterId: made.clusterId }, `${made.file}: cluster ${made.clusterId}; each founding administrator signs it (mpchsm genesis sign)`);
  }
  if (sub === 'sign' && file && positionals.length === 2) {
    need(v, ['as', 'dir'], 'genesis sign');
    const r = await genesisSign({ file, as: v.as!, dir: v.dir! });
    if (!v.json) console.log(describeGenesis(r.genesis));
    return report(
      v.json,
      { File: file, Signed: v.as, Missing: r.missing, CredentialsFile: r.env },
      `${file}: signed by ${v.as}; ${r.missing.length > 0 ? `still to sign: ${r.missing.join(', ')}` : 'every founding administrator has signed: the parties can start'}`,
    );
  }
  throw new Error("genesis takes 'create …' or 'sign FILE --as NAME --dir A'");
}

/** What an administrator signed, for them to compare with what the parties told them. */
function describeGenesis(g: Genesis): string {
  const fp = (i: PublicIdentity) => fingerprint(i).slice(0, 16);
  return [
    `cluster ${g.clusterId}: threshold ${g.threshold} of ${g.signers.length} signers; administrators ${g.administrators.map((a) => a.name).join(', ')}`,
    `  gateway   ${g.gateway.kms}, PKCS#11 ${g.gateway.pkcs11}, fingerprint ${fp(g.gateway.identity)}…`,
    ...g.signers.map((s) => `  ${s.name.padEnd(9)} party ${s.id}, ${s.endpoint}, fingerprint ${fp(s.identity)}…`),
  ].join('\n');
}

/** `mpchsm signer|gateway init|start|stop`. */
export async function partyCommand(kind: PartyKind, positionals: string[], v: Values): Promise<void> {
  const [sub] = positionals;
  if (positionals.length !== 1) throw new Error(`${kind} takes one of init, start, stop`);
  need(v, ['dir'], `${kind} ${sub}`);
  const dir = v.dir!;
  if (sub === 'stop') {
    const stopped = await stopParty(kind, dir);
    return report(v.json, { Stopped: stopped }, stopped ? `the ${kind} in ${dir} stopped` : `no ${kind} runs from ${dir}`);
  }
  if (sub === 'init' && v.recover) {
    if (kind !== 'gateway') throw new Error('--recover is for gateway init');
    need(v, ['genesis'], 'gateway init --recover');
    const secret = await passphrase();
    const pub = await recoverGatewayDir(path.resolve(dir), v.genesis!, secret).finally(() => secret.fill(0));
    return report(v.json, { Recovering: true, Kms: pub.Kms, Fingerprint: fingerprint(pub.Identity) }, `${dir}: ready to recover; the next 'gateway start' rebuilds keys, policies, tags and aliases from the signers`);
  }
  if (sub === 'init') {
    need(v, ['listen'], `${kind} init`);
    if ((v.tcti !== undefined || v.pcrs !== undefined) && (kind !== 'signer' || v.seal !== 'tpm')) throw new Error('--tcti and --pcrs go with signer init --seal tpm');
    if (kind === 'signer' && v.seal === 'tpm') {
      const r = await signerInit({ dir, name: v.name ?? '', listen: v.listen!, seal: 'tpm', tcti: v.tcti ?? DEFAULT_TCTI, pcrs: v.pcrs });
      return report(v.json, { Name: v.name, File: r.file, Fingerprint: r.fingerprint }, `${r.file}: ${v.name}'s public file (identity fingerprint ${r.fingerprint}), for the genesis; the store is sealed to the TPM`);
    }
    const secret = await passphrase();
    try {
      if (kind === 'signer') {
        const r = await signerInit({ dir, name: v.name ?? '', listen: v.listen!, seal: v.seal ?? 'software' }, secret);
        return report(v.json, { Name: v.name, File: r.file, Fingerprint: r.fingerprint }, `${r.file}: ${v.name}'s public file (identity fingerprint ${r.fingerprint}), for the genesis`);
      }
      const r = await gatewayInit({ dir, listen: v.listen!, p11Listen: v['p11-listen'], tlsCert: v['tls-cert'], tlsKey: v['tls-key'] }, secret);
      return report(v.json, { File: r.file, Kms: r.public.Kms, Pkcs11: r.public.Pkcs11, Fingerprint: fingerprint(r.public.Identity) }, `${r.file}: the gateway's public file (KMS at ${r.public.Kms}), for the genesis`);
    } finally {
      secret.fill(0);
    }
  }
  if (sub === 'start') {
    need(v, ['genesis'], `${kind} start`);
    // A TPM-sealed signer's store opens with the TPM alone (`--tcti`: reached otherwise than its header says).
    const tpm = kind === 'signer' && (await isTpmSealed(signerPaths(path.resolve(dir)).store));
    if (v.tcti !== undefined && !tpm) throw new Error('--tcti goes with signer start of a TPM-sealed signer');
    const secret = tpm ? new Uint8Array(0) : await passphrase();
    const started = await startParty({ kind, dir, genesis: v.genesis!, secret: Buffer.from(secret).toString('utf8'), detach: v.detach ?? false, tcti: v.tcti }).finally(() => secret.fill(0));
    report(v.json, { Name: started.name, Pid: started.child.pid, Url: started.url }, `${started.name} ready at ${started.url} (pid ${started.child.pid})`);
    if (v.detach) return void started.child.unref();
    await holdForeground([started], (s, how) => console.log(`${s.name} exited (${how})`));
    return;
  }
  throw new Error(`${kind} takes one of init, start, stop`);
}

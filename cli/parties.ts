// The parties' own commands (shared/CONTRACT.md, "Deployment across hosts"): each makes its own
// secrets in its own directory and writes a public file; `genesis create` gathers the public
// files, each founding administrator signs. Only public files travel; no command here reads
// another party's directory. `mpchsm up` is built from these same functions.
import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { ed25519 } from '@noble/curves/ed25519.js';
import { z } from 'zod';
import { writeFileAtomic } from '../contract/io/atomic.js';
import { readJsonFile } from '../contract/io/json-file.js';
import type { ScryptParams } from '../contract/io/seal.js';
import { fromHex, toHex } from '../contract/bytes.js';
import { adminFile, ADMIN_NAME_RE, createGenesis, genesisFileSchema, signGenesis, signerFileSchema, verifyGenesisFile, type Genesis, type GatewayFile, type SignerFile } from '../policy/index.js';
import { initSigner } from '../signers/node/init.js';
import { initGateway } from '../gateway/init.js';
import { newCredentials, newPrincipal, type NewPrincipal } from '../gateway/principals.js';
import { pkcs11ModuleConf } from '../gateway/init.js';
import { approvalKeyFile } from './approve.js';
import { formatEnvFile, principalEnvVars } from './env-file.js';
import { enrol, refuseExisting } from './enrolment.js';

const json = (v: unknown) => Buffer.from(JSON.stringify(v, null, 2) + '\n');
const credentialsSchema = z.strictObject({ accessKeyId: z.string(), secretAccessKey: z.string(), pin: z.string() });
export const credentialsFile = (dir: string, name: string) => path.join(dir, `${name}.credentials.json`);

function checkName(name: string, re: RegExp, what: string): void {
  if (!re.test(name)) throw new Error(`'${name}' is not ${what}`);
}

/** `admin init --dir A --name NAME`: approval key and KMS credentials in A (0700); the public A/NAME.admin.json. */
export async function adminInit(dir: string, name: string): Promise<{ file: string }> {
  checkName(name, ADMIN_NAME_RE, 'an administrator name (1-64 of A-Z a-z 0-9 _ . @ -)');
  const A = path.resolve(dir);
  const file = path.join(A, `${name}.admin.json`);
  const keyFile = path.join(A, `${name}.approval.key`);
  for (const f of [file, keyFile, credentialsFile(A, name)]) refuseExisting(f, name);
  await mkdir(A, { recursive: true, mode: 0o700 });
  const secret = ed25519.utils.randomSecretKey();
  try {
    await writeFileAtomic(credentialsFile(A, name), json(newCredentials()), 0o600);
    await writeFileAtomic(keyFile, Buffer.from(toHex(secret) + '\n'), 0o600);
    await writeFileAtomic(file, json(adminFile(name, secret)), 0o644);
  } finally {
    secret.fill(0);
  }
  return { file };
}

/**
 * `signer init --dir S --name NAME --listen HOST:PORT [--seal software|tpm] [--tcti T] [--pcrs SEL]`:
 * the sealed store (under `secret`, or sealed to the TPM) and identity; the public S/NAME.signer.json.
 */
export async function signerInit(o: { dir: string; name: string; listen: string; seal: string; tcti?: string | undefined; pcrs?: string | undefined }, secret?: Uint8Array, scrypt?: ScryptParams): Promise<{ file: string; fingerprint: string }> {
  checkName(o.name, /^[a-z0-9-]{1,32}$/, 'a signer name (1-32 of a-z 0-9 -)');
  if (o.seal !== 'software' && o.seal !== 'tpm') throw new Error(`--seal is software or tpm, not '${o.seal}'`);
  if (o.seal === 'software' ? !secret : o.tcti === undefined) throw new Error(o.seal === 'software' ? 'a software seal needs the passphrase' : 'a TPM seal needs its TCTI');
  const endpoint = `https://${hostPort('--listen', o.listen)}`;
  const S = path.resolve(o.dir);
  const file = path.join(S, `${o.name}.signer.json`);
  refuseExisting(file, o.name);
  const { identity, attestation } = await initSigner(S, o.name, o.seal === 'software' ? secret! : { tcti: o.tcti!, pcrs: o.pcrs }, undefined, scrypt);
  const pub: SignerFile = signerFileSchema.parse({ Signer: 'mpchsm-signer-v1', Name: o.name, Endpoint: endpoint, Identity: identity, Seal: o.seal, ...(attestation ? { Attestation: attestation } : {}) });
  await writeFileAtomic(file, json(pub), 0o644);
  return { file, fingerprint: identity.fingerprint };
}

/** `gateway init --dir G --listen HOST:PORT [--p11-listen HOST:PORT] [--tls-cert F --tls-key F]`. */
export async function gatewayInit(o: { dir: string; listen: string; p11Listen?: string | undefined; tlsCert?: string | undefined; tlsKey?: string | undefined }, secret: Uint8Array, scrypt?: ScryptParams): Promise<{ file: string; public: GatewayFile }> {
  const G = path.resolve(o.dir);
  const file = path.join(G, 'gateway.json');
  refuseExisting(file, 'the gateway');
  if (!o.tlsCert !== !o.tlsKey) throw new Error('--tls-cert and --tls-key go together');
  const kms = split(hostPort('--listen', o.listen));
  const pkcs11 = o.p11Listen ? split(hostPort('--p11-listen', o.p11Listen)) : { host: kms.host, port: kms.port + 100 };
  const pub = await initGateway(G, { kms, pkcs11, ...(o.tlsCert && o.tlsKey ? { tls: { cert: path.resolve(o.tlsCert), key: path.resolve(o.tlsKey) } } : {}) }, secret, scrypt);
  return { file, public: pub };
}

/** `genesis create`: the unsigned founding document from the parties' public files. */
export async function genesisCreate(o: { threshold: number; quorum?: number | undefined; requireAttestation?: boolean | undefined; gateway: string; signers: string[]; admins: string[]; out: string }): Promise<{ file: string; clusterId: string }> {
  const read = (f: string) => readJsonFile(f, z.unknown());
  const clusterId = `mpchsm-${randomBytes(6).toString('hex')}`;
  const file = createGenesis({ clusterId, threshold: o.threshold, ...(o.quorum === undefined ? {} : { quorum: o.quorum }), ...(o.requireAttestation ? { requireAttestation: true } : {}), gateway: read(o.gateway), signers: o.signers.map(read), admins: o.admins.map(read) });
  await writeFileAtomic(path.resolve(o.out), json(file), 0o644);
  return { file: path.resolve(o.out), clusterId };
}

/**
 * `genesis sign FILE --as NAME --dir A`: NAME's signature, with their KMS secrets sealed to each
 * signer of the genesis; writes the file back, keeps a copy in A (the governance this
 * administrator's tools trust) and A/NAME.env.
 */
export async function genesisSign(o: { file: string; as: string; dir: string }): Promise<{ missing: string[]; env: string; genesis: Genesis }> {
  const A = path.resolve(o.dir);
  if (!existsSync(credentialsFile(A, o.as))) throw new Error(`${A} holds no credentials of ${o.as} (made by 'mpchsm admin init --dir ${o.dir} --name ${o.as}')`);
  const raw = readJsonFile(o.file, genesisFileSchema);
  const g = verifyGenesisFile(raw, { complete: false });
  const made = newPrincipal(o.as, 'admin', g.pinKdf, readJsonFile(credentialsFile(A, o.as), credentialsSchema));
  const enrolment = enrol(made, g.signers.map((s) => ({ party: s.id, identity: s.identity })));
  const secret = fromHex(readFileSync(approvalKeyFile(A, o.as), 'utf8').trim());
  let signed;
  try {
    signed = signGenesis(raw, o.as, secret, enrolment);
  } finally {
    secret.fill(0);
  }
  await writeFileAtomic(path.resolve(o.file), json(signed), 0o644);
  await writeFileAtomic(path.join(A, 'genesis.json'), json(signed), 0o644);
  const env = await writePrincipalEnv(A, g, made.credentials);
  const signedBy = new Set(signed.Signatures.map((s) => s.Admin));
  return { missing: g.administrators.map((a) => a.name).filter((n) => !signedBy.has(n)), env, genesis: g };
}

/**
 * A principal's P/NAME.env on its own host: the KMS endpoint (and the certificate to trust), the
 * PKCS#11 module with a configuration in P naming the gateway.
 */
export async function writePrincipalEnv(dir: string, g: Pick<Genesis, 'gateway' | 'region'>, c: NewPrincipal): Promise<string> {
  const P = path.resolve(dir);
  const ca = path.join(P, 'gateway-ca.pem');
  if (g.gateway.certificate) await writeFileAtomic(ca, Buffer.from(g.gateway.certificate), 0o644);
  const conf = pkcs11ModuleConf(g.gateway.pkcs11, path.join(P, 'pkcs11.log'), g.gateway.certificate ? ca : undefined);
  const confs = { pkcs11Conf: path.join(P, 'pkcs11.conf'), pkcs11OpensslConf: path.join(P, 'pkcs11-openssl.conf') };
  await writeFileAtomic(confs.pkcs11Conf, Buffer.from(conf), 0o644);
  await writeFileAtomic(confs.pkcs11OpensslConf, Buffer.from(`${conf}key_types = rsa ec\n`), 0o644);
  const file = path.join(P, `${c.name}.env`);
  await writeFileAtomic(file, Buffer.from(formatEnvFile(principalEnvVars(c, { kms: g.gateway.kms, region: g.region, ...(g.gateway.certificate ? { caBundle: ca } : {}) }, confs))), 0o600);
  return file;
}

function hostPort(option: string, v: string): string {
  const m = /^([A-Za-z0-9.-]{1,253}):(\d{1,5})$/.exec(v);
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) throw new Error(`${option} takes HOST:PORT, not '${v}'`);
  return v;
}
const split = (hp: string) => ({ host: hp.slice(0, hp.lastIndexOf(':')), port: Number(hp.slice(hp.lastIndexOf(':') + 1)) });

// Helpers for tests against a real cluster with its governance: administrators' approvals
// through `mpchsm approve`, and direct calls to the signers with the gateway's own identity
// (what a compromised gateway can do), with evidence made the way real clients make it.
import { constants, createPublicKey, randomUUID, verify } from 'node:crypto';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CreateKeyCommand, GetPublicKeyCommand, KMSClient, SignCommand, type CreateKeyCommandInput } from '@aws-sdk/client-kms';
import { expect } from 'vitest';
import { loadGatewayConfig } from '../../gateway/config.js';
import { SignerClient, SignerRefusedError } from '../../gateway/signer-client.js';
import { sigv4Evidence, type Evidence } from '../../policy/index.js';
import { loadIdentity, type IdentitySecrets } from '../../contract/identity/identity.js';
import { ShareStore } from '../../contract/io/sealed-store.js';
import type { SignerChange } from '../../contract/signer-rpc/authority.js';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';
import { frostAggregate, frostSigningPackage } from '../../signers/protocols/frost.js';
import type { Message } from '../../signers/protocols/common.js';
import { publicPackageSchema } from '../../signers/protocols/dkg.js';
import { copyLiveDir, startCluster, type TestCluster } from '../helpers/cluster.js';
import { signRequest } from '../kms/sign-request.js';

export function kms(tc: TestCluster, name: string): KMSClient {
  const p = tc.principal(name);
  return new KMSClient({ endpoint: p.MPCHSM_KMS_ENDPOINT, region: p.AWS_REGION, credentials: { accessKeyId: p.AWS_ACCESS_KEY_ID, secretAccessKey: p.AWS_SECRET_ACCESS_KEY }, maxAttempts: 1 });
}

/** The error a call fails with (fails the test if it succeeds). */
export async function failure(p: Promise<unknown>): Promise<{ name: string; message: string }> {
  const e = await p.then(
    () => undefined,
    (err: { name: string; message: string }) => err,
  );
  expect(e, 'the call should have failed').toBeDefined();
  return { name: e!.name, message: e!.message };
}

/** The proposal an AccessDeniedException names. */
export function proposalIn(e: { name: string; message: string }): string {
  expect(e.name).toBe('AccessDeniedException');
  const id = /Proposal (p-[0-9a-f]+) holds this request/.exec(e.message)?.[1];
  expect(id, e.message).toBeDefined();
  expect(e.message).toContain(`mpchsm approve ${id} --as <administrator>`);
  return id!;
}

/** `mpchsm approve ID --as NAME --json`: the gateway's answer. */
export async function approve(tc: TestCluster, id: string, as: string): Promise<{ Status: string; Approvals: string[]; Required: number; Result?: Record<string, unknown>; Signers?: { signer: string; applied: boolean; reason?: string }[] }> {
  const { stdout } = await tc.mpchsm('approve', id, '--as', as, '--dir', tc.dir, '--json');
  return JSON.parse(stdout);
}

/**
 * Runs a request under quorum: refused with a proposal (the proposer's request counting as its
 * approval), approved by `approvers` in turn until it is executed.
 */
export async function approved(tc: TestCluster, request: Promise<unknown>, approvers: string[]): Promise<Record<string, unknown>> {
  const id = proposalIn(await failure(request));
  let last: Awaited<ReturnType<typeof approve>> | undefined;
  for (const a of approvers) {
    last = await approve(tc, id, a);
    if (last.Status === 'Executed') break;
    expect(last.Status, `after ${a}'s approval`).toBe('Pending');
  }
  expect(last?.Status).toBe('Executed');
  for (const s of last?.Signers ?? []) expect(s, `signer ${s.signer} applied the change`).toMatchObject({ applied: true });
  return last!.Result ?? {};
}

/** CreateKey as admin1: the default governance asks one approval, which admin1's request is. */
export async function createKey(tc: TestCluster, input: CreateKeyCommandInput): Promise<string> {
  return (await kms(tc, 'admin1').send(new CreateKeyCommand(input))).KeyMetadata!.KeyId!;
}

/** A key policy for signing keys that need `approvals` per-signature approvals (see signingPolicy). */
export const perSignaturePolicy = (account: string, approvals: number): string => signingPolicy(account, { approvalsPerSignature: approvals });

/** A signing key's policy with an `mpchsm` block: the administrators manage the key, `app` signs and verifies. */
export function signingPolicy(account: string, mpchsm: object): string {
  const user = (n: string) => `arn:aws:iam::${account}:user/${n}`;
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      { Effect: 'Allow', Principal: { AWS: ['admin1', 'admin2', 'admin3'].map(user) }, Action: 'kms:*', Resource: '*' },
      { Effect: 'Allow', Principal: { AWS: user('app') }, Action: ['kms:Sign', 'kms:Verify', 'kms:DescribeKey', 'kms:GetPublicKey'], Resource: '*' },
    ],
    mpchsm,
  });
}

/** A key's public key (DER SubjectPublicKeyInfo), as the application reads it. */
export const publicKeyOf = async (tc: TestCluster, keyId: string): Promise<Uint8Array> => (await kms(tc, 'app').send(new GetPublicKeyCommand({ KeyId: keyId }))).PublicKey!;

/** An Ed25519, a P-256 and an RSA signing key with their public keys: what the resharing tests start from. */
export async function createKeyTrio(tc: TestCluster): Promise<{ keys: Record<'ed' | 'ec' | 'rsa', string>; publicKeys: Record<string, Uint8Array> }> {
  const keys = {
    ed: await createKey(tc, { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' }),
    ec: await createKey(tc, { KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }),
    rsa: await createKey(tc, { KeySpec: 'RSA_2048', KeyUsage: 'SIGN_VERIFY' }),
  };
  const publicKeys: Record<string, Uint8Array> = {};
  for (const id of Object.values(keys)) publicKeys[id] = await publicKeyOf(tc, id);
  return { keys, publicKeys };
}

/** Signs `message` with a key as principal `as` and verifies the signature with node:crypto against `publicKey`. */
export async function signsAndVerifies(tc: TestCluster, keyId: string, publicKey: Uint8Array, algorithm: 'ED25519_SHA_512' | 'ECDSA_SHA_256' | 'RSASSA_PSS_SHA_256', message: Uint8Array, as = 'app'): Promise<boolean> {
  const r = await kms(tc, as).send(new SignCommand({ KeyId: keyId, Message: message, MessageType: 'RAW', SigningAlgorithm: algorithm }));
  const key = createPublicKey({ key: Buffer.from(publicKey), format: 'der', type: 'spki' });
  if (algorithm === 'ED25519_SHA_512') return verify(null, message, key, r.Signature!);
  if (algorithm === 'ECDSA_SHA_256') return verify('sha256', message, key, r.Signature!);
  return verify('sha256', message, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, r.Signature!);
}

// ---- a compromised gateway ------------------------------------------------------------------

/** The gateway's identity, read from its sealed store with its operator secret. */
export async function gatewayIdentity(tc: TestCluster): Promise<IdentitySecrets> {
  const store = await ShareStore.open(path.join(tc.dir, 'gateway', 'store'), readFileSync(path.join(tc.dir, 'operators', 'gateway.secret'), 'utf8'));
  try {
    return await loadIdentity(store);
  } finally {
    store.close();
  }
}

/** RPC clients for every signer, speaking with the gateway's identity. */
export function signerClients(tc: TestCluster, identity: IdentitySecrets): SignerClient[] {
  return loadGatewayConfig(path.join(tc.dir, 'gateway')).signers.map((s) => new SignerClient(s, identity, 10_000));
}

/** A cluster for one suite, and clients to its signers speaking as its gateway (a compromised one). */
export async function startWithSigners(): Promise<{ tc: TestCluster; signers: SignerClient[] }> {
  const tc = await startCluster();
  return { tc, signers: signerClients(tc, await gatewayIdentity(tc)) };
}

/** Stops what startWithSigners started. */
export async function stopWithSigners(tc: TestCluster | undefined, signers: SignerClient[] | undefined): Promise<void> {
  for (const c of signers ?? []) c.close();
  await tc?.destroy();
}

/** The refusal a signer answers (fails the test if the signer complies). */
export async function refusal(p: Promise<unknown>): Promise<SignerRefusedError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e, 'the signer should have refused').toBeInstanceOf(SignerRefusedError);
  return e as SignerRefusedError;
}

/** A signer's next change number (it says so when asked out of order); `keyId`: any key it holds. */
export async function nextSeq(c: SignerClient, keyId: string): Promise<number> {
  const e = await refusal(c.call(signerRoutes.policy.apply, { seq: 1e12, keyId, operation: 'EnableKey', parameters: { KeyId: keyId } }));
  return Number(/expected change (\d+)/.exec(e.message)![1]);
}

/** Sends a change to each of `signers` in turn, numbered as each expects; resolves each refusal. */
export async function refusedEverywhere(signers: SignerClient[], keyId: string, change: object): Promise<string[]> {
  const out: string[] = [];
  // As a lying gateway would send it: whatever the test made, numbered.
  for (const c of signers) out.push((await refusal(c.call(signerRoutes.policy.apply, { ...change, seq: await nextSeq(c, keyId) } as SignerChange))).message);
  return out;
}

/** An application's signed KMS request, as the SDK makes it, and its evidence form. */
export async function appRequest(tc: TestCluster, target: string, body: object, as = 'app'): Promise<Evidence> {
  const p = tc.principal(as);
  const host = new URL(tc.endpoint).host;
  // A signed random id, as the SDKs send: two identical requests in one second still differ.
  const signed = await signRequest({ accessKeyId: p.AWS_ACCESS_KEY_ID, secretAccessKey: p.AWS_SECRET_ACCESS_KEY }, { host, target, body: JSON.stringify(body), headers: { 'amz-sdk-invocation-id': randomUUID() } });
  return sigv4Evidence({ method: 'POST', path: '/', headers: signed.headers, body: signed.body });
}

/** The `use` member of a signing request (see signers/node/guard/use.ts). */
export const signUse = (message: Uint8Array, evidence: unknown, extra: object = {}) => ({
  operation: 'Sign',
  algorithm: 'ED25519_SHA_512',
  messageType: 'RAW',
  payload: Buffer.from(message).toString('base64'),
  evidence,
  ...extra,
});

/** A whole FROST signing session run by hand with `signers`; resolves the signature. */
export async function frostSession(tc: TestCluster, signers: SignerClient[], keyId: string, message: Uint8Array, use: unknown): Promise<Uint8Array> {
  const record = JSON.parse(readFileSync(path.join(tc.dir, 'gateway', 'keys', `${keyId}.json`), 'utf8'));
  const pub = publicPackageSchema.parse(record.frost);
  const session = randomUUID();
  const ids = signers.map((c) => c.id);
  const commits: Message[] = [];
  for (const c of signers) {
    const r = await c.call(signerRoutes.frost.commit, { session, keyId, signers: ids, use });
    commits.push({ session, round: 1, from: c.id, to: 'all', payload: r.commitment });
  }
  const pkg = frostSigningPackage(pub, { session, suite: 'ed25519', message }, ids, commits);
  const shares: Message[] = [];
  for (const c of signers) shares.push({ session, round: 2, from: c.id, to: 'all', payload: (await c.call(signerRoutes.frost.sign, { session, keyId, package: pkg })).share });
  return frostAggregate(pub, pkg, shares);
}

/** A signer's sealed policy registry, read from a copy of its store (the signer keeps running). */
export async function signerRegistry(tc: TestCluster, signer: string): Promise<{ clusterId: string; principals: { name: string; secretAccessKey?: string; pinRequestKey?: string }[] }> {
  return JSON.parse(Buffer.from((await signerRecord(tc, signer, (store) => store.get('policy.registry')))!).toString('utf8'));
}

/** Reads from a copy of a signer's sealed store (the signer keeps running). */
export async function signerRecord<T>(tc: TestCluster, signer: string, read: (store: ShareStore) => Promise<T>): Promise<T> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'mpchsm-store-copy-'));
  try {
    const copy = path.join(tmp, 'store');
    copyLiveDir(path.join(tc.dir, 'signers', signer, 'store'), copy);
    chmodSync(copy, 0o700);
    for (const f of readdirSync(copy)) chmodSync(path.join(copy, f), 0o600);
    const store = await ShareStore.open(copy, readFileSync(path.join(tc.dir, 'operators', `${signer}.secret`), 'utf8'));
    try {
      return await read(store);
    } finally {
      store.close();
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Entries of a party's audit log. */
export const auditEntries = (tc: TestCluster, party: string): Record<string, unknown>[] =>
  readFileSync(path.join(tc.dir, party === 'gateway' ? 'gateway' : path.join('signers', party), 'audit.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

/** A SigV4-signed JSON 1.1 call to the gateway as `as`: status and body. */
export async function gatewayCall(tc: TestCluster, as: string, target: string, body: object): Promise<{ status: number; body: Record<string, unknown> }> {
  const p = tc.principal(as);
  const signed = await signRequest(
    { accessKeyId: p.AWS_ACCESS_KEY_ID, secretAccessKey: p.AWS_SECRET_ACCESS_KEY },
    { host: new URL(tc.endpoint).host, target, body: JSON.stringify(body), headers: { 'amz-sdk-invocation-id': randomUUID() } },
  );
  const { host: _host, ...headers } = signed.headers;
  const res = await fetch(`${tc.endpoint}/`, { method: 'POST', headers, body: signed.body });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

// The compromised-gateway suite for symmetric keys (issue #22): the test holds the gateway's
// identity and asks real signers for threshold-PRF partials itself (route tprf.evaluate), with
// applications' genuinely signed requests and no principal's secret of its own. Each signer
// derives the PRF input from the client's request — the blob header of a Decrypt, a nonce from
// the SigV4 signature of an Encrypt/GenerateDataKey, the request's encryption context — so the
// gateway obtains the data key of exactly the blob and context a client asked about: it cannot
// decrypt with no request, another operation's request, another key (an alias included), a dry
// run, a principal the key does not allow, a request it edited or dated ahead; cannot turn an Encrypt or GenerateDataKey into the
// data key of an existing blob, whichever material of a rotated key it names; a repeat of a
// Decrypt is that request again, and a sealing request repeated with another material is
// refused; a rotation's material is never overwritten by a second key generation for its id;
// ReEncrypt is checked at each key for its own half.
import { randomInt, randomUUID } from 'node:crypto';
import { canonicalJson } from '../../contract/canonical.js';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { CreateAliasCommand, DecryptCommand, DisableKeyCommand, EncryptCommand, PutKeyPolicyCommand, RotateKeyOnDemandCommand } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SignerClient } from '../../gateway/signer-client.js';
import { encodeHeader, openBlob, parseBlob, prfInput, sealBlob, type EncryptionContext } from '../../contract/keys/ciphertext.js';
import { digestHex } from '../../contract/signer-rpc/released.js';
import type { Relayed } from '../../contract/signer-rpc/relayed.js';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';
import { requestSignature, sealNonce, sigv4Evidence, type Evidence, type SymmetricOperation } from '../../policy/index.js';
import { inboxOf, ProtocolError } from '../../signers/protocols/common.js';
import { publicPackageSchema } from '../../signers/protocols/dkg.js';
import { tprfCombine } from '../../signers/protocols/tprf.js';
import type { TestCluster } from '../helpers/cluster.js';
import { signRequest } from '../kms/sign-request.js';
import { appRequest, approved, auditEntries, createKey, kms, refusal, signUse, startWithSigners, stopWithSigners } from './helpers.js';

let tc: TestCluster;
let signers: SignerClient[];
const keys = { a: '', b: '', revoked: '', encDec: '', limited: '', rotated: '', ed: '' };

const text = (s: string) => new TextEncoder().encode(s);
const b64 = (b: Uint8Array | string) => Buffer.from(b).toString('base64');
const context: EncryptionContext = { tenant: '7', purpose: 'payroll' };
const SYMMETRIC = { KeySpec: 'SYMMETRIC_DEFAULT', KeyUsage: 'ENCRYPT_DECRYPT' } as const;

/** A key policy: the administrators manage the key; `app` may do `appActions` (none: the policy names no app). */
function keyPolicy(appActions: string[], mpchsm?: object): string {
  const account = JSON.parse(readFileSync(path.join(tc.dir, 'gateway', 'config.json'), 'utf8')).account as string;
  const user = (n: string) => `arn:aws:iam::${account}:user/${n}`;
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      { Effect: 'Allow', Principal: { AWS: ['admin1', 'admin2', 'admin3'].map(user) }, Action: 'kms:*', Resource: '*' },
      ...(appActions.length ? [{ Effect: 'Allow', Principal: { AWS: user('app') }, Action: appActions, Resource: '*' }] : []),
    ],
    ...(mpchsm ? { mpchsm } : {}),
  });
}

/** The gateway's ask of one signer: a partial of evaluation `evaluation` of `evidence` with material `material` of `keyId`. */
const evaluate = (c: SignerClient, keyId: string, evidence: unknown, o: { material?: number; evaluation?: number; session?: string } = {}) =>
  c.call(signerRoutes.tprf.evaluate, { keyId, material: o.material ?? 1, session: o.session ?? randomUUID(), evaluation: o.evaluation ?? 0, evidence });

/** The gateway's record of a key: its public packages (what the gateway checks partials with) and its rotations' materials. */
const keyRecord = (keyId: string) => JSON.parse(readFileSync(path.join(tc.dir, 'gateway', 'keys', `${keyId}.json`), 'utf8')) as { frost: unknown; materials?: { id: number; frost: unknown }[] };
const publicPackage = (keyId: string, material = 1) => {
  const r = keyRecord(keyId);
  return publicPackageSchema.parse(material === 1 ? r.frost : r.materials?.find((m) => m.id === material)?.frost);
};

/** Asks `chosen` for their partials and combines them against `input` (tprfCombine throws on bad partials). */
async function prf(keyId: string, input: Uint8Array, evidence: unknown, o: { chosen?: SignerClient[]; evaluation?: number; material?: number } = {}) {
  const session = randomUUID();
  const partials: unknown[] = [];
  for (const c of o.chosen ?? [signers[0]!, signers[2]!]) partials.push((await evaluate(c, keyId, evidence, { session, evaluation: o.evaluation ?? 0, material: o.material ?? 1 })).partial);
  return tprfCombine(publicPackage(keyId, o.material), session, input, partials);
}

/** The PRF input of an existing blob under `ctx` (the open evaluation). */
const openInput = (blob: Uint8Array, ctx: EncryptionContext) => prfInput(parseBlob(blob).headerBytes, ctx);

/** The header and PRF input of the blob a sealing request makes: its nonce comes from the request's own SigV4 signature. */
function sealed(keyId: string, evidence: Evidence, operation: SymmetricOperation, index: number, ctx: EncryptionContext, material = 1) {
  const headerBytes = encodeHeader({ keyId, material, nonce: sealNonce(requestSignature(evidence)!, operation, index) });
  return { headerBytes, input: prfInput(headerBytes, ctx) };
}

/** The application's own Encrypt through the gateway, as the SDK makes it. */
const encrypted = async (keyId: string, plaintext: string, ctx: EncryptionContext = context) =>
  (await kms(tc, 'app').send(new EncryptCommand({ KeyId: keyId, Plaintext: text(plaintext), EncryptionContext: ctx }))).CiphertextBlob!;

const decryptBody = (blob: Uint8Array, extra: object = {}) => ({ KeyId: keys.a, CiphertextBlob: b64(blob), EncryptionContext: context, ...extra });

/** Every signer refuses the gateway's ask, each saying `why`. */
async function refusedByAll(keyId: string, evidence: unknown, why: RegExp, o: { material?: number; evaluation?: number } = {}): Promise<void> {
  for (const c of signers) expect((await refusal(evaluate(c, keyId, evidence, o))).message, c.name).toMatch(why);
}

beforeAll(async () => {
  ({ tc, signers } = await startWithSigners());
  keys.a = await createKey(tc, SYMMETRIC);
  keys.b = await createKey(tc, SYMMETRIC);
  keys.revoked = await createKey(tc, SYMMETRIC);
  keys.encDec = await createKey(tc, { ...SYMMETRIC, Policy: keyPolicy(['kms:Encrypt', 'kms:Decrypt', 'kms:DescribeKey']) });
  keys.limited = await createKey(tc, { ...SYMMETRIC, Policy: keyPolicy(['kms:Encrypt', 'kms:Decrypt', 'kms:DescribeKey'], { rateLimit: { perMinute: 1, burst: 2 } }) });
  keys.rotated = await createKey(tc, SYMMETRIC);
  keys.ed = await createKey(tc, { KeySpec: 'ECC_NIST_EDWARDS25519', KeyUsage: 'SIGN_VERIFY' });
}, 300_000);

afterAll(() => stopWithSigners(tc, signers));

const requestDigest = (evidence: unknown): string => digestHex(new TextEncoder().encode(canonicalJson(evidence)));

describe('Decrypt: the data key of exactly the blob and context a client asked about', () => {
  it('honest: t signers’ partials for the app’s signed Decrypt combine into the output that opens the blob; each records the release', async () => {
    const blob = await encrypted(keys.a, 'salary table');
    const evidence = await appRequest(tc, 'TrentService.Decrypt', decryptBody(blob));
    const input = openInput(blob, context);
    const r = await prf(keys.a, input, evidence);
    expect(r.faults).toEqual([]);
    expect(r.signers).toEqual([signers[0]!.id, signers[2]!.id]);
    expect(new TextDecoder().decode(openBlob(r.output, blob, context))).toBe('salary table');
    for (const c of [signers[0]!, signers[2]!]) {
      // A symmetric release names the whole client request by its SHA-256 (the gateway's entry does the same).
      const released = auditEntries(tc, c.name).filter((e) => e.keyId === keys.a && e.outcome === 'ok' && e.operation === 'Decrypt' && e.digest === requestDigest(evidence));
      expect(released, c.name).toHaveLength(1);
      expect(released[0], c.name).toMatchObject({ output: 'partial', algorithm: 'tprf-ristretto255', principal: { name: 'app' }, keyRef: keys.a });
    }
    expect(auditEntries(tc, signers[1]!.name).some((e) => e.operation === 'Decrypt' && e.digest === requestDigest(evidence))).toBe(false);
  });

  it('no evidence, or a signed request of another operation (Sign), is refused by every signer', async () => {
    await refusedByAll(keys.a, undefined, /malformed request: evidence/);
    await refusedByAll(keys.a, null, /malformed evidence/);
    const sign = await appRequest(tc, 'TrentService.Sign', { KeyId: keys.a, Message: b64('x'), SigningAlgorithm: 'ED25519_SHA_512' });
    await refusedByAll(keys.a, sign, /the signed request is TrentService\.Sign, not a symmetric key operation/);
  });

  it('a Decrypt pointed at another key, another material, or an evaluation it does not ask for is refused by every signer', async () => {
    const blob = await encrypted(keys.a, 'pointed elsewhere');
    const evidence = await appRequest(tc, 'TrentService.Decrypt', decryptBody(blob));
    await refusedByAll(keys.b, evidence, new RegExp(`the ciphertext is of key ${keys.a}, not this key`));
    const unnamed = await appRequest(tc, 'TrentService.Decrypt', decryptBody(blob, { KeyId: undefined }));
    await refusedByAll(keys.b, unnamed, new RegExp(`the ciphertext is of key ${keys.a}, not this key`));
    // The client named key b for a blob of key a: no signer opens it with either key.
    const named = await appRequest(tc, 'TrentService.Decrypt', decryptBody(blob, { KeyId: keys.b }));
    await refusedByAll(keys.a, named, new RegExp(`the request names key "${keys.b}", not the ciphertext's key`));
    // An Encrypt through an alias is used only for the key the alias names at the signers.
    await kms(tc, 'admin1').send(new CreateAliasCommand({ AliasName: 'alias/ledger-b', TargetKeyId: keys.b }));
    const viaAlias = await appRequest(tc, 'TrentService.Encrypt', { KeyId: 'alias/ledger-b', Plaintext: b64('x'), EncryptionContext: context });
    await refusedByAll(keys.a, viaAlias, /the request names key "alias\/ledger-b", not this key/);
    expect((await prf(keys.b, sealed(keys.b, viaAlias, 'Encrypt', 0, context).input, viaAlias)).faults).toEqual([]);
    await refusedByAll(keys.a, evidence, /holds no share of material 2 of key/, { material: 2 });
    await refusedByAll(keys.a, evidence, /the Decrypt request asks for 1 evaluation\(s\), not #1/, { evaluation: 1 });
  });

  it('a dry run, a key administrator’s request and an app the key’s policy does not name are refused by every signer', async () => {
    const blob = await encrypted(keys.a, 'dry');
    await refusedByAll(keys.a, await appRequest(tc, 'TrentService.Decrypt', decryptBody(blob, { DryRun: true })), /the request is a dry run/);
    await refusedByAll(keys.a, await appRequest(tc, 'TrentService.Decrypt', decryptBody(blob), 'admin1'), /principal admin1 is not allowed kms:Decrypt.*key administrators never sign or decrypt/);

    // The app encrypted while the key allowed it; then the policy came to name no app.
    const old = await encrypted(keys.revoked, 'before the policy changed');
    await approved(tc, kms(tc, 'admin1').send(new PutKeyPolicyCommand({ KeyId: keys.revoked, PolicyName: 'default', Policy: keyPolicy([]) })), ['admin1', 'admin2']);
    const decrypt = await appRequest(tc, 'TrentService.Decrypt', { CiphertextBlob: b64(old), EncryptionContext: context });
    await refusedByAll(keys.revoked, decrypt, /principal app is not allowed kms:Decrypt on key .*: the key policy grants .* no kms:Decrypt/);
    const encrypt = await appRequest(tc, 'TrentService.Encrypt', { KeyId: keys.revoked, Plaintext: b64('new'), EncryptionContext: context });
    await refusedByAll(keys.revoked, encrypt, /principal app is not allowed kms:Encrypt on key .*: the key policy grants .* no kms:Encrypt/);
  }, 120_000);

  it('a gateway that edits the client’s request (its context or its ciphertext) fails the SigV4 check at every signer', async () => {
    const blob = await encrypted(keys.a, 'the real one');
    const other = await encrypted(keys.a, 'one no client asked to decrypt');
    const evidence = (await appRequest(tc, 'TrentService.Decrypt', decryptBody(blob))) as Extract<Evidence, { kind: 'sigv4' }>;
    const edited = (body: object) => ({ ...evidence, body: b64(JSON.stringify(body)) });
    const why = /SigV4 signature does not verify|x-amz-content-sha256 does not match the body/;
    await refusedByAll(keys.a, edited(decryptBody(blob, { EncryptionContext: { tenant: '8', purpose: 'payroll' } })), why);
    await refusedByAll(keys.a, edited(decryptBody(blob, { EncryptionContext: {} })), why);
    await refusedByAll(keys.a, edited(decryptBody(other)), why);
    // Nor can it hold a request back for later, or date one ahead: more than 5 minutes is refused.
    const p = tc.principal('app');
    const later = await signRequest(
      { accessKeyId: p.AWS_ACCESS_KEY_ID, secretAccessKey: p.AWS_SECRET_ACCESS_KEY },
      { host: new URL(tc.endpoint).host, target: 'TrentService.Decrypt', body: JSON.stringify(decryptBody(blob)), date: new Date(Date.now() + 6 * 60_000) },
    );
    await refusedByAll(keys.a, sigv4Evidence({ method: 'POST', path: '/', headers: later.headers, body: later.body }), /more than 5 minutes from/);
    // The unedited request still works: the refusals were for the edits.
    expect(openBlob((await prf(keys.a, openInput(blob, context), evidence)).output, blob, context)).toEqual(text('the real one'));
  });
});

describe('Encrypt and GenerateDataKey give no existing blob’s data key', () => {
  for (const operation of ['Encrypt', 'GenerateDataKey'] as const) {
    it(`${operation}: the partials are for the input the signers derive from the request’s signature, not the existing blob’s`, async () => {
      const victim = await encrypted(keys.a, 'existing secret');
      const body = operation === 'Encrypt' ? { KeyId: keys.a, Plaintext: b64('anything'), EncryptionContext: context } : { KeyId: keys.a, KeySpec: 'AES_256', EncryptionContext: context };
      const evidence = await appRequest(tc, `TrentService.${operation}`, body);
      const session = randomUUID();
      const partials: unknown[] = [];
      for (const c of [signers[0]!, signers[1]!]) partials.push((await evaluate(c, keys.a, evidence, { session })).partial);
      // Against the existing blob's input every partial's proof fails, each naming its signer.
      let fault: unknown;
      try {
        tprfCombine(publicPackage(keys.a), session, openInput(victim, context), partials);
      } catch (e) {
        fault = e;
      }
      expect(fault).toBeInstanceOf(ProtocolError);
      expect(fault).toMatchObject({ code: 'bad-partial', sender: signers[0]!.id });
      // Against the input derived from the request they combine, into a key that does not open the victim …
      const own = sealed(keys.a, evidence, operation, 0, context);
      const r = tprfCombine(publicPackage(keys.a), session, own.input, partials);
      expect(r.faults).toEqual([]);
      expect(() => openBlob(r.output, victim, context)).toThrow(/does not match/);
      // … but seals a blob the app's own Decrypt through the gateway opens: it is that request's blob.
      const blob = sealBlob(r.output, own.headerBytes, context, text('sealed by hand'));
      const dec = await kms(tc, 'app').send(new DecryptCommand({ CiphertextBlob: blob, EncryptionContext: context }));
      expect(dec.Plaintext).toEqual(text('sealed by hand'));
    });
  }

  it('the gateway cannot choose the nonce: whatever it sends beside the evidence, a signer evaluates the same input or refuses', async () => {
    const evidence = await appRequest(tc, 'TrentService.Encrypt', { KeyId: keys.a, Plaintext: b64('x'), EncryptionContext: context });
    const c = signers[1]!;
    const first = (await evaluate(c, keys.a, evidence)).partial as { payload: { evaluated: string } };
    const second = (await evaluate(c, keys.a, evidence, { session: randomUUID() })).partial as { payload: { evaluated: string } };
    // k_i·HashToGroup(input): the same element in another session, so the same input.
    expect(second.payload.evaluated).toBe(first.payload.evaluated);
    // A material the key does not have is refused (a rotated key's older material names another
    // header, with the same nonce: see 'rotation').
    await refusedByAll(keys.a, evidence, /holds no share of material 2 of key/, { material: 2 });
    await refusedByAll(keys.a, evidence, /the Encrypt request asks for 1 evaluation\(s\), not #1/, { evaluation: 1 });
    await refusedByAll(keys.b, evidence, /names key .*, not this key/);
    // No member of the route names a nonce or an input: one added is refused unread.
    const withNonce = { keyId: keys.a, material: 1, session: randomUUID(), evaluation: 0, evidence, nonce: b64(parseBlob(await encrypted(keys.a, 'v')).header.nonce) };
    for (const s of signers) await refusal(s.call(signerRoutes.tprf.evaluate, withNonce as never));
  });
});

describe('repeats', () => {
  it('the same Decrypt again is that request again: the same output, one rate token; not usable as another operation', async () => {
    const pair = [signers[0]!, signers[1]!];
    // Played through by hand: the Encrypt spends the first of the key's two tokens at these two signers.
    const encrypt = await appRequest(tc, 'TrentService.Encrypt', { KeyId: keys.limited, Plaintext: b64('once'), EncryptionContext: context });
    const own = sealed(keys.limited, encrypt, 'Encrypt', 0, context);
    const blob = sealBlob((await prf(keys.limited, own.input, encrypt, { chosen: pair })).output, own.headerBytes, context, text('rate-limited secret'));

    const decrypt = await appRequest(tc, 'TrentService.Decrypt', { CiphertextBlob: b64(blob), EncryptionContext: context });
    const input = openInput(blob, context);
    const first = await prf(keys.limited, input, decrypt, { chosen: pair });
    const again = await prf(keys.limited, input, decrypt, { chosen: pair });
    expect(again.output).toEqual(first.output);
    expect(openBlob(again.output, blob, context)).toEqual(text('rate-limited secret'));
    // Another request is another use: the key's burst of two is spent at both signers.
    const another = await appRequest(tc, 'TrentService.Decrypt', { CiphertextBlob: b64(blob), EncryptionContext: context });
    for (const c of pair) expect((await refusal(evaluate(c, keys.limited, another))).message, c.name).toMatch(/allows 1 uses per minute/);
    for (const c of pair) {
      const released = auditEntries(tc, c.name).filter((e) => e.keyId === keys.limited && e.outcome === 'ok' && e.output === 'partial');
      expect(released.map((e) => [e.operation, (e.detail as { repeat?: boolean } | undefined)?.repeat ?? false]), c.name).toEqual([
        ['Encrypt', false],
        ['Decrypt', false],
        ['Decrypt', true],
      ]);
    }

    // The same signed Decrypt is no Sign, and no evaluation it did not ask for.
    const commit = (c: SignerClient) => c.call(signerRoutes.frost.commit, { session: randomUUID(), keyId: keys.ed, signers: signers.map((s) => s.id), use: signUse(text('x'), decrypt) });
    for (const c of signers) expect((await refusal(commit(c))).message, c.name).toMatch(/the signed request is TrentService\.Decrypt, not TrentService\.Sign/);
    await refusedByAll(keys.limited, decrypt, /asks for 1 evaluation\(s\), not #1/, { evaluation: 1 });
  });
});

describe('ReEncrypt: each key checks its own half', () => {
  it('kms:ReEncryptTo at the destination: a key that allows the app only Encrypt and Decrypt refuses to be the destination, while the source opens', async () => {
    const blob = await encrypted(keys.a, 'moving');
    const body = { CiphertextBlob: b64(blob), SourceEncryptionContext: context, DestinationKeyId: keys.encDec, DestinationEncryptionContext: context };
    const evidence = await appRequest(tc, 'TrentService.ReEncrypt', body);
    const source = await prf(keys.a, openInput(blob, context), evidence);
    expect(openBlob(source.output, blob, context)).toEqual(text('moving'));
    await refusedByAll(keys.encDec, evidence, /principal app is not allowed kms:ReEncryptTo on key .*: the key policy grants .* no kms:ReEncryptTo/, { evaluation: 1 });
    // The destination's evaluation is not the source's, nor at the source key.
    await refusedByAll(keys.a, evidence, /names key .*, not this key/, { evaluation: 1 });
  });

  it('kms:ReEncryptFrom at the source: the app may Decrypt a blob of that key but not re-encrypt it away; the destination half is allowed', async () => {
    const blob = await encrypted(keys.encDec, 'staying');
    const evidence = await appRequest(tc, 'TrentService.ReEncrypt', { CiphertextBlob: b64(blob), SourceEncryptionContext: context, DestinationKeyId: keys.a, DestinationEncryptionContext: context });
    await refusedByAll(keys.encDec, evidence, /principal app is not allowed kms:ReEncryptFrom on key .*: the key policy grants .* no kms:ReEncryptFrom/, { evaluation: 0 });
    const destination = sealed(keys.a, evidence, 'ReEncrypt', 1, context);
    expect((await prf(keys.a, destination.input, evidence, { chosen: [signers[1]!, signers[2]!], evaluation: 1 })).faults).toEqual([]);
    const decrypt = await appRequest(tc, 'TrentService.Decrypt', { CiphertextBlob: b64(blob), EncryptionContext: context });
    expect(openBlob((await prf(keys.encDec, openInput(blob, context), decrypt)).output, blob, context)).toEqual(text('staying'));
  });
});

describe('rotation', () => {
  /** The key's newest material: the one its rotation made. */
  const newest = () => keyRecord(keys.rotated).materials!.at(-1)!.id;

  it('an old blob opens with its own material only; a sealing request, with either material, gives no existing blob’s key', async () => {
    const old = await encrypted(keys.rotated, 'before rotation');
    await kms(tc, 'admin1').send(new RotateKeyOnDemandCommand({ KeyId: keys.rotated }));
    const material = newest();
    const decrypt = await appRequest(tc, 'TrentService.Decrypt', { CiphertextBlob: b64(old), EncryptionContext: context });
    await refusedByAll(keys.rotated, decrypt, new RegExp(`opens a blob of material 1 of this key, not ${material}`), { material });
    expect(openBlob((await prf(keys.rotated, openInput(old, context), decrypt)).output, old, context)).toEqual(text('before rotation'));
    for (const m of [material, 1]) {
      const encrypt = await appRequest(tc, 'TrentService.Encrypt', { KeyId: keys.rotated, Plaintext: b64('new'), EncryptionContext: context });
      const session = randomUUID();
      const partials: unknown[] = [];
      for (const c of [signers[0]!, signers[1]!]) partials.push((await evaluate(c, keys.rotated, encrypt, { session, material: m })).partial);
      expect(() => tprfCombine(publicPackage(keys.rotated, m), session, openInput(old, context), partials), `material ${m}`).toThrow(/proof of correct evaluation does not verify/);
      expect(tprfCombine(publicPackage(keys.rotated, m), session, sealed(keys.rotated, encrypt, 'Encrypt', 0, context, m).input, partials).faults).toEqual([]);
    }
  }, 120_000);

  // A sealing request names no material, so a repeat must be compared with the first release's
  // input (its fingerprint), or one signed Encrypt sealed again with another material would be
  // a second, different PRF output spending no rate token.
  it('a repeat of a sealing request is the same evaluation: the same Encrypt sealed with another material is refused', async () => {
    const material = newest();
    const encrypt = await appRequest(tc, 'TrentService.Encrypt', { KeyId: keys.rotated, Plaintext: b64('once'), EncryptionContext: context });
    expect((await prf(keys.rotated, sealed(keys.rotated, encrypt, 'Encrypt', 0, context, material).input, encrypt, { material })).faults).toEqual([]);
    // At the two signers that released it (a third never saw the request: there it is a first use).
    for (const c of [signers[0]!, signers[2]!]) expect((await refusal(evaluate(c, keys.rotated, encrypt, { material: 1 }))).message, c.name).toMatch(/repeat|already used|material/);
  });

  // Two generations started for the same new id before either ends: were the second allowed to
  // replace the first's shares, a blob sealed with the first in between would no longer open (a
  // compromised gateway destroying ciphertexts). The second is refused at its start.
  it('a material is never overwritten: a blob sealed with a new material still opens after a second generation for its id', async () => {
    const material = randomInt(0x1000_0000, 0xffff_ffff);
    const start = (session: string) => ({ session, keyId: keys.rotated, suite: 'ristretto255', material, participants: signers.map((c) => c.id), threshold: 2 });
    const begin = async (session: string) => (await Promise.all(signers.map((c) => c.call(signerRoutes.dkg.start, start(session))))).flatMap((a) => a.outbound);
    const finish = async (session: string, messages: Relayed[]) => {
      let answers: { outbound: Relayed[]; publicPackage?: unknown }[] = [];
      for (let round = 0; round < 2; round++) {
        answers = await Promise.all(signers.map((c) => c.call(signerRoutes.dkg.step, { session, inbound: inboxOf(messages, c.id) })));
        messages = answers.flatMap((a) => a.outbound);
      }
      return publicPackageSchema.parse(answers[0]!.publicPackage);
    };
    const [first, second] = [randomUUID(), randomUUID()];
    const toFirst = await begin(first);
    for (const c of signers) expect((await refusal(c.call(signerRoutes.dkg.start, start(second)))).message, c.name).toMatch(/already started|already has material/);
    const pkg = await finish(first, toFirst);
    // Sealed with the first generation's material, as a gateway would for an app's Encrypt.
    const encrypt = await appRequest(tc, 'TrentService.Encrypt', { KeyId: keys.rotated, Plaintext: b64('kept'), EncryptionContext: context });
    const own = sealed(keys.rotated, encrypt, 'Encrypt', 0, context, material);
    const combine = async (evidence: unknown, input: Uint8Array) => {
      const session = randomUUID();
      const partials: unknown[] = [];
      for (const c of [signers[0]!, signers[2]!]) partials.push((await evaluate(c, keys.rotated, evidence, { session, material })).partial);
      return tprfCombine(pkg, session, input, partials).output;
    };
    const blob = sealBlob(await combine(encrypt, own.input), own.headerBytes, context, text('kept'));
    // And once it exists, no generation for its id starts either.
    for (const c of signers) expect((await refusal(c.call(signerRoutes.dkg.start, start(randomUUID())))).message, c.name).toMatch(/already started|already has material/);
    const decrypt = await appRequest(tc, 'TrentService.Decrypt', { CiphertextBlob: b64(blob), EncryptionContext: context });
    expect(openBlob(await combine(decrypt, openInput(blob, context)), blob, context)).toEqual(text('kept'));
  });
});

describe('key state', () => {
  it('a disabled key: every signer refuses its evaluations', async () => {
    const blob = await encrypted(keys.b, 'before disabling');
    await approved(tc, kms(tc, 'admin1').send(new DisableKeyCommand({ KeyId: keys.b })), ['admin1', 'admin2']);
    await refusedByAll(keys.b, await appRequest(tc, 'TrentService.Decrypt', { CiphertextBlob: b64(blob), EncryptionContext: context }), /is disabled at this signer/);
  }, 60_000);

  it('every signer recorded the refusals as what they were', () => {
    for (const c of signers) {
      const refused = auditEntries(tc, c.name).filter((e) => e.outcome === 'refused').map((e) => String(e.reason));
      for (const why of [/malformed evidence/, /alias\/ledger-b/, /more than 5 minutes/, /TrentService\.Sign, not a symmetric/, /the ciphertext is of key/, /dry run/, /key administrators never/, /SigV4 signature does not verify|x-amz-content-sha256/, /kms:ReEncryptTo/, /kms:ReEncryptFrom/, /disabled/])
        expect(refused.some((r) => why.test(r)), `${c.name}: ${why}`).toBe(true);
    }
  });

  it('audit verify shows the partials this gateway obtained off its own books', async () => {
    const r = await tc.mpchsmStatus('audit', 'verify', '--dir', tc.dir);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/missing-gateway-entry|the gateway's log has no entry for this request/);
    expect(r.out).toMatch(/audit verify: FAILED/);
  }, 60_000);
});

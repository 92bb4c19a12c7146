// PKCS#11's raw CKM_RSA_PKCS (RSASSA_PKCS1_V1_5_RAW: a SHA-1 DigestInfo, TLS 1.0's MD5‖SHA-1,
// any block up to k − 11 bytes) against real signer processes, played by a compromised gateway
// (the test holds the gateway's identity and calls the signers' RPC itself): each signer signs
// exactly the bytes the module's MAC'd request names, refuses another algorithm or other bytes
// under that request, refuses a key whose policy names only digests, and applies per-signature
// approvals to exactly those bytes.
import { constants, createHash, createPublicKey, publicDecrypt, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SignerClient } from '../../gateway/signer-client.js';
import { readPinKdf } from '../../gateway/principals.js';
import { CKM } from '../../contract/pkcs11/ck.js';
import { encodeValue } from '../../contract/pkcs11/wire.js';
import { signerRoutes } from '../../contract/signer-rpc/routes.js';
import { toHex } from '../../contract/bytes.js';
import { derivePinKeys, macP11Request } from '../../policy/index.js';
import { rsaCombine } from '../../signers/protocols/rsa/combine.js';
import { parsePublicParams } from '../../signers/protocols/rsa/key.js';
import { pkcs1v15Block } from '../../signers/protocols/rsa/padding.js';
import type { RsaSignRequest } from '../../signers/protocols/rsa/request.js';
import type { TestCluster } from '../helpers/cluster.js';
import { createKey, perSignaturePolicy, publicKeyOf, refusal, signingPolicy, signUse, startWithSigners, stopWithSigners } from './helpers.js';

const ACCOUNT = '111122223333';
let tc: TestCluster;
let signers: SignerClient[];
let requestKey: Uint8Array;
const keys: Record<'open' | 'named' | 'approved', string> = { open: '', named: '', approved: '' };

const data = Buffer.from('legacy CA: sha1WithRSAEncryption');
const sha1Info = Buffer.concat([Buffer.from('3021300906052b0e03021a05000414', 'hex'), createHash('sha1').update(data).digest()]);
const md5sha1 = Buffer.concat([createHash('md5').update(data).digest(), createHash('sha1').update(data).digest()]);

/** C_Sign(CKM_RSA_PKCS, input) as the module MACs it under app's request key. */
const p11Sign = (keyId: string, input: Buffer) =>
  macP11Request(
    {
      kind: 'p11',
      operation: 'Sign',
      principal: 'app',
      timestamp: Date.now(),
      nonce: randomUUID().replaceAll('-', ''),
      key: `k:${keyId}:priv`,
      mechanism: CKM.RSA_PKCS,
      params: encodeValue([]).toString('hex'),
      input: toHex(input),
      isDigest: 0,
    },
    requestKey,
  );
const rawUse = (input: Buffer, evidence: unknown, extra: object = {}) => signUse(input, evidence, { algorithm: 'RSASSA_PKCS1_V1_5_RAW', messageType: 'DIGEST', ...extra });
const rawRequest = (input: Buffer): RsaSignRequest => ({ session: randomUUID(), op: 'sign', scheme: 'pkcs1v15', hash: 'none', digest: toHex(input), representative: toHex(pkcs1v15Block(input, 256)) });
const partial = (c: SignerClient, keyId: string, use: unknown, request: RsaSignRequest) => c.call(signerRoutes.rsa.partial, { keyId, session: request.session, request, use });

beforeAll(async () => {
  ({ tc, signers } = await startWithSigners());
  ({ requestKey } = derivePinKeys(tc.principal('app').MPCHSM_PKCS11_PIN, readPinKdf(path.join(tc.dir, 'gateway'))));
  keys.open = await createKey(tc, { KeySpec: 'RSA_2048', KeyUsage: 'SIGN_VERIFY' });
  keys.named = await createKey(tc, { KeySpec: 'RSA_2048', KeyUsage: 'SIGN_VERIFY', Policy: signingPolicy(ACCOUNT, { allowedAlgorithms: ['RSASSA_PKCS1_V1_5_SHA_256'] }) });
  keys.approved = await createKey(tc, { KeySpec: 'RSA_2048', KeyUsage: 'SIGN_VERIFY', Policy: perSignaturePolicy(ACCOUNT, 1) });
}, 180_000);

afterAll(async () => {
  requestKey?.fill(0);
  await stopWithSigners(tc, signers);
});

describe('raw PKCS#1 v1.5 at the signers', () => {
  it('two signers sign exactly the bytes the client asked for; the combined signature carries them', async () => {
    for (const input of [sha1Info, md5sha1]) {
      const use = rawUse(input, p11Sign(keys.open, input));
      const request = rawRequest(input);
      const answers = [await partial(signers[0]!, keys.open, use, request), await partial(signers[2]!, keys.open, use, request)];
      const record = JSON.parse(readFileSync(path.join(tc.dir, 'gateway', 'keys', `${keys.open}.json`), 'utf8'));
      const result = rsaCombine(parsePublicParams(record.rsa), request, answers.map((a) => a.partial));
      expect(result.faults).toEqual([]);
      const key = createPublicKey({ key: Buffer.from(await publicKeyOf(tc, keys.open)), format: 'der', type: 'spki' });
      expect(publicDecrypt({ key, padding: constants.RSA_PKCS1_PADDING }, result.output)).toEqual(input);
    }
  });

  it('a lying gateway: another algorithm, other bytes or a hashed encoding under the client’s request are refused', async () => {
    const evidence = p11Sign(keys.open, sha1Info);
    const other = Buffer.concat([sha1Info.subarray(0, -1), Buffer.of(sha1Info.at(-1)! ^ 1)]);
    // The signer reads the module's request itself: it is raw PKCS#1 v1.5 over sha1Info, nothing else.
    const asSha256 = signUse(sha1Info, evidence, { algorithm: 'RSASSA_PKCS1_V1_5_SHA_256', messageType: 'DIGEST' });
    for (const c of signers) expect((await refusal(partial(c, keys.open, asSha256, rawRequest(sha1Info)))).message, c.name).toMatch(/access denied/);
    expect((await refusal(partial(signers[1]!, keys.open, rawUse(other, evidence), rawRequest(other)))).message).toMatch(/access denied/);
    expect((await refusal(partial(signers[1]!, keys.open, rawUse(sha1Info, evidence), rawRequest(other)))).message).toMatch(/does not sign the bytes the client asked for/);
    const hashed: RsaSignRequest = { ...rawRequest(sha1Info), hash: 'sha256', digest: toHex(createHash('sha256').update(data).digest()) };
    expect((await refusal(partial(signers[1]!, keys.open, rawUse(sha1Info, evidence), hashed))).message).toMatch(/does not sign the bytes the client asked for/);
  });

  it('a key whose policy names only digests is not signed raw, by any signer', async () => {
    const use = rawUse(sha1Info, p11Sign(keys.named, sha1Info));
    for (const c of signers) expect((await refusal(partial(c, keys.named, use, rawRequest(sha1Info)))).message, c.name).toMatch(/allows only the algorithms RSASSA_PKCS1_V1_5_SHA_256, not RSASSA_PKCS1_V1_5_RAW/);
  });

  it('per-signature approvals name the raw bytes themselves', async () => {
    const use = (input: Buffer, extra: object = {}) => rawUse(input, p11Sign(keys.approved, input), extra);
    expect((await refusal(partial(signers[0]!, keys.approved, use(sha1Info), rawRequest(sha1Info)))).message).toMatch(/needs approval by 1/);
    await tc.mpchsm('approve-sign', '--key', keys.approved, '--algorithm', 'RSASSA_PKCS1_V1_5_RAW', '--digest', toHex(md5sha1), '--as', 'admin1', '--dir', tc.dir);
    const approvals = () => JSON.parse(readFileSync(path.join(tc.dir, 'gateway', 'proposals.json'), 'utf8')).signApprovals as { digest: string }[];
    const forMd5sha1 = approvals().filter((a) => a.digest === toHex(md5sha1));
    expect(forMd5sha1).toHaveLength(1);
    // An approval of other bytes does not carry.
    expect((await refusal(partial(signers[0]!, keys.approved, use(sha1Info, { signApprovals: forMd5sha1 }), rawRequest(sha1Info)))).message).toMatch(/approv/);
    expect((await partial(signers[0]!, keys.approved, use(md5sha1, { signApprovals: forMd5sha1 }), rawRequest(md5sha1))).partial).toBeDefined();
  });
});

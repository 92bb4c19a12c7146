// A benchmark client process, forked by run.ts: it holds one client (the AWS SDK for KMS, or a
// PKCS#11 module loaded through graphene-pk11) and runs the orchestrator's commands one at a
// time; or, uninitialised, drives TLS handshakes at nginx (handshakes.ts). In a process of its
// own so that a module's threads (pkcs11js runs each C_Sign on libuv's pool, sized by
// UV_THREADPOOL_SIZE at fork) and CPU time are the client's alone.
import { createHash, createPublicKey, randomBytes, verify, type KeyObject } from 'node:crypto';
import { CreateKeyCommand, DescribeKeyCommand, GetPublicKeyCommand, KMSClient, SignCommand, type CreateKeyCommandInput } from '@aws-sdk/client-kms';
import * as graphene from 'graphene-pk11';
import type * as pkcs11 from 'pkcs11js';
import { CKA, CKM, CKO, CKU } from '../../contract/pkcs11/ck.js';
import { handshakeLoad } from './handshakes.js';
import { closedLoop, summarise } from './stats.js';
import { symmetricCall } from './symmetric-calls.js';
import { KMS_SPEC, requestSchema, type Alg, type KeygenAnswer, type LoadResult, type SymmetricKeyAnswer, type SymmetricOp, type WorkerCommand, type WorkerInit } from './types.js';

/** The payload every client signs: the same bytes for every target. */
const MESSAGE = randomBytes(32);
const DIGEST = createHash('sha256').update(MESSAGE).digest();

type Command<K extends WorkerCommand['op']> = Extract<WorkerCommand, { op: K }>;

interface Client {
  keygen(c: Command<'keygen'>): Promise<KeygenAnswer>;
  publicKey(keyRef: string): Promise<string>;
  /** Signs once as client `n` and returns the signature. */
  signer(alg: Alg, keyRef: string): Promise<(n: number) => Promise<Uint8Array>>;
  /** Signature encoding: KMS returns DER ECDSA, PKCS#11 raw r‖s. */
  readonly ecdsaEncoding: 'der' | 'ieee-p1363';
  ping(keyRef: string): Promise<void>;
  /** KMS: a SYMMETRIC_DEFAULT key, and one call of `operation` with it as client `n` (symmetric-calls.ts). */
  symmetricKey(label: string): Promise<SymmetricKeyAnswer>;
  symmetric(operation: SymmetricOp, keyRef: string): Promise<(n: number) => Promise<void>>;
  close(): void;
}

const kmsOnly = (what: string) => async (): Promise<never> => {
  throw new Error(`${what} is a KMS-only command`);
};

function kmsClient(init: Extract<WorkerInit, { kind: 'kms' }>): Client {
  const make = (credentials: { accessKeyId: string; secretAccessKey: string }) => new KMSClient({ endpoint: init.endpoint, region: init.region, credentials, maxAttempts: 1 });
  const admin = make(init.admin);
  // One SDK client (its own connection pool) per concurrent benchmark client.
  const apps: KMSClient[] = [];
  const app = (n: number) => (apps[n] ??= make(init.app));
  const publicKey = async (keyRef: string) => Buffer.from((await app(0).send(new GetPublicKeyCommand({ KeyId: keyRef }))).PublicKey!).toString('base64');
  /** CreateKey as the administrator: the key and the time it took, or why the service made none. */
  const createKey = async (input: CreateKeyCommandInput): Promise<SymmetricKeyAnswer> => {
    const t = performance.now();
    try {
      const r = await admin.send(new CreateKeyCommand(input));
      return { status: 'ok', keyRef: r.KeyMetadata!.KeyId!, ms: performance.now() - t };
    } catch (e) {
      const { name, message } = e as Error;
      if (name === 'UnsupportedOperationException') return { status: 'unavailable', reason: message };
      // Governance puts key creation under administrators' approval: the request waits as a proposal.
      const proposal = name === 'AccessDeniedException' ? /\bProposal (\S+) holds this request\b/.exec(message)?.[1] : undefined;
      if (proposal) return { status: 'proposal', proposalId: proposal, ms: performance.now() - t };
      throw e;
    }
  };
  return {
    ecdsaEncoding: 'der',
    async keygen(c) {
      const a = await createKey({ KeySpec: KMS_SPEC[c.alg].keySpec, KeyUsage: 'SIGN_VERIFY', Description: c.label });
      if (a.status !== 'ok') return a;
      return { status: 'ok', result: { keyRef: a.keyRef, spki: await publicKey(a.keyRef), ms: a.ms } };
    },
    // No KeySpec: AWS's default, a symmetric encryption key.
    symmetricKey: (label) => createKey({ Description: label }),
    symmetric: (operation, keyRef) => symmetricCall(app, operation, keyRef),
    publicKey,
    async signer(alg, keyRef) {
      const { algorithm } = KMS_SPEC[alg];
      return async (n) => (await app(n).send(new SignCommand({ KeyId: keyRef, Message: MESSAGE, MessageType: 'RAW', SigningAlgorithm: algorithm }))).Signature!;
    },
    async ping(keyRef) {
      await app(0).send(new DescribeKeyCommand({ KeyId: keyRef }));
    },
    close() {
      admin.destroy();
      for (const a of apps) a.destroy();
    },
  };
}

// What a token answers for a key type it does not make (mpchsm's gateway: DOMAIN_PARAMS_INVALID
// for a curve it knows but has no threshold scheme for), or for a key creation its governance
// holds for administrators' approval, which PKCS#11 has no way to ask for.
const P11_UNAVAILABLE = new Map([
  [0x70, 'CKR_MECHANISM_INVALID'],
  [0x130, 'CKR_DOMAIN_PARAMS_INVALID'],
  [0x140, 'CKR_CURVE_NOT_SUPPORTED'],
  [0x200, 'CKR_FUNCTION_REJECTED (key creation needs administrators\' approval)'],
]);
const CKF_RW_SERIAL = 0x4 | 0x2;
const CKF_OS_LOCKING_OK = 0x2;
const P256_OID = Buffer.from('06082a8648ce3d030107', 'hex');
const ED25519_OID = Buffer.from('06032b6570', 'hex');

/** The mechanism and input of each algorithm: the module (or token) hashes for RSA; ECDSA signs a digest. */
const P11_SIGN: Readonly<Record<Alg, { mechanism: number; input: Buffer }>> = {
  rsa2048: { mechanism: CKM.SHA256_RSA_PKCS, input: MESSAGE },
  p256: { mechanism: CKM.ECDSA, input: DIGEST },
  ed25519: { mechanism: CKM.EDDSA, input: MESSAGE },
};

function p11Client(init: Extract<WorkerInit, { kind: 'p11' }>): Client {
  const mod = graphene.Module.load(init.module, 'bench');
  mod.initialize({ flags: CKF_OS_LOCKING_OK });
  const lib = mod.lib;
  const slot = lib.C_GetSlotList(true)[0];
  if (!slot) throw new Error(`${init.module}: no slot with a token`);
  const control = lib.C_OpenSession(slot, CKF_RW_SERIAL);
  const sessions: Buffer[] = [];
  const session = (n: number) => (sessions[n] ??= lib.C_OpenSession(slot, CKF_RW_SERIAL));
  const handles = new Map<string, Buffer>();
  // Login is per application, not per session: switching user logs every session out.
  let loggedIn: 'so' | 'user' | undefined;
  const login = (who: 'so' | 'user') => {
    if (loggedIn === who) return;
    if (loggedIn) lib.C_Logout(control);
    lib.C_Login(control, who === 'so' ? CKU.SO : CKU.USER, who === 'so' ? init.keygenPin : init.userPin);
    loggedIn = who;
  };
  const attr = (h: Buffer, type: number) => lib.C_GetAttributeValue(control, h, [{ type }])[0]!.value as Buffer;

  return {
    ecdsaEncoding: 'ieee-p1363',
    async keygen(c) {
      login(init.keygenUser);
      const id = randomBytes(16);
      const common: pkcs11.Template = [
        { type: CKA.TOKEN, value: true },
        { type: CKA.ID, value: id },
        { type: CKA.LABEL, value: c.label },
      ];
      const priv: pkcs11.Template = [...common, { type: CKA.PRIVATE, value: true }, { type: CKA.SENSITIVE, value: true }, { type: CKA.EXTRACTABLE, value: false }, { type: CKA.SIGN, value: true }];
      const pub: pkcs11.Template = [...common, { type: CKA.VERIFY, value: true }];
      const [mechanism, params]: [number, pkcs11.Template] =
        c.alg === 'rsa2048'
          ? [CKM.RSA_PKCS_KEY_PAIR_GEN, [{ type: CKA.MODULUS_BITS, value: 2048 }, { type: CKA.PUBLIC_EXPONENT, value: Buffer.of(1, 0, 1) }]]
          : [c.alg === 'p256' ? CKM.EC_KEY_PAIR_GEN : CKM.EC_EDWARDS_KEY_PAIR_GEN, [{ type: CKA.EC_PARAMS, value: c.alg === 'p256' ? P256_OID : ED25519_OID }]];
      const t = performance.now();
      let pair: pkcs11.KeyPair;
      try {
        pair = await lib.C_GenerateKeyPairAsync(control, { mechanism }, [...pub, ...params], priv);
      } catch (e) {
        const code = (e as { code?: unknown }).code;
        if (typeof code === 'number' && P11_UNAVAILABLE.has(code)) return { status: 'unavailable', reason: `C_GenerateKeyPair: ${P11_UNAVAILABLE.get(code)}` };
        throw e;
      }
      const ms = performance.now() - t;
      const keyRef = attr(pair.privateKey, CKA.ID).toString('hex');
      return { status: 'ok', result: { keyRef, spki: p11Spki(c.alg, (type) => attr(pair.publicKey, type)).toString('base64'), ms } };
    },
    publicKey: kmsOnly('publicKey'),
    async signer(alg, keyRef) {
      login('user');
      let key = handles.get(keyRef);
      if (!key) {
        lib.C_FindObjectsInit(control, [{ type: CKA.CLASS, value: CKO.PRIVATE_KEY }, { type: CKA.ID, value: Buffer.from(keyRef, 'hex') }]);
        const found = lib.C_FindObjects(control, 2);
        lib.C_FindObjectsFinal(control);
        if (found.length !== 1) throw new Error(`${found.length} private keys with CKA_ID ${keyRef}`);
        handles.set(keyRef, (key = found[0]!));
      }
      const k = key;
      const { mechanism, input } = P11_SIGN[alg];
      const out: Buffer[] = [];
      return async (n) => {
        const s = session(n);
        lib.C_SignInit(s, { mechanism }, k);
        return Uint8Array.from(await lib.C_SignAsync(s, input, (out[n] ??= Buffer.alloc(1024))));
      };
    },
    ping: kmsOnly('ping'),
    symmetricKey: kmsOnly('symmetricKey'),
    symmetric: kmsOnly('symmetric'),
    close() {
      try {
        if (loggedIn) lib.C_Logout(control);
        mod.finalize();
      } catch {
        // the process is about to exit either way
      }
    },
  };
}

/** DER SPKI of a PKCS#11 public key object, from its attributes. */
function p11Spki(alg: Alg, attr: (type: number) => Buffer): Buffer {
  const b64u = (b: Buffer) => b.toString('base64url');
  // CKA_EC_POINT is a DER OCTET STRING holding the point (some tokens give the bare point).
  const point = (len: number) => {
    const v = attr(CKA.EC_POINT);
    if (v.length === len + 2 && v[0] === 0x04 && v[1] === len) return v.subarray(2);
    if (v.length === len) return v;
    throw new Error(`CKA_EC_POINT of ${v.length} bytes`);
  };
  let key: KeyObject;
  if (alg === 'rsa2048') key = createPublicKey({ key: { kty: 'RSA', n: b64u(attr(CKA.MODULUS)), e: b64u(attr(CKA.PUBLIC_EXPONENT)) }, format: 'jwk' });
  else if (alg === 'p256') {
    const p = point(65);
    key = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: b64u(p.subarray(1, 33)), y: b64u(p.subarray(33)) }, format: 'jwk' });
  } else key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64u(point(32)) }, format: 'jwk' });
  return key.export({ type: 'spki', format: 'der' });
}

/** Checks a signature over MESSAGE with node:crypto (OpenSSL), independently of the signer. */
function checkSignature(alg: Alg, spki: string, signature: Uint8Array, ecdsaEncoding: 'der' | 'ieee-p1363'): void {
  const key = createPublicKey({ key: Buffer.from(spki, 'base64'), format: 'der', type: 'spki' });
  const ok =
    alg === 'ed25519'
      ? verify(null, MESSAGE, key, signature)
      : alg === 'p256'
        ? verify('sha256', MESSAGE, { key, dsaEncoding: ecdsaEncoding }, signature)
        : verify('sha256', MESSAGE, key, signature);
  if (!ok) throw new Error(`a ${alg} signature did not verify against the key's public key`);
}

let client: Client | undefined;

async function handle(c: WorkerCommand): Promise<unknown> {
  if (c.op === 'init') {
    if (client) throw new Error('already initialised');
    client = c.init.kind === 'kms' ? kmsClient(c.init) : p11Client(c.init);
    return null;
  }
  if (c.op === 'close') {
    client?.close();
    client = undefined;
    setImmediate(() => process.exit(0));
    return null;
  }
  // Needs no module: the server under test holds the key.
  if (c.op === 'handshakes') return handshakeLoad(c);
  if (!client) throw new Error('not initialised');
  const cl = client;
  switch (c.op) {
    case 'keygen':
      return cl.keygen(c);
    case 'publicKey':
      return cl.publicKey(c.keyRef);
    case 'ping': {
      const xs: number[] = [];
      for (let i = 0; i < c.count; i++) {
        const t = performance.now();
        await cl.ping(c.keyRef);
        xs.push(performance.now() - t);
      }
      return summarise(xs);
    }
    case 'symmetricKey':
      return cl.symmetricKey(c.label);
    case 'symmetric': {
      // symmetricCall checks one round trip before the clock starts.
      const call = await cl.symmetric(c.operation, c.keyRef);
      return closedLoop(c, call);
    }
    case 'sign': {
      const sign = await cl.signer(c.alg, c.keyRef);
      // One verified signature before the clock starts: a figure for a broken path means nothing.
      checkSignature(c.alg, c.spki, await sign(0), cl.ecdsaEncoding);
      const r: LoadResult = await closedLoop(c, async (n) => void (await sign(n)));
      return r;
    }
  }
}

process.on('message', (raw: unknown) => {
  const req = requestSchema.safeParse(raw);
  if (!req.success) {
    process.send?.({ id: -1, ok: false, error: `malformed command: ${req.error.message}` });
    return;
  }
  handle(req.data.command).then(
    (result) => process.send?.({ id: req.data.id, ok: true, result }),
    (e: unknown) => process.send?.({ id: req.data.id, ok: false, error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) }),
  );
});
// Orphaned (the orchestrator died): leave rather than keep a module's sessions open.
process.on('disconnect', () => {
  client?.close();
  process.exit(0);
});

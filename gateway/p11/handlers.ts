// The gateway's side of each PKCS#11 request: authenticate the session credential, check the
// role against the same ceilings as the KMS API (applications sign, verify, encrypt and
// decrypt; key administrators create, relabel and delete keys and never use them), authorize
// through the KMS facade's policy seam, then run it on the cluster. Every decision about a
// logged-in principal is made here, so every refusal is in the gateway's audit log.
import { createHash, createPrivateKey, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { DecodeError } from '../../signers/protocols/rsa/padding.js';
import { ClusterError, type Trace } from '../cluster-outcome.js';
import type { KeyRecord } from '../keys.js';
import { VerifyError, isKeySpec, type KeySpec } from '../../contract/keys/specs.js';
import { parseSpki } from '../../contract/keys/spki.js';
import type { P11KeygenEvidence, P11LabelEvidence } from '../../policy/admin-evidence.js';
import { type P11Evidence } from '../../policy/evidence.js';
import type { Creation } from '../../contract/signer-rpc/authority.js';
import { roleAllows, type Action } from '../../policy/roles.js';
import { messageDigestFor } from '../../policy/sign-approvals.js';
import { gatewayPolicy } from '../governance.js';
import { executeOperation } from '../kms/execute.js';
import { ApprovalRequired, authorize } from '../kms/authorize.js';
import { OpContext } from '../kms/context.js';
import { KmsError } from '../kms/errors.js';
import { Arns, checkAliasName } from '../kms/ids.js';
import { parseInput } from '../kms/input.js';
import { OPERATIONS } from '../kms/ops/index.js';
import { readPinKdf, type Principal } from '../principals.js';
import type { GatewayDeps } from '../deps.js';
import { ecdsaDerToRaw, verifySignature } from '../verify.js';
import { CKA, CKC_X_509, CKK, CKO, CKR, CKU, P11Error } from '../../contract/pkcs11/ck.js';
import type { Credentials } from './credentials.js';
import { isFalse, isTrue, keyPairRequested, pick, RSA_BITS, usageOf } from '../../contract/pkcs11/keygen.js';
import { encrypt, planDecryption, planSignature } from '../../contract/pkcs11/mechanisms.js';
import { certificateObject, encodeObject, keyObjects, matches, sessionKeySpki, uuidBytes, type P11Object, type Template } from './objects.js';
import type { P11Store } from './store.js';
import { Abi, decodeValue, encodeValue, OP, type Value } from '../../contract/pkcs11/wire.js';
import { CertificateError, parseCertificate } from './x509.js';

const OP_NAMES = Object.fromEntries(Object.entries(OP).map(([k, v]) => [v, k.toLowerCase()])) as Record<number, string>;

/** Slows every wrong PIN a little: each guess costs the caller a PBKDF2 derivation too. */
const PIN_FAILURE_DELAY_MS = 250;
const MAX_LABEL = 256;
const MAX_ID = 128;

export interface P11Deps extends GatewayDeps {
  store: P11Store;
  credentials: Credentials;
}

const header = z.tuple([z.literal(1), z.number().int(), z.number().int(), z.instanceof(Buffer)]).rest(z.unknown());
const bytes = z.instanceof(Buffer);
const uint = z.number().int().nonnegative();
const templateSchema = z.array(z.tuple([uint, bytes]));
const valueList = z.array(z.custom<Value>(() => true));

/** What the request log and the audit entry record about one request (never its data). */
export interface RequestLog {
  op: string;
  /** Whose request it was: a logged-in principal, or the owner of a genuine credential that ended. */
  principal?: string;
  /** A valid login carried or made it (the listener lifts its pre-login limits). */
  authenticated?: boolean;
  keyId?: string;
  rv: number;
  reason?: string;
  /** The cluster algorithm, and SHA-256 of the message or ciphertext it was given. */
  algorithm?: string;
  digest?: string;
  /** The cluster session and its signers. */
  trace: Trace;
  output: 'signature' | 'plaintext' | 'key' | 'none';
}

const sha256Hex = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Answers one request frame. Never throws: every failure becomes [CKR, reason]. */
export async function handleRequest(deps: P11Deps, body: Buffer, log: RequestLog): Promise<Value> {
  try {
    const req = header.safeParse(decodeValue(body));
    if (!req.success) throw new P11Error(CKR.GENERAL_ERROR, 'malformed request (version 1 expected)');
    const [, op, abiFlags, credential, ...args] = req.data;
    log.op = OP_NAMES[op] ?? `op ${op}`;
    const abi = new Abi(abiFlags);
    const result = await dispatch(deps, op, abi, credential.toString('utf8'), args, log);
    log.rv = CKR.OK;
    return [CKR.OK, ...result];
  } catch (e) {
    const err = asP11Error(e);
    log.rv = err.rv;
    log.reason = err.message;
    if (err.rv === CKR.GENERAL_ERROR && !(e instanceof P11Error)) deps.log.warn({ err: e instanceof Error ? e.message : String(e) }, 'pkcs11 request failed');
    return [err.rv, Buffer.from(err.message, 'utf8')];
  }
}

export function asP11Error(e: unknown): P11Error {
  if (e instanceof P11Error) return e;
  if (e instanceof ClusterError) {
    switch (e.code) {
      case 'not-found':
        return new P11Error(CKR.KEY_HANDLE_INVALID, e.message);
      case 'invalid-state':
      case 'invalid-usage':
        return new P11Error(CKR.KEY_FUNCTION_NOT_PERMITTED, e.message);
      case 'unsupported':
        return new P11Error(CKR.MECHANISM_INVALID, e.message);
      case 'signer-refused':
        return new P11Error(CKR.FUNCTION_REJECTED, e.message);
      case 'quorum-unavailable':
      case 'internal':
        return new P11Error(CKR.DEVICE_ERROR, e.message);
    }
  }
  if (e instanceof KmsError) {
    // Key management run through the KMS facade (labels, deletion): its refusals as PKCS#11's.
    switch (e.type) {
      case 'AccessDeniedException':
        return new P11Error(CKR.FUNCTION_REJECTED, e.message);
      case 'AlreadyExistsException':
      case 'ValidationException':
        return new P11Error(CKR.ATTRIBUTE_VALUE_INVALID, e.message);
      case 'NotFoundException':
        return new P11Error(CKR.OBJECT_HANDLE_INVALID, e.message);
      case 'KMSInvalidStateException':
      case 'DisabledException':
        return new P11Error(CKR.KEY_FUNCTION_NOT_PERMITTED, e.message);
    }
  }
  if (e instanceof DecodeError) return new P11Error(CKR.ENCRYPTED_DATA_INVALID, 'the ciphertext does not decrypt under this key and padding');
  if (e instanceof CertificateError) return new P11Error(CKR.ATTRIBUTE_VALUE_INVALID, e.message);
  if (e instanceof VerifyError) {
    if (e.code === 'bad-digest-length') return new P11Error(CKR.DATA_LEN_RANGE, e.message);
    if (e.code === 'algorithm-not-for-key-spec') return new P11Error(CKR.KEY_TYPE_INCONSISTENT, e.message);
    if (e.code === 'message-type-not-allowed' || e.code === 'unknown-algorithm') return new P11Error(CKR.MECHANISM_INVALID, e.message);
  }
  if (e instanceof z.ZodError) return new P11Error(CKR.GENERAL_ERROR, `malformed request: ${e.issues[0]?.path.join('.')} ${e.issues[0]?.message}`);
  return new P11Error(CKR.GENERAL_ERROR, 'internal error; see the gateway log');
}

async function dispatch(deps: P11Deps, op: number, abi: Abi, credential: string, args: unknown[], log: RequestLog): Promise<Value[]> {
  if (op === OP.LOGIN) return login(deps, args, log);
  if (op === OP.PIN_KDF) {
    const kdf = readPinKdf(deps.dir);
    return [Buffer.from(kdf.salt, 'hex'), kdf.iterations];
  }
  if (op === OP.VERIFY || op === OP.ENCRYPT) {
    // A session public key needs no login; a token key does.
    const keyRef = z.union([bytes, templateSchema]).parse(args[0]);
    const principal = Buffer.isBuffer(keyRef) ? authenticate(deps, credential, log) : undefined;
    return op === OP.VERIFY ? verify(deps, abi, principal, args, log) : encryptOp(deps, abi, principal, args, log);
  }
  if (op === OP.LOGOUT) {
    // Ending a login needs only a genuine credential: one that already expired ends quietly too.
    const name = deps.credentials.revoke(credential);
    if (name === undefined) throw new P11Error(CKR.USER_NOT_LOGGED_IN, 'no valid session credential to log out');
    log.principal = name;
    return [];
  }
  const principal = authenticate(deps, credential, log);
  switch (op) {
    case OP.FIND:
      return find(deps, abi, principal, args);
    case OP.SIGN:
      return sign(deps, principal, args, log);
    case OP.DECRYPT:
      return decrypt(deps, principal, args, log);
    case OP.GENERATE_KEY_PAIR:
      return generateKeyPair(deps, abi, principal, args, log);
    case OP.CREATE_OBJECT:
      return createObject(deps, abi, principal, args, log);
    case OP.DESTROY_OBJECT:
      return destroyObject(deps, principal, args, log);
    case OP.SET_ATTRIBUTES:
      return setAttributes(deps, abi, principal, args, log);
    case OP.CHECK:
      return check(deps, principal, args, log);
    default:
      throw new P11Error(CKR.FUNCTION_NOT_SUPPORTED, `unknown operation ${op}`);
  }
}

const ENDED = { expired: 'has expired', revoked: 'was logged out', 'unknown-principal': 'names a principal that no longer exists with that role' } as const;

function authenticate(deps: P11Deps, credential: string, log: RequestLog): Principal {
  const c = credential ? deps.credentials.check(credential) : ({ ok: false, why: 'invalid' } as const);
  if (c.ok) {
    log.principal = c.principal.name;
    log.authenticated = true;
    return c.principal;
  }
  if (c.why === 'invalid') throw new P11Error(CKR.USER_NOT_LOGGED_IN, 'no valid session credential: log in (C_Login) again');
  // A genuine login that ended is refused in its principal's name, so the audit says whose it was.
  log.principal = c.name;
  throw new P11Error(CKR.USER_NOT_LOGGED_IN, `the login of ${c.name} ${ENDED[c.why]}: log out (C_Logout) and log in (C_Login) again`);
}

/**
 * The role ceiling of the KMS operation a request amounts to (policy/roles.ts, as for the KMS
 * API). Refused with CKR_USER_NOT_LOGGED_IN: "the appropriate user is not logged in" is what
 * PKCS#11 answers when the other user type could do it.
 */
function requireRole(p: Principal, operation: string, what: string): void {
  const action = `kms:${operation}` as Action;
  if (roleAllows(p.role, action)) return;
  const need = roleAllows('app', action) ? 'an application principal (CKU_USER)' : 'a key administrator (CKU_SO)';
  const why = p.role === 'admin' ? '; key administrators never sign, verify, encrypt or decrypt' : p.role === 'app' ? '; applications do not create, relabel or delete keys' : '';
  throw new P11Error(CKR.USER_NOT_LOGGED_IN, `${what} needs ${need}${why}`);
}

/** What the module asks before starting an operation it expects this login to be refused. */
const CHECKED: Readonly<Record<string, { operation: string; what: string; key: 'priv' | 'any' }>> = {
  sign: { operation: 'Sign', what: 'signing', key: 'priv' },
  decrypt: { operation: 'Decrypt', what: 'decryption', key: 'priv' },
  verify: { operation: 'Verify', what: 'verification with a token key', key: 'any' },
  encrypt: { operation: 'Encrypt', what: 'encryption with a token key', key: 'any' },
};

/**
 * C_SignInit, C_DecryptInit, C_VerifyInit and C_EncryptInit with a token key under a login whose
 * role may not use keys, and C_InitPIN and C_SetPIN: the module asks here so that the refusal
 * is decided and recorded by the gateway. Principals and their PINs are the gateway's registry
 * (made by `mpchsm up`), so PINs are never set through PKCS#11.
 */
function check(deps: P11Deps, principal: Principal, args: unknown[], log: RequestLog): Value[] {
  const [nameBytes, uid] = z.tuple([bytes, bytes]).parse(args);
  const name = nameBytes.toString('utf8');
  if (name === 'init_pin' || name === 'set_pin') {
    log.op = name;
    // C_InitPIN belongs to the security officer (PKCS#11 3.0 §5.6: "R/W SO Functions" state).
    if (name === 'init_pin' && principal.role !== 'admin') throw new P11Error(CKR.USER_NOT_LOGGED_IN, 'C_InitPIN needs a key administrator (CKU_SO) login');
    throw new P11Error(CKR.FUNCTION_NOT_SUPPORTED, "PINs belong to mpchsm's principals and are set when a principal is made, not through PKCS#11");
  }
  const c = CHECKED[name];
  if (!c) throw new P11Error(CKR.ARGUMENTS_BAD, `nothing to check called ${name.slice(0, 32)}`);
  log.op = `${name}_init`;
  keyOf(deps, uid, c.key, log);
  requireRole(principal, c.operation, c.what);
  return [];
}

/** C_Login: the module sends the PIN's login key (policy/evidence.ts), never the PIN. */
async function login(deps: P11Deps, args: unknown[], log: RequestLog): Promise<Value[]> {
  const [userType, loginKey] = z.tuple([uint, bytes]).parse(args);
  if (userType !== CKU.USER && userType !== CKU.SO) throw new P11Error(CKR.USER_TYPE_INVALID, `user type ${userType}`);
  const role = userType === CKU.SO ? 'admin' : 'app';
  const principal = loginKey.length === 32 ? deps.principals.byLoginKey(loginKey, [role]) : undefined;
  loginKey.fill(0);
  if (!principal) {
    await sleep(PIN_FAILURE_DELAY_MS);
    throw new P11Error(CKR.PIN_INCORRECT, `no ${role === 'admin' ? 'key administrator' : 'application principal'} has this PIN`);
  }
  log.principal = principal.name;
  log.authenticated = true;
  return [Buffer.from(deps.credentials.issue(principal)), Buffer.from(principal.name)];
}

/** The module's proof of a request: [principal, timestamp, nonce, MAC], or [] when it holds no request key. */
const proofSchema = z.union([z.tuple([]), z.tuple([bytes, uint, bytes, bytes])]);

/** A proof's time, nonce and MAC (hex), if it is the logged-in principal's. */
function provenBy(principal: Principal, proof: [Buffer, number, Buffer, Buffer]): { timestamp: number; nonce: string; mac: string } {
  const [who, timestamp, nonce, mac] = proof;
  if (who.toString('utf8') !== principal.name) throw new P11Error(CKR.USER_NOT_LOGGED_IN, `the request is signed for ${who.toString('utf8').slice(0, 64)}, not for the logged-in ${principal.name}`);
  return { timestamp, nonce: nonce.toString('hex'), mac: mac.toString('hex') };
}

/**
 * The evidence each signer checks before it signs or decrypts (policy/evidence.ts): the
 * module's arguments as they came and its MAC under the PIN's request key, which the gateway
 * does not hold — it can forward this request, not make another.
 */
function p11Evidence(principal: Principal, operation: 'Sign' | 'Decrypt', args: { uid: Buffer; mech: number; params: Value[]; input: Buffer; isDigest: 0 | 1; proof: z.infer<typeof proofSchema> }): P11Evidence {
  if (args.proof.length === 0) throw new P11Error(CKR.FUNCTION_REJECTED, 'the module sent no proof of this request (a module older than this gateway?): the signers need one');
  const { timestamp, nonce, mac } = provenBy(principal, args.proof);
  return {
    kind: 'p11',
    operation,
    principal: principal.name,
    timestamp,
    nonce,
    key: args.uid.toString('utf8'),
    mechanism: args.mech,
    params: encodeValue(args.params).toString('hex'),
    input: args.input.toString('hex'),
    isDigest: args.isDigest,
    mac,
  };
}

// ---- objects ---------------------------------------------------------------------------

const keyUid = /^k:([0-9a-f-]{36}):(pub|priv)$/;

function keyOf(deps: P11Deps, uid: Buffer, want: 'pub' | 'priv' | 'any', log: RequestLog): KeyRecord {
  const m = keyUid.exec(uid.toString('utf8'));
  const key = m ? deps.cluster.keys.get(m[1]!) : undefined;
  if (!m || !key || key.state === 'PendingDeletion' || (want !== 'any' && m[2] !== want)) {
    throw new P11Error(CKR.KEY_HANDLE_INVALID, `no such ${want === 'priv' ? 'private ' : want === 'pub' ? 'public ' : ''}key: ${uid.toString('utf8').slice(0, 80)}`);
  }
  log.keyId = key.keyId;
  return key;
}

function specOf(key: KeyRecord): KeySpec {
  if (!isKeySpec(key.keySpec)) throw new P11Error(CKR.GENERAL_ERROR, `key ${key.keyId} has unknown key spec ${key.keySpec}`);
  return key.keySpec;
}

/** Every object the principal may see (all of them, for now: the policy seam decides per key). */
function allObjects(deps: P11Deps, abi: Abi): P11Object[] {
  const certs = deps.store.certificates();
  const certObjects = certs.map((c) => certificateObject(c, abi));
  const subjectBySpki = new Map(certObjects.map((o) => [o.attrs.get(CKA.PUBLIC_KEY_INFO)!.toString('base64'), o.attrs.get(CKA.SUBJECT)!]));
  const aliases = new Map<string, string[]>();
  for (const a of deps.kmsState.aliases()) aliases.set(a.keyId, [...(aliases.get(a.keyId) ?? []), a.name.slice('alias/'.length)]);
  const out: P11Object[] = [];
  for (const key of deps.cluster.keys.list()) {
    if (key.state === 'PendingDeletion' || !isKeySpec(key.keySpec)) continue;
    const labels = labelsOf(deps, key, aliases.get(key.keyId) ?? []);
    const names = {
      labels: labels.length ? labels : [key.keyId],
      ckaId: Buffer.from(ckaIdOf(deps, key), 'hex'),
      subject: subjectBySpki.get(key.publicKey) ?? Buffer.alloc(0),
    };
    out.push(...keyObjects(key, names, abi));
  }
  return [...out, ...certObjects];
}

/**
 * Every name a key answers to as CKA_LABEL: its aliases and the label it was generated with.
 * The first is its CKA_LABEL: the one C_SetAttributeValue chose, else the first by name.
 */
function labelsOf(deps: P11Deps, key: KeyRecord, aliases: readonly string[]): string[] {
  const tagLabel = key.tags.find((t) => t.TagKey === TAG_LABEL)?.TagValue;
  const labels = [...new Set([...aliases, ...(tagLabel ? [tagLabel] : [])])].sort();
  const chosen = deps.store.keyMeta(key.keyId)?.label;
  return chosen !== undefined && labels.includes(chosen) ? [chosen, ...labels.filter((l) => l !== chosen)] : labels;
}

/** A key's [public, private] objects as they are now. */
const objectsOfKey = (deps: P11Deps, abi: Abi, keyId: string) => allObjects(deps, abi).filter((o) => o.uid.startsWith(`k:${keyId}:`));

function find(deps: P11Deps, abi: Abi, principal: Principal, args: unknown[]): Value[] {
  const [template] = z.tuple([templateSchema]).parse(args);
  authorize(principal, 'ListKeys');
  return [allObjects(deps, abi).filter((o) => matches(o, template)).map(encodeObject)];
}

// ---- cryptographic operations ----------------------------------------------------------

const cryptoArgs = z.tuple([z.union([bytes, templateSchema]), uint, valueList, bytes, z.union([z.literal(0), z.literal(1)])]);
const provenArgs = z.tuple([...cryptoArgs.def.items, proofSchema]);

async function sign(deps: P11Deps, principal: Principal, args: unknown[], log: RequestLog): Promise<Value[]> {
  const [uid, mech, params, input, isDigest, proof] = provenArgs.parse(args);
  requireRole(principal, 'Sign', 'signing');
  if (!Buffer.isBuffer(uid)) throw new P11Error(CKR.KEY_HANDLE_INVALID, 'signing needs a token key');
  const key = keyOf(deps, uid, 'priv', log);
  const plan = planSignature(mech, params, input, isDigest === 1, specOf(key));
  const context = { algorithm: plan.algorithm, messageType: plan.messageType, digest: messageDigestFor(plan.algorithm, plan.messageType, plan.message) };
  const allowed = authorize(principal, 'Sign', key, { context });
  log.algorithm = plan.algorithm;
  log.digest = sha256Hex(plan.message);
  const evidence = p11Evidence(principal, 'Sign', { uid, mech, params, input, isDigest, proof });
  const signature = await deps.cluster.sign({
    keyId: key.keyId,
    algorithm: plan.algorithm,
    messageType: plan.messageType,
    message: plan.message,
    trace: log.trace,
    evidence: { evidence, ...(allowed.signApprovals.length ? { signApprovals: allowed.signApprovals } : {}) },
  });
  // Per-signature approvals are spent once the signature exists.
  await gatewayPolicy().proposals.consume(allowed.consumeNonces);
  log.output = 'signature';
  return [Buffer.from(plan.ecdsa ? ecdsaDerToRaw(plan.ecdsa, signature) : signature)];
}

/** The public key of a request: a token key (usable for `usage`) or a session key's attributes. */
function publicKeyOf(deps: P11Deps, abi: Abi, principal: Principal | undefined, ref: Buffer | Template, usage: KeyRecord['keyUsage'], operation: string, log: RequestLog) {
  if (!Buffer.isBuffer(ref)) return sessionKeySpki(new Map(ref), abi);
  const key = keyOf(deps, ref, 'any', log);
  requireRole(principal!, operation, CHECKED[operation.toLowerCase()]!.what);
  authorize(principal!, operation, key);
  deps.cluster.usableKey(key.keyId, usage);
  return { keySpec: specOf(key), spki: Buffer.from(key.publicKey, 'base64') };
}

function signatureLength(spki: Buffer): number {
  const p = parseSpki(spki);
  return p.kind === 'rsa' ? Math.ceil(p.modulusBits / 8) : p.kind === 'ed25519' ? 64 : p.keySpec === 'ECC_NIST_P384' ? 96 : 64;
}

function verify(deps: P11Deps, abi: Abi, principal: Principal | undefined, args: unknown[], log: RequestLog): Value[] {
  const [ref, mech, params, input, isDigest, signature] = z.tuple([...cryptoArgs.def.items, bytes]).parse(args);
  const { keySpec, spki } = publicKeyOf(deps, abi, principal, ref, 'SIGN_VERIFY', 'Verify', log);
  const plan = planSignature(mech, params, input, isDigest === 1, keySpec);
  if (signature.length !== signatureLength(spki)) throw new P11Error(CKR.SIGNATURE_LEN_RANGE, `a signature by this key is ${signatureLength(spki)} bytes, not ${signature.length}`);
  const ok = verifySignature({ keySpec, spki, algorithm: plan.algorithm, messageType: plan.messageType, message: plan.message, signature, signatureFormat: plan.ecdsa ? 'raw' : 'der' });
  if (!ok) throw new P11Error(CKR.SIGNATURE_INVALID, 'the signature does not verify');
  return [];
}

function encryptOp(deps: P11Deps, abi: Abi, principal: Principal | undefined, args: unknown[], log: RequestLog): Value[] {
  const [ref, mech, params, data] = cryptoArgs.parse(args);
  const { keySpec, spki } = publicKeyOf(deps, abi, principal, ref, 'ENCRYPT_DECRYPT', 'Encrypt', log);
  return [encrypt(mech, params, data, spki, keySpec)];
}

async function decrypt(deps: P11Deps, principal: Principal, args: unknown[], log: RequestLog): Promise<Value[]> {
  const [uid, mech, params, ciphertext, isDigest, proof] = provenArgs.parse(args);
  requireRole(principal, 'Decrypt', 'decryption');
  if (!Buffer.isBuffer(uid)) throw new P11Error(CKR.KEY_HANDLE_INVALID, 'decryption needs a token key');
  const key = keyOf(deps, uid, 'priv', log);
  const algorithm = planDecryption(mech, params, specOf(key));
  authorize(principal, 'Decrypt', key, { context: { algorithm } });
  const parsed = parseSpki(Buffer.from(key.publicKey, 'base64'));
  if (parsed.kind !== 'rsa') throw new P11Error(CKR.KEY_TYPE_INCONSISTENT, 'not an RSA key');
  const k = Math.ceil(parsed.modulusBits / 8);
  if (ciphertext.length !== k) throw new P11Error(CKR.ENCRYPTED_DATA_LEN_RANGE, `a ciphertext for this key is ${k} bytes, not ${ciphertext.length}`);
  const c = BigInt('0x' + ciphertext.toString('hex'));
  if (c === 0n || c >= parsed.n) throw new P11Error(CKR.ENCRYPTED_DATA_INVALID, 'the ciphertext is not below the modulus');
  log.algorithm = algorithm;
  log.digest = sha256Hex(ciphertext);
  const evidence = p11Evidence(principal, 'Decrypt', { uid, mech, params, input: ciphertext, isDigest, proof });
  const plaintext = await deps.cluster.decrypt({ keyId: key.keyId, algorithm, ciphertext, trace: log.trace, evidence: { evidence } });
  log.output = 'plaintext';
  return [Buffer.from(plaintext)];
}

// ---- key generation --------------------------------------------------------------------

/**
 * How a new key is named: CKA_LABEL becomes the KMS alias `alias/<label>` (shared with the KMS
 * facade), CKA_ID — when given — is kept beside the key in place of the UUID's bytes. Both are
 * checked, and reserved against concurrent creations, before the (slow) key is made.
 */
interface KeyNaming {
  alias?: string;
  ckaId?: string;
}
/** Aliases and CKA_IDs promised to key creations still running. */
const pendingAliases = new Set<string>();
const pendingIds = new Set<string>();

/** CKA_ID: given at generation (kept beside the key, or as a tag through a proposal), else the UUID's bytes. */
const ckaIdOf = (deps: P11Deps, key: KeyRecord): string => {
  const tagged = key.tags.find((t) => t.TagKey === TAG_ID)?.TagValue;
  return deps.store.keyMeta(key.keyId)?.ckaId ?? (tagged && /^(?:[0-9a-f]{2}){1,128}$/.test(tagged) ? tagged : uuidBytes(key.keyId).toString('hex'));
};

function keyNaming(deps: P11Deps, label: Buffer | undefined, id: Buffer | undefined): KeyNaming {
  const naming: KeyNaming = {};
  if (label?.length) {
    const alias = `alias/${label.toString('utf8')}`;
    try {
      checkAliasName(alias);
    } catch (e) {
      throw new P11Error(CKR.ATTRIBUTE_VALUE_INVALID, `CKA_LABEL becomes the KMS alias ${alias}: ${(e as Error).message}`);
    }
    const tagged = deps.cluster.keys.list().some((k) => k.tags.some((t) => t.TagKey === TAG_LABEL && t.TagValue === alias.slice('alias/'.length)));
    if (pendingAliases.has(alias) || deps.kmsState.alias(alias) || tagged) throw new P11Error(CKR.ATTRIBUTE_VALUE_INVALID, `CKA_LABEL: the alias ${alias} names another key`);
    naming.alias = alias;
  }
  if (id?.length) {
    if (id.length > MAX_ID) throw new P11Error(CKR.ATTRIBUTE_VALUE_INVALID, `CKA_ID longer than ${MAX_ID} bytes`);
    const ckaId = id.toString('hex');
    if (pendingIds.has(ckaId) || deps.cluster.keys.list().some((k) => ckaIdOf(deps, k) === ckaId)) throw new P11Error(CKR.ATTRIBUTE_VALUE_INVALID, 'another key already has this CKA_ID');
    naming.ckaId = ckaId;
  }
  return naming;
}

/** Makes (or imports) a key under its names; returns its [public, private] objects. */
async function createNamedKey(
  deps: P11Deps,
  abi: Abi,
  log: RequestLog,
  naming: KeyNaming,
  req: { keySpec: KeySpec; keyUsage: KeyRecord['keyUsage']; description: string; pkcs8Pem?: string; creation?: Creation },
): Promise<[P11Object, P11Object]> {
  if (naming.alias) pendingAliases.add(naming.alias);
  if (naming.ckaId) pendingIds.add(naming.ckaId);
  try {
    let record: KeyRecord;
    try {
      const { creation, ...key } = req;
      record = await deps.cluster.createKey({ ...key, trace: log.trace, ...(creation ? { evidence: creation } : {}) });
    } catch (e) {
      if (e instanceof ClusterError && e.code === 'unsupported') throw new P11Error(CKR.DOMAIN_PARAMS_INVALID, e.message);
      throw e;
    }
    log.keyId = record.keyId;
    log.output = 'key';
    const ckaId = naming.ckaId;
    if (ckaId) await deps.store.exclusive(() => deps.store.setKeyMeta(record.keyId, { ckaId }));
    if (naming.alias) {
      const alias = naming.alias;
      await deps.kmsState.exclusive(async () => {
        if (deps.kmsState.alias(alias)) throw new P11Error(CKR.ATTRIBUTE_VALUE_INVALID, `key ${record.keyId} was made, but the alias ${alias} was taken meanwhile`);
        await deps.kmsState.putAlias(alias, record.keyId);
      });
    }
    const objects = objectsOfKey(deps, abi, record.keyId);
    return [objects.find((o) => o.uid.endsWith(':pub'))!, objects.find((o) => o.uid.endsWith(':priv'))!];
  } finally {
    if (naming.alias) pendingAliases.delete(naming.alias);
    if (naming.ckaId) pendingIds.delete(naming.ckaId);
  }
}

/** C_GenerateKeyPair's arguments: the mechanism, both templates, and (a module of this version) the administrator's proof. */
const keygenArgs = z.union([z.tuple([uint, templateSchema, templateSchema]), z.tuple([uint, templateSchema, templateSchema, proofSchema])]);

async function generateKeyPair(deps: P11Deps, abi: Abi, principal: Principal, args: unknown[], log: RequestLog): Promise<Value[]> {
  const [mech, pubT, privT, proof] = keygenArgs.parse(args);
  requireRole(principal, 'CreateKey', 'key generation');
  const pub = new Map(pubT);
  const priv = new Map(privT);
  if (isFalse(pub.get(CKA.TOKEN)) || isFalse(priv.get(CKA.TOKEN))) throw new P11Error(CKR.TEMPLATE_INCONSISTENT, 'mpchsm keys are token objects (CKA_TOKEN false cannot be honoured)');
  if (isTrue(priv.get(CKA.EXTRACTABLE)) || isFalse(priv.get(CKA.SENSITIVE))) throw new P11Error(CKR.TEMPLATE_INCONSISTENT, 'mpchsm private keys are sensitive and never extractable');
  const { keySpec, keyUsage } = keyPairRequested(mech, pub, priv, abi);
  const naming = keyNaming(deps, pick(pub, priv, CKA.LABEL), pick(pub, priv, CKA.ID));
  const description = `created with PKCS#11 C_GenerateKeyPair by ${principal.name}`;
  const evidence = proof?.length ? keygenEvidence(principal, abi, { mech, pubT, privT, proof }) : undefined;
  await authorizeCreate(principal, { KeySpec: keySpec, KeyUsage: keyUsage, Description: description }, naming, evidence !== undefined);
  const creation = evidence && { keySpec, keyUsage, origin: 'AWS_KMS' as const, evidence };
  const objects = await createNamedKey(deps, abi, log, naming, { keySpec, keyUsage, description, ...(creation ? { creation } : {}) });
  return objects.map(encodeObject);
}

/**
 * The administrator's key generation as each signer checks it (policy/admin-evidence.ts): the
 * module's arguments as they came and its MAC under the SO PIN's request key, which the gateway
 * does not hold. It is the administrator's approval where one is the quorum.
 */
function keygenEvidence(principal: Principal, abi: Abi, a: { mech: number; pubT: Value; privT: Value; proof: [Buffer, number, Buffer, Buffer] }): P11KeygenEvidence {
  return {
    kind: 'p11-keygen',
    principal: principal.name,
    ...provenBy(principal, a.proof),
    mechanism: a.mech,
    publicTemplate: encodeValue(a.pubT).toString('hex'),
    privateTemplate: encodeValue(a.privT).toString('hex'),
    abi: (abi.ulongBytes === 8 ? 1 : 0) | (abi.bigEndian ? 2 : 0),
  };
}

/** A relabelling as each signer checks it (policy/admin-evidence.ts): the module's arguments as they came and its MAC. */
function labelEvidence(principal: Principal, uid: Buffer, template: Value, proof: [Buffer, number, Buffer, Buffer]): P11LabelEvidence {
  return { kind: 'p11-label', principal: principal.name, ...provenBy(principal, proof), object: uid.toString('utf8'), template: encodeValue(template).toString('hex') };
}

/** Tags that carry a PKCS#11 key's names through a proposal (the KMS API executes it). */
const TAG_LABEL = 'mpchsm:pkcs11:label';
const TAG_ID = 'mpchsm:pkcs11:id';

/**
 * CreateKey's decision; `requestApproved`: the module proved the administrator's request, which
 * is that administrator's approval. One still under quorum becomes a proposal, made as the KMS
 * API makes it (ProposalStore.create): the approval that completes it runs KMS CreateKey with
 * these parameters, and the key then appears as objects, named by the tags.
 */
async function authorizeCreate(principal: Principal, parameters: { KeySpec: KeySpec; KeyUsage: KeyRecord['keyUsage']; Description: string }, naming: KeyNaming, requestApproved: boolean): Promise<void> {
  try {
    authorize(principal, 'CreateKey', undefined, { context: {}, requestApproved });
  } catch (e) {
    if (!(e instanceof ApprovalRequired) || e.need.kind !== 'quorum') throw e;
    const tags = [
      ...(naming.alias ? [{ TagKey: TAG_LABEL, TagValue: naming.alias.slice('alias/'.length) }] : []),
      ...(naming.ckaId ? [{ TagKey: TAG_ID, TagValue: naming.ckaId }] : []),
    ];
    const p = await gatewayPolicy().proposals.create(principal.name, e.need.operation, { ...parameters, ...(tags.length ? { Tags: tags } : {}) });
    throw new P11Error(
      CKR.FUNCTION_REJECTED,
      `${e.message}. Proposal ${p.id} holds this key generation until ${e.need.m} of the ${e.need.n} administrators approve it; each runs: mpchsm approve ${p.id} --as <administrator>; the key then appears as objects`,
    );
  }
}

/**
 * Import of a legacy RSA key (C_CreateObject, CKO_PRIVATE_KEY, by a key administrator): the
 * components go once to the key ceremony, which deals shares and forgets the key. EC and
 * Edwards keys are born by distributed key generation only.
 */
async function importRsaKey(deps: P11Deps, abi: Abi, principal: Principal, t: Map<number, Buffer>, log: RequestLog): Promise<P11Object> {
  requireRole(principal, 'CreateKey', 'key import');
  if (t.get(CKA.KEY_TYPE) === undefined || abi.readUlong(t.get(CKA.KEY_TYPE)!) !== BigInt(CKK.RSA)) {
    throw new P11Error(CKR.TEMPLATE_INCONSISTENT, 'only RSA keys are imported: EC and Edwards keys are born by distributed key generation');
  }
  if (isFalse(t.get(CKA.SENSITIVE)) || isTrue(t.get(CKA.EXTRACTABLE))) throw new P11Error(CKR.TEMPLATE_INCONSISTENT, 'mpchsm private keys are sensitive and never extractable');
  const parts = [CKA.MODULUS, CKA.PUBLIC_EXPONENT, CKA.PRIVATE_EXPONENT, CKA.PRIME_1, CKA.PRIME_2, CKA.EXPONENT_1, CKA.EXPONENT_2, CKA.COEFFICIENT].map((a) => t.get(a));
  if (parts.some((p) => !p?.length)) throw new P11Error(CKR.TEMPLATE_INCOMPLETE, 'an RSA key import needs the modulus, both exponents, both primes and the CRT values');
  const [n, e, d, p, q, dp, dq, qi] = parts.map((b) => b!.toString('base64url'));
  let pkcs8Pem: string;
  let bits: number;
  try {
    const key = createPrivateKey({ key: { kty: 'RSA', n, e, d, p, q, dp, dq, qi }, format: 'jwk' });
    bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    pkcs8Pem = key.export({ type: 'pkcs8', format: 'pem' }).toString();
  } catch (err) {
    throw new P11Error(CKR.ATTRIBUTE_VALUE_INVALID, `not an RSA private key: ${(err as Error).message}`);
  } finally {
    for (const b of parts) b!.fill(0);
  }
  const keySpec = RSA_BITS[String(bits)];
  if (!keySpec) throw new P11Error(CKR.KEY_SIZE_RANGE, `RSA keys are 2048, 3072 or 4096 bits, not ${bits}`);
  const keyUsage = usageOf(keySpec, isTrue(t.get(CKA.SIGN)), isTrue(t.get(CKA.DECRYPT)));
  const naming = keyNaming(deps, t.get(CKA.LABEL), t.get(CKA.ID));
  try {
    authorize(principal, 'CreateKey', undefined, { context: {} });
  } catch (e) {
    // A proposal would have to hold the key material until approved: imports are not proposed.
    if (e instanceof ApprovalRequired) throw new P11Error(CKR.FUNCTION_REJECTED, `${e.message}; a PKCS#11 key import cannot wait for approvals (a proposal would hold the key material)`);
    throw e;
  }
  const [, priv] = await createNamedKey(deps, abi, log, naming, { keySpec, keyUsage, pkcs8Pem, description: `imported with PKCS#11 C_CreateObject by ${principal.name}` });
  return priv;
}

// ---- certificates ----------------------------------------------------------------------

/** Attributes a certificate template may carry; the DER-derived ones are recomputed. */
const CERT_TEMPLATE_ATTRIBUTES = new Set<number>([
  CKA.CLASS, CKA.TOKEN, CKA.PRIVATE, CKA.LABEL, CKA.ID, CKA.VALUE, CKA.CERTIFICATE_TYPE, CKA.SUBJECT, CKA.ISSUER,
  CKA.SERIAL_NUMBER, CKA.TRUSTED, CKA.CERTIFICATE_CATEGORY, CKA.MODIFIABLE, CKA.COPYABLE, CKA.DESTROYABLE,
  CKA.START_DATE, CKA.END_DATE, CKA.URL, CKA.CHECK_VALUE, CKA.JAVA_MIDP_SECURITY_DOMAIN, CKA.HASH_OF_SUBJECT_PUBLIC_KEY,
  CKA.HASH_OF_ISSUER_PUBLIC_KEY, CKA.PUBLIC_KEY_INFO, CKA.APPLICATION,
]);

async function createObject(deps: P11Deps, abi: Abi, principal: Principal, args: unknown[], log: RequestLog): Promise<Value[]> {
  const [template] = z.tuple([templateSchema]).parse(args);
  const t = new Map(template);
  const cls = t.has(CKA.CLASS) ? abi.readUlong(t.get(CKA.CLASS)!) : undefined;
  if (cls === undefined) throw new P11Error(CKR.TEMPLATE_INCOMPLETE, 'CKA_CLASS is required');
  if (cls === BigInt(CKO.PRIVATE_KEY)) return [encodeObject(await importRsaKey(deps, abi, principal, t, log))];
  if (cls === BigInt(CKO.PUBLIC_KEY)) throw new P11Error(CKR.TEMPLATE_INCONSISTENT, 'a token public key comes with its private key (import the private key); a public key alone can be a session object');
  if (cls !== BigInt(CKO.CERTIFICATE)) throw new P11Error(CKR.TEMPLATE_INCONSISTENT, 'the token stores certificates only (other objects can be session objects)');
  const certType = t.get(CKA.CERTIFICATE_TYPE);
  if (certType && abi.readUlong(certType) !== BigInt(CKC_X_509)) throw new P11Error(CKR.TEMPLATE_INCONSISTENT, 'only X.509 certificates (CKC_X_509)');
  for (const type of t.keys()) if (!CERT_TEMPLATE_ATTRIBUTES.has(type)) throw new P11Error(CKR.ATTRIBUTE_TYPE_INVALID, `attribute 0x${type.toString(16)} is not a certificate attribute`);
  const value = t.get(CKA.VALUE);
  if (!value?.length) throw new P11Error(CKR.TEMPLATE_INCOMPLETE, 'CKA_VALUE (the DER certificate) is required');
  const parts = parseCertificate(value);
  if (isTrue(t.get(CKA.TRUSTED)) && principal.role !== 'admin') throw new P11Error(CKR.ATTRIBUTE_READ_ONLY, 'only a key administrator (CKU_SO) may mark a certificate trusted');
  const category = t.has(CKA.CERTIFICATE_CATEGORY) ? Number(abi.readUlong(t.get(CKA.CERTIFICATE_CATEGORY)!) ?? 99n) : 0;
  if (!(category >= 0 && category <= 3)) throw new P11Error(CKR.ATTRIBUTE_VALUE_INVALID, 'CKA_CERTIFICATE_CATEGORY must be 0..3');
  const label = t.get(CKA.LABEL) ?? Buffer.alloc(0);
  if (label.length > MAX_LABEL) throw new P11Error(CKR.ATTRIBUTE_VALUE_INVALID, `CKA_LABEL longer than ${MAX_LABEL} bytes`);
  // Without a CKA_ID, a certificate takes the ID of the key it certifies, which pairs them.
  let id = t.get(CKA.ID);
  if (id === undefined) {
    const key = deps.cluster.keys.list().find((k) => Buffer.from(k.publicKey, 'base64').equals(parts.spki));
    id = key ? Buffer.from(ckaIdOf(deps, key), 'hex') : Buffer.alloc(0);
  }
  if (id.length > MAX_ID) throw new P11Error(CKR.ATTRIBUTE_VALUE_INVALID, `CKA_ID longer than ${MAX_ID} bytes`);
  const stored = {
    id: randomUUID(),
    value: value.toString('base64'),
    label: label.toString('utf8'),
    ckaId: id.toString('hex'),
    private: isTrue(t.get(CKA.PRIVATE)),
    trusted: isTrue(t.get(CKA.TRUSTED)),
    category,
    createdBy: principal.name,
    creationDate: Date.now(),
  };
  await deps.store.exclusive(() => deps.store.addCertificate(stored));
  deps.log.info({ certificate: stored.id, principal: principal.name }, 'pkcs11 certificate stored');
  return [encodeObject(certificateObject(stored, abi))];
}

async function destroyObject(deps: P11Deps, principal: Principal, args: unknown[], log: RequestLog): Promise<Value[]> {
  const [uid] = z.tuple([bytes]).parse(args);
  const name = uid.toString('utf8');
  if (keyUid.test(name)) {
    // Either object of a key stands for the key: destroying it schedules the key's deletion
    // (KMS's pending window applies, and the governance's quorum: then it is a proposal).
    const key = keyOf(deps, uid, 'any', log);
    requireRole(principal, 'ScheduleKeyDeletion', 'destroying a key (KMS ScheduleKeyDeletion)');
    await runKms(deps, principal, 'ScheduleKeyDeletion', { KeyId: key.keyId });
    deps.log.info({ keyId: key.keyId, principal: principal.name }, 'pkcs11 key deletion scheduled');
    return [];
  }
  const m = /^c:([0-9a-f-]{36})$/.exec(name);
  if (!m || !(await deps.store.exclusive(() => deps.store.removeCertificate(m[1]!)))) throw new P11Error(CKR.OBJECT_HANDLE_INVALID, 'no such object');
  deps.log.info({ certificate: m[1], principal: principal.name }, 'pkcs11 certificate removed');
  return [];
}

// ---- key management through the KMS facade ---------------------------------------------

/**
 * Runs a KMS operation as `principal`, exactly as the KMS API would (authorization, the
 * governance's quorum, forwarding the change to the signers). One under quorum becomes a
 * proposal and is answered CKR_FUNCTION_REJECTED naming it.
 */
async function runKms(deps: P11Deps, principal: Principal, operation: string, parameters: Record<string, unknown>, evidence?: P11LabelEvidence): Promise<void> {
  const op = OPERATIONS[operation]!;
  const ctx = new OpContext(deps, deps.kmsState, new Arns(deps.config.region, deps.config.account), principal, operation, { parameters, ...(evidence ? { evidence } : {}) });
  await executeOperation(ctx, op, parseInput(op.input, parameters, operation));
}

/**
 * C_SetAttributeValue on a key: only CKA_LABEL, which is a KMS alias. A new label becomes an
 * alias of the key (KMS CreateAlias) and its CKA_LABEL; the key keeps its other aliases (a
 * KMS client may use them) and answers to each in searches. Answers the key's objects.
 */
/** C_SetAttributeValue's arguments: the object, the template, and (a module of this version) the administrator's proof. */
const setAttributesArgs = z.union([z.tuple([bytes, templateSchema]), z.tuple([bytes, templateSchema, proofSchema])]);

async function setAttributes(deps: P11Deps, abi: Abi, principal: Principal, args: unknown[], log: RequestLog): Promise<Value[]> {
  const [uid, template, proof] = setAttributesArgs.parse(args);
  if (!keyUid.test(uid.toString('utf8'))) throw new P11Error(CKR.ACTION_PROHIBITED, 'only keys are modifiable (their CKA_LABEL); certificates are not');
  const key = keyOf(deps, uid, 'any', log);
  requireRole(principal, 'CreateAlias', "changing a key's label (a KMS alias)");
  for (const [type] of template) if (type !== CKA.LABEL) throw new P11Error(CKR.ATTRIBUTE_READ_ONLY, `attribute 0x${type.toString(16)} of a key cannot be changed; CKA_LABEL can`);
  const label = template.at(-1)?.[1]; // every entry is a CKA_LABEL: the last one counts
  if (label !== undefined) {
    if (label.length === 0) throw new P11Error(CKR.ATTRIBUTE_VALUE_INVALID, "a key's CKA_LABEL is a KMS alias name and cannot be empty");
    const name = label.toString('utf8');
    const aliases = deps.kmsState.aliases().filter((a) => a.keyId === key.keyId).map((a) => a.name.slice('alias/'.length));
    if (!labelsOf(deps, key, aliases).includes(name)) {
      const { alias } = keyNaming(deps, label, undefined);
      // The module's proof is the administrator's request, which each signer checks before the alias.
      const evidence = proof?.length ? labelEvidence(principal, uid, template, proof) : undefined;
      await runKms(deps, principal, 'CreateAlias', { AliasName: alias!, TargetKeyId: key.keyId }, evidence);
    }
    await deps.store.exclusive(() => deps.store.setKeyMeta(key.keyId, { label: name }));
    deps.log.info({ keyId: key.keyId, principal: principal.name }, 'pkcs11 key relabelled');
  }
  return [objectsOfKey(deps, abi, key.keyId).map(encodeObject)];
}

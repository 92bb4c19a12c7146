// SigV4 (AWS Signature Version 4) verification of a principal's KMS request, once for every
// check that needs it: a signer authenticating a request for the gateway (signers/node/guard/),
// and the request evidence behind a Sign, Decrypt or administrator's change (evidence.ts,
// admin-evidence.ts). The signature is recomputed by @smithy/signature-v4 (the signer the AWS
// SDKs use) over the request as received — exactly the headers the caller signed, its own
// X-Amz-Date and the body's real SHA-256 — with the principal's secret from the verifier's own
// registry, and compared in constant time. Around that: the credential scope must name this
// region, the `kms` service and a date matching X-Amz-Date; the date must be within ±5 minutes.
// A byte-identical request within that window verifies again, as at AWS (what a repeat may do is
// for the caller: gateway/kms/repeats.ts, the signers' replay ledger). A refusal is a SigV4Error
// whose type and message are AWS's, so SDKs react as they do to AWS (e.g. they retry "Signature
// expired" after correcting their clock offset), and whose code names the check that failed.
import { createHash, timingSafeEqual } from 'node:crypto';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import type { SigV4Refusal } from '../contract/signer-rpc/errors.js';

/** Accepted clock difference for a request's own date, each way (SigV4's, and every kind of request evidence's). */
export const EVIDENCE_SKEW_MS = 5 * 60_000;
const SERVICE = 'kms';

/** An HTTP request as a client sent it, forwarded to whoever checks it. */
export interface ForwardedHttpRequest {
  method: string;
  /** Path without the query string, as received. */
  path: string;
  query?: Record<string, string | string[]>;
  /** Header values as received (names in any case; Node's IncomingHttpHeaders fits). */
  headers: Record<string, string | string[] | undefined>;
  body: Uint8Array;
}

/** A request as the gateway's HTTP server received it. */
export interface ReceivedRequest extends ForwardedHttpRequest {
  /** Decoded query parameters. */
  query: Record<string, string | string[]>;
  /** Header values by lower-case name (repeated headers as several values). */
  headers: Record<string, string[] | undefined>;
}

/** AWS's names for an authentication failure. */
export type SigV4ErrorType = SigV4Refusal;

/** Which check failed. */
export type SigV4ErrorCode =
  | 'authorization' // no single well-formed Authorization header
  | 'credential' // the Credential is not keyid/date/region/service/aws4_request
  | 'temporary-credentials' // an STS session token: no mpchsm principal has one
  | 'unknown-key' // subject: the access key id
  | 'scope' // another region or service; subject: region/service
  | 'date' // X-Amz-Date missing, malformed or not the credential scope date
  | 'skew' // signed more than 5 minutes from now; subject: the X-Amz-Date
  | 'unsigned-header' // a header that must be signed is not; subject: its name
  | 'body-hash' // a signed x-amz-content-sha256 that is not the body's
  | 'absent-header' // a signed header that was not sent; subject: its name
  | 'signature'; // the signature does not verify

/** A request SigV4 does not authenticate: AWS's error `type` and wording, and the failed check. */
export class SigV4Error extends Error {
  constructor(
    readonly code: SigV4ErrorCode,
    readonly type: SigV4ErrorType,
    message: string,
    /** What the failed check is about, where the code says so. */
    readonly subject?: string,
  ) {
    super(message);
    this.name = 'SigV4Error';
  }
}

export interface SigV4CheckOptions {
  region: string;
  /** The verifier's own registry: principal name and secret of an access key id. */
  secretFor: (accessKeyId: string) => { principal: string; secret: string } | undefined;
  /** The time the request's own date must be within ±5 minutes of. */
  now: number;
}

/** A request whose signature verified: who signed it, when, and the header values it signed. */
export interface SigV4Verified {
  accessKeyId: string;
  principal: string;
  signature: string;
  signedAt: number;
  /** The signed headers by lower-case name, as they were signed (repeated values joined by commas). */
  signed: Record<string, string>;
}

/** 20240101T000000Z ↔ epoch ms. */
export function amzDate(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
}
const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;
function parseAmzDate(v: string): number | undefined {
  const m = AMZ_DATE.exec(v);
  if (!m) return undefined;
  const ms = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
  return amzDate(ms) === v ? ms : undefined; // rejects 20241340T…
}

const incomplete = (code: SigV4ErrorCode, msg: string) => new SigV4Error(code, 'IncompleteSignatureException', msg);
const invalid = (code: SigV4ErrorCode, msg: string, subject?: string) => new SigV4Error(code, 'InvalidSignatureException', msg, subject);
const unrecognized = (code: SigV4ErrorCode, subject?: string) => new SigV4Error(code, 'UnrecognizedClientException', 'The security token included in the request is invalid.', subject);

interface Authorization {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
  terminator: string;
  signedHeaders: string[];
  signature: string;
}

function parseAuthorization(header: string): Authorization {
  const space = header.indexOf(' ');
  const algorithm = space < 0 ? header : header.slice(0, space);
  if (algorithm !== 'AWS4-HMAC-SHA256') throw incomplete('authorization', `Unsupported AWS 'algorithm': '${algorithm.slice(0, 40)}'; use AWS4-HMAC-SHA256`);
  const params = new Map<string, string>();
  for (const part of header.slice(space + 1).split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) params.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  for (const p of ['Credential', 'SignedHeaders', 'Signature']) {
    if (!params.get(p)) throw incomplete('authorization', `Authorization header requires '${p}' parameter`);
  }
  const credential = params.get('Credential')!.split('/');
  if (credential.length !== 5) {
    throw incomplete('credential', 'Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term');
  }
  const [accessKeyId, date, region, service, terminator] = credential as [string, string, string, string, string];
  const signature = params.get('Signature')!;
  if (!/^[0-9a-f]{64}$/.test(signature)) throw incomplete('authorization', 'Signature must be 64 lower-case hex digits');
  return { accessKeyId, date, region, service, terminator, signedHeaders: params.get('SignedHeaders')!.split(';'), signature };
}

/** 'x-amz-date' → 'X-Amz-Date', as AWS names a header in its messages. */
const headerTitle = (name: string) => name.replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => dash + c.toUpperCase());

/**
 * Authenticates a request; answers who signed it, or throws the SigV4Error AWS would. Beside
 * host and x-amz-date, the headers in `mustSign` must be signed too.
 */
export async function verifySigV4(req: ForwardedHttpRequest, o: SigV4CheckOptions, mustSign: readonly string[] = []): Promise<SigV4Verified> {
  const headers = new Map<string, string[]>();
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined) continue;
    const name = k.toLowerCase();
    headers.set(name, [...(headers.get(name) ?? []), ...(typeof v === 'string' ? [v] : v)]);
  }
  const one = (name: string, code: SigV4ErrorCode): string | undefined => {
    const v = headers.get(name);
    if (v && v.length > 1) throw incomplete(code, `The ${name} header appears more than once`);
    return v?.[0];
  };
  const header = one('authorization', 'authorization');
  if (header === undefined) {
    const query = req.query ?? {};
    if ('X-Amz-Signature' in query || 'X-Amz-Credential' in query) throw incomplete('authorization', 'Presigned requests are not accepted; sign the Authorization header');
    throw new SigV4Error('authorization', 'MissingAuthenticationTokenException', 'Missing Authentication Token');
  }
  const auth = parseAuthorization(header);

  // Temporary credentials are AWS STS's; an mpchsm principal has none.
  if (one('x-amz-security-token', 'temporary-credentials') !== undefined) throw unrecognized('temporary-credentials');
  const cred = o.secretFor(auth.accessKeyId);
  if (cred === undefined) throw unrecognized('unknown-key', auth.accessKeyId);

  const dateHeader = one('x-amz-date', 'date');
  if (dateHeader === undefined) throw incomplete('date', "Authorization header requires existence of a 'X-Amz-Date' header");
  const signedAt = parseAmzDate(dateHeader);
  if (signedAt === undefined) throw incomplete('date', `X-Amz-Date '${dateHeader.slice(0, 32)}' is not an ISO-8601 basic date (YYYYMMDDTHHMMSSZ)`);
  if (auth.date !== dateHeader.slice(0, 8)) {
    throw invalid('date', `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${auth.date.slice(0, 8)}' != '${dateHeader.slice(0, 8)}', from '${dateHeader}'.`);
  }
  const scope = `${auth.region}/${auth.service}`;
  if (auth.region !== o.region) throw invalid('scope', `Credential should be scoped to a valid region, not '${auth.region.slice(0, 32)}'; this endpoint is ${o.region}.`, scope);
  if (auth.service !== SERVICE) throw invalid('scope', `Credential should be scoped to correct service: '${SERVICE}'.`, scope);
  if (auth.terminator !== 'aws4_request') throw invalid('credential', `Credential should be scoped with a valid terminator: 'aws4_request', not '${auth.terminator.slice(0, 32)}'.`);

  if (signedAt < o.now - EVIDENCE_SKEW_MS) {
    throw invalid('skew', `Signature expired: ${dateHeader} is now earlier than ${amzDate(o.now - EVIDENCE_SKEW_MS)} (${amzDate(o.now)} - 5 min.)`, dateHeader);
  }
  if (signedAt > o.now + EVIDENCE_SKEW_MS) {
    throw invalid('skew', `Signature not yet current: ${dateHeader} is still later than ${amzDate(o.now + EVIDENCE_SKEW_MS)} (${amzDate(o.now)} + 5 min.)`, dateHeader);
  }

  const signedNames = new Set(auth.signedHeaders);
  for (const name of ['host', 'x-amz-date', ...mustSign]) {
    if (!signedNames.has(name)) throw invalid('unsigned-header', `'${headerTitle(name)}' must be a 'SignedHeader' in the AWS Authorization.`, name);
  }
  const bodyHash = createHash('sha256').update(req.body).digest('hex');
  const declaredHash = one('x-amz-content-sha256', 'body-hash');
  // The signer would take a signed x-amz-content-sha256 as the body's hash; it must be the real one.
  if (signedNames.has('x-amz-content-sha256') && declaredHash !== bodyHash) {
    throw invalid('body-hash', "The provided 'x-amz-content-sha256' header does not match what was computed.");
  }

  const mismatch = 'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.';
  const signed: Record<string, string> = {};
  for (const name of signedNames) {
    const values = headers.get(name);
    // A header the caller says it signed but did not send cannot match what it signed.
    if (!values) throw invalid('absent-header', mismatch, name);
    signed[name] = values.map((v) => v.trim()).join(',');
  }
  const signer = new SignatureV4({
    service: SERVICE,
    region: o.region,
    credentials: { accessKeyId: auth.accessKeyId, secretAccessKey: cred.secret },
    sha256: Hash.bind(null, 'sha256'),
    applyChecksum: false,
  });
  const resigned = await signer.sign(
    { method: req.method, protocol: 'https:', hostname: signed.host!, path: req.path, query: req.query ?? {}, headers: signed, body: req.body },
    { signingDate: new Date(signedAt), signableHeaders: signedNames },
  );
  const expected = /Signature=([0-9a-f]{64})$/.exec(String(resigned.headers.authorization))?.[1];
  if (!expected || !timingSafeEqual(Buffer.from(expected, 'hex'), Buffer.from(auth.signature, 'hex'))) throw invalid('signature', mismatch);
  return { accessKeyId: auth.accessKeyId, principal: cred.principal, signature: auth.signature, signedAt, signed };
}

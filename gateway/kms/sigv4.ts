// SigV4 authentication of KMS requests. The signature is recomputed by @smithy/signature-v4
// (the signer the AWS SDKs use) over the request as received — exactly the headers the caller
// signed, its own X-Amz-Date and the body's real SHA-256 — with the principal's secret, and
// compared in constant time. Around that: the credential scope must name this region, the
// `kms` service and a date matching X-Amz-Date; the date must be within ±5 minutes. A
// byte-identical request within that window is the same request, as at AWS: it authenticates
// again (gateway/kms/repeats.ts answers it as the first was answered). Error names and
// wording follow AWS, so SDKs react as they do to AWS (e.g. they retry "Signature expired"
// after correcting their clock offset).
import { createHash, timingSafeEqual } from 'node:crypto';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { KmsError } from './errors.js';

const SKEW_MS = 5 * 60_000;

export interface ReceivedRequest {
  method: string;
  /** Path without the query string, as received. */
  path: string;
  /** Decoded query parameters. */
  query: Record<string, string | string[]>;
  /** Header values by lower-case name (repeated headers as several values). */
  headers: Record<string, string[] | undefined>;
  body: Uint8Array;
}

interface Authorization {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
  terminator: string;
  signedHeaders: string[];
  signature: string;
}

const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

/** 20240101T000000Z ↔ epoch ms. */
export function amzDate(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
}
function parseAmzDate(v: string): number | undefined {
  const m = AMZ_DATE.exec(v);
  if (!m) return undefined;
  const ms = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
  return amzDate(ms) === v ? ms : undefined; // rejects 20241340T…
}

const incomplete = (msg: string) => new KmsError('IncompleteSignatureException', msg);
const invalid = (msg: string) => new KmsError('InvalidSignatureException', msg);

function parseAuthorization(header: string): Authorization {
  const space = header.indexOf(' ');
  const algorithm = space < 0 ? header : header.slice(0, space);
  if (algorithm !== 'AWS4-HMAC-SHA256') throw incomplete(`Unsupported AWS 'algorithm': '${algorithm.slice(0, 40)}'; use AWS4-HMAC-SHA256`);
  const params = new Map<string, string>();
  for (const part of header.slice(space + 1).split(',')) {
    const eq = part.indexOf('=');
    if (eq > 0) params.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  for (const p of ['Credential', 'SignedHeaders', 'Signature']) {
    if (!params.get(p)) throw incomplete(`Authorization header requires '${p}' parameter`);
  }
  const credential = params.get('Credential')!.split('/');
  if (credential.length !== 5) {
    throw incomplete('Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term');
  }
  const [accessKeyId, date, region, service, terminator] = credential as [string, string, string, string, string];
  const signature = params.get('Signature')!;
  if (!/^[0-9a-f]{64}$/.test(signature)) throw incomplete('Signature must be 64 lower-case hex digits');
  return { accessKeyId, date, region, service, terminator, signedHeaders: params.get('SignedHeaders')!.split(';'), signature };
}

export class SigV4Verifier {

  constructor(
    private readonly opts: {
      region: string;
      service: string;
      /** The secret of an access key id, or undefined if the key is unknown. */
      secretFor: (accessKeyId: string) => string | undefined;
      now?: () => number;
    },
  ) {}

  /** Authenticates a request; resolves the access key id or throws the KmsError AWS would. */
  async verify(req: ReceivedRequest): Promise<string> {
    const now = (this.opts.now ?? Date.now)();
    const one = (name: string): string | undefined => {
      const v = req.headers[name];
      if (v && v.length > 1) throw incomplete(`The ${name} header appears more than once`);
      return v?.[0];
    };
    const header = one('authorization');
    if (header === undefined) {
      if ('X-Amz-Signature' in req.query || 'X-Amz-Credential' in req.query) throw incomplete('Presigned requests are not accepted; sign the Authorization header');
      throw new KmsError('MissingAuthenticationTokenException', 'Missing Authentication Token');
    }
    const auth = parseAuthorization(header);

    // Temporary credentials are AWS STS's; an mpchsm principal has none.
    const secret = one('x-amz-security-token') === undefined ? this.opts.secretFor(auth.accessKeyId) : undefined;
    if (secret === undefined) throw new KmsError('UnrecognizedClientException', 'The security token included in the request is invalid.');

    const dateHeader = one('x-amz-date');
    if (dateHeader === undefined) throw incomplete("Authorization header requires existence of a 'X-Amz-Date' header");
    const signedAt = parseAmzDate(dateHeader);
    if (signedAt === undefined) throw incomplete(`X-Amz-Date '${dateHeader.slice(0, 32)}' is not an ISO-8601 basic date (YYYYMMDDTHHMMSSZ)`);
    if (auth.date !== dateHeader.slice(0, 8)) {
      throw invalid(`Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${auth.date.slice(0, 8)}' != '${dateHeader.slice(0, 8)}', from '${dateHeader}'.`);
    }
    if (auth.region !== this.opts.region) throw invalid(`Credential should be scoped to a valid region, not '${auth.region.slice(0, 32)}'; this endpoint is ${this.opts.region}.`);
    if (auth.service !== this.opts.service) throw invalid(`Credential should be scoped to correct service: '${this.opts.service}'.`);
    if (auth.terminator !== 'aws4_request') throw invalid(`Credential should be scoped with a valid terminator: 'aws4_request', not '${auth.terminator.slice(0, 32)}'.`);

    if (signedAt < now - SKEW_MS) {
      throw invalid(`Signature expired: ${dateHeader} is now earlier than ${amzDate(now - SKEW_MS)} (${amzDate(now)} - 5 min.)`);
    }
    if (signedAt > now + SKEW_MS) {
      throw invalid(`Signature not yet current: ${dateHeader} is still later than ${amzDate(now + SKEW_MS)} (${amzDate(now)} + 5 min.)`);
    }

    const signed = new Set(auth.signedHeaders);
    if (!signed.has('host')) throw invalid("'Host' must be a 'SignedHeader' in the AWS Authorization.");
    if (!signed.has('x-amz-date')) throw invalid("'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.");
    const bodyHash = createHash('sha256').update(req.body).digest('hex');
    const declaredHash = one('x-amz-content-sha256');
    // The signer would take a signed x-amz-content-sha256 as the body's hash; it must be the real one.
    if (signed.has('x-amz-content-sha256') && declaredHash !== bodyHash) {
      throw invalid("The provided 'x-amz-content-sha256' header does not match what was computed.");
    }

    const headers: Record<string, string> = {};
    for (const name of signed) {
      const values = req.headers[name];
      // A header the caller says it signed but did not send cannot match; leaving it out lets
      // the comparison below fail as it must.
      if (values) headers[name] = values.map((v) => v.trim()).join(',');
    }
    const signer = new SignatureV4({
      service: this.opts.service,
      region: this.opts.region,
      credentials: { accessKeyId: auth.accessKeyId, secretAccessKey: secret },
      sha256: Hash.bind(null, 'sha256'),
      applyChecksum: false,
    });
    const resigned = await signer.sign(
      { method: req.method, protocol: 'http:', hostname: headers.host ?? '', path: req.path, query: req.query, headers, body: req.body },
      { signingDate: new Date(signedAt), signableHeaders: signed },
    );
    const expected = /Signature=([0-9a-f]{64})$/.exec(String(resigned.headers.authorization))?.[1];
    if (!expected || !timingSafeEqual(Buffer.from(expected, 'hex'), Buffer.from(auth.signature, 'hex'))) {
      throw invalid(
        'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.',
      );
    }
    return auth.accessKeyId;
  }
}

// Hand-made SigV4 requests for tests: signs with @smithy/signature-v4 as a client would, and
// lets a test bend any part (date, scope, body, headers) to provoke each error.
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface SignOptions {
  host: string;
  target?: string;
  body?: string | Uint8Array;
  date?: Date;
  region?: string;
  service?: string;
  headers?: Record<string, string>;
  sessionToken?: string;
  /** Headers to sign even where the SDK signer would leave them out (e.g. user-agent). */
  signHeaders?: string[];
}

export interface Signed {
  headers: Record<string, string>;
  body: Uint8Array;
}

export async function signRequest(creds: Credentials, o: SignOptions): Promise<Signed> {
  const body = typeof o.body === 'string' ? new TextEncoder().encode(o.body) : (o.body ?? new TextEncoder().encode('{}'));
  const signer = new SignatureV4({
    service: o.service ?? 'kms',
    region: o.region ?? 'us-east-1',
    credentials: { ...creds, ...(o.sessionToken ? { sessionToken: o.sessionToken } : {}) },
    sha256: Hash.bind(null, 'sha256'),
  });
  const req = await signer.sign(
    {
      method: 'POST',
      protocol: 'http:',
      hostname: o.host,
      path: '/',
      query: {},
      headers: {
        host: o.host,
        'content-type': 'application/x-amz-json-1.1',
        ...(o.target !== undefined ? { 'x-amz-target': o.target } : {}),
        ...o.headers,
      },
      body,
    },
    { signingDate: o.date ?? new Date(), ...(o.signHeaders ? { signableHeaders: new Set(o.signHeaders) } : {}) },
  );
  return { headers: req.headers as Record<string, string>, body };
}

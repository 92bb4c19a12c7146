// SigV4: every request is verified by a signer, which alone holds the principals' secrets
// (gateway/governance.ts); the gateway holds none. Sets ctx.state.received and .principal.
import { sigv4Evidence, sigv4EvidenceSchema } from '../../../policy/index.js';
import type { GatewayDeps } from '../../deps.js';
import { gatewayPolicy } from '../../governance.js';
import { KmsError } from '../errors.js';
import type { KmsMiddleware, KmsRequest } from './state.js';

function queryRecord(qs: string): Record<string, string | string[]> {
  const params = new URLSearchParams(qs);
  const out: Record<string, string | string[]> = {};
  for (const k of new Set(params.keys())) {
    const all = params.getAll(k);
    out[k] = all.length === 1 ? all[0]! : all;
  }
  return out;
}

/** The access key id a signer authenticated the request as. */
async function authenticate(deps: Pick<GatewayDeps, 'principals'>, req: NonNullable<KmsRequest['received']>, requestId: string): Promise<string> {
  const claimed = /Credential=([A-Za-z0-9]{1,128})\//.exec(req.headers.authorization?.[0] ?? '')?.[1];
  // An access key no principal has is refused without troubling a signer.
  if (claimed !== undefined && !deps.principals.byAccessKeyId(claimed)) throw new KmsError('UnrecognizedClientException', 'The security token included in the request is invalid.');
  // Temporary (STS) credentials are no mpchsm principal's; a request the signers' schema cannot hold is the client's to fix.
  if (req.headers['x-amz-security-token']) throw new KmsError('UnrecognizedClientException', 'The security token included in the request is invalid.');
  const evidence = sigv4EvidenceSchema.safeParse(sigv4Evidence(req));
  if (!evidence.success) throw new KmsError('ValidationException', `The request cannot be authenticated as sent: ${evidence.error.issues[0]?.path.join('.')}: ${evidence.error.issues[0]?.message}`);
  const id = await gatewayPolicy().authenticate(evidence.data, requestId);
  if (id !== claimed) throw new KmsError('KMSInternalException', 'a signer authenticated another access key than the request names');
  return id;
}

export function sigv4(deps: Pick<GatewayDeps, 'principals'>): KmsMiddleware {
  return async (ctx, next) => {
    const received = (ctx.state.received = { method: ctx.method, path: ctx.path, query: queryRecord(ctx.querystring), headers: ctx.req.headersDistinct, body: ctx.state.payload! });
    const accessKeyId = await authenticate(deps, received, ctx.state.requestId);
    ctx.state.principal = deps.principals.byAccessKeyId(accessKeyId)!;
    await next();
  };
}

// The KMS API is POST / with an uncompressed body of at most MAX_BODY_BYTES, read once here
// (ctx.state.payload) before anything else looks at the request.
import type { IncomingMessage } from 'node:http';
import { KmsError } from '../errors.js';
import type { KmsMiddleware } from './state.js';

/** Largest request body accepted: well above KMS's largest request (a 32 KiB policy, escaped). */
const MAX_BODY_BYTES = 256 * 1024;

/** A request's body, refused (413) past `max` bytes, announced or sent; the approval console reads its own with it too. */
export async function readBody(req: IncomingMessage, max = MAX_BODY_BYTES): Promise<Buffer> {
  const tooLarge = () => new KmsError('ValidationException', `The request body exceeds ${max} bytes`, 413);
  if (Number(req.headers['content-length'] ?? 0) > max) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) throw tooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

export const body: KmsMiddleware = async (ctx, next) => {
  if (ctx.path !== '/' || ctx.method !== 'POST') {
    throw new KmsError('UnknownOperationException', 'The KMS API is POST / with an X-Amz-Target header', 404);
  }
  if (ctx.get('content-encoding') && ctx.get('content-encoding') !== 'identity') {
    throw new KmsError('SerializationException', 'Compressed request bodies are not accepted');
  }
  ctx.state.payload = await readBody(ctx.req);
  await next();
};

// The gateway ↔ signer RPC's messages: one frame each way per call (contract/io/frames.ts), many
// calls in flight on one pinned mutual-TLS connection (negotiated by ALPN as RPC_ALPN; the
// signer's GET /health stays HTTPS on the same port). A frame's body is
//   4-byte call id | 4-byte head length | head (JSON) | the call's body
// A request's head carries the route's path and the signed-request headers
// (contract/identity/signed-request.ts), an answer's its status and, when signed, the signature
// binding it to the request's nonce: only the HTTP wrapping of the signed requests is gone.
import { z } from 'zod';
import { FrameError, lengthFramed } from './frames.js';

export const RPC_ALPN = 'mpchsm-rpc/1';
/**
 * The call id of the answer a signer sends, unsigned, on a connection whose TLS client is not its
 * pinned gateway, before closing it: the answer to every call the client sent on it.
 */
export const REFUSED = 0;
/** Largest request or answer body either side sends or holds. */
export const RPC_MAX_BODY = 16 * 1024 * 1024;
const RPC_MAX_HEAD = 16 * 1024;
/** Largest frame either side accepts: refused from its length, before its body is held. */
export const RPC_MAX_FRAME = 8 + RPC_MAX_HEAD + RPC_MAX_BODY;

/** The signed-request headers, by their names (AUTH_HEADERS); their contents are checked where they are verified. */
const authSchema = z.record(z.string().regex(/^x-mpchsm-[a-z-]{1,32}$/), z.string().max(256));
export const requestHeadSchema = z.strictObject({ path: z.string().max(4096), auth: authSchema });
export const answerHeadSchema = z.strictObject({ status: z.number().int().min(100).max(599), auth: authSchema.optional() });
export type RequestHead = z.infer<typeof requestHeadSchema>;
export type AnswerHead = z.infer<typeof answerHeadSchema>;

export interface RpcMessage<H> {
  id: number;
  head: H;
  body: Buffer;
}

/** One message as a frame; throws FrameError for a body over RPC_MAX_BODY (never sent, as the peer would close on it). */
export function encodeMessage(id: number, head: RequestHead | AnswerHead, body: Uint8Array): Buffer {
  if (body.length > RPC_MAX_BODY) throw new FrameError(`a body of ${body.length} bytes exceeds ${RPC_MAX_BODY}`);
  const headBytes = Buffer.from(JSON.stringify(head));
  if (headBytes.length > RPC_MAX_HEAD) throw new FrameError(`a head of ${headBytes.length} bytes exceeds ${RPC_MAX_HEAD}`);
  const prefix = Buffer.alloc(8);
  prefix.writeUInt32BE(id, 0);
  prefix.writeUInt32BE(headBytes.length, 4);
  return lengthFramed(prefix, headBytes, body);
}

/** Reads one frame's body (FrameSplitter's output) as a message whose head `schema` accepts; throws FrameError otherwise. */
export function decodeMessage<H>(frame: Buffer, schema: z.ZodType<H>): RpcMessage<H> {
  if (frame.length < 8) throw new FrameError('frame too short for a message');
  const headLength = frame.readUInt32BE(4);
  if (headLength > Math.min(RPC_MAX_HEAD, frame.length - 8)) throw new FrameError('message head exceeds its frame');
  let head: unknown;
  try {
    head = JSON.parse(frame.toString('utf8', 8, 8 + headLength));
  } catch {
    throw new FrameError('message head is not JSON');
  }
  const parsed = schema.safeParse(head);
  if (!parsed.success) throw new FrameError('malformed message head');
  return { id: frame.readUInt32BE(0), head: parsed.data, body: frame.subarray(8 + headLength) };
}

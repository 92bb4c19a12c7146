// The PKCS#11 module's wire (pkcs11-shim/src/remote/wire.c and rpc.c are the other end).
//
// Frame: 4-byte big-endian length, then one value. Values:
//   0x01 uint   8 bytes big-endian
//   0x02 bytes  4-byte big-endian length, then the bytes
//   0x03 list   4-byte big-endian count, then that many values
// Request: [version=1, op, abi, credential, ...arguments]; answer: [CKR, ...results], or
// [CKR, reason, mark, requestId] when CKR ≠ CKR_OK: mark is LOGIN_ENDED when the credential
// itself is not honoured (the module then logs in again by itself), else 0; requestId is the
// gateway's id of the request, which its audit entries and log line carry (older gateways sent
// [CKR, reason] or [CKR, reason, LOGIN_ENDED], which the module still reads). `abi` says how the module's platform lays out CK_ULONG
// (bit 0: 8 bytes, else 4; bit 1: big-endian) so attribute values go out as the application's
// own bytes.

import { FrameSplitter, lengthFramed, type FrameGate } from '../io/frames.js';

export type Value = number | bigint | Buffer | Value[];

/** A failure answer's third value when the credential has ended or is unknown, else 0 (pkcs11-shim/src/remote/rpc.c). */
export const LOGIN_ENDED = 1;

/** Operation codes (pkcs11-shim/src/remote/remote.h). */
export const OP = {
  LOGIN: 1,
  LOGOUT: 2,
  FIND: 3,
  SIGN: 4,
  VERIFY: 5,
  ENCRYPT: 6,
  DECRYPT: 7,
  GENERATE_KEY_PAIR: 8,
  CREATE_OBJECT: 9,
  DESTROY_OBJECT: 10,
  SET_ATTRIBUTES: 11,
  /** Whether this login may start an operation: asked by the module when it expects a refusal. */
  CHECK: 12,
  /** The cluster's PIN key derivation, which the module needs before it can log in. */
  PIN_KDF: 13,
} as const;


const UINT = 1;
const BYTES = 2;
const LIST = 3;
/** Largest frame either side accepts (pkcs11-shim WIRE_MAX). */
export const MAX_FRAME = 32 * 1024 * 1024;
const MAX_DEPTH = 8;

export class WireError extends Error {
  override readonly name = 'WireError';
}

export function encodeValue(v: Value | string | Uint8Array): Buffer {
  const parts: Buffer[] = [];
  const put = (x: Value | string | Uint8Array): void => {
    if (typeof x === 'number' || typeof x === 'bigint') {
      const b = Buffer.alloc(9);
      b[0] = UINT;
      b.writeBigUInt64BE(BigInt(x), 1);
      parts.push(b);
    } else if (typeof x === 'string' || x instanceof Uint8Array) {
      const data = typeof x === 'string' ? Buffer.from(x, 'utf8') : Buffer.from(x.buffer, x.byteOffset, x.byteLength);
      const h = Buffer.alloc(5);
      h[0] = BYTES;
      h.writeUInt32BE(data.length, 1);
      parts.push(h, data);
    } else {
      const h = Buffer.alloc(5);
      h[0] = LIST;
      h.writeUInt32BE(x.length, 1);
      parts.push(h);
      for (const y of x) put(y);
    }
  };
  put(v);
  return Buffer.concat(parts);
}

/** Decodes one value filling `buf` exactly. Uints within 2^53 come back as numbers. */
export function decodeValue(buf: Buffer): Value {
  let pos = 0;
  const need = (n: number) => {
    if (buf.length - pos < n) throw new WireError('truncated value');
  };
  const read = (depth: number): Value => {
    if (depth > MAX_DEPTH) throw new WireError('values nested too deeply');
    need(1);
    const tag = buf[pos++];
    if (tag === UINT) {
      need(8);
      const v = buf.readBigUInt64BE(pos);
      pos += 8;
      return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
    }
    need(4);
    const n = buf.readUInt32BE(pos);
    pos += 4;
    if (tag === BYTES) {
      need(n);
      const b = Buffer.from(buf.subarray(pos, pos + n));
      pos += n;
      return b;
    }
    if (tag === LIST) {
      if (n > (buf.length - pos) / 5) throw new WireError('list count exceeds the frame');
      const out: Value[] = [];
      for (let i = 0; i < n; i++) out.push(read(depth + 1));
      return out;
    }
    throw new WireError(`unknown value tag ${tag}`);
  };
  const v = read(0);
  if (pos !== buf.length) throw new WireError('trailing bytes after the value');
  return v;
}

export function frame(v: Value | string | Uint8Array): Buffer {
  return lengthFramed(encodeValue(v));
}

/** Where a request's credential starts: after the list header and three uints (version, op, abi). */
const CREDENTIAL_AT = 5 + 3 * 9;
const MAX_CREDENTIAL = 1024;

/**
 * The credential at the start of a request body (which may be only the body's first bytes):
 * 'short' when more bytes are needed, 'invalid' when the body does not start like a request.
 */
export function requestCredential(prefix: Buffer): { credential: string } | 'short' | 'invalid' {
  if (prefix.length < CREDENTIAL_AT + 5) return 'short';
  if (prefix[0] !== LIST || [5, 14, 23].some((at) => prefix[at] !== UINT) || prefix[CREDENTIAL_AT] !== BYTES) return 'invalid';
  const n = prefix.readUInt32BE(CREDENTIAL_AT + 1);
  if (n > MAX_CREDENTIAL) return 'invalid';
  if (prefix.length < CREDENTIAL_AT + 5 + n) return 'short';
  return { credential: prefix.toString('utf8', CREDENTIAL_AT + 5, CREDENTIAL_AT + 5 + n) };
}

/**
 * Before login, what a frame may make the gateway hold: up to `preLoginBytes`, or more when
 * the request's own header carries a credential that `mayExceed` accepts (checked as soon as
 * the header is in, so an unauthenticated sender is cut off after a few hundred bytes).
 */
export interface FrameLimits {
  preLoginBytes: number;
  mayExceed(credential: string): boolean;
}

/** Splits a byte stream into frame bodies. Throws WireError on an oversized frame, or a large one without a valid login. */
export class FrameReader extends FrameSplitter {
  constructor(limits?: FrameLimits) {
    super(MAX_FRAME, limits && loginGate(limits), WireError);
  }
}

function loginGate(limits: FrameLimits): FrameGate {
  return (n, peek) => {
    if (n <= limits.preLoginBytes) return 'admit';
    const found = requestCredential(peek(CREDENTIAL_AT + 5 + MAX_CREDENTIAL));
    if (found === 'short') return 'wait';
    if (found === 'invalid' || !limits.mayExceed(found.credential)) throw new WireError(`frame of ${n} bytes without a valid login exceeds ${limits.preLoginBytes}`);
    return 'admit';
  };
}

/** How the module's platform lays out CK_ULONG. */
export class Abi {
  readonly ulongBytes: 4 | 8;
  readonly bigEndian: boolean;
  constructor(flags: number) {
    if (!Number.isInteger(flags) || flags < 0 || flags > 3) throw new WireError(`unknown abi flags ${flags}`);
    this.ulongBytes = flags & 1 ? 8 : 4;
    this.bigEndian = (flags & 2) !== 0;
  }

  ulong(v: number | bigint): Buffer {
    const b = Buffer.alloc(this.ulongBytes);
    const x = BigInt(v) & (this.ulongBytes === 8 ? 0xffffffffffffffffn : 0xffffffffn);
    if (this.ulongBytes === 8) this.bigEndian ? b.writeBigUInt64BE(x) : b.writeBigUInt64LE(x);
    else this.bigEndian ? b.writeUInt32BE(Number(x)) : b.writeUInt32LE(Number(x));
    return b;
  }

  ulongs(vs: readonly number[]): Buffer {
    return Buffer.concat(vs.map((v) => this.ulong(v)));
  }

  /** Reads a CK_ULONG attribute value; undefined if it is not one. */
  readUlong(b: Buffer): bigint | undefined {
    if (b.length !== this.ulongBytes) return undefined;
    if (this.ulongBytes === 8) return this.bigEndian ? b.readBigUInt64BE() : b.readBigUInt64LE();
    return BigInt(this.bigEndian ? b.readUInt32BE() : b.readUInt32LE());
  }
}

// Length-prefixed frames over a byte stream (4-byte big-endian length, then the body): the
// splitter both framed channels use, the PKCS#11 module's wire (contract/pkcs11/wire.ts) and the
// gateway ↔ signer RPC (contract/io/rpc-frames.ts). A frame's length is checked against the cap
// as soon as its 4 length bytes are in, before any of its body is held.

export class FrameError extends Error {
  override readonly name: string = 'FrameError';
}

/** One frame: the length of `parts` together, then the parts. */
export function lengthFramed(...parts: Uint8Array[]): Buffer {
  const n = parts.reduce((sum, p) => sum + p.length, 0);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(n);
  return Buffer.concat([head, ...parts], 4 + n);
}

/**
 * Asked once per frame (after the size cap) whether a frame of `length` bytes may be held, from
 * its first bytes (`peek(n)`: up to n of them, as many as have arrived): 'admit', or 'wait' for
 * more bytes; it throws to refuse the frame.
 */
export type FrameGate = (length: number, peek: (n: number) => Buffer) => 'admit' | 'wait';

/** Splits a byte stream into frame bodies. Throws (`errorType`) on a frame over `maxFrame` or one the gate refuses. */
export class FrameSplitter {
  private chunks: Buffer[] = [];
  private size = 0;
  /** The frame being read passed the gate. */
  private admitted = false;

  constructor(
    readonly maxFrame: number,
    private readonly gate?: FrameGate,
    private readonly errorType: new (message: string) => Error = FrameError,
  ) {}

  push(chunk: Buffer): Buffer[] {
    this.chunks.push(chunk);
    this.size += chunk.length;
    const out: Buffer[] = [];
    for (;;) {
      if (this.size < 4) break;
      const n = this.peek(4).readUInt32BE(0);
      if (n > this.maxFrame) throw new this.errorType(`frame of ${n} bytes exceeds ${this.maxFrame}`);
      if (this.gate && !this.admitted) {
        if (this.gate(n, (k) => this.peek(Math.min(this.size, 4 + k)).subarray(4)) === 'wait') break;
        this.admitted = true;
      }
      if (this.size < 4 + n) break;
      const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
      out.push(all.subarray(4, 4 + n));
      const rest = all.subarray(4 + n);
      this.chunks = rest.length ? [rest] : [];
      this.size = rest.length;
      this.admitted = false;
    }
    return out;
  }

  /** Bytes of an incomplete frame still waiting. */
  get pending(): number {
    return this.size;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length >= n) return this.chunks[0]!.subarray(0, n);
    this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0]!.subarray(0, n);
  }
}
